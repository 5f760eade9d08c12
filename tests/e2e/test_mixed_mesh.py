"""Scenario 7 of #21, for real: a mixed 1.18/1.19 mesh during an upgrade wave stays connected. A mesh of 3 on chart
1.18.12 (the patch the program upgrades a minor from; its pods run the toolchain's 1.18 build, 1.18.3) connects; then
the wave takes cls-a to 1.19.6 (its own ``cilium.version``), while cls-b and cls-c stay on 1.18. At 1.19 the program gives cls-a the ``cronJob`` TLS method
(certgen's Job issues its certificates: ``tools.certgen``) and ``authMode: migration`` (its clustermesh manages
the users ``remote-<peer>`` of ``clustermesh-remote-users``, while every peer still authenticates as ``remote``).
Then every pair is connected and synced both ways, and cls-b and cls-c were never restarted nor lost each other.
Its own local mesh and stack; the charts are versioned copies of the stand-in chart, as in
tests/e2e/test_upgrade_wave.py (which starts from 1.18.12 too: from 1.18.3 the wave would take one more update)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import CLUSTERS, Ca, LocalMesh
from tests.e2e.harness import Workspace, core_api, deployed, secret_data
from tests.e2e.test_connect import (
    CONNECT_TIMEOUT,
    PROPAGATION_TIMEOUT,
    _cli,
    _free_vip_prefix,
    _full_mesh,
    _pids,
    _poll,
    _status,
)
from tests.e2e.test_upgrade_wave import _chart
from tools import cpstate, localmesh, localstack, localstate, podetcd

NAMES = CLUSTERS[:3]
FROM, TO = "1.18.12", "1.19.6"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    d = tmp_path_factory.mktemp("mixed-mesh")
    localmesh.up(list(NAMES), d)
    try:
        yield LocalMesh(d)
    finally:
        if (d / localstate.STATE).exists():
            localmesh.down(d)


@pytest.fixture(scope="module")
def vips() -> str:
    return _free_vip_prefix()


@pytest.fixture(scope="module")
def charts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mixed-charts")


def _config(mesh: LocalMesh, ca: Ca, vips: str, charts: Path, a_version: str | None) -> dict[str, Any]:
    config = localstack.stack_config(mesh.kubeconfig, ca.cert_pem, NAMES, CLUSTERS, _chart(charts, FROM), FROM)
    config["mesh:policyDefaultLocalCluster"] = False  # required once a cluster runs 1.19 (the 1.18 behaviour)
    for c in config["mesh:clusters"]:
        c["apiserver"]["vip"] = f"{vips}.{c['id']}"
    if a_version is not None:
        config["mesh:clusters"][0]["cilium"] = {"version": a_version, "chart": str(_chart(charts, a_version))}
    return config


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, mesh: LocalMesh, mesh_ca: Ca, vips: str, charts: Path) -> Workspace:
    w = Workspace(tmp_path_factory.mktemp("mixed-ws"), stack="mixed")
    w.init_stack(_config(mesh, mesh_ca, vips, charts, None),
                 secrets={"mesh:caPrivateKey": mesh_ca.key_pem})
    return w


def _failures(mesh: LocalMesh, a: str, b: str) -> int:
    """How often ``a``'s kvstoremesh reconnected to ``b`` (its own count)."""
    return int(_status(mesh)[a]["remotes"][b]["failures"])


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def _cn(pem: str) -> str:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_pem_x509_certificate(pem.encode())
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_7_a_mixed_1_18_1_19_mesh_stays_connected_through_the_wave(
        ws: Workspace, mesh: LocalMesh, mesh_ca: Ca, vips: str, charts: Path) -> None:
    ws.pulumi("up", "--yes", "--skip-preview")
    _cli("connect", "--dir", str(mesh.dir))
    _poll(f"a full mesh of 3 on {FROM}", _full_mesh(mesh, NAMES), CONNECT_TIMEOUT)
    others = _pids(mesh, NAMES[1:])
    assert {m.build for m in cpstate.ControlPlane.load(mesh.dir).clusters.values()} == {"1.18.3"}

    ws.set_config(_config(mesh, mesh_ca, vips, charts, TO))
    ws.pulumi("up", "--yes", "--skip-preview")
    assert deployed(mesh.kubeconfig, "cls-a")["chart"]["metadata"]["version"] == TO  # type: ignore[index]
    _cli("connect", "--dir", str(mesh.dir))
    status, _ = _poll(f"every pair connected and synced with cls-a on {TO}", _full_mesh(mesh, NAMES), CONNECT_TIMEOUT)
    assert {n: status[n]["version"] for n in NAMES} == {"cls-a": TO, "cls-b": FROM, "cls-c": FROM}
    assert _pids(mesh, NAMES[1:]) == others, "cls-b and cls-c are not in the wave: nothing of theirs restarts"
    assert _failures(mesh, "cls-b", "cls-c") == 0 and _failures(mesh, "cls-c", "cls-b") == 0

    # cls-a on 1.19.6 (the toolchain's 1.19 build): its certificates are certgen's (the Job complete, nothing of Helm's), its remote one still
    # CN=remote (migration); its clustermesh manages the users of clustermesh-remote-users beside etcdinit's.
    a = deployed(mesh.kubeconfig, "cls-a")
    assert a is not None and a["config"]["clustermesh"]["apiserver"]["tls"]["authMode"] == "migration"
    from kubernetes import client, config

    batch = client.BatchV1Api(config.new_client_from_config(str(mesh.kubeconfig), context="cls-a"))
    jobs = [j for j in batch.list_namespaced_job("kube-system").items
            if j.metadata.name.startswith("clustermesh-apiserver-generate-certs-")]
    assert len(jobs) == 1 and [c.type for c in jobs[0].status.conditions if c.status == "True"] == [
        "SuccessCriteriaMet", "Complete"], jobs
    api = core_api(mesh.kubeconfig, "cls-a")
    for name in ("server", "admin", "remote", "local"):
        secret = api.read_namespaced_secret(f"clustermesh-apiserver-{name}-cert", "kube-system")
        assert secret.type == "kubernetes.io/tls", name
        assert "meta.helm.sh/release-name" not in (secret.metadata.annotations or {}), f"{name}: Helm's, not certgen's"
    remote = secret_data(mesh.kubeconfig, "cls-a", "clustermesh-apiserver-remote-cert")
    assert _cn(remote["tls.crt"]) == "remote" and remote["ca.crt"].strip() == mesh_ca.cert_pem.strip()
    m = cpstate.ControlPlane.load(mesh.dir).clusters["cls-a"]
    assert {"--cluster-users-enabled", "--cluster-users-config-path=/var/lib/cilium/etcd-config/users.yaml"} <= set(
        _cmdline(m.clustermesh_pid))
    users, _ = _poll("cls-a's clustermesh creates the users of clustermesh-remote-users",
                     lambda: (u := podetcd.etcd_users(mesh.dir, "cls-a")) and
                     {"remote-cls-b", "remote-cls-c"} <= set(u) and u, CONNECT_TIMEOUT)
    assert {"admin-cls-a", "local-cls-a", "remote", "root"} <= set(users), users
    for peer in NAMES[1:]:
        assert podetcd.etcd_users(mesh.dir, peer) == sorted(["admin-" + peer, "local-" + peer, "remote", "root"])

    # And data flows both ways between the 1.19 cluster and a 1.18 one.
    custom = {n: client.CustomObjectsApi(config.new_client_from_config(str(mesh.kubeconfig), context=n))
              for n in ("cls-a", "cls-b")}
    for src, dst, node in (("cls-a", "cls-b", "node-a9"), ("cls-b", "cls-a", "node-b9")):
        custom[src].create_cluster_custom_object("cilium.io", "v2", "ciliumnodes", {
            "apiVersion": "cilium.io/v2", "kind": "CiliumNode", "metadata": {"name": node},
            "spec": {"addresses": [{"type": "InternalIP", "ip": "10.0.9.9"}]}})
        key = f"cilium/cache/nodes/v1/{src}/{node}"
        _poll(f"{src}'s node in {dst}'s kvstoremesh cache",
              lambda d=dst, k=key: k in podetcd.etcd_get(mesh.dir, d, "cilium/cache/nodes/"), PROPAGATION_TIMEOUT)
