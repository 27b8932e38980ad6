"""Engines: what each product answers and how it is described (pure, on recorded answers),
finding the engines (state directories, --engine NAME=DOCKER_HOST), `harness engines`, and
BuildKit beside the classic builder on every engine `make engines` started.

The recorded answers (tests/fixtures/engine_answers.json) are `client.version()` and
`client.info()` of the four engines of scripts/engines.sh, trimmed to the keys used here
(the host name and kernel replaced)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT, require

from harness import engine
from harness.engine import buildkit, discovery
from harness.engine import description as describe_mod
from harness.engine.build import pack_context
from harness.engine.buildkit import build_image_buildkit
from harness.engine.description import describe_from
from harness.errors import BuildFailed

ANSWERS = json.loads((FIXTURES / "engine_answers.json").read_text())
ENGINES = ("docker20", "docker26", "docker26-containerd", "podman")
DOCKER_ENGINES = ENGINES[:3]
# The keys a results record had before engines were told apart; kept.
OLD_KEYS = {"host", "server_version", "api_version", "client_api_version", "os", "kernel",
            "architecture", "storage_driver", "cgroup_version", "engine_cpus",
            "engine_memory_bytes", "engine_name"}
SUMMARY_KEYS = {"name", "host", "version", "api_version", "store", "builders", "product",
                "default_builder", "can_build", "can_push", "can_run"}
BUSYBOX = Path("/bin/busybox")

# --- describing, on recorded answers -------------------------------------------------------

EXPECTED = {  # product, version, API (min), store, default builder, builders
    "docker20": ("Docker", "20.10.24+dfsg1", "1.41", "1.12", "overlay2", "classic",
                 ["classic", "buildkit"]),
    "docker26": ("Docker", "26.1.5+dfsg1", "1.45", "1.24", "overlay2", "buildkit",
                 ["classic", "buildkit"]),
    "docker26-containerd": ("Docker", "26.1.5+dfsg1", "1.45", "1.24",
                            "containerd (overlayfs snapshotter)", "buildkit",
                            ["classic", "buildkit"]),
    "podman": ("Podman", "4.3.1", "1.41", "1.24", "overlay", "buildah", ["buildah"]),
}


@pytest.mark.parametrize("name", ENGINES)
def test_describe_each_product(name):
    answers = ANSWERS[name]
    d = describe_from(answers["version"], answers["info"], host=f"unix:///run/{name}.sock",
                      name=name, client_api_version="1.41", buildkit_problem=None)
    product, version, api, min_api, store, default_builder, builders = EXPECTED[name]
    assert set(d) >= OLD_KEYS
    assert (d["product"], d["server_version"], d["api_version"], d["min_api_version"],
            d["store"], d["default_builder"], d["builders"]) == (
        product, version, api, min_api, store, default_builder, builders)
    assert d["name"] == name and d["host"] == f"unix:///run/{name}.sock"
    assert d["storage_driver"] == answers["info"]["Driver"]
    assert d["can_build"] and d["can_push"] and d["can_run"]
    if product == "Podman":
        assert d["buildkit_unavailable"] == buildkit.PODMAN_REASON
    else:
        assert d["buildkit_unavailable"] is None
    json.dumps(d)  # a record is JSON


def test_without_a_buildx_a_docker_engine_serves_classic_only():
    answers = ANSWERS["docker26"]
    d = describe_from(answers["version"], answers["info"], host="unix:///x.sock",
                      buildkit_problem="no docker CLI on PATH and no docker-buildx (...)")
    assert d["builders"] == ["classic"] and d["default_builder"] == "buildkit"
    assert d["buildkit_unavailable"].startswith("no docker CLI") and d["name"] is None


@pytest.mark.parametrize("version, product", [
    ({}, "Docker"),
    ({"Components": None}, "Docker"),
    ({"Components": [{"Name": "Engine"}]}, "Docker"),
    ({"Components": [{"Name": "Conmon"}, {"Name": "Podman Engine"}]}, "Podman"),
])
def test_product_of(version, product):
    assert engine.product_of(version) == product


@pytest.mark.parametrize("info, store", [
    ({"Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "extfs"]]}, "overlay2"),
    ({"Driver": "overlayfs", "DriverStatus": [["driver-type", "io.containerd.snapshotter.v1"]]},
     "containerd (overlayfs snapshotter)"),
    ({"Driver": "stargz", "DriverStatus": [["driver-type", "io.containerd.snapshotter.v1"]]},
     "containerd (stargz snapshotter)"),
    ({"Driver": "vfs", "DriverStatus": None}, "vfs"),
    ({}, "unknown"),
])
def test_store_of(info, store):
    assert engine.store_of(info) == store


@pytest.mark.parametrize("version, builder", [
    ("20.10.24+dfsg1", "classic"), ("22.06.0-beta.0", "classic"), ("23.0.0", "buildkit"),
    ("29.1.2", "buildkit"), ("", "classic"), (None, "classic"),
])
def test_default_builder_of_docker(version, builder):
    assert describe_mod.default_builder_of("Docker", version) == builder
    assert describe_mod.default_builder_of("Podman", version) == "buildah"


class _FakeApi:
    api_version = "1.45"


class _FakeClient:
    api = _FakeApi()

    def __init__(self, name: str):
        self.answers = ANSWERS[name]

    def version(self):
        return self.answers["version"]

    def info(self):
        return self.answers["info"]


def test_describe_names_the_default_engine_from_its_state_directory(tmp_path, monkeypatch):
    state = tmp_path / "state"
    _started(state, "docker26-containerd", "unix:///tmp/e/d26c.sock", default="unix:///tmp/e/default.sock")
    monkeypatch.setenv(discovery.STATE_ENV, str(state))
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/e/default.sock")
    asked: list = []
    monkeypatch.setattr(buildkit, "available", lambda host=None: asked.append(host))
    d = engine.describe(_FakeClient("docker26-containerd"))
    assert (d["name"], d["host"], d["store"], d["builders"]) == (
        "docker26-containerd", "unix:///tmp/e/default.sock", "containerd (overlayfs snapshotter)",
        ["classic", "buildkit"])
    assert asked == [None]  # the environment's engine, found as builds find it
    d = engine.describe(_FakeClient("podman"), host="unix:///tmp/e/p.sock", name="podman")
    assert (d["name"], d["builders"]) == ("podman", ["buildah"]) and asked == [None]
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/e/unknown.sock")
    assert engine.describe(_FakeClient("docker26"), buildkit=False)["name"] is None


# --- finding the engines -------------------------------------------------------------------

def _started(state: Path, name: str, host: str | None, default: str | None = None) -> Path:
    d = state / "engines" / name
    d.mkdir(parents=True)
    if host is not None:
        (d / "host").write_text(host + "\n")
    if default is not None:
        (d / "default").write_text(default + "\n")
    return d


def test_started_engines_from_state_directories(tmp_path):
    state = tmp_path / "state"
    _started(state, "docker26", "unix:///tmp/e/d26.sock")
    _started(state, "docker20", "unix:///tmp/e/d20.sock")
    _started(state, "stopped", None)  # a stopped engine has no host file
    _started(state, "broken", "not a url")
    (state / "engines" / "stray-file").write_text("x")
    refs, problems = discovery.started(state / "engines")
    assert [(r.name, r.host, r.source) for r in refs] == [
        ("docker20", "unix:///tmp/e/d20.sock", "started"), ("docker26", "unix:///tmp/e/d26.sock", "started")]
    assert len(problems) == 1 and problems[0].startswith("engine broken: ") and "\n" not in problems[0]
    assert discovery.started(tmp_path / "none") == ([], [])


def test_resolve_merges_the_default_engine_into_the_one_started_as_default(tmp_path, monkeypatch):
    state = tmp_path / "state"
    _started(state, "docker26-containerd", "unix:///tmp/e/d26c.sock", default="unix:///tmp/e/default.sock")
    _started(state, "podman", "unix:///tmp/e/podman.sock")
    monkeypatch.setenv(discovery.STATE_ENV, str(state))
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/e/default.sock")
    refs, errors, notes = discovery.resolve(["mine=tcp://127.0.0.1:2375",
                                             "again=unix:///tmp/e/podman.sock",  # the same host
                                             "podman=unix:///tmp/e/other.sock",  # the same name
                                             "nosep", "=unix:///x.sock", "bad-url=/tmp/x.sock"])
    assert [(r.name, r.host, r.default, r.source) for r in refs] == [
        ("docker26-containerd", "unix:///tmp/e/d26c.sock", True, "started"),
        ("podman", "unix:///tmp/e/podman.sock", False, "started"),
        ("mine", "tcp://127.0.0.1:2375", False, "given"),
    ]
    assert refs[0].aliases == ("unix:///tmp/e/default.sock",)
    assert notes == []
    assert sorted(e.split(":")[0] for e in errors) == [
        "--engine =unix", "--engine nosep", "engine bad-url", "engine podman"]
    assert all("\n" not in e for e in errors)


def test_resolve_without_state_lists_the_default_engine(tmp_path, monkeypatch):
    monkeypatch.setenv(discovery.STATE_ENV, str(tmp_path / "nothing"))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    refs, errors, notes = discovery.resolve(None)
    assert [(r.name, r.host, r.default) for r in refs] == [("default", engine.DEFAULT_SOCKET, True)]
    assert errors == notes == []


def test_a_socket_reached_through_a_link_is_the_same_engine(tmp_path, monkeypatch):
    real = tmp_path / "run"
    real.mkdir()
    (tmp_path / "var-run").symlink_to(real)
    monkeypatch.setenv(discovery.STATE_ENV, str(tmp_path / "state"))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/var-run/docker.sock")
    refs, errors, _ = discovery.resolve([f"main=unix://{real}/docker.sock"])
    assert [(r.name, r.default) for r in refs] == [("main", True)] and errors == []


@pytest.mark.parametrize("spec, problem", [
    ("nosep", "--engine nosep: expected NAME=DOCKER_HOST"),
    ("x=", "engine x: empty DOCKER_HOST"),
    ("x=docker.sock", "engine x: 'docker.sock' is not a DOCKER_HOST URL"),
    ("x=ftp://h", "engine x: 'ftp://h' is not a DOCKER_HOST URL"),
    ("x=unix://", "engine x: 'unix://' names no socket"),
    ("a b=tcp://h:1", "--engine a b=tcp://h:1: the name must be"),
])
def test_parse_spec_errors_name_the_spec(spec, problem):
    with pytest.raises(ValueError) as info:
        discovery.parse_spec(spec)
    assert str(info.value).startswith(problem) and "\n" not in str(info.value)


def test_parse_spec():
    assert discovery.parse_spec(" d26 = unix:///tmp/d.sock ") == discovery.EngineRef(
        "d26", "unix:///tmp/d.sock", "given")
    assert discovery.parse_spec("r=ssh://me@h").host == "ssh://me@h"


# --- harness engines: the command line --------------------------------------------------------

def _harness(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", "engines", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, **(env or {})})


def _no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout


def test_cli_nosep_is_a_one_line_error(tmp_path):
    proc = _harness("--json", "--engine", "justaname",
                    env={"HARNESS_STATE": str(tmp_path), "DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    _no_traceback(proc)
    assert proc.returncode == 2 and json.loads(proc.stdout) == []  # a bad --engine value
    lines = proc.stderr.splitlines()
    naming = [line for line in lines if "justaname" in line]
    assert naming == [("error: --engine justaname: expected NAME=DOCKER_HOST "
                       "(e.g. justaname=unix:///path/to/docker.sock)")]
    # The default engine does not answer there: a note, one line.
    assert [line for line in lines if line not in naming] == [
        f"note: engine default (unix://{tmp_path}/none.sock) does not answer: No such file or directory"]


def test_cli_table_without_engines_says_so(tmp_path):
    proc = _harness(env={"HARNESS_STATE": str(tmp_path), "DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    _no_traceback(proc)
    assert proc.returncode == 4 and proc.stdout == ""  # no engine answers
    assert proc.stderr.splitlines()[-1].startswith("error: no engine answers; ")


# --- on the engines make engines started ------------------------------------------------------

@pytest.fixture
def started_engines(request) -> dict[str, str]:
    """The engines of scripts/engines.sh a test needs (its `name` parameter, else all four),
    by name: their DOCKER_HOST URLs. A missing one skips, or fails in CI."""
    refs, _ = discovery.started()
    hosts = {r.name: r.host for r in refs}
    param = getattr(request.node, "callspec", None)
    needed = [param.params["name"]] if param and "name" in param.params else list(ENGINES)
    missing = [n for n in needed if n not in hosts]
    require(not missing, f"engines not started: {', '.join(missing)} (make engines)")
    return hosts


@pytest.fixture
def listed(started_engines) -> tuple[list[dict], subprocess.CompletedProcess]:
    proc = _harness("--json", "--engine", "bad=unix:///nonexistent.sock")
    _no_traceback(proc)
    return json.loads(proc.stdout), proc


@pytest.mark.engine
def test_cli_json_lists_every_started_engine(started_engines, listed):
    import docker

    entries, _ = listed
    by_name = {e["name"]: e for e in entries}
    assert set(ENGINES) <= set(by_name)
    assert len({discovery.host_key(e["host"]) for e in entries}) == len(entries)  # each host once
    for name in ENGINES:
        e = by_name[name]
        assert set(e) >= SUMMARY_KEYS, name
        assert e["host"] == started_engines[name] and e["can_build"] and e["can_push"] and e["can_run"]
        client = docker.DockerClient(base_url=e["host"], timeout=60)
        try:
            version, info = client.version(), client.info()
        finally:
            client.close()
        assert (e["version"], e["api_version"]) == (version["Version"], version["ApiVersion"])
        product, _, _, _, store, default_builder, builders = EXPECTED[name]
        if name == "podman":
            store = info["Driver"]  # its storage driver, whichever it was started with
        assert (e["product"], e["store"], e["default_builder"]) == (product, store, default_builder), name
        if name == "podman":
            assert e["builders"] == ["buildah"] and e["buildkit_unavailable"] == buildkit.PODMAN_REASON
        else:
            assert e["builders"] == builders, (name, e["buildkit_unavailable"])
    default = [e for e in entries if e["default"]]
    assert len(default) == 1
    assert engine.default_host() in (default[0]["host"], *default[0]["aliases"])


@pytest.mark.engine
def test_cli_an_engine_that_does_not_answer_is_one_line_and_the_others_are_listed(listed):
    entries, proc = listed
    assert proc.returncode == 1
    assert "bad" not in {e["name"] for e in entries} and set(ENGINES) <= {e["name"] for e in entries}
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [("error: engine bad (unix:///nonexistent.sock) does not answer: "
                       "No such file or directory")]


@pytest.mark.engine
def test_cli_table_lists_the_engines(started_engines):
    proc = _harness()
    _no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    for name in ENGINES:
        assert name in proc.stdout
    assert "containerd (overlayfs" in proc.stdout


# --- BuildKit on each engine --------------------------------------------------------------------

TINY = 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sh", "-c", "echo {nonce} > /n"]\n'


@pytest.fixture
def tiny(tmp_path):
    require(BUSYBOX.exists(), "needs Debian's busybox-static")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    shutil.copy(BUSYBOX, ctx / "busybox")  # executable, as it is
    return ctx


@pytest.mark.engine
@pytest.mark.parametrize("name", DOCKER_ENGINES)
def test_buildkit_builds_on_each_docker_engine(name, started_engines, tiny):
    import docker

    host = started_engines[name]
    problem = buildkit.available(host)
    require(problem is None, f"BuildKit on {name}: {problem}")
    context = pack_context(tiny, TINY.format(nonce=uuid.uuid4().hex), "Dockerfile")
    client = docker.DockerClient(base_url=host, timeout=120)
    tag = f"harness-test/engines:{uuid.uuid4().hex[:12]}"
    outcome = None
    try:
        outcome = build_image_buildkit(context, tag=tag, target=None, build_args={}, nocache=True,
                                       host=host)
        attrs = client.api.inspect_image(tag)
        # The id the engine shows (on the containerd store: the manifest's digest, not the
        # config digest --iidfile holds), and one image, no attestation manifest beside it.
        assert outcome.image_id == attrs["Id"]
        assert outcome.steps_total == 2
        assert len(attrs["RootFS"]["Layers"]) == 2
    finally:
        context.close()
        if outcome is not None:
            client.api.remove_image(outcome.image_id, force=True)
        client.close()


@pytest.mark.engine
@pytest.mark.parametrize("name", ["podman"])
def test_buildkit_on_podman_is_a_one_line_reason(name, started_engines, tiny):
    host = started_engines["podman"]
    assert buildkit.available(host) == buildkit.PODMAN_REASON
    context = pack_context(tiny, TINY.format(nonce="x"), "Dockerfile")
    try:
        with pytest.raises(BuildFailed) as info:
            build_image_buildkit(context, tag=None, target=None, build_args={}, nocache=True, host=host)
    finally:
        context.close()
    assert str(info.value) == f"BuildKit unavailable: {buildkit.PODMAN_REASON}"


@pytest.mark.engine
@pytest.mark.parametrize("name", ("docker26", "docker26-containerd"))
def test_both_builders_side_by_side_through_the_runner(name, started_engines, tmp_path, monkeypatch, tiny):
    """`--builder both`: the classic build measured, BuildKit's beside it, on the engine
    DOCKER_HOST names (as `harness run` finds it), and the record says which engine."""
    from harness.bench import runner
    from harness.bench.variants import Variant

    host = started_engines[name]
    require(buildkit.available(host) is None, f"BuildKit on {name}")
    monkeypatch.setenv("DOCKER_HOST", host)
    dockerfile = tmp_path / "tiny.Dockerfile"
    dockerfile.write_text(TINY.format(nonce=uuid.uuid4().hex))
    variant = Variant(name=f"tiny-both-{uuid.uuid4().hex[:8]}", label="tiny", dockerfile=dockerfile,
                      context=tiny)
    opts = runner.RunOptions(repeat=1, out=tmp_path / "out", bases_mode="present", analyze=False,
                             builders=("classic", "buildkit"), keep_images=False)
    client = engine.connect(timeout=120)
    try:
        _, record_run, code = runner.execute(client, [variant], opts)
        record = record_run.to_json()  # as results.json stores it
        entry = record["variants"][0]
        assert code == 0, entry.get("error")
        assert entry["build"]["builder"] == "classic"
        extra = entry["extra_builds"]["buildkit"]
        assert "error" not in extra, extra
        assert extra["image"]["layer_count"] == entry["image"]["layer_count"] == 2
        described = record["engine"]
        assert (described["name"], described["host"], described["store"]) == (
            name, host, EXPECTED[name][4])
        assert described["builders"] == ["classic", "buildkit"]
    finally:
        client.close()
