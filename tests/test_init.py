"""`harness init`: reading an app, the five Dockerfiles per package manager, variants.toml,
and (one engine test) that a generated variant of the pnpm fixture builds and serves."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT
from typer.testing import CliRunner

from harness.analysis.dockerfile import logical_lines
from harness.bench.variants import load_variants
from harness.cli import app as cli
from harness.scaffold.app import read_app, read_jsonc
from harness.scaffold.dockerfiles import render
from harness.scaffold.write import manifest_text, write

APPS = FIXTURES / "apps"
BUNDLED = ("single-node20", "single-alpine", "multistage-alpine", "multistage-distroless",
           "three-stage")


def _instructions(text: str) -> list[tuple[str, str]]:
    return [(i.keyword, i.args) for i in logical_lines(text)]


def _runs(text: str) -> list[str]:
    return [args for kw, args in _instructions(text) if kw == "RUN"]


def _copy_app(tmp_path: Path, name: str) -> Path:
    dest = tmp_path / name
    shutil.copytree(APPS / name if name != "sample_app" else ROOT / "sample_app", dest,
                    ignore=shutil.ignore_patterns("node_modules", "dist", "build"))
    return dest


# ---------------------------------------------------------------- reading the app

def test_reads_the_pnpm_fixture():
    a = read_app(APPS / "pnpm-app")
    assert (a.manager, a.manager_version, a.lock_file) == ("pnpm", "9.15.9", "pnpm-lock.yaml")
    assert (a.node_major, a.out_dir, a.node_args) == (20, "build", ("build/index.js",))
    assert (a.port, a.health_path, a.dockerfiles) == (3000, "/healthz", ())
    assert a.notes == ()  # everything was read, nothing assumed


def test_reads_the_yarn_fixture_and_its_own_dockerfile():
    a = read_app(APPS / "yarn-app")
    assert (a.manager, a.manager_version, a.yarn_berry) == ("yarn", "1.22.22", False)
    assert (a.node_major, a.out_dir, a.port) == (22, "build", 3000)
    assert a.dockerfiles == (("Dockerfile", 3000),)


def test_reads_the_sample_app_and_says_what_it_assumed():
    a = read_app(ROOT / "sample_app")
    assert (a.manager, a.node_major, a.out_dir, a.port) == ("npm", 20, "dist", 3000)
    assert a.node_args == ("dist/index.js",)
    assert any("'>=20'" in n and "more than one major" in n for n in a.notes)


def test_jsonc_with_comments_strings_and_trailing_commas():
    text = '{\n // a comment\n "a": "http://x/*y*/", /* b */ "c": [1, 2,],\n}'
    assert read_jsonc(text) == {"a": "http://x/*y*/", "c": [1, 2]}


def _app(tmp_path, pkg: dict, files: dict[str, str] | None = None) -> Path:
    root = tmp_path / "app"
    root.mkdir()
    (root / "package.json").write_text(json.dumps(pkg))
    for name, text in ({"package-lock.json": "{}"} if files is None else files).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_port_from_dockerfile_expose_then_code_and_outdir_from_the_tsc_project(tmp_path):
    root = _app(tmp_path, {"scripts": {"build": "tsc -p tsconfig.build.json",
                                       "start": "node --enable-source-maps out/server.js"},
                           "engines": {"node": "22.x"}},
                {"package-lock.json": "{}", "Dockerfile": "FROM node:22\nEXPOSE 8080\n",
                 "deploy/prod.Dockerfile": "FROM node:22\n",
                 "tsconfig.build.json": '{"extends": "./tsconfig.base", // base\n}',
                 "tsconfig.base.json": '{"compilerOptions": {"outDir": "./out/"}}',
                 "src/server.ts": "server.listen(process.env.PORT || 9090);\n"})
    a = read_app(root)
    assert (a.out_dir, a.node_major, a.port) == ("out", 22, 8080)
    assert a.node_args == ("--enable-source-maps", "out/server.js")
    assert a.dockerfiles == (("Dockerfile", 8080), ("deploy/prod.Dockerfile", None))
    assert any("9090 in src/server.ts" in n for n in a.notes)
    assert any("health route" in n for n in a.notes)
    assert any(".dockerignore" in n for n in a.notes)


@pytest.mark.parametrize("code, port", [("app.listen(8081, () => {})", 8081),
                                        ("const port = Number(process.env.PORT) || 4000", 4000),
                                        ('const p = process.env.PORT ?? "5000"', 5000),
                                        ("const PORT = 7000;", 7000),
                                        ("const x = 1;", None)])
def test_port_in_code(tmp_path, code, port):
    a = read_app(_app(tmp_path, {"engines": {"node": "20"}},
                      {"package-lock.json": "{}", "index.js": code}))
    assert a.port == port
    assert (port is None) == any("no port found" in n for n in a.notes)


def test_without_engines_node_the_bundled_major_and_a_note(tmp_path):
    a = read_app(_app(tmp_path, {"main": "server.js"}))
    assert a.node_major == 20 and any("no engines.node" in n for n in a.notes)
    assert a.node_args == ("server.js",) and a.out_dir is None


@pytest.mark.parametrize("pkg, files, message", [
    ({}, {}, "no lock file (package-lock.json, yarn.lock, pnpm-lock.yaml)"),
    ({}, {"yarn.lock": "", "package-lock.json": "{}"}, "several lock files"),
    ({"packageManager": "pnpm@9.1.0"}, {"package-lock.json": "{}"},
     "packageManager names pnpm but there is no pnpm-lock.yaml"),
    ({"packageManager": "bun@1.1.0"}, {"package-lock.json": "{}"}, "knows npm, yarn and pnpm"),
])
def test_what_init_cannot_read_is_a_one_line_error(tmp_path, pkg, files, message):
    root = _app(tmp_path, pkg, files)
    result = CliRunner().invoke(cli, ["init", str(root), "--out", str(tmp_path / "v")])
    assert result.exit_code == 2  # bad input
    text = " ".join(result.output.split())
    assert message in text and "Traceback" not in result.output
    assert not (tmp_path / "v").exists()


def test_no_package_json_and_no_app_dir(tmp_path):
    result = CliRunner().invoke(cli, ["init", str(tmp_path), "--out", str(tmp_path / "v")])
    assert result.exit_code == 2 and "no package.json" in result.output
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "nope"), "--out", str(tmp_path)])
    assert result.exit_code == 2  # a usage error, as typer reports them


# ---------------------------------------------------------------- the Dockerfiles

def test_sample_app_variants_are_the_bundled_ones_instruction_for_instruction():
    generated = render(read_app(ROOT / "sample_app"))
    assert list(generated) == [f"{n}.Dockerfile" for n in BUNDLED]
    for name, text in generated.items():
        bundled = (ROOT / "variants" / name).read_text()
        assert _instructions(text) == _instructions(bundled), name


def test_pnpm_dockerfiles():
    files = render(read_app(APPS / "pnpm-app"))
    for name, text in files.items():
        runs = _runs(text)
        assert "npm install -g pnpm@9.15.9" in runs, name  # every stage that runs pnpm
        assert not any(r.startswith("npm ci") or r.startswith("yarn") for r in runs), name
        assert ("COPY", "package.json pnpm-lock.yaml ./") in _instructions(text), name
        assert _instructions(text)[-1] == ("CMD", '["build/index.js"]' if "distroless" in name
                                           else '["node", "build/index.js"]')
    assert _runs(files["multistage-alpine.Dockerfile"])[-1] == "pnpm install --frozen-lockfile --prod"
    assert "pnpm prune --prod" in _runs(files["multistage-distroless.Dockerfile"])
    assert ("COPY", "--from=builder /app/build ./build") in _instructions(
        files["three-stage.Dockerfile"])


def test_yarn_dockerfiles():
    files = render(read_app(APPS / "yarn-app"))
    assert list(files)[0] == "single-node22.Dockerfile"
    assert _instructions(files["single-node22.Dockerfile"])[:2] == [("ARG", "NODE=22"),
                                                                     ("FROM", "node:${NODE}")]
    assert "FROM gcr.io/distroless/nodejs${NODE}-debian12 AS runner" in files[
        "multistage-distroless.Dockerfile"]
    from harness.analysis import dockerfile

    bases = [s.base for s in dockerfile.parse(files["multistage-distroless.Dockerfile"]).stages]
    assert bases == ["node:22-alpine", "gcr.io/distroless/nodejs22-debian12"]
    alpine = _runs(files["multistage-alpine.Dockerfile"])
    assert alpine == ["yarn install --frozen-lockfile", "yarn run build",
                      "yarn install --frozen-lockfile --production"]  # yarn 1 ships in the image


def test_yarn_berry_uses_corepack_and_focus(tmp_path):
    a = replace(read_app(APPS / "yarn-app"), manager_version="4.5.0")
    runs = _runs(render(a)["multistage-alpine.Dockerfile"])
    assert runs[0] == "corepack enable" and "yarn install --immutable" in runs
    assert runs[-1] == "yarn workspaces focus --all --production"


def test_no_build_script_runs_the_sources(tmp_path):
    a = read_app(_app(tmp_path, {"main": "server.js", "engines": {"node": "20"}}))
    files = render(a)
    assert not any("build" in r for r in _runs(files["multistage-alpine.Dockerfile"]))
    assert ("COPY", "--from=builder /app ./") in _instructions(files["multistage-distroless.Dockerfile"])
    assert _instructions(files["three-stage.Dockerfile"])[-1] == ("CMD", '["node", "server.js"]')


# ---------------------------------------------------------------- variants.toml and writing

def test_manifest_lists_the_five_and_the_apps_own_dockerfile(tmp_path):
    app_dir = _copy_app(tmp_path, "yarn-app")
    out = tmp_path / "variants"
    written = write(read_app(app_dir, exclude=out), out)
    assert sorted(p.name for p in written) == sorted(
        [f"{n}.Dockerfile" for n in ("single-node22", *BUNDLED[1:])] + ["variants.toml"])
    data = tomllib.loads((out / "variants.toml").read_text())
    assert data["context"] == "../yarn-app"
    entries = data["variant"]
    assert [e["name"] for e in entries] == ["single-node22", *BUNDLED[1:], "yours"]
    assert entries[-1]["label"] == "yours: Dockerfile"
    assert entries[-1]["dockerfile"] == "../yarn-app/Dockerfile"
    assert all(e["port"] == 3000 and e["health_path"] == "/healthz" for e in entries)
    variants = load_variants(out)  # the harness reads it: a path outside the directory too
    assert [v.name for v in variants] == [e["name"] for e in entries]
    assert variants[-1].dockerfile == app_dir / "Dockerfile"
    assert all(v.context == app_dir and v.problem is None for v in variants)


def test_what_was_not_found_is_a_commented_line(tmp_path):
    a = read_app(_app(tmp_path, {"main": "server.js"}))
    text = manifest_text(a, tmp_path / "v")
    assert "\n# port = 3000  # not found" in text and '\n# health_path = "/healthz"' in text
    assert "no engines.node: Node.js 20" in text
    assert "\nport =" not in text and "\nhealth_path =" not in text


def test_refuses_to_overwrite_without_force(tmp_path):
    out = tmp_path / "v"
    args = ["init", str(APPS / "pnpm-app"), "--out", str(out)]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    (out / "variants.toml").write_text("# mine\n")
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 2 and "--force" in again.output
    assert len(again.output.strip().splitlines()) == 1  # one line
    assert (out / "variants.toml").read_text() == "# mine\n"
    forced = CliRunner().invoke(cli, [*args, "--force"])
    assert forced.exit_code == 0 and (out / "variants.toml").read_text() != "# mine\n"


# ---------------------------------------------------------------- against the engine

@pytest.mark.engine
@pytest.mark.slow
@pytest.mark.parametrize("app, major", [("pnpm-app", "20"), ("yarn-app", "22")])
def test_the_five_variants_init_writes_build_and_serve(docker_client, tmp_path, standins_built,
                                                        app, major):
    """For a pnpm and a yarn app: every one of the five Dockerfiles `harness init` writes
    builds, and its image serves the app (its own GET / names it). The yarn app allows
    Node.js 20 or 22 (`^20 || ^22`, which yarn 1 enforces); init writes its Dockerfiles for
    22, the highest, with the major as ARG NODE, and this test builds them on 20
    (`--build-arg NODE=20`), whose stand-ins the suite builds anyway: the full node:22
    stand-in alone would add minutes to every CI run."""
    app_dir = _copy_app(tmp_path, app)
    out = tmp_path / "variants"
    proc = subprocess.run([sys.executable, "-m", "harness", "init", str(app_dir), "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    results = tmp_path / "results"
    five = [f"single-node{major}", "single-alpine", "multistage-alpine",
            "multistage-distroless", "three-stage"]
    proc = subprocess.run([sys.executable, "-m", "harness", "run", *five, "--repeat", "1",
                           "--scenario", "cold", "--no-registry", "--no-analyze",
                           "--build-arg", "NODE=20",
                           "--variants-dir", str(out), "--out", str(results)],
                          capture_output=True, text=True, cwd=ROOT)
    record = json.loads((results / "latest" / "results.json").read_text())
    for variant in record["variants"]:
        if variant.get("image"):
            docker_client.api.remove_image(variant["image"]["id"], force=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert [v["name"] for v in record["variants"]] == five
    assert {f["requested"] for v in record["variants"] for f in v["froms"]} == {
        "node:20", "node:20-alpine", "gcr.io/distroless/nodejs20-debian12"}
    for variant in record["variants"]:
        assert variant["status"] == "ok", variant
        assert variant["runtime"]["status"] == "ok", (variant["name"], variant["runtime"])
        assert json.loads(variant["runtime"]["root_body"])["name"] == app, variant["name"]
