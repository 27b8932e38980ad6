"""The runner's control flow without an engine: a fake EnginePort builds and measures.

Real variants (Dockerfiles and a manifest under tmp_path), a tiny real context (packed and
copied for the cached scenarios as in a real run), the real record and results.json; only
the engine's answers are made up. What each path must leave in the record is what
`runner.execute` writes with the Docker engine.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import tarfile

import pytest
from requests.exceptions import ConnectionError as RequestsConnectionError

from harness import store
from harness.bases.resolve import Resolution
from harness.bench import runner, scenarios
from harness.bench.engine_port import DockerEngine, EnginePort
from harness.bench.variants import load_variants
from harness.engine.build import BuildOutcome
from harness.errors import BuildFailed
from harness.model import Run
from harness.track import history

BASE = "example.org/base:1"
BASE_ID = "sha256:" + "0" * 64


def _image_id(variant: str) -> str:
    return "sha256:" + hashlib.sha256(variant.encode()).hexdigest()


def _layer(variant: str, i: int) -> str:
    return "sha256:" + hashlib.sha256(f"{variant}/{i}".encode()).hexdigest()


class FakeEngine:
    """An EnginePort that answers from memory; `fail`, `interrupt`, `bad_analysis` and
    `engine_down` name the variants whose build, layer analysis or measurement goes wrong."""

    def __init__(self, *, fail=(), interrupt=(), bad_analysis=(), engine_down=(), present=(),
                 tags=None):
        self.fail, self.interrupt = set(fail), set(interrupt)
        self.bad_analysis, self.engine_down = set(bad_analysis), set(engine_down)
        self.images: dict[str, str] = {i: "kept" for i in present}  # id -> variant
        self.builds: list[tuple[str, str, bool]] = []  # (variant, builder, nocache)
        self.tags: dict[str, str] = dict(tags or {})  # an earlier run's tag -> image id
        self.cleanups: list[tuple[list[str], str | None, float]] = []
        self.labelled_cleanups: list[tuple[list[str], str | None, str]] = []
        self.removed: list[str] = []

    def describe(self) -> dict:
        return {"product": "Docker Engine", "server_version": "27.0.0", "store": "overlay2",
                "storage_driver": "overlay2"}

    def exists(self, image_id: str) -> bool:
        return image_id in self.images

    def tagged(self, tag: str) -> str | None:
        return self.tags.get(tag)

    def resolve_base(self, ref, *, mode, log):
        return Resolution(requested=ref, status="present", image_id=BASE_ID,
                          size_bytes=1_000, layer_count=1, used_ref=ref)

    def build(self, builder, context, *, tag, target, build_args, nocache, labels, on_line,
              timeout, made) -> BuildOutcome:
        variant = labels[runner.LABEL_VARIANT]
        assert labels[runner.LABEL_RUN]
        context.fileobj.read()  # what the engine would do with the packed context
        self.builds.append((variant, builder, nocache))
        if variant in self.interrupt:
            raise KeyboardInterrupt
        if variant in self.fail:
            raise BuildFailed("The command '/bin/sh -c npm ci' returned a non-zero code: 1",
                              log_tail=["Step 2/2 : RUN npm ci", "npm ERR! missing lock"])
        image_id = _image_id(variant)
        short = image_id.removeprefix("sha256:")[:12]
        made.append(short)
        self.images[image_id] = variant
        on_line(f"Successfully built {short}")
        return BuildOutcome(image_id, seconds=1.5 if nocache else 0.25, steps_total=2,
                            steps_cached=0 if nocache else 2,
                            step_images=[] if not nocache else [short])

    def measure(self, image_id: str) -> dict:
        variant = self.images[image_id]
        if variant in self.engine_down:
            raise RequestsConnectionError("Connection aborted.")
        history = [{"id": BASE_ID, "created_by": "/bin/sh -c #(nop) ADD file:abc in / ",
                    "size_bytes": 1_000, "created": 1, "comment": ""},
                   {"id": image_id, "created_by": "COPY . /app # buildkit",
                    "size_bytes": 234, "created": 2, "comment": ""}]
        return {"id": image_id, "size_bytes": 1_234, "inspect_size_bytes": 1_234,
                "listed_size_bytes": 1_234, "layer_count": 2,
                "layers": [_layer("base", 0), _layer(variant, 1)], "history_count": 2,
                "history": history, "user": "", "entrypoint": None, "cmd": ["node"],
                "exposed_ports": [], "architecture": "amd64", "os": "linux"}

    def analyze(self, image_id: str, *, cache: dict, app_dev_dependencies: set[str]) -> dict:
        variant = self.images[image_id]
        if variant in self.bad_analysis:
            raise tarfile.ReadError("unexpected end of data")
        per_layer = [{"diff_id": _layer("base", 0), "size_bytes": 1_000, "tar_bytes": 2_048,
                      "file_count": 10, "compressed_estimate_bytes": 500},
                     {"diff_id": _layer(variant, 1), "size_bytes": 200, "tar_bytes": 1_024,
                      "file_count": 2, "compressed_estimate_bytes": 200}]
        return {"image_id": image_id, "layer_count": 2, "layers": per_layer,
                "layers_size_bytes": 1_200, "layers_tar_bytes": 3_072,
                "history_empty_layers": [False, False], "compressed_estimate_bytes": 700}

    def base_history(self, image_id: str) -> int | None:
        return 1

    def runtime_check(self, image_id: str, *, labels: dict, probe=None) -> dict:
        return {"status": "ok"}

    def publish(self, services, image_id: str, image_tag: str, estimate: int | None) -> dict:
        return {"compressed_bytes": 650, "estimate_bytes": estimate}

    def remove(self, ref: str) -> bool:
        self.removed.append(ref)
        return True

    def remove_untagged(self, step_images, keep, require_label=None, patience=0.0) -> None:
        self.cleanups.append((list(step_images), keep, patience))
        if require_label is not None:
            self.labelled_cleanups.append((list(step_images), keep, require_label))


def _protocol_methods() -> set[str]:
    return {n for n, f in vars(EnginePort).items() if inspect.isfunction(f) and not n.startswith("_")}


def test_the_docker_engine_and_the_fake_both_offer_every_operation():
    for name in _protocol_methods():
        assert callable(getattr(DockerEngine, name, None)), name
        assert callable(getattr(FakeEngine, name, None)), name


@pytest.fixture
def variants(tmp_path):
    """Three variants of a tiny app: first, second, third, in manifest order."""
    ctx = tmp_path / "ctx"
    (ctx / "src").mkdir(parents=True)
    (ctx / "src" / "index.js").write_text("console.log('hi')\n")
    (ctx / "package.json").write_text(json.dumps({"name": "app", "version": "1.0.0"}))
    vdir = tmp_path / "variants"
    vdir.mkdir()
    lines = ['context = "../ctx"']
    for name in ("first", "second", "third"):
        (vdir / f"{name}.Dockerfile").write_text(f"FROM {BASE}\nCOPY . /app\n")
        lines += ["[[variant]]", f'name = "{name}"', f'dockerfile = "{name}.Dockerfile"']
    (vdir / "variants.toml").write_text("\n".join(lines) + "\n")
    return load_variants(vdir)


def _opts(tmp_path, **kw) -> runner.RunOptions:
    return runner.RunOptions(**{"repeat": 2, "out": tmp_path / "out", **kw})


def _run(tmp_path, variants, port, **kw):
    """The run directory, the record as results.json stores it, the exit code."""
    run_dir, run, code = runner.execute(None, variants, _opts(tmp_path, **kw), port=port)
    assert isinstance(run, Run)  # the runner returns the typed model
    assert run == store.load_run(run_dir)
    return run_dir, run.to_json(), code


def _by_name(record: dict) -> dict[str, dict]:
    return {v["name"]: v for v in record["variants"]}


def test_success_records_every_scenario_and_the_image(tmp_path, variants):
    port = FakeEngine()
    run_dir, record, code = _run(tmp_path, variants, port, scenarios=scenarios.ALL)

    assert code == 0
    assert [v["name"] for v in record["variants"]] == ["first", "second", "third"]
    assert record["finished_utc"] is not None
    assert record["bases"][BASE]["status"] == "present"
    v = _by_name(record)["first"]
    assert v["status"] == "ok" and v.get("error") is None
    assert v["image"]["id"] == _image_id("first")
    assert v["image"]["tag"] == variants[0].image_tag
    # The size from the layer analysis (harness.analysis.sizes), the engine's figure kept.
    assert v["image"]["size_bytes"] == 1_200 and v["image"]["size_basis"] == "layers"
    assert v["image"]["inspect_size_bytes"] == 1_234
    build = v["build"]
    assert build["builder"] == "classic"
    assert set(build["scenarios"]) == set(scenarios.ALL)
    for name in scenarios.ALL:
        got = build["scenarios"][name]
        assert len(got["samples_seconds"]) == 2, name
        assert len(got["warmup_seconds"]) == (0 if name == scenarios.COLD else 1), name
        assert got["stats"]["n"] == 2
    assert build["samples_seconds"] == build["scenarios"][scenarios.COLD]["samples_seconds"]
    assert build["scenarios"][scenarios.SOURCE]["changed"].startswith("src/index.js")
    assert build["scenarios"][scenarios.DEPENDENCY]["changed"].startswith("package.json")
    # No .dockerignore: the context sent is the whole directory.
    assert build["context_files"] == build["context_files_without_dockerignore"] > 0
    assert v["contents"]["compressed_estimate_bytes"] == 700
    assert v["attribution"]["layer_count"] == 2
    assert [f["requested"] for f in v["froms"]] == [BASE]
    # 4 scenarios x (2 samples + warm-ups: 0 cold, 1 cached) per variant
    assert sum(1 for b in port.builds if b[0] == "first") == 2 + 3 * 3
    saved = store.load(run_dir)
    assert [v["status"] for v in saved["variants"]] == ["ok", "ok", "ok"]
    assert set(saved["variants"][0]["build"]["scenarios"]) == set(scenarios.ALL)
    assert (tmp_path / "out" / history.HISTORY_FILE).is_file()


def test_a_failed_build_fails_its_variant_only(tmp_path, variants):
    port = FakeEngine(fail={"second"})
    run_dir, record, code = _run(tmp_path, variants, port)

    assert code == 1
    failed = _by_name(record)["second"]
    assert failed["status"] == "failed"
    assert failed["error"].startswith("build failed: ")
    assert "npm ci" in failed["error"]
    assert failed["log_tail"] == ["Step 2/2 : RUN npm ci", "npm ERR! missing lock"]
    assert "image" not in failed and "build" not in failed
    for name in ("first", "third"):
        ok = _by_name(record)[name]
        assert ok["status"] == "ok" and ok["image"]["size_bytes"] == 1_200, name
        assert len(ok["build"]["samples_seconds"]) == 2
    # A failed build's leftovers are waited for (a step container may still hold them).
    assert any(patience == 15.0 for _, keep, patience in port.cleanups if keep is None)
    saved = store.load(run_dir)
    assert saved["finished_utc"] is not None
    assert [v["status"] for v in saved["variants"]] == ["ok", "failed", "ok"]
    assert saved["variants"][1]["error"] == failed["error"]


def test_a_failed_layer_analysis_keeps_the_image_facts(tmp_path, variants):
    port = FakeEngine(bad_analysis={"second"})
    run_dir, record, code = _run(tmp_path, variants, port)

    # As the real runner: the analysis error is recorded, the variant stays measured.
    assert code == 0
    v = _by_name(record)["second"]
    assert v["status"] == "ok" and v.get("error") is None
    assert v["contents"]["error"] == "layer analysis failed: unexpected end of data"
    assert not v["contents"]["layers"] and "files_bytes" not in v["contents"]
    assert v["image"]["id"] == _image_id("second")
    assert v["image"]["size_bytes"] == 1_234  # the engine's figure, said to be so
    assert v["image"]["size_basis"] == "inspect"
    assert v["image"]["layer_count"] == 2 and v["build"]["samples_seconds"]
    assert any("no layer contents" in w for w in v["attribution"]["warnings"])
    assert _by_name(record)["third"]["image"]["size_basis"] == "layers"
    assert store.load(run_dir)["variants"][1]["contents"]["error"].startswith("layer analysis")


def test_an_engine_that_stops_answering_fails_the_variant_with_the_cause(tmp_path, variants):
    port = FakeEngine(engine_down={"first"})
    _, record, code = _run(tmp_path, variants, port)

    assert code == 1
    v = _by_name(record)["first"]
    assert v["status"] == "failed"
    assert v["error"].startswith("engine error: the engine stopped answering")
    assert _by_name(record)["second"]["status"] == "ok"


def test_an_interrupted_run_is_saved_unfinished_and_resumes(tmp_path, variants):
    port = FakeEngine(interrupt={"second"})
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, variants, port)

    [run_dir] = [p.parent for p in (tmp_path / "out").glob(f"*/{store.RESULTS_FILE}")]
    saved = store.load(run_dir)
    assert saved.get("finished_utc") is None  # unset: the store may leave the key out
    assert [v["name"] for v in saved["variants"]] == ["first", "second"]  # third never began
    first, second = saved["variants"]
    assert first["status"] == "ok" and first["image"]["size_bytes"] == 1_200
    assert len(first["build"]["samples_seconds"]) == 2
    assert second["status"] == "failed" and second["error"] == "interrupted"
    assert any(patience == 15.0 for _, _, patience in port.cleanups)
    assert not (tmp_path / "out" / history.HISTORY_FILE).exists()

    # --resume keeps what was measured (its image is still there) and builds the rest.
    again = FakeEngine(present={_image_id("first")})
    _, record_run, code = runner.execute(None, variants, _opts(tmp_path, resume=run_dir), port=again)
    record = record_run.to_json()  # as results.json stores it
    assert code == 0 and record["finished_utc"] is not None
    assert [v["status"] for v in record["variants"]] == ["ok", "ok", "ok"]
    assert record["variants"][0]["image"] == first["image"]
    assert record["variants"][0]["build"] == first["build"]
    assert record["variants"][1]["previous_attempt"] == {"status": "failed", "error": "interrupted"}
    assert {b[0] for b in again.builds} == {"second", "third"}
    assert len(record["resumed_utc"]) == 1


def test_registry_runtime_and_removal_go_through_the_port(tmp_path, variants):
    port = FakeEngine()
    _, record, code = _run(tmp_path, variants[:1], port, runtime=True, registry=True,
                           keep_images=False)

    assert code == 0
    v = record["variants"][0]
    assert v["runtime"] == {"status": "ok"}
    assert v["registry"] == {"compressed_bytes": 650, "estimate_bytes": 700, "layer_sizes": []}
    assert v["image"]["compressed_size_bytes"] == 650
    assert port.removed == [variants[0].image_tag]


def test_an_earlier_runs_image_is_dropped_once_the_tag_moves(tmp_path, variants):
    earlier = "sha256:" + "e" * 64
    port = FakeEngine(tags={variants[0].image_tag: earlier, variants[1].image_tag: earlier},
                      fail={"second"})
    _run(tmp_path, variants[:2], port)

    # Only the image the tag left, only if one of our runs made it (its label).
    assert port.labelled_cleanups == [
        ([earlier], _image_id("first"), runner.LABEL_RUN),
        ([earlier], None, runner.LABEL_RUN)]  # the failed build kept nothing of its own


class _Notes:
    """A progress sink that remembers its notes, and how many builds had started by each."""

    def __init__(self, port):
        self.port, self.notes = port, []

    def variant(self, *args, **kwargs): ...
    def step(self, text): ...
    def finished(self, *args): ...

    def note(self, text):
        self.notes.append((len(self.port.builds), text))


def test_dockerfile_mistakes_are_reported_before_the_first_build(tmp_path, variants):
    """`RUNN` and `COPY --from=nowhere` are named at once, before any build; the third
    variant is still measured and nothing measured is lost."""
    variants[0].dockerfile.write_text(f"FROM {BASE}\nRUNN echo hi\n")
    variants[1].dockerfile.write_text(f"FROM {BASE} AS deps\nFROM {BASE}\n"
                                      "COPY --from=nowhere /x /x\n")
    port = FakeEngine()
    progress = _Notes(port)
    run_dir, run, code = runner.execute(None, variants, _opts(tmp_path), progress, port=port)
    errors = [(builds, text) for builds, text in progress.notes if text.startswith("error:")]
    assert [text.split(":")[1].strip() for _, text in errors] == ["first", "second"]
    assert all(builds == 0 for builds, _ in errors), "reported only after a build started"
    assert "unknown instruction RUNN" in errors[0][1] and "--from=nowhere" in errors[1][1]
    by = {v.name: v for v in run.variants}
    assert by["first"].status == by["second"].status == "failed"
    assert "RUNN" in by["first"].error and by["third"].status == "ok"
    assert code == 1 and {b[0] for b in port.builds} == {"third"}
