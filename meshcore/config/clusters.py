"""The ``mesh:clusters`` entries: one pydantic model per form of entry (a kubeconfig context, the TKE API,
created by the program; a tagged union of them, ``ClusterEntry``) and their sections (``apiserver``, ``tkeApi``,
``create``, ``cilium``), with the constants and patterns they check against. The mesh-wide sections and
``Settings`` are ``meshcore.config.model``.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from meshcore.chart import versions
from meshcore.config.fields import (
    Address,
    Bool,
    Cidr,
    HelmValues,
    IdList,
    Int,
    OneOf,
    Relations,
    ResourceId,
    Says,
    Section,
    Shaped,
    Text,
    quote,
    refuse,
    type_name,
)

NS = "mesh"
"""The Pulumi config namespace of this program."""

DEFAULT_CHART_VERSION = versions.DEFAULT
DEFAULT_APISERVER_PORT = 2379

# \Z, not $: $ also matches before a trailing newline (a YAML block scalar gives "cls-abc\n").
CLUSTER_NAME_RE = re.compile(r"^([a-z0-9][-a-z0-9]*)?[a-z0-9]\Z")
TKE_CLUSTER_ID_RE = re.compile(r"^cls-[a-z0-9]{8}\Z")
OCI_CHART_RE = re.compile(r"^oci://[^\s/]+(/[^\s/:@]+)+\Z")
# The model's patterns are JSON Schema (ECMA-262) and Rust regexes, where $ is the very end.
REGION_PATTERN = r"^[a-z]{2,4}-[a-z]+(-[a-z0-9]+)?$"
K8S_VERSION_PATTERN = r"^1\.[0-9]{1,2}\.[0-9]{1,3}$"
INSTANCE_TYPE_PATTERN = r"^[A-Za-z0-9]+\.[A-Za-z0-9]+$"
CHART_PATTERN = versions.VERSION_PATTERN
SystemDiskType = Literal["CLOUD_PREMIUM", "CLOUD_SSD", "CLOUD_BSSD", "CLOUD_HSSD", "CLOUD_TSSD", "LOCAL_BASIC",
                         "LOCAL_SSD"]
SYSTEM_DISK_TYPES: tuple[str, ...] = get_args(SystemDiskType)
MAX_NODE_POOL_SIZE = 2000
"""An upper bound on a node pool's maxSize, to catch typos (TKE's own quotas are per account)."""
SubnetId = Annotated[str, ResourceId("subnet-", "subnet")]
SubnetIds = Annotated[tuple[SubnetId, ...], IdList("subnet", required=True)]
VpcId = Annotated[str, ResourceId("vpc-", "VPC")]
SecurityGroupId = Annotated[str, ResourceId("sg-", "security group")]
KeyId = Annotated[str, ResourceId("skey-", "SSH key")]
NodeCount = Annotated[int, Int(0, MAX_NODE_POOL_SIZE, "nodes")]


def _version_text(value: Any) -> Any:
    return str(value) if isinstance(value, float) else value  # YAML reads 1.18 / 1.32 as a number


# --------------------------------------------------------------------------- apiserver


def _only_2379(port: int) -> int:
    if port != DEFAULT_APISERVER_PORT:
        # No supported chart's clustermesh-apiserver Service has a port value (tests/test_versions.py reads
        # their schemas): it always listens on 2379, so the CLB listener TKE creates for it is 2379 too.
        raise refuse(f"{port}: the Cilium {versions.SPAN} charts expose clustermesh-apiserver on port "
                     f"{DEFAULT_APISERVER_PORT} only (their Service port is not configurable); remove the key or set "
                     f"{DEFAULT_APISERVER_PORT}")
    return port


class ApiserverSettings(Section):
    """How a cluster's clustermesh-apiserver is exposed: an internal CLB in ``subnetId``, at the
    VIP ``vip`` (TKE's CLB controller requests it) or on a CLB the program creates (``createClb``)."""

    EXAMPLE: ClassVar[str] = "{subnetId: subnet-abcd1234, vip: 10.0.1.100}"

    subnet_id: Annotated[str, ResourceId("subnet-", "subnet", required="is required: the subnet of the internal CLB "
                                                          "that exposes clustermesh-apiserver")]
    """The subnet of the internal CLB (``qcloud-loadbalancer-internal-subnetid``)."""
    vip: Address | None = None
    """The VIP requested for the internal CLB (``service.extensiveParameters``); or ``createClb: true``."""
    create_clb: Bool = False
    """True: the program creates the internal CLB in ``subnetId`` (needs ``vpcId``); peers use its VIP."""
    vpc_id: VpcId | None = None
    """The VPC of ``subnetId``, where the CLB is created (``createClb: true`` only)."""
    port: Annotated[int, Int(1, 65535, "the TCP port peers connect to"),
                    AfterValidator(_only_2379)] = DEFAULT_APISERVER_PORT
    """The port peers connect to: 2379, the only one the supported charts serve."""

    @classmethod
    def relations(cls, fields: dict[str, Any], given: set[str]) -> Relations:
        if "create_clb" not in fields:
            return []  # createClb is not a boolean: its relation to vip and vpcId is unknown
        problems: Relations = []
        create_clb, vip, vpc_id = fields["create_clb"], fields.get("vip"), fields.get("vpc_id")
        if "vip" in fields and vip is not None and create_clb:
            problems.append((None, "set either vip (request that VIP for the internal CLB) or createClb: true (the "
                                   "program creates the CLB and peers use its VIP), not both"))
        elif "vip" in fields and vip is None and not create_clb:
            problems.append((None, "needs vip: <a free IPv4 address in the subnet> or createClb: true, so that peers "
                                   "know the address before any release is installed"))
        if "vpc_id" in fields and create_clb and vpc_id is None:
            problems.append(("vpcId", "is required with createClb: true: the VPC of subnetId, where the internal "
                                      "CLB is created"))
        elif "vpc_id" in fields and vpc_id is not None and not create_clb:
            problems.append(("vpcId", "is only used with createClb: true; remove it"))
        return problems


# --------------------------------------------------------------------------- how a cluster is reached


def _none_is_empty(value: Any) -> Any:
    return {} if value is None else value


class TkeApiSettings(Section):
    """How an existing cluster's kubeconfig is fetched through the TKE API (``kubeconfigFrom: tkeApi``)."""

    EXAMPLE: ClassVar[str] = "{endpoint: intranet}"

    endpoint: Annotated[Literal["intranet", "internet"], OneOf("must be intranet (the default: the VPC-internal "
                                                               "apiserver endpoint) or internet, got {j}")] = "intranet"
    """``intranet`` (the default) or ``internet``: which of the cluster's kubeconfigs is used."""
    enable: Bool = False
    """True: the program enables that endpoint (a ``ClusterEndpoint`` resource); false: it must be on already."""
    subnet_id: SubnetId | None = None
    """The intranet endpoint's subnet (``enable: true`` with ``endpoint: intranet``)."""
    security_group: SecurityGroupId | None = None
    """The internet endpoint's security group (``enable: true`` with ``endpoint: internet``)."""

    @classmethod
    def relations(cls, fields: dict[str, Any], given: set[str]) -> Relations:
        if "endpoint" not in fields or "enable" not in fields:
            return []
        problems: Relations = []
        endpoint, enable = fields["endpoint"], fields["enable"]
        needed = "subnet_id" if endpoint == "intranet" else "security_group"
        for name, k in (("subnet_id", "subnetId"), ("security_group", "securityGroup")):
            if name not in given:
                if enable and name == needed:
                    where = ("the subnet of the intranet endpoint" if k == "subnetId"
                             else "the security group of the internet endpoint")
                    problems.append((k, f"is required with enable: true and endpoint: {endpoint}: {where}"))
            elif not enable or name != needed:
                problems.append((k, f"is only used with enable: true and endpoint: "
                                    f"{'intranet' if k == 'subnetId' else 'internet'}; remove it"))
        return problems


class NodePoolSettings(Section):
    """The node pool of a created cluster, added once Cilium is installed."""

    EXAMPLE: ClassVar[str] = ("{subnetIds: [subnet-abcd1234], instanceType: SA5.MEDIUM4, minSize: 1, maxSize: 3, "
                              "desiredCapacity: 2}")

    subnet_ids: SubnetIds
    """The subnets of the nodes."""
    instance_type: Annotated[str, Shaped(INSTANCE_TYPE_PATTERN, "{j} is not a CVM instance type: write it like "
                                                                "SA5.MEDIUM4", "SA5.MEDIUM4")]
    """The CVM instance type of the nodes."""
    min_size: NodeCount
    desired_capacity: NodeCount
    max_size: NodeCount
    system_disk_type: Annotated[SystemDiskType, OneOf(f"must be one of: {', '.join(SYSTEM_DISK_TYPES)}; got {{j}}")
                                ] | None = None
    system_disk_size: Annotated[int, Int(20, 2048, "GB")] | None = None
    security_group_ids: Annotated[tuple[SecurityGroupId, ...], IdList("security group", required=False)] = ()
    key_ids: Annotated[tuple[KeyId, ...], IdList("SSH key", required=False)] = ()

    @classmethod
    def relations(cls, fields: dict[str, Any], given: set[str]) -> Relations:
        lo, want, hi = fields.get("min_size"), fields.get("desired_capacity"), fields.get("max_size")
        if lo is not None and hi is not None and lo > hi:
            return [("maxSize", f"{hi} is below minSize {lo}; need 0 <= minSize <= desiredCapacity <= maxSize")]
        if want is not None and lo is not None and want < lo:
            return [("desiredCapacity", f"{want} is below minSize {lo}; need minSize <= desiredCapacity <= maxSize")]
        if want is not None and hi is not None and want > hi:
            return [("desiredCapacity", f"{want} is above maxSize {hi}; need minSize <= desiredCapacity <= maxSize")]
        return []


class CreateSettings(Section):
    """A TKE cluster the program creates, Cilium-ready (``create:``)."""

    EXAMPLE: ClassVar[str] = ("{vpcId: vpc-abcd1234, version: 1.32.2, serviceCidr: 10.200.0.0/22, eniSubnetIds: "
                              "[subnet-abcd1234], endpointSubnetId: subnet-abcd1234, nodePool: {...}}")

    vpc_id: VpcId
    """The VPC of the cluster."""
    version: Annotated[str, Shaped(K8S_VERSION_PATTERN, "{j} is not a Kubernetes version: write it like 1.32.2 (a "
                                   "version TKE offers; quote it in YAML)", "1.32.2"),
                       BeforeValidator(_version_text)]
    """The Kubernetes version (``cluster_version``)."""
    service_cidr: Cidr
    """The cluster's Service CIDR: disjoint from every pod CIDR of the mesh."""
    eni_subnet_ids: SubnetIds
    """The VPC-CNI pod subnets."""
    endpoint_subnet_id: SubnetId
    """The subnet of the cluster's intranet apiserver endpoint, which the program enables and uses."""
    deletion_protection: Bool = True
    """TKE's deletion protection of the cluster."""
    node_pool: NodePoolSettings
    """The node pool, added once Cilium is installed."""


# --------------------------------------------------------------------------- chart versions


def chart_reference(value: Any) -> Any:
    """A local chart (directory or .tgz; whether it exists is checked by ``meshcore.mesh.chartsource`` where the
    program runs) or an ``oci://`` reference; the version is always the stated one (``mesh:cilium.version``, or
    the cluster's own ``mesh:clusters[i].cilium.version``)."""
    if not isinstance(value, str) or not value:
        raise refuse(f"must be a non-empty string, got {type_name(value)}; e.g. ./charts/cilium-1.18.3.tgz or "
                     "oci://registry.example.com/cilium/cilium")
    if "://" in value:
        if not value.startswith("oci://"):
            raise refuse(f"{quote(value)}: a chart reference is a local path or oci://HOST/PATH; for an https chart "
                         "repository set mesh:cilium.repository instead")
        if not OCI_CHART_RE.match(value):
            raise refuse(f"{quote(value)} is not an OCI chart reference like oci://registry.example.com/cilium/cilium "
                         "(no tag or digest: the version is mesh:cilium.version)")
    elif not value.isprintable():
        raise refuse(f"{quote(value)} is not a usable path")
    return value


ChartVersion = Annotated[str, Shaped(CHART_PATTERN, "chart version {j} is not supported: this program generates "
                                     f"values for the Cilium {', '.join(m + '.x' for m in versions.ORDER)} charts "
                                     "(meshcore/chart/versions.py); set a patch release such as "
                                     f"{', '.join(versions.LATEST.values())}", DEFAULT_CHART_VERSION),
                         BeforeValidator(_version_text), AfterValidator(lambda v: v.lstrip("v"))]
"""A Cilium chart version of a supported minor (``meshcore.chart.versions``)."""


class ClusterCiliumSettings(Section):
    """One cluster's own chart version, during a rolling upgrade (one wave per ``pulumi up``)."""

    EXAMPLE: ClassVar[str] = "{version: 1.19.6}"

    version: ChartVersion
    """This cluster's chart version instead of ``mesh:cilium.version`` (a wave of an upgrade)."""
    chart: Annotated[str | None, BeforeValidator(chart_reference, json_schema_input_type=str),
                     Field(examples=["./charts/cilium-1.19.6.tgz"])] = None
    """With a local ``mesh:cilium.chart``: this cluster's chart at ``version`` (a local path or an ``oci://``
    reference); else leave it out (the repository serves every version)."""


MINOR_PATTERN = r"^1\.[0-9]{1,2}$"


class AdoptedSettings(Section):
    """A cluster that ran Cilium before this stack (``python -m tools.adopt`` writes it): the program imports its
    release ``kube-system/cilium`` instead of installing one, and continues from what it runs."""

    EXAMPLE: ClassVar[str] = '{version: 1.18.3, firstInstalled: "1.18"}'

    version: ChartVersion
    """The chart version the release ran when the cluster was adopted (what its next upgrade starts from)."""
    first_installed: Annotated[str, Shaped(MINOR_PATTERN, "{j} is not a Cilium minor: write it like \"1.18\" (quoted)",
                                           "1.18"), BeforeValidator(_version_text)]
    """The minor the cluster was first installed with (``upgradeCompatibility``)."""


# --------------------------------------------------------------------------- a cluster entry


def _cluster_name(name: Any) -> Any:
    if name is None:
        raise refuse("is required, got null")
    if not isinstance(name, str) or not name:
        raise refuse(f"must be a non-empty string (the TKE cluster ID, e.g. cls-abcd1234), got {type_name(name)}")
    if len(name) > 32:
        raise refuse(f"{quote(name)} is {len(name)} characters; Cilium cluster names are at most 32")
    if not CLUSTER_NAME_RE.match(name):
        raise refuse(f"{quote(name)} is not a valid Cilium cluster name: use lowercase letters, digits and '-', "
                     "starting and ending with a letter or digit (e.g. cls-abcd1234)")
    if name == "default":
        raise refuse("'default' is reserved by Cilium for clusters outside a mesh; use the TKE cluster ID")
    return name


ClusterName = Annotated[str, BeforeValidator(_cluster_name), WithJsonSchema({
    "type": "string", "maxLength": 32, "pattern": "^([a-z0-9][-a-z0-9]*)?[a-z0-9]$", "not": {"const": "default"},
    "examples": ["cls-abcd1234"]})]
"""A Cilium cluster name (the TKE cluster ID)."""


def _id_in_mesh(value: int, info: ValidationInfo) -> int:
    hi = (info.context or {}).get("max_connected", 255)
    if value > hi:
        raise refuse(f"{value} is out of range: must be in 1..{hi} (Cilium cluster.id; 0 is reserved)")
    return value


def _pod_cidrs_not_empty(value: Any) -> Any:
    if isinstance(value, list) and not value:
        raise refuse("is an empty list; list the CIDRs this cluster's pods get their IPs from, e.g. "
                     "podCidrs: [172.16.0.0/16]")
    return value


def _not_null(value: Any) -> Any:
    if value is None:
        raise refuse("must be a non-empty string, got null; e.g. cls-abcd1234")
    return value


KUBECONFIG_FROM_TEXT = ("must be context (a kubeconfig context, the default) or tkeApi (the TKE API, by cluster ID), "
                        "got {q}; to create the cluster, write a create: block instead")


class ClusterSettings(Section):
    """One member of the mesh: what every way of reaching a cluster has."""

    EXAMPLE: ClassVar[str] = "{name: cls-abcd1234, id: 1, region: ap-guangzhou, ...}"

    name: ClusterName
    """The TKE cluster ID; also Cilium ``cluster.name``."""
    id: Annotated[int, Int(1, 511, "Cilium cluster.id; 0 is reserved", hi_from_max=True), AfterValidator(_id_in_mesh)]
    """Cilium ``cluster.id``: 1..mesh:maxConnectedClusters, unique in the mesh."""
    region: Annotated[str, Text("ap-guangzhou", pattern=REGION_PATTERN,
                                text="{q} is not a Tencent Cloud region; write it like ap-guangzhou")]
    """The Tencent Cloud region of the cluster."""
    pod_cidrs: Annotated[tuple[Cidr, ...], Field(strict=False, json_schema_extra={"minItems": 1}),
                         BeforeValidator(_pod_cidrs_not_empty, json_schema_input_type=list[Cidr]),
                         Says("list", text="must be a non-empty list of IPv4 CIDRs, got {t}")]
    """VPC-CNI: its ENI subnets' CIDRs; an overlay: its pod range. Disjoint across the mesh."""
    apiserver: ApiserverSettings
    """How the cluster's clustermesh-apiserver is exposed."""
    values: HelmValues = Field(default_factory=dict)
    """Per-cluster Helm value overrides (never program-owned keys)."""
    cilium: ClusterCiliumSettings | None = None
    """This cluster's chart version during a rolling upgrade (default: ``mesh:cilium``'s)."""
    adopted: AdoptedSettings | None = None
    """This cluster already runs the Helm release ``kube-system/cilium`` (installed outside this stack): its chart
    version and first-installed minor then (``python -m tools.adopt`` writes it)."""

    _index: int = PrivateAttr(default=0)

    @property
    def index(self) -> int:
        """Position in ``mesh:clusters`` (for messages)."""
        return self._index

    @property
    def key(self) -> str:
        """The config key of this entry, ``mesh:clusters[i]``."""
        return f"{NS}:clusters[{self.index}]"

    @property
    def reads_service_host(self) -> bool:
        """True when the program reads ``k8sServiceHost`` from the cluster (created or prepared)."""
        return self.create is not None or self.prepare_vpc_cni

    @property
    def vip(self) -> IPv4Address | None:
        """The VIP requested for the internal CLB (vip mode), else None."""
        return self.apiserver.vip

    @property
    def service_cidr(self) -> IPv4Network | None:
        """A created cluster's Service CIDR, else None."""
        return self.create.service_cidr if self.create is not None else None

    @property
    def own_version(self) -> str | None:
        """``mesh:clusters[i].cilium.version`` (None: the mesh's)."""
        return self.cilium.version if self.cilium is not None else None

    @property
    def needs_tencent(self) -> bool:
        """True when the program talks to the Tencent Cloud API for this cluster."""
        return self.apiserver.create_clb or self.kubeconfig_from in ("tkeApi", "create")

    if TYPE_CHECKING:  # every form of entry below answers these (as a field or a property)
        @property
        def kubeconfig_from(self) -> str:
            """``context``, ``tkeApi`` or ``create``: how the program reaches the cluster."""

        @property
        def context(self) -> str | None:
            """The kubeconfig context (context clusters), else None."""

        @property
        def tke_api(self) -> TkeApiSettings | None: ...

        @property
        def create(self) -> CreateSettings | None: ...

        @property
        def prepare_vpc_cni(self) -> bool: ...


class ContextCluster(ClusterSettings):
    """An existing cluster reached through a context of the kubeconfig file (the default)."""

    MISPLACED: ClassVar[dict[str, str]] = {
        "tkeApi": "is only used with kubeconfigFrom: tkeApi; set kubeconfigFrom: tkeApi or remove it",
    }

    kubeconfig_from: Annotated[Literal["context"], OneOf(KUBECONFIG_FROM_TEXT)] = "context"
    """``context`` (the default): a context of the kubeconfig file; ``tkeApi``: the TKE API, by cluster ID."""
    context: Annotated[str | None, Text("cls-abcd1234"), BeforeValidator(_not_null)] = None
    """The kubeconfig context (default: ``name``)."""
    prepare_vpc_cni: Bool = False
    """True: the program prepares this cluster for Cilium on VPC-CNI as it does created ones: the
    ``cni-config`` ConfigMap, TKE's kube-proxy / tke-cni-agent / ip-masq-agent kept off the nodes,
    ``k8sServiceHost`` read from ``default/kubernetes``."""

    @model_validator(mode="before")
    @classmethod
    def _context_defaults_to_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and "context" not in data and isinstance(data.get("name"), str) and data["name"]:
            return {**data, "context": data["name"]}
        return data

    @property
    def tke_api(self) -> None:
        return None

    @property
    def create(self) -> None:
        return None


class TkeApiCluster(ClusterSettings):
    """An existing cluster whose kubeconfig the program fetches through the TKE API, by cluster ID."""

    MISPLACED: ClassVar[dict[str, str]] = {
        "context": "is only used with kubeconfigFrom: context; with kubeconfigFrom: tkeApi the kubeconfig comes from "
                   "the TKE API: remove context",
    }

    kubeconfig_from: Annotated[Literal["tkeApi"], OneOf(KUBECONFIG_FROM_TEXT)]
    """``tkeApi``: the kubeconfig comes from the TKE API."""
    tke_api: Annotated[TkeApiSettings, BeforeValidator(_none_is_empty, json_schema_input_type=TkeApiSettings | None)
                       ] = Field(default_factory=lambda: TkeApiSettings())
    """Which endpoint's kubeconfig, and whether the program enables that endpoint."""
    prepare_vpc_cni: Bool = False
    """As for a context cluster."""

    @field_validator("name")
    @classmethod
    def _name_is_a_cluster_id(cls, name: str) -> str:
        if not TKE_CLUSTER_ID_RE.match(name):
            raise refuse(f"{quote(name)} is not a TKE cluster ID: with kubeconfigFrom: tkeApi the name is the cluster "
                         "ID the program looks up, like cls-abcd1234")
        return name

    @property
    def context(self) -> None:
        return None

    @property
    def create(self) -> None:
        return None


def _created_is_prepared(value: bool) -> bool:
    if value:
        raise refuse("a created cluster is always prepared for Cilium (cni-config, TKE's DaemonSets off, "
                     "k8sServiceHost read): remove prepareVpcCni")
    return value


class CreatedCluster(ClusterSettings):
    """A TKE cluster the program creates, Cilium-ready, reached through the intranet endpoint it enables."""

    MISPLACED: ClassVar[dict[str, str]] = {
        "kubeconfigFrom": "a created cluster is reached through the intranet endpoint the program enables in "
                          "create.endpointSubnetId; remove kubeconfigFrom",
        "tkeApi": "is for adopting an existing cluster (kubeconfigFrom: tkeApi); a created cluster's endpoint is "
                  "create.endpointSubnetId: remove tkeApi",
        "context": "a created cluster has no kubeconfig context (its kubeconfig comes from the endpoint the program "
                   "enables); remove context",
    }

    create: CreateSettings
    """The cluster the program creates."""
    prepare_vpc_cni: Annotated[Bool, AfterValidator(_created_is_prepared), Field(json_schema_extra={"const": False})
                               ] = False
    """A created cluster is always prepared for Cilium: leave it out."""

    @property
    def kubeconfig_from(self) -> str:
        return "create"

    @property
    def context(self) -> None:
        return None

    @property
    def tke_api(self) -> None:
        return None



def _how_reached(entry: Any) -> str:
    """The form of a cluster entry: ``create`` if it has a create block, ``tkeApi`` if it says so
    (or has a tkeApi block and no valid kubeconfigFrom), else ``context``."""
    if not isinstance(entry, dict):
        return "context"
    if "create" in entry:
        return "create"
    how = entry.get("kubeconfigFrom", "context")
    if how == "tkeApi" or (how != "context" and "tkeApi" in entry):
        return "tkeApi"
    return "context"


ClusterEntry = Annotated[
    Annotated[ContextCluster, Tag("context")] | Annotated[TkeApiCluster, Tag("tkeApi")]
    | Annotated[CreatedCluster, Tag("create")],
    Discriminator(_how_reached),
]
"""A ``mesh:clusters`` entry, by how the cluster is reached."""
AnyCluster = ContextCluster | TkeApiCluster | CreatedCluster
"""A typed cluster entry (each is a ``ClusterSettings``)."""

CLUSTER_KEYS: tuple[str, ...] = tuple(dict.fromkeys(
    k for form in (ContextCluster, TkeApiCluster, CreatedCluster) for k in form.keys()))
for _form in (ClusterSettings, ContextCluster, TkeApiCluster, CreatedCluster):
    _form.KNOWN = CLUSTER_KEYS
