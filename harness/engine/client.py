"""Connecting to an engine: the default one (DOCKER_HOST or the default socket) or a named host."""

from __future__ import annotations

import http.client
import os

import docker
import urllib3.exceptions
from docker.errors import APIError, DockerException
from requests.exceptions import RequestException

from ..errors import EngineUnavailable

# What an engine call can raise, a dying engine included: the SDK's errors, requests', and
# the raw urllib3/http ones a stream raises when the connection drops mid-read.
ENGINE_ERRORS = (APIError, DockerException, RequestException, OSError,
                 urllib3.exceptions.HTTPError, http.client.HTTPException)

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
START_HINT = "start one with `make engine` (as root on Debian) or point DOCKER_HOST at a running engine"


def default_host() -> str:
    """The DOCKER_HOST URL the SDK's from_env uses: DOCKER_HOST, else the default socket."""
    return os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET


def where(host: str | None = None) -> str:
    """Where an engine was looked for, for a message."""
    if host is not None:
        return host
    env = os.environ.get("DOCKER_HOST")
    return f"DOCKER_HOST={env}" if env else f"the default socket {DEFAULT_SOCKET}"


def connect(timeout: int = 600, host: str | None = None) -> docker.DockerClient:
    """A client for the engine the SDK finds (or for `host`, a DOCKER_HOST URL), or a
    one-line EngineUnavailable."""
    try:
        client = open_client(host, timeout)
        client.ping()
    except (DockerException, OSError, RequestException, urllib3.exceptions.HTTPError,
            http.client.HTTPException, ValueError) as exc:
        hint = START_HINT if host is None else "is it running?"
        raise EngineUnavailable(
            f"no Docker engine answers at {where(host)} ({why(exc)}); {hint}") from None
    return client


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception as one short line (the SDK's messages can span many)."""
    text = str(getattr(exc, "explanation", None) or exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


def why(exc: BaseException, limit: int = 200) -> str:
    """Why a connection failed, in a few words: the operating system's reason when one is
    inside the SDK's wrapped errors (`No such file or directory`, `Connection refused`),
    else the exception's first line."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        e = todo.pop(0)
        if not isinstance(e, BaseException) or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.strerror:
            return e.strerror
        todo += [e.__cause__, e.__context__, *e.args]
    return first_line(exc, limit)


def open_client(host: str | None = None, timeout: int = 600) -> docker.DockerClient:
    """A client for `host` (a DOCKER_HOST URL), or for the engine from_env finds when None.
    The SDK asks the engine its API version here: an engine that does not answer raises
    one of ENGINE_ERRORS. A tcp:// host takes TLS as the docker CLI does: DOCKER_TLS_VERIFY
    and DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem) of the environment."""
    env = dict(os.environ) if host is None else {**os.environ, "DOCKER_HOST": host}
    kwargs = docker.utils.kwargs_from_env(environment=env)
    if kwargs.get("tls"):
        return _tls_client(kwargs, timeout)
    if host is None:
        return docker.from_env(timeout=timeout)
    return docker.DockerClient(base_url=host, timeout=timeout)


def _tls_client(kwargs: dict, timeout: int) -> docker.DockerClient:
    """A client that checks the engine against its own CA only. requests lets
    REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE replace the CA a session was given
    (psf/requests#5209), and the SDK's version negotiation runs inside its constructor;
    so the version is asked first by a client that ignores the environment, and the real
    client is made with it."""
    probe = docker.APIClient(version=docker.constants.MINIMUM_DOCKER_API_VERSION,
                             timeout=timeout, **kwargs)
    probe.trust_env = False  # also keeps HTTPS_PROXY away from the engine's own address
    try:
        version = probe.version(api_version=False)["ApiVersion"]
    finally:
        probe.close()
    client = docker.DockerClient(version=version, timeout=timeout, **kwargs)
    client.api.trust_env = False
    return client
