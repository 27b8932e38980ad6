"""Shared fixtures. Engine tests use the real engine; in CI a missing engine fails them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import engine
from harness.errors import EngineUnavailable

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def docker_client():
    try:
        client = engine.connect()
    except EngineUnavailable as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI needs a Docker engine: {exc}")
        pytest.skip(str(exc))
    yield client
    client.close()


@pytest.fixture
def image_janitor(docker_client):
    """Collects image ids a test creates and removes them afterwards, by id."""
    ids: list[str] = []
    yield ids
    for image_id in reversed(ids):
        try:
            docker_client.api.remove_image(image_id, force=True)
        except Exception:
            pass
