"""Bad input, through the CLI as a nightly job runs it: one line per broken variant that
names it and the cause, the others measured, exit 1, a complete results.json."""

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
GOOD = "FROM scratch\nCOPY busybox /bin/busybox\n"
BROKEN = {
    "b-syntax": 'FROM scratch\nRUN ["unterminated\n',
    "c-unknown": "FROM scratch\nFLY away\n",
    "d-missing-copy": "FROM scratch\nCOPY not-there.txt /\n",
    "e-failing-run": GOOD + 'RUN ["/bin/busybox", "sh", "-c", "echo about to fail; exit 3"]\n',
    "f-target": "FROM scratch AS one\nCOPY busybox /\n",
    "g-from": "FROM harness-test/no-such-image:0\n",
    "h-undeclared": GOOD,  # a build arg nobody declares: a warning only
}
MANIFEST = """\
context = "../c"

[[variant]]
name = "a-good"
dockerfile = "a-good.Dockerfile"

[[variant]]
name = "f-target"
dockerfile = "f-target.Dockerfile"
target = "two"

[[variant]]
name = "h-undeclared"
dockerfile = "h-undeclared.Dockerfile"
build_args = { NOT_DECLARED = "1" }

"""
# What is wrong with the manifest itself stops the run before any build (exit 2).
BAD_ENTRIES = """
[[variant]]
name = "i-missing-file"
dockerfile = "nowhere.Dockerfile"

[[variant]]
name = "a-good"
dockerfile = "h-undeclared.Dockerfile"

[[variant]]
name = "j-no-context"
dockerfile = "a-good.Dockerfile"
context = "no-such-dir"
"""


def _harness(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=ROOT,
                          capture_output=True, text=True, check=False)


def _bench(tmp_path: Path, manifest: str | None) -> tuple[Path, Path]:
    vdir, ctx = tmp_path / "v", tmp_path / "c"
    vdir.mkdir()
    ctx.mkdir()
    shutil.copy(BUSYBOX, ctx / "busybox")
    (vdir / "a-good.Dockerfile").write_text(GOOD)
    for name, text in BROKEN.items():
        (vdir / f"{name}.Dockerfile").write_text(text)
    if manifest is not None:
        (vdir / "variants.toml").write_text(manifest)
    return vdir, ctx


def _run(vdir: Path, ctx: Path | None, out: Path) -> subprocess.CompletedProcess:
    context = ["--context", str(ctx)] if ctx else []  # else the manifest's
    return _harness("run", "--repeat", "1", "--scenario", "cold", "--no-runtime",
                    "--no-registry", "--no-analyze", "--bases", "present",
                    "--variants-dir", str(vdir), *context, "--out", str(out))


def _remove_images(client, record: dict) -> None:
    for v in record["variants"]:
        if v.get("image"):
            client.api.remove_image(v["image"]["id"], force=True)


def test_each_kind_of_bad_input_is_one_line_and_the_rest_is_measured(docker_client, tmp_path):
    require(BUSYBOX.exists(), "needs Debian's busybox-static")
    vdir, _ = _bench(tmp_path, MANIFEST)
    proc = _run(vdir, None, tmp_path / "out")
    record = json.loads((tmp_path / "out" / "latest" / "results.json").read_text())
    try:
        assert proc.returncode == 1, proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr
        assert record["finished_utc"]  # complete, not a partial record
        by = {}
        for v in record["variants"]:
            by.setdefault(v["name"], v)
        errors = {name: (v["status"], v.get("error") or "") for name, v in by.items()}
        assert errors["a-good"][0] == "ok"
        assert errors["h-undeclared"][0] == "ok"
        assert any("NOT_DECLARED" in w for w in by["h-undeclared"]["warnings"])
        expected = {
            "b-syntax": "",  # the engine's own parse error, whatever its words
            "c-unknown": "unknown instruction",
            "d-missing-copy": "not-there.txt",
            "e-failing-run": "exit",
            "f-target": "target stage 'two' not found",
            "g-from": "harness-test/no-such-image:0",
        }
        for name, words in expected.items():
            status, error = errors[name]
            assert status == "failed", (name, error)
            assert words.lower() in error.lower(), (name, error)
            assert "\n" not in error
            assert f"{name}: failed" in proc.stderr or f"{name}: failed" in proc.stdout, name
        assert any("about to fail" in line for line in by["e-failing-run"]["log_tail"])
        table = (tmp_path / "out" / "latest" / "table.md").read_text()
        assert "| a-good " in table and "**failed**" in table
    finally:
        _remove_images(docker_client, record)


@pytest.mark.parametrize("manifest, words", [
    ("[[variant]\nname = ", ["variants.toml", "not valid TOML"]),
    (MANIFEST + BAD_ENTRIES, ["variant 'i-missing-file': Dockerfile nowhere.Dockerfile does not exist",
                              "variant 'a-good': another variant is already named 'a-good'",
                              "variant 'j-no-context': build context", "no-such-dir"]),
    ('[[variant]]\nname = "x"\ndockerfile = "a-good.Dockerfile"\nlable = "typo"\n',
     ["unknown key(s) lable", "allowed:", "label"]),
])
def test_a_bad_manifest_stops_the_run_before_any_build(tmp_path, manifest, words):
    """Not TOML, entries naming what does not exist, an unknown key: one line naming all
    of it, exit 2, no run directory and no image."""
    vdir, _ = _bench(tmp_path, manifest)
    proc = _run(vdir, None, tmp_path / "out")  # the manifest's context: "../c"
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    for w in words:
        assert w in errors[0], (w, errors[0])
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("2*"))


@pytest.mark.parametrize("args, words", [
    (["--repeat", "0"], "--repeat"),
    (["no-such-variant"], "no-such-variant"),
    (["--scenario", "lukewarm"], "lukewarm"),
    (["--builder", "kaniko"], "kaniko"),
])
def test_cli_misuse_fails_before_building(tmp_path, args, words):
    vdir, ctx = _bench(tmp_path, None)
    out = tmp_path / "out"
    proc = _harness("run", *args, "--variants-dir", str(vdir), "--context", str(ctx),
                    "--out", str(out))
    assert proc.returncode == 2 or (proc.returncode == 1 and "error:" in proc.stderr)
    assert words in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists() or not any(out.glob("2*"))  # nothing was built or written


def test_output_directory_that_is_a_file_is_a_usage_error(tmp_path):
    vdir, ctx = _bench(tmp_path, None)
    out = tmp_path / "out"
    out.write_text("a file")
    proc = _harness("run", "--variants-dir", str(vdir), "--context", str(ctx), "--out", str(out))
    assert proc.returncode == 2 and "not a directory" in proc.stderr
