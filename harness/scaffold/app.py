"""Read what the Dockerfiles need from an app directory: its package manager, Node.js
major, build output, entry point, port and its own Dockerfiles.

What cannot be read is not guessed silently: a default is taken and `App.notes` says so,
one line each, for variants.toml to carry as comments."""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from harness.analysis.dockerfile import logical_lines
from harness.bench.variants import is_dockerfile
from harness.errors import HarnessError

DEFAULT_NODE_MAJOR = 20  # the major of the bundled variants/*.Dockerfile
DEFAULT_PORT = 3000  # the article's EXPOSE, and the runtime check's default
LOCK_FILES = {"npm": "package-lock.json", "yarn": "yarn.lock", "pnpm": "pnpm-lock.yaml"}
_CODE_EXT = {".ts", ".tsx", ".mts", ".cts", ".js", ".jsx", ".mjs", ".cjs"}
_SKIP_DIRS = {"node_modules", "test", "tests", "__tests__", "coverage"}
_MAX_FILES = 500
_PORT_PATTERNS = (
    re.compile(r"\.listen\(\s*(\d{2,5})\b"),                                    # listen(8080
    re.compile(r"\bPORT\b[\w.\])\"'\s]{0,20}(?:\|\||\?\?)\s*[\"'`]?(\d{2,5})\b"),  # PORT || 8080
    re.compile(r"\bPORT\b[^\n;]{0,80}?\.default\(\s*[\"'`]?(\d{2,5})\b"),       # zod .default(3000)
    re.compile(r"\b(?:const|let|var)\s+port\s*=\s*(\d{2,5})\b", re.IGNORECASE),  # const PORT = 8080
)
_HEALTH_PATHS = ("/healthz", "/health", "/livez", "/readyz")
_SINGLE_MAJOR = re.compile(r"^\s*[\^~=v]*\s*(\d+)(?:\.[\dxX*]+){0,2}\s*$")
_SHELL_OPS = {"&&", "||", ";", "|", ">", "<", "&"}


@dataclass(frozen=True)
class App:
    root: Path
    name: str
    manager: str  # npm, yarn or pnpm
    manager_version: str | None  # from packageManager (or the lock file), e.g. "9.15.9"
    node_major: int
    build_script: bool  # package.json has scripts.build
    out_dir: str | None  # the build's output, relative to root; None without a build script
    node_args: tuple[str, ...]  # node's arguments at runtime: flags, then the entry file
    port: int | None  # None: nothing in the app says it
    health_path: str | None
    dockerfiles: tuple[tuple[str, int | None], ...]  # the app's own: path (posix, relative), EXPOSE
    install_files: tuple[str, ...]  # besides package.json and the lock file
    has_dockerignore: bool
    notes: tuple[str, ...]

    @property
    def lock_file(self) -> str:
        return LOCK_FILES[self.manager]

    @property
    def yarn_berry(self) -> bool:
        return self.manager == "yarn" and _major(self.manager_version or "1") >= 2


def read_app(root: Path, exclude: Path | None = None) -> App:
    """The app at `root`; Dockerfiles under `exclude` (the output directory) are not its own.
    A HarnessError (one line) when it is not a Node.js app harness init can describe."""
    root = root.resolve()
    pkg = _package_json(root)
    notes: list[str] = []
    manager, version = _manager(root, pkg, notes)
    scripts = pkg.get("scripts") if isinstance(pkg.get("scripts"), dict) else {}
    build = isinstance(scripts.get("build"), str)
    out_dir = _out_dir(root, pkg, scripts.get("build"), notes) if build else None
    node_args = _node_args(pkg, scripts.get("start"), out_dir, notes)
    own = _own_dockerfiles(root, exclude.resolve() if exclude else None)
    sources = _sources(root, out_dir)
    port = _port(own, sources, notes)
    health = _health(sources, notes)
    if not (root / ".dockerignore").is_file():
        notes.append("the app has no .dockerignore: COPY . . also sends node_modules and the "
                     "build output (the article recommends one)")
    extra = [f for f in ("pnpm-workspace.yaml", ".yarnrc.yml") if (root / f).is_file()]
    return App(root=root, name=str(pkg.get("name") or root.name), manager=manager,
               manager_version=version, node_major=_node_major(pkg, notes), build_script=build,
               out_dir=out_dir, node_args=node_args, port=port, health_path=health,
               dockerfiles=tuple((p.relative_to(root).as_posix(), _expose(p)) for p in own),
               install_files=tuple(extra), has_dockerignore=(root / ".dockerignore").is_file(),
               notes=tuple(notes))


def _package_json(root: Path) -> dict:
    path = root / "package.json"
    if not path.is_file():
        raise HarnessError(f"{root}: no package.json (harness init reads a Node.js app)")
    try:
        data = json.loads(path.read_text())
    except (ValueError, OSError) as exc:
        raise HarnessError(f"{path}: not valid JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise HarnessError(f"{path}: not a JSON object")
    return data


def _major(version: str) -> int:
    m = re.match(r"\s*v?(\d+)", version)
    return int(m.group(1)) if m else 0


def _manager(root: Path, pkg: dict, notes: list[str]) -> tuple[str, str | None]:
    """The package manager: packageManager's, else the one whose lock file is there."""
    declared = pkg.get("packageManager")
    if isinstance(declared, str) and declared:
        name, _, version = declared.partition("@")
        if name not in LOCK_FILES:
            raise HarnessError(f"packageManager {declared!r}: harness init knows npm, yarn and pnpm")
        if not (root / LOCK_FILES[name]).is_file():
            raise HarnessError(f"packageManager names {name} but there is no {LOCK_FILES[name]}; "
                               f"run `{name} install` once to write it")
        return name, version.split("+")[0] or None
    present = [m for m, lock in LOCK_FILES.items() if (root / lock).is_file()]
    if not present:
        raise HarnessError(f"{root}: no lock file ({', '.join(LOCK_FILES.values())}); run your "
                           f"package manager's install once to write it")
    if len(present) > 1:
        raise HarnessError(f"several lock files ({', '.join(LOCK_FILES[m] for m in present)}); "
                           f"name one manager in package.json's packageManager")
    return present[0], _version_from_lock(root, present[0], notes)


def _version_from_lock(root: Path, manager: str, notes: list[str]) -> str | None:
    """Without packageManager: the manager's major as the lock file's format tells it."""
    text = (root / LOCK_FILES[manager]).read_text(errors="replace")
    if manager == "pnpm":
        m = re.search(r"^lockfileVersion:\s*['\"]?(\d+)", text, re.MULTILINE)
        major = {5: "7", 6: "8"}.get(int(m.group(1)) if m else 9, "9")
        notes.append(f"packageManager is unset: pnpm@{major} from pnpm-lock.yaml's lockfileVersion")
        return major
    if manager == "yarn" and "__metadata:" in text:
        notes.append("packageManager is unset and yarn.lock is a Yarn 2+ lock file: corepack "
                     "prepares yarn@stable")
        return "stable"
    return None


def _node_major(pkg: dict, notes: list[str]) -> int:
    engines = pkg.get("engines") if isinstance(pkg.get("engines"), dict) else {}
    wanted = engines.get("node")
    majors = [int(m) for m in re.findall(r"(?<![\d.])(\d+)(?:\.[\dxX*]+)*", str(wanted or ""))]
    if not isinstance(wanted, str) or not majors:
        notes.append(f"package.json has no engines.node: Node.js {DEFAULT_NODE_MAJOR}, the "
                     f"bundled variants' major")
        return DEFAULT_NODE_MAJOR
    m = _SINGLE_MAJOR.match(wanted)
    if m:
        return int(m.group(1))
    # A range (">=20", "^18 || ^20"): the highest major it names, said out loud.
    major = max(majors)
    notes.append(f"engines.node {wanted!r} allows more than one major: Node.js {major}, the "
                 f"highest it names")
    return major


def read_jsonc(text: str) -> dict:
    """tsconfig.json's JSON with comments and trailing commas."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':  # copy a string whole: // inside it is not a comment
            m = re.compile(r'"(?:[^"\\\n]|\\.)*"').match(text, i)
            end = m.end() if m else n
            out.append(text[i:end])
            i = end
        elif text.startswith("//", i):
            i = text.find("\n", i) if "\n" in text[i:] else n
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            out.append(c)
            i += 1
    cleaned = re.sub(r",(\s*[}\]])", r"\1", "".join(out))
    data = json.loads(cleaned)
    return data if isinstance(data, dict) else {}


def _tsconfig_path(root: Path, build: str) -> Path:
    """The config `tsc -p X` / `--project X` names in the build script, else tsconfig.json."""
    m = re.search(r"\btsc\b[^&|;]*?(?:-p|--project)[ =](\S+)", build)
    path = root / (m.group(1) if m else "tsconfig.json")
    return path / "tsconfig.json" if path.is_dir() else path


def _ts_out_dir(config: Path, root: Path) -> str | None:
    """compilerOptions.outDir, following relative `extends`; relative to the app."""
    for _ in range(8):  # a chain of extends, not a loop
        if not config.is_file():
            return None
        try:
            data = read_jsonc(config.read_text())
        except (ValueError, OSError) as exc:
            raise HarnessError(f"{config}: cannot be read as JSON with comments "
                               f"({str(exc).splitlines()[0]})") from None
        options = data.get("compilerOptions") if isinstance(data.get("compilerOptions"), dict) else {}
        if isinstance(options.get("outDir"), str):
            full = os.path.normpath(config.parent / options["outDir"])
            return Path(os.path.relpath(full, root)).as_posix()
        parent = data.get("extends")
        if not (isinstance(parent, str) and parent.startswith(".")):
            return None
        config = config.parent / parent
        if config.suffix != ".json":
            config = config.with_name(config.name + ".json")
    return None


def _out_dir(root: Path, pkg: dict, build: str, notes: list[str]) -> str:
    out = _ts_out_dir(_tsconfig_path(root, build), root)
    if out and out != "." and not out.startswith(".."):
        return out
    main = pkg.get("main")
    if isinstance(main, str) and "/" in main.strip("./"):
        top = main.strip("./").split("/")[0]
        notes.append(f"no TypeScript outDir: the build output is {top}/, where main ({main}) is")
        return top
    notes.append("no TypeScript outDir and no main in a directory: the build output is "
                 "assumed to be dist/")
    return "dist"


def _node_args(pkg: dict, start: object, out_dir: str | None, notes: list[str]) -> tuple[str, ...]:
    """What follows `node` in the start script; else main; else <outDir>/index.js."""
    main = pkg.get("main") if isinstance(pkg.get("main"), str) else None
    main = main.removeprefix("./") if main else None
    try:
        tokens = shlex.split(start) if isinstance(start, str) else []
    except ValueError:
        tokens = []
    if len(tokens) > 1 and tokens[0] == "node" and not _SHELL_OPS & set(tokens):
        args = tokens[1:]
        if args[-1] in (".", "./"):
            args[-1] = main or "index.js"
        args[-1] = args[-1].removeprefix("./")
        entry = args[-1]
    elif main:
        args, entry = [main], main
        if start is not None:
            notes.append(f"the start script {start!r} is not `node <file>`: CMD runs main ({main})")
    else:
        entry = f"{out_dir or '.'}/index.js".removeprefix("./")
        args = [entry]
        notes.append(f"neither a `node <file>` start script nor main: CMD runs {entry}")
    if out_dir and not (entry + "/").startswith(out_dir.rstrip("/") + "/"):
        notes.append(f"the entry {entry} is outside the build output {out_dir}/, which is all "
                     f"the multi-stage runners copy")
    return tuple(args)


def _walk(root: Path, skip_dir) -> list[Path]:
    """Files under root, sorted, without hidden directories and those `skip_dir` refuses."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames
                             if not d.startswith(".") and not skip_dir(here / d))
        found += [here / f for f in sorted(filenames)]
    return found


def _own_dockerfiles(root: Path, exclude: Path | None) -> list[Path]:
    def skip(d: Path) -> bool:
        return d.name == "node_modules" or d == exclude

    return [p for p in _walk(root, skip) if is_dockerfile(p)]


def _expose(path: Path) -> int | None:
    try:
        lines = logical_lines(path.read_text(errors="replace"))
    except OSError:
        return None
    for ins in lines:
        m = re.match(r"\s*(\d{1,5})\b", ins.args) if ins.keyword == "EXPOSE" else None
        if m and 0 < int(m.group(1)) < 65536:
            return int(m.group(1))
    return None


def _sources(root: Path, out_dir: str | None) -> list[tuple[str, str]]:
    """(relative path, text) of the app's code, tests and build output left out."""
    built = (root / out_dir).resolve() if out_dir else None

    def skip(d: Path) -> bool:
        return d.name in _SKIP_DIRS or d == built

    files = [p for p in _walk(root, skip) if p.suffix in _CODE_EXT and ".test." not in p.name
             and ".spec." not in p.name][:_MAX_FILES]
    out = []
    for p in files:
        try:
            out.append((p.relative_to(root).as_posix(), p.read_text(errors="replace")[:1_000_000]))
        except OSError:
            continue
    return out


def _port(own: list[Path], sources: list[tuple[str, str]], notes: list[str]) -> int | None:
    """The app's own Dockerfiles' EXPOSE first, then what the code listens on."""
    found: list[tuple[int, str]] = [(p, d.name) for d in own if (p := _expose(d)) is not None]
    for rel, text in sources:
        for pattern in _PORT_PATTERNS:
            found += [(int(m.group(1)), rel) for m in pattern.finditer(text)
                      if 0 < int(m.group(1)) < 65536]
    if not found:
        notes.append(f"no port found in the code or a Dockerfile: the variants EXPOSE "
                     f"{DEFAULT_PORT}, the article's")
        return None
    port, where = found[0]
    others = sorted({f"{p} in {w}" for p, w in found if p != port})
    if others:
        notes.append(f"port {port} (from {where}); also seen: {', '.join(others)}")
    return port


def _health(sources: list[tuple[str, str]], notes: list[str]) -> str | None:
    for path in _HEALTH_PATHS:
        literal = re.compile(r"[\"'`]" + re.escape(path) + r"[\"'`]")
        if any(literal.search(text) for _, text in sources):
            return path
    notes.append("no health route (/healthz, /health, /livez, /readyz) found in the code")
    return None
