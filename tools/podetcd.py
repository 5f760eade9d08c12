"""The etcd of a local mesh's clustermesh-apiserver pod: its data directory as ``etcdinit`` makes it, the toolchain's
etcd serving on the mesh address with the TLS files of the ``clustermesh-apiserver-server-cert`` Secret, the chart's
``etcd-config.yaml`` its cilium processes read; ``etcd_get``, a read of its keys as ``clustermesh`` reads, and
``etcd_users``, its users."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path

import yaml

from tools.cpstate import ETCD_NAME, START_TIMEOUT, ControlPlane, Member, launch
from tools.localstate import alive


def wait_port(host: str, port: int, pid: int, log: Path, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if not alive(pid):
            raise SystemExit(f"error: exited before listening on {host}:{port}; see {log}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"error: nothing listens on {host}:{port} after {timeout:.0f} s; see {log}")
        time.sleep(0.1)


def etcdinit(bin_dir: Path, m: Member, root: Path) -> None:
    """The data directory as ``etcdinit`` makes it (users root, admin-<c>, local-<c>, remote; auth on).
    It starts ``/usr/bin/etcd``: a private mount namespace shows it a ``/usr/bin`` holding ours. That etcd
    listens on ``localhost:2379``, which another cluster's etcdinit, or any etcd of the host, may hold at the
    same moment: a private network namespace gives it a loopback of its own."""
    usrbin = root / "usrbin"
    usrbin.mkdir(parents=True, exist_ok=True)
    if not (usrbin / "etcd").exists():
        shutil.copy2(bin_dir / "etcd", usrbin / "etcd")
    data = root / "etcd-data"
    data.mkdir(mode=0o700, exist_ok=True)  # etcdinit empties it, and fails when it is missing
    script = 'ip link set lo up && mount --bind "$0" /usr/bin && exec "$@"'
    log = root / "logs" / "etcdinit.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.run(
            ["unshare", "-m", "-n", "--propagation", "private", "/bin/sh", "-c", script, str(usrbin),
             str(bin_dir / m.binary), "etcdinit", "--cluster-name", m.name,
             "--etcd-data-dir", str(data), "--etcd-cluster-name", ETCD_NAME, "--timeout", "60s"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=120, check=False)
    if proc.returncode != 0:
        shutil.rmtree(data, ignore_errors=True)
        raise SystemExit(f"error: {m.name}: etcdinit exited {proc.returncode}; see {log}")


def start_etcd(bin_dir: Path, m: Member, root: Path) -> None:
    certs = root / "etcd-secrets"
    client = f"https://{m.address}:{m.port}"
    log = root / "logs" / "etcd.log"
    m.etcd_pid = launch([
        str(bin_dir / "etcd"), "--name", ETCD_NAME, "--data-dir", str(root / "etcd-data"),
        "--listen-client-urls", client, "--advertise-client-urls", client,
        "--listen-peer-urls", f"http://{m.address}:{m.port + 1}",
        "--initial-cluster-token", ETCD_NAME, "--auto-compaction-retention", "1",
        "--client-cert-auth", "--trusted-ca-file", str(certs / "ca.crt"),
        "--cert-file", str(certs / "tls.crt"), "--key-file", str(certs / "tls.key"), "--log-level", "warn",
    ], log)
    wait_port(m.address, m.port, m.etcd_pid, log)


def etcd_config(m: Member, root: Path) -> None:
    """The chart's ``/var/lib/cilium/etcd-config.yaml``, on the mesh address (127.0.0.1:2379 is every pod's)."""
    doc = {"endpoints": [f"https://{m.address}:{m.port}"],
           "trusted-ca-file": "/var/lib/cilium/etcd-secrets/ca.crt",
           "cert-file": "/var/lib/cilium/etcd-secrets/tls.crt",
           "key-file": "/var/lib/cilium/etcd-secrets/tls.key"}
    (root / "varlib" / "cilium" / "etcd-config.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _fields(buf: bytes) -> list[tuple[int, bytes | int]]:
    """The (field number, value) pairs of a protobuf message (varints and length-delimited only)."""
    out: list[tuple[int, bytes | int]] = []
    i = 0
    while i < len(buf):
        tag, i = _read_varint(buf, i)
        num, wire = tag >> 3, tag & 7
        if wire == 0:
            v, i = _read_varint(buf, i)
            out.append((num, v))
        elif wire == 2:
            n, i = _read_varint(buf, i)
            out.append((num, buf[i:i + n]))
            i += n
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")
    return out


def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def etcd_get(dir_: Path, cluster: str, prefix: str, timeout: float = 5.0) -> dict[str, bytes]:
    """The keys under ``prefix`` in the etcd of ``cluster``'s pod, read as its ``clustermesh`` reads
    (the admin certificate, role root) over etcd's gRPC ``KV.Range``: etcd's JSON gateway ignores client
    certificate users, and etcdctl is not in the toolchain. The messages are encoded by hand (two fields)."""
    import grpc  # type: ignore[import-untyped]  # grpcio ships no stubs; used here through two calls

    cp = ControlPlane.load(dir_)
    m = cp.clusters[cluster]
    certs = cp.root / cluster / "varlib" / "cilium" / "etcd-secrets"
    creds = grpc.ssl_channel_credentials((certs / "ca.crt").read_bytes(), (certs / "tls.key").read_bytes(),
                                         (certs / "tls.crt").read_bytes())
    key = prefix.encode()
    end = key[:-1] + bytes([key[-1] + 1])
    request = b"\x0a" + _varint(len(key)) + key + b"\x12" + _varint(len(end)) + end
    with grpc.secure_channel(f"{m.address}:{m.port}", creds) as channel:
        call = channel.unary_unary("/etcdserverpb.KV/Range", request_serializer=None, response_deserializer=None)
        response = call(request, timeout=timeout)
    out = {}
    for num, kv in _fields(response):
        if num == 2 and isinstance(kv, bytes):
            parts = dict(_fields(kv))
            out[bytes(parts[1]).decode()] = bytes(parts.get(5, b""))
    return out


def etcd_users(dir_: Path, cluster: str, timeout: float = 5.0) -> list[str]:
    """The etcd users of ``cluster``'s pod (``etcdinit``'s and those ``clustermesh`` manages), over etcd's gRPC
    ``Auth.UserList`` as the admin certificate (role root) reads them (an empty request; the names are field 2)."""
    import grpc

    cp = ControlPlane.load(dir_)
    m = cp.clusters[cluster]
    certs = cp.root / cluster / "varlib" / "cilium" / "etcd-secrets"
    creds = grpc.ssl_channel_credentials((certs / "ca.crt").read_bytes(), (certs / "tls.key").read_bytes(),
                                         (certs / "tls.crt").read_bytes())
    with grpc.secure_channel(f"{m.address}:{m.port}", creds) as channel:
        call = channel.unary_unary("/etcdserverpb.Auth/UserList", request_serializer=None, response_deserializer=None)
        response = call(b"", timeout=timeout)
    return sorted(bytes(v).decode() for num, v in _fields(response) if num == 2 and isinstance(v, bytes))
