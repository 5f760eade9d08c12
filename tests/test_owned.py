"""The one table of program-owned Helm values (meshcore.owned) and what is derived from it."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from meshcore import effects, owned, versions
from meshcore import values as hv
from meshcore.config_parse import parse_settings
from meshcore.errors import MeshConfigError
from meshcore.keypaths import dotted
from tests.conftest import mesh_config


def _leaf_or_owned(values: dict[str, Any], path: tuple) -> Any:
    node: Any = values
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return owned.SKIP
        node = node[part]
    return node


CASES = list(itertools.product(["vip", "createClb"], ["none", "ipMasqAgent"], [False, True], [False, True]))
VERSIONS = ["1.18.3", "1.19.6", "1.20.0"]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("clb, masq, rotation, reads_host", CASES)
def test_the_builder_sets_exactly_the_rows_of_the_table(clb: str, masq: str, rotation: bool, reads_host: bool,
                                                        version: str) -> None:
    """Whatever the cluster and its chart version, every value the program sets is a row of the table for that
    version, every row that applies is set, and no row outside what validation refuses for that cluster is set."""
    stated = rotation  # the stated policy default and the recorded first minor, in half of the cases
    user = {"hubble": {"ui": {"enabled": True}}, "clustermesh": {"apiserver": {"replicas": 2}}}
    v = hv.cluster_values(owned.Inputs(
        base=user, overrides={}, name="cls-a", cluster_id=3, max_connected_clusters=255, hubble_relay=True,
        ca_cert_b64="CERT", ca_key_b64="KEY", subnet_id="subnet-aaaaaaaa", own_address="10.0.0.5",
        vip="10.0.0.5" if clb == "vip" else None, existing_lb_id="lb-1" if clb == "createClb" else None,
        peers=[hv.peer_entry("cls-b", "10.0.0.6", 2379)],
        non_masquerade_cidrs=["172.16.0.0/16"] if masq == "ipMasqAgent" else None,
        ca_bundle="PEM" if rotation else None,
        k8s_service_host="169.254.128.7" if reads_host else None, k8s_service_port=60002 if reads_host else None,
        chart_version=version, policy_default_local_cluster=False if stated else None,
        upgrade_compatibility="1.18" if stated else None))
    refused = {k.path for k in owned.owned_keys(masq, reads_service_host=reads_host,
                                                 chart_minor=versions.minor_of(version))}
    set_rows = {k.path for k in owned.OWNED if _leaf_or_owned(v, k.path) is not owned.SKIP}
    assert set_rows <= refused, "the program sets a key it does not refuse in user values"
    expected = refused - {(*owned.ANNOTATIONS, owned.EXISTING_LB_ANNOTATION if clb == "vip" else
                           owned.EXTENSIVE_PARAMETERS_ANNOTATION)} - (set() if rotation else {("tls", "caBundle")}) \
        - (set() if stated else {("clustermesh", "policyDefaultLocalCluster"), ("upgradeCompatibility",)})
    assert set_rows == expected
    assert v["hubble"]["ui"] == {"enabled": True} and v["clustermesh"]["apiserver"]["replicas"] == 2


def test_masquerade_rows_are_set_and_refused_only_with_ip_masq_agent() -> None:
    """With mesh:masquerade.mode ipMasqAgent the program sets the masquerade values and refuses them in user values
    (with the row's reason); with none it sets none of them and leaves them to the user."""
    masq = {("enableIPv4Masquerade",): True, ("bpf", "masquerade"): True, ("ipMasqAgent", "enabled"): True,
            ("ipMasqAgent", "config", "nonMasqueradeCIDRs"): ["172.16.0.0/24"],
            ("ipMasqAgent", "config", "masqLinkLocal"): True}
    for mode in ("none", "ipMasqAgent"):
        v = hv.cluster_values(owned.Inputs(
            base={}, overrides={}, name="cls-a", cluster_id=3, max_connected_clusters=255, hubble_relay=True,
            ca_cert_b64="CERT", ca_key_b64="KEY", subnet_id="subnet-aaaaaaaa", own_address="10.0.0.5",
            vip="10.0.0.5", existing_lb_id=None, peers=[],
            non_masquerade_cidrs=["172.16.0.0/24"] if mode == "ipMasqAgent" else None))
        assert {p: _leaf_or_owned(v, p) for p in masq} == (masq if mode == "ipMasqAgent"
                                                           else dict.fromkeys(masq, owned.SKIP))
        issues = _refusals(mesh_config(2, masquerade={"mode": mode}, cilium={"values": {"bpf": {"masquerade": True}}}))
        assert issues == ({"mesh:cilium.values.bpf.masquerade": "is set by this program (masquerading); remove it "
                                                                "from values: mesh:masquerade controls it"}
                          if mode == "ipMasqAgent" else {})


def test_the_apiserver_address_is_refused_only_where_the_program_reads_it() -> None:
    """k8sServiceHost is the user's on an adopted cluster, the program's on one it prepares (prepareVpcCni)."""
    values = {"k8sServiceHost": "169.254.128.7", "k8sServicePort": 60002}
    raw = mesh_config(2, cilium={"preset": "tke-vpc-cni"})
    for c in raw["clusters"]:
        c["values"] = values
    assert _refusals(raw) == {}
    raw["clusters"][1]["prepareVpcCni"] = True
    assert sorted(_refusals(raw)) == ["mesh:clusters[1].values.k8sServiceHost",
                                      "mesh:clusters[1].values.k8sServicePort"]


def _refusals(raw: dict[str, Any]) -> dict[str, str]:
    try:
        parse_settings(raw)
    except MeshConfigError as err:
        return {i.key: i.message for i in err.issues}
    return {}


def test_each_row_says_what_a_change_does_to_a_running_cluster() -> None:
    """The effect column is meshcore.effects' answer for the path: the identity restarts everything at the next
    restart, the peer list and the CA are live Secret data, the apiserver address rolls the pods."""
    by = {dotted(k.path): k.effect for k in owned.OWNED}
    assert {p for p, e in by.items() if e == effects.NEXT_RESTART} == {
        "cluster.name", "cluster.id", "clustermesh.policyDefaultLocalCluster", "enableIPv4Masquerade",
        "bpf.masquerade", "upgradeCompatibility"}
    assert {p for p, e in by.items() if e == effects.ROLLS} == {
        "rollOutCiliumPods", "hubble.relay.enabled", "clustermesh.useAPIServer", "clustermesh.maxConnectedClusters",
        "clustermesh.apiserver.kvstoremesh.enabled", "clustermesh.apiserver.tls.authMode", "ipMasqAgent.enabled",
        "tls.caBundle", "k8sServiceHost", "k8sServicePort"}
    assert by["tls.ca.cert"] == by["clustermesh.config"] == by["ipMasqAgent.config.nonMasqueradeCIDRs"] == "none"
    assert set(by.values()) == {"rolls", "next-restart", "none"}
    for k in owned.OWNED:
        assert k.charts and set(k.charts) <= set(versions.ORDER), dotted(k.path)
        assert (k.change == "") == (k.change_note == ""), dotted(k.path)


def test_owner_of_a_leaf_below_an_owned_mapping() -> None:
    assert owned.owner_of(("tls", "caBundle", "content")) is owned.row(("tls", "caBundle"))
    assert owned.owner_of(("clustermesh", "config", "clusters", "cls-b")) is owned.row(("clustermesh", "config"))
    assert owned.owner_of(("hubble", "ui", "enabled")) is None


def test_the_readme_lists_the_table() -> None:
    """README's owned-keys section is the table (python -m tools.schema writes it); every row is in it."""
    from tools import schema

    readme = schema.README.read_text(encoding="utf-8")
    assert schema.readme_text(readme) == readme, "README's owned-keys table is out of date: run python -m tools.schema"
    section = readme.split(schema.OWNED_BEGIN)[1].split(schema.OWNED_END)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert len(rows) == len(owned.OWNED)
    assert ("| `cluster.id` | the Cilium cluster id is the mesh identity | every cluster | mesh:clusters[i].id | "
            "next-restart | 1.18.x, 1.19.x, 1.20.x |") in rows
    assert ("| `clustermesh.apiserver.tls.auto.server.extraIpAddresses` | the server certificate must cover the CLB "
            "VIP (moved in 1.20) | every cluster | — | none | 1.20.x |") in rows


def test_rows_that_depend_on_the_chart_version() -> None:
    """The version table decides the peer form, the TLS method, authMode and where the server IPs go."""
    def build(version: str) -> dict[str, Any]:
        return hv.cluster_values(owned.Inputs(
            base={}, overrides={}, name="cls-a", cluster_id=3, max_connected_clusters=255, hubble_relay=True,
            ca_cert_b64="CERT", ca_key_b64="KEY", subnet_id="subnet-aaaaaaaa", own_address="10.0.0.5",
            vip="10.0.0.5", existing_lb_id=None, peers=[hv.peer_entry("cls-b", "10.0.0.6", 2379)],
            non_masquerade_cidrs=None, chart_version=version))

    v18, v19, v20 = build("1.18.12"), build("1.19.6"), build("1.20.0")
    assert v18["clustermesh"]["config"]["clusters"] == [{"name": "cls-b", "address": "10.0.0.6", "port": 2379}]
    assert v19["clustermesh"]["config"]["clusters"] == {"cls-b": {"address": "10.0.0.6", "port": 2379}}
    assert v20["clustermesh"]["config"]["clusters"] == v19["clustermesh"]["config"]["clusters"]
    tls18, tls19, tls20 = (v["clustermesh"]["apiserver"]["tls"] for v in (v18, v19, v20))
    assert (tls18["auto"]["method"], tls19["auto"]["method"], tls20["auto"]["method"]) == ("helm", "cronJob", "cronJob")
    assert [v["hubble"]["tls"]["auto"]["method"] for v in (v18, v19, v20)] == ["helm", "cronJob", "cronJob"]
    assert "authMode" not in tls18 and tls19["authMode"] == tls20["authMode"] == "migration"
    assert tls18["server"] == tls19["server"] == {"extraIpAddresses": ["10.0.0.5"]}
    assert "server" not in tls20 and tls20["auto"]["server"] == {"extraIpAddresses": ["10.0.0.5"]}
