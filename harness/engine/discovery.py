"""Which engines there are: the default one, the ones `make engines` started, and the ones
named on the command line (`NAME=DOCKER_HOST`).

`make engines` (scripts/engines.sh) gives each engine it starts a state directory
`$HARNESS_STATE/engines/NAME/` with a file `host` holding its DOCKER_HOST URL.
Resolving is pure bookkeeping (files and strings, no engine is asked); `survey` in
`harness.engine.survey` asks them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .client import default_host

STATE_ENV = "HARNESS_STATE"
DEFAULT_STATE = "/var/tmp/harness"
ENGINES_DIR = "engines"
HOST_FILE = "host"
DEFAULT_FILE = "default"  # the default engine's second URL (it also listens on the default socket)
DEFAULT_NAME = "default"

# The schemes the Docker SDK connects through.
SCHEMES = ("unix", "tcp", "http", "https", "ssh", "npipe")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class EngineRef:
    """An engine to ask: its short name, its DOCKER_HOST URL, and how it was found."""
    name: str
    host: str
    source: str  # "default", "started" (by make engines) or "given" (--engine)
    default: bool = False  # the engine docker.from_env reaches (DOCKER_HOST or the socket)
    aliases: tuple[str, ...] = ()  # other URLs of the same engine

    def host_keys(self) -> list[str]:
        return [host_key(h) for h in (self.host, *self.aliases)]


def state_dir() -> Path:
    return Path(os.environ.get(STATE_ENV) or DEFAULT_STATE)


def engines_dir() -> Path:
    return state_dir() / ENGINES_DIR


def started(base: Path | None = None) -> tuple[list[EngineRef], list[str]]:
    """The engines `make engines` started (their state directories), sorted by name, and a
    one-line problem for each unreadable or malformed `host` file."""
    base = engines_dir() if base is None else base
    refs: list[EngineRef] = []
    problems: list[str] = []
    try:
        entries = sorted(p for p in base.iterdir() if p.is_dir())
    except OSError:
        return [], []  # no engines started: nothing to list, nothing wrong
    for directory in entries:
        path = directory / HOST_FILE
        if not path.exists():
            continue  # an engine still starting, or one that was stopped
        try:
            host = path.read_text().strip()
        except OSError as exc:
            problems.append(f"engine {directory.name}: cannot read {path} ({exc.strerror or exc})")
            continue
        problem = check_host(host)
        if problem:
            problems.append(f"engine {directory.name}: {path}: {problem}")
            continue
        aliases = []
        try:
            alias = (directory / DEFAULT_FILE).read_text().strip()
            if alias and check_host(alias) is None:
                aliases.append(alias)
        except OSError:
            pass  # not the default engine
        refs.append(EngineRef(directory.name, host, "started", aliases=tuple(aliases)))
    return refs, problems


def check_host(host: str) -> str | None:
    """Why `host` is not a DOCKER_HOST URL the SDK can use (one line), or None."""
    if not host:
        return "empty DOCKER_HOST"
    if "\n" in host or any(c.isspace() for c in host):
        return f"{host!r} is not a DOCKER_HOST URL"
    scheme = urlsplit(host).scheme if "://" in host else ""
    if scheme not in SCHEMES:
        return f"{host!r} is not a DOCKER_HOST URL ({', '.join(s + '://' for s in SCHEMES)})"
    if scheme == "unix" and not urlsplit(host).path:
        return f"{host!r} names no socket"
    return None


def parse_spec(spec: str) -> EngineRef:
    """`NAME=DOCKER_HOST` (from --engine) as an EngineRef; ValueError (one line, naming the
    spec) when it is not one."""
    name, sep, host = spec.partition("=")
    name, host = name.strip(), host.strip()
    if not sep:
        raise ValueError(f"--engine {spec}: expected NAME=DOCKER_HOST "
                         f"(e.g. {spec or 'name'}=unix:///path/to/docker.sock)")
    if not _NAME.match(name):
        raise ValueError(f"--engine {spec}: the name must be letters, digits, '.', '_' or '-'")
    problem = check_host(host)
    if problem:
        raise ValueError(f"engine {name}: {problem}")
    return EngineRef(name, host, "given")


def host_key(host: str) -> str:
    """A host in a form where two spellings of the same engine compare equal: a unix
    socket by its resolved path (/var/run is often a link to /run), tcp:// and http:// alike."""
    parts = urlsplit(host)
    if parts.scheme == "unix":
        return "unix://" + os.path.realpath(parts.path)
    if parts.scheme in ("tcp", "http"):
        return "tcp://" + parts.netloc.lower()
    return host


def resolve(specs: list[str] | None = None, *, include_default: bool = True,
            include_started: bool = True, base: Path | None = None
            ) -> tuple[list[EngineRef], list[str], list[str]]:
    """Every engine to ask, each host once, in order: the default one, the started ones,
    the given ones. Returns (engines, errors, notes): an error is a bad --engine spec (the
    caller fails with exit code 1), a note a malformed state directory.

    The same host found twice is one engine: it keeps the first name other than
    "default" (a given name beats none), and is marked default when it is the default host."""
    errors: list[str] = []
    found: list[EngineRef] = []
    if include_default:
        found.append(EngineRef(DEFAULT_NAME, default_host(), "default", default=True))
    notes: list[str] = []
    if include_started:
        refs, notes = started(base)
        found += refs
    for spec in specs or []:
        try:
            found.append(parse_spec(spec))
        except ValueError as exc:
            errors.append(str(exc))
    merged: list[EngineRef] = []
    for ref in found:
        at = next((i for i, have in enumerate(merged)
                   if set(have.host_keys()) & set(ref.host_keys())), None)
        if at is None:
            if any(have.name == ref.name for have in merged):
                errors.append(f"engine {ref.name}: the name is used twice ({ref.host})")
                continue
            merged.append(ref)
            continue
        have = merged[at]
        if (have.name == DEFAULT_NAME and ref.name != DEFAULT_NAME
                and not any(h.name == ref.name for h in merged)):
            # the default engine is one that was started or given: keep its name
            merged[at] = EngineRef(ref.name, ref.host, ref.source, default=have.default,
                                   aliases=tuple(h for h in dict.fromkeys((*ref.aliases, have.host))
                                                 if h != ref.host))
    return merged, errors, notes


def name_for(host: str, base: Path | None = None) -> str | None:
    """The short name `make engines` gave the engine at `host`, when it started it."""
    key = host_key(host)
    for ref in started(base)[0]:
        if key in ref.host_keys():
            return ref.name
    return None
