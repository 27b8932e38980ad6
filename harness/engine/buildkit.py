"""A timed build through BuildKit, driven by the docker CLI (the SDK speaks only the classic builder).

Same contract as `build.build_image`: the packed context goes in, a BuildOutcome comes out,
a failure is a one-line BuildFailed with the log tail.

How the CLI is run (see `find_cli`):
- `docker buildx build --load` when a docker CLI on PATH has the buildx plugin; else a
  standalone `docker-buildx build --load` (buildx runs without a docker CLI when called by
  its own name; scripts/engines.sh unpacks Debian trixie's into its prefix); else
  `docker build` with DOCKER_BUILDKIT=1 on a CLI older than 23.0 (those have BuildKit built
  in; 23.0 and later refuse BuildKit without buildx; not on the containerd image store,
  where such a CLI's `load remote build context` fails). `HARNESS_DOCKER_CLI` names one
  CLI (or docker-buildx) to use instead of searching. The environment is passed on, with
  DOCKER_HOST set to the target engine's host when one is given. buildx 0.10 and later
  get `--provenance=false`: no attestation manifest, the image alone, as classic builds it.
- Podman serves no BuildKit (its API builds with buildah): a one-line reason, no build.
- The context is the packed tar, sent on stdin (`-`), with `-f` naming the Dockerfile
  inside the tar: the same tar the classic builder receives, nothing extracted, wrapped
  in a level-0 gzip stream so that the CLI recognises it (see `_feed`).
- `--progress=plain` is parsed for steps, cached steps and errors; buildx's
  `--metadata-file` (`containerimage.digest`), else `--iidfile`, gives the image id (never
  guessed from a tag): on the containerd image store the iidfile holds the config digest,
  not the id the engine shows.
- No shell: an argument list. The CLI runs in a process group of its own, so a timeout
  or an interrupt stops it and its plugin child (buildx) by that group's id.

What the time covers: from the CLI process's start to its exit, i.e. the CLI's start-up,
sending the context, the build and exporting the image into the engine. Packing the
context is excluded, as with the classic builder.

BuildKit makes no intermediate images, so `made` stays empty (it is accepted so both
builders can be called alike).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import IO

from harness.engine.build import LOG_TAIL, BuildOutcome, Context
from harness.engine.product import PODMAN_REASON, product_of
from harness.errors import BuildFailed, HarnessError, one_line

CLI_ENV = "HARNESS_DOCKER_CLI"
MIN_ENGINE_API = (1, 39)  # Docker 18.09: the first engine whose BuildKit a CLI can drive
FIRST_CLI_WITHOUT_BUILTIN_BUILDKIT = 23  # 23.0 needs buildx for BuildKit
PROBE_TIMEOUT = 30.0

_VERTEX = re.compile(r"^#(\d+) (.*)$")
_STEP = re.compile(r"^\[(?:(?P<stage>\S+) )?(?P<k>\d+)/(?P<n>\d+)\] (?P<instr>.+)$")
_DIGEST_LINE = re.compile(r"^sha256:[0-9a-f]{64}$")
_ERROR_PREFIX = re.compile(r"^(?:ERROR|error):\s*(.*)$")


# --- the progress stream -----------------------------------------------------------------

@dataclass
class Step:
    vertex: int
    stage: str | None
    index: int  # k of [stage k/n]
    count: int  # n of [stage k/n]
    instruction: str

    @property
    def label(self) -> str:
        where = f"{self.stage} {self.index}/{self.count}" if self.stage else f"{self.index}/{self.count}"
        return f"[{where}] {self.instruction}"

    @property
    def counts(self) -> bool:
        """A step of the Dockerfile's own: FROM is resolved, never built (as with classic)."""
        return self.instruction.split(" ", 1)[0].upper() != "FROM"


@dataclass
class ProgressParser:
    """Reads `--progress=plain` output line by line.

    Lines look like `#7 [builder 2/5] RUN npm ci` (a vertex's name: a step when it has
    `[stage k/n]`, internal work such as `[internal] load ...` or `exporting to image`
    otherwise), `#7 CACHED`, `#7 ERROR: <message>`, `#7 0.512 <output>`, `#7 DONE 1.2s`.
    A vertex's name line repeats when its output resumes after another vertex's, so steps
    are counted by vertex number. BuildKit merges identical steps of different stages
    (two stages starting FROM the same image with the same WORKDIR): one vertex, one step.
    """
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_TAIL))
    names: dict[int, str] = field(default_factory=dict)  # every vertex's first name line
    steps: dict[int, Step] = field(default_factory=dict)
    cached: set[int] = field(default_factory=set)
    vertex_errors: dict[int, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # ERROR:/error: lines outside vertices
    last_plain: str | None = None  # the last line outside any vertex (20.10 prints its error so)

    def feed(self, line: str) -> str | None:
        """Take one line; return the step's label when the line announces a new step."""
        line = line.rstrip()
        if not line.strip():
            return None
        m = _VERTEX.match(line)
        if not m:
            self.tail.append(line)
            e = _ERROR_PREFIX.match(line.strip())
            if e and e.group(1):
                self.errors.append(e.group(1))
            elif not _decoration(line):
                self.last_plain = line.strip()
            return None
        vertex, rest = int(m.group(1)), m.group(2).strip()
        if _DIGEST_LINE.match(rest):
            return None  # the vertex digest line of older BuildKit: noise in a tail
        self.tail.append(line)
        if rest == "CACHED":
            self.cached.add(vertex)
            return None
        if rest.startswith("ERROR"):
            self.vertex_errors.setdefault(vertex, rest[len("ERROR"):].lstrip(": ").strip())
            return None
        if vertex in self.names:
            return None
        self.names[vertex] = rest
        s = _STEP.match(rest)
        if not s:
            return None
        step = Step(vertex, s.group("stage"), int(s.group("k")), int(s.group("n")), s.group("instr"))
        self.steps[vertex] = step
        return step.label

    @property
    def steps_total(self) -> int:
        return sum(1 for s in self.steps.values() if s.counts)

    @property
    def steps_cached(self) -> int:
        return sum(1 for v, s in self.steps.items() if s.counts and v in self.cached)

    def failure(self) -> str:
        """One line: the failing step (or internal work) and the error."""
        if self.vertex_errors:  # the first one is the cause; the others, if any, followed it
            failed, error = next(iter(self.vertex_errors.items()))
            step = self.steps.get(failed)
            what = step.label if step else self.names.get(failed, f"#{failed}")
            return one_line(f"{what}: {error or (self.errors[-1] if self.errors else 'failed')}")
        return one_line((self.errors[-1] if self.errors else None) or self.last_plain
                         or "the docker CLI failed without a message")


def _decoration(line: str) -> bool:
    """The boxes and Dockerfile excerpts BuildKit prints around an error, not an error."""
    s = line.strip()
    return (s.startswith(("------", ">", "Dockerfile:", "WARNING:", "View build details"))
            or bool(re.match(r"^\d+ \|", s)))


# --- finding a CLI that can drive BuildKit -----------------------------------------------

CACHE_ENV = "HARNESS_CACHE"
DEFAULT_CACHE = "/var/cache/harness"
BUILDX = "docker-buildx"
# Where scripts/engines.sh unpacks Debian trixie's Docker 26, docker-buildx included.
PREFIX_BUILDX = os.path.join("docker26", "usr", "libexec", "docker", "cli-plugins", BUILDX)
# The directories the docker CLI looks for plugins in, besides $DOCKER_CONFIG/cli-plugins.
PLUGIN_DIRS = ("/usr/local/lib/docker/cli-plugins", "/usr/local/libexec/docker/cli-plugins",
               "/usr/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins")
FIRST_BUILDX_WITH_ATTESTATIONS = (0, 10)  # --provenance; buildx then adds one by default
FIRST_BUILDX_WITH_METADATA = (0, 6)  # --metadata-file


class _EngineRefuses(HarnessError):
    """Why the engine itself cannot serve BuildKit: no other CLI would do better."""


@dataclass(frozen=True)
class Cli:
    path: str
    buildx: bool  # buildx drives the build (`build --load`); else `DOCKER_BUILDKIT=1 docker build`
    version: str  # the CLI's own version (buildx's, for a standalone docker-buildx)
    engine_api: str  # the engine's API version, as the probe saw it
    standalone: bool = False  # docker-buildx run on its own: `docker-buildx build --load`
    host: str | None = None  # the DOCKER_HOST the CLI is given; None: the environment's
    buildx_version: str = ""  # buildx's version (the plugin's, or the standalone one's)

    @property
    def kind(self) -> str:
        if self.standalone:
            return f"docker-buildx {self.version}"
        if self.buildx:
            return f"docker CLI {self.version} with buildx {self.buildx_version or '?'}"
        return f"docker CLI {self.version} (BuildKit built in)"

    def base_args(self) -> list[str]:
        if not self.buildx:
            return [self.path, "build"]
        args = [self.path, "build", "--load"] if self.standalone else [self.path, "buildx", "build", "--load"]
        if self.buildx_at_least(FIRST_BUILDX_WITH_ATTESTATIONS):
            # No provenance attestation: on the containerd image store it would make the image
            # an index with an attestation manifest, which the classic builder never adds.
            args.append("--provenance=false")
        return args

    def buildx_at_least(self, version: tuple[int, int]) -> bool:
        return self.buildx and _version_tuple(self.buildx_version or self.version) >= version

    @property
    def metadata(self) -> bool:
        """Whether the CLI writes `--metadata-file`, whose `containerimage.digest` is the
        image's id on every store: the config digest on a graph driver (as --iidfile says),
        the manifest's digest on the containerd image store (where --iidfile still gives
        the config digest, which is not the id `docker image inspect` shows)."""
        return self.buildx_at_least(FIRST_BUILDX_WITH_METADATA)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("DOCKER_BUILDKIT", None)
        if self.host:
            env["DOCKER_HOST"] = self.host
            env.pop("DOCKER_CONTEXT", None)  # DOCKER_HOST alone names the engine
        if not self.buildx:
            env["DOCKER_BUILDKIT"] = "1"
        return env


def available(host: str | None = None) -> str | None:
    """Why BuildKit cannot be used on the engine at `host` (a DOCKER_HOST URL; None: the
    environment's), in one line, or None when it can."""
    try:
        find_cli(host)
    except HarnessError as exc:
        return str(exc)
    return None


def find_cli(host: str | None = None) -> Cli:
    """The CLI to drive the BuildKit of the engine at `host` (None: DOCKER_HOST or the
    default socket) with; HarnessError (one line) when there is none.

    Searched, in this order of preference: a docker CLI on PATH with the buildx plugin; a
    standalone docker-buildx (on PATH, in the prefix scripts/engines.sh unpacks trixie's
    Docker into, in the docker CLI's plugin directories); a docker CLI older than 23.0
    (BuildKit built in). `HARNESS_DOCKER_CLI` names the one to use instead (a docker CLI,
    or a docker-buildx). The first one that reaches the engine's own BuildKit wins."""
    return _find_cli(os.environ.get(CLI_ENV) or None, os.environ.get("PATH", ""),
                     host or None, os.environ.get("DOCKER_HOST"), _buildx_places())


def _buildx_places() -> tuple[str, ...]:
    cache = os.environ.get(CACHE_ENV) or DEFAULT_CACHE
    config = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return (os.path.join(cache, PREFIX_BUILDX), os.path.join(config, "cli-plugins", BUILDX),
            *(os.path.join(d, BUILDX) for d in PLUGIN_DIRS))


@lru_cache(maxsize=16)
def _find_cli(explicit: str | None, path_env: str, host: str | None, env_host: str | None,
              places: tuple[str, ...]) -> Cli:
    del env_host  # a key of the cache only: the CLI reads DOCKER_HOST from the environment
    if explicit:
        found = shutil.which(explicit, path=path_env)
        if not found:
            raise HarnessError(f"{CLI_ENV}={explicit}: no such executable")
        candidates = [(found, os.path.basename(found).startswith(BUILDX))]
    else:
        candidates = [(p, False) for p in _all_on_path("docker", path_env)]
        candidates += [(p, True) for p in _unique(_all_on_path(BUILDX, path_env)
                                                  + [p for p in places if _executable(p)])]
        if not candidates:
            raise HarnessError("no docker CLI on PATH and no docker-buildx (Debian: apt-get "
                               "install docker.io; scripts/engines.sh install docker26 "
                               "unpacks trixie's docker-buildx)")
    problems: list[str] = []
    usable: list[tuple[int, Cli]] = []  # (preference, CLI without its engine API yet)
    for path, standalone in candidates:
        if standalone:
            version = _buildx_version([path, "version"])
            if version is None:
                problems.append(f"{path} does not run")
            else:
                usable.append((1, Cli(path, True, version, "", standalone=True, host=host,
                                      buildx_version=version)))
            continue
        version = _cli_version(path)
        if version is None:
            problems.append(f"{path} does not run")
            continue
        plugin = _buildx_version([path, "buildx", "version"])
        if plugin is not None:
            usable.append((0, Cli(path, True, version, "", host=host, buildx_version=plugin)))
        elif _major(version) < FIRST_CLI_WITHOUT_BUILTIN_BUILDKIT:
            usable.append((2, Cli(path, False, version, "", host=host)))
        else:
            problems.append(f"docker CLI {version} at {path} has no buildx plugin, which "
                            f"BuildKit needs since CLI 23.0")
    if not usable:
        raise HarnessError("; ".join(problems) + " (install the buildx plugin, or docker.io "
                           "20.10 whose CLI has BuildKit built in)")
    usable.sort(key=lambda u: u[0])  # stable: PATH order within a kind
    failures: list[str] = []
    for _, cli in usable:
        try:
            return _probe(cli)
        except _EngineRefuses as exc:
            raise HarnessError(str(exc)) from None
        except HarnessError as exc:
            failures.append(str(exc))
    raise HarnessError(one_line("; ".join(dict.fromkeys(failures))))


def _unique(paths: list[str]) -> list[str]:
    seen, out = set(), []
    for p in paths:
        real = os.path.realpath(p)
        if real not in seen:
            seen.add(real)
            out.append(p)
    return out


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _all_on_path(name: str, path_env: str) -> list[str]:
    return _unique([p for p in (os.path.join(d or ".", name) for d in path_env.split(os.pathsep))
                    if _executable(p)])


def _output(args: list[str], env=None) -> str | None:
    """What a probe printed on stdout, or None when it failed."""
    try:
        out = subprocess.run(args, check=False, env=env, stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=PROBE_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def _cli_version(path: str) -> str | None:
    m = re.search(r"version ([^\s,]+)", _output([path, "--version"]) or "", re.IGNORECASE)
    return m.group(1) if m else None


def _buildx_version(args: list[str]) -> str | None:
    """buildx's version from `docker-buildx version` or `docker buildx version`
    (`github.com/docker/buildx 0.13.1+ds1 <revision>`); None when it does not run.
    A buildx that prints no version it can be read from counts as present."""
    out = _output(args)
    if out is None:
        return None
    m = re.search(r"buildx\s+v?(\d[^\s]*)", out)
    return m.group(1) if m else "unknown"


def _major(version: str) -> int:
    m = re.match(r"(\d+)", version)
    return int(m.group(1)) if m else 0


def _version_tuple(version: str) -> tuple[int, ...]:
    m = re.match(r"v?(\d+)(?:\.(\d+))?", version or "")
    return (int(m.group(1)), int(m.group(2) or 0)) if m else (0, 0)


def _at(cli: Cli) -> str:
    host = cli.host or os.environ.get("DOCKER_HOST")
    return f" at DOCKER_HOST={host}" if host else ""


def _check_engine(api: str, product: str) -> None:
    """The engine's own verdict: raise _EngineRefuses when it cannot serve BuildKit."""
    if product == "Podman":
        raise _EngineRefuses(PODMAN_REASON)
    if tuple(int(x) for x in api.split(".")) < MIN_ENGINE_API:
        raise _EngineRefuses(f"the engine's API {api} is too old for BuildKit "
                             f"(needs {'.'.join(map(str, MIN_ENGINE_API))}, Docker 18.09)")


def _probe(cli: Cli) -> Cli:
    """The CLI with the engine's API version, once the engine answered it and can serve
    BuildKit; HarnessError (one line) otherwise."""
    api = _probe_standalone(cli) if cli.standalone else _probe_docker_cli(cli)
    return Cli(cli.path, cli.buildx, cli.version, api, cli.standalone, cli.host, cli.buildx_version)


def _probe_docker_cli(cli: Cli) -> str:
    """`docker version`: the engine's API version and components, as this CLI sees them."""
    fmt = "{{.Server.APIVersion}} {{range .Server.Components}}{{.Name}};{{end}}"
    try:
        out = subprocess.run([cli.path, "version", "--format", fmt],
                             check=False, env=cli.env(), stdin=subprocess.DEVNULL, capture_output=True,
                             text=True, timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise HarnessError(f"the engine did not answer {cli.path} within {PROBE_TIMEOUT:g} s") from None
    except OSError as exc:
        raise HarnessError(f"{cli.path} does not run ({exc.strerror or exc})") from None
    api, _, components = out.stdout.strip().partition(" ")
    if out.returncode != 0 or not re.fullmatch(r"\d+\.\d+", api):
        why = one_line(out.stderr or out.stdout or "no answer", 200)
        raise HarnessError(f"no engine answers {cli.path}{_at(cli)} ({why})")
    _check_engine(api, "Podman" if "Podman Engine" in components.split(";") else "Docker")
    if not cli.buildx and _containerd_store(cli):
        raise HarnessError(f"{cli.kind} cannot send a build context to the containerd image "
                           f"store's BuildKit{_at(cli)} (its `load remote build context` "
                           f"fails there); it needs buildx")
    return api


def _containerd_store(cli: Cli) -> bool:
    """Whether the engine keeps images in the containerd image store (`docker info`)."""
    out = _output([cli.path, "info", "--format", "{{json .DriverStatus}}"], env=cli.env())
    return out is not None and "io.containerd.snapshotter.v1" in out


def _probe_standalone(cli: Cli) -> str:
    """A standalone docker-buildx: the engine's version through the SDK, then `docker-buildx
    inspect`, which must find the engine's own BuildKit (the `docker` driver): elsewhere
    buildx would start a BuildKit container of its own, which is not the engine's builder."""
    from harness.engine import client as engine_client
    try:
        sdk = engine_client.open_client(cli.host, timeout=int(PROBE_TIMEOUT))
        try:
            version = sdk.version()
        finally:
            sdk.close()
    except engine_client.ENGINE_ERRORS as exc:
        raise HarnessError(f"no engine answers {cli.path}{_at(cli)} "
                           f"({engine_client.first_line(exc)})") from None
    api = str(version.get("ApiVersion") or "")
    if not re.fullmatch(r"\d+\.\d+", api):
        raise HarnessError(f"the engine{_at(cli)} gave no API version")
    _check_engine(api, product_of(version))
    try:
        out = subprocess.run([cli.path, "inspect"], check=False, env=cli.env(), stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise HarnessError(f"{cli.path} inspect did not answer within {PROBE_TIMEOUT:g} s") from None
    except OSError as exc:
        raise HarnessError(f"{cli.path} does not run ({exc.strerror or exc})") from None
    fields = dict(re.findall(r"^(Driver|Status):\s*(\S+)", out.stdout, re.MULTILINE))
    if out.returncode != 0:
        raise HarnessError(f"{cli.path} inspect failed{_at(cli)} "
                           f"({one_line(out.stderr or out.stdout or 'no message', 200)})")
    if fields.get("Driver") != "docker" or fields.get("Status") != "running":
        raise _EngineRefuses(f"the engine{_at(cli)} serves no BuildKit of its own ({BUILDX} "
                             f"found driver {fields.get('Driver', '?')}, status "
                             f"{fields.get('Status', '?')})")
    return api


# --- the build ---------------------------------------------------------------------------

# Names the CLI itself reads from its environment: such build args go on the command line.
_RESERVED_ENV = re.compile(r"^(PATH|HOME|USER|TMPDIR|DOCKER_.*|BUILDX_.*|BUILDKIT_.*|HTTPS?_PROXY|NO_PROXY)$",
                           re.IGNORECASE)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def command(cli: Cli, context: Context, *, tag: str | None, target: str | None,
            build_args: dict[str, str], nocache: bool, labels: dict[str, str] | None,
            iidfile: str, metadata_file: str | None = None) -> tuple[list[str], dict[str, str]]:
    """The argument list and environment of one build.

    A build arg's value travels in the CLI's environment (`--build-arg NAME` reads it from
    there), so no secret shows in the process list; names the CLI reads itself go inline."""
    env = cli.env()
    args = [*cli.base_args(), "--progress=plain", "--iidfile", iidfile]
    if metadata_file and cli.metadata:
        args += ["--metadata-file", metadata_file]
    args += ["-f", context.dockerfile_name]
    if tag:
        args += ["-t", tag]
    if target:
        args += ["--target", target]
    for key, value in (build_args or {}).items():
        if _ENV_NAME.match(key) and not _RESERVED_ENV.match(key):
            env[key] = value
            args += ["--build-arg", key]
        else:
            args += ["--build-arg", f"{key}={value}"]
    for key, value in (labels or {}).items():
        args += ["--label", f"{key}={value}"]
    if nocache:
        args.append("--no-cache")
    args.append("-")
    return args, env


def build_image_buildkit(
    context: Context,
    *,
    tag: str | None,
    target: str | None,
    build_args: dict[str, str],
    nocache: bool,
    labels: dict[str, str] | None = None,
    on_line: Callable[[str], None] = lambda line: None,
    timeout: float | None = None,
    made: list[str] | None = None,
    host: str | None = None,
) -> BuildOutcome:
    """Build and time one image with BuildKit on the engine at `host` (a DOCKER_HOST URL;
    None: the environment's); raise BuildFailed with the error and log tail."""
    try:
        cli = find_cli(host)
    except HarnessError as exc:
        raise BuildFailed(f"BuildKit unavailable: {exc}") from None
    parser = ProgressParser()
    with tempfile.TemporaryDirectory(prefix="harness-bk-") as tmp:
        iidfile = os.path.join(tmp, "iid")
        metadata_file = os.path.join(tmp, "metadata.json")
        args, env = command(cli, context, tag=tag, target=target, build_args=build_args,
                            nocache=nocache, labels=labels, iidfile=iidfile,
                            metadata_file=metadata_file)
        context.fileobj.seek(0)
        expired = threading.Event()
        start = time.perf_counter()
        proc = subprocess.Popen(args, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        feeder = threading.Thread(target=_feed, args=(context.fileobj, proc.stdin), daemon=True)
        feeder.start()
        timer = None
        if timeout:
            timer = threading.Timer(timeout, _expire, args=(proc, expired))
            timer.daemon = True
            timer.start()
        try:
            for raw in proc.stdout:
                for line in raw.decode("utf-8", "replace").splitlines():
                    label = parser.feed(line)
                    if label:
                        on_line(label)
            code = proc.wait()
            seconds = time.perf_counter() - start
        except BaseException:  # KeyboardInterrupt above all: stop the CLI, wait, re-raise
            _stop(proc)
            raise
        finally:
            if timer is not None:
                timer.cancel()
            proc.stdout.close()
            feeder.join(timeout=5.0)
        tail = list(parser.tail)
        if expired.is_set():
            raise BuildFailed(f"timed out after {timeout:g} s (--timeout)", tail)
        if code != 0:
            raise BuildFailed(parser.failure(), tail)
        image_id = _image_id(iidfile, metadata_file)
    if not image_id.startswith("sha256:"):
        raise BuildFailed("BuildKit wrote no image id (--iidfile)", tail)
    return BuildOutcome(image_id, seconds, parser.steps_total, parser.steps_cached, tail, [])


def _image_id(iidfile: str, metadata_file: str) -> str:
    """The image's id as the engine names it: the metadata file's `containerimage.digest`
    when buildx wrote one (see Cli.metadata), else the --iidfile's; "" when neither says."""
    try:
        with open(metadata_file) as fh:
            digest = json.load(fh).get("containerimage.digest")
        if isinstance(digest, str) and re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            return digest
    except (OSError, ValueError, AttributeError):
        pass
    try:
        with open(iidfile) as fh:
            return fh.read().strip()
    except OSError:
        return ""


def _feed(src: IO[bytes], dst: IO[bytes]) -> None:
    """Send the context tar to the CLI's stdin, wrapped in gzip at level 0.

    The CLI tells a tar on stdin from a Dockerfile by parsing its first 512 bytes as a
    tar header; Python's tar starts with a PAX header whose records follow in the next
    block, so the CLI would take the context for a Dockerfile ("ambiguous Dockerfile
    source"). A gzip stream is recognised by its magic bytes, and level 0 stores the
    tar's bytes unchanged (a CRC and a few bytes of framing per block); the engine
    unpacks it. A CLI that stopped reading ends the feed."""
    try:
        with gzip.GzipFile(fileobj=dst, mode="wb", compresslevel=0, mtime=0) as gz:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                gz.write(chunk)
    except (BrokenPipeError, OSError, ValueError):
        pass
    finally:
        try:
            dst.close()
        except (BrokenPipeError, OSError):
            pass


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    """Signal the CLI's own process group (its id is the CLI's pid), falling back to the CLI."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError, OSError):
        try:
            proc.send_signal(sig)
        except OSError:
            pass


def _expire(proc: subprocess.Popen, expired: threading.Event) -> None:
    if proc.poll() is None:
        expired.set()
        _signal_group(proc, signal.SIGKILL)


def _stop(proc: subprocess.Popen, patience: float = 10.0) -> None:
    """Terminate the CLI (the engine cancels the build when its session ends), then wait."""
    if proc.poll() is not None:
        return
    _signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(timeout=patience)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGKILL)
        proc.wait()
