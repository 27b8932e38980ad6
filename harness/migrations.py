"""Read `results.json` records written by older versions of the harness as version 2.

Version 1 (the first round, until December 2026) had the same shape without a checked
schema, so a few writers left keys behind that version 2 names differently or not at all:

- `variants[].compressed.registry_bytes`: the registry's compressed size, read by one old
  reader only; version 2 keeps it as `image.compressed_size_bytes` (and `registry`).
- `variants[].layers.attribution`: an early home of the base/deps/app split, read by the old
  chart code; version 2 keeps it as `attribution.split`.
- a scenario recorded as a bare list of seconds: `{"samples_seconds": [...]}`.
- keys no reader uses: dropped, so an old run validates under the strict model.

A migration is a pure function from one version's dict to the next one's.
"""

from __future__ import annotations

import dataclasses
import typing
from types import UnionType
from typing import Any

from harness import model


def migrate(record: dict) -> dict:
    """The record as the current schema version; a record already current is returned as is."""
    version = record.get("schema_version")
    if version == model.SCHEMA_VERSION:
        return record
    if version == 1:
        return _v1_to_v2(record)
    raise model.ModelError(
        f"schema version {version!r} is not one this harness reads "
        f"(it reads 1 and {model.SCHEMA_VERSION})")


def _v1_to_v2(record: dict) -> dict:
    out = dict(record, schema_version=2)
    variants = []
    for v in record.get("variants") or []:
        v = dict(v)
        legacy = (v.pop("compressed", None) or {}).get("registry_bytes")
        if legacy and isinstance(v.get("image"), dict):
            v["image"] = {"compressed_size_bytes": legacy, **v["image"]}
        split = (v.pop("layers", None) or {}).get("attribution")
        if split and not (v.get("attribution") or {}).get("split"):
            v["attribution"] = {**(v.get("attribution") or {}), "split": split}
        if isinstance(v.get("build"), dict):
            v["build"] = _scenario_lists(v["build"])
        variants.append(v)
    out["variants"] = variants
    return _prune(out, model.Run)


def _scenario_lists(build: dict) -> dict:
    scenarios = build.get("scenarios")
    if not isinstance(scenarios, dict):
        return build
    return {**build, "scenarios": {
        name: {"samples_seconds": s} if isinstance(s, list) else s
        for name, s in scenarios.items()}}


def _prune(value: Any, tp: Any) -> Any:
    """`value` with every key the model type `tp` does not know removed, recursively."""
    if isinstance(tp, type) and dataclasses.is_dataclass(tp) and isinstance(value, dict):
        hints = typing.get_type_hints(tp)
        return {k: _prune(v, hints[k]) for k, v in value.items() if k in hints}
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, UnionType):
        inner = [a for a in args if a is not type(None)]
        return _prune(value, inner[0]) if len(inner) == 1 else value
    if origin is list and isinstance(value, list) and args:
        return [_prune(x, args[0]) for x in value]
    if origin is dict and isinstance(value, dict) and len(args) == 2:
        return {k: _prune(x, args[1]) for k, x in value.items()}
    return value
