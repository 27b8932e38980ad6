"""The runtime check: a built image started unprivileged, polled, measured, always removed."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from conftest import ROOT, build_tiny, require
from docker.errors import ImageNotFound

from harness.engine import runtime
from harness.engine.build import build_image, pack_context

BUSYBOX = Path("/bin/busybox")
LABEL_RUN = "io.harness.run"
APP_NAME = json.loads((ROOT / "sample_app" / "package.json").read_text())["name"]


# --- same_behaviour: pure ---------------------------------------------------------------

def ok(body: str, status: int = 200) -> dict:
    return {"status": "ok", "root_status": status, "root_body": body,
            "root_content_type": "application/json; charset=utf-8"}


FAILED = {"status": "failed", "error": "exited with code 1 before answering /healthz",
          "root_status": None, "root_body": None}


def test_same_json_whatever_the_key_order_and_whitespace():
    out = runtime.same_behaviour([
        ("a", ok('{"name":"sample-app","endpoints":["/","/healthz"]}')),
        ("b", ok('{ "endpoints": ["/", "/healthz"],\n  "name": "sample-app" }')),
    ])
    assert out == {"reference": "a", "same": ["a", "b"], "different": [], "not_serving": []}


def test_reference_is_the_first_that_answered():
    out = runtime.same_behaviour([("broken", FAILED), ("none", None),
                                  ("a", ok('{"x":1}')), ("b", ok('{"x":1}'))])
    assert out["reference"] == "a"
    assert out["same"] == ["a", "b"]
    assert out["not_serving"] == ["broken", "none"]


def test_a_different_status_or_body_is_named():
    out = runtime.same_behaviour([
        ("a", ok('{"name":"sample-app","version":"1.4.0"}')),
        ("status", ok('{"error":"NotFound"}', status=404)),
        ("body", ok('{"name":"sample-app","version":"1.5.0"}')),
        ("text", ok("hello")),
    ])
    assert out["same"] == ["a"]
    reasons = {d["name"]: d["reason"] for d in out["different"]}
    assert reasons["status"] == "status 404, the reference answered 200"
    assert reasons["body"] == "JSON body differs in version"
    assert reasons["text"] == "body is not JSON, the reference's is"


def test_text_bodies_compare_as_text():
    out = runtime.same_behaviour([("a", ok("hi\n")), ("b", ok("hi\n")), ("c", ok("hi"))])
    assert out["same"] == ["a", "b"]
    assert out["different"] == [{"name": "c", "reason": "body differs"}]


def test_nothing_serving():
    out = runtime.same_behaviour([("a", FAILED), ("b", {"status": "ok", "root_status": None})])
    assert out == {"reference": None, "same": [], "different": [], "not_serving": ["a", "b"]}
    assert runtime.same_behaviour([]) == {"reference": None, "same": [], "different": [],
                                          "not_serving": []}


# --- helpers: pure -----------------------------------------------------------------------

def test_idle_memory_cgroup_v1_and_v2():
    v1 = {"memory_stats": {"usage": 30_000_000, "stats": {
        "cache": 9_000_000, "total_inactive_file": 8_000_000, "inactive_file": 7_000_000}}}
    assert runtime.idle_memory(v1) == (22_000_000, "usage - total_inactive_file (cgroup v1)")
    v1_old = {"memory_stats": {"usage": 30_000_000, "stats": {"cache": 9_000_000}}}
    assert runtime.idle_memory(v1_old) == (21_000_000, "usage - cache (cgroup v1)")
    v2 = {"memory_stats": {"usage": 30_000_000, "stats": {"inactive_file": 5_000_000,
                                                          "anon": 20_000_000}}}
    assert runtime.idle_memory(v2) == (25_000_000, "usage - inactive_file (cgroup v2)")
    assert runtime.idle_memory({"memory_stats": {}}) == (None, None)


def test_declared_healthcheck_and_its_budget():
    assert runtime.declared_healthcheck(None) is None
    assert runtime.declared_healthcheck({"Test": ["NONE"]}) is None
    check = {"Test": ["CMD", "true"], "Interval": 2_000_000_000, "Timeout": 1_000_000_000,
             "Retries": 2, "StartPeriod": 5_000_000_000}
    assert runtime.declared_healthcheck(check) is check
    assert runtime.healthcheck_budget(check) == 5 + 2 * (2 + 1)
    assert runtime.healthcheck_budget({"Test": ["CMD", "true"]}) == 3 * (30 + 30)  # defaults


def test_container_port():
    assert runtime._container_port({"8080/tcp": {}}, None) == 8080
    assert runtime._container_port({"8080/tcp": {}, "53/udp": {}}, 1) == 8080
    assert runtime._container_port({"80/tcp": {}, "443/tcp": {}}, 4000) == 4000
    assert runtime._container_port(None, None) == 3000


# --- engine ------------------------------------------------------------------------------

def _run_id() -> str:
    return f"test-runtime-{uuid.uuid4().hex[:12]}"


def _containers(client, run_id: str) -> list:
    return client.containers.list(all=True, filters={"label": f"{LABEL_RUN}={run_id}"})


def _busybox_image(client, tmp_path: Path, dockerfile: str) -> str:
    return build_tiny(client, tmp_path, dockerfile, busybox=True)


def _sample_image(client, request, variant_name: str, run_id: str, built: list[str],
                  made: list[str]) -> str:
    """The variant's image as the bench tagged it, else built here from its Dockerfile
    on the bases present or their stand-ins (never pulled); what is built is recorded."""
    from harness.analysis import dockerfile
    from harness.bases import resolve as bases
    from harness.bench import runner
    from harness.bench.variants import load_variants

    v = next(v for v in load_variants(ROOT / "variants") if v.name == variant_name)
    try:
        return client.api.inspect_image(v.image_tag)["Id"]
    except ImageNotFound:
        pass
    request.getfixturevalue("standins_built")
    p = runner.plan(v)
    assert p.problem is None, p.problem
    resolved = {ref: bases.resolve(client, ref, mode="present") for ref in p.refs}
    assert all(r.image_id for r in resolved.values()), [r.error for r in resolved.values()]
    swaps = {s.index: resolved[s.base].used_ref for s in p.stages
             if s.needs_resolution and resolved[s.base].used_ref != s.base}
    name = f".harness.{v.name}.Dockerfile"
    context = pack_context(v.context, dockerfile.rewrite_from(p.text, swaps), name)
    try:
        image_id = build_image(client, context, tag=None, target=v.target,
                               build_args=v.build_args, nocache=True,
                               labels={LABEL_RUN: run_id}, made=made).image_id
    finally:
        context.close()
    built.append(image_id)
    return image_id


@pytest.mark.engine
@pytest.mark.parametrize("variant_name", ["multistage-alpine", "multistage-distroless"])
def test_sample_app_serves(docker_client, request, variant_name):
    from harness.bench.runner import remove_untagged

    client, run_id = docker_client, _run_id()
    built: list[str] = []
    made: list[str] = []
    try:
        image_id = _sample_image(client, request, variant_name, run_id, built, made)
        result = runtime.check(client, image_id, labels={LABEL_RUN: run_id})
    finally:
        for image_id in built:
            client.api.remove_image(image_id, force=True)
        remove_untagged(client, made, keep=None)
    print(variant_name, json.dumps(result))
    assert result["status"] == "ok", result
    assert result["error"] is None and "logs_tail" not in result
    assert result["seconds_to_healthy"] > 0
    assert result["limits"] == {"memory": "256m", "pids": 256}
    assert 5_000_000 < result["idle_memory_bytes"] < 256 * 2**20
    assert result["memory_basis"].startswith("usage - ")
    assert result["container_port"] == 3000
    assert result["root_status"] == 200
    assert result["root_content_type"].startswith("application/json")
    assert json.loads(result["root_body"])["name"] == APP_NAME
    assert result["user"] == "root"  # neither variant sets USER
    assert _containers(client, run_id) == []
    if built:
        assert client.api.images(all=True, filters={"label": f"{LABEL_RUN}={run_id}"}) == []


@pytest.mark.engine
def test_an_image_that_exits_fails_with_its_logs(docker_client, tmp_path, image_janitor):
    require(BUSYBOX.exists(), "needs Debian's busybox-static")
    client, run_id = docker_client, _run_id()
    image_id = _busybox_image(client, tmp_path, (
        "FROM scratch\nCOPY busybox /bin/busybox\n"
        'CMD ["/bin/busybox", "sh", "-c", "echo cannot find config.json >&2; exit 1"]\n'))
    image_janitor.append(image_id)
    result = runtime.check(client, image_id, labels={LABEL_RUN: run_id}, timeout=20)
    assert result["status"] == "failed"
    assert result["error"] == "exited with code 1 before answering /healthz"
    assert "cannot find config.json" in result["logs_tail"]
    assert result["seconds_to_healthy"] is None and result["root_status"] is None
    assert _containers(client, run_id) == []


@pytest.mark.engine
def test_an_image_that_never_answers_times_out(docker_client, tmp_path, image_janitor):
    require(BUSYBOX.exists(), "needs Debian's busybox-static")
    client, run_id = docker_client, _run_id()
    image_id = _busybox_image(client, tmp_path, (
        "FROM scratch\nCOPY busybox /bin/busybox\n"
        'CMD ["/bin/busybox", "sleep", "600"]\n'))
    image_janitor.append(image_id)
    result = runtime.check(client, image_id, labels={LABEL_RUN: run_id}, timeout=3)
    assert result["status"] == "failed"
    assert result["error"] == "no 200 from /healthz within 3 s"
    assert result["logs_tail"] == []
    assert _containers(client, run_id) == []


@pytest.mark.engine
@pytest.mark.parametrize("where", ["create", "poll"])
def test_interrupted_check_leaves_no_container(docker_client, tmp_path, image_janitor,
                                               monkeypatch, where):
    """Ctrl-C while polling, or just as the create call returns (before the id is kept)."""
    require(BUSYBOX.exists(), "needs Debian's busybox-static")
    client, run_id = docker_client, _run_id()
    image_id = _busybox_image(client, tmp_path, (
        "FROM scratch\nCOPY busybox /bin/busybox\n"
        'CMD ["/bin/busybox", "sleep", "600"]\n'))
    image_janitor.append(image_id)
    seen: dict = {}
    if where == "create":
        real = client.api.create_container

        def create_then_interrupt(*args, **kwargs):
            real(*args, **kwargs)
            raise KeyboardInterrupt
        monkeypatch.setattr(client.api, "create_container", create_then_interrupt)
    else:
        def interrupt(*args, **kwargs):
            (container,) = _containers(client, run_id)
            host = container.attrs["HostConfig"]
            seen.update(cap_drop=host["CapDrop"], security_opt=host["SecurityOpt"],
                        memory=host["Memory"], pids=host["PidsLimit"],
                        bindings=host["PortBindings"],
                        ports=container.attrs["NetworkSettings"]["Ports"])
            raise KeyboardInterrupt
        monkeypatch.setattr(runtime._Wait, "http", interrupt)
    with pytest.raises(KeyboardInterrupt):
        runtime.check(client, image_id, labels={LABEL_RUN: run_id}, timeout=5)
    monkeypatch.undo()
    assert _containers(client, run_id) == []
    if where == "poll":  # it ran unprivileged, limited, published on loopback only
        assert seen["cap_drop"] == ["ALL"] and seen["security_opt"] == ["no-new-privileges"]
        assert seen["memory"] == 256 * 2**20 and seen["pids"] == 256
        assert seen["bindings"] == {"3000/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
        (published,) = seen["ports"]["3000/tcp"]
        assert published["HostIp"] == "127.0.0.1" and int(published["HostPort"]) > 0


# --- probes: HEALTHCHECK, custom port and path, command and env (engine) -------------------

HTTPD_8080 = ('CMD ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]\n')


@pytest.mark.engine
def test_a_healthcheck_that_passes_is_the_engines_verdict(docker_client, tmp_path, image_janitor):
    """A service on 8080 answering /health, with a HEALTHCHECK: healthy, then GET /."""
    require(BUSYBOX.exists(), "needs Debian's busybox-static")
    client, run_id = docker_client, _run_id()
    image_id = build_tiny(client, tmp_path, (
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY health /www/health\nEXPOSE 8080\n"
        "HEALTHCHECK --interval=1s --timeout=2s --retries=3 CMD [\"/bin/busybox\", \"wget\", "
        "\"-q\", \"-O\", \"/dev/null\", \"http://127.0.0.1:8080/health\"]\n" + HTTPD_8080),
        files={"health": "ok\n"}, busybox=True)
    image_janitor.append(image_id)
    result = runtime.check(client, image_id, labels={LABEL_RUN: run_id}, timeout=15,
                           idle_seconds=0.5)
    assert result["status"] == "ok", result
    assert result["health_source"] == "healthcheck" and result["engine_health"] == "healthy"
    assert "health_path" not in result  # the HEALTHCHECK decided, no path was polled
    assert result["container_port"] == 8080 and result["root_status"] is not None
    assert 0 < result["seconds_to_healthy"] < 15
    assert _containers(client, run_id) == []


@pytest.mark.engine
def test_a_failing_healthcheck_is_unhealthy(docker_client, tmp_path, image_janitor):
    require(BUSYBOX.exists(), "needs Debian's busybox-static")
    client, run_id = docker_client, _run_id()
    image_id = build_tiny(client, tmp_path, (
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY health /www/health\nEXPOSE 8080\n"
        "HEALTHCHECK --interval=1s --timeout=1s --retries=2 "
        "CMD [\"/bin/busybox\", \"sh\", \"-c\", \"echo no database; exit 1\"]\n"
        + HTTPD_8080), files={"health": "ok\n"}, busybox=True)
    image_janitor.append(image_id)
    result = runtime.check(client, image_id, labels={LABEL_RUN: run_id}, timeout=5)
    assert result["status"] == "failed", result
    assert result["health_source"] == "healthcheck" and result["engine_health"] == "unhealthy"
    assert result["error"].startswith("unhealthy: its HEALTHCHECK failed 2 time(s)")
    assert "no database" in result["error"]
    assert result["seconds_to_healthy"] is None and "logs_tail" in result
    assert _containers(client, run_id) == []


@pytest.mark.engine
def test_variant_settings_give_the_port_path_command_and_env(docker_client, tmp_path,
                                                             image_janitor):
    """No HEALTHCHECK, no EXPOSE: the variant's port, health_path, command and env."""
    from harness.bench.engine_port import DockerEngine
    from harness.bench.options import RunOptions, probe_for
    from harness.bench.variants import load_variants

    require(BUSYBOX.exists(), "needs Debian's busybox-static")
    client, run_id = docker_client, _run_id()
    image_id = build_tiny(client, tmp_path, (
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY health /www/health\n"
        'CMD ["/bin/busybox", "sleep", "600"]\n'), files={"health": "ok\n"}, busybox=True)
    image_janitor.append(image_id)
    vdir = tmp_path / "variants"
    vdir.mkdir()
    (vdir / "svc.Dockerfile").write_text("FROM scratch\n")
    (vdir / "variants.toml").write_text(
        'context = "."\n[[variant]]\nname = "svc"\ndockerfile = "svc.Dockerfile"\n'
        'port = 8081\nhealth_path = "/health"\nenv = { GREETING = "hello from env" }\n'
        'command = ["/bin/busybox", "sh", "-c", '
        '"echo $GREETING > /www/index.html && exec /bin/busybox httpd -f -p 8081 -h /www"]\n')
    (variant,) = load_variants(vdir)
    probe = probe_for(variant, RunOptions(runtime=True, port=9999, health_path="/nope"))
    result = DockerEngine(client).runtime_check(image_id, labels={LABEL_RUN: run_id},
                                                probe=probe)
    assert result["status"] == "ok", result
    assert result["health_source"] == "http" and result["health_path"] == "/health"
    assert result["container_port"] == 8081
    assert result["command"][:2] == ["/bin/busybox", "sh"]
    assert result["root_status"] == 200 and result["root_body"] == "hello from env\n"
    assert _containers(client, run_id) == []
