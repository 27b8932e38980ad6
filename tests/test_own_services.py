"""A team's own services, measured end to end: not the sample app, not Node 20, not /healthz.

Two services written for these tests (tests/fixtures/services/), with the Dockerfiles their
authors would write:
- health-api: built and shipped on node:22-slim, listens on 8080, answers /health, declares
  a HEALTHCHECK, and its runtime stage runs `apt-get install ca-certificates`;
- four-stage-api: deps, dev, build and runner stages on node:24-alpine; the dev stage
  (TypeScript in watch mode) must not reach the shipped image.
Both bases are stand-ins built from the family recipes (harness.bases.families).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.bench import runner
from harness.bench.variants import load_variants
from harness.model import OK

pytestmark = [pytest.mark.engine, pytest.mark.slow]
SERVICES = Path(__file__).parent / "fixtures" / "services"
MANIFEST = f"""\
[[variant]]
name = "health-api"
label = "Fastify-like on node:22-slim"
dockerfile = "{SERVICES / 'health-api' / 'Dockerfile'}"
context = "{SERVICES / 'health-api'}"
port = 8080
health_path = "/health"

[[variant]]
name = "four-stage-api"
label = "Four stages on node:24-alpine"
dockerfile = "{SERVICES / 'four-stage-api' / 'Dockerfile'}"
context = "{SERVICES / 'four-stage-api'}"
target = "runner"
"""


def test_two_own_services_are_measured_end_to_end(docker_client, tmp_path, image_janitor):
    vdir = tmp_path / "variants"
    vdir.mkdir()
    (vdir / "variants.toml").write_text(MANIFEST)
    variants = load_variants(vdir)
    opts = runner.RunOptions(repeat=1, out=tmp_path / "results", runtime=True, registry=False)
    run_dir, run, code = runner.execute(docker_client, variants, opts)
    for v in run.variants:
        if v.image:
            image_janitor.append(v.image.id)
    by = {v.name: v for v in run.variants}
    assert code == 0, {n: v.error for n, v in by.items()}

    api = by["health-api"]
    assert api.status == OK and api.runtime.status == "ok"
    assert api.runtime.health_source == "healthcheck" and api.runtime.engine_health == "healthy"
    assert api.runtime.container_port == 8080
    assert api.froms[-1].requested == "node:22-slim" and api.froms[-1].standin
    assert api.image.user == "node" and "8080/tcp" in api.image.exposed_ports
    assert api.contents.os_package_db == "dpkg" and api.contents.has_shell
    assert api.contents.dev_dependencies_present == []  # npm prune --omit=dev

    four = by["four-stage-api"]
    assert four.status == OK and four.runtime.status == "ok"
    assert four.runtime.health_source == "http" and four.runtime.root_status == 200
    assert four.froms[-1].requested == "node:24-alpine" and four.froms[-1].standin
    # The dev stage is built from deps but never reaches the image the runner stage ships.
    assert [f.stage_name for f in four.froms] == ["deps", "dev", "build", "runner"]
    assert four.contents.dev_dependencies_present == []

    for v in (api, four):
        assert v.image.size_bytes > 50_000_000 and v.image.layer_count >= 5
        assert v.build.scenarios["cold"].samples_seconds
        assert v.attribution.split.base_bytes > 0
        assert v.attribution.split.dependencies_bytes is not None
        assert v.contents.node_modules_bytes > 0
