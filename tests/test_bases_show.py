"""`harness bases` is a show command: without --pull or --build it pulls and builds nothing.

No engine: the client is a stand-in whose pull and build fail the test if called."""

from __future__ import annotations

from typer.testing import CliRunner

from harness.cli import app


class _Api:
    def inspect_image(self, ref):
        import docker

        raise docker.errors.ImageNotFound(f"no such image: {ref}")

    def pull(self, *args, **kwargs):
        raise AssertionError("harness bases pulled without --pull")

    def build(self, *args, **kwargs):
        raise AssertionError("harness bases built without --build")

    def images(self, *args, **kwargs):
        return []


class _Client:
    api = _Api()

    @property
    def images(self):
        return self

    def list(self, *args, **kwargs):
        return []


def _variants(tmp_path):
    (tmp_path / "v").mkdir()
    (tmp_path / "app").mkdir()
    (tmp_path / "v" / "one.Dockerfile").write_text(
        "FROM registry.example.invalid/nothing:1\nCMD [\"true\"]\n")
    return ["--variants-dir", str(tmp_path / "v"), "--context", str(tmp_path / "app")]


def test_bases_only_looks(tmp_path, monkeypatch):
    from harness import engine

    monkeypatch.setattr(engine, "connect", lambda *a, **k: _Client())
    result = CliRunner().invoke(app, ["bases", *_variants(tmp_path)])
    assert result.exit_code == 1, result.output  # unresolved, said in one line
    assert "not pulled" in result.output and "--pull" in result.output
    assert "AssertionError" not in repr(result.exception)


def test_bases_pull_pulls(tmp_path, monkeypatch):
    from harness import engine

    monkeypatch.setattr(engine, "connect", lambda *a, **k: _Client())
    result = CliRunner().invoke(app, ["bases", "--pull", *_variants(tmp_path)])
    assert isinstance(result.exception, AssertionError)  # it tried: the stand-in refused
    assert "pulled without --pull" in str(result.exception)


def test_bases_takes_references_and_names_a_tag_no_recipe_honours(tmp_path, monkeypatch):
    from harness import engine

    monkeypatch.setattr(engine, "connect", lambda *a, **k: _Client())
    result = CliRunner().invoke(app, ["bases", "node:22-slim", "node:17", "debian:trixie-slim"],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    assert "harness-standin/node:22-slim not built" in result.output
    assert "harness-standin/debian:trixie-slim not built" in result.output
    assert "Node.js 17" in result.output and "recipes know" in result.output
    assert "3 base image(s) unresolved" in result.output


def test_bases_json_lists_each_reference(tmp_path, monkeypatch):
    import json

    from harness import engine

    monkeypatch.setattr(engine, "connect", lambda *a, **k: _Client())
    result = CliRunner().invoke(app, ["bases", "--json", "node:22-slim"])
    assert result.exit_code == 1
    (entry,) = json.loads(result.stdout)
    assert entry["requested"] == "node:22-slim" and entry["status"] == "missing"
    assert "not built" in entry["error"]
