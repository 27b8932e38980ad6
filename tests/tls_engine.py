"""A Docker engine reached over tcp:// with TLS, for tests: it stands for a remote engine
started as `dockerd --tlsverify -H tcp://...`, the way a team reaches a shared build host.

`tls_engine(unix_socket)` makes a throwaway CA, a server certificate for 127.0.0.1 and a
client certificate with the openssl command-line tool, listens on 127.0.0.1 (a free port)
with mutual TLS and pipes every connection's bytes to the engine's unix socket. `cert_dir`
is laid out as DOCKER_CERT_PATH expects (ca.pem, cert.pem, key.pem); `env` holds the three
variables docker's `kwargs_from_env` reads.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Our own config, so the system's openssl.cnf can neither add nor clash with extensions.
OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
[server]
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
[client]
extendedKeyUsage = clientAuth
"""
NEW_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]  # fast


@dataclass(frozen=True)
class TlsEngine:
    host: str  # tcp://127.0.0.1:PORT
    cert_dir: Path  # the client's side: ca.pem, cert.pem, key.pem
    env: dict[str, str]  # DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH


def _openssl(root: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=root, check=True, capture_output=True)


def _make_certs(root: Path) -> None:
    """root/ca.pem, and root/server and root/client each with ca.pem, cert.pem, key.pem."""
    (root / "openssl.cnf").write_text(OPENSSL_CONFIG)
    _openssl(root, "req", "-x509", "-config", "openssl.cnf", "-extensions", "ca", *NEW_KEY,
             "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "1", "-subj", "/CN=tls-engine-ca")
    for name in ("server", "client"):
        (root / name).mkdir()
        _openssl(root, "req", "-new", "-config", "openssl.cnf", *NEW_KEY, "-keyout",
                 f"{name}/key.pem", "-out", f"{name}.csr", "-subj", f"/CN=tls-engine-{name}")
        _openssl(root, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
                 "-CAcreateserial", "-days", "1", "-extfile", "openssl.cnf", "-extensions", name,
                 "-out", f"{name}/cert.pem")
        shutil.copy(root / "ca.pem", root / name / "ca.pem")


class _Proxy:
    """Mutual-TLS listener on 127.0.0.1 piping each connection to a unix socket."""

    def __init__(self, context: ssl.SSLContext, unix_socket: str) -> None:
        self.context, self.unix_socket = context, unix_socket
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)  # so the accept loop sees `stop` without a wake-up trick
        self.port = self.listener.getsockname()[1]
        self.stop, self.lock = threading.Event(), threading.Lock()
        self.open: set[socket.socket] = set()
        self.threads: list[threading.Thread] = []
        self.acceptor = self._spawn(self._accept_loop)

    def _spawn(self, target, *args) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self.lock:  # keep only the live ones: a long session makes many connections
            self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        thread.start()
        return thread

    def _close(self, *socks: socket.socket) -> None:
        for sock in socks:
            with contextlib.suppress(OSError):  # shutdown wakes a thread blocked in recv; close
                # does not. The plain one: SSLSocket.shutdown drops the TLS state under a reader.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            sock.close()
            with self.lock:
                self.open.discard(sock)

    def _accept_loop(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener is closed
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        # The handshake runs here, not in the accept loop: a slow client holds only its thread.
        conn.settimeout(10)
        tls = self.context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with self.lock:
            self.open.update((tls, engine))
        if self.stop.is_set():  # closing down (close() may have missed these): start nothing
            return self._close(tls, engine)
        try:
            tls.do_handshake()  # refuses a client without a certificate from our CA
            tls.settimeout(None)
            engine.connect(self.unix_socket)
        except OSError:
            return self._close(tls, engine)
        self._spawn(self._pump, tls, engine, True)
        self._spawn(self._pump, engine, tls, False)

    def _pump(self, src: socket.socket, dst: socket.socket, half_close: bool) -> None:
        # A plain byte pipe: the API hijacks connections (attach, exec) for raw streams.
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            half_close = False  # broken, not ended: drop the connection
        if half_close:  # the client is done sending (an attach's stdin) but reads the answer
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
        else:  # the engine is done (a TLS socket cannot half-close while its other direction
            self._close(src, dst)  # still reads), or a side broke: close both

    def close(self) -> None:
        self.stop.set()
        self.acceptor.join(timeout=5)  # no new connection after this
        self.listener.close()
        with self.lock:
            socks, threads = list(self.open), list(self.threads)
        self._close(*socks)
        for thread in threads:
            thread.join(timeout=5)


@contextlib.contextmanager
def tls_engine(unix_socket: str) -> Iterator[TlsEngine]:
    """The engine at the unix socket path `unix_socket`, behind tcp:// with mutual TLS."""
    subprocess.run(["openssl", "version"], check=True, capture_output=True)  # fail early
    with tempfile.TemporaryDirectory(prefix="tls-engine-") as tmp:
        root = Path(tmp)
        _make_certs(root)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(root / "server" / "cert.pem", root / "server" / "key.pem")
        context.load_verify_locations(root / "ca.pem")
        context.verify_mode = ssl.CERT_REQUIRED  # as `dockerd --tlsverify`: client certs only
        context.num_tickets = 0  # no session resumption: each connection shows its certificate
        proxy = _Proxy(context, unix_socket)
        host, cert_dir = f"tcp://127.0.0.1:{proxy.port}", root / "client"
        try:
            yield TlsEngine(host, cert_dir, {"DOCKER_HOST": host, "DOCKER_TLS_VERIFY": "1",
                                             "DOCKER_CERT_PATH": str(cert_dir)})
        finally:
            proxy.close()
