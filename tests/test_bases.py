"""Base-image resolution against the real engine: order, stand-ins, lock file, bad input."""

from __future__ import annotations

import shutil

import pytest
from conftest import build_tiny
from docker.errors import ImageNotFound

from harness.analysis import layers, sizes
from harness.bases import resolve as bases
from harness.bases import standins
from harness.bench import runner
from harness.bench.variants import load_variants
from harness.engine import describe
from harness.errors import HarnessError

pytestmark = pytest.mark.engine

MB = 1_000_000
SIZE_RANGES = {  # what each stand-in must weigh, like the real image (issue #3)
    "node:20": (1000 * MB, 1200 * MB),
    "node:20-alpine": (120 * MB, 170 * MB),
    "gcr.io/distroless/nodejs20-debian12": (110 * MB, 190 * MB),
    "node:20-slim": (180 * MB, 260 * MB),
}


def _run(client, image: str, cmd: list[str] | None = None, entrypoint=None) -> tuple[int, str]:
    container = client.containers.create(image, cmd, entrypoint=entrypoint, network_disabled=True)
    try:
        container.start()
        code = container.wait(timeout=60)["StatusCode"]
        return code, container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)


def file_bytes(client, image: str) -> int:
    """The image's size as `docker images` shows it on overlay2 (harness.analysis.sizes), on any store."""
    engine_facts = describe(client)
    if sizes.store_kind(engine_facts) == "graph":
        return client.api.inspect_image(image)["Size"]
    return layers.analyze_image(client, image, estimate_compressed=False)["layers_size_bytes"]


def test_standins_are_faithful(docker_client, standins_built):
    recipes = standins.load_recipes()
    assert {r.stands_in_for for r in recipes.values()} == set(SIZE_RANGES)
    for recipe in recipes.values():
        ref = recipe.stands_in_for
        attrs = docker_client.api.inspect_image(recipe.tag)
        low, high = SIZE_RANGES[ref]
        size = file_bytes(docker_client, recipe.tag)
        assert low <= size <= high, (ref, size)
        labels = attrs["Config"]["Labels"]
        assert labels["io.harness.standin.for"] == ref
        assert labels["io.harness.standin.recipe-sha256"] == recipe.content_hash()
        assert labels["io.harness.standin.debian-suite"] == "bookworm"
        assert labels["io.harness.standin.node-version"].startswith("v20.")
        if ref.startswith("gcr.io/distroless"):
            code, text = _run(docker_client, recipe.tag, ["--version"])
            assert code == 0 and text.startswith("v20."), text
            with pytest.raises(Exception, match="sh"):  # no shell to start
                _run(docker_client, recipe.tag, ["-c", "true"], entrypoint=["/bin/sh"])
        else:
            code, text = _run(docker_client, recipe.tag, ["node", "--version"])
            assert code == 0 and text.startswith("v20."), text
            code, text = _run(docker_client, recipe.tag, ["id", "node"])
            assert code == 0 and "uid=1000(node)" in text, text
    alpine = docker_client.api.inspect_image(standins.find_recipe(recipes, "node:20-alpine").tag)["Config"]["Labels"]
    assert alpine["io.harness.standin.libc"] == "glibc"
    assert alpine["io.harness.standin.userland"] == "busybox"


def test_second_ensure_rebuilds_nothing(docker_client, standins_built):
    first = max(b.seconds for b in standins_built.values())
    again = standins.ensure_standins(docker_client, standins.load_recipes().values())
    assert all(b.reused for b in again)
    assert {b.image_id for b in again} == {b.image_id for b in standins_built.values()}
    assert sum(b.seconds for b in again) < 5.0 or sum(b.seconds for b in again) < 0.1 * first


def test_resolution_order(docker_client, tmp_path, image_janitor, standins_built):
    # 1. present locally wins, and needs no recipe
    image_janitor.append(build_tiny(docker_client, tmp_path, "FROM scratch\nCOPY f.txt /\n",
                                    tag="harness-test/present:1"))
    res = bases.resolve(docker_client, "harness-test/present:1", recipes={})
    assert (res.status, res.standin, res.used_ref) == ("present", False, "harness-test/present:1")
    assert res.image_id == image_janitor[-1]

    # 2./3. not present, pull fails here, so the stand-in serves (reused, not rebuilt)
    real = "node:20-alpine"
    try:
        docker_client.api.inspect_image(real)
        pytest.skip("the real node:20-alpine is present here")  # pragma: no cover
    except ImageNotFound:
        pass
    res = bases.resolve(docker_client, real, build=False)
    assert res.status == "stand-in" and res.standin
    assert res.used_ref == "harness-standin/node:20-alpine"
    assert res.image_id == docker_client.api.inspect_image(res.used_ref)["Id"]

    # --bases=pull: a failed pull is final
    res = bases.resolve(docker_client, real, mode="pull")
    assert res.image_id is None and "pull failed" in res.error

    # --bases=present with a stand-in whose recipe changed: not built, says so
    recipe_dir = tmp_path / "recipes" / "node-20-alpine"
    shutil.copytree(standins.RECIPES_DIR / "node-20-alpine", recipe_dir)
    with open(recipe_dir / "recipe.toml", "a") as fh:
        fh.write("\n# changed\n")
    changed = standins.load_recipes(tmp_path / "recipes")
    res = bases.resolve(docker_client, real, mode="present", recipes=changed)
    assert res.image_id is None and "not built" in res.error and "not pulled" in res.error


def test_unresolvable_from_names_the_three_attempts(docker_client):
    res = bases.resolve(docker_client, "harness-test/never-built:0", recipes={})
    assert res.image_id is None
    assert res.error.startswith("harness-test/never-built:0: not present locally; pull failed (")
    assert res.error.endswith("; no stand-in recipe")
    assert "\n" not in res.error


def _variant_dir(tmp_path, dockerfile: str, manifest: str = "") -> tuple:
    vdir = tmp_path / "v"
    ctx = tmp_path / "c"
    vdir.mkdir(exist_ok=True)
    ctx.mkdir(exist_ok=True)
    (ctx / "f.txt").write_text("app\n")
    (vdir / "app.Dockerfile").write_text(dockerfile)
    if manifest:
        (vdir / "variants.toml").write_text(manifest)
    return load_variants(vdir, ctx)


def test_lock_refuses_a_changed_base(docker_client, tmp_path, image_janitor):
    base = "harness-test/lockbase:1"
    image_janitor.append(build_tiny(docker_client, tmp_path, "FROM scratch\nCOPY f.txt /a\n", tag=base))
    variants = _variant_dir(tmp_path, "ARG BASE=harness-test/unset:0\nFROM ${BASE}\nCOPY f.txt /b\n",
                            '[[variant]]\nname = "app"\ndockerfile = "app.Dockerfile"\n'
                            f'build_args = {{ BASE = "{base}" }}\n')
    lock = tmp_path / "bases.lock"
    opts = runner.RunOptions(repeat=1, out=tmp_path / "out", bases_lock=lock)
    _, record_run, code = runner.execute(docker_client, variants, opts)
    record = record_run.to_json()  # as results.json stores it
    image_janitor.append(record["variants"][0]["image"]["id"])
    assert code == 0, record["variants"][0].get("error")
    # the ARG-parameterised FROM was resolved with the variant's build args
    assert record["variants"][0]["froms"][0]["requested"] == base
    assert lock.exists() and image_janitor[0].replace("sha256:", "") in lock.read_text()

    # the tag moves to another image: the locked run refuses before building anything
    image_janitor.append(build_tiny(docker_client, tmp_path, "FROM scratch\nCOPY f.txt /other\n", tag=base))
    with pytest.raises(HarnessError, match="bases differ from the lock .*harness-test/lockbase:1"):
        runner.execute(docker_client, variants, opts)
    opts.update_lock = True
    _, record_run, code = runner.execute(docker_client, variants, opts)
    record = record_run.to_json()  # as results.json stores it
    image_janitor.append(record["variants"][0]["image"]["id"])
    assert code == 0 and image_janitor[2].replace("sha256:", "") in lock.read_text()


def test_failing_recipe_reports_its_step_and_tags_nothing(docker_client, tmp_path):
    recipe_dir = tmp_path / "recipes" / "broken"
    shutil.copytree(standins.RECIPES_DIR / "distroless-nodejs20-debian12", recipe_dir)
    toml = (recipe_dir / "recipe.toml").read_text()
    toml = toml.replace('tag = "harness-standin/distroless-nodejs20:debian12"',
                        'tag = "harness-test/broken-standin:1"')
    toml = toml.replace('stands_in_for = "gcr.io/distroless/nodejs20-debian12"',
                        'stands_in_for = "harness-test/wanted:1"')
    toml = toml.replace("include = [", 'include = ["no-such-package-harness-test", ', 1)
    (recipe_dir / "recipe.toml").write_text(toml)
    recipe = standins.load_recipe(recipe_dir)
    with pytest.raises(HarnessError) as info:
        standins.ensure_standin(docker_client, recipe)
    message = str(info.value)
    assert "mmdebstrap" in message and "\n" not in message
    with pytest.raises(ImageNotFound):
        docker_client.api.inspect_image("harness-test/broken-standin:1")
