"""The runtime check's settings: variants.toml keys, `harness run` options, how they merge,
what a run records of them, and `runtime = false` as "not checked" through the runner."""

from __future__ import annotations

import dataclasses
import re

import pytest
import typer
from test_runner_unit import FakeEngine

from harness import store
from harness.bench import runner
from harness.bench.options import (
    Probe,
    RunOptions,
    Selection,
    options_from_settings,
    probe_for,
    settings_of,
)
from harness.bench.variants import Variant, load_variants
from harness.cli.options import parse_env, parse_health_path, run_options
from harness.errors import HarnessError
from harness.model import Run, Settings
from harness.report import image_tables, markdown


def _manifest(tmp_path, body: str, name: str = "svc"):
    vdir = tmp_path / "variants"
    vdir.mkdir(exist_ok=True)
    (vdir / f"{name}.Dockerfile").write_text("FROM scratch\n")
    (vdir / "variants.toml").write_text(
        f'context = "."\n[[variant]]\nname = "{name}"\ndockerfile = "{name}.Dockerfile"\n' + body)
    return vdir


# --- variants.toml ------------------------------------------------------------------------

def test_every_runtime_key_is_read(tmp_path):
    vdir = _manifest(tmp_path, 'port = 8080\nhealth_path = "/health"\nexpect_status = 204\n'
                               'env = { NODE_ENV = "production", DB = "none" }\n'
                               'command = ["node", "server.js"]\nruntime = false\n')
    (v,) = load_variants(vdir)
    assert (v.port, v.health_path, v.expect_status) == (8080, "/health", 204)
    assert v.env == {"NODE_ENV": "production", "DB": "none"}
    assert v.command == ("node", "server.js") and v.runtime is False


def test_without_runtime_keys_the_defaults(tmp_path):
    (v,) = load_variants(_manifest(tmp_path, ""))
    assert (v.port, v.health_path, v.expect_status, v.env, v.command, v.runtime) == (
        None, None, None, {}, None, True)


@pytest.mark.parametrize("line, says", [
    ("port = \"8080\"", "port must be a port number"),
    ("port = 0", "port must be a port number"),
    ("port = 70000", "port must be a port number"),
    ("port = true", "port must be a port number"),
    ("health_path = \"health\"", 'health_path must be a path starting with "/"'),
    ("health_path = 3", 'health_path must be a path starting with "/"'),
    ("expect_status = 42", "expect_status must be an HTTP status code"),
    ("env = \"A=1\"", "env must be a table of strings"),
    ("env = { PORT = 8080 }", 'env PORT must be a string (quote it: PORT = "8080")'),
    ("command = \"node server.js\"", "command must be a non-empty array of strings"),
    ("command = []", "command must be a non-empty array of strings"),
    ("command = [\"node\", 1]", "command must be a non-empty array of strings"),
    ("runtime = \"no\"", "runtime must be true or false"),
])
def test_a_bad_runtime_key_is_one_line_naming_the_variant_and_key(tmp_path, line, says):
    vdir = _manifest(tmp_path, line + "\n", name="api")
    with pytest.raises(HarnessError) as exc:
        load_variants(vdir)
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith("variants.toml: variant 'api': ")
    assert says in message


def test_a_bad_runtime_key_is_a_warning_leniently(tmp_path):
    from harness.bench.variants import load_variants_with_warnings

    vdir = _manifest(tmp_path, "port = \"x\"\n")
    variants, warnings = load_variants_with_warnings(vdir)
    assert [v.name for v in variants] == ["svc"]
    assert len(warnings) == 1 and "variant 'svc': port must be" in warnings[0]


# --- merging: the variant's settings win over the run's -----------------------------------

def _variant(**kw) -> Variant:
    return Variant("v", "v", dockerfile=None, context=None, **kw)  # type: ignore[arg-type]


def test_defaults_when_nothing_is_set():
    assert probe_for(_variant(), RunOptions(runtime=True)) == Probe()
    assert Probe().check_kwargs() == {"port": None, "health_path": "/healthz",
                                      "expect_status": None, "env": {}, "command": None}


def test_the_runs_settings_apply_and_the_variants_win():
    opts = RunOptions(runtime=True, port=3001, health_path="/ready",
                      env={"A": "run", "B": "run"})
    assert probe_for(_variant(), opts) == Probe(port=3001, health_path="/ready",
                                                env={"A": "run", "B": "run"})
    own = _variant(port=8080, health_path="/health", expect_status=204, env={"B": "own"},
                   command=("node", "x.js"))
    assert probe_for(own, opts) == Probe(port=8080, health_path="/health", expect_status=204,
                                         env={"A": "run", "B": "own"}, command=("node", "x.js"))


def test_not_checked_when_the_variant_or_the_run_says_so():
    assert probe_for(_variant(runtime=False), RunOptions(runtime=True)) is None
    assert probe_for(_variant(), RunOptions(runtime=False)) is None


# --- the command line ----------------------------------------------------------------------

def test_env_options():
    assert parse_env(None) == {}
    assert parse_env(["A=1", "B=x=y", "A=2", "EMPTY="]) == {"A": "2", "B": "x=y", "EMPTY": ""}
    for bad in ("NOVALUE", "=1"):
        with pytest.raises(typer.BadParameter, match="not KEY=VALUE"):
            parse_env([bad])


def test_health_path_option():
    assert parse_health_path(None) is None and parse_health_path("/health") == "/health"
    with pytest.raises(typer.BadParameter, match="starting with"):
        parse_health_path("health")


def test_run_options_carry_the_runtime_settings(tmp_path):
    opts = run_options(names=None, repeat=1, variants_dir=tmp_path, context=None,
                       out_dir=tmp_path / "out", bases_mode="auto", bases_lock=None,
                       update_lock=False, analyze=True, scenario=None, warmup=None,
                       builder=None, timeout=None, runtime=True, registry=False,
                       cold_pull=False, keep_images=True, secret_arg=None, port=8080,
                       health_path="/health", env=["A=1"])
    assert (opts.port, opts.health_path, opts.env) == (8080, "/health", {"A": "1"})


# --- recorded, and read back on --resume ---------------------------------------------------

def test_settings_round_trip_through_resume(tmp_path):
    opts = RunOptions(runtime=True, port=8080, health_path="/health",
                      env={"NODE_ENV": "production", "API_TOKEN": "s3cr3t-value"},
                      selection=Selection(tmp_path))
    settings = settings_of(opts)
    assert settings.port == 8080 and settings.health_path == "/health"
    assert settings.env == {"NODE_ENV": "production", "API_TOKEN": "***"}  # masked
    recorded = Run.from_json({"run_id": "r", "created_utc": "2024-01-01T00:00:00+00:00",
                              "harness": {"version": "0"},
                              "settings": dataclasses.asdict(settings)}).settings
    assert recorded == settings

    # The record wins; a masked value comes from the command line, else is left out.
    given = RunOptions(port=1, health_path="/other", env={"API_TOKEN": "s3cr3t-value"})
    back = options_from_settings(recorded, given)
    assert (back.port, back.health_path) == (8080, "/health")
    assert back.env == {"NODE_ENV": "production", "API_TOKEN": "s3cr3t-value"}
    assert options_from_settings(recorded, RunOptions()).env == {"NODE_ENV": "production"}

    # The same for a masked build arg: never built as "***".
    secret_args = settings_of(RunOptions(build_args={"NODE": "24", "NPM_TOKEN": "t0ken-value"},
                                         selection=Selection(tmp_path)))
    assert secret_args.build_args == {"NODE": "24", "NPM_TOKEN": "***"}
    assert options_from_settings(secret_args, RunOptions()).build_args == {"NODE": "24"}
    assert options_from_settings(secret_args, RunOptions(build_args={"NPM_TOKEN": "t"})
                                 ).build_args == {"NODE": "24", "NPM_TOKEN": "t"}

    # A record without them (an older run): the command line's.
    old = options_from_settings(Settings(), given)
    assert (old.port, old.health_path, old.env) == (1, "/other", {"API_TOKEN": "s3cr3t-value"})


# --- runtime = false through the runner: "not checked", exit code 0 ------------------------

@pytest.fixture
def two_variants(tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "index.js").write_text("console.log('hi')\n")
    vdir = tmp_path / "variants"
    vdir.mkdir()
    base = "example.org/base:1"
    lines = ['context = "../ctx"']
    for name, extra in (("web", 'port = 8080\nhealth_path = "/health"\n'
                                'env = { SESSION_SECRET = "very-secret-value" }'),
                        ("needs-db", "runtime = false")):
        (vdir / f"{name}.Dockerfile").write_text(f"FROM {base}\nCOPY . /app\n")
        lines += ["[[variant]]", f'name = "{name}"', f'dockerfile = "{name}.Dockerfile"', extra]
    (vdir / "variants.toml").write_text("\n".join(lines) + "\n")
    return load_variants(vdir)


class ProbedEngine(FakeEngine):
    """The fake engine, remembering each runtime check's probe."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.probes: dict[str, Probe | None] = {}

    def runtime_check(self, image_id: str, *, labels: dict, probe=None) -> dict:
        self.probes[self.images[image_id]] = probe
        return {"status": "ok", "health_source": "http", "health_path": probe.health_path,
                "seconds_to_healthy": 0.5, "root_status": 200, "root_body": "{}",
                "container_port": probe.port}


def test_runtime_false_is_not_checked_and_the_run_passes(tmp_path, two_variants):
    port = ProbedEngine()
    opts = RunOptions(repeat=1, out=tmp_path / "out", runtime=True, port=3000,
                      env={"LOG_LEVEL": "debug"})
    run_dir, run, code = runner.execute(None, two_variants, opts, port=port)
    assert run == store.load_run(run_dir)
    record = run.to_json()
    assert code == 0
    web, db = record["variants"]
    assert web["status"] == "ok" and web["runtime"]["status"] == "ok"
    assert port.probes["web"] == Probe(port=8080, health_path="/health",
                                       env={"LOG_LEVEL": "debug",
                                            "SESSION_SECRET": "very-secret-value"})
    assert "needs-db" not in port.probes  # never started
    assert db["status"] == "ok" and db.get("error") is None
    assert db["runtime"] == {"status": "not-checked",
                             "skipped": "runtime = false in variants.toml for this variant"}
    assert record["runtime_comparison"]["not_serving"] == []  # not checked is not "not serving"
    assert record["settings"]["port"] == 3000 and record["settings"]["env"] == {
        "LOG_LEVEL": "debug"}
    assert "very-secret-value" not in (run_dir / "results.json").read_text()

    table = image_tables.runtime_table(run)
    rows = {r["Variant"]: r for r in table.to_dict("records")}
    assert rows["needs-db"]["Status"] == "not checked"
    assert rows["needs-db"]["Checked by"] == "not checked"
    assert rows["web"]["Checked by"] == "GET /health" and rows["web"]["Healthy after"] == "0.50 s"
    assert image_tables.runtime_failures(run) == []
    lines = markdown.markdown_lines(run)
    assert any(re.match(r"- `needs-db`\*? was not started: not checked \(runtime = false", line)
               for line in lines), [line for line in lines if "needs-db" in line]
    assert not any("failed at runtime" in line for line in lines)


def test_healthcheck_rows_say_so():
    from harness.model import RuntimeCheck

    rt = RuntimeCheck(status="ok", health_source="healthcheck", engine_health="healthy")
    assert image_tables._checked_by(rt) == "HEALTHCHECK (healthy)"
    assert not image_tables._default_probe(rt)
    assert image_tables._default_probe(RuntimeCheck(status="ok"))
