"""The mesh doctor against real API servers: a stack deployed by a real `pulumi up` into a local
mesh of its own, then broken the ways users break meshes, one at a time, each named exactly by
`python -m tools.doctor` and put back before the next.

Its own local mesh (``localmesh.up`` picks free ports): test_mesh_lifecycle.py deploys release
``cilium`` into the session's mesh, and the two modules must not see each other's releases."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshcore.doctor.checks import MESH_STATUS_SOURCE
from meshcore.doctor.records import Finding
from tests.e2e.conftest import Ca, LocalMesh, stack_config
from tests.e2e.harness import ROOT, Workspace, core_api
from tools import localmesh, localpki, localstate, markready

NAMES = ("cls-a", "cls-b", "cls-c")
VIPS = {"cls-a": "127.0.1.100", "cls-b": "127.0.2.100", "cls-c": "127.0.3.100"}
NS = "kube-system"
SUBNET = "service.kubernetes.io/qcloud-loadbalancer-internal-subnetid"


class Fleet:
    """The deployed stack: its workspace, its local mesh and its outputs file."""

    def __init__(self, ws: Workspace, mesh: LocalMesh, outputs: Path) -> None:
        self.ws, self.mesh, self.outputs = ws, mesh, outputs

    def api(self, cluster: str) -> Any:
        return core_api(self.mesh.kubeconfig, cluster)

    def doctor(self, *extra: str) -> tuple[int, dict[str, Any], str]:
        """(exit code, the --json document, the text output) of one doctor run each."""
        base = [sys.executable, "-m", "tools.doctor", str(self.ws.stack_file), "--outputs", str(self.outputs), *extra]
        as_json = subprocess.run([*base, "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
        as_text = subprocess.run(base, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert as_json.returncode == as_text.returncode, (as_json.stderr, as_text.stderr)
        assert as_json.stderr == as_text.stderr == "", as_json.stderr
        print(as_text.stdout)  # the transcript, with pytest -s
        return as_json.returncode, json.loads(as_json.stdout), as_text.stdout


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, mesh_ca: Ca) -> Iterator[Fleet]:
    d = tmp_path_factory.mktemp("doctor-mesh")
    localmesh.up(list(NAMES), d)
    try:
        mesh = LocalMesh(d)
        ws = Workspace(tmp_path_factory.mktemp("doctor-ws"))
        ws.init_stack(stack_config(mesh, mesh_ca, NAMES), secrets={"mesh:caPrivateKey": mesh_ca.key_pem})
        ws.pulumi("up", "--yes", "--skip-preview")
        outputs = ws.base / "outputs.json"
        outputs.write_text(json.dumps(ws.outputs()), encoding="utf-8")
        yield Fleet(ws, mesh, outputs)
    finally:
        localmesh.down(d)


def failing(doc: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(f["cluster"], f["check"], f["severity"], f["message"]) for f in doc["findings"]
            if f["severity"] in ("error", "pending", "warning")]


def line(*finding: str) -> str:
    return Finding(*finding).line()


def test_1_right_after_up_nothing_runs_yet(fleet: Fleet) -> None:
    """Right after `pulumi up` no load balancer has an address and no pod runs: the Services are pending and the
    clustermesh-apiserver is not ready (an error); the agents' DaemonSet has no pod scheduled yet (info)."""
    code, doc, text = fleet.doctor()
    assert code == 1
    assert sorted(failing(doc)) == sorted(
        [(n, "service", "pending", f"Service clustermesh-apiserver has no load balancer address yet (pending), "
                                   f"planned {VIPS[n]}") for n in NAMES]
        + [(n, "workloads", "error", "Deployment kube-system/clustermesh-apiserver: 0/1 ready") for n in NAMES])
    assert sorted(text.splitlines()[2:2 + len(failing(doc))]) == sorted(line(*f) for f in failing(doc))
    infos = [(f["cluster"], f["check"], f["message"]) for f in doc["findings"] if f["severity"] == "info"]
    assert sorted(infos) == sorted(
        [(n, "workloads", "DaemonSet kube-system/cilium: no pod scheduled (0 desired)") for n in NAMES]
        + [(n, "connected", f"kvstoremesh status not read: {MESH_STATUS_SOURCE}; not checked") for n in NAMES])


def test_2_healthy_fleet_exits_0(fleet: Fleet) -> None:
    """Once the VIPs are assigned (as TKE's controller does) and the workloads report ready (as their controllers
    would once the pods ran: `python -m tools.localmesh mark-ready`), every check of every cluster is ok: exit 0,
    no finding but ok ones."""
    markready.mark_ready(fleet.mesh.dir)
    code, doc, text = fleet.doctor()
    assert (code, failing(doc)) == (0, [])
    # No control plane runs here: whether the peers connect is not checked (tests/e2e/test_connect.py checks it).
    assert {(f["check"], f["severity"]) for f in doc["findings"] if f["severity"] != "ok"} == {("connected", "info")}
    for name in NAMES:
        assert doc["table"][name] == {**{check: "ok" for check in ("reachable", "release", "cilium-config",
                                                                    "cilium-ca", "service", "peers", "certificates",
                                                                    "workloads")}, "connected": "info"}
    ok = {(f["cluster"], f["check"], f["message"]) for f in doc["findings"]}
    assert ("cls-b", "release", "Helm release kube-system/cilium revision 1 deployed, chart cilium 1.18.3") in ok
    assert {("cls-b", "workloads", "DaemonSet kube-system/cilium: 1/1 ready"),
            ("cls-b", "workloads", "Deployment kube-system/clustermesh-apiserver: 1/1 ready")} <= ok
    assert any(c == "cls-b" and m.endswith(", the stack's CA (mesh:ca.certificate)") for c, _, m in ok)
    assert text.rstrip().endswith("0 error(s), 0 pending, 0 warning(s), 3 info: the fleet matches the stack (exit 0)")


def _replace_data(fleet: Fleet, cluster: str, secret: str, data: dict[str, str]) -> dict[str, str]:
    """Replace a Secret's data by hand (base64 values, as the API takes them); returns the old data
    (never decoded here)."""
    api = fleet.api(cluster)
    live = api.read_namespaced_secret(secret, NS)
    old = dict(live.data or {})
    live.data = data
    api.replace_namespaced_secret(secret, NS, live)
    return old


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _only(fleet: Fleet, finding: tuple[str, str, str, str]) -> dict[str, Any]:
    """The doctor exits 1 with ``finding`` its one failing finding, printed as its line; its document."""
    code, doc, text = fleet.doctor()
    assert (code, failing(doc)) == (1, [finding])
    assert line(*finding) in text.splitlines()
    return doc


def _healthy_again(fleet: Fleet) -> None:
    code, doc, _ = fleet.doctor()
    assert (code, failing(doc)) == (0, []), failing(doc)


def test_3_a_different_ca_in_one_cluster(fleet: Fleet, mesh_ca: Ca) -> None:
    """cls-b's cilium-ca replaced by another CA (a hand copy of the wrong one): that cluster's CA
    is named, and its apiserver and Hubble certificates no longer chain to it."""
    cert, key = localpki.new_mesh_ca()
    old = _replace_data(fleet, "cls-b", "cilium-ca", {"ca.crt": _b64(cert), "ca.key": _b64(key)})
    try:
        code, doc, text = fleet.doctor()
        assert code == 1
        got = failing(doc)
        # The chart's TLS Secrets in cls-b: the clustermesh-apiserver's four and Hubble's two (Relay is on).
        tls = [f"clustermesh-apiserver-{n}-cert" for n in ("server", "admin", "remote", "local")] + [
            "hubble-server-certs", "hubble-relay-client-certs"]
        assert [(g[0], g[1]) for g in got] == [("cls-b", "cilium-ca")] + [("cls-b", "certificates")] * 2 * len(tls)
        assert got[0][3].startswith("Secret cilium-ca is another CA (sha256 ")
        assert got[0][3].endswith("than the stack's CA (mesh:ca.certificate) (sha256 "
                                  f"{_short(mesh_ca.cert_pem)}) (the stack's CA is in cls-a, cls-c); run pulumi up --refresh "
                                  "to put the mesh CA back, then restart its clustermesh-apiserver (etcd reads its "
                                  "trusted CA at start)")
        for i, secret in enumerate(tls):
            issued, bundled = got[1 + 2 * i][3], got[2 + 2 * i][3]
            assert issued.startswith(f"Secret {secret}: its certificate is not issued by cilium-ca"), issued
            # The TLS Secret still carries the mesh CA, which is no longer this cluster's cilium-ca.
            assert bundled.startswith(f"Secret {secret}: its ca.crt (sha256 {_short(mesh_ca.cert_pem)}) is not "
                                      "cilium-ca (sha256 "), bundled
        assert line(*got[0]) in text.splitlines()
    finally:
        _replace_data(fleet, "cls-b", "cilium-ca", old)
    _healthy_again(fleet)


def _short(pem: str) -> str:
    """The first 8 bytes of a certificate's SHA-256 fingerprint, as the doctor's messages show it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    return x509.load_pem_x509_certificate(pem.encode()).fingerprint(hashes.SHA256())[:8].hex(":").upper() + "…"


def test_4_a_peer_removed_by_hand_from_one_secret(fleet: Fleet) -> None:
    api = fleet.api("cls-a")
    api.patch_namespaced_secret("cilium-kvstoremesh", NS, [{"op": "remove", "path": "/data/cls-c"}])
    try:
        _only(fleet, ("cls-a", "peers", "error",
                      "cilium-kvstoremesh: peer cls-c is missing (planned https://127.0.3.100:2379)"))
    finally:
        # What the chart renders for it (tools/stand-in-chart/cilium/templates/clustermesh-secrets.yaml).
        entry = ("endpoints:\n- https://127.0.3.100:2379\n"
                 "trusted-ca-file: /var/lib/cilium/clustermesh/common-etcd-client-ca.crt\n"
                 "key-file: /var/lib/cilium/clustermesh/common-etcd-client.key\n"
                 "cert-file: /var/lib/cilium/clustermesh/common-etcd-client.crt\n")
        api.patch_namespaced_secret("cilium-kvstoremesh", NS, {"data": {"cls-c": _b64(entry)}})
    _healthy_again(fleet)


def test_5_a_wrong_cluster_id_in_cilium_config(fleet: Fleet) -> None:
    api = fleet.api("cls-b")
    api.patch_namespaced_config_map("cilium-config", NS, {"data": {"cluster-id": "7"}})
    try:
        _only(fleet, ("cls-b", "cilium-config", "error", "cilium-config cluster-id is 7, planned 2"))
    finally:
        api.patch_namespaced_config_map("cilium-config", NS, {"data": {"cluster-id": "2"}})
    _healthy_again(fleet)


def test_6_a_service_without_its_annotation(fleet: Fleet) -> None:
    api = fleet.api("cls-c")
    api.patch_namespaced_service("clustermesh-apiserver", NS,
                                 [{"op": "remove", "path": "/metadata/annotations/" + SUBNET.replace("/", "~1")}])
    try:
        _only(fleet, ("cls-c", "service", "error",
                      f"Service clustermesh-apiserver has no annotation {SUBNET}, planned subnet-e2e00003"))
    finally:
        api.patch_namespaced_service("clustermesh-apiserver", NS, {"metadata": {"annotations": {SUBNET: "subnet-e2e00003"}}})
    _healthy_again(fleet)


def test_7_an_unreachable_cluster(fleet: Fleet) -> None:
    port = localstate.Mesh.load(fleet.mesh.dir).member("cls-b").port
    localmesh.stop_member(fleet.mesh.dir, "cls-b")
    try:
        doc = _only(fleet, ("cls-b", "reachable", "error", f"cannot reach https://127.0.0.1:{port}: connection "
                                                           "refused; nothing else of this cluster was checked"))
        assert set(doc["table"]["cls-b"].values()) == {"error", "-"}
    finally:
        localmesh.start_member(fleet.mesh.dir, "cls-b")
    _healthy_again(fleet)


def _leaf(ca: Ca, vip: str, days_left: datetime.timedelta) -> tuple[str, str, datetime.datetime]:
    """A clustermesh-apiserver server certificate signed by the mesh CA, valid for ``days_left``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.encode())
    ca_key = serialization.load_pem_private_key(ca.key_pem.encode(), None)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "clustermesh-apiserver.cilium.io")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + days_left)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("clustermesh-apiserver.cilium.io"),
                                                        x509.IPAddress(ipaddress.ip_address(vip))]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption()).decode(), now + days_left)


def test_8_an_expiring_certificate(fleet: Fleet, mesh_ca: Ca) -> None:
    """cls-a's clustermesh-apiserver certificate replaced by one of the mesh CA that expires in 9
    days and some hours: a warning, exit 1."""
    cert, key, not_after = _leaf(mesh_ca, VIPS["cls-a"], datetime.timedelta(days=9, hours=20))
    old = _replace_data(fleet, "cls-a", "clustermesh-apiserver-server-cert",
                        {"ca.crt": _b64(mesh_ca.cert_pem), "tls.crt": _b64(cert), "tls.key": _b64(key)})
    try:
        _only(fleet, ("cls-a", "certificates", "warning",
                      f"Secret clustermesh-apiserver-server-cert expires in 9 day(s) ({not_after.isoformat()})"))
    finally:
        _replace_data(fleet, "cls-a", "clustermesh-apiserver-server-cert", old)
    _healthy_again(fleet)


def test_9_no_secret_in_any_output(fleet: Fleet, mesh_ca: Ca) -> None:
    """The doctor's outputs hold neither the CA key (in any encoding) nor a kubeconfig credential."""
    _, doc, text = fleet.doctor()
    kubeconfig = fleet.mesh.kubeconfig.read_text()
    admin_key = kubeconfig.split("client-key-data: ")[1].split()[0]
    body = mesh_ca.key_pem.split("-----")[2].strip().splitlines()[1]
    for output in (json.dumps(doc), text):
        for secret in (body, _b64(mesh_ca.key_pem), admin_key, admin_key[:40]):
            assert secret not in output
