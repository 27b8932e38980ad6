"""Start a built image and check that it serves: time to healthy, idle memory, GET /.

Healthy is the engine's verdict on the image's own HEALTHCHECK when it declares one, else
an HTTP answer from a health path (default GET /healthz on the one exposed port or 3000).
The container runs the image's own ENTRYPOINT/CMD (or the command given), unprivileged
(every capability dropped, no-new-privileges), under memory and pids limits, with its one
port published on 127.0.0.1 only. It is removed (with its anonymous volumes) whatever happens,
Ctrl-C included.
"""

from __future__ import annotations

import http.client
import json
import time
import uuid
from email.message import Message

import docker
from docker.errors import APIError, NotFound

from harness.engine import ENGINE_ERRORS, first_line

DEFAULT_PORT = 3000
LOGS_TAIL = 20
BODY_LIMIT = 4096  # bytes of the GET / body kept
POLL_SECONDS = 0.1
REQUEST_TIMEOUT = 2.0  # per HTTP request; an app that accepts and never answers is polled again
NAME_PREFIX = "harness-runtime-"
DEFAULT_HEALTH_PATH = "/healthz"
HEALTHCHECK, HTTP = "healthcheck", "http"  # where the verdict came from: health_source
_NS = 1e-9
_DEFAULT_INTERVAL, _DEFAULT_TIMEOUT, _DEFAULT_RETRIES = 30.0, 30.0, 3  # the engine's defaults
HEALTH_POLL_SECONDS = 0.2
HEALTH_SLACK = 5.0  # seconds beyond the HEALTHCHECK's own timing, for the engine to say so


def check(
    client: docker.DockerClient,
    image_id: str,
    *,
    labels: dict[str, str],
    port: int | None = None,
    health_path: str = DEFAULT_HEALTH_PATH,
    expect_status: int | None = None,
    env: dict[str, str] | None = None,
    command: list[str] | None = None,
    root_path: str = "/",
    timeout: float = 30.0,
    mem_limit: str = "256m",
    pids_limit: int = 256,
    idle_seconds: float = 2.0,
) -> dict:
    """Run `image_id` once and report whether and how it serves.

    When the image declares a HEALTHCHECK, the engine's own verdict decides: the check
    waits for "healthy" or "unhealthy", as long as the HEALTHCHECK's own timing allows
    (start period, then retries of interval + timeout; at least `timeout`). Otherwise
    `health_path` is polled over HTTP until it answers `expect_status` (default 200).
    `seconds_to_healthy` is measured on the monotonic clock from the moment the engine's
    start call (`client.api.start`, after the container was created) returns, to healthy;
    `timeout` bounds the HTTP wait. A container that exits first, is unhealthy, or never
    answers in time, gives status "failed" with a one-line `error` and the last lines of
    its logs. After `idle_seconds` more, one non-streamed stats call gives the idle memory
    (usage minus the page cache, as `docker stats` shows it). `port`: the container port
    (default: the one exposed, else 3000); `env` and `command`: the container's extra
    environment and the command replacing the image's CMD.

    Engine connection errors propagate (the caller records them); an engine that
    refuses to create or start the container is a failure of the image, reported.
    """
    attrs = client.api.inspect_image(image_id)
    config = attrs.get("Config") or {}
    # A port given wins over the image's EXPOSE (an image may expose another, or none).
    container_port = port if port is not None else _container_port(config.get("ExposedPorts"),
                                                                   None)
    healthcheck = declared_healthcheck(config.get("Healthcheck"))
    out: dict = {
        "status": "failed",
        "error": None,
        "seconds_to_healthy": None,
        "idle_memory_bytes": None,
        "memory_basis": None,
        "root_status": None,
        "root_body": None,
        "root_content_type": None,
        "container_port": container_port,
        "limits": {"memory": mem_limit, "pids": pids_limit},
        "user": config.get("User") or "root",
        "health_source": HEALTHCHECK if healthcheck else HTTP,
    }
    if healthcheck is None:
        out["health_path"] = health_path
    if command:
        out["command"] = list(command)
    # A name of our own, so a container created by a call cut short before it returned
    # its id can still be found and removed.
    name = NAME_PREFIX + uuid.uuid4().hex[:16]
    container_id: str | None = None
    try:
        host_config = client.api.create_host_config(
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            mem_limit=mem_limit,
            pids_limit=pids_limit,
            port_bindings={f"{container_port}/tcp": ("127.0.0.1", None)},  # ephemeral port
        )
        try:
            container_id = client.api.create_container(
                image_id, name=name, detach=True, labels=dict(labels),
                environment=dict(env or {}) or None, command=list(command) if command else None,
                ports=[(container_port, "tcp")], host_config=host_config)["Id"]
            client.api.start(container_id)
        except APIError as exc:
            out["error"] = f"the engine could not start it: {first_line(exc)}"
            return out
        started = time.monotonic()
        wait = _Wait(client, container_id, started, timeout)
        host_port = _host_port(client, container_id, container_port)
        if healthcheck is not None:
            problem = wait.engine_health(healthcheck, out)
        elif host_port is None:
            problem = wait.exited(f"before answering {health_path}")
        else:
            problem = wait.http(host_port, health_path, expect_status)
        if problem:
            return _failed(out, problem, client, container_id)
        out["seconds_to_healthy"] = round(time.monotonic() - started, 4)
        _serve(client, container_id, host_port, root_path, idle_seconds, out)
        return out
    finally:
        _remove(client, container_id, name)


def declared_healthcheck(healthcheck: dict | None) -> dict | None:
    """The image's HEALTHCHECK (image config `Healthcheck`), None when there is none or it
    is `HEALTHCHECK NONE`."""
    test = (healthcheck or {}).get("Test") or []
    if not test or test[0] == "NONE":
        return None
    return healthcheck


def healthcheck_budget(healthcheck: dict) -> float:
    """Seconds the engine may take to call a HEALTHCHECK unhealthy: its start period, then
    `retries` failures of interval + timeout each (the engine's defaults where unset)."""
    interval = (healthcheck.get("Interval") or 0) * _NS or _DEFAULT_INTERVAL
    per_try = (healthcheck.get("Timeout") or 0) * _NS or _DEFAULT_TIMEOUT
    retries = healthcheck.get("Retries") or _DEFAULT_RETRIES
    start_period = (healthcheck.get("StartPeriod") or 0) * _NS
    return start_period + retries * (interval + per_try)


def _failed(out: dict, problem: str, client, container_id: str) -> dict:
    out["error"] = problem
    out["logs_tail"] = _logs_tail(client, container_id)
    return out


def _serve(client, container_id: str, host_port: int | None, root_path: str,
           idle_seconds: float, out: dict) -> None:
    """Once healthy: idle memory, still running, and what GET / answers."""
    time.sleep(idle_seconds)
    out["idle_memory_bytes"], out["memory_basis"] = idle_memory(
        client.api.stats(container_id, stream=False))
    exited = _exit_code(client, container_id)
    if exited is not None:
        when = (f"after answering {out['health_path']}" if out.get("health_path")
                else "after its HEALTHCHECK passed")
        _failed(out, f"exited with code {exited} {when}", client, container_id)
        return
    if host_port is None:  # healthy, yet its port was never published
        _failed(out, f"GET {root_path} failed: port {out['container_port']} is not published",
                client, container_id)
        return
    try:
        status, body, content_type = _get(host_port, root_path, REQUEST_TIMEOUT * 5,
                                          limit=BODY_LIMIT)
    except (OSError, http.client.HTTPException) as exc:
        _failed(out, f"GET {root_path} failed: {first_line(exc)}", client, container_id)
        return
    out.update(root_status=status, root_body=body, root_content_type=content_type,
               status="ok")


class _Wait:
    """Waiting for one started container to be healthy; each method answers None once it
    is, else why it never was, as one line."""

    def __init__(self, client, container_id: str, started: float, timeout: float):
        self.client, self.container_id = client, container_id
        self.started, self.timeout = started, timeout

    def exited(self, when: str) -> str | None:
        code = _exit_code(self.client, self.container_id)
        if code is None:
            return None
        return f"exited with code {code} {when}" + _oom(self.client, self.container_id)

    def http(self, host_port: int, path: str, expect: int | None) -> str | None:
        """Poll GET `path` until it answers `expect` (200 when None)."""
        want = expect if expect is not None else 200
        deadline = self.started + self.timeout
        last = None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                status, _, _ = _get(host_port, path, min(REQUEST_TIMEOUT, remaining), limit=0)
                if status == want:
                    return None
                last = f"last answer: {status}"
            except (OSError, http.client.HTTPException):
                pass  # not listening yet (the port proxy accepts, then drops the connection)
            problem = self.exited(f"before answering {path}")
            if problem:
                return problem
            time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
        problem = self.exited(f"before answering {path}")
        if problem:
            return problem
        return (f"no {want} from {path} within {self.timeout:g} s"
                + (f" ({last})" if last else ""))

    def engine_health(self, healthcheck: dict, out: dict) -> str | None:
        """Wait for the engine's verdict on the image's HEALTHCHECK; recorded in `out`."""
        budget = max(self.timeout, healthcheck_budget(healthcheck) + HEALTH_SLACK)
        deadline = self.started + budget
        while True:
            state = self.client.api.inspect_container(self.container_id).get("State") or {}
            health = state.get("Health") or {}
            out["engine_health"] = health.get("Status")
            if health.get("Status") == "healthy":
                return None
            if health.get("Status") == "unhealthy":
                return ("unhealthy: its HEALTHCHECK failed "
                        f"{health.get('FailingStreak') or '?'} time(s)" + _last_probe(health))
            problem = self.exited("before its HEALTHCHECK passed")
            if problem:
                return problem
            if time.monotonic() >= deadline:
                return (f"its HEALTHCHECK was still {health.get('Status') or 'starting'} "
                        f"after {budget:g} s" + _last_probe(health))
            time.sleep(HEALTH_POLL_SECONDS)


def _last_probe(health: dict) -> str:
    """The last HEALTHCHECK run's exit code and output, as a short suffix."""
    log = health.get("Log") or []
    if not log:
        return ""
    last = log[-1]
    output = " ".join(str(last.get("Output") or "").split())[:160]
    return f" (last run: exit code {last.get('ExitCode')}" + (f", {output}" if output else "") + ")"


def _container_port(exposed: dict | None, port: int | None) -> int:
    """The image's one exposed tcp port, else `port`, else 3000."""
    tcp = [int(key.split("/")[0]) for key in (exposed or {})
           if key.endswith("/tcp") or "/" not in key]
    if len(tcp) == 1:
        return tcp[0]
    return port if port is not None else DEFAULT_PORT


def _host_port(client, container_id: str, container_port: int) -> int | None:
    """The ephemeral host port the engine chose, from the container's NetworkSettings;
    None when the container has already exited (its ports are gone with it)."""
    deadline = time.monotonic() + 5.0
    while True:
        attrs = client.api.inspect_container(container_id)
        ports = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
        for binding in ports.get(f"{container_port}/tcp") or []:
            if binding.get("HostIp") in ("127.0.0.1", "") and binding.get("HostPort"):
                return int(binding["HostPort"])
        if not (attrs.get("State") or {}).get("Running"):
            return None
        if time.monotonic() >= deadline:
            raise APIError(f"the engine published no host port for {container_port}/tcp")
        time.sleep(POLL_SECONDS)


def _get(host_port: int, path: str, timeout: float, limit: int) -> tuple[int, str, str | None]:
    """GET http://127.0.0.1:<host_port><path>: status, body (first `limit` bytes), type."""
    conn = http.client.HTTPConnection("127.0.0.1", host_port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Accept": "*/*", "Connection": "close"})
        resp = conn.getresponse()
        raw = resp.read(limit) if limit else b""
        content_type = resp.getheader("Content-Type")
        return resp.status, raw.decode(_charset(content_type), errors="replace"), content_type
    finally:
        conn.close()


def _charset(content_type: str | None) -> str:
    msg = Message()
    msg["Content-Type"] = content_type or "text/plain"
    charset = msg.get_content_charset() or "utf-8"
    try:
        "".encode(charset)
    except LookupError:
        return "utf-8"
    return charset


def _exit_code(client, container_id: str) -> int | None:
    """The exit code once the container has stopped running, else None."""
    state = client.api.inspect_container(container_id).get("State") or {}
    if state.get("Running") or state.get("Status") in ("created", "running", "restarting"):
        return None
    return int(state.get("ExitCode") or 0)


def _oom(client, container_id: str) -> str:
    state = client.api.inspect_container(container_id).get("State") or {}
    return " (killed: out of memory)" if state.get("OOMKilled") else ""


def _logs_tail(client, container_id: str) -> list[str]:
    try:
        raw = client.api.logs(container_id, stdout=True, stderr=True, tail=LOGS_TAIL)
    except APIError:
        return []
    lines = raw.decode("utf-8", errors="replace").splitlines()
    return [line.rstrip() for line in lines][-LOGS_TAIL:]


def idle_memory(stats: dict) -> tuple[int | None, str | None]:
    """Memory in use without the page cache, and which figure was subtracted.

    cgroup v1 reports `total_inactive_file` (subtracted, as `docker stats` does) and
    `cache` (the fallback); cgroup v2 reports `inactive_file` only. The v1 keys are
    looked at first: v1 also has a per-cgroup `inactive_file`, without `total_`.
    """
    mem = (stats or {}).get("memory_stats") or {}
    usage = mem.get("usage")
    if usage is None:
        return None, None
    detail = mem.get("stats") or {}
    for key, cgroup in (("total_inactive_file", "v1"), ("cache", "v1"),
                        ("inactive_file", "v2")):
        if key == "inactive_file" and ("total_inactive_file" in detail or "cache" in detail):
            continue
        value = detail.get(key)
        if value is not None and value < usage:
            return int(usage - value), f"usage - {key} (cgroup {cgroup})"
    return int(usage), "usage (no page cache figure)"


def _remove(client, container_id: str | None, name: str) -> None:
    """Remove our container by id, with its anonymous volumes; never raise."""
    ids = [container_id] if container_id else []
    if not ids:  # created by a call that never returned: find it by its name
        try:
            ids = [c["Id"] for c in client.api.containers(all=True, filters={"name": name})
                   if f"/{name}" in (c.get("Names") or [])]
        except ENGINE_ERRORS:
            return
    for cid in ids:
        for _ in range(3):
            try:
                client.api.remove_container(cid, force=True, v=True)
                break
            except NotFound:
                break
            except APIError as exc:  # "removal already in progress" and the like
                if "already in progress" in str(exc.explanation or exc):
                    break
                time.sleep(0.5)
            except ENGINE_ERRORS:
                break


# --- comparing the variants ----------------------------------------------------------------

def same_behaviour(results: list[tuple[str, dict]]) -> dict:
    """Whether every variant serves the same GET /, against the first one that answered.

    A variant answered when its check is ok and it has a root status. Status codes are
    compared, then bodies: parsed when both are JSON (key order and whitespace do not
    matter), as text otherwise. `same` includes the reference itself.
    """
    serving = [(name, r) for name, r in results if _answered(r)]
    out: dict = {"reference": None, "same": [], "different": [],
                 "not_serving": [name for name, r in results if not _answered(r)]}
    if not serving:
        return out
    ref_name, ref = serving[0]
    out["reference"] = ref_name
    out["same"].append(ref_name)
    for name, r in serving[1:]:
        reason = _difference(ref, r)
        if reason is None:
            out["same"].append(name)
        else:
            out["different"].append({"name": name, "reason": reason})
    return out


def _answered(r: dict | None) -> bool:
    return bool(r) and r.get("status") == "ok" and r.get("root_status") is not None


def _difference(ref: dict, other: dict) -> str | None:
    if other.get("root_status") != ref.get("root_status"):
        return (f"status {other.get('root_status')}, the reference answered "
                f"{ref.get('root_status')}")
    a, b = ref.get("root_body") or "", other.get("root_body") or ""
    pa, pb = _json(a), _json(b)
    if pa is not _NOT_JSON and pb is not _NOT_JSON:
        if pa == pb:
            return None
        if isinstance(pa, dict) and isinstance(pb, dict):
            keys = sorted(str(k) for k in pa.keys() | pb.keys()
                          if pa.get(k, _NOT_JSON) != pb.get(k, _NOT_JSON))
            return "JSON body differs in " + ", ".join(keys)
        return "JSON body differs"
    if pa is not _NOT_JSON:
        return "body is not JSON, the reference's is"
    if pb is not _NOT_JSON:
        return "body is JSON, the reference's is not"
    return None if a == b else "body differs"


_NOT_JSON = object()


def _json(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return _NOT_JSON
