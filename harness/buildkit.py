"""A timed build through BuildKit, driven by the docker CLI (the SDK speaks only the classic builder).

Same contract as `build.build_image`: the packed context goes in, a BuildOutcome comes out,
a failure is a one-line BuildFailed with the log tail.

How the CLI is run:
- `docker buildx build --load` when a docker CLI on PATH has the buildx plugin; otherwise
  `docker build` with DOCKER_BUILDKIT=1 on a CLI older than 23.0 (those have BuildKit built
  in; 23.0 and later refuse BuildKit without buildx). `HARNESS_DOCKER_CLI` names one
  CLI to use instead of searching PATH. The environment (DOCKER_HOST included) is passed on.
- The context is the packed tar, sent on stdin (`-`), with `-f` naming the Dockerfile
  inside the tar: the same tar the classic builder receives, nothing extracted, wrapped
  in a level-0 gzip stream so that the CLI recognises it (see `_feed`).
- `--progress=plain` is parsed for steps, cached steps and errors; `--iidfile` gives the
  image id (never guessed from a tag).
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

from .build import LOG_TAIL, BuildOutcome, Context
from .errors import BuildFailed, HarnessError

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
            return _one_line(f"{what}: {error or (self.errors[-1] if self.errors else 'failed')}")
        return _one_line((self.errors[-1] if self.errors else None) or self.last_plain
                         or "the docker CLI failed without a message")


def _decoration(line: str) -> bool:
    """The boxes and Dockerfile excerpts BuildKit prints around an error, not an error."""
    s = line.strip()
    return (s.startswith(("------", ">", "Dockerfile:", "WARNING:", "View build details"))
            or bool(re.match(r"^\d+ \|", s)))


def _one_line(text: str, limit: int = 400) -> str:
    words = " ".join(text.split())
    return words if len(words) <= limit else words[: limit - 1] + "…"


# --- finding a CLI that can drive BuildKit -----------------------------------------------

@dataclass(frozen=True)
class Cli:
    path: str
    buildx: bool  # `docker buildx build --load`; else `DOCKER_BUILDKIT=1 docker build`
    version: str  # the CLI's own version
    engine_api: str

    def base_args(self) -> list[str]:
        return [self.path, "buildx", "build", "--load"] if self.buildx else [self.path, "build"]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("DOCKER_BUILDKIT", None)
        if not self.buildx:
            env["DOCKER_BUILDKIT"] = "1"
        return env


def available() -> str | None:
    """Why BuildKit cannot be used here (one line), or None when it can."""
    try:
        find_cli()
    except HarnessError as exc:
        return str(exc)
    return None


def find_cli() -> Cli:
    """The docker CLI to drive BuildKit with; HarnessError (one line) when there is none."""
    return _find_cli(os.environ.get(CLI_ENV) or None, os.environ.get("PATH", ""),
                     os.environ.get("DOCKER_HOST"))


@lru_cache(maxsize=8)
def _find_cli(explicit: str | None, path_env: str, docker_host: str | None) -> Cli:
    if explicit:
        found = shutil.which(explicit)
        if not found:
            raise HarnessError(f"{CLI_ENV}={explicit}: no such executable")
        candidates = [found]
    else:
        candidates = _all_on_path("docker", path_env)
        if not candidates:
            raise HarnessError("no docker CLI on PATH (Debian: apt-get install docker.io)")
    problems = []
    usable: list[tuple[str, bool, str]] = []
    for path in candidates:
        version = _cli_version(path)
        if version is None:
            problems.append(f"{path} does not run")
            continue
        if _run_ok([path, "buildx", "version"], os.environ):
            usable.append((path, True, version))
        elif _major(version) < FIRST_CLI_WITHOUT_BUILTIN_BUILDKIT:
            usable.append((path, False, version))
        else:
            problems.append(f"docker CLI {version} at {path} has no buildx plugin, which "
                            f"BuildKit needs since CLI 23.0")
    if not usable:
        raise HarnessError("; ".join(problems) + " (install the buildx plugin, or docker.io "
                           "20.10 whose CLI has BuildKit built in)")
    usable.sort(key=lambda u: not u[1])  # buildx first, PATH order otherwise
    path, buildx, version = usable[0]
    cli = Cli(path, buildx, version, "")
    api = _engine_api(cli)
    return Cli(path, buildx, version, api)


def _all_on_path(name: str, path_env: str) -> list[str]:
    seen, out = set(), []
    for d in path_env.split(os.pathsep):
        p = os.path.join(d or ".", name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            real = os.path.realpath(p)
            if real not in seen:
                seen.add(real)
                out.append(p)
    return out


def _run_ok(args: list[str], env) -> bool:
    try:
        return subprocess.run(args, check=False, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=PROBE_TIMEOUT).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _cli_version(path: str) -> str | None:
    try:
        out = subprocess.run([path, "--version"], check=False, stdin=subprocess.DEVNULL, capture_output=True,
                             text=True, timeout=PROBE_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"version ([^\s,]+)", out.stdout, re.IGNORECASE)
    return m.group(1) if out.returncode == 0 and m else None


def _major(version: str) -> int:
    m = re.match(r"(\d+)", version)
    return int(m.group(1)) if m else 0


def _engine_api(cli: Cli) -> str:
    try:
        out = subprocess.run([cli.path, "version", "--format", "{{.Server.APIVersion}}"],
                             check=False, env=cli.env(), stdin=subprocess.DEVNULL, capture_output=True,
                             text=True, timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise HarnessError(f"the engine did not answer {cli.path} within {PROBE_TIMEOUT:g} s") from None
    api = out.stdout.strip()
    if out.returncode != 0 or not re.fullmatch(r"\d+\.\d+", api):
        why = _one_line(out.stderr or out.stdout or "no answer", 200)
        host = os.environ.get("DOCKER_HOST")
        raise HarnessError(f"no engine answers {cli.path}"
                           + (f" at DOCKER_HOST={host}" if host else "") + f" ({why})")
    if tuple(int(x) for x in api.split(".")) < MIN_ENGINE_API:
        raise HarnessError(f"the engine's API {api} is too old for BuildKit "
                           f"(needs {'.'.join(map(str, MIN_ENGINE_API))}, Docker 18.09)")
    return api


# --- the build ---------------------------------------------------------------------------

# Names the CLI itself reads from its environment: such build args go on the command line.
_RESERVED_ENV = re.compile(r"^(PATH|HOME|USER|TMPDIR|DOCKER_.*|BUILDX_.*|BUILDKIT_.*|HTTPS?_PROXY|NO_PROXY)$",
                           re.IGNORECASE)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def command(cli: Cli, context: Context, *, tag: str | None, target: str | None,
            build_args: dict[str, str], nocache: bool, labels: dict[str, str] | None,
            iidfile: str) -> tuple[list[str], dict[str, str]]:
    """The argument list and environment of one build.

    A build arg's value travels in the CLI's environment (`--build-arg NAME` reads it from
    there), so no secret shows in the process list; names the CLI reads itself go inline."""
    env = cli.env()
    args = [*cli.base_args(), "--progress=plain", "--iidfile", iidfile,
            "-f", context.dockerfile_name]
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
) -> BuildOutcome:
    """Build and time one image with BuildKit; raise BuildFailed with the error and log tail."""
    try:
        cli = find_cli()
    except HarnessError as exc:
        raise BuildFailed(f"BuildKit unavailable: {exc}") from None
    parser = ProgressParser()
    with tempfile.TemporaryDirectory(prefix="harness-bk-") as tmp:
        iidfile = os.path.join(tmp, "iid")
        args, env = command(cli, context, tag=tag, target=target, build_args=build_args,
                            nocache=nocache, labels=labels, iidfile=iidfile)
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
        try:
            with open(iidfile) as fh:
                image_id = fh.read().strip()
        except OSError:
            image_id = ""
    if not image_id.startswith("sha256:"):
        raise BuildFailed("BuildKit wrote no image id (--iidfile)", tail)
    return BuildOutcome(image_id, seconds, parser.steps_total, parser.steps_cached, tail, [])


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
