"""Several engines in one run, and shards merged into one: through `harness run` and
`harness merge`, on the engines `make engines` starts and one reached over tcp:// with TLS.

The variants are a small Node.js service on the node:20-alpine stand-in, whose builds need
no network (the engines `make engines` starts give their containers none):
- `--engines compare` on docker20, docker26, docker26-containerd and podman fills every
  cell of the engines' table for every variant, and index.html shows it in Chromium;
- two shards, one on the engine `make engines` started that is of the default engine's kind
  (version and store), one on the default engine reached over TLS, merged: the sizes and layer counts equal a single
  run of all variants on the default engine, and the page says which engine and machine
  measured each row.
In CI a missing engine is a failure, never a skip.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import docker
import pytest
from conftest import require
from test_html_report import _browse, _chromium
from tls_engine import tls_engine
from typer.testing import CliRunner

from harness import store
from harness.cli import app
from harness.report import engines as engine_report

pytestmark = [pytest.mark.engine]
ENGINES = ("docker20", "docker26", "docker26-containerd", "podman")
STATE = Path(os.environ.get("HARNESS_STATE") or "/var/tmp/harness")
DEFAULT_SOCKET = "/var/run/docker.sock"

SERVER = """\
const http = require("http");
const body = JSON.stringify({ service: "tiny", ok: true });
http.createServer((req, res) => {
  res.writeHead(200, { "content-type": "application/json" });
  res.end(req.url === "/healthz" ? "{}" : body);
}).listen(3000);
"""
DOCKERFILES = {
    "single": 'FROM node:20-alpine\nWORKDIR /app\nCOPY server.js .\nEXPOSE 3000\n'
              'CMD ["node", "server.js"]\n',
    "two-stage": 'FROM node:20-alpine AS build\nWORKDIR /src\nCOPY server.js .\n'
                 'RUN node -e "const f=require(\'fs\');f.writeFileSync(\'out.js\','
                 'f.readFileSync(\'server.js\',\'utf8\').replace(/\\\\n\\\\s+/g,\'\\\\n\'))"\n'
                 'FROM node:20-alpine\nWORKDIR /app\nCOPY --from=build /src/out.js server.js\n'
                 'USER node\nEXPOSE 3000\nCMD ["node", "server.js"]\n',
    "copy-twice": 'FROM node:20-alpine\nWORKDIR /app\nCOPY server.js .\nCOPY server.js copy.js\n'
                  'EXPOSE 3000\nCMD ["node", "server.js"]\n',
}


def _host(name: str) -> str:
    path = STATE / "engines" / name / "host"
    require(path.is_file(), f"engine {name} is not running (make engines)")
    host = path.read_text().strip()
    try:
        docker.DockerClient(base_url=host, timeout=20).ping()
    except (docker.errors.DockerException, OSError) as exc:
        require(False, f"engine {name} at {host} does not answer ({exc})")
    return host


@pytest.fixture(scope="module")
def variants_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    (root / "app").mkdir()
    (root / "app" / "server.js").write_text(SERVER)
    vdir = root / "variants"
    vdir.mkdir()
    manifest = []
    for name, text in DOCKERFILES.items():
        (vdir / f"{name}.Dockerfile").write_text(text)
        manifest.append(f'[[variant]]\nname = "{name}"\nlabel = "Tiny, {name}"\n'
                        f'dockerfile = "{name}.Dockerfile"\n')
    (vdir / "variants.toml").write_text(f'context = "{root / "app"}"\n\n' + "\n".join(manifest))
    return vdir


def _run(args: list[str], env: dict | None = None):
    got = CliRunner().invoke(app, args, env=env)
    assert "Traceback" not in got.output, got.output
    return got


COMMON = ["-r", "1", "-s", "cold", "--no-cold-pull", "--no-keep-images"]


def _marks(dom: str) -> dict[str, str]:
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:2000]
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(1)))


def test_four_engines_side_by_side(variants_dir, tmp_path):
    hosts = {name: _host(name) for name in ENGINES}
    out = tmp_path / "results"
    got = _run(["run", "-d", str(variants_dir), "-o", str(out), *COMMON, "--engines", "compare",
                *(a for n, h in hosts.items() for a in ("--engine", f"{n}={h}"))])
    run = store.load_run(out / "latest")
    rows = {(v.name, v.engine_name): v for v in run.variants}
    assert got.exit_code == 0, (got.output[-3000:], {k: v.error for k, v in rows.items()})
    assert set(rows) == {(n, e) for n in DOCKERFILES for e in ENGINES}
    for (name, engine), v in rows.items():
        assert v.status == "ok" and v.runtime.status == "ok", (name, engine, v.error)
        assert v.image.size_bytes > 10_000_000 and v.image.layer_count >= 3, (name, engine)
        assert v.image.listed_size_bytes or v.image.inspect_size_bytes, (name, engine)
        assert v.build.samples_seconds and v.registry.push_seconds and v.registry.pull_seconds
        assert v.registry.compressed_bytes, (name, engine, v.registry.error)
    assert run.engines and set(run.engines) == set(ENGINES)
    assert run.engines["docker26-containerd"].store and "containerd" in run.engines[
        "docker26-containerd"].store
    # Same files everywhere: the engine-independent size agrees between the Docker stores.
    for name in DOCKERFILES:
        sizes = {rows[name, e].image.size_bytes for e in ("docker20", "docker26",
                                                          "docker26-containerd")}
        assert len(sizes) == 1, (name, sizes)
    frame = engine_report.comparison_frame(run)
    assert len(frame) == len(DOCKERFILES) * len(ENGINES)
    assert not (frame == "–").any().any(), frame.to_string()
    why = " ".join(engine_report.why_lines(run))
    assert "containerd image store" in why and "Podman" in why

    browser = _chromium()
    require(browser is not None, "needs Debian's chromium (apt-get install -y chromium)")
    page = (out / "latest" / "index.html").resolve()
    marks = _marks(_browse(browser, tmp_path, page.as_uri(), "--dump-dom").stdout)
    assert marks.get("ready") == "1", marks
    assert marks["engine-rows"] == str(len(frame)) and marks["engine-chart"] == "1", marks
    assert marks["summary-rows"] == str(len(DOCKERFILES)), marks  # one row per variant


def _kind(host: str) -> tuple[str, str]:
    client = docker.DockerClient(base_url=host, timeout=20)
    try:
        return client.version().get("Version", ""), client.info().get("Driver", "")
    finally:
        client.close()


def test_two_shards_on_two_engines_merge_into_one_run(variants_dir, tmp_path):
    require(Path(DEFAULT_SOCKET).is_socket(), "no default engine socket")
    default_kind = _kind(f"unix://{DEFAULT_SOCKET}")
    # A started engine of the default engine's kind (version and store): the reference run
    # on the default engine must be comparable with the shards' engines.
    same = [n for n in ENGINES if _kind(_host(n)) == default_kind]
    require(bool(same), f"no engine of make engines is of the default's kind {default_kind}")
    other, other_host = same[0], _host(same[0])
    a, b, single = tmp_path / "shard-1", tmp_path / "shard-2", tmp_path / "single"
    first = _run(["run", "-d", str(variants_dir), "-o", str(a), *COMMON, "--shard", "1/2"],
                 env={"DOCKER_HOST": other_host})
    assert first.exit_code == 0, first.output[-3000:]
    with tls_engine(DEFAULT_SOCKET) as remote:
        second = _run(["run", "-d", str(variants_dir), "-o", str(b), *COMMON, "--shard", "2/2"],
                      env=remote.env)
        assert second.exit_code == 0, second.output[-3000:]
        assert store.load_run(b / "latest").engine.host == remote.host
    merged_dir = tmp_path / "merged"
    merged = _run(["merge", str(a), str(b), "-o", str(merged_dir)])
    assert merged.exit_code == 0, merged.output
    whole = _run(["run", "-d", str(variants_dir), "-o", str(single), *COMMON],
                 env={"DOCKER_HOST": f"unix://{DEFAULT_SOCKET}"})
    assert whole.exit_code == 0, whole.output[-3000:]

    run, reference = store.load_run(merged_dir / "latest"), store.load_run(single / "latest")
    assert [v.name for v in run.variants] == list(DOCKERFILES)  # the manifest's order
    got = {v.name: (v.image.size_bytes, v.image.layer_count) for v in run.variants}
    assert got == {v.name: (v.image.size_bytes, v.image.layer_count) for v in reference.variants}
    shards = {v.name: (v.measured_on.shard, v.engine_name) for v in run.variants}
    assert {s for s, _ in shards.values()} == {"1/2", "2/2"}
    assert {e for s, e in shards.values() if s == "1/2"} == {other}
    assert len(run.merged_from) == 2

    # Merging a shard with itself, or a directory without results.json: one line, exit 2.
    again = _run(["merge", str(a), str(a), "-o", str(tmp_path / "x")])
    assert again.exit_code == 2 and "merged with itself" in again.output

    browser = _chromium()
    require(browser is not None, "needs Debian's chromium (apt-get install -y chromium)")
    page = (merged_dir / "latest" / "index.html").resolve()
    dom = _browse(browser, tmp_path, page.as_uri(), "--dump-dom").stdout
    marks = _marks(dom)
    assert marks["provenance-rows"] == str(len(DOCKERFILES)), marks
    table = re.search(r'<table id="provenance".*?</table>', dom, re.S).group(0)
    hostname = run.machine.hostname
    assert other in table and hostname in table and "2/2" in table


def test_an_engine_that_does_not_answer_is_named_before_any_build(variants_dir, tmp_path):
    got = _run(["run", "-d", str(variants_dir), "-o", str(tmp_path / "r"), *COMMON,
                "--engine", f"gone=unix://{tmp_path / 'none.sock'}",
                "--engine", f"default=unix://{DEFAULT_SOCKET}"])
    assert got.exit_code == 2, got.output
    assert "engine gone: no Docker engine answers" in got.output
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").glob("2*"))


def test_spread_measures_each_variant_once_on_engines_at_once(variants_dir, tmp_path):
    hosts = {name: _host(name) for name in ("docker20", "docker26")}
    out = tmp_path / "results"
    got = _run(["run", "-d", str(variants_dir), "-o", str(out), *COMMON, "--engines", "spread",
                *(a for n, h in hosts.items() for a in ("--engine", f"{n}={h}"))])
    assert got.exit_code == 0, got.output[-3000:]
    run = store.load_run(out / "latest")
    assert sorted(v.name for v in run.variants) == sorted(DOCKERFILES)  # each once
    assert {v.engine_name for v in run.variants} == set(hosts)
    assert run.settings.engines_mode == "spread" and run.settings.engines == list(hosts)
    assert not engine_report.compared(run) and engine_report.spread(run)
    frame = engine_report.provenance_frame(run)
    # Grouped by engine: all of one engine's rows, then all of the other's.
    engines_in_order = list(frame["Engine"])
    assert engines_in_order == sorted(engines_in_order, key=list(hosts).index)
    report = (out / "latest" / "report.md").read_text()
    assert "compare them only between rows of the same engine" in report
