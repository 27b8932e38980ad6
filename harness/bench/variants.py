"""Find the Dockerfile variants: the manifest's entries in order, then any other Dockerfile.

A variant that cannot be built as described (missing file, duplicate name, missing
context) is still returned, with `problem` set, so the run records it as failed and
goes on with the others.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from harness.analysis import dockerfile
from harness.errors import HarnessError, one_line

MANIFEST = "variants.toml"
DEFAULT_CONTEXT = "../sample_app"
_PATTERNS = ("*.Dockerfile", "*.dockerfile", "Dockerfile", "Dockerfile.*", "dockerfile")
# How the runtime check starts and probes the variant's image (see harness.engine.runtime).
RUNTIME_KEYS = ("port", "health_path", "expect_status", "env", "command", "runtime")
_KNOWN_KEYS = {"name", "label", "dockerfile", "target", "build_args", "context", "order",
               *RUNTIME_KEYS}


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    dockerfile: Path
    context: Path
    target: str | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    order: int = 0
    in_manifest: bool = True
    problem: str | None = None  # why it cannot be built, if it cannot
    # The runtime check's settings; None (or empty): the run's, else the defaults.
    port: int | None = None
    health_path: str | None = None
    expect_status: int | None = None  # None: 200
    env: dict[str, str] = field(default_factory=dict)
    command: tuple[str, ...] | None = None  # replaces the image's CMD
    runtime: bool = True  # False: never started (a service that needs its database)
    label_template: str | None = None  # the manifest's label when it names an ARG (${NODE})

    @property
    def image_tag(self) -> str:
        """The local tag of the final image: a valid reference whatever the name."""
        slug = re.sub(r"[^a-z0-9._-]+", "-", self.name.lower()).strip(".-_") or "variant"
        return f"harness-bench/{slug}:latest"


def name_from_file(path: Path) -> str:
    """`foo.Dockerfile` -> foo, `Dockerfile.foo` -> foo, `Dockerfile` -> its directory."""
    n = path.name
    low = n.lower()
    if low.endswith(".dockerfile"):
        return n[: -len(".dockerfile")]
    if low.startswith("dockerfile."):
        return n[len("dockerfile."):]
    return path.parent.name or "Dockerfile"


def is_dockerfile(path: Path) -> bool:
    return path.is_file() and any(fnmatch.fnmatchcase(path.name, p) for p in _PATTERNS)


def _read_manifest(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise HarnessError(f"{path.name}: not valid TOML ({one_line(str(exc), limit=None)})") from None
    except UnicodeDecodeError:
        raise HarnessError(f"{path.name}: not valid TOML (not UTF-8 text)") from None
    except OSError as exc:
        raise HarnessError(f"{path.name}: cannot be read ({exc.strerror or exc})") from None


def load_variants(variants_dir: Path, context: Path | None = None) -> list[Variant]:
    """The variants of `variants_dir`; `context` overrides every variant's build context.

    A manifest that cannot be used (not TOML, a malformed entry) is a HarnessError."""
    return _load(variants_dir, context, lenient=False)[0]


def load_variants_with_warnings(variants_dir: Path,
                                context: Path | None = None) -> tuple[list[Variant], list[str]]:
    """Like `load_variants`, but a bad manifest does not stop a run: the variants and
    one-line warnings about the manifest.

    A manifest that cannot be used (not TOML, unreadable, a malformed entry) is ignored
    and every Dockerfile found by file name is a variant, as when there is no manifest;
    a manifest entry naming a missing Dockerfile keeps its place, with `problem` set so
    the run records it as failed. Each case gives one warning line. Only a missing
    variants directory is still an error."""
    return _load(variants_dir, context, lenient=True)


def load_variants_strict(variants_dir: Path, context: Path | None = None) -> list[Variant]:
    """The variants, or one HarnessError naming everything wrong with the manifest: not TOML,
    an unknown key or a wrong type, and every entry whose Dockerfile or context does not
    exist or whose name is taken. What `harness run` and `list` read: a bad manifest stops
    them before any build."""
    out, _ = _load(variants_dir, context, lenient=False)
    wrong = [f"variant {v.name!r}: {v.problem}" for v in out if v.in_manifest and v.problem]
    if wrong:
        raise HarnessError(f"{MANIFEST}: " + "; ".join(wrong))
    return out


def _load(variants_dir: Path, context: Path | None,
          lenient: bool) -> tuple[list[Variant], list[str]]:
    variants_dir = variants_dir.resolve()
    if not variants_dir.is_dir():
        raise HarnessError(f"variants directory {variants_dir} does not exist; write one with "
                           f"`harness init APP_DIR --out {variants_dir.name}`, or point "
                           f"--variants-dir at yours")
    manifest_path = variants_dir / MANIFEST
    warnings: list[str] = []
    try:
        manifest = _read_manifest(manifest_path) if manifest_path.exists() else {}
        out = _collect(variants_dir, context, manifest)
    except HarnessError as exc:
        if not lenient:
            raise
        warnings.append(f"{exc}; {MANIFEST} ignored, every Dockerfile found by file name "
                        f"is a variant")
        out = _collect(variants_dir, context, {})
    else:
        warnings += [f"{MANIFEST}: variant {v.name!r} names {v.dockerfile.name}, which does "
                     f"not exist; it is recorded as failed"
                     for v in out if v.in_manifest and not v.dockerfile.is_file()]
    return [_expand_label(v) for v in out], warnings


def _expand_label(v: Variant) -> Variant:
    """The label with the Dockerfile's global ARGs in it as this build sets them: "Single
    stage (node:${NODE})" reads "Single stage (node:24)" with NODE=24. A Dockerfile that
    cannot be read leaves the label as written (the build reports the cause)."""
    template = v.label_template or v.label
    if "$" not in template:
        return v
    try:
        parsed = dockerfile.parse(v.dockerfile.read_text(), v.build_args)
    except (OSError, UnicodeDecodeError, ValueError):
        return v
    return dataclasses.replace(v, label=dockerfile.expand(template, parsed.global_args),
                               label_template=template)


def _collect(variants_dir: Path, context: Path | None, manifest: dict) -> list[Variant]:
    manifest_ctx = manifest.get("context", DEFAULT_CONTEXT)
    if not isinstance(manifest_ctx, str):
        raise HarnessError(f"{MANIFEST}: 'context' must be a string")
    default_ctx = (variants_dir / manifest_ctx).resolve()
    if context is not None:
        default_ctx = context.resolve()

    out: list[Variant] = []
    seen: set[str] = set()
    claimed: set[Path] = set()
    entries = manifest.get("variant", [])
    if not isinstance(entries, list):
        raise HarnessError(f"{MANIFEST}: 'variant' must be an array of tables ([[variant]])")
    for i, entry in enumerate(entries):
        out.append(_from_entry(entry, i, variants_dir, default_ctx, context, seen))
        claimed.add(out[-1].dockerfile)
    out.sort(key=lambda v: v.order)  # stable: equal orders keep the file's order
    for path in sorted(variants_dir.iterdir()):
        if path.resolve() in claimed or not is_dockerfile(path):
            continue
        name = name_from_file(path)
        problem = _check(name, path, default_ctx, seen)
        out.append(Variant(name, name, path.resolve(), default_ctx, order=len(out),
                           in_manifest=False, problem=problem))
    return out


def _from_entry(entry: dict, i: int, vdir: Path, default_ctx: Path,
                ctx_override: Path | None, seen: set[str]) -> Variant:
    where = f"{MANIFEST} entry {i + 1}"
    if not isinstance(entry, dict) or not isinstance(entry.get("dockerfile"), str):
        raise HarnessError(f"{where}: needs at least dockerfile = \"...\"")
    unknown = set(entry) - _KNOWN_KEYS
    if unknown:
        raise HarnessError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (allowed: "
                           f"{', '.join(sorted(_KNOWN_KEYS))})")
    for key in ("target", "context"):
        if entry.get(key) is not None and not isinstance(entry[key], str):
            raise HarnessError(f"{where}: {key} must be a string")
    if not isinstance(entry.get("build_args", {}), dict):
        raise HarnessError(f"{where}: build_args must be a table")
    try:
        order = int(entry.get("order", i))
    except (TypeError, ValueError):
        raise HarnessError(f"{where}: order must be an integer") from None
    dockerfile = (vdir / entry["dockerfile"]).resolve()
    name = str(entry.get("name") or name_from_file(dockerfile))
    ctx = default_ctx
    if ctx_override is None and entry.get("context"):
        ctx = (vdir / entry["context"]).resolve()
    args = {str(k): str(v) for k, v in (entry.get("build_args") or {}).items()}
    settings = runtime_settings(entry, f"{MANIFEST}: variant {name!r}")
    problem = _check(name, dockerfile, ctx, seen)
    return Variant(name=name, label=str(entry.get("label") or name), dockerfile=dockerfile,
                   context=ctx, target=entry.get("target"), build_args=args,
                   order=order, problem=problem, **settings)


def runtime_settings(entry: dict, where: str) -> dict:
    """The runtime keys of a manifest entry, checked: Variant's fields. A wrong one is a
    HarnessError of one line naming `where` and the key."""
    out: dict = {}
    for key in RUNTIME_KEYS:
        if key in entry:
            problem = _RUNTIME_CHECKS[key](entry[key])
            if problem:
                raise HarnessError(f"{where}: {key} {problem}")
            out[key] = entry[key]
    if "env" in out:
        out["env"] = dict(out["env"])
    if "command" in out:
        out["command"] = tuple(out["command"])
    return out


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _port_problem(value) -> str | None:
    return None if _is_int(value) and 1 <= value <= 65535 else \
        "must be a port number (an integer from 1 to 65535)"


def health_path_problem(value) -> str | None:
    return None if isinstance(value, str) and value.startswith("/") and " " not in value \
        else 'must be a path starting with "/" (like "/health")'


def _status_problem(value) -> str | None:
    return None if _is_int(value) and 100 <= value <= 599 else \
        "must be an HTTP status code (an integer from 100 to 599)"


def env_key_problem(key) -> str | None:
    if not isinstance(key, str) or not key or "=" in key or "\0" in key:
        return f"has a bad variable name {key!r}"
    return None


def _env_problem(value) -> str | None:
    if not isinstance(value, dict):
        return 'must be a table of strings (env = { KEY = "value" })'
    for k, v in value.items():
        if env_key_problem(k):
            return env_key_problem(k)
        if not isinstance(v, str):
            return f"{k} must be a string (quote it: {k} = \"{v}\")"
    return None


def _command_problem(value) -> str | None:
    if (not isinstance(value, list) or not value
            or not all(isinstance(x, str) for x in value)):
        return 'must be a non-empty array of strings (command = ["node", "server.js"])'
    return None


def _runtime_problem(value) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


_RUNTIME_CHECKS = {"port": _port_problem, "health_path": health_path_problem,
                   "expect_status": _status_problem, "env": _env_problem,
                   "command": _command_problem, "runtime": _runtime_problem}


def _check(name: str, dockerfile: Path, ctx: Path, seen: set[str]) -> str | None:
    problem = None
    if name in seen:
        problem = f"another variant is already named {name!r}"
    elif not dockerfile.is_file():
        problem = f"Dockerfile {dockerfile.name} does not exist"
    elif not ctx.is_dir():
        problem = f"build context {ctx} does not exist"
    seen.add(name)
    return problem


def select(variants: list[Variant], names: list[str]) -> list[Variant]:
    """The variants named, in manifest order; an unknown name is a usage error."""
    if not names:
        return variants
    known = {v.name for v in variants}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise HarnessError(
            f"unknown variant(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    wanted = set(names)
    return [v for v in variants if v.name in wanted]


def with_build_args(variants: list[Variant], args: dict[str, str]) -> list[Variant]:
    """Every variant with the run's build args (`--build-arg`) under its own, which win."""
    if not args:
        return variants
    return [_expand_label(dataclasses.replace(v, build_args={**args, **v.build_args}))
            for v in variants]
