import shutil

import pytest

from harness.errors import HarnessError
from harness.variants import load_variants, name_from_file, select

from conftest import ROOT


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
