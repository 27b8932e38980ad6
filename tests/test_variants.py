import re
import shutil

import pytest
from conftest import ROOT

from harness.bench.variants import (
    load_variants,
    load_variants_with_warnings,
    name_from_file,
    select,
)
from harness.errors import HarnessError


@pytest.fixture
def vdir(tmp_path):
    d = tmp_path / "variants"
    shutil.copytree(ROOT / "variants", d)
    (tmp_path / "sample_app").mkdir()
    return d


def test_repo_manifest_order_and_labels():
    vs = load_variants(ROOT / "variants")
    assert [v.name for v in vs] == ["single-node20", "single-alpine", "multistage-alpine",
                                    "multistage-distroless", "three-stage"]
    assert vs[0].label == "Single stage (node:20)"
    assert vs[2].target == "runner"
    assert all(v.problem is None and v.in_manifest for v in vs)
    assert vs[0].context == (ROOT / "sample_app").resolve()


def test_unlisted_dockerfile_is_discovered_after_the_manifest(vdir):
    (vdir / "slim.Dockerfile").write_text("FROM node:20-slim\n")
    (vdir / "Dockerfile.extra").write_text("FROM scratch\n")
    vs = load_variants(vdir)
    assert [v.name for v in vs][-2:] == ["extra", "slim"]
    assert not vs[-1].in_manifest and vs[-1].label == "slim"


def test_order_key_and_problems(vdir):
    (vdir / "variants.toml").write_text(
        'context = "../sample_app"\n'
        '[[variant]]\nname = "b"\ndockerfile = "three-stage.Dockerfile"\norder = 2\n'
        '[[variant]]\nname = "a"\ndockerfile = "single-alpine.Dockerfile"\norder = 1\n'
        '[[variant]]\nname = "a"\ndockerfile = "single-node20.Dockerfile"\norder = 3\n'
        '[[variant]]\nname = "gone"\ndockerfile = "nothing.Dockerfile"\norder = 4\n'
        '[[variant]]\nname = "noctx"\ndockerfile = "multistage-alpine.Dockerfile"\ncontext = "../nope"\norder = 5\n')
    vs = {v.name + str(i): v for i, v in enumerate(load_variants(vdir))}
    names = [v.name for v in load_variants(vdir)][:5]
    assert names == ["a", "b", "a", "gone", "noctx"]
    assert "already named 'a'" in vs["a2"].problem
    assert "nothing.Dockerfile does not exist" in vs["gone3"].problem
    assert "build context" in vs["noctx4"].problem


def test_bad_manifest_is_one_line(vdir):
    (vdir / "variants.toml").write_text("[[variant]\nname=")
    with pytest.raises(HarnessError, match="variants.toml: not valid TOML"):
        load_variants(vdir)


def test_select_unknown_name():
    vs = load_variants(ROOT / "variants")
    assert [v.name for v in select(vs, ["three-stage", "single-node20"])] == ["single-node20", "three-stage"]
    with pytest.raises(HarnessError, match="unknown variant"):
        select(vs, ["nope"])


def test_names_from_files(tmp_path):
    assert name_from_file(tmp_path / "x.Dockerfile") == "x"
    assert name_from_file(tmp_path / "Dockerfile.y") == "y"
    assert name_from_file(tmp_path / "Dockerfile") == tmp_path.name


def test_with_warnings_is_quiet_for_a_good_manifest(vdir):
    vs, warnings = load_variants_with_warnings(vdir)
    assert warnings == []
    assert vs == load_variants(vdir)


def test_invalid_toml_falls_back_to_discovery_with_one_warning(vdir):
    (vdir / "variants.toml").write_text("[[variant]\nname=")
    vs, warnings = load_variants_with_warnings(vdir)
    assert [v.name for v in vs] == ["multistage-alpine", "multistage-distroless",
                                    "single-alpine", "single-node20", "three-stage"]
    assert all(not v.in_manifest and v.problem is None for v in vs)
    assert all(v.label == v.name and v.target is None for v in vs)
    assert vs[0].context == (vdir.parent / "sample_app").resolve()
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert warnings[0].startswith("variants.toml: not valid TOML (")
    assert "ignored, every Dockerfile found by file name is a variant" in warnings[0]


@pytest.mark.parametrize("text, says", [
    ('[[variant]]\nname = "x"\n', "entry 1: needs at least dockerfile"),
    ('[[variant]]\ndockerfile = "three-stage.Dockerfile"\ncolour = "red"\n', "unknown key(s) colour"),
    ('variant = "three-stage.Dockerfile"\n', "'variant' must be an array of tables"),
    ('context = 3\n', "'context' must be a string"),
    ('[[variant]]\ndockerfile = "three-stage.Dockerfile"\norder = "first"\n', "order must be an integer"),
    ('[[variant]]\ndockerfile = "three-stage.Dockerfile"\nbuild_args = "A=1"\n', "build_args must be a table"),
    (b"\xff\xfe[[variant]]", "not UTF-8"),
])
def test_malformed_manifest_is_an_error_strictly_and_a_warning_leniently(vdir, text, says):
    path = vdir / "variants.toml"
    path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    with pytest.raises(HarnessError, match=re.escape(says)):
        load_variants(vdir)
    vs, warnings = load_variants_with_warnings(vdir)
    assert len(vs) == 5 and not any(v.in_manifest for v in vs)
    assert len(warnings) == 1 and says in warnings[0]


def test_unreadable_manifest_falls_back(vdir):
    (vdir / "variants.toml").unlink()
    (vdir / "variants.toml").mkdir()  # read_text() fails with an OSError
    with pytest.raises(HarnessError, match="variants.toml: cannot be read"):
        load_variants(vdir)
    vs, warnings = load_variants_with_warnings(vdir)
    assert len(vs) == 5 and "cannot be read" in warnings[0]


def test_manifest_naming_a_missing_dockerfile_keeps_going_with_a_warning(vdir):
    (vdir / "single-alpine.Dockerfile").unlink()
    (vdir / "extra.Dockerfile").write_text("FROM scratch\n")
    vs, warnings = load_variants_with_warnings(vdir)
    by = {v.name: v for v in vs}
    # The manifest still orders and labels the others; the missing one fails, in its place.
    assert [v.name for v in vs] == ["single-node20", "single-alpine", "multistage-alpine",
                                    "multistage-distroless", "three-stage", "extra"]
    assert by["single-alpine"].problem == "Dockerfile single-alpine.Dockerfile does not exist"
    assert by["single-node20"].label == "Single stage (node:20)" and by["single-node20"].problem is None
    assert not by["extra"].in_manifest and by["extra"].problem is None
    assert warnings == [("variants.toml: variant 'single-alpine' names single-alpine.Dockerfile, "
                         "which does not exist; it is recorded as failed")]


def test_missing_variants_dir_is_still_an_error(tmp_path):
    with pytest.raises(HarnessError, match="does not exist"):
        load_variants_with_warnings(tmp_path / "nope")


def test_runtime_keys_are_known_and_a_typo_is_still_unknown(vdir):
    (vdir / "variants.toml").write_text(
        '[[variant]]\nname = "a"\ndockerfile = "a.Dockerfile"\nport = 8080\n'
        'health_path = "/health"\n[[variant]]\nname = "b"\ndockerfile = "b.Dockerfile"\n'
        'heath_path = "/health"\n')
    with pytest.raises(HarnessError, match="entry 2: unknown key\\(s\\) heath_path"):
        load_variants(vdir)


def test_the_bundled_variants_take_the_node_major_as_a_build_arg():
    """20 (the article's) by default; `--build-arg NODE=24` moves every FROM and the label
    that names the major, and `make bench NODE=24` passes it, into results of its own."""
    import subprocess

    from harness.bench import runner
    from harness.bench.variants import load_variants, with_build_args

    root = ROOT
    variants = load_variants(root / "variants")

    def refs(plans):
        return {r for p in plans for r in p.refs}
    default = [runner.plan(v) for v in variants]
    assert variants[0].label == "Single stage (node:20)"
    assert refs(default) == {"node:20", "node:20-alpine", "gcr.io/distroless/nodejs20-debian12"}
    on24 = [runner.plan(v) for v in with_build_args(variants, {"NODE": "24"})]
    assert on24[0].variant.label == "Single stage (node:24)" and not any(p.problem for p in on24)
    assert refs(on24) == {"node:24", "node:24-alpine", "gcr.io/distroless/nodejs24-debian12"}
    made = subprocess.run(["make", "-s", "-n", "-C", str(root), "bench", "NODE=24"],
                          capture_output=True, text=True, check=True).stdout
    assert "harness run --repeat 3 --build-arg NODE=24 --out results/node24" in made
