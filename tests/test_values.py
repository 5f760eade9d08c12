"""Helm values of one cluster (pure): owned keys, peers, masquerade, merge, schema."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from components import sdk_internals as sdk
from meshcore import owned, versions
from meshcore import values as hv
from meshcore.config_parse import parse_settings
from tests.conftest import CHART_DIR, mesh_config
from tools import render

CERT, KEY = "Q0VSVA==", "S0VZ"


def _owned_paths(mode: str, version: str = versions.DEFAULT) -> tuple[tuple[str, ...], ...]:
    """The value paths the program owns on every cluster of ``version`` with masquerade ``mode``."""
    return tuple(k.path for k in owned.owned_keys(mode, chart_minor=versions.minor_of(version)))


def build(**over: Any) -> dict[str, Any]:
    args: dict[str, Any] = dict(
        base={}, overrides={}, name="cls-a", cluster_id=7, max_connected_clusters=255, hubble_relay=True,
        ca_cert_b64=CERT, ca_key_b64=KEY, subnet_id="subnet-aaaaaaaa", own_address="10.0.0.7", vip="10.0.0.7",
        existing_lb_id=None, peers=[hv.peer_entry("cls-b", "10.0.0.8", 2379)], non_masquerade_cidrs=None,
    )
    args.update(over)
    return hv.cluster_values(owned.Inputs(**args))


def test_identity_ca_and_mesh_values() -> None:
    """The release carries its own identity, the shared CA and the mesh settings."""
    v = build()
    assert v["cluster"] == {"name": "cls-a", "id": 7}
    assert v["tls"]["ca"] == {"cert": CERT, "key": KEY}
    assert v["clustermesh"]["useAPIServer"] is True
    assert v["clustermesh"]["maxConnectedClusters"] == 255
    assert v["clustermesh"]["config"] == {"enabled": True, "clusters": [{"name": "cls-b", "address": "10.0.0.8", "port": 2379}]}
    assert v["clustermesh"]["apiserver"]["kvstoremesh"]["enabled"] is True
    assert v["clustermesh"]["apiserver"]["tls"]["auto"] == {"enabled": True, "method": "helm"}
    assert v["clustermesh"]["apiserver"]["tls"]["server"]["extraIpAddresses"] == ["10.0.0.7"]
    assert v["hubble"]["tls"]["auto"]["method"] == "helm"
    assert v["hubble"]["relay"]["enabled"] is True
    assert v["rollOutCiliumPods"] is False
    assert "ipMasqAgent" not in v and "bpf" not in v and "enableIPv4Masquerade" not in v


def test_vip_mode_requests_the_vip_on_an_internal_clb() -> None:
    """vip mode: internal-subnet annotation plus the VIP request, no existing-LB annotation."""
    svc = build()["clustermesh"]["apiserver"]["service"]
    assert svc["type"] == "LoadBalancer"
    assert svc["annotations"] == {
        hv.INTERNAL_SUBNET_ANNOTATION: "subnet-aaaaaaaa",
        hv.EXTENSIVE_PARAMETERS_ANNOTATION: '{"Vip":"10.0.0.7"}',
    }
    assert json.loads(svc["annotations"][hv.EXTENSIVE_PARAMETERS_ANNOTATION]) == {"Vip": "10.0.0.7"}


def test_create_clb_mode_attaches_the_created_clb() -> None:
    """createClb mode: the Service is attached to the program's CLB and asks for no VIP."""
    svc = build(vip=None, existing_lb_id="lb-12345678")["clustermesh"]["apiserver"]["service"]
    assert svc["annotations"] == {
        hv.INTERNAL_SUBNET_ANNOTATION: "subnet-aaaaaaaa",
        hv.EXISTING_LB_ANNOTATION: "lb-12345678",
    }


def test_masquerade_values_list_every_pod_cidr() -> None:
    """ipMasqAgent mode: eBPF masquerade with every cluster's pod CIDRs not masqueraded."""
    cidrs = hv.non_masquerade_cidrs([["172.16.0.0/16"], ["172.17.0.0/16", "172.16.0.0/16"]], ["10.0.0.0/8"])
    assert cidrs == ["172.16.0.0/16", "172.17.0.0/16", "10.0.0.0/8"]
    v = build(non_masquerade_cidrs=cidrs)
    assert v["enableIPv4Masquerade"] is True and v["bpf"]["masquerade"] is True
    assert v["ipMasqAgent"] == {"enabled": True, "config": {"nonMasqueradeCIDRs": cidrs, "masqLinkLocal": True}}


def test_ca_rotation_trusts_the_bundle(chart_schema: Any) -> None:
    """During a CA rotation every cluster trusts the bundle of old and new CA; otherwise no bundle."""
    assert "caBundle" not in build()["tls"]
    v = build(ca_bundle="OLD-PEM\nNEW-PEM\n")
    assert v["tls"]["caBundle"] == {"enabled": True, "content": "OLD-PEM\nNEW-PEM\n"}
    assert chart_schema(v) == []


def test_user_values_merge_under_owned_values() -> None:
    """Base, then per-cluster overrides, then the program's keys; sibling keys survive."""
    base = {"operator": {"replicas": 2, "rollOutPods": True}, "clustermesh": {"apiserver": {"replicas": 3}}}
    over = {"operator": {"replicas": 1}, "clustermesh": {"apiserver": {"service": {"annotations": {"a/b": "c"}}}}}
    v = build(base=base, overrides=over)
    assert v["operator"] == {"replicas": 1, "rollOutPods": True}
    assert v["clustermesh"]["apiserver"]["replicas"] == 3
    assert v["clustermesh"]["apiserver"]["service"]["annotations"]["a/b"] == "c"
    assert hv.INTERNAL_SUBNET_ANNOTATION in v["clustermesh"]["apiserver"]["service"]["annotations"]
    assert base == {"operator": {"replicas": 2, "rollOutPods": True}, "clustermesh": {"apiserver": {"replicas": 3}}}


def test_owned_conflicts_name_the_user_path() -> None:
    """A conflict is reported at the path the user wrote (a leaf, or a replaced parent)."""
    owned = _owned_paths("none")
    assert hv.owned_conflicts({"cluster": {"name": "x", "foo": 1}}, owned) == [(("cluster", "name"), ("cluster", "name"))]
    assert hv.owned_conflicts({"cluster": None}, owned) == [(("cluster",), ("cluster", "name"))]
    assert hv.owned_conflicts({"clustermesh": {"config": {"clusters": []}}}, owned) == [
        (("clustermesh", "config", "clusters"), ("clustermesh", "config"))
    ]
    assert hv.owned_conflicts({"cluster": {}}, owned) == []
    assert hv.owned_conflicts({"ipMasqAgent": {"enabled": True}}, owned) == []
    assert hv.owned_conflicts({"ipMasqAgent": {"enabled": True}}, _owned_paths("ipMasqAgent")) != []


@pytest.mark.parametrize("version", ["1.18.3", "1.19.6", "1.20.0"])
@pytest.mark.parametrize("mode", ["none", "ipMasqAgent"])
def test_every_owned_path_is_set(mode: str, version: str) -> None:
    """The program sets everything it claims to own on each chart version (so refusing it in user values is
    right), and nothing a version does not own."""
    v = build(non_masquerade_cidrs=["172.16.0.0/16"] if mode == "ipMasqAgent" else None, chart_version=version,
              policy_default_local_cluster=False, upgrade_compatibility="1.18")
    others = {p for other in ("1.18.3", "1.19.6", "1.20.0") for p in _owned_paths(mode, other)}
    for path in others - set(_owned_paths(mode, version)):
        node = v
        for part in path[:-1]:
            node = node.get(part, {})
        assert path[-1] not in node, f"{path} is set on {version}, which does not own it"
    for path in _owned_paths(mode, version):
        if path[-1] == hv.EXISTING_LB_ANNOTATION or path == ("tls", "caBundle"):
            continue  # createClb mode / CA rotation only (tested separately)
        node: Any = v
        for part in path:
            assert isinstance(node, dict) and part in node, f"{path} not set"
            node = node[part]


def test_owned_paths_exist_in_the_chart(chart_values: dict) -> None:
    """Every owned value path is a real 1.18.3 chart value (catches a typo that Helm would ignore)."""
    free_form = {("clustermesh", "apiserver", "service", "annotations")}
    # values.yaml documents ipMasqAgent.config only in a comment ("# config:" then "#   <key>: ...")
    commented_in_chart = {("ipMasqAgent", "config", "nonMasqueradeCIDRs"), ("ipMasqAgent", "config", "masqLinkLocal")}
    text = (CHART_DIR / "values.yaml").read_text()
    for path in commented_in_chart:
        assert re.search(rf"^# {path[1]}:\n(#   .*\n)*#   {path[2]}: ", text, re.M), f"{'.'.join(path)} is not documented"
    for path in _owned_paths("ipMasqAgent"):
        if path in commented_in_chart or path[:-1] in free_form:
            continue
        node: Any = chart_values
        for part in path:
            assert isinstance(node, dict) and part in node, f"{'.'.join(path)} is not a value of the chart"
            node = node[part]


def test_values_of_valid_configs_match_the_chart_schema(chart_schema: Any) -> None:
    """The generated documents (both masquerade modes, both CLB modes) validate against values.schema.json."""
    settings = parse_settings(mesh_config(3, masquerade={"mode": "ipMasqAgent", "extraNonMasqueradeCidrs": ["10.0.0.0/8"]}))
    for c in settings.clusters:
        for vip, lb in ((str(c.apiserver.vip), None), (None, "lb-abcdefgh")):
            v = build(name=c.name, cluster_id=c.id, vip=vip, existing_lb_id=lb, non_masquerade_cidrs=["172.16.0.0/16"],
                      peers=[hv.peer_entry(p, "10.0.0.1", 2379) for p in settings.peers[c.name]])
            assert chart_schema(v) == []
    broken = build()
    broken["cluster"]["id"] = "7"
    assert chart_schema(broken), "the schema check must be able to fail"


def provider_merge(text: str, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` merged over the values file ``text`` as the kubernetes provider's Check does
    (the plan's emulation of it, tools/render.py)."""
    asset = {sdk.SIG_KEY: sdk.ASSET_SIG, "text": text}
    return render.checked_release_inputs({"values": values, "valueYamlFiles": [asset]})["values"]


@pytest.mark.parametrize("masquerade", [None, ["172.16.0.0/16", "172.17.0.0/16"]])
def test_mesh_lists_move_to_a_values_file_that_merges_back(masquerade: Any, chart_schema: Any) -> None:
    """The lists that grow with the mesh go to a file; merging values over it gives the same values."""
    peers = [hv.peer_entry(f"cls-{i}", f"10.0.{i}.1", 2379) for i in range(3)]
    v = build(peers=peers, non_masquerade_cidrs=masquerade)
    before = json.dumps(v, sort_keys=True)
    split = hv.split_mesh_lists(v)
    assert split is not None
    rest, text = split
    assert json.dumps(v, sort_keys=True) == before, "the values passed in are not changed"
    doc = json.loads(text)
    assert yaml.safe_load(text) == doc, "the file is JSON that YAML reads as the same data"
    assert doc["clustermesh"]["config"]["clusters"] == peers
    assert "clusters" not in rest["clustermesh"]["config"] and rest["clustermesh"]["config"]["enabled"] is True
    if masquerade:
        assert doc["ipMasqAgent"] == {"config": {"nonMasqueradeCIDRs": masquerade}}
        assert rest["ipMasqAgent"] == {"enabled": True, "config": {"masqLinkLocal": True}}
    else:
        assert set(doc) == {"clustermesh"} and "ipMasqAgent" not in rest
    assert provider_merge(text, rest) == v
    assert chart_schema(doc) == [] and chart_schema(rest) == []


def test_mesh_lists_with_a_leaf_known_only_after_apply_stay_in_values() -> None:
    """A peer address that is an Output (a CLB created in the same run) keeps the lists in values."""
    class Unknown:  # stands for a pulumi.Output: anything that is not JSON data
        pass

    v = build(peers=[hv.peer_entry("cls-b", "10.0.0.8", 2379), hv.peer_entry("cls-c", Unknown(), 2379)])
    assert hv.split_mesh_lists(v) is None
    split = hv.split_mesh_lists(build(peers=[]))
    assert split is not None and json.loads(split[1]) == {"clustermesh": {"config": {"clusters": []}}}, \
        "a cluster without peers gets an empty list from its file"


def test_user_ip_masq_agent_config_round_trips_in_mode_none() -> None:
    """Masquerade mode none: a user's own ipMasqAgent.config (CIDRs included) comes back whole."""
    user = {"ipMasqAgent": {"enabled": True, "config": {"nonMasqueradeCIDRs": ["10.0.0.0/8"], "masqLinkLocal": True}}}
    v = build(overrides=user)
    split = hv.split_mesh_lists(v)
    assert split is not None
    rest, text = split
    assert rest["ipMasqAgent"] == {"enabled": True, "config": {"masqLinkLocal": True}}
    assert provider_merge(text, rest) == v
    assert v["ipMasqAgent"] == user["ipMasqAgent"]


def test_values_file_keeps_non_ascii_text() -> None:
    """Text outside ASCII (even outside the BMP) is written as itself and read back equal."""
    doc = {"clustermesh": {"config": {"clusters": [{"name": "集群-𝔸", "address": "10.0.0.1", "port": 2379}]}}}
    text = hv.mesh_lists_file(doc)
    assert "集群-𝔸" in text and yaml.safe_load(text) == doc == json.loads(text)


def test_values_file_escapes_what_yaml_would_not_read_back() -> None:
    """DEL, C1 controls (NEL among them), line and paragraph separators, a lone surrogate,
    U+FFFF: escaped, so a YAML parser reads the same text and the file encodes as UTF-8."""
    odd = ["del\x7f", "nel\x85", "c1\x9f", "ls\u2028ps\u2029", "lone\ud800", "nonchar\uffff"]
    doc = {"ipMasqAgent": {"config": {"nonMasqueradeCIDRs": odd}}}
    text = hv.mesh_lists_file(doc)
    assert "\\u007f" in text and "\\u0085" in text and "\\u2028" in text and "\\ud800" in text
    text.encode("utf-8")
    assert yaml.safe_load(text) == doc == json.loads(text)
