"""The mesh connects for real (#21 phase 2): after `pulumi up`, ``tools.localmesh connect`` runs each
cluster's clustermesh-apiserver pod (etcd, clustermesh, kvstoremesh) on its loopback mesh address, and
the kvstoremeshes connect to each other. One stack, its own local mesh, scenarios in file order: each
starts from the state the one before left."""

from __future__ import annotations

import base64
import contextlib
import gzip
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
from tests.e2e.harness import ROOT, Workspace, core_api, helm_releases, sampling
from tools import controlplane, cpstate, localmesh, localpki, localstate, meshstatus, podetcd
from tools.localstate import alive, stop

T = TypeVar("T")
CONNECT_TIMEOUT = 60.0
"""How long a kvstoremesh may take to connect to and sync a new peer (measured: 1-3 s)."""
NS = "kube-system"
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
                    s.bind((f"{prefix}.{i}", cpstate.API_PORT))
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
        if (d / localstate.STATE).exists():  # the last scenario ran `down` itself
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
    proc = subprocess.run([sys.executable, "-m", "tools.localmesh", *args], cwd=ROOT, capture_output=True,
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
    cp = cpstate.ControlPlane.load(mesh.dir)
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


def _connected_findings(ws: Workspace, mesh: LocalMesh) -> tuple[int, list[tuple[str, str, str]]]:
    """The doctor's exit code and its ``connected`` findings (cluster, severity, message), reading each cluster's
    kvstoremesh status from the local mesh's control plane."""
    proc = subprocess.run([sys.executable, "-m", "tools.doctor", str(ws.stack_file), "--local-mesh", str(mesh.dir),
                           "--json"], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.stderr == "", proc.stderr
    doc = json.loads(proc.stdout)
    return proc.returncode, [(f["cluster"], f["severity"], f["message"]) for f in doc["findings"]
                             if f["check"] == "connected"]


def test_1b_the_doctor_finds_every_connection_up(ws: Workspace, mesh: LocalMesh) -> None:
    """The doctor's connected check reads the same status: every planned peer of every cluster connected."""
    _, found = _connected_findings(ws, mesh)
    assert sorted(found) == sorted((n, "ok", f"{p}: connected and synced") for n in CLUSTERS[:3]
                                   for p in CLUSTERS[:3] if p != n)


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
                           lambda p=peer: wanted <= set(podetcd.etcd_get(mesh.dir, p, "cilium/cache/")) or None,
                           PROPAGATION_TIMEOUT)
        _TIMES[f"propagation-{peer}"] = took
    node = json.loads(podetcd.etcd_get(mesh.dir, "cls-b", "cilium/cache/nodes/v1/cls-a/node-a1")
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
    assert "cilium/cache/nodes/v1/cls-a/node-a1" in podetcd.etcd_get(mesh.dir, "cls-d", "cilium/cache/nodes/")


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
    assert not any(alive(p) for p in gone.values()), gone


def _reissue(pem: bytes, ca: Ca, drop_ips: tuple[str, ...] = ()) -> tuple[bytes, bytes]:
    """``pem``'s certificate (subject, SANs but ``drop_ips``, key usages) issued again by ``ca``, with a new key."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    old = x509.load_pem_x509_certificate(pem)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.encode())
    ca_key = serialization.load_pem_private_key(ca.key_pem.encode(), None)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.UTC)
    b = (x509.CertificateBuilder().subject_name(old.subject).issuer_name(ca_cert.subject).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=365)))
    dropped = {ipaddress.ip_address(ip) for ip in drop_ips}
    for ext in old.extensions:
        value = ext.value
        if isinstance(value, (x509.AuthorityKeyIdentifier, x509.SubjectKeyIdentifier)):
            continue
        if isinstance(value, x509.SubjectAlternativeName):
            value = x509.SubjectAlternativeName([n for n in value if not (isinstance(n, x509.IPAddress)
                                                                          and n.value in dropped)])
        b = b.add_extension(value, ext.critical)
    cert = b.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption()))


MESH_TLS = tuple(f"clustermesh-apiserver-{n}-cert" for n in ("server", "admin", "remote", "local"))


def _b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def _helm_record(release: dict[str, Any]) -> str:
    """A release as Helm's Secret storage holds it (the Secret's data: base64 of base64 of gzipped JSON)."""
    return _b64(_b64(gzip.compress(json.dumps(release).encode())))


def _hand_upgrade(mesh: LocalMesh, cluster: str, values: dict[str, Any], secrets: dict[str, dict[str, bytes]]) -> int:
    """What a hand ``helm upgrade cilium --reuse-values --set ...`` leaves in ``cluster``: the Secrets it renders
    (``secrets``: the keys that change) and a new revision of release cilium with ``values`` merged into its own,
    deployed, the one before superseded. The new revision's number."""
    from kubernetes import client

    from meshcore.chart.values import deep_merge

    api = core_api(mesh.kubeconfig, cluster)
    for name, data in secrets.items():
        api.patch_namespaced_secret(name, NS, {"data": {k: _b64(v) for k, v in data.items()}})
    last = helm_releases(mesh.kubeconfig, cluster)[-1]
    new = {**last, "version": last["version"] + 1, "config": deep_merge(last.get("config") or {}, values),
           "info": {**last["info"], "status": "deployed", "description": "Upgrade complete"}}
    api.patch_namespaced_secret(f"sh.helm.release.v1.cilium.v{last['version']}", NS, {
        "metadata": {"labels": {"status": "superseded"}},
        "data": {"release": _helm_record({**last, "info": {**last["info"], "status": "superseded"}})}})
    api.create_namespaced_secret(NS, client.V1Secret(
        metadata=client.V1ObjectMeta(name=f"sh.helm.release.v1.cilium.v{new['version']}", labels={
            "name": "cilium", "owner": "helm", "status": "deployed", "version": str(new["version"])}),
        type="helm.sh/release.v1", data={"release": _helm_record(new)}))
    return int(new["version"])


def _secret(mesh: LocalMesh, cluster: str, name: str) -> dict[str, bytes]:
    data = core_api(mesh.kubeconfig, cluster).read_namespaced_secret(name, NS).data or {}
    return {k: base64.b64decode(v) for k, v in data.items()}


def _restart(mesh: LocalMesh, clusters: str | tuple[str, ...], *processes: str) -> None:
    """The clustermesh-apiserver pod of each of ``clusters`` replaced (``kubectl rollout restart``), or only some
    of its containers restarted (``processes``: etcd, clustermesh, kvstoremesh): they stop, and ``connect``
    starts what is missing, with the Secrets' files as they are now."""
    cp = cpstate.ControlPlane.load(mesh.dir)
    members = [cp.clusters[c] for c in ((clusters,) if isinstance(clusters, str) else clusters)]
    if processes:
        for m in members:
            for p in processes:
                stop(m.pids()[p], "etcd" if p == "etcd" else m.binary)
    else:
        controlplane.stop_members(members)
    _cli("connect", "--dir", str(mesh.dir))


def _reason(mesh: LocalMesh, a: str, b: str, want: str) -> Callable[[], dict[str, Any] | None]:
    """``a`` reports ``b`` not connected, with a troubleshoot reason containing ``want``."""
    def probe() -> dict[str, Any] | None:
        status = _status(mesh)
        r = status[a]["remotes"].get(b)
        return status if r is not None and not r["connected"] and want in (r["reason"] or "") else None
    return probe


def _refused_both_ways(mesh: LocalMesh, cluster: str, want: str) -> Callable[[], dict[str, Any] | None]:
    """Every other cluster reports ``cluster`` not connected, and ``cluster`` every other, each with a
    troubleshoot reason containing ``want``."""
    def probe() -> dict[str, Any] | None:
        status = _status(mesh)
        others = [n for n in status if n != cluster]
        for a, b in [(n, cluster) for n in others] + [(cluster, n) for n in others]:
            r = status[a]["remotes"].get(b)
            if r is None or r["connected"] or want not in (r["reason"] or ""):
                return None
        return status
    return probe


REFUSED_TIMEOUT = 240.0
"""How long a peer may take to drop a cluster whose etcd restarted with a certificate it refuses. Left alone, its
etcd client reconnects by itself and fails TLS, and kvstoremesh gives the connection up when no heartbeat has come
for two heartbeat periods (``kvstore.HeartbeatWriteInterval``, 1 min; measured: 107 s); scenario 5 restarts the
peers' kvstoremesh instead, so that their connections are new (TLS verifies at the handshake, as scenario 6
shows)."""


def test_5_a_foreign_ca_in_one_cluster_fails_tls_both_ways(ws: Workspace, mesh: LocalMesh, mesh_ca: Ca, vips: str) -> None:
    """A hand `helm upgrade` gives cls-c another CA (cilium-ca and the clustermesh-apiserver certificates issued by
    it). Once its pod runs with them, its peers refuse its server certificate and it refuses theirs, and
    mesh-status says so. `pulumi up --refresh` puts the mesh CA back; the pod must restart to trust it again."""
    foreign = Ca(*localpki.new_mesh_ca())
    secrets = {"cilium-ca": {"ca.crt": foreign.cert_pem.encode(), "ca.key": foreign.key_pem.encode()}}
    for name in MESH_TLS:
        crt, key = _reissue(_secret(mesh, "cls-c", name)["tls.crt"], foreign)
        secrets[name] = {"ca.crt": foreign.cert_pem.encode(), "tls.crt": crt, "tls.key": key}
    values: dict[str, Any] = {"tls": {"ca": {"cert": _b64(foreign.cert_pem), "key": _b64(foreign.key_pem)}}}
    revision = _hand_upgrade(mesh, "cls-c", values, secrets)
    _restart(mesh, "cls-c")
    _restart(mesh, ("cls-a", "cls-b"), "kvstoremesh")  # new connections: refused at once, no heartbeat to wait for
    _, took = _poll("cls-c refused both ways",
                    _refused_both_ways(mesh, "cls-c", "x509: certificate signed by unknown authority"), REFUSED_TIMEOUT)
    _TIMES["foreign-ca-refused"] = took
    text = _cli("mesh-status", "--dir", str(mesh.dir)).stdout
    assert (f"  cls-c            disconnected, not synced; last error: Waiting for initial connection to be "
            f"established; troubleshoot: Cannot establish TLS connection to {vips}.3:2379: tls: failed to verify "
            "certificate: x509: certificate signed by unknown authority") in text, text
    code, found = _connected_findings(ws, mesh)
    assert code == 1
    assert all("x509: certificate signed by unknown authority" in m for c, sev, m in found
               if sev == "error" and (c == "cls-c" or m.startswith("cls-c:"))), found
    assert {(c, m.split(":")[0]) for c, sev, m in found if sev == "error"} == \
        {("cls-a", "cls-c"), ("cls-b", "cls-c"), ("cls-c", "cls-a"), ("cls-c", "cls-b")}, found

    # The stack's state still holds the values it gave: without a refresh nothing differs, nothing is done.
    ws.pulumi("up", "--yes", "--skip-preview")
    assert [r["version"] for r in helm_releases(mesh.kubeconfig, "cls-c")][-1] == revision
    ws.pulumi("up", "--yes", "--skip-preview", "--refresh")
    assert [r["version"] for r in helm_releases(mesh.kubeconfig, "cls-c")][-1] == revision + 1
    assert _secret(mesh, "cls-c", "cilium-ca")["ca.crt"].decode() == mesh_ca.cert_pem
    # The Secrets are the mesh's again, but cls-c's etcd still trusts only the CA it read at start.
    _poll("cls-c's etcd refuses the peers' client certificates", _reason(
        mesh, "cls-a", "cls-c", "TLS client authentication failed: remote error: tls: unknown certificate authority"),
        CONNECT_TIMEOUT)
    _restart(mesh, "cls-c")
    _, took = _poll("the mesh of 3 again", _full_mesh(mesh, CLUSTERS[:3]), REFUSED_TIMEOUT)
    _TIMES["foreign-ca-repaired"] = took


def test_6_a_mesh_address_missing_from_the_server_certificate(ws: Workspace, mesh: LocalMesh, mesh_ca: Ca,
                                                              vips: str) -> None:
    """A hand `helm upgrade` drops cls-c's VIP from its server certificate (extraIpAddresses emptied). A peer whose
    connection is new fails verification, and the message names the addresses the certificate is valid for; a
    peer connected before keeps its connection (TLS verifies a certificate once, at the handshake: this is why
    such a certificate can go unnoticed). `pulumi up --refresh` repairs it, nothing restarted."""
    vip = f"{vips}.3"
    crt, key = _reissue(_secret(mesh, "cls-c", "clustermesh-apiserver-server-cert")["tls.crt"], mesh_ca, (vip,))
    values: dict[str, Any] = {"clustermesh": {"apiserver": {"tls": {"server": {"extraIpAddresses": []}}}}}
    revision = _hand_upgrade(mesh, "cls-c", values, {"clustermesh-apiserver-server-cert": {"tls.crt": crt, "tls.key": key}})
    served = cpstate.ControlPlane.load(mesh.dir).root / "cls-c" / "etcd-secrets" / "tls.crt"
    _poll("the new server certificate in cls-c's pod", lambda: served.read_bytes() == crt or None, CONNECT_TIMEOUT)
    _restart(mesh, "cls-a", "kvstoremesh")
    before = _pids(mesh, CLUSTERS[:3])
    status, took = _poll("cls-a refuses cls-c's certificate", _reason(
        mesh, "cls-a", "cls-c", f"x509: certificate is valid for 127.0.0.1, ::1, not {vip}"), CONNECT_TIMEOUT)
    _TIMES["vip-missing-refused"] = took
    assert status["cls-b"]["remotes"]["cls-c"]["connected"], status["cls-b"]
    assert status["cls-a"]["remotes"]["cls-b"]["connected"], status["cls-a"]
    ws.pulumi("up", "--yes", "--skip-preview", "--refresh")
    assert [r["version"] for r in helm_releases(mesh.kubeconfig, "cls-c")][-1] == revision + 1
    _, took = _poll("the mesh of 3 again", _full_mesh(mesh, CLUSTERS[:3]), REFUSED_TIMEOUT)
    _TIMES["vip-missing-repaired"] = took
    assert _pids(mesh, CLUSTERS[:3]) == before


def _served_ca(mesh: LocalMesh, cluster: str) -> bytes:
    """The trusted CA file of ``cluster``'s pod etcd (``--trusted-ca-file``), as the kubelet projected it."""
    return (cpstate.ControlPlane.load(mesh.dir).root / cluster / "etcd-secrets" / "ca.crt").read_bytes()


_CAS: dict[str, Ca] = {}
"""The brought CA the mesh runs on (scenario 8 sets it; 8b rotates it)."""


def test_8_a_new_brought_ca_needs_every_pod_restarted(ws: Workspace, mesh: LocalMesh, vips: str) -> None:
    """A brought CA replaced (``mesh:ca.certificate`` and ``mesh:caPrivateKey``; a brought CA is one generation,
    so `pulumi up` re-keys every cluster at once). The connections made before stay up (TLS verifies at the
    handshake), but a new one fails: every Secret is the new CA's, and each pod's etcd still trusts only the CA
    it read at start. Once the clustermesh-apiserver pod of every cluster restarts, the mesh connects again."""
    new = Ca(*localpki.new_mesh_ca())
    _CAS["current"] = new
    ws.pulumi("config", "set", "--secret", "mesh:caPrivateKey", stdin=new.key_pem)
    ws.set_config(_config(mesh, new, vips, CLUSTERS[:3]))
    before = _pids(mesh, CLUSTERS[:3])
    ws.pulumi("up", "--yes", "--skip-preview")
    for name in CLUSTERS[:3]:
        _poll(f"the new CA in {name}'s pod", lambda n=name: _served_ca(mesh, n) == new.cert_pem.encode() or None,
              CONNECT_TIMEOUT)
    assert _full_mesh(mesh, CLUSTERS[:3])(), "a connection made before the new CA was dropped"
    assert _pids(mesh, CLUSTERS[:3]) == before
    # A kvstoremesh restarted now cannot even reach its own pod's etcd: it serves no API, it dials no peer.
    _restart(mesh, "cls-a", "kvstoremesh")
    refused = "its own etcd: TLS client authentication failed: remote error: tls: unknown certificate authority"
    status, _ = _poll("cls-a's etcd refuses its kvstoremesh's new client certificate",
                      lambda: (s := _status(mesh))["cls-a"]["reason"] == refused and s or None, CONNECT_TIMEOUT)
    assert status["cls-a"]["error"].startswith(f"kvstoremesh API {vips}.1:9889: "), status["cls-a"]
    assert status["cls-a"]["remotes"] == {}, status["cls-a"]
    assert status["cls-b"]["remotes"]["cls-a"]["connected"], status["cls-b"]
    _restart(mesh, CLUSTERS[:3])
    _, took = _poll("the mesh of 3 on the new CA", _full_mesh(mesh, CLUSTERS[:3]), REFUSED_TIMEOUT)
    _TIMES["new-ca-reconnected"] = took


def _pems(text: str) -> set[str]:
    """The PEM blocks of ``text``."""
    import re

    return set(re.findall(r"-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----", text))


@contextlib.contextmanager
def _watching(mesh: LocalMesh, names: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """Sample the mesh status while the block runs: ``samples`` read; ``down``, each connection seen not connected
    (a -> b); ``errors``, the last errors and reasons seen (a TLS refusal would show there)."""
    seen: dict[str, Any] = {"samples": 0, "down": set(), "errors": set()}

    def check(status: Any) -> None:
        seen["samples"] += 1
        for a in names:
            for b in names:
                r = status[a]["remotes"].get(b) if a != b else None
                if a != b and not (r and r["connected"]):
                    seen["down"].add(f"{a} -> {b}")
                if r and (r["lastError"] or r["reason"]):
                    seen["errors"].add(f"{a} -> {b}: {r['reason'] or r['lastError']}")

    # in-process: no interpreter started per sample
    with sampling(lambda: meshstatus.mesh_status(mesh.dir), check, 0.5,
                  (OSError, ValueError, AssertionError, KeyError)):
        yield seen


def test_8b_a_brought_ca_rotates_in_three_steps_with_every_connection_up(ws: Workspace, mesh: LocalMesh,
                                                                        vips: str) -> None:
    """README's brought-CA rotation (mesh:ca.alsoTrusted), on the mesh scenario 8 left on its CA (OLD):
    1. OLD signs, NEW trusted too: tls.caBundle mounts both in every pod, whose template changed: each pod is
       replaced (as a Deployment rolls it) and its etcd and kvstoremesh trust both;
    2. NEW signs (its key set), OLD still trusted: only Secrets change, nothing restarts, and the certificates
       signed by NEW are accepted everywhere, new connections included;
    3. NEW alone: the bundle goes, the pods are replaced again, trusting NEW only.
    After each `pulumi up`, every pair is connected and synced, and a kvstoremesh restarted then (a new
    connection to each peer) connects: at no step does TLS refuse anything. During the up, a connection is only
    ever down while a pod is being replaced (steps 1 and 3), never in step 2."""
    old, new = _CAS["current"], Ca(*localpki.new_mesh_ca())
    names = CLUSTERS[:3]
    steps: list[tuple[Ca, list[str], Ca]] = [(old, [new.cert_pem], old), (new, [old.cert_pem], new), (new, [], new)]
    for step, (signer, also, key) in enumerate(steps, 1):
        config = _config(mesh, signer, vips, names)
        if also:
            config["mesh:ca"]["alsoTrusted"] = also
        ws.set_config(config)
        if step == 2:
            ws.pulumi("config", "set", "--secret", "mesh:caPrivateKey", stdin=key.key_pem)
        before = _pids(mesh, names)
        started = time.monotonic()
        with _watching(mesh, names) as seen:
            ws.pulumi("up", "--yes", "--skip-preview")
            trusted = _pems(signer.cert_pem + "".join(also))
            for name in names:
                _poll(f"step {step}: {name}'s pod trusts what the step says",
                      lambda n=name, t=trusted: _pems(_served_ca(mesh, n).decode()) == t or None, CONNECT_TIMEOUT)
            _, took = _poll(f"step {step}: the mesh of 3", _full_mesh(mesh, names), CONNECT_TIMEOUT)
        _TIMES[f"rotation-step-{step}"] = time.monotonic() - started
        assert seen["samples"] >= 3, seen
        assert not [e for e in seen["errors"] if "certificate" in e or "tls" in e.lower()], seen
        after = _pids(mesh, names)
        if step == 2:
            assert after == before and seen["down"] == set(), (seen, before, after)
        else:
            assert all(after[n]["etcd"] != before[n]["etcd"] for n in names), (before, after)
        _restart(mesh, "cls-a", "kvstoremesh")  # new connections, to every peer, on this step's certificates
        _, took = _poll(f"step {step}: cls-a's restarted kvstoremesh connected", _full_mesh(mesh, names),
                        CONNECT_TIMEOUT)
        _TIMES[f"rotation-step-{step}-reconnect"] = took
    assert _secret(mesh, "cls-b", "cilium-ca")["ca.crt"].decode() == new.cert_pem


def test_down_stops_the_control_plane_and_the_api_servers(mesh: LocalMesh) -> None:
    """`localmesh down` stops every process of the mesh: each pod's etcd, clustermesh and kvstoremesh, the kubelet,
    then the API servers and their etcd."""
    cp = cpstate.ControlPlane.load(mesh.dir)
    pids = [p for m in cp.clusters.values() for p in m.pids().values()] + [cp.kubelet_pid]
    state = localstate.Mesh.load(mesh.dir)
    pids += [m.pid for m in state.clusters] + [state.etcd_pid]
    assert all(alive(p) for p in pids), pids
    started = time.monotonic()
    _cli("down", "--dir", str(mesh.dir))
    _TIMES["down"] = time.monotonic() - started
    assert not [p for p in pids if alive(p)]
    assert not (cp.root / cpstate.STATE).exists()
    print("measured:", _TIMES)
