"""Fault fixtures: a second Docker engine of our own (harness.private_engine), to kill and
restart at will. It starts empty: tests build FROM scratch with /bin/busybox copied into
the context."""

from __future__ import annotations

import pytest
from conftest import require

from harness.engine import private as pe


@pytest.fixture
def private_engine():
    """A second dockerd of our own, started; .host, .pid, .client(), .kill(), .start().

    At the end everything it started is stopped by pid, its mounts are undone and its
    directories removed."""
    reason = pe.missing()
    require(reason is None, reason or "")
    with pe.running() as engine:
        yield engine
