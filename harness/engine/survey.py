"""Ask every engine found (harness.engine.discovery) what it is, side by side.

Each engine is asked in a thread of its own with a short timeout, so one that hangs does
not hold up the others; an engine that does not answer is a one-line problem naming it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..errors import HarnessError
from .client import ENGINE_ERRORS, open_client, why
from .description import describe
from .discovery import EngineRef

ASK_TIMEOUT = 20  # seconds for each API call while describing


@dataclass
class Surveyed:
    ref: EngineRef
    description: dict | None = None  # harness.engine.describe's dict, when it answered
    error: str | None = None  # one line, naming the engine, when it did not


def ask(ref: EngineRef, timeout: int = ASK_TIMEOUT) -> Surveyed:
    """Describe one engine; never raises for an engine that is down or not an engine."""
    try:
        client = open_client(ref.host, timeout=timeout)
    except (*ENGINE_ERRORS, ValueError) as exc:
        return Surveyed(ref, error=f"engine {ref.name} ({ref.host}) does not answer: {why(exc)}")
    try:
        return Surveyed(ref, describe(client, host=ref.host, name=ref.name))
    except (*ENGINE_ERRORS, HarnessError, ValueError) as exc:
        return Surveyed(ref, error=f"engine {ref.name} ({ref.host}) does not answer: {why(exc)}")
    finally:
        client.close()


def survey(refs: list[EngineRef], timeout: int = ASK_TIMEOUT) -> list[Surveyed]:
    """Every engine described, in the order given."""
    if not refs:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(refs)), thread_name_prefix="engine") as pool:
        return list(pool.map(lambda r: ask(r, timeout), refs))


def summary(s: Surveyed) -> dict:
    """One engine as `harness engines --json` prints it."""
    d = s.description or {}
    return {
        "name": s.ref.name,
        "host": s.ref.host,
        "default": s.ref.default,
        "aliases": list(s.ref.aliases),
        "source": s.ref.source,
        "product": d.get("product"),
        "version": d.get("server_version"),
        "api_version": d.get("api_version"),
        "min_api_version": d.get("min_api_version"),
        "store": d.get("store"),
        "storage_driver": d.get("storage_driver"),
        "builders": d.get("builders"),
        "default_builder": d.get("default_builder"),
        "buildkit_unavailable": d.get("buildkit_unavailable"),
        "can_build": d.get("can_build"),
        "can_push": d.get("can_push"),
        "can_run": d.get("can_run"),
        "os": d.get("os"),
        "kernel": d.get("kernel"),
        "cgroup_version": d.get("cgroup_version"),
    }


TABLE_COLUMNS = ("Name", "Host", "Product", "Version", "API", "Store", "Builders (default)", "Build/push/run")


def table_row(s: Surveyed) -> tuple[str, ...]:
    d = summary(s)
    name = d["name"] + (" (default)" if d["default"] else "")
    api = f"{d['api_version']} (min {d['min_api_version']})" if d["min_api_version"] else str(d["api_version"])
    builders = ", ".join(d["builders"] or []) + f" ({d['default_builder']})"
    if d["buildkit_unavailable"] and d["product"] != "Podman":
        builders += f"; no buildkit: {d['buildkit_unavailable']}"
    caps = "/".join("yes" if d[k] else "no" for k in ("can_build", "can_push", "can_run"))
    return (name, d["host"], d["product"], d["version"], api, d["store"], builders, caps)
