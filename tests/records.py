"""Realistic results records for pure tests, shaped as `runner.execute` writes them."""

from __future__ import annotations

import datetime as dt

BASE_IDS = {"node:20": "sha256:" + "a" * 64, "node:20-alpine": "sha256:" + "b" * 64}
BASE_DIGESTS = {"node:20": "sha256:" + "1" * 64, "node:20-alpine": "sha256:" + "2" * 64}


def make_variant(name: str, *, size: int = 150_000_000, layers: int = 8,
                 samples: tuple[float, ...] = (60.0, 61.0, 59.5), base: str = "node:20-alpine",
                 base_id: str | None = None, digest: str | None = None, standin: bool = False,
                 dockerfile_sha: str | None = "d" * 64, context_sha: str | None = "c" * 64,
                 status: str = "ok", compressed: int | None = None, label: str | None = None) -> dict:
    """A two-stage variant (builder and runner both FROM `base`), as the runner records it."""
    froms = [
        {"stage": i, "stage_name": stage, "from_line": 1 + 6 * i, "written": base,
         "requested": base, "final": i == 1, "kind": "image",
         "status": "stand-in" if standin else "present",
         "image_id": base_id or BASE_IDS.get(base, "sha256:" + "e" * 64),
         "digest": None if standin else (digest or BASE_DIGESTS.get(base)),
         "standin": standin, "used_ref": f"harness-standin/{base}" if standin else base,
         "size_bytes": 40_000_000, "layer_count": 4}
        for i, stage in enumerate(("builder", "runner"))
    ]
    entry = {"name": name, "label": label or name.replace("-", " ").capitalize(),
             "dockerfile": f"{name}.Dockerfile", "dockerfile_path": f"variants/{name}.Dockerfile",
             "context": "sample_app", "target": "runner", "build_args": {}, "in_manifest": True,
             "warnings": [], "froms": froms, "status": status,
             "build": {"samples_seconds": list(samples), "warmup_seconds": [],
                       "context_bytes": 40960, "context_files": 12, "context_seconds": 0.01,
                       "steps_total": 7, "steps_cached": 0}}
    if dockerfile_sha is not None:
        entry["dockerfile_sha256"] = dockerfile_sha
    if context_sha is not None:
        entry["context_sha256"] = context_sha
    if status == "ok":
        entry["error"] = None
        entry["image"] = {"id": "sha256:" + name.encode().hex()[:64].ljust(64, "0"),
                          "size_bytes": size, "layer_count": layers, "layers": [],
                          "history_count": layers + 4, "history": [], "user": "node",
                          "architecture": "amd64", "os": "linux"}
        if compressed is not None:
            entry["image"]["compressed_size_bytes"] = compressed
    else:
        entry["error"] = "build failed: npm ci exited with 1"
    return entry


def make_record(run_id: str, variants: list[dict], hostname: str = "bench-1") -> dict:
    """A finished run: `run_id` is a UTC time like 20240101T000000Z, as results.run_id makes."""
    created = dt.datetime.strptime(run_id, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    bases = {f["requested"]: {"requested": f["requested"], "image_id": f["image_id"],
                              "digest": f["digest"], "standin": f["standin"]}
             for v in variants for f in v["froms"]}
    return {
        "schema_version": 1, "run_id": run_id,
        "created_utc": created.isoformat(timespec="seconds"),
        "finished_utc": (created + dt.timedelta(minutes=20)).isoformat(timespec="seconds"),
        "harness": {"version": "0.1.0", "git": {"commit": "0" * 40, "dirty": False}},
        "machine": {"hostname": hostname, "platform": "Linux-6.1-x86_64", "python": "3.11.9",
                    "cpu_count": 8, "memory_bytes": 16_000_000_000},
        "engine": {"server_version": "24.0.7", "api_version": "1.43", "storage_driver": "overlay2"},
        "settings": {"repeat": len(variants[0]["build"]["samples_seconds"]) if variants else 3,
                     "builder": "classic", "scenario": "cold", "bases_mode": "auto"},
        "bases": bases, "variants": variants,
    }
