"""The mesh connects for real (#21 phase 2): after `pulumi up`, ``tools.controlplane connect`` runs each
cluster's clustermesh-apiserver pod (etcd, clustermesh, kvstoremesh) on its loopback mesh address, and
the kvstoremeshes connect to each other. One stack, its own local mesh, scenarios in file order: each
starts from the state the one before left."""

from __future__ import annotations

import contextlib
import json
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from tests.e2e.conftest import CLUSTERS, Ca, LocalMesh, stack_config
from tests.e2e.harness import ROOT, Workspace, helm_releases
from tools import controlplane, localmesh

T = TypeVar("T")
CONNECT_TIMEOUT = 60.0
"""How long a kvstoremesh may take to connect to and sync a new peer (measured: 1-3 s)."""
PROPAGATION_TIMEOUT = 20.0
"""How long an object may take from cluster A's API server to B's kvstoremesh cache (measured: < 1 s)."""


def _free_vip_prefix() -> str:
    """``127.X.10``, a /24 of loopback nobody else on this host listens in (parallel runs pick others)."""
    for _ in range(50):
        prefix = f"127.{random.randint(100, 250)}.10"
        with contextlib.ExitStack() as stack:
            try:
                for i in range(1, len(CLUSTERS) + 1):
                    s = stack.enter_context(socket.socket())
                    s.bind((f"{prefix}.{i}", controlplane.API_PORT))
                    s2 = stack.enter_context(socket.socket())
                    s2.bind((f"{prefix}.{i}", 2379))
            except OSError:
                continue
            return prefix
    raise AssertionError("no free loopback /24 for the mesh addresses")


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    d = tmp_path_factory.mktemp("connect-mesh")
    localmesh.up(list(CLUSTERS), d)
    try:
        yield LocalMesh(d)
    finally:
        try:
            controlplane.down(d)
        finally:
            localmesh.down(d)


@pytest.fixture(scope="module")
def vips() -> str:
    return _free_vip_prefix()


def _config(mesh: LocalMesh, ca: Ca, vips: str, names: tuple[str, ...]) -> dict[str, Any]:
    config = stack_config(mesh, ca, names)
    for c in config["mesh:clusters"]:
        c["apiserver"]["vip"] = f"{vips}.{c['id']}"
    return config


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, mesh: LocalMesh, mesh_ca: Ca, vips: str) -> Workspace:
    w = Workspace(tmp_path_factory.mktemp("connect-ws"))
    w.init_stack(_config(mesh, mesh_ca, vips, CLUSTERS[:3]), secrets={"mesh:caPrivateKey": mesh_ca.key_pem})
    return w


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "tools.controlplane", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _status(mesh: LocalMesh) -> dict[str, Any]:
    status: dict[str, Any] = json.loads(_cli("mesh-status", "--dir", str(mesh.dir), "--json").stdout)
    return status


def _poll(what: str, probe: Callable[[], T | None], timeout: float) -> tuple[T, float]:
    """``probe()``'s first truthy result and the seconds it took, or fail after ``timeout`` naming ``what``."""
    started = time.monotonic()
    last: Any = None
    while True:
        with contextlib.suppress(OSError):
            last = probe()
            if last:
                return last, time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not after {timeout:.0f} s; last: {last!r}")
        time.sleep(0.25)


def _full_mesh(mesh: LocalMesh, names: tuple[str, ...]) -> Callable[[], dict[str, Any] | None]:
    def probe() -> dict[str, Any] | None:
        status = _status(mesh)
        if set(status) != set(names):
            return None
        for name in names:
            remotes = status[name]["remotes"]
            if set(remotes) != set(names) - {name}:
                return None
            if not all(r["connected"] and r["synced"] for r in remotes.values()):
                return None
        return status
    return probe


def _pids(mesh: LocalMesh, names: tuple[str, ...]) -> dict[str, dict[str, int]]:
    cp = controlplane.ControlPlane.load(mesh.dir)
    return {n: cp.clusters[n].pids() for n in names}


_TIMES: dict[str, float] = {}


def test_1_a_full_mesh_of_three_connects(ws: Workspace, mesh: LocalMesh) -> None:
    """Every kvstoremesh is connected to and synced with both peers, and `mesh-status` prints it."""
    ws.pulumi("up", "--yes", "--skip-preview")
    _cli("connect", "--dir", str(mesh.dir))
    status, took = _poll("a full mesh of 3", _full_mesh(mesh, CLUSTERS[:3]), CONNECT_TIMEOUT)
    _TIMES["connect"] = took
    for name in CLUSTERS[:3]:
        assert all(r["lastError"] is None for r in status[name]["remotes"].values()), status[name]
        assert all(p["running"] for p in status[name]["processes"].values()), status[name]
    text = _cli("mesh-status", "--dir", str(mesh.dir)).stdout
    assert text.count("connected, synced") == 6, text


def test_2_a_node_and_an_identity_of_a_reach_the_caches_of_b_and_c(mesh: LocalMesh) -> None:
    """A CiliumNode and a CiliumIdentity created in cls-a land under cilium/cache/ in cls-b's and cls-c's etcd."""
    from kubernetes import client, config

    api = client.CustomObjectsApi(config.new_client_from_config(str(mesh.kubeconfig), context="cls-a"))
    api.create_cluster_custom_object("cilium.io", "v2", "ciliumnodes", {
        "apiVersion": "cilium.io/v2", "kind": "CiliumNode", "metadata": {"name": "node-a1"},
        "spec": {"addresses": [{"type": "InternalIP", "ip": "10.0.1.11"}],
                 "ipam": {"podCIDRs": ["172.17.0.0/24"]}}})
    api.create_cluster_custom_object("cilium.io", "v2", "ciliumidentities", {
        "apiVersion": "cilium.io/v2", "kind": "CiliumIdentity", "metadata": {"name": "65600"},
        "security-labels": {"k8s:app": "web", "k8s:io.kubernetes.pod.namespace": "default"}})
    wanted = {"cilium/cache/nodes/v1/cls-a/node-a1", "cilium/cache/identities/v1/cls-a/id/65600"}
    for peer in ("cls-b", "cls-c"):
        keys, took = _poll(f"cls-a's node and identity in {peer}'s kvstoremesh cache",
                           lambda p=peer: wanted <= set(controlplane.etcd_get(mesh.dir, p, "cilium/cache/")) or None,
                           PROPAGATION_TIMEOUT)
        _TIMES[f"propagation-{peer}"] = took
    node = json.loads(controlplane.etcd_get(mesh.dir, "cls-b", "cilium/cache/nodes/v1/cls-a/node-a1")
                      ["cilium/cache/nodes/v1/cls-a/node-a1"])
    assert (node["Name"], node["Cluster"], node["ClusterID"]) == ("node-a1", "cls-a", 1), node


def test_3_a_fourth_cluster_connects_and_the_others_reload_without_restarting(
        ws: Workspace, mesh: LocalMesh, mesh_ca: Ca, vips: str) -> None:
    """`pulumi up` adds cls-d: it connects both ways, and the processes of cls-a..c keep their pids
    (kvstoremesh reloads its peer directory)."""
    before = _pids(mesh, CLUSTERS[:3])
    ws.set_config(_config(mesh, mesh_ca, vips, CLUSTERS))
    ws.pulumi("up", "--yes", "--skip-preview")
    _cli("connect", "--dir", str(mesh.dir))
    _, took = _poll("a full mesh of 4", _full_mesh(mesh, CLUSTERS), CONNECT_TIMEOUT)
    _TIMES["grow"] = took
    assert _pids(mesh, CLUSTERS[:3]) == before
    assert "cilium/cache/nodes/v1/cls-a/node-a1" in controlplane.etcd_get(mesh.dir, "cls-d", "cilium/cache/nodes/")


def test_4_a_removed_cluster_disconnects_everywhere(ws: Workspace, mesh: LocalMesh, mesh_ca: Ca, vips: str) -> None:
    """`pulumi up` removes cls-d: its pod stops, every other kvstoremesh drops it, and nothing else restarts."""
    before = _pids(mesh, CLUSTERS[:3])
    gone = _pids(mesh, ("cls-d",))["cls-d"]
    ws.set_config(_config(mesh, mesh_ca, vips, CLUSTERS[:3]))
    ws.pulumi("up", "--yes", "--skip-preview")
    assert helm_releases(mesh.kubeconfig, "cls-d") == []
    _cli("connect", "--dir", str(mesh.dir))
    _, took = _poll("cls-d dropped by every peer", _full_mesh(mesh, CLUSTERS[:3]), CONNECT_TIMEOUT)
    _TIMES["shrink"] = took
    assert _pids(mesh, CLUSTERS[:3]) == before
    assert not any(localmesh.alive(p) for p in gone.values()), gone
    print("measured:", _TIMES)
