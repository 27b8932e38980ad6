"""Layers to instructions and stages, bytes to base, dependencies, app and the rest.

Unit tests run on records of real images (tests/fixtures/attribution_images.json: what
measure_image and analyze_image returned, and the image config's empty_layer flags as the
truth) and on small records shaped like them. One engine test builds a tiny multi-stage
image on a FROM-scratch base and checks every figure against the engine's own.
"""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
import uuid

import docker
import pytest
from conftest import FIXTURES, build_tiny

from harness.analysis import dockerfile, layers, sizes
from harness.analysis.attribution import attribute, parse_created_by
from harness.engine import describe as describe_engine
from harness.engine import inspect as measure

IMAGES = json.loads((FIXTURES / "attribution_images.json").read_text())
REAL = sorted(name for name in IMAGES if not name.startswith("_"))


def real(name: str, with_contents: bool = True) -> tuple[dict, dict]:
    case = IMAGES[name]
    stages = dockerfile.parse(case["dockerfile"]).stages_for(case["target"])
    got = attribute(case["image"], case["contents"] if with_contents else None,
                    case["base_history_count"], stages)
    return case, got


def entry(created_by: str, size: int = 0) -> dict:
    return {"created_by": created_by, "size_bytes": size}


def image(history: list[dict], layer_count: int, size: int | None = None) -> dict:
    return {"id": "sha256:x", "size_bytes": sum(h["size_bytes"] for h in history) if size is None else size,
            "layer_count": layer_count, "layers": [f"sha256:{i:064x}" for i in range(layer_count)],
            "history_count": len(history), "history": history}


def contents(img: dict, sizes: list[int], node_modules: list[int] | None = None,
             app: list[int] | None = None) -> dict:
    node_modules = node_modules or [0] * len(sizes)
    app = app or [0] * len(sizes)
    return {"layers": [{"diff_id": d, "size_bytes": s, "node_modules_bytes": n, "app_bytes": a,
                        "other_bytes": s - n - a}
                       for d, s, n, a in zip(img["layers"], sizes, node_modules, app, strict=True)]}


NOP = "/bin/sh -c #(nop) "

# ---------------------------------------------------------------- history text


@pytest.mark.parametrize(("created_by", "keyword", "text"), [
    (NOP + " ENV PATH=/usr/bin:/bin", "ENV", "ENV PATH=/usr/bin:/bin"),
    (NOP + "COPY dir:3c06 in ./dist ", "COPY", "COPY dir:3c06 in ./dist"),
    (NOP + "WORKDIR /app", "WORKDIR", "WORKDIR /app"),
    ("/bin/sh -c npm ci --omit=dev", "RUN", "RUN npm ci --omit=dev"),
    ("|2 NODE_ENV=production V=1 /bin/sh -c npm run build", "RUN", "RUN npm run build"),
    ("/bin/busybox true", "RUN", "RUN /bin/busybox true"),  # exec form: no shell
    ("RUN /bin/sh -c npm ci # buildkit", "RUN", "RUN npm ci"),
    ("RUN |1 V=2 /bin/sh -c make # buildkit", "RUN", "RUN make"),
    ("COPY package*.json ./ # buildkit", "COPY", "COPY package*.json ./"),
    ("WORKDIR /app", "WORKDIR", "WORKDIR /app"),
    ("EXPOSE map[3000/tcp:{}]", "EXPOSE", "EXPOSE map[3000/tcp:{}]"),
    ("", None, ""),
])
def test_history_text(created_by, keyword, text):
    assert parse_created_by(created_by) == (keyword, text)


def test_long_history_text_is_shortened():
    keyword, text = parse_created_by("/bin/sh -c " + "apt-get install -y pkg " * 40)
    assert keyword == "RUN" and len(text) == 160 and text.endswith("…")


# ---------------------------------------------------------------- real images


@pytest.mark.parametrize("name", REAL)
@pytest.mark.parametrize("with_contents", [True, False])
def test_layers_come_from_the_entries_the_config_marks_as_layers(name, with_contents):
    case, got = real(name, with_contents)
    made = [i for i, empty in enumerate(case["config_empty_layer"]) if not empty]
    assert [layer["history_index"] for layer in got["layers"]] == made
    assert got["layer_count"] == case["image"]["layer_count"] == len(made)
    assert got["empty_history_count"] == got["history_count"] - len(made)
    history = case["image"]["history"]
    for layer in got["layers"]:
        assert layer["size_bytes"] == history[layer["history_index"]]["size_bytes"]
        assert layer["diff_id"] == case["image"]["layers"][layer["index"]]


@pytest.mark.parametrize("name", REAL)
def test_split_adds_up_to_the_image_above_its_base(name):
    case, got = real(name)
    split = got["split"]
    base = sum(layer["size_bytes"] for layer in got["layers"] if layer["source"] == "base")
    assert split["base_bytes"] == base
    assert split["dependencies_bytes"] + split["app_bytes"] + split["other_bytes"] == \
        case["image"]["size_bytes"] - base
    assert sum(got["by_stage"].values()) == case["image"]["size_bytes"] - base
    for layer, figures in zip(got["layers"], case["contents"]["layers"], strict=True):
        assert layer["node_modules_bytes"] + layer["app_bytes"] + layer["other_bytes"] == layer["size_bytes"]
        assert layer["node_modules_bytes"] == figures["node_modules_bytes"]
    assert got["warnings"] == []


def test_copy_from_a_stage_is_attributed_to_that_stage():
    _, got = real("multistage-distroless")
    above = [layer for layer in got["layers"] if layer["source"] == "instruction"]
    assert [(layer["dockerfile_instruction"], layer["stage"], layer["from_stage"]) for layer in above] == [
        ("WORKDIR /app", "runner", None),
        ("COPY --from=builder /app/dist ./dist", "runner", "builder"),
        ("COPY --from=builder /app/node_modules ./node_modules", "runner", "builder")]
    assert [layer["dockerfile_line"] for layer in above] == [12, 13, 14]
    assert above[1]["instruction"].startswith("COPY dir:3c0626eaa179") and above[1]["instruction"].endswith("in ./dist")
    assert got["split"]["dependencies_bytes"] == above[2]["size_bytes"] == 7_417_934
    assert got["split"]["app_bytes"] == above[1]["size_bytes"] == 19_505
    assert got["by_stage"] == {"runner": 0, "builder": 19_505 + 7_417_934}
    assert all(layer["source"] == "base" and layer["stage"] is None for layer in got["layers"][:2])


def test_three_stages_run_and_base_layers():
    _, got = real("three-stage")
    assert [layer["source"] for layer in got["layers"]] == ["base"] * 5 + ["instruction"] * 4
    run = got["layers"][7]
    assert (run["instruction"], run["dockerfile_instruction"], run["from_stage"]) == (
        "RUN npm ci --omit=dev", "RUN npm ci --omit=dev", None)
    # npm ci writes node_modules under /app and its cache elsewhere (other bytes).
    assert run["node_modules_bytes"] == 7_417_934 and run["other_bytes"] == 8_822_526
    assert got["by_stage"] == {"runner": 128_935 + 16_240_460, "builder": 19_505}
    assert not got["ambiguous"]


def test_zero_byte_steps_on_the_classic_builder():
    # WORKDIR that creates /app and a COPY of an empty directory make 0-byte layers; a RUN
    # that changes nothing makes none. WORKDIR and RUN, both 0 bytes, compete for the
    # 0-byte layer between two COPYs: the likelier WORKDIR wins, flagged as ambiguous.
    _, got = real("scratch-steps")
    assert [layer["instruction"].split(":")[0] for layer in got["layers"]] == [
        "COPY file", "WORKDIR /app", "COPY dir", "COPY dir"]
    assert [layer["size_bytes"] for layer in got["layers"]] == [1_982_256, 0, 3, 0]
    assert [layer["dockerfile_instruction"] for layer in got["layers"]] == [
        "COPY busybox /bin/busybox", "WORKDIR /app", "COPY --from=builder /app/dist ./dist",
        "COPY emptydir /empty/"]
    assert [layer["ambiguous"] for layer in got["layers"]] == [False, True, False, False]
    assert got["ambiguous"]
    assert got["layers"][0]["stage"] == 1  # an unnamed final stage goes by its index
    assert got["by_stage"] == {"1": 1_982_256, "builder": 3}
    assert got["split"] == {"base_bytes": 0, "dependencies_bytes": 0, "app_bytes": 3,
                            "other_bytes": 1_982_256}


# ---------------------------------------------------------------- small records


def test_layer_sizes_decide_which_zero_byte_step_made_a_layer():
    history = [entry(NOP + "COPY file:a in / ", 100), entry("/bin/sh -c mkdir /x"),
               entry(NOP + "COPY file:b in / ", 7), entry("/bin/sh -c mkdir /y")]
    img = image(history, 3)
    guess = attribute(img, None, 0, [])
    assert [layer["history_index"] for layer in guess["layers"]] == [0, 1, 2]  # the earlier RUN
    assert guess["ambiguous"]
    known = attribute(img, contents(img, [100, 7, 0]), 0, [])
    assert [layer["history_index"] for layer in known["layers"]] == [0, 2, 3]
    assert not known["ambiguous"]


def test_a_copy_is_likelier_than_a_run_to_have_made_a_zero_byte_layer():
    history = [entry(NOP + "COPY file:a in / ", 5), entry("/bin/sh -c true"),
               entry(NOP + "COPY dir:e in /empty ")]
    got = attribute(image(history, 2), None, 0, [])
    assert [layer["history_index"] for layer in got["layers"]] == [0, 2]


def test_buildkit_history_with_a_base_and_stages():
    text = """FROM node:20 AS build
WORKDIR /src
RUN make
FROM node:20-slim
ARG V=1
WORKDIR /app
COPY --from=build /src/out /app/out
COPY --from=0 /src/node_modules ./node_modules
COPY --from=busybox:1.36 /bin/busybox /bin/
RUN ./setup.sh
CMD ["node", "out/index.js"]
"""
    stages = dockerfile.parse(text).stages_for(None)
    history = [entry(NOP + "ADD file:base in / ", 1000), entry(NOP + " CMD [\"node\"]"),
               entry("ARG V=1"), entry("WORKDIR /app"),
               entry("COPY /src/out /app/out # buildkit", 30),
               entry("COPY /src/node_modules ./node_modules # buildkit", 500),
               entry("COPY /bin/busybox /bin/ # buildkit", 20),
               entry("RUN |1 V=1 /bin/sh -c ./setup.sh # buildkit", 7),
               entry('CMD ["node" "out/index.js"]')]
    img = image(history, 6)
    figures = contents(img, [1000, 0, 30, 500, 20, 7], node_modules=[0, 0, 0, 500, 0, 0],
                       app=[0, 0, 30, 0, 0, 0])
    got = attribute(img, figures, 2, stages)
    assert [layer["history_index"] for layer in got["layers"]] == [0, 3, 4, 5, 6, 7]
    assert [(layer["from_stage"], layer["from_image"]) for layer in got["layers"][2:5]] == [
        ("build", None), ("build", None), (None, "busybox:1.36")]
    assert [layer["stage"] for layer in got["layers"]] == [None] + [1] * 5
    assert got["layers"][5]["instruction"] == "RUN ./setup.sh"
    assert got["split"] == {"base_bytes": 1000, "dependencies_bytes": 500, "app_bytes": 30,
                            "other_bytes": 20 + 7}
    assert got["by_stage"] == {"1": 20 + 7, "build": 530}
    assert (got["history_count"], got["empty_history_count"]) == (9, 3)


def test_labels_the_build_adds_are_skipped_when_matching_instructions():
    stages = dockerfile.parse("FROM scratch AS a\nCOPY x /x\nFROM scratch\nCOPY --from=a /x /y\nCMD [\"y\"]\n").stages
    history = [entry(NOP + "COPY file:x in /y ", 3), entry(NOP + ' CMD ["y"]'),
               entry(NOP + " LABEL io.harness.run=1"), entry(NOP + " LABEL io.harness.variant=v")]
    got = attribute(image(history, 1), None, None, list(stages))
    assert got["layers"][0]["from_stage"] == "a"
    assert got["layers"][0]["dockerfile_line"] == 4


def test_missing_or_failed_contents_leave_the_split_unknown():
    history = [entry(NOP + "ADD file:b in / ", 10), entry(NOP + "COPY file:a in / ", 5)]
    img = image(history, 2)
    for figures in (None, {"error": "layer analysis failed: boom"}):
        got = attribute(img, figures, 1, [])
        assert got["split"] == {"base_bytes": 10, "dependencies_bytes": None, "app_bytes": None,
                                "other_bytes": None}
        assert got["layers"][1]["size_bytes"] == 5 and got["layers"][1]["node_modules_bytes"] is None
    assert attribute(img, {"error": "boom"}, 1, [])["warnings"] == ["no layer contents: boom"]
    other = contents(image(history, 2), [10, 5])
    other["layers"][0]["diff_id"] = "sha256:other"
    got = attribute(img, other, 1, [])
    assert got["split"]["app_bytes"] is None and "ignored" in got["warnings"][0]


def test_a_history_that_cannot_account_for_the_layers_is_matched_by_order():
    history = [entry(NOP + "ADD file:b in / ", 10), entry(NOP + " ENV A=1")]
    got = attribute(image(history, 2, size=10), None, 0, [])
    assert [layer["history_index"] for layer in got["layers"]] == [0, None]
    assert got["warnings"] and got["ambiguous"]
    assert attribute(image(history, 1), None, 5, [])["warnings"][0].startswith("the base has 5")


# ---------------------------------------------------------------- against the engine


@pytest.mark.engine
def test_tiny_multi_stage_image_against_docker_history(docker_client, image_janitor, tmp_path):
    token = uuid.uuid4().hex[:12]
    label = f"LABEL io.harness.test=attribution-{token}\n"
    files = {"base.txt": "b" * 1000, "big.txt": "g" * 5000, "dep.js": "d" * 700,
             "main.js": "m" * 300, "conf.txt": "c" * 40}
    base_tag = f"harness-test/attribution-base:{token}"
    base_id = build_tiny(docker_client, tmp_path, "FROM scratch\nCOPY base.txt /etc/base.txt\nENV A=1\n"
                         "COPY big.txt /usr/share/big.txt\n" + label, tag=base_tag, files=files)
    image_janitor.append(base_id)
    text = (f"FROM scratch AS deps\nCOPY dep.js /app/node_modules/dep/index.js\n{label}"
            f"FROM scratch AS builder\nCOPY main.js /app/dist/main.js\n{label}"
            f"FROM {base_tag} AS runner\nWORKDIR /app\nENV NODE_ENV=production\n"
            "COPY --from=deps /app/node_modules ./node_modules\nCOPY --from=builder /app/dist ./dist\n"
            f"COPY conf.txt /etc/conf.txt\n{label}CMD [\"node\", \"dist/main.js\"]\n")
    try:
        image_id = build_tiny(docker_client, tmp_path, text, files=files)
        image_janitor.append(image_id)
        figures = layers.analyze_image(docker_client, image_id, estimate_compressed=False)
        # Sizes as the runner defines them (harness.analysis.sizes): the same on every store.
        engine_facts = describe_engine(docker_client)
        raw = measure.measure_image(docker_client, image_id)
        img = sizes.engine_independent(raw, figures, engine_facts)
        base_history = len(docker_client.api.history(base_id))
        got = attribute(img, figures, base_history, dockerfile.parse(text).stages_for(None))
        config_empty = _config_empty_layers(docker_client, image_id)
        base_size = layers.analyze_image(docker_client, base_id, estimate_compressed=False)["layers_size_bytes"]
        if sizes.store_kind(engine_facts) == "graph":  # there the engine's own figures are the same
            assert base_size == docker_client.api.inspect_image(base_id)["Size"]
            assert [h["size_bytes"] for h in raw["history"]] == [h["size_bytes"] for h in img["history"]]
    finally:
        _remove_labelled(docker_client, f"io.harness.test=attribution-{token}")

    made = [i for i, empty in enumerate(config_empty) if not empty]
    assert [layer["history_index"] for layer in got["layers"]] == made
    history = img["history"]  # docker history, oldest first
    for layer, analysed in zip(got["layers"], figures["layers"], strict=True):
        assert layer["size_bytes"] == history[layer["history_index"]]["size_bytes"] == analysed["size_bytes"]
    above = [layer for layer in got["layers"] if layer["source"] == "instruction"]
    assert [(layer["dockerfile_instruction"], layer["from_stage"], layer["size_bytes"]) for layer in above] == [
        ("WORKDIR /app", None, 0),
        ("COPY --from=deps /app/node_modules ./node_modules", "deps", 700),
        ("COPY --from=builder /app/dist ./dist", "builder", 300),
        ("COPY conf.txt /etc/conf.txt", None, 40)]
    split = got["split"]
    assert split == {"base_bytes": base_size, "dependencies_bytes": 700, "app_bytes": 300, "other_bytes": 40}
    assert split["dependencies_bytes"] + split["app_bytes"] + split["other_bytes"] == img["size_bytes"] - base_size
    assert got["by_stage"] == {"runner": 40, "deps": 700, "builder": 300}
    assert [layer["source"] for layer in got["layers"][:2]] == ["base", "base"]
    assert not got["ambiguous"] and got["warnings"] == []


def _config_empty_layers(client, image_id: str) -> list[bool]:
    """The image config's history[].empty_layer flags, read from the (tiny) save stream."""
    data = b"".join(client.api.get_image(image_id))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        config = json.load(tar.extractfile(manifest[0]["Config"]))
    return [bool(h.get("empty_layer")) for h in config["history"]]


def _remove_labelled(client, label: str) -> None:
    """Removes the images this test labelled (each stage's last image), newest first so
    that no image goes before its children; their untagged parents go with them."""
    images = sorted(client.api.images(all=True, filters={"label": label}),
                    key=lambda i: i["Created"], reverse=True)
    for _ in range(2):  # a parent still in use goes in the second pass
        for info in images:
            with contextlib.suppress(docker.errors.APIError):
                client.api.remove_image(info["Id"], force=True)
