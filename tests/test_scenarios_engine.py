"""Scenarios through the runner, on the real engine, with a tiny app built FROM scratch."""

from __future__ import annotations

import hashlib
import json
import shutil
import statistics
from pathlib import Path

from conftest import leftovers

from harness.bench import runner
from harness.bench.variants import Variant

DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
COPY package.json package-lock.json /app/
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox cat /app/package.json > /app/deps.txt"]
COPY src /app/src
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox cat /app/src/index.js > /app/dist.js"]
CMD ["/bin/busybox", "true"]
"""


def _context(root: Path) -> Path:
    ctx = root / "app"
    (ctx / "src").mkdir(parents=True)
    shutil.copy("/bin/busybox", ctx / "busybox")
    (ctx / "src" / "index.js").write_text("console.log('hi');\n")
    (ctx / "package.json").write_text(json.dumps({"name": "tiny", "version": "1.0.0"}))
    (ctx / "package-lock.json").write_text(json.dumps(
        {"name": "tiny", "version": "1.0.0", "lockfileVersion": 3,
         "packages": {"": {"name": "tiny", "version": "1.0.0"}}}))
    return ctx


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(path)).encode() + p.read_bytes())
    return h.hexdigest()


def test_scenarios_rebuild_what_changed_and_keep_every_sample(docker_client, tmp_path):
    ctx = _context(tmp_path)
    dockerfile = tmp_path / "tiny.Dockerfile"
    dockerfile.write_text(DOCKERFILE)
    before = _digest(ctx)
    variant = Variant(name="tiny-scenarios", label="tiny", dockerfile=dockerfile, context=ctx)
    opts = runner.RunOptions(repeat=2, out=tmp_path / "out", bases_mode="present",
                             scenarios=("cold", "no-change", "source-change", "dependency-change"),
                             analyze=False)
    _, record_run, code = runner.execute(docker_client, [variant], opts)
    record = record_run.to_json()  # as results.json stores it
    entry = record["variants"][0]
    try:
        assert code == 0, entry.get("error")
        sc = entry["build"]["scenarios"]
        assert set(sc) == {"cold", "no-change", "source-change", "dependency-change"}
        for name, s in sc.items():
            assert len(s["samples_seconds"]) == 2
            assert len(s["warmup_seconds"]) == (0 if name == "cold" else 1)
            samples = s["samples_seconds"]
            assert s["stats"]["median"] == statistics.median(samples)
            assert s["stats"]["min"] == min(samples) and s["stats"]["n"] == 2
        # 6 instructions besides FROM: the cold build makes all, a no-change build none.
        assert sc["cold"]["steps_total"] == 6 and sc["cold"]["steps_rebuilt"] == 6
        assert sc["no-change"]["steps_rebuilt"] == 0
        # A source edit invalidates `COPY src` and what follows: 2 layers and CMD.
        assert sc["source-change"]["steps_rebuilt"] == 3
        assert sc["source-change"]["steps_rebuilt"] < sc["cold"]["steps_rebuilt"]
        # A dependency edit invalidates from `COPY package*.json` on.
        assert sc["dependency-change"]["steps_rebuilt"] == 5
        assert "src/index.js" in sc["source-change"]["changed"]
        assert entry["build"]["context_files_without_dockerignore"] >= entry["build"]["context_files"]
        assert _digest(ctx) == before  # edits happened in a copy
        # The measured image is the cold build of the unedited context, and only it is left.
        assert docker_client.api.inspect_image(variant.image_tag)["Id"] == entry["image"]["id"]
        assert leftovers(docker_client, record["run_id"], [entry["image"]["id"]]) == []
    finally:
        docker_client.api.remove_image(variant.image_tag, force=True)
