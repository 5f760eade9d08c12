"""The mesh doctor's comparison on plain data (meshcore/doctor/checks.py), its kubeconfig reading
(meshcore.mesh.kubeconfig.minimal_kubeconfigs) and the CLI's offline parts (tools/doctor.py).

Every observation here is written out literally, as a healthy cluster of the stack holds it;
each test breaks one thing and checks the one finding that names it."""

from __future__ import annotations

import base64
import copy
import datetime
import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from meshcore.config.parse import parse_settings
from meshcore.doctor import checks, records, report
from meshcore.mesh import kubeconfig as kc
from tests.conftest import ROOT, cluster_entry, mesh_config, write_stack
from tools import doctor as cli

NOW = datetime.datetime(2026, 12, 4, 12, 0, tzinfo=datetime.UTC)
NAMES = ("cls-00000001", "cls-00000002", "cls-00000003")
VIPS = {"cls-00000001": "10.0.1.100", "cls-00000002": "10.0.2.100", "cls-00000003": "10.0.3.100"}
CA_FP = "AA:" * 31 + "AA"
OTHER_FP = "BB:" * 31 + "BB"
CA = {"sha256": CA_FP, "subject": "CN=Cilium CA", "issuer": "CN=Cilium CA", "not_after": "2029-12-01T00:00:00+00:00",
      "ski": "c0ffee", "aki": None, "ips": [], "dns": []}
LOCAL = "https://clustermesh-apiserver.kube-system.svc:2379"


def _want(n: int = 3, ca_fingerprint: Any = CA_FP, outputs: Any = None, **top: Any) -> records.Desired:
    settings = parse_settings(mesh_config(n, **top))
    return records.desired(settings, namespace="kube-system", release="cilium", outputs=outputs,
                          ca_fingerprint=ca_fingerprint, ca_source="the stack's CA (mesh:ca.certificate)")


def _cluster(want: records.Desired, name: str) -> records.DesiredCluster:
    return next(c for c in want.clusters if c.name == name)


def _entry(address: str) -> str:
    return (f"endpoints:\n- https://{address}:2379\ntrusted-ca-file: /var/lib/cilium/clustermesh/common-etcd-client-ca.crt\n"
            "key-file: /var/lib/cilium/clustermesh/common-etcd-client.key\n"
            "cert-file: /var/lib/cilium/clustermesh/common-etcd-client.crt\n")


def _server_cert(vip: str, not_after: str = "2029-11-30T00:00:00+00:00") -> dict[str, Any]:
    return {"sha256": "CC:" * 31 + "CC", "subject": "CN=clustermesh-apiserver.cilium.io", "issuer": "CN=Cilium CA",
            "not_after": not_after, "ski": "beef", "aki": "c0ffee", "ips": ["127.0.0.1", "::1", vip],
            "dns": ["clustermesh-apiserver.cilium.io"]}


def healthy(name: str, cid: int) -> dict[str, Any]:
    """What cluster ``name`` (id ``cid``) of a healthy 3-cluster mesh holds, written out."""
    peers = [p for p in NAMES if p != name]
    return {
        "reachable": True,
        "releases": [
            {"revision": 1, "status": "superseded"},
            {"revision": 2, "status": "deployed", "chart": "cilium", "version": "1.18.3",
             "rendered": [{"kind": "ConfigMap", "name": "cilium-config", "type": ""},
                          {"kind": "Secret", "name": "clustermesh-apiserver-server-cert", "type": "kubernetes.io/tls"}]},
        ],
        "config": {"cluster-name": name, "cluster-id": str(cid), "max-connected-clusters": "255"},
        "ca": dict(CA),
        "service": {"type": "LoadBalancer", "ingress": [VIPS[name]], "annotations": {
            "service.kubernetes.io/qcloud-loadbalancer-internal-subnetid": f"subnet-{cid:08d}",
            "service.kubernetes.io/service.extensiveParameters": json.dumps({"Vip": VIPS[name]}, separators=(",", ":")),
        }},
        "secrets": {
            "cilium-kvstoremesh": {p: _entry(VIPS[p]) for p in peers},
            "cilium-clustermesh": {p: f"endpoints:\n- {LOCAL}\n" for p in peers},
        },
        "tls": {"clustermesh-apiserver-server-cert": {"crt": _server_cert(VIPS[name]), "ca": dict(CA)}},
        "workloads": {"DaemonSet/cilium": None, "Deployment/clustermesh-apiserver": None},
        "mesh_status": {"error": None, "reason": None, "remotes": {p: {
            "connected": True, "ready": True, "synced": True, "status": "", "failures": 0, "lastError": None,
            "reason": None} for p in peers}},
    }


def fleet() -> dict[str, dict[str, Any]]:
    return {n: healthy(n, i + 1) for i, n in enumerate(NAMES)}


def examine(want: records.Desired, observed: dict[str, dict[str, Any]],
            now: datetime.datetime) -> list[records.Finding]:
    """``checks.examine`` of observations written out as plain data (``records.Observation``'s fields)."""
    return checks.examine(want, {n: records.Observation(**o) for n, o in observed.items()}, now)


def failing(findings: list[records.Finding]) -> list[tuple[str, str, str, str]]:
    return [(f.cluster, f.check, f.severity, f.message) for f in findings if f.severity in records.FAILING]


# -- the desired state ----------------------------------------------------------------------


def test_desired_state_is_what_the_release_values_say() -> None:
    """Identity, Service annotations, mesh address, server IPs and the two peer Secrets' exact
    entries (KVStoreMesh: remote endpoints; cilium-clustermesh: the local clustermesh-apiserver)."""
    c = _cluster(_want(), "cls-00000002")
    assert (c.name, c.cluster_id, c.max_connected_clusters, c.chart_version) == ("cls-00000002", 2, 255, "1.18.3")
    assert c.service_type == "LoadBalancer"
    assert dict(c.annotations) == {
        "service.kubernetes.io/qcloud-loadbalancer-internal-subnetid": "subnet-00000002",
        "service.kubernetes.io/service.extensiveParameters": '{"Vip":"10.0.2.100"}'}
    assert c.mesh_address == "10.0.2.100" and c.server_ips == ("10.0.2.100",)
    assert {k: [(p.name, p.endpoint) for p in v] for k, v in c.peer_secrets.items()} == {
        "cilium-kvstoremesh": [("cls-00000001", "https://10.0.1.100:2379"), ("cls-00000003", "https://10.0.3.100:2379")],
        "cilium-clustermesh": [("cls-00000001", LOCAL), ("cls-00000003", LOCAL)],
    }


def test_desired_peers_follow_the_topology() -> None:
    """A partial mesh: cls-1 peers with cls-2 only, so cls-3's Secrets list cls-2 alone."""
    want = _want(topology={"peers": {"cls-00000001": ["cls-00000002"], "cls-00000003": ["cls-00000002"]}})
    assert [p.name for p in _cluster(want, "cls-00000003").peer_secrets["cilium-kvstoremesh"]] == ["cls-00000002"]
    assert [p.name for p in _cluster(want, "cls-00000002").peer_secrets["cilium-kvstoremesh"]] == [
        "cls-00000001", "cls-00000003"]


def test_created_clb_address_comes_from_the_outputs_or_is_unknown() -> None:
    raw = mesh_config(2)
    raw["clusters"][1] = cluster_entry(2, create_clb=True)
    settings = parse_settings(raw)
    outputs = {"clusters": {"cls-00000002": {"meshAddress": "10.0.2.7:2379"}}}
    known = records.desired(settings, namespace="kube-system", release="cilium", outputs=outputs)
    c2 = _cluster(known, "cls-00000002")
    assert c2.mesh_address == "10.0.2.7"
    assert "service.kubernetes.io/tke-existed-lbid" in c2.annotations
    assert [(p.name, p.endpoint) for p in _cluster(known, "cls-00000001").peer_secrets["cilium-kvstoremesh"]] == [
        ("cls-00000002", "https://10.0.2.7:2379")]
    unknown = records.desired(settings, namespace="kube-system", release="cilium")
    assert _cluster(unknown, "cls-00000002").mesh_address is None
    assert [(p.name, p.endpoint) for p in _cluster(unknown, "cls-00000001").peer_secrets["cilium-kvstoremesh"]] == [
        ("cls-00000002", None)]


def test_a_wave_cluster_is_planned_at_its_own_chart_version() -> None:
    """During an upgrade wave each cluster's desired release is its own chart version, with the server
    certificate IPs where that version puts them (1.20: tls.auto.server) and the same peer endpoints."""
    raw = mesh_config(2, cilium={"version": "1.19.6"}, policyDefaultLocalCluster=False)
    raw["clusters"][1]["cilium"] = {"version": "1.20.0"}
    want = records.desired(parse_settings(raw), namespace="kube-system", release="cilium")
    c1, c2 = _cluster(want, "cls-00000001"), _cluster(want, "cls-00000002")
    assert (c1.chart_version, c2.chart_version) == ("1.19.6", "1.20.0")
    assert c1.server_ips == ("10.0.1.100",) and c2.server_ips == ("10.0.2.100",)
    assert [(p.name, p.endpoint) for p in c2.peer_secrets["cilium-kvstoremesh"]] == [
        ("cls-00000001", "https://10.0.1.100:2379")]


def test_expected_peer_secrets_read_both_chart_forms() -> None:
    """The 1.19+ map form (an entry with enabled: false left out), ``ips`` entries reached by name,
    and without KVStoreMesh the remote endpoints in cilium-clustermesh."""
    values = {"clustermesh": {"useAPIServer": True, "apiserver": {"kvstoremesh": {"enabled": True}}, "config": {
        "enabled": True, "clusters": {"cls-b": {"address": "10.0.0.2", "port": 2379},
                                      "cls-c": {"ips": ["10.0.0.3"], "port": 2379},
                                      "cls-d": {"address": "10.0.0.4", "port": 2379, "enabled": False}}}}}
    got = records.expected_peer_secrets(values, "kube-system")
    assert [(p.name, p.endpoint) for p in got["cilium-kvstoremesh"]] == [
        ("cls-b", "https://10.0.0.2:2379"), ("cls-c", "https://cls-c.mesh.cilium.io:2379")]
    values["clustermesh"]["apiserver"]["kvstoremesh"]["enabled"] = False
    got = records.expected_peer_secrets(values, "kube-system")
    assert list(got) == ["cilium-clustermesh"]
    assert [p.endpoint for p in got["cilium-clustermesh"]] == ["https://10.0.0.2:2379", "https://cls-c.mesh.cilium.io:2379"]


# -- the checks -----------------------------------------------------------------------------


def test_a_healthy_fleet_matches() -> None:
    """Everything as planned: exit 0, every check ok, workloads the chart does not create: info."""
    want = _want()
    findings = examine(want, fleet(), NOW)
    assert failing(findings) == []
    assert report.exit_code(findings) == 0
    for row in report.table(want, findings).values():
        assert row == {**{c: "ok" for c in checks.CHECKS}, "workloads": "info"}


def test_unreachable_cluster_is_named_and_nothing_else_of_it_checked() -> None:
    want = _want()
    observed = fleet()
    observed["cls-00000002"] = {"reachable": False, "error": "cannot reach https://127.0.0.1:1: connection refused"}
    findings = examine(want, observed, NOW)
    assert failing(findings) == [("cls-00000002", "reachable", "error", "cannot reach https://127.0.0.1:1: connection "
                                  "refused; nothing else of this cluster was checked")]
    assert set(report.table(want, findings)["cls-00000002"].values()) == {"error", "-"}
    assert report.exit_code(findings) == 1


def test_release_missing_not_deployed_other_version_or_stuck() -> None:
    want = _want()
    cases = {
        "missing": ([], "error", "Helm release kube-system/cilium not found"),
        "failed install": ([{"revision": 1, "status": "failed"}], "error", "has no deployed revision (revision 1 is failed)"),
        "other version": (None, "error", "chart version 1.18.2, planned 1.18.3"),
        "stuck upgrade": ([{"revision": 3, "status": "pending-upgrade"}], "error", "revision 3 is pending-upgrade"),
        "failed upgrade": ([{"revision": 3, "status": "failed"}], "warning", "revision 3 is failed, revision 2 is the "
                                                                             "deployed one"),
    }
    for label, (releases, severity, text) in cases.items():
        observed = fleet()
        o = observed["cls-00000001"]
        if label == "other version":
            o["releases"][1]["version"] = "1.18.2"
        elif label in ("stuck upgrade", "failed upgrade"):
            o["releases"] += releases
        else:
            o["releases"] = releases
        got = [f for f in failing(examine(want, observed, NOW))]
        assert len(got) == 1 and got[0][:3] == ("cls-00000001", "release", severity) and text in got[0][3], (label, got)


def test_wrong_cluster_id_in_cilium_config() -> None:
    observed = fleet()
    observed["cls-00000003"]["config"]["cluster-id"] = "7"
    assert failing(examine(_want(), observed, NOW)) == [
        ("cls-00000003", "cilium-config", "error", "cilium-config cluster-id is 7, planned 3")]
    observed["cls-00000003"]["config"] = None
    assert failing(examine(_want(), observed, NOW)) == [
        ("cls-00000003", "cilium-config", "error", "ConfigMap cilium-config not found")]


def test_a_different_ca_in_one_cluster_names_that_cluster() -> None:
    """With the stack's CA known, the cluster holding another one is named (and its TLS Secret,
    still signed by the mesh CA, no longer chains to its cilium-ca)."""
    observed = fleet()
    observed["cls-00000002"]["ca"] = {**CA, "sha256": OTHER_FP, "ski": "0ther"}
    got = failing(examine(_want(), observed, NOW))
    assert {(g[0], g[1]) for g in got} == {("cls-00000002", "cilium-ca"), ("cls-00000002", "certificates")}
    ca = next(g for g in got if g[1] == "cilium-ca")
    assert ca[3] == ("Secret cilium-ca is another CA (sha256 BB:BB:BB:BB:BB:BB:BB:BB…) than the stack's CA "
                     "(mesh:ca.certificate) (sha256 AA:AA:AA:AA:AA:AA:AA:AA…) (the stack's CA is in cls-00000001, "
                     "cls-00000003); run pulumi up --refresh to put the mesh CA back, then restart its "
                         "clustermesh-apiserver (etcd reads its trusted CA at start)")


def test_without_the_stacks_ca_the_majority_decides_and_a_tie_names_every_cluster() -> None:
    observed = fleet()
    observed["cls-00000002"]["ca"] = {**CA, "sha256": OTHER_FP}
    got = [g for g in failing(examine(_want(ca_fingerprint=None), observed, NOW)) if g[1] == "cilium-ca"]
    assert [(g[0], "the other clusters' (2)" in g[3]) for g in got] == [("cls-00000002", True)]
    observed = {n: o for n, o in fleet().items() if n != "cls-00000003"}
    observed["cls-00000002"]["ca"] = {**CA, "sha256": OTHER_FP}
    got = [g for g in failing(examine(_want(2, ca_fingerprint=None), observed, NOW)) if g[1] == "cilium-ca"]
    assert [g[0] for g in got] == ["cls-00000001", "cls-00000002"]
    assert all("with no majority" in g[3] for g in got)


def test_missing_ca_secret() -> None:
    observed = fleet()
    observed["cls-00000001"]["ca"] = None
    assert ("cls-00000001", "cilium-ca", "error", "Secret cilium-ca not found") in failing(
        examine(_want(), observed, NOW))


def test_service_without_its_annotation_or_of_another_type() -> None:
    observed = fleet()
    del observed["cls-00000001"]["service"]["annotations"]["service.kubernetes.io/qcloud-loadbalancer-internal-subnetid"]
    assert failing(examine(_want(), observed, NOW)) == [
        ("cls-00000001", "service", "error", "Service clustermesh-apiserver has no annotation "
         "service.kubernetes.io/qcloud-loadbalancer-internal-subnetid, planned subnet-00000001")]
    observed = fleet()
    observed["cls-00000001"]["service"]["type"] = "NodePort"
    observed["cls-00000001"]["service"]["annotations"]["service.kubernetes.io/tke-existed-lbid"] = "lb-12345678"
    assert [g[3] for g in failing(examine(_want(), observed, NOW))] == [
        "Service clustermesh-apiserver is type NodePort, planned LoadBalancer",
        "Service clustermesh-apiserver has annotation service.kubernetes.io/tke-existed-lbid: lb-12345678, which the "
        "stack does not set"]


def test_load_balancer_address_pending_is_not_healthy_and_a_wrong_one_is_named() -> None:
    observed = fleet()
    observed["cls-00000002"]["service"]["ingress"] = []
    findings = examine(_want(), observed, NOW)
    assert failing(findings) == [("cls-00000002", "service", "pending", "Service clustermesh-apiserver has no load "
                                  "balancer address yet (pending), planned 10.0.2.100")]
    assert report.exit_code(findings) == 1
    observed["cls-00000002"]["service"]["ingress"] = ["10.0.9.9"]
    assert failing(examine(_want(), observed, NOW)) == [
        ("cls-00000002", "service", "error", "Service clustermesh-apiserver load balancer address is 10.0.9.9, "
         "planned 10.0.2.100")]


def test_created_clb_without_outputs_checks_presence_and_says_the_address_is_unknown() -> None:
    raw = mesh_config(2)
    raw["clusters"][1] = cluster_entry(2, create_clb=True)
    want = records.desired(parse_settings(raw), namespace="kube-system", release="cilium")
    observed = {n: healthy(n, i + 1) for i, n in enumerate(NAMES[:2])}
    for o in observed.values():
        o["secrets"] = {k: {p: v for p, v in d.items() if p in NAMES[:2]} for k, d in o["secrets"].items()}
        o["mesh_status"]["remotes"] = {p: r for p, r in o["mesh_status"]["remotes"].items() if p in NAMES[:2]}
    svc = observed["cls-00000002"]["service"]
    del svc["annotations"]["service.kubernetes.io/service.extensiveParameters"]
    findings = examine(want, observed, NOW)
    assert failing(findings) == [("cls-00000002", "service", "error", "Service clustermesh-apiserver has no annotation "
                                  "service.kubernetes.io/tke-existed-lbid, planned the created CLB's id")]
    assert any(f.severity == "info" and "give --outputs" in f.message for f in findings)
    svc["annotations"]["service.kubernetes.io/tke-existed-lbid"] = "lb-abcdefgh"
    assert failing(examine(want, observed, NOW)) == []


def test_peer_missing_extra_moved_and_secret_gone() -> None:
    observed = fleet()
    kvs = observed["cls-00000001"]["secrets"]["cilium-kvstoremesh"]
    del kvs["cls-00000003"]
    kvs["cls-00000009"] = _entry("10.0.9.100")
    kvs["cls-00000002"] = _entry("10.0.2.200")
    assert failing(examine(_want(), observed, NOW)) == [
        ("cls-00000001", "peers", "error", "cilium-kvstoremesh: peer cls-00000002 is at https://10.0.2.200:2379, "
         "planned https://10.0.2.100:2379"),
        ("cls-00000001", "peers", "error", "cilium-kvstoremesh: peer cls-00000003 is missing (planned "
         "https://10.0.3.100:2379)"),
        ("cls-00000001", "peers", "error", "cilium-kvstoremesh: peer cls-00000009 (at https://10.0.9.100:2379) is not "
         "planned"),
    ]
    observed = fleet()
    observed["cls-00000002"]["secrets"]["cilium-clustermesh"] = None
    assert failing(examine(_want(), observed, NOW)) == [
        ("cls-00000002", "peers", "error", "Secret cilium-clustermesh not found; planned peers: cls-00000001, "
         "cls-00000003")]


def test_cilium_clustermesh_must_point_at_the_local_apiserver() -> None:
    """In KVStoreMesh mode an entry of cilium-clustermesh with the remote address is wrong (the
    agents would bypass KVStoreMesh), and so is an entry that is not an etcd config."""
    observed = fleet()
    cm = observed["cls-00000003"]["secrets"]["cilium-clustermesh"]
    cm["cls-00000001"] = _entry("10.0.1.100")
    cm["cls-00000002"] = "not: [an etcd config"
    assert failing(examine(_want(), observed, NOW)) == [
        ("cls-00000003", "peers", "error", f"cilium-clustermesh: peer cls-00000001 is at https://10.0.1.100:2379, "
         f"planned {LOCAL}"),
        ("cls-00000003", "peers", "error", "cilium-clustermesh: the entry of peer cls-00000002 is not an etcd config "
         "with endpoints"),
    ]


def test_peer_keys_are_cluster_names_never_tls_files() -> None:
    assert checks.is_peer_key("cls-00000001")
    assert not checks.is_peer_key("cls-00000001.etcd-client.key")
    assert not checks.is_peer_key("common-etcd-client.crt")


def test_certificate_expiring_expired_or_not_covering_the_vip() -> None:
    observed = fleet()
    observed["cls-00000002"]["tls"]["clustermesh-apiserver-server-cert"]["crt"]["not_after"] = "2026-12-14T11:00:00+00:00"
    findings = examine(_want(), observed, NOW)
    assert failing(findings) == [("cls-00000002", "certificates", "warning", "Secret clustermesh-apiserver-server-cert "
                                  "expires in 9 day(s) (2026-12-14T11:00:00+00:00)")]
    assert report.exit_code(findings) == 1
    observed["cls-00000002"]["ca"]["not_after"] = "2026-12-01T00:00:00+00:00"
    assert ("cls-00000002", "certificates", "error", "CA cilium-ca expired 4 day(s) ago (2026-12-01T00:00:00+00:00)") in \
        failing(examine(_want(), observed, NOW))
    observed = fleet()
    observed["cls-00000001"]["tls"]["clustermesh-apiserver-server-cert"]["crt"]["ips"] = ["127.0.0.1"]
    assert failing(examine(_want(), observed, NOW)) == [
        ("cls-00000001", "certificates", "error", "Secret clustermesh-apiserver-server-cert: the server certificate "
         "does not cover 10.0.1.100 (peers connecting to that address fail with an x509 error)")]


def test_tls_secret_of_another_ca_or_missing_though_rendered() -> None:
    observed = fleet()
    entry = observed["cls-00000001"]["tls"]["clustermesh-apiserver-server-cert"]
    entry["crt"].update(aki="0123456789abcdef0123", issuer="CN=Other CA")
    entry["ca"] = {**CA, "sha256": OTHER_FP}
    assert [g[3] for g in failing(examine(_want(), observed, NOW))] == [
        "Secret clustermesh-apiserver-server-cert: its certificate is not issued by cilium-ca (its issuer's key id "
        "0123456789abcdef…, cilium-ca's c0ffee…); run pulumi up to re-issue it",
        "Secret clustermesh-apiserver-server-cert: its ca.crt (sha256 BB:BB:BB:BB:BB:BB:BB:BB…) is not cilium-ca "
        "(sha256 AA:AA:AA:AA:AA:AA:AA:AA…)"]
    observed = fleet()
    entry = observed["cls-00000001"]["tls"]["clustermesh-apiserver-server-cert"]
    entry["crt"].update(aki=None, issuer="CN=Other CA")
    assert [g[3] for g in failing(examine(_want(), observed, NOW))] == [
        "Secret clustermesh-apiserver-server-cert: its certificate is not issued by cilium-ca (issuer CN=Other CA); "
        "run pulumi up to re-issue it"]
    observed = fleet()
    observed["cls-00000001"]["tls"] = {}
    assert failing(examine(_want(), observed, NOW)) == [
        ("cls-00000001", "certificates", "error", "Secret clustermesh-apiserver-server-cert is in the release but not "
         "in the cluster")]


def test_workloads_ready_where_they_exist() -> None:
    """Not created by the release and absent: info (exit 0). Rendered but gone, or not ready: error."""
    want = _want()
    observed = fleet()
    o = observed["cls-00000001"]
    o["releases"][1]["rendered"].append({"kind": "DaemonSet", "name": "cilium", "type": ""})
    assert failing(examine(want, observed, NOW)) == [
        ("cls-00000001", "workloads", "error", "DaemonSet kube-system/cilium is in the release but not in the cluster")]
    o["workloads"]["DaemonSet/cilium"] = {"desired": 3, "ready": 1}
    o["workloads"]["Deployment/clustermesh-apiserver"] = {"desired": 2, "ready": 2}
    findings = examine(want, observed, NOW)
    assert failing(findings) == [("cls-00000001", "workloads", "error", "DaemonSet kube-system/cilium: 1/3 ready")]
    assert ("cls-00000001", "workloads", "ok", "Deployment kube-system/clustermesh-apiserver: 2/2 ready") in [
        (f.cluster, f.check, f.severity, f.message) for f in findings]
    o["workloads"]["DaemonSet/cilium"] = {"desired": 3, "ready": 3}
    assert report.exit_code(examine(want, observed, NOW)) == 0


def test_connected_each_planned_peer_with_cilium_s_reason() -> None:
    """kvstoremesh's own status: every planned peer connected, ready and synced; otherwise Cilium's reason (its
    troubleshoot), else the last error; a planned peer it does not know, a remote the stack does not plan, its API
    down, and a status the doctor could not read (info: not checked) each named."""
    want = _want()

    def run(status: Any) -> list[tuple[str, str, str, str]]:
        observed = fleet()
        observed["cls-00000001"] = {**observed["cls-00000001"], "mesh_status": status}
        return [(g.cluster, g.check, g.severity, g.message) for g in examine(want, observed, NOW)
                if g.check == "connected" and g.cluster == "cls-00000001"]

    ok = healthy("cls-00000001", 1)["mesh_status"]
    assert run(ok) == [("cls-00000001", "connected", "ok", f"{p}: connected and synced")
                       for p in ("cls-00000002", "cls-00000003")]
    refused = {**ok["remotes"]["cls-00000002"], "connected": False, "ready": False, "failures": 3,
               "lastError": "Waiting for initial connection to be established",
               "reason": "x509: certificate signed by unknown authority"}
    unsynced = {**ok["remotes"]["cls-00000003"], "synced": False}
    got = run({**ok, "remotes": {"cls-00000002": refused, "cls-00000003": unsynced, "cls-00000009": refused}})
    assert got == [
        ("cls-00000001", "connected", "error", "cls-00000002: not connected (3 failure(s)): x509: certificate "
                                               "signed by unknown authority"),
        ("cls-00000001", "connected", "error", "cls-00000003: connected, not synced (0 failure(s)): no error "
                                               "reported"),
        ("cls-00000001", "connected", "warning", "kvstoremesh knows cls-00000009, which the stack does not peer "
                                                 "it with")]
    assert run({**ok, "remotes": {"cls-00000002": {**refused, "reason": None}}})[:2] == [
        ("cls-00000001", "connected", "error", "cls-00000002: not connected (3 failure(s)): Waiting for initial "
                                               "connection to be established"),
        ("cls-00000001", "connected", "error", "kvstoremesh does not know cls-00000003, which the stack peers it "
                                               "with (Secret cilium-kvstoremesh not reloaded yet, or another one)")]
    down = run({"error": "kvstoremesh API 127.0.10.1:9880: connection refused", "reason": "its own etcd: x509",
                "remotes": {}})
    assert down == [("cls-00000001", "connected", "error", "kvstoremesh: kvstoremesh API 127.0.10.1:9880: "
                                                           "connection refused; its own etcd: x509")]
    assert [g[2] for g in run(None)] == ["info"] and "not checked" in run(None)[0][3]


def test_findings_most_serious_first() -> None:
    observed = fleet()
    observed["cls-00000003"]["config"]["cluster-id"] = "9"
    observed["cls-00000001"]["service"]["ingress"] = []
    observed["cls-00000002"]["tls"]["clustermesh-apiserver-server-cert"]["crt"]["not_after"] = "2026-12-20T00:00:00+00:00"
    severities = [f.severity for f in examine(_want(), observed, NOW)]
    assert severities == sorted(severities, key=records.SEVERITIES.index)
    assert [g[:3] for g in failing(examine(_want(), observed, NOW))] == [
        ("cls-00000003", "cilium-config", "error"), ("cls-00000001", "service", "pending"),
        ("cls-00000002", "certificates", "warning")]


# -- kubeconfig: the program's reading, one function ------------------------------------------


def _kubeconfig(path: Path, contexts: list[str]) -> None:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": c, "cluster": {"server": f"https://{c}.example:6443"}} for c in contexts],
        "users": [{"name": "u", "user": {"token": "t0ken"}}],
        "contexts": [{"name": c, "context": {"cluster": c, "user": "u"}} for c in contexts]}))


def test_minimal_kubeconfigs_per_cluster_problems_and_file_problems(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    _kubeconfig(path, ["cls-a"])
    source = kc.kubeconfig_files(str(path), {})
    read = kc.minimal_kubeconfigs(source, [("cls-a", "mesh:clusters[0].context", "cls-a"),
                                           ("cls-b", "mesh:clusters[1].context", "cls-b")])
    assert list(read.configs) == ["cls-a"]
    assert yaml.safe_load(read.configs["cls-a"])["current-context"] == "cls-a"
    assert [i.key for i in read.by_cluster["cls-b"]] == ["mesh:clusters[1].context"]
    assert "context 'cls-b' is not in the kubeconfig" in read.issues[0].message
    missing = kc.minimal_kubeconfigs(kc.kubeconfig_files(str(tmp_path / "nope"), {}), [("cls-a", "k", "cls-a")])
    assert missing.configs == {} and missing.by_cluster == {}
    assert [i.key for i in missing.issues] == ["mesh:kubeconfig"]
    assert "cannot read kubeconfig" in missing.issues[0].message


# -- the CLI's offline parts ----------------------------------------------------------------


def test_cert_facts_of_a_real_certificate() -> None:
    from tools import localpki

    pem, _key = localpki.new_mesh_ca(days=20)
    facts = cli.cert_facts(pem.encode())
    assert facts["subject"] == facts["issuer"] == "O=tke-cilium-mesh local,CN=Cilium CA"
    assert len(facts["sha256"].split(":")) == 32 and facts["ski"]
    days = checks._days_left(facts, datetime.datetime.now(datetime.UTC))
    assert days == 19
    assert cli.cert_facts(b"not a certificate") == {"error": "not a PEM certificate"}


def test_helm_release_records_are_decoded_twice_and_their_values_never_kept() -> None:
    record = {"name": "cilium", "version": 4, "info": {"status": "deployed"},
              "chart": {"metadata": {"name": "cilium", "version": "1.18.3"}},
              "config": {"tls": {"ca": {"key": "c2VjcmV0"}}},
              "manifest": "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: cilium-ca\ndata:\n  ca.key: c2VjcmV0\n"
                          "---\napiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: cilium\n"}
    helm = base64.b64encode(gzip.compress(json.dumps(record).encode()))  # what Helm stores
    api = {"release": base64.b64encode(helm).decode()}                    # what the API returns
    assert cli._decode_release(api) == record
    assert cli._manifest_objects(record["manifest"]) == [{"kind": "Secret", "name": "cilium-ca", "type": ""},
                                                         {"kind": "DaemonSet", "name": "cilium", "type": ""}]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_an_invalid_stack_gives_the_plans_error_lines_and_exit_2(tmp_path: Path) -> None:
    raw = mesh_config(2)
    raw["clusters"][1]["id"] = 1
    raw["maxConnectedClusters"] = 300
    stack = write_stack(tmp_path, raw)
    plan = _run("-m", "tools.plan", str(stack), "--out", str(tmp_path / "plan"))
    doc = _run("-m", "tools.doctor", str(stack))
    assert (plan.returncode, doc.returncode) == (2, 2)
    assert doc.stderr == plan.stderr and doc.stderr.count("error: ") >= 2
    assert doc.stdout == ""


def test_an_unreadable_kubeconfig_is_exit_2_in_the_programs_words(tmp_path: Path) -> None:
    stack = write_stack(tmp_path, mesh_config(2, kubeconfig=str(tmp_path / "missing")))
    doc = _run("-m", "tools.doctor", str(stack))
    assert doc.returncode == 2
    assert doc.stderr.startswith(f"error: mesh:kubeconfig: cannot read kubeconfig {tmp_path / 'missing'} (from the "
                                 "stack's mesh:kubeconfig): No such file or directory")


def test_missing_context_and_a_down_server_are_findings_not_crashes(tmp_path: Path) -> None:
    """The doctor runs for real against a kubeconfig whose one context is missing and whose other
    server is a closed loopback port: both clusters are named, exit 1, nothing of the token printed."""
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c1", "cluster": {"server": "https://127.0.0.1:9", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "s3cr3t-t0ken"}}],
        "contexts": [{"name": "cls-00000001", "context": {"cluster": "c1", "user": "u"}}]}))
    stack = write_stack(tmp_path, mesh_config(2))
    doc = _run("-m", "tools.doctor", str(stack), "--kubeconfig", str(path), "--json")
    assert doc.returncode == 1, doc.stderr
    out = json.loads(doc.stdout)
    errors = [f for f in out["findings"] if f["severity"] == "error"]
    assert [(f["cluster"], f["check"]) for f in errors] == [("cls-00000001", "reachable"), ("cls-00000002", "reachable")]
    assert errors[0]["message"].startswith("cannot reach https://127.0.0.1:9: connection refused")
    assert "context 'cls-00000002' is not in the kubeconfig" in errors[1]["message"]
    assert "s3cr3t" not in doc.stdout + doc.stderr
    text = _run("-m", "tools.doctor", str(stack), "--kubeconfig", str(path))
    assert text.returncode == 1
    assert "2 error(s), 0 pending, 0 warning(s), 0 info: the fleet differs from the stack (exit 1)" in text.stdout


def test_a_cluster_adopted_through_the_tke_api_needs_a_context_named_after_it(tmp_path: Path) -> None:
    """The program reaches it without a kubeconfig; the doctor says which context it needs."""
    path = tmp_path / "kubeconfig"
    _kubeconfig(path, ["cls-00000001"])
    raw = mesh_config(2)
    raw["clusters"][1]["kubeconfigFrom"] = "tkeApi"
    stack = write_stack(tmp_path, raw)
    doc = _run("-m", "tools.doctor", str(stack), "--kubeconfig", str(path), "--json")
    assert doc.returncode == 1, doc.stderr
    found = [f for f in json.loads(doc.stdout)["findings"] if f["cluster"] == "cls-00000002"]
    assert [(f["check"], f["severity"]) for f in found] == [("reachable", "error")]
    assert found[0]["message"] == (
        "the program reaches it through the TKE API (kubeconfigFrom: tkeApi); the doctor reads it through a kubeconfig "
        f"context named cls-00000002, which is missing or incomplete in the kubeconfig {path} (from --kubeconfig): "
        "merge the cluster's kubeconfig under that name, or pass --kubeconfig; nothing else of this cluster was checked")


def test_text_output_lists_findings_then_the_table() -> None:
    want = _want()
    observed = fleet()
    observed["cls-00000003"]["config"]["cluster-id"] = "9"
    text = cli.render_text("stacks/Pulumi.x.yaml", want, examine(want, observed, NOW))
    lines = text.splitlines()
    assert lines[2].split()[:3] == ["ERROR", "cls-00000003", "cilium-config"]
    header = next(i for i, line in enumerate(lines) if line.startswith("cluster "))
    assert lines[header].split() == ["cluster", *checks.CHECKS]
    assert lines[header + 3].split() == ["cls-00000003", "ok", "ok", "ERROR", "ok", "ok", "ok", "ok", "info", "ok"]
    assert lines[-1] == "1 error(s), 0 pending, 0 warning(s), 3 info: the fleet differs from the stack (exit 1)"
    doc = json.loads(cli.render_json("s", want, examine(want, observed, NOW)))
    assert doc["exitCode"] == 1 and doc["counts"]["error"] == 1
    assert doc["table"]["cls-00000003"]["cilium-config"] == "error"
    assert copy.deepcopy(doc["findings"][0]) == {"cluster": "cls-00000003", "check": "cilium-config",
                                                 "severity": "error", "message": "cilium-config cluster-id is 9, planned 3"}


def test_an_unreadable_release_record_is_a_release_finding_not_an_unreachable_cluster() -> None:
    observed = fleet()
    observed["cls-00000002"]["releases"][1] = {"revision": 2, "status": "deployed",
                                               "unreadable": "Secret sh.helm.release.v1.cilium.v2 does not hold a "
                                                             "Helm release record (BadGzipFile)"}
    got = failing(examine(_want(), observed, NOW))
    assert [(g[0], g[1]) for g in got] == [("cls-00000002", "release")]
    assert "does not hold a Helm release record" in got[0][3] and "helm -n kube-system history cilium" in got[0][3]


def test_hubble_certificates_kept_from_before_a_ca_rotation_are_found() -> None:
    """The chart keeps hubble-server-certs across upgrades (lookup): after a CA rotation it is still
    signed by the old CA while its ca.crt is the new one, and Relay's mTLS to the agents fails."""
    observed = fleet()
    old_ca_leaf = {**_server_cert("10.0.9.9"), "subject": "CN=*.cls-00000001.hubble-grpc.cilium.io",
                   "aki": "01dca", "ips": []}
    observed["cls-00000001"]["tls"]["hubble-server-certs"] = {"crt": old_ca_leaf, "ca": dict(CA)}
    got = failing(examine(_want(), observed, NOW))
    assert [(g[0], g[1]) for g in got] == [("cls-00000001", "certificates")]
    assert got[0][3].startswith("Secret hubble-server-certs: its certificate is not issued by cilium-ca")
    observed["cls-00000001"]["tls"]["hubble-server-certs"] = {"crt": {**old_ca_leaf, "aki": "c0ffee"}, "ca": dict(CA)}
    assert failing(examine(_want(), observed, NOW)) == []
