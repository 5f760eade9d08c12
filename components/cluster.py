"""A TKE cluster of the mesh, as the rest of the program needs it: a Kubernetes provider,
and for clusters the program creates, what their Cilium release must wait for.

Three ways to get a cluster (``mesh:clusters[i]``):

- ``kubeconfigFrom: context`` (default): an existing cluster, reached through a context of
  the kubeconfig file; the caller reads the context and passes it as a secret.
- ``kubeconfigFrom: tkeApi``: an existing cluster, looked up by its ID through the TKE API
  (``get_clusters``); its intranet or internet kubeconfig is used. With ``tkeApi.enable``
  the program enables that endpoint (a ``ClusterEndpoint``) and uses its kubeconfig.
- ``prepareVpcCni: true`` on an adopted cluster (either way above): the steps through the
  provider below, (c) and (d), as for created clusters (the TKE guide's manual steps).
- ``create:``: the program creates the cluster, Cilium-ready, in this order (real
  dependencies only): the TKE cluster (VPC-CNI, no nodes) → its intranet endpoint (whose
  kubeconfig feeds the provider) → through that provider: the ``cni-config`` ConfigMap,
  kube-proxy / tke-cni-agent / ip-masq-agent kept off every node (DaemonSet patches), and a
  read of ``default/kubernetes`` Endpoints (the 169.254.x.x apiserver address for
  ``k8sServiceHost``). The release waits for all of these (``release_dependencies``); the
  node pool is added after the release by ``TkeNodePool``.

Every kubeconfig is a secret from the moment it exists in the program. Every Tencent
resource and invoke uses the explicit provider of the cluster's region.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from tencentcloud_iac_pulumi import kubernetes as tke  # only the submodule used: the SDK's dlc module is broken

from components import tokens
from meshcore.config import CreateSettings, NodePoolSettings, TkeApiSettings
from meshcore.effects import NAMESPACE

TYPE_TOKEN = tokens.CLUSTER
NODE_POOL_TYPE_TOKEN = "mesh:tke:NodePool"

TKE_APISERVER_PORT = 60002
"""The port of TKE's apiserver endpoint behind the ``default/kubernetes`` 169.254.x.x address."""

DISABLED_DAEMONSETS = ("kube-proxy", "tke-cni-agent", "ip-masq-agent")
"""TKE DaemonSets Cilium replaces; kept off every node by a nodeSelector no node matches."""
DISABLE_LABEL_KEY = "tke-cilium-mesh/disabled"
DISABLE_LABEL_VALUE = "replaced-by-cilium"
"""The nodeSelector that keeps those DaemonSets off every node (the TKE guide's trick, which uses
``label-not-exist: node-not-exist``). A key under this program's own prefix, so no TKE or user
label matches it by accident; never put this label on a node."""

CNI_CONFIG_NAME = "cni-config"
CNI_CONFIG = json.dumps(
    {
        "cniVersion": "0.3.1",
        "name": "generic-veth",
        "plugins": [
            {
                "type": "tke-route-eni",
                "routeTable": 1,
                "disableIPv6": True,
                "mtu": 1500,
                "ipam": {"type": "tke-eni-ipamc", "backend": "127.0.0.1:61677"},
            },
            {"type": "cilium-cni", "chaining-mode": "generic-veth"},
        ],
    },
    indent=2,
)
"""The TKE guide's CNI chain for VPC-CNI (tke-route-eni, then cilium-cni), read by Cilium through
``cni.customConf`` / ``cni.configMap: cni-config`` (the ``tke-vpc-cni`` preset)."""


class ClusterLookupError(pulumi.RunError):
    """The TKE API did not give the kubeconfig of an adopted cluster."""


@dataclass(frozen=True, kw_only=True)
class ClusterArgs:
    cluster_name: str
    """TKE cluster ID (created clusters: the TKE cluster name), also the Cilium cluster name."""
    region: str
    kubeconfig: pulumi.Input[str] | None = None
    """``kubeconfigFrom: context``: a kubeconfig holding this cluster's context only; secret."""
    context: str | None = None
    tke_api: TkeApiSettings | None = None
    """``kubeconfigFrom: tkeApi``: how to get the kubeconfig from the TKE API."""
    create: CreateSettings | None = None
    """``create:``: the cluster to create."""
    prepare_vpc_cni: bool = False
    """An adopted cluster (context or tkeApi) that the program prepares for Cilium on VPC-CNI as it
    prepares created ones (``prepareVpcCni: true``)."""
    tencent_provider: pulumi.ProviderResource | None = None
    """The Tencent provider of the cluster's region (tkeApi and create)."""


class Cluster(pulumi.ComponentResource):
    """One mesh member's cluster and the provider that talks to it."""

    provider: k8s.Provider
    """The Kubernetes provider for this cluster (the default provider is never used)."""
    kubeconfig: pulumi.Output[str]
    """The provider's kubeconfig, a secret: the stack output ``kubeconfigs`` gives it to consumers."""
    region: str
    context: str | None
    k8s_service_host: pulumi.Output[str] | None
    """Created clusters: the apiserver address read from ``default/kubernetes``; else None."""
    k8s_service_port: int | None
    """Created clusters: TKE's apiserver port; else None."""
    release_dependencies: list[pulumi.Resource]
    """What the Cilium release must wait for (created clusters: patches, ConfigMap, Endpoints read)."""
    tke_cluster: tke.Cluster | None
    """The created TKE cluster, or None."""
    cluster_endpoint: tke.ClusterEndpoint | None
    """The endpoint the program enables (created clusters, or tkeApi.enable), or None."""

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        self.region = args.region
        self.context = args.context
        self.k8s_service_host = None
        self.k8s_service_port = None
        self.release_dependencies = []
        self.tke_cluster = None
        self.cluster_endpoint = None
        if args.create is not None:
            self._create(name, args)
        elif args.tke_api is not None:
            self._adopt(name, args)
        else:
            if args.kubeconfig is None or args.context is None:
                raise ValueError(f"{name}: a cluster reached through a kubeconfig context needs its kubeconfig")
            self.kubeconfig = pulumi.Output.secret(args.kubeconfig)
            self.provider = k8s.Provider(
                f"{name}-k8s",
                kubeconfig=self.kubeconfig,
                context=args.context,
                # Only a new cluster name replaces the provider (and everything it manages);
                # a kubeconfig that differs between a laptop and CI is an update.
                cluster_identifier=args.cluster_name,
                opts=self._provider_options(),
            )
        if args.prepare_vpc_cni and args.create is None:
            self._prepare_vpc_cni(name, args.cluster_name)
        self.register_outputs({"region": self.region, "context": self.context})

    def _provider_options(self) -> pulumi.ResourceOptions:
        """The provider's identifier is its name when first created, and stays: an allowed rename of the cluster
        (aliased, see components/program.py) must not replace the provider, which would replace the Helm
        release it manages (a second ``helm install cilium``). Any other name is another provider anyway."""
        return pulumi.ResourceOptions(parent=self, ignore_changes=["clusterIdentifier"])

    # ------------------------------------------------------------------ adopt

    def _adopt(self, name: str, args: ClusterArgs) -> None:
        api = args.tke_api
        assert api is not None
        tencent = _need_tencent(name, args)
        if api.enable:
            intranet = api.endpoint == "intranet"
            self.cluster_endpoint = tke.ClusterEndpoint(
                f"{name}-endpoint",
                cluster_id=args.cluster_name,
                cluster_intranet=intranet or None,
                cluster_intranet_subnet_id=api.subnet_id if intranet else None,
                cluster_internet=(not intranet) or None,
                cluster_internet_security_group=api.security_group if not intranet else None,
                opts=pulumi.ResourceOptions(parent=self, provider=tencent),
            )
            kubeconfig = (self.cluster_endpoint.kube_config_intranet if intranet
                          else self.cluster_endpoint.kube_config)
            kubeconfig = pulumi.Output.secret(kubeconfig)
        else:
            lookup = tke.get_clusters_output(cluster_id=args.cluster_name,
                                             opts=pulumi.InvokeOptions(provider=tencent))
            # The lookup's kubeconfigs are not marked secret by the SDK: secret before anything reads them.
            kubeconfig = pulumi.Output.secret(lookup).apply(
                lambda r: _adopted_kubeconfig(r, args.cluster_name, api.endpoint, args.region))
        self.kubeconfig = pulumi.Output.secret(kubeconfig)
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            cluster_identifier=args.cluster_name,
            opts=self._provider_options(),
        )

    # ------------------------------------------------------------------ create

    def _create(self, name: str, args: ClusterArgs) -> None:
        c = args.create
        assert c is not None
        tencent = _need_tencent(name, args)
        tags = {"tke-cilium-mesh/cluster": args.cluster_name}
        # (a) The cluster: VPC-CNI (tke-route-eni), managed control plane, no worker: no node
        # may run before Cilium is installed.
        self.tke_cluster = tke.Cluster(
            f"{name}-tke",
            cluster_name=args.cluster_name,
            cluster_version=c.version,
            cluster_deploy_type="MANAGED_CLUSTER",
            vpc_id=c.vpc_id,
            network_type="VPC-CNI",
            vpc_cni_type="tke-route-eni",
            eni_subnet_ids=list(c.eni_subnet_ids),
            service_cidr=str(c.service_cidr),
            deletion_protection=c.deletion_protection,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, provider=tencent),
        )
        # (b) Its intranet endpoint (no node needed for intranet access); its kubeconfig is the provider's.
        self.cluster_endpoint = tke.ClusterEndpoint(
            f"{name}-endpoint",
            cluster_id=self.tke_cluster.id,
            cluster_intranet=True,
            cluster_intranet_subnet_id=c.endpoint_subnet_id,
            opts=pulumi.ResourceOptions(parent=self, provider=tencent),
        )
        self.kubeconfig = pulumi.Output.secret(self.cluster_endpoint.kube_config_intranet)
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            cluster_identifier=args.cluster_name,
            opts=self._provider_options(),
        )
        self._prepare_vpc_cni(name, args.cluster_name)

    def _prepare_vpc_cni(self, name: str, cluster_name: str) -> None:
        """Steps (c) and (d), through the cluster's provider: what the tke-vpc-cni preset needs
        before Cilium's agents start. Created clusters always; adopted ones with ``prepareVpcCni``
        (the TKE guide's manual steps; it asks for a cluster without nodes, since kube-proxy is
        kept off the nodes before Cilium runs)."""
        in_cluster = pulumi.ResourceOptions(parent=self, provider=self.provider)
        # (c) The CNI chain Cilium's preset reads, and TKE's DaemonSets that Cilium replaces kept
        # off every node. Patches are server-side applies of this one field (forced: TKE owns the
        # DaemonSets); deleting them gives the field back.
        cni_config = k8s.core.v1.ConfigMap(
            f"{name}-cni-config",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=CNI_CONFIG_NAME, namespace=NAMESPACE),
            data={"cni-config": CNI_CONFIG},
            opts=in_cluster,
        )
        patches = [
            k8s.apps.v1.DaemonSetPatch(
                f"{name}-{ds}-off",
                metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                    name=ds, namespace=NAMESPACE, annotations={"pulumi.com/patchForce": "true"}),
                spec=k8s.apps.v1.DaemonSetSpecPatchArgs(
                    template=k8s.core.v1.PodTemplateSpecPatchArgs(
                        spec=k8s.core.v1.PodSpecPatchArgs(node_selector={DISABLE_LABEL_KEY: DISABLE_LABEL_VALUE}),
                    ),
                ),
                opts=in_cluster,
            )
            for ds in DISABLED_DAEMONSETS
        ]
        # (d) The apiserver address the agents must use: the 169.254.x.x endpoint of
        # default/kubernetes (not the CLB), read through the cluster's provider.
        endpoints = k8s.core.v1.Endpoints.get(
            f"{name}-kubernetes-endpoints", "default/kubernetes", opts=in_cluster)
        self.k8s_service_host = endpoints.subsets.apply(
            lambda subsets: _first_address(subsets, cluster_name))
        self.k8s_service_port = TKE_APISERVER_PORT
        self.release_dependencies = [cni_config, *patches, endpoints]


@dataclass(frozen=True, kw_only=True)
class TkeNodePoolArgs:
    cluster: Cluster
    create: CreateSettings
    tencent_provider: pulumi.ProviderResource
    after: Sequence[pulumi.Resource] = field(default_factory=list)
    """What must exist before any node: the cluster's Cilium release."""


class TkeNodePool(pulumi.ComponentResource):
    """The node pool of a created cluster, added only once its Cilium release is installed."""

    node_pool: tke.NodePool

    def __init__(self, name: str, args: TkeNodePoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(NODE_POOL_TYPE_TOKEN, name, None, opts)
        c, pool = args.create, args.create.node_pool
        assert args.cluster.tke_cluster is not None
        self.node_pool = tke.NodePool(
            name,
            name=name,
            cluster_id=args.cluster.tke_cluster.id,
            vpc_id=c.vpc_id,
            subnet_ids=list(pool.subnet_ids),
            min_size=pool.min_size,
            max_size=pool.max_size,
            desired_capacity=pool.desired_capacity,
            auto_scaling_config=_auto_scaling_config(pool),
            opts=pulumi.ResourceOptions(parent=self, provider=args.tencent_provider, depends_on=list(args.after)),
        )
        self.register_outputs({})


def _auto_scaling_config(pool: NodePoolSettings) -> dict[str, Any]:
    cfg: dict[str, Any] = {"instance_type": pool.instance_type}
    if pool.system_disk_type is not None:
        cfg["system_disk_type"] = pool.system_disk_type
    if pool.system_disk_size is not None:
        cfg["system_disk_size"] = pool.system_disk_size
    if pool.security_group_ids:
        cfg["security_group_ids"] = list(pool.security_group_ids)
    if pool.key_ids:
        cfg["key_ids"] = list(pool.key_ids)
    return cfg


def _need_tencent(name: str, args: ClusterArgs) -> pulumi.ProviderResource:
    if args.tencent_provider is None:
        raise ValueError(f"{name}: a cluster created or adopted through the TKE API needs the Tencent provider "
                         "of its region")
    return args.tencent_provider


def _adopted_kubeconfig(result: Any, name: str, endpoint: str, region: str) -> Any:
    """The kubeconfig of the adopted cluster from a ``get_clusters`` result (already secret)."""
    lists = getattr(result, "lists", None)
    if not lists:
        raise ClusterLookupError(
            f"TKE cluster {name} was not found in {region} (tencentcloud get_clusters returned no cluster): check "
            f"the cluster ID (mesh:clusters[].name), the region, and that the credentials may call "
            "tke:DescribeClusters and tke:DescribeClusterKubeconfig")
    field_name = "kube_config_intranet" if endpoint == "intranet" else "kube_config"
    kubeconfig = getattr(lists[0], field_name, None)
    if not kubeconfig:
        raise ClusterLookupError(
            f"TKE cluster {name} has no {endpoint} kubeconfig: its {endpoint} apiserver endpoint is not enabled; "
            f"enable it in the TKE console, or set tkeApi.enable: true (with "
            f"{'subnetId' if endpoint == 'intranet' else 'securityGroup'}) so that the program enables it")
    return kubeconfig


def _first_address(subsets: Sequence[Any] | None, name: str) -> str:
    """``subsets[0].addresses[0].ip`` of ``default/kubernetes`` (objects or plain mappings)."""

    def get(obj: Any, key: str) -> Any:
        return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)

    addresses = get(subsets[0], "addresses") if subsets else None
    ip = get(addresses[0], "ip") if addresses else None
    if not ip:
        raise ClusterLookupError(f"cluster {name}: default/kubernetes Endpoints has no address; the apiserver "
                                 "address for k8sServiceHost cannot be read")
    return str(ip)
