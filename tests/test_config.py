"""The stack config contract: defaults, and one test per validation rule."""

from __future__ import annotations

import copy
import ipaddress
import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from meshcore.config import decode_config
from meshcore.config_parse import parse_settings
from meshcore.errors import MeshConfigError
from tests.conftest import committed_stacks, mesh_config, to_pulumi_config


def issues_of(raw: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(MeshConfigError) as exc:
        parse_settings(raw)
    return {i.key: i.message for i in exc.value.issues}


def test_defaults_follow_the_contract() -> None:
    """Unset keys take the documented defaults."""
    s = parse_settings(mesh_config(2))
    assert s.cilium.version == "1.18.3"
    assert s.cilium.repository == "https://helm.cilium.io/"
    assert s.cilium.values == {}
    assert s.max_connected_clusters == 255
    assert s.masquerade.mode == "none" and s.masquerade.extra_non_masquerade_cidrs == ()
    assert s.hubble_relay is True
    assert s.full_mesh is True
    assert s.kubeconfig is None
    c = s.clusters[0]
    assert c.context == c.name == "cls-00000001"
    assert c.apiserver.port == 2379
    assert c.apiserver.vip == ipaddress.IPv4Address("10.0.1.100")
    assert c.pod_cidrs == (ipaddress.IPv4Network("172.16.1.0/24"),)


def test_decode_config_reads_what_pulumi_passes() -> None:
    """Pulumi passes every value as a string: JSON for structures, numbers and booleans."""
    raw = mesh_config(2, maxConnectedClusters=511, hubbleRelay=False, topology="full", kubeconfig="~/k.yaml")
    decoded = decode_config({**to_pulumi_config(raw), "tencentcloud:region": "ap-guangzhou"})
    assert decoded == raw
    assert decode_config({"mesh:kubeconfig": "123"}) == {"kubeconfig": "123"}


def test_committed_stacks_are_valid() -> None:
    """A typo in a committed stack file fails CI, not `pulumi up`."""
    files = committed_stacks()
    assert {f.name for f in files} >= {"Pulumi.dev.yaml", "Pulumi.prod.yaml"}
    parsed = {}
    for f in files:
        config = yaml.safe_load(f.read_text())["config"]
        strings = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
        parsed[f.name] = parse_settings(decode_config(strings))
    assert len(parsed["Pulumi.dev.yaml"].clusters) == 2
    prod = parsed["Pulumi.prod.yaml"]
    assert len(prod.clusters) == 3 and len({c.region for c in prod.clusters}) == 2


def _set(path: str, value: Any) -> Callable[[dict], None]:
    """A mutation setting a dotted path (list indexes as numbers) in the raw config."""

    def apply(raw: dict) -> None:
        parts = [int(p) if p.isdigit() else p for p in path.split(".")]
        node: Any = raw
        for p in parts[:-1]:
            node = node[p]
        if value is _DELETE:
            del node[parts[-1]]
        else:
            node[parts[-1]] = copy.deepcopy(value)

    return apply


_DELETE = object()

# (mutation on a valid 3-cluster config, the key the error must name, a fragment of its message)
RULES: list[tuple[str, Callable[[dict], None], str, str]] = [
    ("unknown top-level key", _set("hubbleRelais", True), "mesh:hubbleRelais", "did you mean 'mesh:hubbleRelay'"),
    ("unknown cluster key", _set("clusters.1.podCidr", ["10.0.0.0/8"]), "mesh:clusters[1].podCidr", "did you mean 'podCidrs'"),
    ("unknown apiserver key", _set("clusters.0.apiserver.vpi", "1.2.3.4"), "mesh:clusters[0].apiserver.vpi", "did you mean 'vip'"),
    ("unknown cilium key", _set("cilium", {"verison": "1.18.3"}), "mesh:cilium.verison", "did you mean 'version'"),
    ("unknown masquerade key", _set("masquerade", {"mode": "none", "extra": []}), "mesh:masquerade.extra", "unknown key"),
    ("name too long", _set("clusters.1.name", "cls-" + "a" * 29), "mesh:clusters[1].name", "at most 32"),
    ("name with uppercase", _set("clusters.1.name", "Cls-ABC"), "mesh:clusters[1].name", "lowercase"),
    ("name ending in dash", _set("clusters.1.name", "cls-abc-"), "mesh:clusters[1].name", "ending with a letter or digit"),
    ("name default", _set("clusters.1.name", "default"), "mesh:clusters[1].name", "reserved"),
    ("name missing", _set("clusters.1.name", _DELETE), "mesh:clusters[1].name", "is required"),
    ("duplicate name", _set("clusters.2.name", "cls-00000001"), "mesh:clusters[2].name", "already used by mesh:clusters[0]"),
    ("duplicate id", _set("clusters.2.id", 1), "mesh:clusters[2].id", "lowest free one is 3"),
    ("id zero", _set("clusters.1.id", 0), "mesh:clusters[1].id", "1..255"),
    ("id above 255", _set("clusters.1.id", 256), "mesh:clusters[1].id", "out of range"),
    ("id a string", _set("clusters.1.id", "2"), "mesh:clusters[1].id", "must be an integer"),
    ("id a boolean", _set("clusters.1.id", True), "mesh:clusters[1].id", "must be an integer"),
    ("maxConnectedClusters 300", _set("maxConnectedClusters", 300), "mesh:maxConnectedClusters", "255 or 511"),
    ("duplicate context", _set("clusters.2.context", "cls-00000001"), "mesh:clusters[2].context", "own kubeconfig context"),
    ("duplicate vip", _set("clusters.2.apiserver.vip", "10.0.1.100"), "mesh:clusters[2].apiserver.vip", "own CLB VIP"),
    ("subnet id malformed", _set("clusters.0.apiserver.subnetId", "subnet-ABC"), "mesh:clusters[0].apiserver.subnetId", "8 lowercase"),
    ("subnet id missing", _set("clusters.0.apiserver.subnetId", _DELETE), "mesh:clusters[0].apiserver.subnetId", "is required"),
    ("pod cidr invalid", _set("clusters.0.podCidrs", ["172.16.0.0/33"]), "mesh:clusters[0].podCidrs[0]", "not a valid IPv4 CIDR"),
    ("pod cidr host bits", _set("clusters.0.podCidrs", ["172.16.1.7/24"]), "mesh:clusters[0].podCidrs[0]", "172.16.1.0/24"),
    ("pod cidr ipv6", _set("clusters.0.podCidrs", ["fd00::/64"]), "mesh:clusters[0].podCidrs[0]", "IPv6"),
    ("pod cidrs empty", _set("clusters.0.podCidrs", []), "mesh:clusters[0].podCidrs", "is an empty list; list the CIDRs"),
    ("pod cidrs overlap across", _set("clusters.2.podCidrs", ["172.16.0.0/16"]), "mesh:clusters[2].podCidrs[0]", "overlaps"),
    ("pod cidrs overlap within", _set("clusters.0.podCidrs", ["172.16.1.0/24", "172.16.1.128/25"]), "mesh:clusters[0].podCidrs[1]", "another pod CIDR of this cluster"),
    ("vip invalid", _set("clusters.0.apiserver.vip", "10.0.1.300"), "mesh:clusters[0].apiserver.vip", "not a valid IPv4 address"),
    ("vip inside a pod cidr", _set("clusters.0.apiserver.vip", "172.16.2.9"), "mesh:clusters[0].apiserver.vip", "inside pod CIDR 172.16.2.0/24"),
    ("vip and createClb", _set("clusters.0.apiserver.createClb", True), "mesh:clusters[0].apiserver", "not both"),
    ("neither vip nor createClb", _set("clusters.0.apiserver.vip", _DELETE), "mesh:clusters[0].apiserver", "needs vip"),
    ("createClb without vpcId", _set("clusters.0.apiserver", {"subnetId": "subnet-00000001", "createClb": True}), "mesh:clusters[0].apiserver.vpcId", "is required with createClb"),
    ("port out of range", _set("clusters.0.apiserver.port", 70000), "mesh:clusters[0].apiserver.port", "1..65535"),
    ("port other than 2379", _set("clusters.0.apiserver.port", 32379), "mesh:clusters[0].apiserver.port", "2379 only"),
    ("region malformed", _set("clusters.0.region", "Guangzhou"), "mesh:clusters[0].region", "not a Tencent Cloud region"),
    ("topology unknown name", _set("topology", {"peers": {"cls-00000001": ["cls-00000002", "cls-nothere"]}}), "mesh:topology.peers.cls-00000001[1]", "not in mesh:clusters"),
    ("topology self peering", _set("topology", {"peers": {"cls-00000001": ["cls-00000001", "cls-00000002", "cls-00000003"]}}), "mesh:topology.peers.cls-00000001[0]", "cannot peer with itself"),
    ("topology unknown source", _set("topology", {"peers": {"cls-nothere": ["cls-00000001"], "cls-00000002": ["cls-00000003", "cls-00000001"]}}), "mesh:topology.peers.cls-nothere", "not in mesh:clusters"),
    ("topology isolated cluster", _set("topology", {"peers": {"cls-00000001": ["cls-00000002"]}}), "mesh:topology.peers.cls-00000003", "has no peer"),
    ("topology unknown word", _set("topology", "star"), "mesh:topology", "not a topology"),
    ("owned cluster.name in base values", _set("cilium", {"values": {"cluster": {"name": "x"}}}), "mesh:cilium.values.cluster.name", "set mesh:clusters[i].name"),
    ("owned cluster.id per cluster", _set("clusters.1.values", {"cluster": {"id": 9}}), "mesh:clusters[1].values.cluster.id", "is set by this program"),
    ("owned tls.ca", _set("clusters.1.values", {"tls": {"ca": {"cert": "x", "key": "y"}}}), "mesh:clusters[1].values.tls.ca.cert", "shared mesh CA"),
    ("owned peer list", _set("cilium", {"values": {"clustermesh": {"config": {"clusters": []}}}}), "mesh:cilium.values.clustermesh.config.clusters", "mesh:topology"),
    ("owned useAPIServer", _set("cilium", {"values": {"clustermesh": {"useAPIServer": False}}}), "mesh:cilium.values.clustermesh.useAPIServer", "is set by this program"),
    ("owned subnet annotation", _set("clusters.0.values", {"clustermesh": {"apiserver": {"service": {"annotations": {"service.kubernetes.io/qcloud-loadbalancer-internal-subnetid": "subnet-x"}}}}}),
     'mesh:clusters[0].values.clustermesh.apiserver.service.annotations["service.kubernetes.io/qcloud-loadbalancer-internal-subnetid"]', "internal CLB"),
    ("owned parent replaced", _set("cilium", {"values": {"cluster": "cls-x"}}), "mesh:cilium.values.cluster", "is set by this program"),
    ("owned tls method", _set("cilium", {"values": {"clustermesh": {"apiserver": {"tls": {"auto": {"method": "cronJob"}}}}}}), "mesh:cilium.values.clustermesh.apiserver.tls.auto.method", "deadlocks"),
    ("owned rollOutCiliumPods", _set("cilium", {"values": {"rollOutCiliumPods": True}}), "mesh:cilium.values.rollOutCiliumPods", "never restart agents"),
    ("owned masquerade CIDRs", lambda raw: raw.update(masquerade={"mode": "ipMasqAgent"}, cilium={"values": {"ipMasqAgent": {"config": {"nonMasqueradeCIDRs": ["10.0.0.0/8"]}}}}),
     "mesh:cilium.values.ipMasqAgent.config.nonMasqueradeCIDRs", "mesh:masquerade"),
    ("chart version 1.21", _set("cilium", {"version": "1.21.0"}), "mesh:cilium.version", "1.18.x, 1.19.x, 1.20.x"),
    ("1.19 without the policy default", _set("cilium", {"version": "1.19.6"}), "mesh:policyDefaultLocalCluster",
     "cilium clustermesh inspect-policy-default-local-cluster"),
    ("policy default not a boolean", _set("policyDefaultLocalCluster", "no"), "mesh:policyDefaultLocalCluster",
     "true or false"),
    ("a wave two minors ahead", lambda raw: raw.update(policyDefaultLocalCluster=False) or raw["clusters"][2].update(
        cilium={"version": "1.20.0"}), "mesh:clusters[2].cilium.version", "at most one minor apart"),
    ("the mesh two minors ahead of a cluster", lambda raw: raw.update(policyDefaultLocalCluster=False,
     cilium={"version": "1.20.0"}) or raw["clusters"][0].update(cilium={"version": "1.18.12"}), "mesh:cilium.version",
     "upgrade every cluster to 1.19.6 first"),
    ("cluster chart version 1.17", _set("clusters.1.cilium", {"version": "1.17.2"}), "mesh:clusters[1].cilium.version",
     "not supported"),
    ("cluster cilium unknown key", _set("clusters.1.cilium", {"version": "1.18.12", "values": {}}),
     "mesh:clusters[1].cilium.values", "unknown key"),
    ("cluster chart without a local mesh chart", _set("clusters.1.cilium", {"version": "1.18.12", "chart": "./c.tgz"}),
     "mesh:clusters[1].cilium.chart", "only used with mesh:cilium.chart"),
    ("a local mesh chart and another version", lambda raw: raw.update(cilium={"chart": "./cilium-1.18.3.tgz"})
     or raw["clusters"][1].update(cilium={"version": "1.18.12"}), "mesh:clusters[1].cilium.chart", "is required"),
    ("1.20 MCS-API flag", lambda raw: raw.update(policyDefaultLocalCluster=True, cilium={"version": "1.20.0", "values": {
        "clustermesh": {"enableMCSAPISupport": True}}}), "mesh:cilium.values.clustermesh.enableMCSAPISupport",
     "set clustermesh.mcsapi.enabled instead"),
    ("1.19 MCS-API flag", lambda raw: raw.update(policyDefaultLocalCluster=True) or raw["clusters"][0].update(
        cilium={"version": "1.19.6"}, values={"clustermesh": {"enableMCSAPISupport": True}}),
     "mesh:clusters[0].values.clustermesh.enableMCSAPISupport", "deprecated in chart 1.19"),
    ("1.19 certificate as a value", lambda raw: raw.update(policyDefaultLocalCluster=True, cilium={
        "version": "1.19.6", "values": {"clustermesh": {"apiserver": {"tls": {"admin": {"cert": "x"}}}}}}),
     "mesh:cilium.values.clustermesh.apiserver.tls.admin.cert", "mesh:ca.certificate"),
    ("1.20 server certificate values moved", lambda raw: raw.update(policyDefaultLocalCluster=True, cilium={
        "version": "1.20.0", "values": {"clustermesh": {"apiserver": {"tls": {"server": {"extraDnsNames": ["a"]}}}}}}),
     "mesh:cilium.values.clustermesh.apiserver.tls.server.extraDnsNames", "tls.auto.server.extraDnsNames"),
    ("cacheTTL on 1.18", _set("clusters.2.values", {"clustermesh": {"cacheTTL": "5m"}}),
     "mesh:clusters[2].values.clustermesh.cacheTTL", "only exists from chart 1.19"),
    ("1.20 global namespace default on 1.19", lambda raw: raw.update(policyDefaultLocalCluster=True, cilium={
        "version": "1.19.6", "values": {"clustermesh": {"defaultGlobalNamespace": False}}}),
     "mesh:cilium.values.clustermesh.defaultGlobalNamespace", "only exists from chart 1.20"),
    ("base value a 1.18 member refuses", lambda raw: raw.update(policyDefaultLocalCluster=True, cilium={"values": {
        "clustermesh": {"cacheTTL": "5m"}}}) or raw["clusters"][0].update(cilium={"version": "1.19.6"}),
     "mesh:cilium.values.clustermesh.cacheTTL", "(chart 1.18.3)"),
    ("owned authMode on 1.19", lambda raw: raw.update(policyDefaultLocalCluster=True, cilium={"version": "1.19.6",
     "values": {"clustermesh": {"apiserver": {"tls": {"authMode": "cluster"}}}}}),
     "mesh:cilium.values.clustermesh.apiserver.tls.authMode", "mixed N-1/N"),
    ("owned policy default", _set("clusters.0.values", {"clustermesh": {"policyDefaultLocalCluster": True}}),
     "mesh:clusters[0].values.clustermesh.policyDefaultLocalCluster", "set mesh:policyDefaultLocalCluster"),
    ("owned upgradeCompatibility", _set("cilium", {"values": {"upgradeCompatibility": "1.17"}}),
     "mesh:cilium.values.upgradeCompatibility", "clusters.<name>.cilium.firstInstalled"),
    ("chart version as number", _set("cilium", {"version": 1.18}), "mesh:cilium.version", "not supported"),
    ("repository not a URL", _set("cilium", {"repository": "helm.cilium.io"}), "mesh:cilium.repository", "not a chart repository URL"),
    ("masquerade mode unknown", _set("masquerade", {"mode": "snat"}), "mesh:masquerade.mode", "none, ipMasqAgent"),
    ("extra cidrs without ipMasqAgent", _set("masquerade", {"extraNonMasqueradeCidrs": ["10.0.0.0/8"]}), "mesh:masquerade.extraNonMasqueradeCidrs", "only used with mode: ipMasqAgent"),
    ("extra cidr invalid", _set("masquerade", {"mode": "ipMasqAgent", "extraNonMasqueradeCidrs": ["10.0.0.1/8"]}), "mesh:masquerade.extraNonMasqueradeCidrs[0]", "host bits set"),
    ("hubbleRelay not a boolean", _set("hubbleRelay", "yes"), "mesh:hubbleRelay", "true or false"),
    ("clusters missing", _set("clusters", _DELETE), "mesh:clusters", "is required"),
    ("clusters not a list", _set("clusters", {"name": "x"}), "mesh:clusters", "non-empty list"),
    ("values not a mapping", _set("clusters.0.values", ["x"]), "mesh:clusters[0].values", "mapping of Helm values"),
    ("native routing would SNAT", _set("cilium", {"values": {"routingMode": "native", "ipv4NativeRoutingCIDR": "172.16.1.0/24"}}),
     "mesh:masquerade.mode", "would be SNATed"),
]


@pytest.mark.parametrize("rule, mutate, key, fragment", RULES, ids=[r[0] for r in RULES])
def test_each_rule_names_its_key(rule: str, mutate: Callable[[dict], None], key: str, fragment: str) -> None:
    """Every rule refuses its bad input with a line naming the key and saying what to do."""
    raw = mesh_config(3)
    parse_settings(copy.deepcopy(raw))  # the base is valid
    mutate(raw)
    issues = issues_of(raw)
    assert key in issues, f"{rule}: no issue for {key}; got {issues}"
    if fragment:
        assert fragment in issues[key], f"{rule}: {issues[key]!r} lacks {fragment!r}"


def test_all_problems_are_reported_at_once() -> None:
    """One run lists every problem, in different places of the config, each once."""
    raw = mesh_config(3, maxConnectedClusters=300, hubbleRelais=True)
    raw["clusters"][1]["id"] = 1
    raw["clusters"][2]["podCidrs"] = ["172.16.1.0/25"]
    raw["clusters"][0]["apiserver"]["subnetId"] = "sub"
    raw["cilium"] = {"values": {"cluster": {"id": 3}}}
    with pytest.raises(MeshConfigError) as exc:
        parse_settings(raw)
    keys = [i.key for i in exc.value.issues]
    assert set(keys) == {
        "mesh:hubbleRelais",
        "mesh:maxConnectedClusters",
        "mesh:clusters[1].id",
        "mesh:clusters[2].podCidrs[0]",
        "mesh:clusters[0].apiserver.subnetId",
        "mesh:cilium.values.cluster.id",
    }, keys
    assert len(keys) == len(set(keys))
    assert all(line.startswith("error: mesh:") and "\n" not in line for line in exc.value.lines())


def test_511_clusters_need_max_connected_511() -> None:
    """Ids above 255 need maxConnectedClusters 511; 600 clusters are refused either way."""
    raw = mesh_config(300)
    issues = issues_of(raw)
    assert "mesh:clusters" in issues and "maxConnectedClusters: 511" in issues["mesh:clusters"]
    assert len(parse_settings(mesh_config(300, maxConnectedClusters=511)).clusters) == 300
    too_many = issues_of(mesh_config(600, maxConnectedClusters=511))
    assert "split the fleet" in too_many["mesh:clusters"]


def test_secure_mesh_keys_are_refused() -> None:
    """A secret in mesh:* would be unwrapped into plain values; it is refused, naming the key."""
    issues = {i.key: i.message for i in pytest.raises(MeshConfigError, parse_settings, mesh_config(2), ["cilium"]).value.issues}
    assert "mesh:cilium" in issues and "secure value" in issues["mesh:cilium"]


def test_hubble_relay_needs_hubble() -> None:
    """hubbleRelay on with Hubble disabled in values is refused; off is accepted."""
    raw = mesh_config(2, cilium={"values": {"hubble": {"enabled": False}}})
    assert "hubble.enabled: false" in issues_of(raw)["mesh:hubbleRelay"]
    parse_settings({**raw, "hubbleRelay": False})


def test_masquerade_safety_accepts_covering_native_cidr() -> None:
    """Native routing is fine when masquerade is off or the native CIDR covers every pod CIDR."""
    for values in (
        {"routingMode": "native", "enableIPv4Masquerade": False},
        {"routingMode": "native", "ipv4NativeRoutingCIDR": "172.16.0.0/12"},
        {"routingMode": "tunnel"},
    ):
        parse_settings(mesh_config(3, cilium={"values": values}))
    parse_settings(mesh_config(3, cilium={"values": {"routingMode": "native"}}, masquerade={"mode": "ipMasqAgent"}))


def test_unowned_annotations_and_values_are_accepted() -> None:
    """Users keep every value the program does not own, including other Service annotations."""
    values = {
        "clustermesh": {"apiserver": {"replicas": 2, "service": {"annotations": {"example.com/team": "net"}}}},
        "hubble": {"ui": {"enabled": True}},
    }
    s = parse_settings(mesh_config(2, cilium={"values": values}))
    assert s.cilium.values == values


VPC_CNI = {"ipam": {"mode": "delegated-plugin"}}


@pytest.mark.parametrize("where", ["preset", "base values", "cluster values"])
def test_a_vip_inside_a_vpc_cni_clusters_pod_cidr_is_accepted(where: str) -> None:
    """VPC-CNI: pod CIDRs are ENI subnets of the VPC, which allocates pod IPs and CLB VIPs from
    the same subnets without conflict (#11.14); however the network mode is set."""
    raw = mesh_config(2)
    raw["clusters"][0]["podCidrs"] = ["10.0.0.0/20"]  # the ENI subnet holding cluster 1's VIP 10.0.1.100
    raw["clusters"][1]["apiserver"]["vip"] = "10.0.2.100"  # in cluster 0's ENI subnet too
    if where == "preset":
        raw["cilium"] = {"preset": "tke-vpc-cni"}
        for c in raw["clusters"]:
            c["values"] = {"k8sServiceHost": "169.254.128.10"}
    elif where == "base values":
        raw["cilium"] = {"values": VPC_CNI}
    else:
        raw["clusters"][0]["values"] = VPC_CNI
    s = parse_settings(raw)
    assert [str(c.apiserver.vip) for c in s.clusters] == ["10.0.1.100", "10.0.2.100"]


def test_a_vip_inside_an_overlay_clusters_pod_cidr_is_refused_in_a_mixed_mesh() -> None:
    """The rule goes by the network mode of the cluster whose pod CIDR holds the VIP: an overlay
    cluster's range is its own, even when the VIP's cluster runs VPC-CNI."""
    raw = mesh_config(2)
    raw["clusters"][0]["podCidrs"] = ["10.0.0.0/20"]   # overlay (chart default IPAM)
    raw["clusters"][1]["values"] = VPC_CNI             # VPC-CNI, its VIP inside cluster 0's overlay range
    raw["clusters"][1]["apiserver"]["vip"] = "10.0.2.100"
    msgs = issues_of(raw)
    assert set(msgs) == {"mesh:clusters[0].apiserver.vip", "mesh:clusters[1].apiserver.vip"}
    assert "inside pod CIDR 10.0.0.0/20 of mesh:clusters[0]" in msgs["mesh:clusters[1].apiserver.vip"]
    assert "not from the VPC" in msgs["mesh:clusters[1].apiserver.vip"]
    raw["clusters"][0]["values"] = VPC_CNI             # both VPC-CNI: nothing to refuse
    assert len(parse_settings(raw).clusters) == 2
