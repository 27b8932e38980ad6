"""Shared fixtures. Engine tests use the real engine; in CI a missing engine fails them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import engine
from harness.errors import EngineUnavailable

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def docker_client():
    try:
        client = engine.connect()
    except EngineUnavailable as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI needs a Docker engine: {exc}")
        pytest.skip(str(exc))
    yield client
    client.close()


@pytest.fixture
def image_janitor(docker_client):
    """Collects image ids a test creates and removes them afterwards, by id."""
    ids: list[str] = []
    yield ids
    for image_id in reversed(ids):
        try:
            docker_client.api.remove_image(image_id, force=True)
        except Exception:
            pass


@pytest.fixture(scope="session")
def standins_built(docker_client):
    """Every stand-in base image, built once (reused when already built from its recipe)."""
    from harness.bases import standins

    return {b.tag: b for b in standins.ensure_standins(
        docker_client, standins.load_recipes().values())}


def build_tiny(client, tmp_path, dockerfile: str, tag: str | None = None, files=None,
               busybox: bool = False, labels: dict | None = None) -> str:
    """Build a tiny image through the SDK and return its id; `busybox` puts the static
    /bin/busybox into the context as `busybox`."""
    import shutil

    from harness.engine.build import build_image, pack_context

    ctx = tmp_path / f"ctx-{abs(hash(dockerfile)) % 10**8}"
    ctx.mkdir(exist_ok=True)
    for name, data in (files or {"f.txt": "x\n"}).items():
        (ctx / name).write_text(data)
    if busybox:
        shutil.copy("/bin/busybox", ctx / "busybox")
    context = pack_context(ctx, dockerfile, "Dockerfile")
    try:
        return build_image(client, context, tag=tag, target=None, build_args={},
                           nocache=True, labels=labels).image_id
    finally:
        context.close()


IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(ok: bool, reason: str) -> None:
    """A missing tool skips a test on a laptop; in CI it is a failure, never a skip."""
    if not ok:
        if IN_CI:
            pytest.fail(f"CI needs it: {reason}")
        pytest.skip(reason)


def leftovers(client, run_id: str, keep: list[str]) -> list[str]:
    """Images labelled with the run that are neither kept nor an ancestor of a kept image
    (the classic builder's parent chain of a final image stays while the image does)."""
    allowed = ancestors(client, *keep)
    labelled = client.api.images(all=True, filters={"label": f"io.harness.run={run_id}"})
    return [i["Id"] for i in labelled if i["Id"] not in allowed]


def ancestors(client, *image_ids: str) -> set[str]:
    """The images and their parent chains (classic builds keep their step images as parents)."""
    from harness.engine.cleanup import ancestors as chain

    return chain(client.api, list(image_ids))


# ------------------------------------------------ every run the tests write fits the schema

SCHEMA = Path(__file__).parent.parent / "docs" / "schema" / "results.schema.json"


@pytest.fixture(scope="session", autouse=True)
def results_fit_the_published_schema(tmp_path_factory):
    """After the session, validate every results.json the tests wrote (anywhere under the
    session's temporary directory) against docs/schema/results.schema.json."""
    yield
    import json

    import jsonschema

    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    problems = []
    written = sorted(tmp_path_factory.getbasetemp().rglob("results.json"))
    for path in written:
        try:
            record = json.loads(path.read_text())
        except ValueError:
            continue  # a test that writes a broken file on purpose
        if record.get("schema_version") != 2:
            continue  # version-1 fixtures copied by a test, or an unknown version on purpose
        for error in validator.iter_errors(record):
            where = "/".join(str(p) for p in error.absolute_path)
            problems.append(f"{path}: {where}: {error.message[:200]}")
    assert not problems, "runs written by the tests do not fit the schema:\n" + "\n".join(problems)
