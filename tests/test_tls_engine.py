"""tests/tls_engine.py: an engine behind tcp:// with mutual TLS, as `dockerd --tlsverify`.

Each test runs against the default engine's unix socket (marked `engine`) and against a
stand-in API on a unix socket (answers /_ping and /version), so the proxy is checked on a
machine without an engine too."""

from __future__ import annotations

import contextlib
import http.server
import json
import shutil
import socket
import socketserver
import ssl
import tempfile
import threading
from pathlib import Path

import docker
import pytest
import requests
from conftest import require
from tls_engine import tls_engine

from harness import engine

REFUSED = (docker.errors.DockerException, requests.exceptions.RequestException, ssl.SSLError,
           OSError)
STAND_IN_VERSION = {"ApiVersion": "1.41", "MinAPIVersion": "1.12", "Version": "stand-in"}


class _StandInApi(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects

    def do_GET(self):
        if self.path.endswith("/_ping"):
            body = b"OK"
        elif self.path.endswith("/version"):
            body = json.dumps(STAND_IN_VERSION).encode()
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # quiet (and client_address is '' on a unix socket)
        pass


@contextlib.contextmanager
def serving(handler):
    """A threading unix-socket server in a short temporary directory (socket paths are
    limited to ~108 bytes, which pytest's tmp_path can exceed); yields the socket's path."""
    with tempfile.TemporaryDirectory(prefix="api-") as tmp:
        path = str(Path(tmp) / "api.sock")
        server = socketserver.ThreadingUnixStreamServer(path, handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield path
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


@pytest.fixture(params=[pytest.param("engine", marks=pytest.mark.engine), "stand-in"])
def unix_socket(request):
    require(shutil.which("openssl") is not None, "needs the openssl command-line tool")
    if request.param == "stand-in":
        with serving(_StandInApi) as path:
            yield path
        return
    request.getfixturevalue("docker_client")  # skips (fails in CI) when no engine answers
    host = engine.default_host()
    require(host.startswith("unix://"), f"the default engine is not on a unix socket: {host}")
    yield host.removeprefix("unix://")


@pytest.fixture(autouse=True)
def no_ca_bundle_override(monkeypatch):
    """requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE win over a session's CA, so with
    either set the SDK would check the engine against the system's CAs, not ours
    (docker/docker-py#2433, psf/requests#5209)."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


def client(base_url: str, **tls) -> docker.DockerClient:
    return docker.DockerClient(base_url=base_url, tls=docker.tls.TLSConfig(**tls), timeout=30)


def test_a_client_with_the_certificates_reaches_the_engine(unix_socket):
    with tls_engine(unix_socket) as ctx:
        assert ctx.host.startswith("tcp://127.0.0.1:")
        certs = ctx.cert_dir
        assert sorted(p.name for p in certs.iterdir()) == ["ca.pem", "cert.pem", "key.pem"]
        assert ctx.env == {"DOCKER_HOST": ctx.host, "DOCKER_TLS_VERIFY": "1",
                           "DOCKER_CERT_PATH": str(certs)}
        with contextlib.closing(client(
                ctx.host, client_cert=(str(certs / "cert.pem"), str(certs / "key.pem")),
                ca_cert=str(certs / "ca.pem"), verify=True)) as c:
            assert c.ping() is True
            assert c.version()["ApiVersion"]
        # How the harness connects: the environment a remote engine's users export.
        kwargs = docker.utils.kwargs_from_env(environment=ctx.env)
        with contextlib.closing(docker.DockerClient(**kwargs)) as c:
            assert c.ping() is True
            assert c.version()["Version"]
        port = int(ctx.host.rsplit(":", 1)[1])
    assert not certs.exists()  # the throwaway CA and keys are gone
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()  # no longer listening


def test_a_client_without_a_certificate_is_refused(unix_socket):
    with tls_engine(unix_socket) as ctx, pytest.raises(REFUSED):
        # The client asks the engine's version as it is made: the refusal may come there.
        client(ctx.host, ca_cert=str(ctx.cert_dir / "ca.pem"), verify=True).close()


def test_a_client_that_does_not_trust_the_ca_is_refused(unix_socket):
    with tls_engine(unix_socket) as ctx, pytest.raises(REFUSED):
        certs = ctx.cert_dir
        # verify=True without ca_cert: the system's CAs, which never signed the server's.
        client(ctx.host, client_cert=(str(certs / "cert.pem"), str(certs / "key.pem")),
               verify=True).close()


class _CountThenAnswer(socketserver.BaseRequestHandler):
    """A hijacked stream in miniature: reads to EOF (stdin closed), then answers and closes."""

    def handle(self):
        n = 0
        while data := self.request.recv(65536):
            n += len(data)
        self.request.sendall(b"got %d bytes" % n)


def test_the_pipe_passes_a_half_close_on_and_the_answer_back():
    require(shutil.which("openssl") is not None, "needs the openssl command-line tool")
    with serving(_CountThenAnswer) as path, tls_engine(path) as ctx:
        context = ssl.create_default_context(cafile=str(ctx.cert_dir / "ca.pem"))
        context.load_cert_chain(ctx.cert_dir / "cert.pem", ctx.cert_dir / "key.pem")
        address = ("127.0.0.1", int(ctx.host.rsplit(":", 1)[1]))
        idle = context.wrap_socket(socket.create_connection(address), server_hostname="127.0.0.1")
        idle.settimeout(10)
        with context.wrap_socket(socket.create_connection(address),
                                 server_hostname="127.0.0.1") as tls:
            tls.sendall(b"x" * 1_000_000)
            # close_notify alone, reading on: what Go's tls.Conn.CloseWrite sends when the
            # docker CLI's attach reaches the end of stdin.
            tls.setblocking(False)
            with contextlib.suppress(ssl.SSLWantReadError):
                tls.unwrap()
            tls.settimeout(10)
            answer = b""
            while data := tls.recv(65536):
                answer += data
        assert answer == b"got 1000000 bytes"  # and then EOF: the engine's close came through
    # Leaving the context closes the connections still open.
    with contextlib.suppress(ssl.SSLError, ConnectionError):
        assert idle.recv(1) == b""
    idle.close()
