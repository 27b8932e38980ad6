"""Start a built image and check that it serves: time to healthy, idle memory, GET /.

The container runs the image's own ENTRYPOINT/CMD, unprivileged (every capability
dropped, no-new-privileges), under memory and pids limits, with its one port published
on 127.0.0.1 only. It is removed (with its anonymous volumes) whatever happens,
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


def check(
    client: docker.DockerClient,
    image_id: str,
    *,
    labels: dict[str, str],
    port: int | None = None,
    health_path: str = "/healthz",
    root_path: str = "/",
    timeout: float = 30.0,
    mem_limit: str = "256m",
    pids_limit: int = 256,
    idle_seconds: float = 2.0,
) -> dict:
    """Run `image_id` once and report whether and how it serves.

    `seconds_to_healthy` is measured on the monotonic clock from the moment the engine's
    start call (`client.api.start`, after the container was created) returns, to the first
    200 answer from `health_path`; `timeout` bounds that wait. A container that exits
    first, or never answers 200 in time, gives status "failed" with a one-line `error`
    and the last lines of its logs. After `idle_seconds` more, one non-streamed stats
    call gives the idle memory (usage minus the page cache, as `docker stats` shows it).

    Engine connection errors propagate (the caller records them); an engine that
    refuses to create or start the container is a failure of the image, reported.
    """
    attrs = client.api.inspect_image(image_id)
    config = attrs.get("Config") or {}
    container_port = _container_port(config.get("ExposedPorts"), port)
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
    }
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
                ports=[(container_port, "tcp")], host_config=host_config)["Id"]
            client.api.start(container_id)
        except APIError as exc:
            out["error"] = f"the engine could not start it: {first_line(exc)}"
            return out
        started = time.monotonic()
        host_port = _host_port(client, container_id, container_port)

        if host_port is None:
            problem = (f"exited with code {_exit_code(client, container_id)} before answering "
                       f"{health_path}" + _oom(client, container_id))
        else:
            problem = _wait_healthy(client, container_id, host_port, health_path, timeout,
                                    started)
        if problem:
            out["error"] = problem
            out["logs_tail"] = _logs_tail(client, container_id)
            return out
        out["seconds_to_healthy"] = round(time.monotonic() - started, 4)

        time.sleep(idle_seconds)
        out["idle_memory_bytes"], out["memory_basis"] = idle_memory(
            client.api.stats(container_id, stream=False))
        exited = _exit_code(client, container_id)
        if exited is not None:
            out["error"] = f"exited with code {exited} after answering {health_path}"
            out["logs_tail"] = _logs_tail(client, container_id)
            return out

        try:
            status, body, content_type = _get(host_port, root_path, REQUEST_TIMEOUT * 5,
                                              limit=BODY_LIMIT)
        except (OSError, http.client.HTTPException) as exc:
            out["error"] = f"GET {root_path} failed: {first_line(exc)}"
            out["logs_tail"] = _logs_tail(client, container_id)
            return out
        out.update(root_status=status, root_body=body, root_content_type=content_type,
                   status="ok")
        return out
    finally:
        _remove(client, container_id, name)


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


def _wait_healthy(client, container_id: str, host_port: int, path: str, timeout: float,
                  started: float) -> str | None:
    """None once `path` answers 200; else why it never did, as one line."""
    deadline = started + timeout
    last = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            status, _, _ = _get(host_port, path, min(REQUEST_TIMEOUT, remaining), limit=0)
            if status == 200:
                return None
            last = f"last answer: {status}"
        except (OSError, http.client.HTTPException):
            pass  # not listening yet (the port proxy accepts, then drops the connection)
        code = _exit_code(client, container_id)
        if code is not None:
            return f"exited with code {code} before answering {path}" + _oom(client, container_id)
        time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
    code = _exit_code(client, container_id)
    if code is not None:
        return f"exited with code {code} before answering {path}" + _oom(client, container_id)
    return f"no 200 from {path} within {timeout:g} s" + (f" ({last})" if last else "")


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
