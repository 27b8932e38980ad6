"""The command line without an engine: the commands it lists, run options <-> the settings
a run records (what --resume reads back), and usage errors."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import signal
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.bench.options import Selection, options_from_settings, settings_of
from harness.cli import app
from harness.cli.options import finished, resumed, run_options
from harness.model import Settings

FIXTURE_RUN = Path(__file__).parent / "fixtures" / "run"
COMMANDS = ("list", "run", "clean", "report", "bases", "engines", "history", "compare", "init")


def _given(tmp_path: Path, **changes) -> dict:
    """`harness run`'s typer arguments, every one away from its default."""
    args = dict(names=["single", "distroless"], repeat=5, variants_dir=tmp_path / "variants",
                context=tmp_path / "app", out_dir=tmp_path / "out", bases_mode="present",
                bases_lock=tmp_path / "bases.lock", update_lock=True, analyze=False,
                scenario=["no-change,source-change"], warmup=2, builder=["buildkit", "classic"],
                timeout=90.0, runtime=False, registry=True, cold_pull=False, keep_images=False,
                secret_arg=["NPM_TOKEN"])
    return {**args, **changes}


def test_help_lists_every_command_in_order():
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    listed = [line.split()[1] for line in result.output.splitlines()
              if line.startswith("│ ") and len(line.split()) > 2 and line.split()[1] in COMMANDS]
    assert listed == list(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_its_own_help(command):
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


def test_typer_arguments_become_run_options(tmp_path):
    opts = run_options(**_given(tmp_path))
    assert (opts.repeat, opts.out, opts.bases_mode, opts.bases_lock, opts.update_lock,
            opts.analyze) == (5, tmp_path / "out", "present", tmp_path / "bases.lock", True, False)
    assert opts.scenarios == ("no-change", "source-change")
    assert opts.builders == ("buildkit", "classic")
    assert (opts.warmup, opts.timeout, opts.runtime, opts.registry, opts.cold_pull,
            opts.keep_images, opts.secret_args) == (2, 90.0, False, True, False, False, ("NPM_TOKEN",))
    assert opts.selection == Selection(tmp_path / "variants", tmp_path / "app",
                                           ("single", "distroless"))


def test_settings_round_trip_through_options_from_settings(tmp_path):
    opts = finished(run_options(**_given(tmp_path)), ["variants.toml: line 3: bad"])
    settings = settings_of(opts)
    assert settings.builder == "buildkit" and settings.scenario == "no-change"
    assert settings.manifest_warnings == ["variants.toml: line 3: bad"]
    # What the record does not hold comes from the command line of the resuming run.
    defaults = run_options(**_given(tmp_path / "elsewhere", names=None, repeat=3,
                                    scenario=None, warmup=None, builder=None, timeout=None,
                                    runtime=True, registry=False, cold_pull=True))
    overrides = replace(defaults, out=opts.out, bases_mode=opts.bases_mode,
                        bases_lock=opts.bases_lock, update_lock=opts.update_lock,
                        analyze=opts.analyze, keep_images=opts.keep_images,
                        secret_args=opts.secret_args)
    back = options_from_settings(settings, overrides)
    # manifest warnings are found again when the variants are loaded, not read back
    assert back == replace(opts, manifest_warnings=())
    assert settings_of(finished(back, ["variants.toml: line 3: bad"])) == settings


def test_recorded_settings_win_and_the_command_line_fills_the_rest(tmp_path):
    given = run_options(**_given(tmp_path))
    back = options_from_settings(Settings(repeat=1, names=None, scenarios=[]), given)
    assert back.repeat == 1  # recorded
    assert back.selection.names == ("single", "distroless")  # none recorded: the given ones
    assert back.scenarios == given.scenarios and back.builders == given.builders


def test_cold_pull_needs_the_registry(tmp_path):
    opts = run_options(**_given(tmp_path, registry=False, cold_pull=True))
    assert opts.cold_pull and not finished(opts, []).cold_pull


def test_resume_reads_the_runs_settings_and_writes_beside_it(tmp_path):
    run_dir = tmp_path / "results" / "20250101T000000Z"
    shutil.copytree(FIXTURE_RUN, run_dir)
    given = run_options(**_given(tmp_path))
    for path in (run_dir, run_dir / "results.json"):
        opts = resumed(path, given)
        assert (opts.resume, opts.out, opts.repeat) == (run_dir, run_dir.parent, 3)
        assert opts.secret_args == given.secret_args  # not recorded: the command line's


@pytest.mark.parametrize(("args", "message"), [
    (["run", "--bases", "bogus"], "Invalid value for --bases: must be one of auto, pull, present"),
    (["run", "--builder", "nope"], "Invalid value for --builder: unknown builder 'nope'"),
    (["run", "--repeat", "0"], "Invalid value for '--repeat'"),
    (["compare", "a", "b", "--format", "xml"], "Invalid value for --format: must be md, json or csv"),
    (["clean"], "Invalid value: give exactly one of --run RUN or --all"),
])
def test_a_bad_option_value_is_a_one_line_usage_error(args, message):
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if "Invalid value" in line]
    assert len(errors) == 1 and message in errors[0]


class _Calls(list):
    ports: list


@pytest.fixture
def fake_bench(tmp_path, monkeypatch):
    """`harness run` with the engine and the bench replaced: the fixture run's record is
    what every run measures. Returns the options each run was given."""
    from harness import engine, store
    from harness.bench import runner

    run = store.load_run(FIXTURE_RUN)
    given = _Calls()
    ports = []  # the EnginePort each run was given (None: the default engine's)

    def execute(client, variants, opts, progress=None, port=None):
        given.append((opts, [v.name for v in variants]))
        ports.append(port)
        run_dir = opts.resume or tmp_path / "out" / "20261126T120000Z"
        run_dir.mkdir(parents=True, exist_ok=True)
        store.save(run_dir, run)
        return run_dir, run, 0

    monkeypatch.setattr(engine, "connect", lambda **kwargs: object())
    monkeypatch.setattr(runner, "execute", execute)
    before = signal.getsignal(signal.SIGTERM)  # `harness run` handles SIGTERM like Ctrl-C
    given.ports = ports
    yield given
    signal.signal(signal.SIGTERM, before)


def test_run_writes_the_outputs_and_resume_keeps_the_runs_method(tmp_path, fake_bench):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", "single-node20", "--out", str(out), "--repeat", "2",
                                      "--scenario", "cold", "--no-registry"])
    assert result.exit_code == 0, result.output
    run_dir = out / "20261126T120000Z"
    opts, names = fake_bench[-1]
    assert names == ["single-node20"] and (opts.repeat, opts.scenarios, opts.out) == (2, ("cold",), out)
    assert not opts.cold_pull  # no registry, no cold pull
    for name in ("table.md", "report.md", "results.csv", "build_times.csv", "sizes.png",
                 "index.html"):
        assert (run_dir / name).is_file() and f"wrote {run_dir / name}" in result.output
    assert (out / "latest").resolve() == run_dir.resolve()

    result = CliRunner().invoke(app, ["run", "--resume", str(run_dir), "--repeat", "7",
                                      "--out", str(tmp_path / "ignored")])
    assert result.exit_code == 0, result.output
    opts, _ = fake_bench[-1]
    assert (opts.resume, opts.out, opts.repeat) == (run_dir, out, 3)  # the record's repeat


def test_dash_h_is_help_everywhere():
    for args in (["-h"], ["run", "-h"], ["report", "-h"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0 and "Usage:" in result.output, args


def test_help_texts_keep_their_brackets_and_say_what_repeat_counts():
    result = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "250"})
    assert "[budgets.<variant>]" in result.output
    assert "per scenario" in result.output


def test_a_piped_report_keeps_every_table_row_on_one_line(tmp_path):
    """`harness report RUN > report.md` is valid Markdown: no row is hard-wrapped."""
    import subprocess
    import sys

    run_dir = tmp_path / "run"
    shutil.copytree(FIXTURE_RUN, run_dir)
    proc = subprocess.run([sys.executable, "-m", "harness", "report", str(run_dir)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    table = (run_dir / "report.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("|")]
    assert rows and max(len(r) for r in rows) > 160  # wide enough to have been wrapped
    printed = proc.stdout.splitlines()
    for row in rows:
        assert row in printed, f"a table row was wrapped: {row[:80]}..."


def test_written_files_are_readable_by_others(tmp_path):
    import os
    import stat

    from harness.store import write_atomic

    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "x.md", "hello\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.md").stat().st_mode) == 0o644


def test_list_exits_non_zero_naming_a_variant_that_cannot_be_built(tmp_path, monkeypatch):
    from harness import engine
    from harness.errors import HarnessError

    def no_engine(*args, **kwargs):
        raise HarnessError("no engine in this test")

    monkeypatch.setattr(engine, "connect", no_engine)
    (tmp_path / "v").mkdir()
    (tmp_path / "app").mkdir()
    (tmp_path / "v" / "good.Dockerfile").write_text("FROM alpine:3.20\nCMD [\"true\"]\n")
    (tmp_path / "v" / "typo.Dockerfile").write_text("FROM alpine:3.20\nRUNN true\n")
    result = CliRunner().invoke(app, ["list", "--variants-dir", str(tmp_path / "v"),
                                      "--context", str(tmp_path / "app")],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert "typo: typo.Dockerfile: line 2: unknown instruction RUNN" in result.output
    assert "1 variant(s) cannot be built" in result.output


def test_defaults_are_relative_to_the_working_directory(tmp_path, monkeypatch):
    """Installed with pip, the harness looks for ./variants and writes ./results; in an
    empty directory it says in one line how to start."""
    from harness.cli.common import DEFAULT_OUT, DEFAULT_VARIANTS

    assert not DEFAULT_VARIANTS.is_absolute() and not DEFAULT_OUT.is_absolute()
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["list"])
    assert result.exit_code != 0
    assert "variants" in result.output and "harness init" in result.output
    assert "Traceback" not in result.output


def test_the_readme_documents_every_exit_code():
    import re

    from harness.errors import ExitCode

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    line = next(x for x in readme.replace("\n  ", " ").splitlines() if "Exit codes:" in x)
    documented = {int(n) for n in re.findall(r"\b(\d+)\b", line)}
    assert {int(c) for c in ExitCode} <= documented, line


def test_list_json_is_the_only_thing_on_stdout(tmp_path):
    import json
    import subprocess
    import sys

    (tmp_path / "v").mkdir()
    (tmp_path / "app").mkdir()
    (tmp_path / "v" / "good.Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    (tmp_path / "v" / "typo.Dockerfile").write_text("FROM scratch\nRUNN true\n")
    proc = subprocess.run([sys.executable, "-m", "harness", "list", "--json", "--variants-dir",
                           str(tmp_path / "v"), "--context", str(tmp_path / "app")],
                          capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ,
                               "DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    rows = json.loads(proc.stdout)  # nothing else on stdout
    assert [r["name"] for r in rows] == ["good", "typo"]
    assert rows[0]["problem"] is None and rows[0]["bases"] == {}
    assert "unknown instruction RUNN" in rows[1]["problem"]
    assert proc.returncode == 1 and "typo" in proc.stderr


def test_a_shard_with_work_on_one_engine_runs_on_that_engine(tmp_path, fake_bench):
    # One variant on two engines: shard 1/2 is (variant, a), shard 2/2 (variant, b).
    args = ["run", "single-node20", "-o", str(tmp_path / "out"), "-r", "1", "-s", "cold",
            "--no-registry", "--engine", "a=unix:///run/a.sock", "--engine",
            "b=unix:///run/b.sock", "--shard", "2/2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    opts, names = fake_bench[-1]
    assert names == ["single-node20"] and opts.shard == "2/2" and opts.planned == ("single-node20",)
    port = fake_bench.ports[-1]
    assert (port.name, port.host) == ("b", "unix:///run/b.sock")


def test_resume_completes_a_shard_on_its_engine(tmp_path, fake_bench):
    from harness import store

    run = store.load_run(FIXTURE_RUN)
    part = tmp_path / "part"
    part.mkdir()
    store.save(part, dataclasses.replace(
        run, engine=dataclasses.replace(run.engine, name="b", host="unix:///run/b.sock"),
        settings=dataclasses.replace(run.settings, engines=["b"], shard="2/2",
                                     names=["single-node20"], planned=["x", "single-node20"])))
    result = CliRunner().invoke(app, ["run", "--resume", str(part)])
    assert result.exit_code == 0, result.output
    opts, names = fake_bench[-1]
    # The same engine, the shard's own variants: no new split.
    assert names == ["single-node20"] and opts.shard is None
    assert (fake_bench.ports[-1].name, fake_bench.ports[-1].host) == ("b", "unix:///run/b.sock")


def test_resume_refuses_a_merged_run(tmp_path, fake_bench):
    from harness import store

    run = store.load_run(FIXTURE_RUN)
    merged = tmp_path / "merged"
    merged.mkdir()
    store.save(merged, dataclasses.replace(run, merged_from=["a", "b"]))
    result = CliRunner().invoke(app, ["run", "--resume", str(merged), "-o", str(tmp_path)])
    assert result.exit_code == 2 and "resume its parts, then merge" in result.output
    assert not fake_bench


def test_run_json_prints_only_the_summary_on_stdout(tmp_path, fake_bench):
    import json

    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", "--json", "--out", str(out), "--repeat", "1",
                                      "--scenario", "cold", "--no-registry"])
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)  # nothing else on stdout
    assert summary["run_dir"] == str(out / "20261126T120000Z") and summary["exit_code"] == 0
    assert summary["variants"] and all("size_bytes" in v for v in summary["variants"])
    assert "wrote " in result.stderr and "| " in result.stderr  # the tables, on stderr


def test_run_names_a_run_the_same_way_in_every_command(tmp_path, monkeypatch):
    """`RUN` is a run directory or a run id under ./results, in report, compare and clean."""
    results_dir = tmp_path / "results"
    shutil.copytree(FIXTURE_RUN, results_dir / "20261126T120000Z")
    monkeypatch.chdir(tmp_path)
    by_id = CliRunner().invoke(app, ["report", "20261126T120000Z"])
    assert by_id.exit_code == 0, by_id.output
    assert "wrote results/20261126T120000Z/report.md" in by_id.output
    names = [v["name"] for v in json.loads((results_dir / "20261126T120000Z" / "results.json")
                                           .read_text())["variants"]][:2]
    for run in ("20261126T120000Z", "results/20261126T120000Z"):
        result = CliRunner().invoke(app, ["compare", *names, "--run", run, "-f", "json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)
    missing = CliRunner().invoke(app, ["compare", "nope", "20261126T120000Z"])
    assert missing.exit_code == 2
    assert "no run nope: not a directory, nor a run id under results/" in missing.output


def test_common_options_have_short_forms():
    result = CliRunner().invoke(app, ["run", "-h"], env={"COLUMNS": "200"})
    for short in ("-r", "-d", "-c", "-o", "-s", "-b", "-t", "-p", "-e"):
        assert re.search(rf"(^|\s){short}[\s,]", result.output), short
    assert "-d" in CliRunner().invoke(app, ["list", "-h"]).output
