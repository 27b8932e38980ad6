"""Realistic results records for pure tests, shaped as `runner.execute` writes them."""

from __future__ import annotations

import datetime as dt

from harness import migrations, model

BASE_IDS = {"node:20": "sha256:" + "a" * 64, "node:20-alpine": "sha256:" + "b" * 64}
BASE_DIGESTS = {"node:20": "sha256:" + "1" * 64, "node:20-alpine": "sha256:" + "2" * 64}


def as_run(record: dict | model.Run) -> model.Run:
    """A record built here (schema version 1) or loaded (version 2) as the typed model."""
    if isinstance(record, model.Run):
        return record
    return model.Run.from_json(migrations.migrate(record))


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
    created = dt.datetime.strptime(run_id, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
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


# ---------------------------------------------------------------- the runner's full record

def scenario(samples, *, total: int = 9, rebuilt: int | None = None, warmup=(),
             changed: str | None = None, stats: dict | None = None) -> dict:
    """One timed scenario as `BuildJob._scenario` records it (`stats` as stored: the report
    recomputes them from the samples, so a test can store wrong ones on purpose)."""
    rebuilt = total if rebuilt is None else rebuilt
    out = {"samples_seconds": list(samples), "warmup_seconds": list(warmup),
           "steps_total": total, "steps_cached": total - rebuilt, "steps_rebuilt": rebuilt,
           "stats": stats or {"n": len(samples)}}
    if changed:
        out["changed"] = changed
    return out


def build_info(builder: str, scenarios: dict, *, context_bytes: int = 40_960,
               context_files: int = 12, bare_bytes: int = 182_000_000,
               bare_files: int = 9_512) -> dict:
    """A builder's `build` (or `extra_builds[builder]`) entry with every scenario."""
    cold = scenarios.get("cold") if isinstance(scenarios.get("cold"), dict) else {}
    return {"builder": builder,
            "samples_seconds": list(cold.get("samples_seconds") or []),
            "warmup_seconds": list(cold.get("warmup_seconds") or []),
            "context_bytes": context_bytes, "context_files": context_files,
            "context_seconds": 0.012,
            "context_bytes_without_dockerignore": bare_bytes,
            "context_files_without_dockerignore": bare_files,
            "steps_total": cold.get("steps_total"), "steps_cached": cold.get("steps_cached"),
            "scenarios": scenarios}


def _layer(index: int, size: int, *, source: str = "instruction", instruction: str | None = None,
           stage: str | None = "runner", from_stage: str | None = None, node_modules: int = 0,
           app: int = 0) -> dict:
    base = source == "base"
    return {"index": index, "diff_id": f"sha256:{index:064x}", "size_bytes": size,
            "source": source, "history_index": index, "instruction": instruction,
            "stage": None if base else stage, "from_stage": from_stage,
            "node_modules_bytes": None if base else node_modules,
            "app_bytes": None if base else app,
            "other_bytes": None if base else size - node_modules - app}


def make_full_record() -> dict:
    """A run as `runner.execute` now writes it: two builders (classic measured, BuildKit
    beside it), the four scenarios, registry and runtime figures, the layer attribution;
    `single` stands on a stand-in base and its BuildKit build failed, `distroless` was built
    and measured but failed at runtime, `broken` did not build.

    Hand-computed figures the tests check:
    - three-stage, classic, dependency-change [10, 11, 12, 30]: median 11.5, MAD 1.0
      (8.7 % of the median: not noisy), mean 15.75, stdev 9.535, outlier: index 3;
    - noisy rows (MAD > 10 % of the median): single/classic/no-change [1.0, 1.5, 2.0]
      (MAD 0.5, 33 %) and three-stage/buildkit/source-change [4.0, 5.0, 6.5] (MAD 1.0, 20 %);
    - three-stage, classic: source change 12.3 s ± 0.30 s against cold 46.0 s ± 1.00 s: −73 %.
    """
    single = make_variant("single", size=1_240_000_000, layers=12, base="node:20", standin=True,
                          label="Single stage (node:20)")
    single["froms"] = [dict(f, size_bytes=1_100_000_000) for f in single["froms"]]
    three = make_variant("three-stage", size=47_000_000, layers=8, label="Three stage (alpine)")
    distroless = make_variant("distroless", size=115_300_000, layers=9,
                              base="gcr.io/distroless/nodejs20-debian12", label="Distroless")
    broken = make_variant("broken", status="failed", label="Broken one")
    broken["log_tail"] = ["Step 5/9 : COPY dist ./dist", "COPY failed: file not found"]
    broken["error"] = "build failed: COPY failed: file not found"
    del broken["build"]  # the runner records no build when the measured builder's build failed

    single.update(builder="classic", build=build_info("classic", {
        "cold": scenario([60.0, 64.0, 62.0], total=7),
        "no-change": scenario([1.0, 1.5, 2.0], total=7, rebuilt=0, warmup=[3.0]),
        "source-change": scenario([20.0, 20.4, 20.2], total=7, rebuilt=3, warmup=[21.0],
                                  changed="src/index.ts: a comment appended"),
        "dependency-change": scenario([50.0, 52.0, 51.0], total=7, rebuilt=5, warmup=[55.0],
                                      changed="package.json and package-lock.json: version bumped"),
    }), extra_builds={"buildkit": {
        "builder": "buildkit", "error": "build failed: failed to solve: process \"npm ci\" did not complete",
        "log_tail": ["#9 [4/6] RUN npm ci", "#9 ERROR: process \"npm ci\" did not complete"]}})

    three.update(builder="classic", build=build_info("classic", {
        "cold": scenario([45.0, 46.0, 47.0]),
        "no-change": scenario([2.0, 2.1, 2.2], rebuilt=0, warmup=[2.5]),
        # Stored statistics that disagree with the samples: the report must not show them.
        "source-change": scenario([12.0, 12.3, 12.7], rebuilt=4, warmup=[13.0],
                                  changed="src/index.ts: a comment appended",
                                  stats={"n": 3, "median": 999.0, "mad": 0.0}),
        "dependency-change": scenario([10.0, 11.0, 12.0, 30.0], rebuilt=6, warmup=[14.0],
                                      changed="package.json and package-lock.json: version bumped"),
    }), extra_builds={"buildkit": {**build_info("buildkit", {
        "cold": scenario([40.0, 48.0, 41.0]),
        "no-change": scenario([0.5, 0.5, 0.6], rebuilt=0),
        "source-change": scenario([4.0, 5.0, 6.5], rebuilt=3, changed="src/index.ts: a comment appended"),
        "dependency-change": {"skipped": "no package-lock.json in the context"},
    }), "image": {"id": "sha256:" + "f" * 64, "size_bytes": 46_800_000, "layer_count": 7,
                  "history_count": 13}}})

    distroless.update(builder="classic", build=build_info("classic", {
        "cold": scenario([30.0, 30.5, 29.0], total=8),
        "no-change": {"error": "build failed: no space left on device",
                      "log_tail": ["Step 3/8 : RUN npm ci", "no space left on device"]},
        "source-change": scenario([8.0, 8.2, 8.1], total=8, rebuilt=3),
        "dependency-change": scenario([20.0, 21.0, 20.5], total=8, rebuilt=5),
    }), extra_builds={"buildkit": {**build_info("buildkit", {
        "cold": scenario([25.0, 25.5, 26.0], total=8),
        "no-change": scenario([0.4, 0.4, 0.4], total=8, rebuilt=0),
        "source-change": scenario([6.0, 6.1, 6.2], total=8, rebuilt=3),
        "dependency-change": scenario([15.0, 15.5, 16.0], total=8, rebuilt=5),
    }), "image": {"id": "sha256:" + "9" * 64, "size_bytes": 115_000_000, "layer_count": 9,
                  "history_count": 12}}})
    distroless["froms"] = distroless["froms"][:1] + [dict(distroless["froms"][1], size_bytes=105_000_000)]

    single["image"]["user"] = ""
    distroless["image"]["user"] = "nonroot"
    single["image"]["compressed_size_bytes"] = 400_000_000
    three["image"]["compressed_size_bytes"] = 45_000_000

    single["contents"] = {"compressed_estimate_bytes": 404_000_000, "has_shell": True,
                          "package_managers": {"apk": False, "dpkg": True, "apt": True,
                                               "npm": True, "yarn": True, "pnpm": False},
                          "os_package_db": "dpkg", "os_package_count": 412,
                          "setuid_files": [{"path": p, "mode": "4755"} for p in
                                           ("/bin/mount", "/bin/su", "/usr/bin/passwd")],
                          "dev_dependencies_present": ["typescript"]}
    three["contents"] = {"compressed_estimate_bytes": 44_100_000, "has_shell": True,
                         "package_managers": {"apk": True, "npm": False},
                         "os_package_db": "apk", "os_package_count": 15, "setuid_files": [],
                         "dev_dependencies_present": []}
    distroless["contents"] = {"compressed_estimate_bytes": 41_000_000, "has_shell": False,
                              "package_managers": {"apk": False, "dpkg": False},
                              "os_package_db": "dpkg", "os_package_count": 14, "setuid_files": []}

    single["registry"] = {"push_seconds": 12.5, "layer_sizes": [100_000_000] * 4,
                          "compressed_bytes": 400_000_000, "estimate_bytes": 404_000_000,
                          "estimate_error_pct": 1.0, "image_removed_before_pull": True,
                          "pull_seconds": 8.25, "pull_layers_present": 0, "pull_layers": 12,
                          "cold_pull_seconds": 9.5, "cold_pull_layers_present": 0}
    three["registry"] = {"push_seconds": 3.1, "layer_sizes": [5_625_000] * 8,
                         "compressed_bytes": 45_000_000, "estimate_bytes": 44_100_000,
                         "estimate_error_pct": -2.0, "image_removed_before_pull": True,
                         "pull_seconds": 1.9, "pull_layers_present": 5, "pull_layers": 8,
                         "cold_pull_error": "not measured: a private dockerd needs root"}
    distroless["registry"] = {"error": "push failed: connection refused"}

    served = {"status": "ok", "error": None, "memory_basis": "usage - inactive_file (cgroup v2)",
              "root_status": 200, "root_body": '{"hello":"world"}',
              "root_content_type": "application/json; charset=utf-8", "container_port": 3000,
              "limits": {"memory": "512m", "pids": 256}}
    single["runtime"] = {**served, "seconds_to_healthy": 1.25, "idle_memory_bytes": 48_500_000,
                         "user": "root"}
    three["runtime"] = {**served, "seconds_to_healthy": 0.8, "idle_memory_bytes": 41_200_000,
                        "user": "node"}
    distroless["runtime"] = {"status": "failed",
                             "error": "no 200 from /healthz within 30 s (the container exited with 1)",
                             "seconds_to_healthy": None, "idle_memory_bytes": None,
                             "memory_basis": None, "root_status": None, "root_body": None,
                             "root_content_type": None, "container_port": 3000,
                             "limits": {"memory": "512m", "pids": 256}, "user": "nonroot",
                             "logs_tail": ["node:internal/modules/cjs/loader:1228",
                                           "Error: Cannot find module '/app/dist/index.js'"]}
    distroless.update(status="failed-at-runtime", error="failed at runtime: no 200 from /healthz "
                      "within 30 s (the container exited with 1)")

    single["attribution"] = {
        "history_count": 16, "layer_count": 12, "empty_history_count": 4,
        "layers": [_layer(i, 100_000_000, source="base") for i in range(11)]
        + [_layer(11, 140_000_000, instruction="COPY . .", node_modules=100_000_000, app=39_000_000)],
        "split": {"base_bytes": 1_100_000_000, "dependencies_bytes": 100_000_000,
                  "app_bytes": 39_000_000, "other_bytes": 1_000_000},
        "by_stage": {"runner": 140_000_000}}
    three["attribution"] = {
        "history_count": 14, "layer_count": 8, "empty_history_count": 6,
        "layers": [_layer(0, 30_000_000, source="base"), _layer(1, 9_000_000, source="base"),
                   _layer(2, 900_000, source="base"), _layer(3, 100_000, source="base"),
                   _layer(4, 0, instruction="WORKDIR /app"),
                   _layer(5, 5_000_000, instruction="COPY --from=deps /app/node_modules ./node_modules",
                          from_stage="deps", node_modules=5_000_000),
                   _layer(6, 300_000, instruction="COPY --from=build /app/dist ./dist",
                          from_stage="build", app=300_000),
                   _layer(7, 1_700_000, instruction="RUN addgroup -S app && adduser -S app")],
        "split": {"base_bytes": 40_000_000, "dependencies_bytes": 5_000_000,
                  "app_bytes": 300_000, "other_bytes": 1_700_000},
        "by_stage": {"runner": 1_700_000, "deps": 5_000_000, "build": 300_000}}
    distroless["attribution"] = None

    record = make_record("20261126T120000Z", [single, three, distroless, broken])
    record["settings"].update(builders=["classic", "buildkit"], scenarios=[
        "cold", "no-change", "source-change", "dependency-change"], runtime=True, registry=True)
    record["bases"]["node:20"].update(status="stand-in", used_ref="harness-standin/node:20",
                                      recipe="node-20", node_version="v20.20.2",
                                      standin_description="Debian bookworm with the buildpack-deps set.")
    record["runtime_comparison"] = {"reference": "single", "same": ["single", "three-stage"],
                                    "different": [], "not_serving": ["distroless"]}
    return record
