"""A second Docker engine of our own: empty, on a data root of its own, stopped by pid.

Used for a cold-host pull (every layer downloaded and extracted, nothing shared with the
engine that built the images) and by the fault tests, which kill and restart it at will.

The engine the harness measures with is never touched: the private one has its own data
root, exec root, pid file, socket and containerd (dockerd starts one under its exec root),
a bridge interface of its own made for it, and no iptables rules. Not `--bridge=none`: a
dockerd started so deletes the host's `docker0` at start-up, cutting the main engine's
containers off the network.

Every process stopped here is one this module started, found by its pid: dockerd (our
child), the containerd it spawned (pid file under the exec root), the runc shims of that
containerd (their command line names our exec root) and the processes in the cgroups of
our engine's containers.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
from docker.errors import DockerException
from requests.exceptions import RequestException

DOCKERD = "dockerd"
BRIDGE_PREFIX = "hpe"
START_TIMEOUT = 90.0  # a restart waits up to 10 s for each container it finds still running
STOP_TIMEOUT = 30.0
API_VERSION = "1.41"  # Docker 20.10; only for the readiness probe
_OUR_BINARIES = ("dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2",
                 "runc", "docker-proxy", "docker-init")
MNT_DETACH = 2


class PrivateEngine:
    """A dockerd of our own under `root` (short: unix socket paths hold 108 bytes)."""

    def __init__(self, root: Path, bridge: str = BRIDGE_PREFIX, subnet: str = "10.213.77.1/24"):
        self.root = root
        self.data_root = root / "d"
        self.exec_root = root / "x"
        self.pidfile = root / "d.pid"
        self.sock = root / "d.sock"
        self.log = root / "dockerd.log"
        self.config = root / "daemon.json"  # empty: /etc/docker/daemon.json is not read
        self.config.write_text("{}\n")
        self.bridge = f"{bridge}{os.getpid() % 100000}"  # interface names hold 15 bytes
        self.subnet = subnet
        self.process: subprocess.Popen | None = None
        self.containerd_pid: int | None = None
        self._clients: list[docker.DockerClient] = []
        self._closed = False

    @property
    def host(self) -> str:
        return f"unix://{self.sock}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start dockerd (again, on the same data root) and wait until it answers."""
        if self.running():
            raise RuntimeError(f"the private dockerd (pid {self.pid}) is already running")
        self.pidfile.unlink(missing_ok=True)  # left by a killed dockerd
        # dockerd reuses a containerd whose pid file names a live process, and kill(pid, 0)
        # succeeds on a zombie that init has not reaped yet: it would wait for a dead one.
        stale = self.exec_root / "containerd" / "containerd.pid"
        try:
            if not _alive(int(stale.read_text().strip())):
                stale.unlink()
        except (OSError, ValueError):
            pass
        args = [DOCKERD, "--data-root", str(self.data_root), "--exec-root", str(self.exec_root),
                "--pidfile", str(self.pidfile), "-H", self.host, "--config-file", str(self.config),
                f"--bridge={self.bridge}", "--iptables=false", "--ip-masq=false",
                "--log-level=info"]
        self._make_bridge()
        if shutil.which("setpriv"):  # SIGTERM it should we die: a dockerd outliving us is a leak
            args = ["setpriv", "--pdeathsig", "TERM", "--", *args]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"the private dockerd exited ({self.process.returncode}): "
                                   f"{self._log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the private dockerd did not answer within {timeout:g} s: "
                                   f"{self._log_tail()}")
            time.sleep(0.2)
        self.containerd_pid = self._containerd_pid()

    def client(self, timeout: int = 120) -> docker.DockerClient:
        """A client for this engine (closed by close())."""
        client = docker.DockerClient(base_url=self.host, timeout=timeout)
        self._clients.append(client)
        return client

    def kill(self) -> None:
        """SIGKILL dockerd and its containerd, as a crash would; wait until both are gone.

        The shims and the containers they run survive, as after a real crash; the next
        start() finds them and stops them."""
        if self.running():
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=STOP_TIMEOUT)
        # dockerd 20.10 spawns containerd with a parent-death SIGKILL; make sure anyway.
        if self.containerd_pid is not None:
            _kill_and_wait([self.containerd_pid], self._is_ours)
            self.containerd_pid = None

    def close(self) -> None:
        """Stop everything this engine started, unmount what it left, remove its files."""
        if self._closed:
            return
        self._closed = True
        for client in self._clients:
            client.close()
        if self.running():
            self.process.send_signal(signal.SIGTERM)  # stops its containers and containerd
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        cgroups = self.container_cgroups()
        _kill_and_wait(self._leftover_pids(cgroups), lambda pid: True)
        for path in cgroups:
            try:
                path.rmdir()
            except OSError:
                pass
        for mountpoint in self.mounts():
            _umount(mountpoint)
        shutil.rmtree(self.root, ignore_errors=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)

    def _make_bridge(self) -> None:
        """A bridge for this engine alone, on a subnet docker0 does not use."""
        if subprocess.run(["ip", "link", "show", self.bridge], capture_output=True,
                          check=False).returncode == 0:
            return
        for args in (["link", "add", self.bridge, "type", "bridge"],
                     ["addr", "add", self.subnet, "dev", self.bridge],
                     ["link", "set", self.bridge, "up"]):
            subprocess.run(["ip", *args], capture_output=True, check=True)

    # What is ours -------------------------------------------------------------------

    def mounts(self) -> list[str]:
        """Mount points at or under our root, deepest first."""
        root = str(self.root)
        out = []
        with open("/proc/self/mountinfo") as fh:
            for line in fh:
                point = _unescape(line.split()[4])
                if point == root or point.startswith(root + "/"):
                    out.append(point)
        return sorted(out, key=len, reverse=True)

    def processes(self) -> list[int]:
        """Live processes of ours: our binaries whose command line names our root."""
        return find(_OUR_BINARIES, str(self.root))

    def _is_ours(self, pid: int) -> bool:
        return _matches(_cmdline(pid), _OUR_BINARIES, str(self.root))

    def container_ids(self) -> set[str]:
        ids = set()
        for parent in (self.data_root / "containers", self.exec_root / "containerd"):
            if parent.is_dir():
                ids |= {p.name for p in parent.iterdir() if p.is_dir() and len(p.name) == 64}
        return ids

    def container_cgroups(self) -> list[Path]:
        """The cgroup directories (cgroupfs driver, v1 or v2) of our engine's containers."""
        base = Path("/sys/fs/cgroup")
        out = []
        for cid in self.container_ids():
            out += [p for p in (*base.glob(f"*/docker/{cid}"), base / "docker" / cid) if p.is_dir()]
        return out

    def _leftover_pids(self, cgroups: list[Path]) -> list[int]:
        """Our shims, their descendants and whatever runs in our containers' cgroups."""
        ours = set(self.processes())
        for path in cgroups:
            try:
                ours |= {int(x) for x in (path / "cgroup.procs").read_text().split()}
            except (OSError, ValueError):
                pass
        children: dict[int, list[int]] = {}
        for pid in _pids():
            ppid = _ppid(pid)
            if ppid is not None:
                children.setdefault(ppid, []).append(pid)
        todo, seen = list(ours), set()
        while todo:
            pid = todo.pop()
            if pid not in seen:
                seen.add(pid)
                todo += children.get(pid, [])
        seen.discard(os.getpid())
        return sorted(seen)

    def _containerd_pid(self) -> int | None:
        try:
            pid = int((self.exec_root / "containerd" / "containerd.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if self._is_ours(pid) else None

    def _answers(self) -> bool:
        if not self.sock.exists():
            return False
        try:
            api = docker.APIClient(base_url=self.host, version=API_VERSION, timeout=2)
            try:
                return api.ping() is True
            finally:
                api.close()
        except (DockerException, RequestException, OSError):
            return False

    def _log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:])


def find(binaries: Iterable[str] | None = None, containing: str | None = None) -> list[int]:
    """Pids of live processes whose binary's base name is one of `binaries` (any when None)
    and one of whose arguments contains `containing` (any when None)."""
    return [pid for pid in _pids() if _matches(_cmdline(pid), binaries, containing)]


def _matches(argv: list[str], binaries: Iterable[str] | None, containing: str | None) -> bool:
    return bool(argv) and (binaries is None or os.path.basename(argv[0]) in binaries) and (
        containing is None or any(containing in arg for arg in argv))


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _cmdline(pid: int) -> list[str]:
    """A process's argv ([] when it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2:].split()  # after "pid (comm) ": state, ppid, ...


def _ppid(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def _alive(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"  # a zombie has exited


def _kill_and_wait(pids: list[int], still_ours, timeout: float = STOP_TIMEOUT) -> None:
    """SIGKILL each pid (checked first, against pid reuse) and wait until all are gone."""
    pids = [pid for pid in pids if _alive(pid) and still_ours(pid)]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def _unescape(field: str) -> str:
    """Mount points in mountinfo escape space, tab, newline and backslash in octal."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def _umount(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(path.encode(), MNT_DETACH) != 0:
        subprocess.run(["umount", "-l", path], check=False, capture_output=True)


def missing() -> str | None:
    """Why a private engine cannot start here, or None."""
    if os.geteuid() != 0:
        return "a private dockerd needs root"
    for binary, package in ((DOCKERD, "dockerd (Debian: docker.io)"), ("containerd", "containerd"),
                            ("ip", "ip (iproute2), for the engine's bridge")):
        if shutil.which(binary) is None:
            return f"needs {package}"
    return None


def start(bridge: str = BRIDGE_PREFIX, subnet: str = "10.213.77.1/24") -> PrivateEngine:
    """A private engine, started; close() stops everything it started, by pid, undoes its
    mounts and removes its directories (done here already if it does not start). On disk
    (not a tmpfs: its data root holds whole images), and short: the socket paths under it
    must stay under 108 bytes."""
    root = Path(tempfile.mkdtemp(prefix=f"{bridge}-", dir="/var/tmp"))
    engine = PrivateEngine(root, bridge, subnet)
    try:
        engine.start()
    except BaseException:
        engine.close()
        raise
    return engine


@contextmanager
def running(bridge: str = BRIDGE_PREFIX, subnet: str = "10.213.77.1/24") -> Iterator[PrivateEngine]:
    """start(), then close() at the end of the block."""
    engine = start(bridge, subnet)
    try:
        yield engine
    finally:
        engine.close()
