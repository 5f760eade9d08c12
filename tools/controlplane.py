"""The clustermesh-apiserver pods of a local mesh, run for real: the mesh connects.

    python -m tools.localmesh connect --dir DIR            # after `pulumi up` created the releases
    python -m tools.localmesh mesh-status --dir DIR [--json]
    python -m tools.localmesh down --dir DIR               # the control plane, then the API servers

``DIR`` is a ``tools.localmesh`` directory, whose CLI runs these (this module's own is the ``kubelet`` it
starts). ``connect`` starts, per cluster whose API server holds a
deployed release ``cilium``, what the chart's clustermesh-apiserver pod runs, from the toolchain's
``clustermesh-apiserver-<chart version>``:

- its etcd (the toolchain's), initialised by ``etcdinit`` once, listening on the cluster's mesh
  address (the VIP the program requests for the Service, e.g. 127.0.10.N) with the TLS material of the
  ``clustermesh-apiserver-server-cert`` Secret;
- ``clustermesh`` against the cluster's API server (Cilium's CRDs registered first), writing with the
  ``clustermesh-apiserver-admin-cert`` certificate;
- ``kvstoremesh``, reading its peers from the ``cilium-kvstoremesh`` Secret and the
  ``clustermesh-apiserver-remote-cert`` Secret at ``/var/lib/cilium/clustermesh``, the paths the
  Secret's peer files name.

The Secrets reach the processes as files the way a kubelet's projected volumes do (a timestamped
directory, an atomic ``..data`` symlink swap, one symlink per key): a ``kubelet`` process of ours
polls the API servers every second and rewrites a volume when its Secrets change, so ``pulumi up``
adding or removing a peer reloads kvstoremesh (it watches the directory) and restarts nothing.
``connect`` is idempotent: it starts what is missing (a cluster added by ``pulumi up``), stops the
processes of a cluster whose release is gone, and leaves every other process alone.

Isolation, and why: every listener binds an explicit loopback address (etcd and the kvstoremesh API on
the mesh address) except the health ports of ``clustermesh`` and ``kvstoremesh``, which Cilium binds on
every address (no flag takes one): they get free ports. Each cilium process runs in a private mount
namespace (``unshare -m``) where ``/run`` and ``/var/lib`` are directories of ours, so the pod's paths
(``/var/lib/cilium/clustermesh``, ``/var/run/cilium/shell.sock``) are per cluster and nothing lands on
the host; ``etcdinit``, which starts ``/usr/bin/etcd``, sees a ``/usr/bin`` that holds the toolchain's
etcd. Needs root (we run as root) and util-linux ``unshare``. Everything lives in ``DIR/controlplane``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meshcore.chart.effects import NAMESPACE
from tools import ROOT, toolchain
from tools.localstate import Mesh, alive, exe_name, free_ports, spawn, stop, stop_all

STATE = "controlplane.json"
ETCD_NAME = "clustermesh-apiserver"
"""etcd's member name: ``etcdinit``'s default ``--etcd-cluster-name``, which ``etcd --name`` must match."""
START_TIMEOUT = 60.0
SYNC_PERIOD = 1.0
API_PORT = 9889
"""The kvstoremesh API's port (the chart's), on the mesh address."""

SERVER_CERT = "clustermesh-apiserver-server-cert"
ADMIN_CERT = "clustermesh-apiserver-admin-cert"
REMOTE_CERT = "clustermesh-apiserver-remote-cert"
KVSTOREMESH = "cilium-kvstoremesh"


# -- state ----------------------------------------------------------------------------------


@dataclass
class Member:
    name: str
    cluster_id: int
    version: str
    address: str
    port: int
    health_ports: list[int]
    etcd_pid: int = 0
    clustermesh_pid: int = 0
    kvstoremesh_pid: int = 0

    def pids(self) -> dict[str, int]:
        return {"etcd": self.etcd_pid, "clustermesh": self.clustermesh_pid, "kvstoremesh": self.kvstoremesh_pid}


@dataclass
class ControlPlane:
    dir: str
    kubelet_pid: int = 0
    clusters: dict[str, Member] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return Path(self.dir) / "controlplane"

    def save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / (STATE + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.root / STATE)

    @classmethod
    def load(cls, dir_: Path) -> ControlPlane:
        dir_ = dir_.resolve()
        try:
            data = json.loads((dir_ / "controlplane" / STATE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(str(dir_))
        data["clusters"] = {n: Member(**m) for n, m in data["clusters"].items()}
        return cls(**data)


# -- reading the API servers ----------------------------------------------------------------


def _core(kubeconfig: Path, context: str) -> Any:
    from kubernetes import client, config

    return client.CoreV1Api(config.new_client_from_config(str(kubeconfig), context=context))


def _decode(data: dict[str, str] | None) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (data or {}).items()}


@dataclass(frozen=True)
class Release:
    """What the deployed release left in one API server that the pod needs."""

    name: str
    cluster_id: int
    version: str
    address: str
    port: int
    secrets: dict[str, dict[str, bytes]]


def _secrets(api: Any) -> dict[str, dict[str, bytes]]:
    return {s.metadata.name: _decode(s.data) for s in api.list_namespaced_secret(NAMESPACE).items}


def _deployed_version(secrets: dict[str, dict[str, bytes]]) -> str | None:
    best: tuple[int, str] | None = None
    for name, data in secrets.items():
        if not name.startswith("sh.helm.release.v1.cilium.v") or "release" not in data:
            continue
        raw = base64.b64decode(data["release"])
        rel = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
        if rel["info"]["status"] == "deployed" and (best is None or rel["version"] > best[0]):
            best = (rel["version"], rel["chart"]["metadata"]["version"])
    return best[1] if best else None


def read_release(kubeconfig: Path, context: str) -> Release | None:
    """The cluster's release, or None when no release ``cilium`` is deployed there."""
    from kubernetes.client.exceptions import ApiException

    api = _core(kubeconfig, context)
    secrets = _secrets(api)
    version = _deployed_version(secrets)
    if version is None:
        return None
    try:
        cfg = api.read_namespaced_config_map("cilium-config", NAMESPACE).data or {}
        svc = api.read_namespaced_service("clustermesh-apiserver", NAMESPACE)
    except ApiException as err:
        if err.status == 404:
            return None
        raise
    from meshcore.chart.values import EXTENSIVE_PARAMETERS_ANNOTATION

    ingress = (svc.status.load_balancer.ingress or []) if svc.status and svc.status.load_balancer else []
    params = (svc.metadata.annotations or {}).get(EXTENSIVE_PARAMETERS_ANNOTATION)
    address = ingress[0].ip if ingress else (json.loads(params).get("Vip") if params else None)
    if not address:
        raise SystemExit(f"error: {context}: the clustermesh-apiserver Service has no address (no VIP requested, "
                         f"no load balancer ingress)")
    if not address.startswith("127."):
        raise SystemExit(f"error: {context}: mesh address {address} is not on loopback (127.0.0.0/8); the local "
                         f"control plane keeps all traffic on loopback: give the stack a VIP like 127.0.10.N")
    return Release(cfg.get("cluster-name", context), int(cfg.get("cluster-id", "0")), version, address,
                   int(svc.spec.ports[0].port), secrets)


# -- the kubelet's projected volumes --------------------------------------------------------


def project(volume: Path, files: dict[str, bytes]) -> bool:
    """Write ``files`` into ``volume`` as kubelet's AtomicWriter does; False when nothing changed."""
    volume.mkdir(parents=True, exist_ok=True)
    data = volume / "..data"
    if data.is_dir():
        current = {p.name: p.read_bytes() for p in data.iterdir() if p.is_file()}
        if current == files:
            return False
    stamp = volume / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.monotonic_ns()}"
    stamp.mkdir()
    for name, content in files.items():
        (stamp / name).write_bytes(content)
        (stamp / name).chmod(0o600)
    old = os.readlink(data) if data.is_symlink() else None
    tmp = volume / "..data_tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(stamp.name)
    tmp.replace(data)
    for name in files:
        link = volume / name
        if not link.is_symlink():
            link.symlink_to(f"..data/{name}")
    for link in volume.iterdir():
        if not link.name.startswith("..") and link.name not in files:
            link.unlink()
    if old:
        shutil.rmtree(volume / old, ignore_errors=True)
    return True


def _tls(secret: dict[str, bytes]) -> dict[str, bytes]:
    return {k: secret[k] for k in ("ca.crt", "tls.crt", "tls.key") if k in secret}


def volumes(cp: ControlPlane, name: str, secrets: dict[str, dict[str, bytes]]) -> list[str]:
    """Project the pod's Secret volumes of cluster ``name``; the names of the volumes that changed.
    A Secret that is gone leaves its volume as it was (the pod would not start without it)."""
    root = cp.root / name
    changed = []
    wanted: dict[Path, dict[str, bytes] | None] = {
        root / "etcd-secrets": _tls(secrets[SERVER_CERT]) if SERVER_CERT in secrets else None,
        root / "varlib" / "cilium" / "etcd-secrets": _tls(secrets[ADMIN_CERT]) if ADMIN_CERT in secrets else None,
    }
    if REMOTE_CERT in secrets:
        remote = secrets[REMOTE_CERT]
        # The chart's kvstoremesh volume: the peers' configs and the remote client certificate. The chart mounts
        # cilium-kvstoremesh with `optional: true` (../shared/docs/cilium-mesh.md §2): without it (a release whose
        # values list no peer) the volume holds the certificate alone, and kvstoremesh runs with no peer until the
        # Secret appears (a peer list added later reloads it, no restart).
        wanted[root / "varlib" / "cilium" / "clustermesh"] = {
            **secrets.get(KVSTOREMESH, {}), "common-etcd-client.crt": remote.get("tls.crt", b""),
            "common-etcd-client.key": remote.get("tls.key", b""),
            "common-etcd-client-ca.crt": remote.get("ca.crt", b"")}
    for volume, files in wanted.items():
        if files is not None and project(volume, files):
            changed.append(volume.name)
    return changed


def kubelet(dir_: Path) -> None:
    """Keep every running cluster's volumes in step with its Secrets (the ``kubelet`` subcommand)."""
    kubeconfig = dir_.resolve() / "kubeconfig"
    stop = False

    def on_term(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    while not stop:
        cp = ControlPlane.load(dir_)
        for name in list(cp.clusters):
            try:
                changed = volumes(cp, name, _secrets(_core(kubeconfig, name)))
            except Exception as err:  # an API server down for a while: try again next period
                print(f"{time.strftime('%H:%M:%S')} {name}: {err}", flush=True)
                continue
            if changed:
                print(f"{time.strftime('%H:%M:%S')} {name}: updated {', '.join(changed)}", flush=True)
        time.sleep(SYNC_PERIOD)


# -- processes ------------------------------------------------------------------------------


def _spawn(args: list[str], log: Path) -> int:
    return spawn(args, log, cwd=ROOT)


def _in_pod(root: Path, argv: list[str]) -> list[str]:
    """``argv`` in a private mount namespace whose ``/run`` and ``/var/lib`` are the pod's (under ``root``).
    ``unshare`` and the shell exec, so the pid is the cilium process's."""
    (root / "run").mkdir(parents=True, exist_ok=True)
    (root / "varlib").mkdir(parents=True, exist_ok=True)
    script = 'mount --bind "$0/run" /run && mount --bind "$0/varlib" /var/lib && exec "$@"'
    return ["unshare", "-m", "--propagation", "private", "/bin/sh", "-c", script, str(root), *argv]


def _wait_port(host: str, port: int, pid: int, log: Path, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if not alive(pid):
            raise SystemExit(f"error: exited before listening on {host}:{port}; see {log}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"error: nothing listens on {host}:{port} after {timeout:.0f} s; see {log}")
        time.sleep(0.1)


def _etcdinit(bin_dir: Path, m: Member, root: Path) -> None:
    """The data directory as ``etcdinit`` makes it (users root, admin-<c>, local-<c>, remote; auth on).
    It starts ``/usr/bin/etcd``: a private mount namespace shows it a ``/usr/bin`` holding ours."""
    usrbin = root / "usrbin"
    usrbin.mkdir(parents=True, exist_ok=True)
    if not (usrbin / "etcd").exists():
        shutil.copy2(bin_dir / "etcd", usrbin / "etcd")
    data = root / "etcd-data"
    data.mkdir(mode=0o700, exist_ok=True)  # etcdinit empties it, and fails when it is missing
    script = 'mount --bind "$0" /usr/bin && exec "$@"'
    log = root / "logs" / "etcdinit.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.run(
            ["unshare", "-m", "--propagation", "private", "/bin/sh", "-c", script, str(usrbin),
             str(bin_dir / f"clustermesh-apiserver-{m.version}"), "etcdinit", "--cluster-name", m.name,
             "--etcd-data-dir", str(data), "--etcd-cluster-name", ETCD_NAME, "--timeout", "60s"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=120, check=False)
    if proc.returncode != 0:
        shutil.rmtree(data, ignore_errors=True)
        raise SystemExit(f"error: {m.name}: etcdinit exited {proc.returncode}; see {log}")


def _start_etcd(bin_dir: Path, m: Member, root: Path) -> None:
    certs = root / "etcd-secrets"
    client = f"https://{m.address}:{m.port}"
    log = root / "logs" / "etcd.log"
    m.etcd_pid = _spawn([
        str(bin_dir / "etcd"), "--name", ETCD_NAME, "--data-dir", str(root / "etcd-data"),
        "--listen-client-urls", client, "--advertise-client-urls", client,
        "--listen-peer-urls", f"http://{m.address}:{m.port + 1}",
        "--initial-cluster-token", ETCD_NAME, "--auto-compaction-retention", "1",
        "--client-cert-auth", "--trusted-ca-file", str(certs / "ca.crt"),
        "--cert-file", str(certs / "tls.crt"), "--key-file", str(certs / "tls.key"), "--log-level", "warn",
    ], log)
    _wait_port(m.address, m.port, m.etcd_pid, log)


def _etcd_config(m: Member, root: Path) -> None:
    """The chart's ``/var/lib/cilium/etcd-config.yaml``, on the mesh address (127.0.0.1:2379 is every pod's)."""
    doc = {"endpoints": [f"https://{m.address}:{m.port}"],
           "trusted-ca-file": "/var/lib/cilium/etcd-secrets/ca.crt",
           "cert-file": "/var/lib/cilium/etcd-secrets/tls.crt",
           "key-file": "/var/lib/cilium/etcd-secrets/tls.key"}
    (root / "varlib" / "cilium" / "etcd-config.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")


def _kubeconfig(dir_: Path, name: str, root: Path) -> Path:
    """A kubeconfig whose current context is the cluster's (``--k8s-kubeconfig-path`` takes no context)."""
    doc = yaml.safe_load((dir_ / "kubeconfig").read_text(encoding="utf-8"))
    doc["current-context"] = name
    path = root / "varlib" / "cilium" / "kubeconfig"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    path.chmod(0o600)
    return path


def _common(m: Member) -> list[str]:
    return ["--cluster-name", m.name, "--cluster-id", str(m.cluster_id),
            "--kvstore-opt", "etcd.config=/var/lib/cilium/etcd-config.yaml", "--enable-gops=false"]


def _start_cilium(bin_dir: Path, m: Member, root: Path) -> None:
    binary = str(bin_dir / f"clustermesh-apiserver-{m.version}")
    if not alive(m.clustermesh_pid):
        m.clustermesh_pid = _spawn(_in_pod(root, [
            binary, "clustermesh", *_common(m), "--k8s-kubeconfig-path", "/var/lib/cilium/kubeconfig",
            "--health-port", str(m.health_ports[0])]), root / "logs" / "clustermesh.log")
    if not alive(m.kvstoremesh_pid):
        m.kvstoremesh_pid = _spawn(_in_pod(root, [
            binary, "kvstoremesh", *_common(m), "--clustermesh-config", "/var/lib/cilium/clustermesh",
            "--health-port", str(m.health_ports[1]), "--api-serve-addr", f"{m.address}:{API_PORT}"]),
            root / "logs" / "kvstoremesh.log")


def _register_crds(bin_dir: Path, dir_: Path, wanted: dict[str, str], root: Path) -> None:
    """Cilium's CRDs of each cluster's version, all clusters at once (about 20 s the first time)."""
    procs = {}
    for name, version in wanted.items():
        log = root / name / "logs" / "crds.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            procs[name] = (subprocess.Popen([str(bin_dir / f"cilium-crds-{version}"), "--kubeconfig",
                                             str(dir_ / "kubeconfig"), "--context", name],
                                            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL), log)
    for name, (proc, log) in procs.items():
        if proc.wait(timeout=300) != 0:
            raise SystemExit(f"error: {name}: registering Cilium's CRDs failed; see {log}")
        (root / name / f"crds-{wanted[name]}").touch()


def stop_member(m: Member) -> None:
    """Stop the pod's processes (etcd's data stays)."""
    stop_members([m])


def stop_members(members: list[Member]) -> None:
    """Stop the pods' processes together: the cilium ones first, then the etcds (an etcd stops at once when no
    client holds a stream open; one by one, each waited seconds for its peers' kvstoremesh)."""
    stop_all([(p, f"clustermesh-apiserver-{m.version}") for m in members for p in (m.kvstoremesh_pid,
                                                                                    m.clustermesh_pid)])
    stop_all([(m.etcd_pid, "etcd") for m in members])


def connect(dir_: Path) -> ControlPlane:
    """Start the pods of the clusters with a release; stop those whose release is gone."""
    dir_ = dir_.resolve()
    mesh = Mesh.load(dir_)
    bin_dir = toolchain.require() / "bin"
    cp = ControlPlane.load(dir_)
    kubeconfig = dir_ / "kubeconfig"
    releases = {m.name: read_release(kubeconfig, m.name) for m in mesh.clusters}
    for name, rel in releases.items():
        if rel is None and name in cp.clusters:
            stop_member(cp.clusters.pop(name))
            cp.save()
    live = {n: r for n, r in releases.items() if r is not None}
    crds = {n: r.version for n, r in live.items() if not (cp.root / n / f"crds-{r.version}").exists()}
    if crds:
        _register_crds(bin_dir, dir_, crds, cp.root)
    for name, rel in live.items():
        root = cp.root / name
        m = cp.clusters.get(name)
        if m is not None and m.version != rel.version:
            # An upgrade replaces the pod: a new binary, the same etcd data.
            stop_member(m)
            m.version, m.clustermesh_pid, m.kvstoremesh_pid = rel.version, 0, 0
        if m is None:
            m = Member(name, rel.cluster_id, rel.version, rel.address, rel.port, free_ports(2))
            cp.clusters[name] = m
        volumes(cp, name, rel.secrets)
        _etcd_config(m, root)
        _kubeconfig(dir_, name, root)
        if not alive(m.etcd_pid):
            if not (root / "etcd-data" / "member").is_dir():
                _etcdinit(bin_dir, m, root)
            _start_etcd(bin_dir, m, root)
        _start_cilium(bin_dir, m, root)
        cp.save()
    if not alive(cp.kubelet_pid):
        cp.kubelet_pid = _spawn([sys.executable, "-m", "tools.controlplane", "kubelet", "--dir", str(dir_)],
                                cp.root / "kubelet.log")
        cp.save()
    return cp


def down(dir_: Path) -> None:
    cp = ControlPlane.load(dir_)
    kubelet = exe_name(cp.kubelet_pid)
    if "python" in kubelet:
        stop(cp.kubelet_pid, kubelet)
    stop_members(list(cp.clusters.values()))
    with contextlib.suppress(FileNotFoundError):
        (cp.root / STATE).unlink()


# -- status ---------------------------------------------------------------------------------


def remote_clusters(m: Member, timeout: float = 3.0) -> list[dict[str, Any]]:
    """The kvstoremesh API's ``GET /v1/cluster`` (what ``kvstoremesh-dbg status`` prints)."""
    url = f"http://{m.address}:{API_PORT}/v1/cluster"
    with urllib.request.urlopen(url, timeout=timeout) as r:
        out: list[dict[str, Any]] = json.loads(r.read())
    return out


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


FAILED = "\u274c"
"""The mark ``troubleshoot`` puts before a failed check."""
TROUBLESHOOT_TIMEOUT = "3s"
"""``kvstoremesh-dbg troubleshoot``'s timeout per etcd (its default is 5 s)."""


LOCAL = ""
"""``troubleshoot_reasons``' key for the pod's own etcd."""


def troubleshoot(cp: ControlPlane, name: str, remotes: list[str], local: bool) -> subprocess.Popen[str]:
    """``kvstoremesh-dbg troubleshoot <remotes>`` in cluster ``name``'s pod (what ``kubectl exec`` into the
    kvstoremesh container runs): it reads the pod's peer files, and dials and handshakes each peer's etcd;
    ``local``: the pod's own etcd first, as kvstoremesh reaches it (``--include-local``)."""
    m = cp.clusters[name]
    return subprocess.Popen(
        _in_pod(cp.root / name, [str(toolchain.require() / "bin" / f"clustermesh-apiserver-{m.version}"),
                                 "kvstoremesh-dbg", "troubleshoot", "--clustermesh-config",
                                 "/var/lib/cilium/clustermesh/", "--etcd-config", "/var/lib/cilium/etcd-config.yaml",
                                 "--timeout", TROUBLESHOOT_TIMEOUT, *(["--include-local"] if local else []),
                                 *remotes]),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)


def troubleshoot_reasons(output: str) -> dict[str, str]:
    """Per remote cluster of a ``troubleshoot`` output (``LOCAL``: the pod's own etcd), its first failed check
    (a line marked ❌, the mark dropped): why it does not connect, as Cilium's own tool says it."""
    out: dict[str, str] = {}
    cluster = None
    for line in output.splitlines():
        if line.startswith("Local etcd kvstore:"):
            cluster = LOCAL
        elif line.startswith('Cluster "') and line.rstrip().endswith('":'):
            cluster = line.strip()[len('Cluster "'):-2]
        elif cluster is not None and cluster not in out and FAILED in line:
            out[cluster] = line.split(FAILED, 1)[1].strip()
    return out


def mesh_status(dir_: Path) -> dict[str, Any]:
    """Per cluster: its processes, and each remote cluster its kvstoremesh knows (connected, synced, last error);
    for a remote that is not connected and ready, ``reason``: the first check ``kvstoremesh-dbg troubleshoot``
    fails (kvstoremesh's own status only says it is still waiting for the connection)."""
    cp = ControlPlane.load(dir_)
    out: dict[str, Any] = {}
    for name, m in sorted(cp.clusters.items()):
        entry: dict[str, Any] = {"address": f"{m.address}:{m.port}", "version": m.version,
                                 "processes": {k: {"pid": p, "running": alive(p)} for k, p in m.pids().items()},
                                 "remotes": {}, "error": None, "reason": None}
        try:
            remotes = remote_clusters(m)
        except (OSError, urllib.error.URLError, ValueError) as err:
            entry["error"] = f"kvstoremesh API {m.address}:{API_PORT}: {err}"
            remotes = []
        for r in remotes:
            synced = r.get("synced") or {}
            entry["remotes"][r["name"]] = {
                "connected": bool(r.get("connected")),
                "ready": bool(r.get("ready")),
                "synced": bool(synced) and all(bool(v) for k, v in synced.items() if k != "service-exports"),
                "status": r.get("status", ""),
                "failures": r.get("num-failures", 0),
                "lastError": _last_error(r),
                "reason": None,
            }
        out[name] = entry
    checks = {}
    for name, entry in out.items():
        failing = sorted(r for r, s in entry["remotes"].items() if not (s["connected"] and s["ready"]))
        # Its API down while it runs: kvstoremesh serves it once it reached its own etcd.
        local = entry["error"] is not None
        if (failing or local) and alive(cp.clusters[name].kvstoremesh_pid):
            checks[name] = troubleshoot(cp, name, failing, local)
    for name, proc in checks.items():
        try:
            text, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            text, _ = proc.communicate()
        for remote, reason in troubleshoot_reasons(text).items():
            if remote == LOCAL:
                out[name]["reason"] = f"its own etcd: {reason}"
            elif remote in out[name]["remotes"]:
                out[name]["remotes"][remote]["reason"] = reason
    return out


def _last_error(remote: dict[str, Any]) -> str | None:
    if remote.get("connected") and remote.get("ready"):
        return None
    return remote.get("status") or None


def status_lines(status: dict[str, Any]) -> list[str]:
    """``mesh_status`` as text: a line per cluster, one per remote cluster it knows."""
    lines = []
    for name, entry in status.items():
        error = (f": {entry['error']}" if entry["error"] else "") + \
            (f"; troubleshoot: {entry['reason']}" if entry["reason"] else "")
        lines.append(f"{name} ({entry['address']}, {entry['version']}){error}")
        for remote, r in sorted(entry["remotes"].items()):
            state = ("connected" if r["connected"] else "disconnected") + \
                (", synced" if r["synced"] else ", not synced")
            lines.append(f"  {remote:16} {state}" + (f"; last error: {r['lastError']}" if r["lastError"] else "")
                         + (f"; troubleshoot: {r['reason']}" if r["reason"] else ""))
    return lines


def main(argv: list[str] | None = None) -> int:
    """``kubelet --dir DIR``: the poller ``connect`` starts (the commands are ``tools.localmesh``'s)."""
    parser = argparse.ArgumentParser(prog="python -m tools.controlplane", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("kubelet", help="keep the pods' Secret volumes in step (started by connect)").add_argument(
        "--dir", required=True, type=Path)
    args = parser.parse_args(argv)
    kubelet(args.dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
