"""What an engine is: product, versions, image store, the builders it serves, what it can do.

`describe_from` is pure (the engine's `version()` and `info()` answers in, a dict out), so
it is tested on recorded answers of each product; `describe` asks a live engine and finds
whether a buildx can drive its BuildKit (harness.buildkit).

Builder names, as results record them:
- `classic`: the builder the Docker Engine API serves (`client.api.build`, what
  `--builder classic` uses); deprecated since Docker 23 but still served.
- `buildkit`: the engine's own BuildKit, driven by buildx (or a docker CLI older than 23.0).
- `buildah`: Podman's Docker-compatible API builds with buildah; `--builder classic` reaches
  it there, BuildKit is not served.
"""

from __future__ import annotations

import re

import docker

from .client import default_host
from .product import DOCKER, PODMAN, PODMAN_REASON, product_of  # noqa: F401  (re-exported)

CLASSIC, BUILDKIT, BUILDAH = "classic", "buildkit", "buildah"
CONTAINERD_SNAPSHOTTER = "io.containerd.snapshotter.v1"
FIRST_BUILDKIT_DEFAULT = 23  # Docker 23.0: `docker build` uses BuildKit (buildx) by default


def version_tuple(text: str | None) -> tuple[int, ...]:
    """`26.1.5+dfsg1` -> (26, 1, 5); what cannot be read -> ()."""
    m = re.match(r"v?(\d+(?:\.\d+)*)", text or "")
    return tuple(int(x) for x in m.group(1).split(".")) if m else ()


def driver_status(info: dict) -> dict[str, str]:
    return {str(row[0]): str(row[1]) for row in info.get("DriverStatus") or []
            if isinstance(row, (list, tuple)) and len(row) == 2}


def store_of(info: dict) -> str:
    """The image store: a graph driver's name (overlay2; Podman's storage driver, overlay),
    or `containerd (<snapshotter> snapshotter)` for Docker's containerd image store."""
    driver = info.get("Driver") or "unknown"
    if driver_status(info).get("driver-type") == CONTAINERD_SNAPSHOTTER:
        return f"containerd ({driver} snapshotter)"
    return driver


def default_builder_of(product: str, server_version: str | None) -> str:
    """The builder `docker build` uses on this engine by default."""
    if product == PODMAN:
        return BUILDAH
    major = version_tuple(server_version)[:1]
    return BUILDKIT if major and major[0] >= FIRST_BUILDKIT_DEFAULT else CLASSIC


def builders_of(product: str, buildkit_problem: str | None) -> list[str]:
    """The builders the harness can use on this engine."""
    if product == PODMAN:
        return [BUILDAH]
    return [CLASSIC] + ([BUILDKIT] if buildkit_problem is None else [])


def describe_from(version: dict, info: dict, *, host: str, name: str | None = None,
                  client_api_version: str | None = None,
                  buildkit_problem: str | None = None) -> dict:
    """What a results record says about the engine (pure). `buildkit_problem` is why
    BuildKit cannot be used there (harness.buildkit.available), None when it can."""
    product = product_of(version)
    server_version = version.get("Version")
    if product == PODMAN and buildkit_problem is None:
        buildkit_problem = PODMAN_REASON
    return {
        "name": name,
        "host": host,
        "product": product,
        "server_version": server_version,
        "api_version": version.get("ApiVersion"),
        "min_api_version": version.get("MinAPIVersion"),
        "client_api_version": client_api_version,
        "os": info.get("OperatingSystem"),
        "kernel": info.get("KernelVersion"),
        "architecture": info.get("Architecture"),
        "storage_driver": info.get("Driver"),
        "store": store_of(info),
        "cgroup_version": info.get("CgroupVersion"),
        "engine_cpus": info.get("NCPU"),
        "engine_memory_bytes": info.get("MemTotal"),
        "engine_name": info.get("Name"),
        "default_builder": default_builder_of(product, server_version),
        "builders": builders_of(product, buildkit_problem),
        "buildkit_unavailable": buildkit_problem,
        # Every engine here builds (through its API), pushes (through its API) and runs
        # (create and start a container); kept as flags so that a reader needs no rules.
        "can_build": True,
        "can_push": True,
        "can_run": True,
    }


def describe(client: docker.DockerClient, host: str | None = None, name: str | None = None,
             *, buildkit: bool = True) -> dict:
    """What a results record needs to say about the engine it was measured on.

    `host` is the engine's DOCKER_HOST URL (default: the one docker.from_env uses, which is
    how harness.engine.connect made the client); `name` its short name (default: the name
    `make engines` gave it, when it started it). `buildkit=False` skips the search for a
    buildx (BuildKit is then recorded as not looked for)."""
    from .discovery import name_for

    info = client.info()
    version = client.version()
    given = host
    host = host or default_host()
    if name is None:
        name = name_for(host)
    problem: str | None = None  # Podman: describe_from says why
    if product_of(version) == DOCKER:
        from harness.engine import buildkit as bk

        # given None: the environment's engine, found as builds find it
        problem = bk.available(given) if buildkit else "not looked for"
    return describe_from(version, info, host=host, name=name,
                         client_api_version=client.api.api_version, buildkit_problem=problem)
