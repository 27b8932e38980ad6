"""Secret build args: their values appear nowhere the harness writes or prints."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, require

pytestmark = pytest.mark.engine
BUSYBOX = Path("/bin/busybox")
VALUE = "s3cr3t-value-8f2a"
OTHER = "another-private-77"


def test_secret_build_args_are_masked_everywhere(docker_client, tmp_path):
    require(BUSYBOX.exists(), "needs Debian's busybox-static")
    vdir, ctx = tmp_path / "v", tmp_path / "c"
    vdir.mkdir()
    ctx.mkdir()
    shutil.copy(BUSYBOX, ctx / "busybox")
    (vdir / "leaky.Dockerfile").write_text(
        "FROM scratch\nCOPY busybox /bin/busybox\nARG NPM_TOKEN\nARG REGISTRY_PW\n"
        'RUN ["/bin/busybox", "sh", "-c", "echo token=$NPM_TOKEN pw=$REGISTRY_PW"]\n')
    (vdir / "variants.toml").write_text(
        '[[variant]]\nname = "leaky"\ndockerfile = "leaky.Dockerfile"\n'
        f'build_args = {{ NPM_TOKEN = "{VALUE}", REGISTRY_PW = "{OTHER}" }}\n')
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--repeat", "1", "--scenario", "cold",
         "--no-runtime", "--no-registry", "--secret-arg", "registry_pw",
         "--variants-dir", str(vdir), "--context", str(ctx), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, check=False)
    record = json.loads((out / "latest" / "results.json").read_text())
    try:
        assert proc.returncode == 0, proc.stderr[-2000:]
        entry = record["variants"][0]
        assert entry["build_args"] == {"NPM_TOKEN": "***", "REGISTRY_PW": "***"}
        # The engine's own history holds the values (the image is the user's); ours does not.
        history = docker_client.api.history(entry["image"]["id"])
        assert any(VALUE in h["CreatedBy"] for h in history)
        assert any("***" in h["created_by"] for h in entry["image"]["history"])
        written = [p for p in out.rglob("*") if p.is_file()]
        assert {p.name for p in written} >= {"results.json", "table.md", "results.csv",
                                            "index.html", "history.jsonl"}
        for path in written:
            data = path.read_bytes()
            assert VALUE.encode() not in data and OTHER.encode() not in data, path.name
        for text in (proc.stdout, proc.stderr):
            assert VALUE not in text and OTHER not in text
    finally:
        docker_client.api.remove_image(record["variants"][0]["image"]["id"], force=True)
