"""A local mesh's control plane as ``DIR/controlplane/controlplane.json`` records it (``ControlPlane``, a ``Member``
per cluster's clustermesh-apiserver pod), the names and ports the pod takes from the chart, and how a pod's process
runs (``in_pod``: its own ``/run`` and ``/var/lib``; ``launch``). Shared by ``tools.controlplane``, ``tools.kubelet``,
``tools.podetcd`` and ``tools.meshstatus``; it imports none of them."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tools import ROOT
from tools.localstate import spawn

STATE = "controlplane.json"
ETCD_NAME = "clustermesh-apiserver"
"""etcd's member name: ``etcdinit``'s default ``--etcd-cluster-name``, which ``etcd --name`` must match."""
START_TIMEOUT = 60.0
API_PORT = 9889
"""The kvstoremesh API's port (the chart's), on the mesh address."""

SERVER_CERT = "clustermesh-apiserver-server-cert"
ADMIN_CERT = "clustermesh-apiserver-admin-cert"
REMOTE_CERT = "clustermesh-apiserver-remote-cert"
KVSTOREMESH = "cilium-kvstoremesh"
USERS = "clustermesh-remote-users"
"""The ConfigMap of the etcd users ``clustermesh`` manages (``--cluster-users-*``, authMode other than legacy)."""


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
    template: str = ""
    """The digest of the pod template the pod runs (``tools.kubelet.template_digest``; "": not known)."""
    build: str = ""
    """The version of the toolchain's clustermesh-apiserver the pod runs (``cilium_build``)."""

    @property
    def binary(self) -> str:
        """The pod's binary's name in the toolchain's bin directory (its process's name too)."""
        return f"clustermesh-apiserver-{self.build or self.version}"

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


def cilium_build(version: str) -> str:
    """The clustermesh-apiserver the toolchain built for chart ``version``: one per chart minor (``pins.toml``), so a
    chart of another patch of that minor (1.18.12, the patch the program upgrades a minor from) runs that minor's
    build (1.18.3): the binaries, not the chart, are per minor here."""
    from meshcore.chart import versions
    from tools import toolchain

    return toolchain.load_pins()[f"clustermesh-apiserver-{versions.minor_of(version)}"]["version"].removeprefix("v")


def launch(args: list[str], log: Path) -> int:
    """Start a process of the control plane in the background, from the project's root."""
    return spawn(args, log, cwd=ROOT)


def in_pod(root: Path, argv: list[str]) -> list[str]:
    """``argv`` in a private mount namespace whose ``/run`` and ``/var/lib`` are the pod's (under ``root``).
    ``unshare`` and the shell exec, so the pid is the cilium process's."""
    (root / "run").mkdir(parents=True, exist_ok=True)
    (root / "varlib").mkdir(parents=True, exist_ok=True)
    script = 'mount --bind "$0/run" /run && mount --bind "$0/varlib" /var/lib && exec "$@"'
    return ["unshare", "-m", "--propagation", "private", "/bin/sh", "-c", script, str(root), *argv]
