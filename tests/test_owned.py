"""The one table of program-owned Helm values (meshcore.owned) and what is derived from it."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from meshcore import effects, owned, versions
from meshcore import values as hv
from meshcore.keypaths import dotted


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


def test_derived_names_follow_the_table() -> None:
    assert hv.OWNERSHIP_REASONS == {k.path: k.reason for k in owned.OWNED}
    assert hv.CREATED_OWNED == (("k8sServiceHost",), ("k8sServicePort",))
    assert set(hv.owned_paths("ipMasqAgent")) - set(hv.owned_paths("none")) == {
        ("enableIPv4Masquerade",), ("bpf", "masquerade"), ("ipMasqAgent", "enabled"),
        ("ipMasqAgent", "config", "nonMasqueradeCIDRs"), ("ipMasqAgent", "config", "masqLinkLocal")}


def test_each_row_says_what_a_change_does_to_a_running_cluster() -> None:
    """The effect column is meshcore.effects' answer for the path: the identity restarts everything at the next
    restart, the peer list and the CA are live Secret data, the apiserver address rolls the pods."""
    by = {dotted(k.path): k.effect for k in owned.OWNED}
    assert by["cluster.id"] == "config only" and by["clustermesh.config"] == "none"
    assert by["tls.ca.cert"] == "none" and by["k8sServiceHost"] == "restart" and by["tls.caBundle"] == "restart"
    for k in owned.OWNED:
        assert k.effect == {effects.ROLLS: "restart", effects.NEXT_RESTART: "config only",
                            effects.LIVE: "none"}[effects.effect(k.path).kind]
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
    for k in owned.OWNED:
        assert f"| `{dotted(k.path)}` | {k.reason} |" in section


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
