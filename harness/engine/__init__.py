"""The engines: connecting to one (the default, or a named DOCKER_HOST), describing what it
is (product, versions, image store, builders), and finding every engine there is.

`from harness import engine` keeps working as it did when this was one module:
engine.connect, engine.describe, engine.first_line, engine.ENGINE_ERRORS, engine.where...

- client: connect / open_client (a DOCKER_HOST URL or the environment's), errors as one line.
- description: describe (a live engine) and describe_from (pure, on its answers).
- discovery: the default engine, the ones `make engines` started, `--engine NAME=DOCKER_HOST`.
- survey: ask them all, side by side (what `harness engines` prints).
"""

from __future__ import annotations

from .client import (
    DEFAULT_SOCKET,
    ENGINE_ERRORS,
    START_HINT,
    connect,
    default_host,
    first_line,
    open_client,
    where,
    why,
)
from .description import (
    BUILDAH,
    BUILDKIT,
    CLASSIC,
    DOCKER,
    PODMAN,
    describe,
    describe_from,
    product_of,
    store_of,
)
from .discovery import EngineRef, parse_spec, resolve, started
from .survey import Surveyed, summary, survey

__all__ = [
    "BUILDAH", "BUILDKIT", "CLASSIC", "DEFAULT_SOCKET", "DOCKER", "ENGINE_ERRORS", "PODMAN",
    "START_HINT", "EngineRef", "Surveyed", "connect", "default_host", "describe",
    "describe_from", "first_line", "open_client", "parse_spec", "product_of", "resolve",
    "started", "store_of", "summary", "survey", "where", "why",
]
