"""The one place that connects to a Docker engine and describes it."""

from __future__ import annotations

import http.client
import os

import docker
import urllib3.exceptions
from docker.errors import APIError, DockerException
from requests.exceptions import RequestException

from .errors import EngineUnavailable

# What an engine call can raise, a dying engine included: the SDK's errors, requests', and
# the raw urllib3/http ones a stream raises when the connection drops mid-read.
ENGINE_ERRORS = (APIError, DockerException, RequestException, OSError,
                 urllib3.exceptions.HTTPError, http.client.HTTPException)

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
START_HINT = "start one with `make engine` (as root on Debian) or point DOCKER_HOST at a running engine"


def where() -> str:
    host = os.environ.get("DOCKER_HOST")
    return f"DOCKER_HOST={host}" if host else f"the default socket {DEFAULT_SOCKET}"


def connect(timeout: int = 600) -> docker.DockerClient:
    """A client for the engine the SDK finds, or a one-line EngineUnavailable."""
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except (DockerException, OSError) as exc:
        raise EngineUnavailable(
            f"no Docker engine answers at {where()} ({first_line(exc)}); {START_HINT}") from None
    return client


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception as one short line (the SDK's messages can span many)."""
    text = str(getattr(exc, "explanation", None) or exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


def describe(client: docker.DockerClient) -> dict:
    """What a results record needs to say about the engine it was measured on."""
    info = client.info()
    version = client.version()
    return {
        "host": where(),
        "server_version": version.get("Version"),
        "api_version": version.get("ApiVersion"),
        "client_api_version": client.api.api_version,
        "os": info.get("OperatingSystem"),
        "kernel": info.get("KernelVersion"),
        "architecture": info.get("Architecture"),
        "storage_driver": info.get("Driver"),
        "cgroup_version": info.get("CgroupVersion"),
        "engine_cpus": info.get("NCPU"),
        "engine_memory_bytes": info.get("MemTotal"),
        "engine_name": info.get("Name"),
    }
