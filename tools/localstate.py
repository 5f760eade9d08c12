"""What a local mesh directory records, and the processes it runs: the state file of its API servers
(``DIR/localmesh.json``) and the helpers that start and stop processes, shared by ``tools.localmesh`` (the API
servers, and the CLI) and its modules, and ``tools.controlplane`` (each cluster's clustermesh-apiserver pod) and
its modules (``tools.cpstate`` and those above it). All import this module, which imports none of them;
``tools.localmesh`` imports ``tools.controlplane``, never the other way round."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATE = "localmesh.json"


def free_ports(n: int) -> list[int]:
    """``n`` distinct free loopback ports (all held open until all are chosen)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class Member:
    name: str
    port: int
    pid: int = 0


@dataclass
class Mesh:
    dir: str
    etcd_port: int
    etcd_peer_port: int
    etcd_pid: int = 0
    clusters: list[Member] = field(default_factory=list)
    allow_privileged: bool = True
    """``--allow-privileged=true`` on every API server, as on every real cluster (``False``: only to show what an
    API server without it refuses)."""

    @property
    def path(self) -> Path:
        return Path(self.dir)

    def save(self) -> None:
        (self.path / STATE).write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, dir_: Path) -> Mesh:
        try:
            data = json.loads((dir_ / STATE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SystemExit(f"error: no local mesh in {dir_} (no {STATE}); start one with `up`") from None
        data["clusters"] = [Member(**m) for m in data["clusters"]]
        return cls(**data)

    def member(self, name: str) -> Member:
        for m in self.clusters:
            if m.name == name:
                return m
        raise SystemExit(f"error: {name} is not a cluster of the local mesh in {self.dir}: "
                         f"{', '.join(m.name for m in self.clusters)}")


def exe_name(pid: int) -> str:
    """The name of the binary ``pid`` runs ("" when it runs none any more)."""
    try:
        return Path(os.readlink(f"/proc/{pid}/exe")).name
    except OSError:
        return ""


def ours(pid: int, binary: str) -> bool:
    """True when ``pid`` runs this toolchain's ``binary`` (etcd or kube-apiserver): a pid from an
    old state file may belong to anything by now, and is never signalled then."""
    return exe_name(pid) == binary


def alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) is not running.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def spawn(args: list[str], log: Path, cwd: Path | None = None) -> int:
    """Start ``args`` in a session of its own, its output appended to ``log``; its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=cwd)
    return proc.pid


def stop(pid: int, binary: str, timeout: float = 20.0) -> None:
    """SIGTERM (then SIGKILL) ``pid`` if it still runs ``binary``: a stale pid is never signalled."""
    stop_all([(pid, binary)], timeout)


def stop_all(processes: list[tuple[int, str]], timeout: float = 20.0) -> None:
    """``stop`` each (pid, binary) at once: all are signalled, then waited for together."""
    ours_ = [pid for pid, binary in processes if alive(pid) and ours(pid, binary)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in ours_:
            if alive(pid):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while any(alive(pid) for pid in ours_) and time.monotonic() < deadline:
            time.sleep(0.05)
