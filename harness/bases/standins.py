"""Local stand-ins for the official base images, since no registry can be reached here.

Each recipe under harness/bases/recipes/<slug>/ says what a stand-in must be like (a
`recipe.toml`) and how its layers go together (a `Dockerfile` starting FROM scratch).
Building one means: a Debian rootfs from mmdebstrap (its mirror comes from the
machine's apt sources), a few fixups done here in Python, Node.js/npm/yarn from their
npm tarballs laid out as the real image lays them out, and a classic-builder build
through the Docker SDK. A stand-in is labelled with the hash of its recipe, so an
unchanged recipe reuses the image it built last time.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import docker
from docker.errors import APIError, ImageNotFound

from harness.analysis import dockerfile as dockerfile_mod
from harness.engine.build import build_image, pack_context
from harness.errors import BuildFailed, HarnessError

RECIPES_DIR = Path(__file__).resolve().parent / "recipes"
RECIPE_FILE = "recipe.toml"

# The standard Debian locations of the host's CA bundle and of mmdebstrap's hook dirs.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
MMDEBSTRAP_HOOKS = Path("/usr/share/mmdebstrap/hooks")

ROOTFS_CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"
CONTEXT_CA_NAME = "host-ca-certificates.crt"
IMAGE_CA_PATH = "/usr/local/share/harness/host-ca-certificates.crt"

LABEL_FOR = "io.harness.standin.for"
LABEL_HASH = "io.harness.standin.recipe-sha256"
LABEL_SUITE = "io.harness.standin.debian-suite"
LABEL_NODE = "io.harness.standin.node-version"
LABEL_NPM = "io.harness.standin.npm-version"
LABEL_YARN = "io.harness.standin.yarn-version"
LABEL_COREPACK = "io.harness.standin.corepack-version"
LABEL_CA = "io.harness.standin.ca-injected"

# "none": a plain Debian stand-in (debian:<suite>), no Node.js at all.
NODE_LAYOUTS = ("usr-local", "distroless", "none")
# Pinned for mmdebstrap and tar, so that one suite's rootfs.tar comes out byte-identical
# for every tag built from it (given the same mirror content) and the engine's ADD layer
# cache serves them all. 2025-01-01T00:00:00Z.
SOURCE_DATE_EPOCH = 1735689600
# "# IF <flag>" ... "# END <flag>" blocks in a family recipe's Dockerfile.
_IF = re.compile(r"^# IF (\S+)$")
_END = re.compile(r"^# END (\S+)$")
# The Node tarballs are linux-x64; slim/alpine keep only this OpenSSL header arch.
OPENSSL_ARCH = "linux-x86_64"
# Files mmdebstrap copies from the host for apt's sake; an image must not carry them.
HOST_LEAKS = ("etc/resolv.conf", "etc/hostname")
# BusyBox applets that would pose as a package manager in an image that has none.
SKIP_APPLETS = frozenset({"dpkg", "dpkg-deb", "rpm", "rpm2cpio", "linuxrc"})

_DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")
_STEP = re.compile(r"^Step \d+/\d+ : (.*)$")

Log = Callable[[str], None]


# --------------------------------------------------------------------------- references

def normalize_ref(ref: str) -> str:
    """The short, familiar form of an image reference, tag made explicit.

    "node:20", "library/node:20" and "docker.io/library/node:20" all give "node:20";
    "gcr.io/distroless/nodejs20-debian12" gives "...:latest". A digest next to a tag
    is dropped (a stand-in answers for the tag); a digest alone is kept, and then
    matches no recipe.
    """
    ref = ref.strip()
    name, _, digest = ref.partition("@")
    tag = None
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        domain, path = parts[0].lower(), parts[1:]
    else:
        domain, path = "docker.io", parts
    path = [p.lower() for p in path]
    if domain in _DOCKER_HUB:
        if len(path) == 2 and path[0] == "library":
            path = path[1:]
        short = "/".join(path)
    else:
        short = "/".join([domain, *path])
    if tag:
        return f"{short}:{tag}"
    if digest:
        return f"{short}@{digest}"
    return f"{short}:latest"


# --------------------------------------------------------------------------- recipes

@dataclass(frozen=True)
class DirSpec:
    """A directory the rootfs must have, with its mode and owner (e.g. a home)."""
    path: str
    mode: int = 0o755
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class Recipe:
    slug: str
    dir: Path
    stands_in_for: str
    tag: str
    description: str
    suite: str
    needs_npm_ca: bool
    mmdebstrap_variant: str
    include: tuple[str, ...]
    node: str
    node_layout: str
    npm: str | None = None
    yarn: str | None = None
    mmdebstrap_hooks: tuple[str, ...] = ()
    dpkg_path_exclude: tuple[str, ...] = ()
    dpkg_path_include: tuple[str, ...] = ()
    prune_openssl_archs: bool = False
    remove: tuple[str, ...] = ()
    overlay: str | None = None
    make_dirs: tuple[DirSpec, ...] = ()
    generate_ca_bundle: bool = False
    busybox_applets: bool = False
    forbid_paths: tuple[str, ...] = ()
    extra_labels: tuple[tuple[str, str], ...] = ()
    real_size_bytes_approx: int | None = None
    real_layer_count: int | None = None
    corepack: str | None = None
    # BusyBox moved to this directory (applets beside it) before `remove` runs.
    busybox_at: str | None = None
    # A family recipe instantiated for one tag (harness/bases/families.py): the family,
    # the Dockerfile's IF-flags and every filled-in parameter, all part of the identity.
    family: str | None = None
    flags: tuple[str, ...] = ()
    params: tuple[tuple[str, str], ...] = ()

    @property
    def ref(self) -> str:
        """The normalised reference this stand-in answers for (the recipes' key)."""
        return normalize_ref(self.stands_in_for)

    def files(self) -> list[Path]:
        """Every file of the recipe, sorted by relative path."""
        found = [p for p in self.dir.rglob("*") if p.is_file() or p.is_symlink()]
        return sorted(found, key=lambda p: p.relative_to(self.dir).as_posix())

    def content_hash(self) -> str:
        """sha256 over each file's relative path and bytes: the stand-in's identity."""
        digest = hashlib.sha256()
        for path in self.files():
            rel = path.relative_to(self.dir).as_posix().encode()
            data = os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
            # Lengths first, so that no two different trees hash the same stream.
            digest.update(b"%d:%s%d:" % (len(rel), rel, len(data)))
            digest.update(data)
        if self.family:  # a directory recipe's hash stays what it always was
            digest.update(b"family:" + json.dumps(
                [self.family, list(self.flags), [list(p) for p in self.params]]).encode())
        return digest.hexdigest()


_REQUIRED = ("stands_in_for", "tag", "description", "suite", "mmdebstrap_variant",
             "node", "node_layout", "needs_npm_ca")
_OPTIONAL = {"include", "npm", "yarn", "mmdebstrap_hooks", "dpkg_path_exclude",
             "dpkg_path_include", "prune_openssl_archs", "remove", "overlay", "make_dirs",
             "generate_ca_bundle", "busybox_applets", "forbid_paths", "labels",
             "real_size_bytes_approx", "real_layer_count"}


def load_recipe(recipe_dir: Path) -> Recipe:
    """One recipe directory, checked; a bad one is a one-line HarnessError."""
    path = recipe_dir / RECIPE_FILE
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise HarnessError(f"stand-in recipe {path}: {exc}") from None
    missing = [k for k in _REQUIRED if k not in data]
    unknown = sorted(set(data) - set(_REQUIRED) - _OPTIONAL)
    if missing or unknown:
        what = "; ".join(filter(None, [missing and f"missing {', '.join(missing)}",
                                       unknown and f"unknown {', '.join(unknown)}"]))
        raise HarnessError(f"stand-in recipe {path}: {what}")
    if data["node_layout"] not in NODE_LAYOUTS:
        raise HarnessError(f"stand-in recipe {path}: node_layout must be one of {NODE_LAYOUTS}")
    if not (recipe_dir / "Dockerfile").is_file():
        raise HarnessError(f"stand-in recipe {recipe_dir}: no Dockerfile")
    return recipe_from_data(recipe_dir.name, recipe_dir, data)


def recipe_from_data(slug: str, recipe_dir: Path, data: dict, **extra) -> Recipe:
    """A Recipe from checked recipe.toml data; extra sets the family-only fields."""
    return Recipe(
        slug=slug,
        dir=recipe_dir,
        stands_in_for=data["stands_in_for"],
        tag=data["tag"],
        description=data["description"],
        suite=data["suite"],
        needs_npm_ca=bool(data["needs_npm_ca"]),
        mmdebstrap_variant=data["mmdebstrap_variant"],
        include=tuple(data.get("include", ())),
        node=data["node"],
        node_layout=data["node_layout"],
        npm=data.get("npm"),
        yarn=data.get("yarn"),
        mmdebstrap_hooks=tuple(data.get("mmdebstrap_hooks", ())),
        dpkg_path_exclude=tuple(data.get("dpkg_path_exclude", ())),
        dpkg_path_include=tuple(data.get("dpkg_path_include", ())),
        prune_openssl_archs=bool(data.get("prune_openssl_archs", False)),
        remove=tuple(data.get("remove", ())),
        overlay=data.get("overlay"),
        make_dirs=tuple(_dir_spec(d) for d in data.get("make_dirs", ())),
        generate_ca_bundle=bool(data.get("generate_ca_bundle", False)),
        busybox_applets=bool(data.get("busybox_applets", False)),
        forbid_paths=tuple(data.get("forbid_paths", ())),
        extra_labels=tuple(sorted((str(k), str(v)) for k, v in data.get("labels", {}).items())),
        real_size_bytes_approx=data.get("real_size_bytes_approx"),
        real_layer_count=data.get("real_layer_count"),
        **extra,
    )


def _dir_spec(entry: dict) -> DirSpec:
    return DirSpec(path=entry["path"].strip("/"), mode=int(str(entry.get("mode", "0755")), 8),
                   uid=int(entry.get("uid", 0)), gid=int(entry.get("gid", 0)))


def load_recipes(root: Path = RECIPES_DIR) -> dict[str, Recipe]:
    """Every recipe under root, keyed by the normalised reference it stands in for."""
    recipes: dict[str, Recipe] = {}
    for recipe_dir in sorted(p for p in root.iterdir() if (p / RECIPE_FILE).is_file()):
        recipe = load_recipe(recipe_dir)
        if recipe.ref in recipes:
            raise HarnessError(f"stand-in recipes {recipes[recipe.ref].slug} and {recipe.slug} "
                               f"both stand in for {recipe.ref}")
        recipes[recipe.ref] = recipe
    return recipes


def find_recipe(recipes: dict[str, Recipe], ref: str) -> Recipe | None:
    return recipes.get(normalize_ref(ref))


# --------------------------------------------------------------------------- reuse

def existing_standin(client: docker.DockerClient, recipe: Recipe) -> dict | None:
    """The image attrs of recipe.tag if it was built from this very recipe, else None."""
    try:
        attrs = client.api.inspect_image(recipe.tag)
    except ImageNotFound:
        return None
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    return attrs if labels.get(LABEL_HASH) == recipe.content_hash() else None


@dataclass
class StandinBuild:
    recipe_slug: str
    tag: str
    image_id: str
    seconds: float
    reused: bool
    ca_injected: bool
    node_version: str
    labels: dict = field(default_factory=dict)


def _from_attrs(recipe: Recipe, attrs: dict, seconds: float, reused: bool) -> StandinBuild:
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    return StandinBuild(recipe.slug, recipe.tag, attrs["Id"], seconds, reused,
                        labels.get(LABEL_CA) == "true", labels.get(LABEL_NODE, ""), dict(labels))


# --------------------------------------------------------------------------- npm tarballs

@dataclass(frozen=True)
class Packed:
    """A package tarball fetched with `npm pack`."""
    name: str
    version: str
    path: Path


class TarballCache:
    """npm tarballs fetched once per run: all four stand-ins need the same Node."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="harness-standin-npm-")
        self._dir = Path(self._tmp.name)
        self._packed: dict[str, Packed] = {}

    def get(self, spec: str, ref: str, log: Log = lambda line: None) -> Packed:
        """The tarball for spec, fetched on first use; ref names the stand-in in messages."""
        if spec not in self._packed:
            log(f"{ref}: npm pack {spec}")
            self._packed[spec] = npm_pack(spec, self._dir, f"stand-in {ref}")
        return self._packed[spec]

    def close(self) -> None:
        self._tmp.cleanup()

    def __enter__(self) -> TarballCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def npm_pack(spec: str, dest: Path, who: str) -> Packed:
    """Fetch one package tarball from the npm registry into dest."""
    npm = shutil.which("npm")
    if not npm:
        raise HarnessError(f"{who}: npm pack {spec} failed: no npm on PATH")
    out = _run([npm, "pack", spec, "--json", "--pack-destination", str(dest)],
               f"npm pack {spec}", who, cwd=dest, explain=_npm_json_error)
    try:
        info = json.loads(out)[0]
        return Packed(info["name"], info["version"], dest / info["filename"])
    except (ValueError, LookupError, TypeError):
        raise HarnessError(f"{who}: npm pack {spec} failed: unreadable --json output") from None


def _run(cmd: list[str], step: str, who: str, cwd: Path | None = None,
         explain: Callable[[subprocess.CompletedProcess], str | None] | None = None,
         env: dict[str, str] | None = None) -> str:
    """Run a command (argument list, no shell); a failure names the step and its last words."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                              env={**os.environ, **env} if env else None)
    except OSError as exc:
        raise HarnessError(f"{who}: {step} failed: {exc}") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        detail = (explain(proc) if explain else None) or _last_words(lines)
        raise HarnessError(f"{who}: {step} failed (exit {proc.returncode}): {detail}")
    return proc.stdout


def _npm_json_error(proc: subprocess.CompletedProcess) -> str | None:
    """npm --json reports a failure on stdout; its stderr ends with a log file path."""
    try:
        error = json.loads(proc.stdout)["error"]
        return f"{error.get('code', 'error')} {error.get('summary', '')}".strip()
    except (ValueError, LookupError, TypeError, AttributeError):
        return None


def _last_words(lines: list[str], limit: int = 300) -> str:
    """The last line, led by the first apt-style "E:" line when that says more (the cause)."""
    if not lines:
        return "no output"
    last = lines[-1]
    cause = next((ln for ln in lines if ln.startswith("E: ")), last)
    text = last if cause == last else f"{cause} (last: {last})"
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- rootfs

APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))


@dataclass(frozen=True)
class Mirrors:
    """The machine's Debian mirrors, as its apt sources name them."""
    archive: str | None = None  # serves <suite> and <suite>-updates
    security: str | None = None  # serves <suite>-security

    def sources(self, suite: str) -> list[str]:
        """One-line apt sources for `suite` on these mirrors: what mmdebstrap fetches from
        and writes into the image, so `apt-get` in a stand-in uses the machine's mirror."""
        out = []
        if self.archive:
            out += [f"deb {self.archive} {suite} main", f"deb {self.archive} {suite}-updates main"]
        if self.security:
            out.append(f"deb {self.security} {suite}-security main")
        return out


def _source_entries(text: str, deb822: bool) -> list[tuple[str, list[str]]]:
    """(URI, suites) of each `deb` entry of a sources file, one-line or deb822."""
    if not deb822:
        out = []
        for line in text.splitlines():
            words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
            if len(words) >= 3 and words[0] == "deb":
                out.append((words[1], [words[2]]))
        return out
    out = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
            out += [(uri, fields.get("suites", "").split()) for uri in fields.get("uris", "").split()]
    return out


def host_mirrors(paths: Iterable[Path] = APT_SOURCES) -> Mirrors:
    """The Debian archive and security mirrors of the machine's apt sources (a mirror that
    serves a Debian codename: `<codename>-security` for the security one)."""
    entries = []
    for path in paths:
        files = sorted(path.glob("*.list")) + sorted(path.glob("*.sources")) if path.is_dir() else [path]
        for file in files:
            try:
                entries += _source_entries(file.read_text(errors="replace"), file.suffix == ".sources")
            except OSError:
                continue
    archive = next((uri for uri, suites in entries
                    if any(re.fullmatch(r"[a-z]+(-updates)?", s) for s in suites)
                    and "debian" in uri), None)
    security = next((uri for uri, suites in entries
                     if any(s.endswith("-security") for s in suites) and "debian" in uri), None)
    return Mirrors(archive, security)


def mmdebstrap_command(recipe: Recipe, target: Path, mirrors: Mirrors | None = None) -> list[str]:
    """The mmdebstrap call, on the machine's Debian mirrors (`host_mirrors`) for the
    recipe's suite; with none found, mmdebstrap's own default."""
    cmd = ["mmdebstrap", f"--variant={recipe.mmdebstrap_variant}"]
    if recipe.include:
        cmd.append("--include=" + ",".join(recipe.include))
    cmd += [f"--hook-dir={MMDEBSTRAP_HOOKS / hook}" for hook in recipe.mmdebstrap_hooks]
    # Order matters to dpkg: includes must follow the excludes they carve out of.
    cmd += [f"--dpkgopt=path-exclude={p}" for p in recipe.dpkg_path_exclude]
    cmd += [f"--dpkgopt=path-include={p}" for p in recipe.dpkg_path_include]
    return cmd + [recipe.suite, str(target), *(mirrors or Mirrors()).sources(recipe.suite)]


def make_rootfs(recipe: Recipe, target: Path, log: Log) -> None:
    """mmdebstrap into a directory, then the recipe's fixups."""
    log(f"{recipe.ref}: mmdebstrap --variant={recipe.mmdebstrap_variant} "
        f"({len(recipe.include)} extra packages)")
    _run(mmdebstrap_command(recipe, target, host_mirrors()), "mmdebstrap", f"stand-in {recipe.ref}",
         env={"SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH)})
    fix_rootfs(recipe, target)


def fix_rootfs(recipe: Recipe, root: Path) -> None:
    """What mmdebstrap cannot do: trims, users, CA bundle, applets, checks. Order matters."""
    if recipe.busybox_at:
        _relocate_busybox(root, recipe.busybox_at, f"stand-in {recipe.ref}")
    _remove(root, HOST_LEAKS + recipe.remove)
    if recipe.overlay:
        shutil.copytree(recipe.dir / recipe.overlay, root, symlinks=True, dirs_exist_ok=True)
    for spec in recipe.make_dirs:
        _make_dir(root, spec)
    if recipe.generate_ca_bundle:
        _generate_ca_bundle(root)
    if recipe.busybox_applets:
        _install_busybox_applets(root, f"stand-in {recipe.ref}")
    present = [p for p in recipe.forbid_paths if os.path.lexists(root / p)]
    if present:
        raise HarnessError(f"stand-in {recipe.ref}: rootfs still has {', '.join(present)}")


def _inside(root: Path, path: Path) -> bool:
    """Whether path resolves inside root (absolute symlinks in a rootfs point at the host)."""
    return path.resolve().is_relative_to(root.resolve())


def _remove(root: Path, patterns: Iterable[str]) -> None:
    for pattern in patterns:
        for path in root.glob(pattern.strip("/")):
            if not _inside(root, path.parent):
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def _make_dir(root: Path, spec: DirSpec) -> None:
    path = root / spec.path
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, spec.uid, spec.gid)
    path.chmod(spec.mode)  # after chown, which may clear special bits


def _generate_ca_bundle(root: Path) -> None:
    """What update-ca-certificates would write: every shipped certificate, concatenated."""
    certs = sorted((root / "usr/share/ca-certificates").rglob("*.crt"))
    bundle = root / ROOTFS_CA_BUNDLE
    bundle.parent.mkdir(parents=True, exist_ok=True)
    with bundle.open("wb") as out:
        for cert in certs:
            data = cert.read_bytes()
            out.write(data if data.endswith(b"\n") else data + b"\n")
    bundle.chmod(0o644)


def _install_busybox_applets(root: Path, who: str) -> None:
    """`busybox --install -s`, done from outside: absolute symlinks to /bin/busybox."""
    busybox = root / "bin/busybox"
    if not busybox.is_file():
        raise HarnessError(f"{who}: busybox applets: no /bin/busybox in the rootfs")
    # The static binary runs on the host as is, and knows where each applet belongs.
    listing = _run([str(busybox), "--list-full"], "busybox --list-full", who)
    for rel in listing.split():
        link = root / rel
        if (Path(rel).name in SKIP_APPLETS or os.path.lexists(link)
                or not _inside(root, link.parent)):
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/bin/busybox")


def _relocate_busybox(root: Path, where: str, who: str) -> None:
    """As distroless :debug has it: /<where>/busybox with its applets beside it, nothing on PATH."""
    source = root / "bin/busybox"
    if not source.is_file():
        raise HarnessError(f"{who}: busybox at /{where}: no /bin/busybox in the rootfs")
    home = root / where
    home.mkdir(parents=True, exist_ok=True)
    shutil.move(source, home / "busybox")
    listing = _run([str(home / "busybox"), "--list"], "busybox --list", who)
    for name in sorted(set(listing.split()) - SKIP_APPLETS - {"busybox"}):
        (home / name).symlink_to("busybox")


def pack_rootfs(root: Path, dest: Path, who: str) -> None:
    """Tar the rootfs for ADD; /dev stays an empty directory (the engine provides it).

    Sorted names and clamped mtimes: the same packages give the same bytes, so the
    engine caches the ADD layer across tags of one suite.
    """
    _run(["tar", "--create", "--file", str(dest), "--directory", str(root),
          "--numeric-owner", "--sort=name", f"--mtime=@{SOURCE_DATE_EPOCH}", "--clamp-mtime",
          "--exclude=./dev/*", "."], "tar of the rootfs", who)


def rootfs_ca_bundle(root: Path) -> bytes | None:
    path = root / ROOTFS_CA_BUNDLE
    return path.read_bytes() if path.is_file() else None


# --------------------------------------------------------------------------- payload

def extract_package(tgz: Path, dest: Path, skip: Iterable[str] = ()) -> None:
    """Unpack an npm tarball's package/ into dest, leaving out the paths in skip."""
    skip = tuple(skip)
    with tarfile.open(tgz) as tf:
        members = []
        for member in tf.getmembers():
            _, _, rel = member.name.partition("/")
            if not rel or any(rel == s or rel.startswith(s + "/") for s in skip):
                continue
            member.name = rel
            members.append(member)
        tf.extractall(dest, members=members, filter="tar")


def lay_out_payload(recipe: Recipe, payload: Path, node: Packed | None, npm: Packed | None,
                    yarn: Packed | None, corepack: Packed | None = None) -> None:
    """payload/node and payload/yarn as they appear in the final filesystem, links included."""
    if node is None or recipe.node_layout == "none":
        return
    if recipe.node_layout == "distroless":
        # distroless ships the release tree at /nodejs without npm or corepack.
        extract_package(node.path, payload / "node/nodejs", skip=("package.json",))
    else:
        _lay_out_usr_local(payload / "node/usr/local", node, npm, corepack)
    if recipe.prune_openssl_archs:
        _prune_openssl_archs(payload / "node")
    if yarn:
        _lay_out_yarn(payload / "yarn", yarn)


def _lay_out_usr_local(prefix: Path, node: Packed, npm: Packed | None,
                       corepack: Packed | None = None) -> None:
    """What `tar -xJf node-v*-linux-x64.tar.xz -C /usr/local --strip-components=1` gives."""
    extract_package(node.path, prefix, skip=("package.json",))
    bin_dir = prefix / "bin"
    (bin_dir / "nodejs").symlink_to("/usr/local/bin/node")
    if npm:
        extract_package(npm.path, prefix / "lib/node_modules/npm")
        (bin_dir / "npm").symlink_to("../lib/node_modules/npm/bin/npm-cli.js")
        (bin_dir / "npx").symlink_to("../lib/node_modules/npm/bin/npx-cli.js")
    if corepack:  # the release tarballs of Node <= 24 carry it beside npm
        extract_package(corepack.path, prefix / "lib/node_modules/corepack")
        (bin_dir / "corepack").symlink_to("../lib/node_modules/corepack/dist/corepack.js")


def _lay_out_yarn(root: Path, yarn: Packed) -> None:
    home = f"opt/yarn-v{yarn.version}"
    extract_package(yarn.path, root / home)
    bin_dir = root / "usr/local/bin"
    bin_dir.mkdir(parents=True)
    for name in ("yarn", "yarnpkg"):
        (bin_dir / name).symlink_to(f"/{home}/bin/{name}")


def _prune_openssl_archs(node_root: Path) -> None:
    """As node:*-slim and -alpine do: drop OpenSSL headers of other architectures."""
    for archs in node_root.glob("**/include/node/openssl/archs"):
        for arch in archs.iterdir():
            if arch.name != OPENSSL_ARCH:
                shutil.rmtree(arch)


# --------------------------------------------------------------------------- context

@dataclass
class PreparedContext:
    dir: Path
    dockerfile_text: str
    build_args: dict[str, str]
    node_version: str  # "v20.19.5"; "" for a stand-in without Node.js
    npm_version: str | None
    yarn_version: str | None
    ca_injected: bool
    corepack_version: str | None = None


def prepare_context(recipe: Recipe, workdir: Path, tarballs: TarballCache,
                    log: Log = lambda line: None) -> PreparedContext:
    """recipe files + rootfs.tar + payload/ in workdir/context, ready to build."""
    who = f"stand-in {recipe.ref}"
    context = workdir / "context"
    shutil.copytree(recipe.dir, context, symlinks=True)
    for script in context.glob("*.sh"):
        script.chmod(0o755)  # a checkout or a wheel may have lost the x bit
    # Fetched before mmdebstrap: a version npm does not carry fails in seconds.
    node, npm, yarn, corepack = (
        tarballs.get(spec, recipe.ref, log) if spec else None
        for spec in (recipe.node if recipe.node_layout != "none" else None,
                     recipe.npm, recipe.yarn, recipe.corepack))

    staging = workdir / "rootfs"
    make_rootfs(recipe, staging, log)
    image_bundle = rootfs_ca_bundle(staging)
    log(f"{recipe.ref}: packing rootfs.tar")
    pack_rootfs(staging, context / "rootfs.tar", who)
    shutil.rmtree(staging)  # a full rootfs is ~1 GB; the tar is all the build needs

    lay_out_payload(recipe, context / "payload", node, npm, yarn, corepack)
    text = (context / "Dockerfile").read_text()
    if recipe.family:
        text = render_dockerfile(text, recipe.flags)
        (context / "Dockerfile").write_text(text)
    ca_injected = recipe.needs_npm_ca and _host_ca_differs(image_bundle)
    if ca_injected:
        text = _inject_host_ca(context, text)
    args = {"NODE_VERSION": node.version if node else "", "YARN_VERSION": yarn.version if yarn else ""}
    declared = dockerfile_mod.parse(text).declared_args
    return PreparedContext(
        dir=context,
        dockerfile_text=text,
        build_args={k: v for k, v in args.items() if k in declared and v},
        node_version=f"v{node.version}" if node else "",
        npm_version=npm.version if npm else None,
        yarn_version=yarn.version if yarn else None,
        ca_injected=ca_injected,
        corepack_version=corepack.version if corepack else None,
    )


def render_dockerfile(text: str, flags: Iterable[str]) -> str:
    """Keep each "# IF <flag>" ... "# END <flag>" block whose flag is set; drop the markers."""
    flags = set(flags)
    kept: list[str] = []
    skipping: str | None = None
    for line in text.splitlines():
        start, end = _IF.match(line), _END.match(line)
        if skipping:
            skipping = None if end and end.group(1) == skipping else skipping
        elif start:
            skipping = None if start.group(1) in flags else start.group(1)
        elif not end:
            kept.append(line)
    if skipping:
        raise HarnessError(f"stand-in Dockerfile: '# IF {skipping}' has no '# END {skipping}'")
    return "\n".join(kept) + "\n"


def _host_ca_differs(image_bundle: bytes | None) -> bool:
    """Only a host bundle the image lacks (e.g. an intercepting proxy's CA) is worth adding."""
    try:
        host = HOST_CA_BUNDLE.read_bytes()
    except OSError:
        return False
    return host != image_bundle


def _inject_host_ca(context: Path, text: str) -> str:
    """Copy the host bundle in and make Node trust it, on a copy of the Dockerfile."""
    shutil.copyfile(HOST_CA_BUNDLE, context / CONTEXT_CA_NAME)
    text = text.rstrip("\n") + (
        "\n\n# Added by harness/bases/standins.py: the host's CA bundle, so npm trusts the proxy.\n"
        f"COPY {CONTEXT_CA_NAME} {IMAGE_CA_PATH}\n"
        f"ENV NODE_EXTRA_CA_CERTS={IMAGE_CA_PATH}\n")
    (context / "Dockerfile").write_text(text)
    return text


def standin_labels(recipe: Recipe, prepared: PreparedContext) -> dict[str, str]:
    labels = {
        "org.opencontainers.image.title": f"harness stand-in for {recipe.stands_in_for}",
        "org.opencontainers.image.description": describe(recipe, prepared.node_version),
        LABEL_FOR: recipe.stands_in_for,
        LABEL_HASH: recipe.content_hash(),
        LABEL_SUITE: recipe.suite,
        LABEL_CA: "true" if prepared.ca_injected else "false",
    }
    if prepared.node_version:
        labels[LABEL_NODE] = prepared.node_version
    if prepared.corepack_version:
        labels[LABEL_COREPACK] = prepared.corepack_version
    if prepared.npm_version:
        labels[LABEL_NPM] = prepared.npm_version
    if prepared.yarn_version:
        labels[LABEL_YARN] = prepared.yarn_version
    labels.update(dict(recipe.extra_labels))
    return labels


def describe(recipe: Recipe, node_version: str) -> str:
    """The recipe's description with the exact Node.js version a family recipe leaves open."""
    return recipe.description.replace("{node_version}", node_version or "(unknown version)")


# --------------------------------------------------------------------------- build

def ensure_standin(client: docker.DockerClient, recipe: Recipe, *, rebuild: bool = False,
                   log: Log = lambda line: None,
                   tarballs: TarballCache | None = None) -> StandinBuild:
    """The stand-in image for recipe: reused when its label hash matches, else built.

    Pass one TarballCache to several calls to fetch the npm tarballs once.
    """
    start = time.perf_counter()
    previous = _image_id(client, recipe.tag)
    if not rebuild:
        attrs = existing_standin(client, recipe)
        if attrs:
            log(f"{recipe.ref}: reusing {recipe.tag}")
            return _from_attrs(recipe, attrs, time.perf_counter() - start, reused=True)
    owned = tarballs is None
    tarballs = tarballs or TarballCache()
    try:
        with tempfile.TemporaryDirectory(prefix=f"harness-standin-{recipe.slug}-") as tmp:
            prepared = prepare_context(recipe, Path(tmp), tarballs, log)
            labels = standin_labels(recipe, prepared)
            image_id = _build(client, recipe, prepared, labels, log)
    finally:
        if owned:
            tarballs.close()
    if previous and previous != image_id:
        _drop_stale(client, previous, recipe, log)
    return StandinBuild(recipe.slug, recipe.tag, image_id, time.perf_counter() - start,
                        False, prepared.ca_injected, prepared.node_version, labels)


def ensure_standins(client: docker.DockerClient, recipes: Iterable[Recipe], *,
                    rebuild: bool = False, log: Log = lambda line: None) -> list[StandinBuild]:
    """ensure_standin for several recipes, sharing the npm tarballs."""
    with TarballCache() as tarballs:
        return [ensure_standin(client, r, rebuild=rebuild, log=log, tarballs=tarballs)
                for r in recipes]


def _build(client: docker.DockerClient, recipe: Recipe, prepared: PreparedContext,
           labels: dict[str, str], log: Log) -> str:
    """Build and tag through the SDK; the engine tags only on success."""
    log(f"{recipe.ref}: building {recipe.tag}")
    context = pack_context(prepared.dir, prepared.dockerfile_text, "Dockerfile")
    try:
        outcome = build_image(client, context, tag=recipe.tag, target=None,
                              build_args=prepared.build_args, nocache=False, labels=labels,
                              on_line=lambda line: log(f"{recipe.ref}: {line}"))
    except BuildFailed as exc:
        step = _last_step(exc.log_tail)
        raise BuildFailed(f"stand-in {recipe.ref}: docker build failed at {step}: {exc}",
                          exc.log_tail) from None
    except APIError as exc:
        raise HarnessError(f"stand-in {recipe.ref}: docker build failed: "
                           f"{exc.explanation or exc}") from None
    finally:
        context.close()
    return outcome.image_id


def _last_step(tail: list[str]) -> str:
    steps = [m.group(1) for m in map(_STEP.match, tail) if m]
    return f"'{steps[-1]}'" if steps else "the first step"


def _image_id(client: docker.DockerClient, tag: str) -> str | None:
    try:
        return client.api.inspect_image(tag)["Id"]
    except ImageNotFound:
        return None


def _drop_stale(client: docker.DockerClient, image_id: str, recipe: Recipe, log: Log) -> None:
    """Remove the stand-in a rebuild replaced, unless something still uses it."""
    try:
        client.api.remove_image(image_id)
        log(f"{recipe.ref}: removed the replaced stand-in {image_id[:19]}")
    except APIError:
        log(f"{recipe.ref}: kept the replaced stand-in {image_id[:19]} (still in use)")
