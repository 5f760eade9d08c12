"""TKE clusters as code: created Cilium-ready, or adopted by cluster ID through the TKE API.

The real program on the mock engine (``tests.mockcloud.ComputingMocks`` computes the Tencent
outputs and answers the ``get_clusters`` invoke), plus the offline plan of the mixed stack.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import logging
from pathlib import Path
from typing import Any

import pytest

from components import tokens
from components.cluster import (
    CNI_CONFIG_NAME,
    DISABLE_LABEL_KEY,
    DISABLE_LABEL_VALUE,
    DISABLED_DAEMONSETS,
    ClusterLookupError,
)
from components.program import InvalidConfig
from meshcore.config_parse import parse_settings
from meshcore.errors import MeshConfigError
from meshcore.presets import PRESETS
from tests.conftest import ROOT, cluster_entry, mesh_config
from tests.mockcloud import (
    APISERVER_ENDPOINT_IP,
    ENDPOINT_KUBECONFIG_INTERNET,
    ENDPOINT_KUBECONFIG_INTRANET,
    GET_CLUSTERS,
    TKE_KUBECONFIG_INTERNET,
    TKE_KUBECONFIG_INTRANET,
    ComputingMocks,
    by_type,
    one,
    release_values,
    run,
    text,
)
from tests.test_graph import is_secret
from tools.mockengine import Recording
from tools.plan import plan
from tools.render import scrub

RELEASE = "kubernetes:helm.sh/v3:Release"
K8S_PROVIDER = "pulumi:providers:kubernetes"
TC_PROVIDER = "pulumi:providers:tencentcloud"
TKE_CLUSTER = "tencentcloud:Kubernetes/cluster:Cluster"
TKE_ENDPOINT = "tencentcloud:Kubernetes/clusterEndpoint:ClusterEndpoint"
TKE_NODE_POOL = "tencentcloud:Kubernetes/nodePool:NodePool"
DS_PATCH = "kubernetes:apps/v1:DaemonSetPatch"
ENDPOINTS = "kubernetes:core/v1:Endpoints"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"


def create_block(i: int) -> dict[str, Any]:
    return {
        "vpcId": f"vpc-{i:08d}",
        "version": "1.32.2",
        "serviceCidr": f"10.{200 + i}.0.0/22",
        "eniSubnetIds": [f"subnet-e{i:07d}"],
        "endpointSubnetId": f"subnet-a{i:07d}",
        "nodePool": {"subnetIds": [f"subnet-n{i:07d}"], "instanceType": "SA5.MEDIUM4",
                     "minSize": 1, "desiredCapacity": 2, "maxSize": 3},
    }


def created_entry(i: int, region: str = "ap-guangzhou") -> dict[str, Any]:
    entry = cluster_entry(i, region=region)
    entry["create"] = create_block(i)
    return entry


def adopted_entry(i: int, region: str = "ap-guangzhou", **tke_api: Any) -> dict[str, Any]:
    entry = cluster_entry(i, region=region)
    entry["kubeconfigFrom"] = "tkeApi"
    if tke_api:
        entry["tkeApi"] = tke_api
    return entry


def mixed_config() -> dict[str, Any]:
    raw = mesh_config(1, cilium={"preset": "tke-vpc-cni"})
    raw["clusters"][0]["values"] = {"k8sServiceHost": "169.254.128.10"}
    raw["clusters"] += [created_entry(2), adopted_entry(3)]
    raw["clusters"][2]["values"] = {"k8sServiceHost": "169.254.128.12"}
    return raw


def ancestors(rec: Recording, urn: str) -> set[str]:
    """Every URN ``urn`` waits for: its dependencies and its provider, transitively."""
    seen: set[str] = set()
    todo = [urn]
    while todo:
        r = rec.resources[todo.pop()]
        for d in [*r.dependencies, *([r.provider] if r.provider else [])]:
            if d not in seen and d in rec.resources:
                seen.add(d)
                todo.append(d)
    return seen


def assert_acyclic(deps: dict[str, set[str]]) -> None:
    state: dict[str, int] = {}

    def visit(n: str) -> None:
        if state.get(n) == 2:
            return
        assert state.get(n) != 1, f"dependency cycle through {n}"
        state[n] = 1
        for d in deps.get(n, ()):
            visit(d)
        state[n] = 2

    for n in deps:
        visit(n)


# --------------------------------------------------------------------------- created clusters


def test_created_cluster_is_cilium_ready_in_order(tmp_path: Path) -> None:
    """TKE cluster -> endpoint -> provider -> patches + Endpoints read -> release -> node pool."""
    rec = run(mixed_config(), tmp_path, contexts=["cls-00000001"])
    name = "cls-00000002"
    tencent = one(rec, TC_PROVIDER, "tencentcloud-ap-guangzhou")
    cluster = one(rec, TKE_CLUSTER, f"{name}-tke")
    endpoint = one(rec, TKE_ENDPOINT, f"{name}-endpoint")
    provider = one(rec, K8S_PROVIDER, f"{name}-k8s")
    release = one(rec, RELEASE, f"{name}-cilium")
    pool = one(rec, TKE_NODE_POOL, f"{name}-nodepool")
    read = one(rec, ENDPOINTS, f"{name}-kubernetes-endpoints")
    cni = one(rec, CONFIG_MAP, f"{name}-cni-config")
    patches = {ds: one(rec, DS_PATCH, f"{name}-{ds}-off") for ds in DISABLED_DAEMONSETS}

    # (a) the cluster: VPC-CNI tke-route-eni, managed, no worker
    i = cluster.inputs
    assert cluster.provider == tencent.urn
    assert i["networkType"] == "VPC-CNI" and i["vpcCniType"] == "tke-route-eni"
    assert i["clusterDeployType"] == "MANAGED_CLUSTER" and i["clusterVersion"] == "1.32.2"
    assert i["vpcId"] == "vpc-00000002" and i["eniSubnetIds"] == ["subnet-e0000002"]
    assert i["serviceCidr"] == "10.202.0.0/22" and i["deletionProtection"] is True
    assert "workerConfigs" not in i and "clusterIntranet" not in i
    # (b) the intranet endpoint, on the created cluster; its kubeconfig feeds the provider (secret)
    assert endpoint.provider == tencent.urn and cluster.urn in endpoint.dependencies
    assert endpoint.inputs["clusterIntranet"] is True
    assert endpoint.inputs["clusterIntranetSubnetId"] == "subnet-a0000002"
    assert endpoint.urn in provider.dependencies
    assert is_secret(provider.inputs["kubeconfig"])
    assert provider.inputs["kubeconfig"]["value"] == ENDPOINT_KUBECONFIG_INTRANET.format(f"{name}-endpoint")
    assert "context" not in provider.inputs
    # (c) DaemonSets off every node, the CNI chain, (d) the Endpoints read: all through the new provider
    for ds, patch in patches.items():
        assert patch.provider == provider.urn
        meta, spec = patch.inputs["metadata"], patch.inputs["spec"]
        assert (meta["name"], meta["namespace"]) == (ds, "kube-system")
        assert meta["annotations"] == {"pulumi.com/patchForce": "true"}
        assert spec["template"]["spec"]["nodeSelector"] == {DISABLE_LABEL_KEY: DISABLE_LABEL_VALUE}
    assert cni.provider == provider.urn and cni.inputs["metadata"]["name"] == CNI_CONFIG_NAME
    assert read.provider == provider.urn
    # (e) the release waits for all of them and takes k8sServiceHost from the read
    assert release.provider == provider.urn
    assert release.inputs["skipAwait"] is True, "no node exists yet: waiting for ready pods would never end"
    assert "skipAwait" not in one(rec, RELEASE, "cls-00000001-cilium").inputs
    assert provider.inputs["clusterIdentifier"] == name
    assert {p.urn for p in patches.values()} | {read.urn, cni.urn} <= set(release.dependencies)
    values = release_values(release)
    assert values["k8sServiceHost"] == APISERVER_ENDPOINT_IP and values["k8sServicePort"] == 60002
    # (f) nodes only after the release, on the created cluster
    assert pool.provider == tencent.urn
    assert release.urn in pool.dependencies and cluster.urn in pool.dependencies
    assert pool.inputs["clusterId"] == "cls-t" + pool.inputs["clusterId"][5:]
    assert (pool.inputs["minSize"], pool.inputs["desiredCapacity"], pool.inputs["maxSize"]) == (1, 2, 3)
    assert pool.inputs["autoScalingConfig"]["instanceType"] == "SA5.MEDIUM4"
    assert pool.inputs["vpcId"] == "vpc-00000002" and pool.inputs["subnetIds"] == ["subnet-n0000002"]
    # the whole chain, transitively, and no cycle
    chain = [pool, release, patches["kube-proxy"], provider, endpoint, cluster]
    for later, earlier in zip(chain, chain[1:], strict=False):
        assert earlier.urn in ancestors(rec, later.urn), f"{later.name} must wait for {earlier.name}"
    assert_acyclic({u: ancestors(rec, u) - {u} for u in rec.resources})
    node_pool_component = one(rec, "mesh:tke:NodePool", f"{name}-nodepool")
    assert node_pool_component.parent == one(rec, tokens.CLUSTER, name).urn
    assert pool.parent == node_pool_component.urn


def test_created_cluster_gets_the_owned_service_keys_only(tmp_path: Path) -> None:
    """k8sServiceHost/Port are set for created clusters only; other clusters keep their own values."""
    raw = mesh_config(1, cilium={"preset": "tke-vpc-cni"})
    raw["clusters"][0]["values"] = {"k8sServiceHost": "169.254.128.10"}
    raw["clusters"].append(created_entry(2))
    rec = run(raw, tmp_path, contexts=["cls-00000001"])
    created = release_values(one(rec, RELEASE, "cls-00000002-cilium"))
    existing = release_values(one(rec, RELEASE, "cls-00000001-cilium"))
    assert (created["k8sServiceHost"], created["k8sServicePort"]) == (APISERVER_ENDPOINT_IP, 60002)
    assert existing["k8sServiceHost"] == "169.254.128.10" and existing["k8sServicePort"] == 60002  # preset's


def test_deletion_protection_can_be_turned_off(tmp_path: Path) -> None:
    raw = {"clusters": [created_entry(1)], "cilium": {"preset": "tke-vpc-cni"}}
    raw["clusters"][0]["create"]["deletionProtection"] = False
    rec = run(raw, tmp_path, contexts=[])
    assert one(rec, TKE_CLUSTER, "cls-00000001-tke").inputs["deletionProtection"] is False


# --------------------------------------------------------------------------- adopted clusters


def test_adopted_cluster_kubeconfig_from_the_lookup_is_secret(tmp_path: Path) -> None:
    """kubeconfigFrom: tkeApi: get_clusters through the region's provider; intranet kubeconfig, wrapped secret."""
    mocks = ComputingMocks()
    raw = mesh_config(1)
    raw["clusters"] += [adopted_entry(2), adopted_entry(3, region="ap-shanghai", endpoint="internet")]
    rec = run(raw, tmp_path, contexts=["cls-00000001"], mocks=mocks)
    lookups = [c for c in mocks.calls if c.token == GET_CLUSTERS]
    assert sorted(c.args["clusterId"] for c in lookups) == ["cls-00000002", "cls-00000003"]
    providers = {p.name: p.urn for p in by_type(rec, TC_PROVIDER)}
    assert set(providers) == {"tencentcloud-ap-guangzhou", "tencentcloud-ap-shanghai"}
    by_id = {c.args["clusterId"]: c.provider.rsplit("::", 1)[0] for c in lookups}
    assert by_id == {"cls-00000002": providers["tencentcloud-ap-guangzhou"],
                     "cls-00000003": providers["tencentcloud-ap-shanghai"]}
    p2, p3 = one(rec, K8S_PROVIDER, "cls-00000002-k8s"), one(rec, K8S_PROVIDER, "cls-00000003-k8s")
    assert is_secret(p2.inputs["kubeconfig"]) and is_secret(p3.inputs["kubeconfig"])
    assert p2.inputs["kubeconfig"]["value"] == TKE_KUBECONFIG_INTRANET.format("cls-00000002")
    assert p3.inputs["kubeconfig"]["value"] == TKE_KUBECONFIG_INTERNET.format("cls-00000003")
    assert "context" not in p2.inputs
    assert not by_type(rec, TKE_ENDPOINT) and not by_type(rec, TKE_CLUSTER)
    assert "TEST-ONLY-TKE-KUBECONFIG" not in text(scrub(rec.outputs))
    assert scrub(rec.outputs)["clusters"]["cls-00000002"]["context"] == ""


def test_adopted_cluster_with_enable_uses_the_endpoint_it_enables(tmp_path: Path) -> None:
    raw = {"clusters": [adopted_entry(1, enable=True, subnetId="subnet-api00001"),
                        adopted_entry(2, endpoint="internet", enable=True, securityGroup="sg-api00002")]}
    mocks = ComputingMocks()
    rec = run(raw, tmp_path, contexts=[], mocks=mocks)
    assert not [c for c in mocks.calls if c.token == GET_CLUSTERS]
    e1, e2 = one(rec, TKE_ENDPOINT, "cls-00000001-endpoint"), one(rec, TKE_ENDPOINT, "cls-00000002-endpoint")
    assert e1.inputs["clusterId"] == "cls-00000001" and e1.inputs["clusterIntranet"] is True
    assert e1.inputs["clusterIntranetSubnetId"] == "subnet-api00001" and "clusterInternet" not in e1.inputs
    assert e2.inputs["clusterInternet"] is True and e2.inputs["clusterInternetSecurityGroup"] == "sg-api00002"
    p1, p2 = one(rec, K8S_PROVIDER, "cls-00000001-k8s"), one(rec, K8S_PROVIDER, "cls-00000002-k8s")
    assert e1.urn in p1.dependencies and e2.urn in p2.dependencies
    assert p1.inputs["kubeconfig"]["value"] == ENDPOINT_KUBECONFIG_INTRANET.format("cls-00000001-endpoint")
    assert p2.inputs["kubeconfig"]["value"] == ENDPOINT_KUBECONFIG_INTERNET.format("cls-00000002-endpoint")
    assert is_secret(p1.inputs["kubeconfig"]) and is_secret(p2.inputs["kubeconfig"])


def test_no_kubeconfig_file_needed_without_context_clusters(tmp_path: Path) -> None:
    """Only clusters with kubeconfigFrom: context need a context; the file is not read otherwise."""
    from tests.conftest import to_pulumi_config
    from tools.mockengine import run_program

    raw = {"clusters": [adopted_entry(1), created_entry(2)], "kubeconfig": str(tmp_path / "absent.yaml"),
           "cilium": {"preset": "tke-vpc-cni"}}
    raw["clusters"][0]["prepareVpcCni"] = True  # k8sServiceHost read from the cluster, as for the created one
    rec = run_program(str(ROOT / "__main__.py"), project="tke-cilium-mesh", stack="test",
                      config=to_pulumi_config(raw), secret_keys=[], mocks=ComputingMocks(), preview=False)
    assert len(by_type(rec, RELEASE)) == 2


def test_context_is_required_only_for_context_clusters(tmp_path: Path) -> None:
    raw = mesh_config(1)
    raw["clusters"].append(adopted_entry(2))
    with pytest.raises(InvalidConfig) as exc:
        run(raw, tmp_path, contexts=["other"])
    assert [i.key for i in exc.value.issues] == ["mesh:clusters[0].context"]


def test_a_lookup_that_finds_no_cluster_fails_clearly(tmp_path: Path) -> None:
    raw = mesh_config(1)
    raw["clusters"].append(adopted_entry(2))
    with pytest.raises(ClusterLookupError, match="TKE cluster cls-00000002 was not found in ap-guangzhou"):
        run(raw, tmp_path, contexts=["cls-00000001"], mocks=ComputingMocks(missing_clusters=("cls-00000002",)))


def test_a_failed_run_is_reported_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The failure is raised to the caller once. The Outputs that failed with it, which the SDK
    leaves behind, are not reported again by asyncio ("exception was never retrieved") when
    the collector frees them: the run leaves failed futures holding that very exception, and the
    event loop's handler passes their reports over (asyncio's own handler would log each)."""
    raw = mesh_config(1)
    raw["clusters"].append(adopted_entry(2))
    # The collector paused: the run's leftovers stay where the run left them, to be looked at
    # (when the collector frees them, now or at exit, asyncio reports each of them).
    gc.disable()
    try:
        with pytest.raises(ClusterLookupError) as raised:
            run(raw, tmp_path, contexts=["cls-00000001"], mocks=ComputingMocks(missing_clusters=("cls-00000002",)))
        leftovers = [f for f in gc.get_objects() if isinstance(f, asyncio.Future) and f.done() and not f.cancelled()
                     and f.exception() is raised.value]
    finally:
        gc.enable()
    assert leftovers, "the run leaves failed Outputs behind (else there is nothing to keep quiet)"
    loop = asyncio.get_event_loop()
    report = {"message": "Future exception was never retrieved", "exception": leftovers[0].exception(),
              "future": leftovers[0]}
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.call_exception_handler(report)
        assert not caplog.records, "the engine's handler passes over the failure it raised"
        loop.default_exception_handler(report)  # the control: asyncio's own reporting
    assert ["never retrieved" in r.getMessage() for r in caplog.records] == [True]


def test_other_failures_are_still_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The engine's loop handler passes on every report but those of a failure it raised."""
    raw = {"clusters": [adopted_entry(1)]}
    with pytest.raises(ClusterLookupError):
        run(raw, tmp_path, contexts=[], mocks=ComputingMocks(missing_clusters=("cls-00000001",)))
    loop = asyncio.get_event_loop()
    handler = loop.get_exception_handler()
    assert handler is not None, "installed by the failed run"
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        handler(loop, {"message": "Future exception was never retrieved", "exception": RuntimeError("elsewhere")})
    assert [r.getMessage() for r in caplog.records] == ["Future exception was never retrieved"]


def test_a_lookup_answering_nothing_fails_in_preview_and_update(tmp_path: Path) -> None:
    """An answer without ``lists`` is a missing cluster, in a preview as in an update."""
    import pulumi

    class Silent(ComputingMocks):
        def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
            return {}

    raw = {"clusters": [adopted_entry(1)]}
    for preview in (False, True):
        with pytest.raises(ClusterLookupError, match="was not found"):
            run(raw, tmp_path, contexts=[], mocks=Silent(), preview=preview)


# --------------------------------------------------------------------------- providers, preset


def test_one_tencent_provider_per_region_for_every_tencent_need(tmp_path: Path) -> None:
    raw = {"cilium": {"preset": "tke-vpc-cni"}, "clusters": [created_entry(1), adopted_entry(2, region="ap-shanghai"),
                        cluster_entry(3, create_clb=True, region="ap-shanghai"), cluster_entry(4, region="ap-beijing")]}
    for i in (1, 2, 3):
        raw["clusters"][i]["values"] = {"k8sServiceHost": f"169.254.128.{i}"}
    rec = run(raw, tmp_path, contexts=["cls-00000003", "cls-00000004"])
    providers = {p.name: p for p in by_type(rec, TC_PROVIDER)}
    assert set(providers) == {"tencentcloud-ap-guangzhou", "tencentcloud-ap-shanghai"}
    for r in rec.resources.values():
        if r.custom and r.type.startswith(("kubernetes:", "tencentcloud:")):
            assert r.provider, f"{r.urn} would use a default provider"


def test_preset_merges_under_user_values(tmp_path: Path, chart_schema) -> None:
    raw = mixed_config()
    raw["cilium"]["values"] = {"devices": "eth0", "operator": {"replicas": 2}}
    raw["clusters"][0]["values"]["operator"] = {"replicas": 3}
    rec = run(raw, tmp_path, contexts=["cls-00000001"])
    preset = PRESETS["tke-vpc-cni"]
    for name in ("cls-00000001", "cls-00000002", "cls-00000003"):
        values = release_values(one(rec, RELEASE, f"{name}-cilium"))
        assert values["devices"] == "eth0"                                   # base values over the preset
        assert values["operator"]["replicas"] == (3 if name == "cls-00000001" else 2)  # cluster over base
        assert values["operator"]["tolerations"] == preset["operator"]["tolerations"]  # preset kept below
        assert values["routingMode"] == "native" and values["ipam"] == {"mode": "delegated-plugin"}
        assert values["image"]["repository"] == "quay.tencentcloudcr.com/cilium/cilium"
        assert chart_schema(values) == [], name


# Set by the TKE guide but not keys of the 1.18.3 values.yaml: `devices` is documented there only as
# a comment (`# devices: ""`); `cni.externalRouting` (agent flag cni-external-routing) is not listed.
NOT_IN_VALUES_YAML = {("devices",), ("cni", "externalRouting")}


def test_preset_values_exist_in_the_chart_and_validate(chart_values, chart_schema) -> None:
    def paths(tree: dict, prefix: tuple = ()) -> list[tuple]:
        out = []
        for k, v in tree.items():
            out += paths(v, (*prefix, k)) if isinstance(v, dict) else [(*prefix, k)]
        return out

    for name, preset in PRESETS.items():
        assert chart_schema(copy.deepcopy(dict(preset))) == [], name
        for path in paths(dict(preset)):
            node: Any = chart_values
            for part in path[:-1]:
                node = node[part]
            assert path[-1] in node or path in NOT_IN_VALUES_YAML or path[:-1] == ("extraConfig",), \
                f"{name}: {'.'.join(path)} is not a chart value"


def test_unknown_preset_is_refused() -> None:
    with pytest.raises(MeshConfigError) as exc:
        parse_settings(mesh_config(2, cilium={"preset": "tke-gr"}))
    assert [i.key for i in exc.value.issues] == ["mesh:cilium.preset"]
    assert "tke-vpc-cni" in exc.value.issues[0].message


# --------------------------------------------------------------------------- the mixed stack, offline


def test_mixed_stack_plans_offline_into_one_acyclic_graph() -> None:
    rec = plan(str(ROOT / "stacks/Pulumi.mixed.yaml"))
    assert_acyclic({u: ancestors(rec, u) - {u} for u in rec.resources})
    created = next(c.name for c in by_type(rec, TKE_CLUSTER)).removesuffix("-tke")
    adopted = next(r.name for r in by_type(rec, tokens.CLUSTER) if r.name != created)
    assert scrub(one(rec, K8S_PROVIDER, f"{adopted}-k8s").inputs["kubeconfig"]) == "[secret]"
    values = release_values(one(rec, RELEASE, f"{created}-cilium"))
    assert values["k8sServiceHost"] == "[unknown]" and values["k8sServicePort"] == 60002
    pool = one(rec, TKE_NODE_POOL, f"{created}-nodepool")
    assert one(rec, RELEASE, f"{created}-cilium").urn in pool.dependencies


# --------------------------------------------------------------------------- validation


def _issues(raw: dict) -> dict[str, str]:
    with pytest.raises(MeshConfigError) as exc:
        parse_settings(raw)
    return {i.key: i.message for i in exc.value.issues}


def _with(mutate) -> dict:
    raw = {"clusters": [created_entry(1), cluster_entry(2)], "cilium": {"preset": "tke-vpc-cni"}}
    mutate(raw["clusters"][0])
    return raw


@pytest.mark.parametrize(
    "mutate, key, needle",
    [
        (lambda c: c["create"].update(vpcId="vpc-1"), "mesh:clusters[0].create.vpcId", "'vpc-'"),
        (lambda c: c["create"].update(endpointSubnetId="sub-12345678"), "mesh:clusters[0].create.endpointSubnetId",
         "'subnet-'"),
        (lambda c: c["create"].update(eniSubnetIds=[]), "mesh:clusters[0].create.eniSubnetIds", "non-empty list"),
        (lambda c: c["create"].update(serviceCidr="10.200.0.1/22"), "mesh:clusters[0].create.serviceCidr",
         "host bits"),
        (lambda c: c["create"].update(serviceCidr="172.16.2.0/24"), "mesh:clusters[0].create.serviceCidr",
         "mesh:clusters[1].podCidrs[0]"),
        (lambda c: c["create"].update(version=1.32), "mesh:clusters[0].create.version", "1.32"),
        (lambda c: c["create"].pop("nodePool"), "mesh:clusters[0].create.nodePool", "is required"),
        (lambda c: c["create"]["nodePool"].update(minSize=3, maxSize=2, desiredCapacity=2),
         "mesh:clusters[0].create.nodePool.maxSize", "below minSize"),
        (lambda c: c["create"]["nodePool"].update(desiredCapacity=9), "mesh:clusters[0].create.nodePool.desiredCapacity",
         "above maxSize"),
        (lambda c: c["create"]["nodePool"].update(maxSize=5000), "mesh:clusters[0].create.nodePool.maxSize",
         "0..2000"),
        (lambda c: c["create"]["nodePool"].update(securityGroupIds=["sg-1"]),
         "mesh:clusters[0].create.nodePool.securityGroupIds[0]", "'sg-'"),
        (lambda c: c["create"]["nodePool"].update(systemDiskType="SSD"), "mesh:clusters[0].create.nodePool.systemDiskType",
         "CLOUD_PREMIUM"),
        (lambda c: c["create"].update(nodepool={}), "mesh:clusters[0].create.nodepool", "did you mean 'nodePool'"),
        (lambda c: c.update(kubeconfigFrom="tkeApi"), "mesh:clusters[0].kubeconfigFrom", "remove kubeconfigFrom"),
        (lambda c: c.update(kubeconfigFrom="context"), "mesh:clusters[0].kubeconfigFrom", "remove kubeconfigFrom"),
        (lambda c: c.update(context="ctx"), "mesh:clusters[0].context", "has no kubeconfig context"),
        (lambda c: c.update(values={"k8sServiceHost": "169.254.0.1"}), "mesh:clusters[0].values.k8sServiceHost",
         "reads it from each created cluster"),
    ],
)
def test_create_block_errors_name_the_key(mutate, key: str, needle: str) -> None:
    issues = _issues(_with(mutate))
    assert key in issues, issues
    assert needle in issues[key], issues[key]


def test_base_values_may_not_set_the_service_keys_when_a_cluster_is_created() -> None:
    issues = _issues({"clusters": [created_entry(1)],
                      "cilium": {"preset": "tke-vpc-cni", "values": {"k8sServicePort": 443}}})
    assert list(issues) == ["mesh:cilium.values.k8sServicePort"]
    # ... but may when no cluster is created (the key is then the user's)
    parse_settings({"clusters": [cluster_entry(1)], "cilium": {"values": {"k8sServicePort": 443}}})


@pytest.mark.parametrize(
    "entry, key, needle",
    [
        ({"kubeconfigFrom": "api"}, "mesh:clusters[0].kubeconfigFrom", "context"),
        ({"kubeconfigFrom": "tkeApi", "context": "x"}, "mesh:clusters[0].context", "only used with kubeconfigFrom"),
        ({"tkeApi": {}}, "mesh:clusters[0].tkeApi", "only used with kubeconfigFrom: tkeApi"),
        ({"kubeconfigFrom": "tkeApi", "tkeApi": {"enable": True}}, "mesh:clusters[0].tkeApi.subnetId", "required"),
        ({"kubeconfigFrom": "tkeApi", "tkeApi": {"endpoint": "internet", "enable": True}},
         "mesh:clusters[0].tkeApi.securityGroup", "required"),
        ({"kubeconfigFrom": "tkeApi", "tkeApi": {"subnetId": "subnet-abcd1234"}}, "mesh:clusters[0].tkeApi.subnetId",
         "only used with enable: true"),
        ({"kubeconfigFrom": "tkeApi", "tkeApi": {"endpoint": "public"}}, "mesh:clusters[0].tkeApi.endpoint",
         "intranet"),
        ({"kubeconfigFrom": "tkeApi", "name": "mesh-one"}, "mesh:clusters[0].name", "TKE cluster ID"),
    ],
)
def test_tke_api_errors_name_the_key(entry: dict, key: str, needle: str) -> None:
    c = cluster_entry(1)
    c.update(entry)
    issues = _issues({"clusters": [c]})
    assert key in issues, issues
    assert needle in issues[key], issues[key]


def test_a_created_cluster_needs_the_tke_preset() -> None:
    """Without the preset nothing would replace the kube-proxy and CNI the program keeps off the nodes."""
    issues = _issues({"clusters": [created_entry(1)]})
    assert "mesh:clusters[0].create" in issues and "preset: tke-vpc-cni" in issues["mesh:clusters[0].create"]


@pytest.mark.parametrize("how", ["context", "tkeApi"])
def test_an_adopted_cluster_can_be_prepared_for_vpc_cni_like_a_created_one(tmp_path: Path, how: str) -> None:
    """prepareVpcCni: the TKE guide's manual steps (cni-config, TKE's DaemonSets off the nodes,
    k8sServiceHost read from default/kubernetes) through the adopted cluster's own provider,
    before its release; nothing is created in Tencent Cloud for it (#11.12)."""
    raw = mesh_config(2, cilium={"preset": "tke-vpc-cni"})
    raw["clusters"][0]["values"] = {"k8sServiceHost": "169.254.128.10"}
    if how == "tkeApi":
        raw["clusters"][1] = adopted_entry(2)
    raw["clusters"][1]["prepareVpcCni"] = True
    rec = run(raw, tmp_path, contexts=["cls-00000001", "cls-00000002"])
    name = "cls-00000002"
    provider = one(rec, K8S_PROVIDER, f"{name}-k8s")
    release = one(rec, RELEASE, f"{name}-cilium")
    read = one(rec, ENDPOINTS, f"{name}-kubernetes-endpoints")
    cni = one(rec, CONFIG_MAP, f"{name}-cni-config")
    patches = [one(rec, DS_PATCH, f"{name}-{ds}-off") for ds in DISABLED_DAEMONSETS]
    for r in [read, cni, *patches]:
        assert r.provider == provider.urn and r.urn in release.dependencies
    assert cni.inputs["metadata"]["name"] == CNI_CONFIG_NAME
    values = release_values(release)
    assert values["k8sServiceHost"] == APISERVER_ENDPOINT_IP and values["k8sServicePort"] == 60002
    assert "skipAwait" not in release.inputs, "its nodes exist: the release waits for Cilium's pods"
    assert not by_type(rec, TKE_CLUSTER) and not by_type(rec, TKE_NODE_POOL)
    # the cluster that is not prepared: its own k8sServiceHost, nothing done to it
    assert release_values(one(rec, RELEASE, "cls-00000001-cilium"))["k8sServiceHost"] == "169.254.128.10"
    assert not [r for r in by_type(rec, DS_PATCH) + by_type(rec, CONFIG_MAP) if r.name.startswith("cls-00000001")]


def test_prepare_vpc_cni_is_checked() -> None:
    """What prepareVpcCni needs and excludes, and k8sServiceHost for adopted tke-vpc-cni clusters."""
    from tests.test_config import issues_of

    raw = mesh_config(3, cilium={"preset": "tke-vpc-cni"})
    raw["clusters"][0]["values"] = {"k8sServiceHost": "169.254.128.10"}
    raw["clusters"][1]["prepareVpcCni"] = True
    raw["clusters"][1]["values"] = {"k8sServiceHost": "169.254.128.11"}   # the program reads it
    raw["clusters"][2] = created_entry(3)
    raw["clusters"][2]["prepareVpcCni"] = True                           # created: always prepared
    issues = issues_of(raw)
    assert set(issues) == {"mesh:clusters[1].values.k8sServiceHost", "mesh:clusters[2].prepareVpcCni"}
    assert "is set by this program" in issues["mesh:clusters[1].values.k8sServiceHost"]
    assert "remove prepareVpcCni" in issues["mesh:clusters[2].prepareVpcCni"]

    raw = mesh_config(2, cilium={"preset": "tke-vpc-cni"})
    raw["clusters"][0]["values"] = {"k8sServiceHost": "169.254.128.10"}
    issues = issues_of(raw)                                              # an adopted cluster without it
    assert set(issues) == {"mesh:clusters[1].values.k8sServiceHost"}
    assert "169.254.x.x" in issues["mesh:clusters[1].values.k8sServiceHost"]
    assert "prepareVpcCni: true" in issues["mesh:clusters[1].values.k8sServiceHost"]

    raw = mesh_config(2)
    raw["clusters"][1]["prepareVpcCni"] = "yes"
    raw["clusters"][0]["prepareVpcCni"] = True                           # without the preset
    issues = issues_of(raw)
    assert set(issues) == {"mesh:clusters[0].prepareVpcCni", "mesh:clusters[1].prepareVpcCni"}
    assert "mesh:cilium.preset: tke-vpc-cni" in issues["mesh:clusters[0].prepareVpcCni"]
    assert "true or false" in issues["mesh:clusters[1].prepareVpcCni"]
