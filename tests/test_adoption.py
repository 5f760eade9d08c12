"""``meshcore.mesh.adoption`` on plain data: what adopt refuses, and how a running fleet becomes the stack's config
(the same against real API servers and the real engine: ``tests/e2e/test_adopt.py``)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from meshcore.chart import owned
from meshcore.config.parse import parse_settings
from meshcore.mesh import adoption
from meshcore.mesh.adoption import Ca, Observed, Options, Refused, Revision, Sensitive

CA = Ca("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", Sensitive("key-pem"), "AA:BB")


def member(name: str, cid: int, *, version: str = "1.18.3", chart: str = "cilium", ca: Ca | None = CA,
           peers: tuple[str, ...] = (), history: tuple[Revision, ...] | None = None,
           extra: dict[str, Any] | None = None, owners: dict[str, str | None] | None = None) -> Observed:
    values: dict[str, Any] = {
        "cluster": {"name": name, "id": cid},
        "ipam": {"operator": {"clusterPoolIPv4PodCIDRList": [f"10.{cid}.0.0/16"]}},
        "clustermesh": {"useAPIServer": True, "config": {"enabled": True, "clusters": [
            {"name": p, "address": f"10.100.0.{int(p[-1], 16)}", "port": 2379} for p in peers]}},
        **(extra or {}),
    }
    return Observed(
        context=f"ctx-{name}", history=history or (Revision(1, "deployed", chart, version),), values=values,
        service={"type": "LoadBalancer", "ingress": [f"10.100.0.{cid}"],
                 "annotations": {owned.INTERNAL_SUBNET_ANNOTATION: f"subnet-abcd{cid:04d}"}},
        ca=ca, owners=owners or {adoption.CA_SECRET: "cilium"})


def fleet3() -> list[Observed]:
    return [member("cls-a", 10, peers=("cls-b", "cls-c")), member("cls-b", 11, peers=("cls-a", "cls-c")),
            member("cls-c", 12, peers=("cls-a", "cls-b"))]


OPTIONS = Options("/k/config", region="ap-guangzhou")


def test_a_fleet_becomes_a_valid_config_with_what_it_runs() -> None:
    a = adoption.adopt(fleet3(), OPTIONS)
    assert [(c["name"], c["id"], c["context"], c["podCidrs"], c["apiserver"]) for c in a.config["mesh:clusters"]] == [
        ("cls-a", 10, "ctx-cls-a", ["10.10.0.0/16"], {"subnetId": "subnet-abcd0010", "vip": "10.100.0.10"}),
        ("cls-b", 11, "ctx-cls-b", ["10.11.0.0/16"], {"subnetId": "subnet-abcd0011", "vip": "10.100.0.11"}),
        ("cls-c", 12, "ctx-cls-c", ["10.12.0.0/16"], {"subnetId": "subnet-abcd0012", "vip": "10.100.0.12"})]
    assert [c["adopted"] for c in a.config["mesh:clusters"]] == [{"version": "1.18.3", "firstInstalled": "1.18"}] * 3
    assert a.config["mesh:cilium"] == {"version": "1.18.3"}  # no value all share but the pools, which differ
    assert "mesh:topology" not in a.config  # every one peers with every other: full
    assert a.ca_key == "key-pem" and "key-pem" not in repr(a)
    assert "mesh:caPrivateKey" not in a.config
    # Owned values are not kept: neither the identity, the peer lists nor the CA.
    kept = [a.config["mesh:cilium"].get("values", {})] + [c.get("values", {}) for c in a.config["mesh:clusters"]]
    assert all("cluster" not in v and "clustermesh" not in v and "tls" not in v for v in kept)
    assert [c["values"] for c in a.config["mesh:clusters"]] == [
        {"ipam": {"operator": {"clusterPoolIPv4PodCIDRList": [f"10.{i}.0.0/16"]}}} for i in (10, 11, 12)]
    raw = {k.split(":", 1)[1]: v for k, v in a.config.items()}
    raw["ca"] = {"certificate": _self_signed()}
    raw["caPrivateKey"] = "[secret]"
    settings = parse_settings(raw, ["caPrivateKey"])
    assert [c.adopted.version for c in settings.clusters if c.adopted] == ["1.18.3"] * 3


def _self_signed() -> str:
    from tools.localpki import new_mesh_ca

    return new_mesh_ca()[0]


def test_values_all_clusters_share_go_to_the_mesh() -> None:
    extra = {"operator": {"replicas": 1}, "hubble": {"enabled": True}}
    fleet = [member("cls-a", 1, peers=("cls-b",), extra=extra),
             member("cls-b", 2, peers=("cls-a",), extra={**extra, "hubble": {"enabled": False}})]
    a = adoption.adopt(fleet, OPTIONS)
    assert a.config["mesh:cilium"]["values"] == {"operator": {"replicas": 1}}
    assert [c["values"]["hubble"] for c in a.config["mesh:clusters"]] == [{"enabled": True}, {"enabled": False}]


def test_a_partial_mesh_is_a_topology_and_foreign_peers_are_said() -> None:
    fleet = [member("cls-a", 1, peers=("cls-b", "cls-f")), member("cls-b", 2, peers=("cls-a",)),
             member("cls-c", 3, peers=("cls-b",))]
    a = adoption.adopt(fleet, OPTIONS)
    assert a.config["mesh:topology"] == {"peers": {"cls-a": ["cls-b"], "cls-b": ["cls-a", "cls-c"],
                                                   "cls-c": ["cls-b"]}}
    assert any(n.startswith("cls-a: its peer cls-f is not among the adopted clusters") for n in a.notes)
    assert "cls-b: the program connects it to cls-c too (a mesh's connections go both ways)" in a.notes


def _refused(fleet: list[Observed]) -> list[str]:
    with pytest.raises(Refused) as err:
        adoption.adopt(fleet, OPTIONS)
    return err.value.lines


def test_refusals_name_the_cluster_and_what_to_do() -> None:
    other = Ca(CA.certificate, Sensitive("k2"), "CC:DD")
    lines = _refused([member("cls-a", 1), member("cls-a", 1, ca=other), member("cls-x", 3, chart="not-cilium"),
                      member("cls-y", 4, version="1.16.5"), member("cls-z", 5, version="1.21.0")])
    assert "context ctx-cls-x: release kube-system/cilium is chart 'not-cilium' 1.18.3, not chart 'cilium': adopt " \
           "takes over the Cilium chart only; leave the context out" in lines
    assert any(line.startswith("context ctx-cls-y: runs chart cilium 1.16.5; this program renders 1.18.x to 1.20.x")
               and "upgrade it by hand to 1.18.12 first" in line for line in lines)
    assert any(line.startswith("context ctx-cls-z: runs chart cilium 1.21.0") and "program version that renders "
               "chart 1.21" in line for line in lines)
    assert any(line.startswith("contexts ctx-cls-a, ctx-cls-a: all run Cilium cluster.name cls-a") for line in lines)
    assert any(line.startswith("cls-a (context ctx-cls-a), cls-a (context ctx-cls-a): all run cluster.id 1")
               for line in lines)
    assert any(line.startswith("the clusters run 2 different CAs") for line in lines)
    assert "k2" not in "\n".join(lines) and "key-pem" not in "\n".join(lines)


def test_no_ca_no_service_no_name_are_refused() -> None:
    o = member("cls-a", 1, ca=None)
    bare = Observed("ctx-b", history=(Revision(1, "deployed", "cilium", "1.18.3"),), values={}, ca=CA)
    lines = _refused([o, bare])
    assert any("has no Secret kube-system/cilium-ca" in line for line in lines)
    assert any(line.startswith("context ctx-b: its Cilium cluster.name is 'unset'") for line in lines)
    assert any(line.startswith("context ctx-b: has no Service kube-system/clustermesh-apiserver") for line in lines)
    failed = Observed("ctx-c", history=(Revision(1, "failed", "cilium", "1.18.3"),))
    assert _refused([failed])[0].startswith("context ctx-c: no deployed Helm release kube-system/cilium (1: failed)")


def test_first_installed_from_upgrade_compatibility_revision_1_or_the_oldest_kept() -> None:
    pruned = (Revision(4, "superseded", "cilium", "1.18.12"), Revision(5, "deployed", "cilium", "1.19.6"))
    assert adoption.first_installed(member("a", 1, history=pruned))[0] == "1.18"
    assert "Helm keeps revisions 4..5 only" in (adoption.first_installed(member("a", 1, history=pruned))[1] or "")
    assert adoption.first_installed(member("a", 1, history=pruned, extra={"upgradeCompatibility": "1.16"})) == \
        ("1.16", None)
    full = (Revision(1, "superseded", "cilium", "1.18.3"), Revision(2, "deployed", "cilium", "1.19.6"))
    assert adoption.first_installed(member("a", 1, history=full)) == ("1.18", None)


def test_leftovers_outside_helm_are_said() -> None:
    fleet = [member("cls-a", 1, peers=("cls-b",), owners={"cilium-ca": None, "cilium-clustermesh": None}),
             member("cls-b", 2, peers=("cls-a",))]
    a = adoption.adopt(fleet, OPTIONS)
    assert a.leftovers == {"ctx-cls-a": ["cilium-ca", "cilium-clustermesh"]}
    said = [n for n in a.notes if "exists outside release cilium" in n]
    assert [n.split(" exists")[0] for n in said] == ["cls-a: Secret kube-system/cilium-ca",
                                                     "cls-a: Secret kube-system/cilium-clustermesh"]


def test_pod_cidrs_from_cilium_config_values_nodes_or_given() -> None:
    o = member("a", 1)
    assert adoption.pod_cidrs(o, "a", {}) == ["10.1.0.0/16"]
    assert adoption.pod_cidrs(o, "a", {"a": ["10.9.0.0/16"]}) == ["10.9.0.0/16"]
    cm = Observed("c", cilium_config={"cluster-pool-ipv4-cidr": "10.5.0.0/16 10.6.0.0/16"})
    assert adoption.pod_cidrs(cm, None, {}) == ["10.5.0.0/16", "10.6.0.0/16"]
    nodes = Observed("c", values={"ipam": {"mode": "kubernetes"}}, node_pod_cidrs=("10.7.1.0/24", "10.7.2.0/24"))
    assert adoption.pod_cidrs(nodes, None, {}) == ["10.7.1.0/24", "10.7.2.0/24"]


def test_a_secret_never_shows() -> None:
    assert "x" not in repr(Sensitive("x"))
    assert base64.b64encode(b"key-pem").decode() not in repr(CA)


def _adopted_settings(ca: str) -> Any:
    a = adoption.adopt(fleet3(), OPTIONS)
    raw = {k.split(":", 1)[1]: v for k, v in a.config.items()}
    raw["ca"] = {"certificate": ca}
    raw["caPrivateKey"] = "[secret]"
    return parse_settings(raw, ["caPrivateKey"])


def test_before_its_first_update_an_adopted_cluster_is_recorded_as_it_runs() -> None:
    """The program's side: what an adopted cluster runs stands for the stack's record until the stack has one."""
    from meshcore.mesh.lifecycle import identity_changes

    ca = _self_signed()
    settings = _adopted_settings(ca)
    live = {"cls-a": {"cluster-name": "cls-a", "cluster-id": "10", "ca": ca},
            "cls-b": {"cluster-name": "cls-b", "cluster-id": "99", "ca": ca},
            "cls-c": {"cluster-name": "cls-old", "cluster-id": "12", "ca": _self_signed()}}
    previous, issues = adoption.with_live(None, settings, live)
    assert previous["cls-a"] == {"context": "ctx-cls-a", "region": "ap-guangzhou", "id": 10,
                                 "cilium": {"version": "1.18.3", "firstInstalled": "1.18"}}
    assert [(i.key, i.message.split(" than ")[0]) for i in issues] == [
        ("mesh:ca.certificate", "cluster cls-c (mesh:clusters[2].adopted) runs another CA (kube-system/cilium-ca's "
                                "ca.crt)")]
    found = {(c.key, c.description) for c in identity_changes(previous, settings, {})}
    assert found == {("mesh:clusters[1].id", "cluster cls-b was deployed with id 99, now 11"),
                     ("mesh:clusters[2].name", "cluster cls-old (context ctx-cls-c) is now named cls-c")}
    # Recorded: the record is what counts, nothing is read.
    assert not adoption.needs_live({"cls-a": {"id": 10}}, settings.clusters[0])
    assert adoption.with_live({"cls-a": {"id": 10}}, settings, {})[0]["cls-a"] == {"id": 10}
    # Unknown (the offline plan reads no cluster): a record from `adopted` alone, no identity to compare.
    assert adoption.with_live(None, settings, {})[0]["cls-b"] == {
        "context": "ctx-cls-b", "region": "ap-guangzhou", "cilium": {"version": "1.18.3", "firstInstalled": "1.18"}}


def test_an_adopted_cluster_upgrades_from_what_it_ran() -> None:
    """Before the stack records it, an adopted cluster's chart record is its ``adopted`` block: the version rules
    start there, and ``upgradeCompatibility`` is its first-installed minor."""
    from meshcore.mesh.lifecycle import cilium_records, version_refusals

    ca = _self_signed()
    settings = _adopted_settings(ca)
    assert cilium_records(None, settings)["cls-a"] == {"version": "1.18.3", "firstInstalled": "1.18"}
    raw = {k.split(":", 1)[1]: v for k, v in adoption.adopt(fleet3(), OPTIONS).config.items()}
    raw.update(ca={"certificate": ca}, caPrivateKey="[secret]", policyDefaultLocalCluster=False)
    raw["cilium"] = {**raw["cilium"], "version": "1.19.6"}
    raw["clusters"][0]["adopted"]["firstInstalled"] = "1.16"
    upgraded = parse_settings(raw, ["caPrivateKey"])
    refused = version_refusals(None, upgraded)
    assert [i.key for i in refused] == ["mesh:cilium.version"] * 3
    assert "cluster cls-a runs 1.18.3 (mesh:clusters[0].adopted: what it ran when adopted); 1.18.3 -> 1.19.6 does not start from the latest " \
           "1.18 patch" in refused[0].message
    assert cilium_records(None, upgraded)["cls-a"] == {"version": "1.19.6", "firstInstalled": "1.16"}
