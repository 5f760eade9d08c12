"""The stack configuration contract (``mesh:*`` keys), parsed and validated.

``parse_settings`` turns the raw ``mesh`` namespace of a stack's config into frozen
``Settings``, or raises ``MeshConfigError`` listing *every* problem at once, each
naming its key and how to fix it. Nothing here talks to Pulumi or a cluster: the
kubeconfig is checked separately (``meshcore.kubeconfig``) because it is only read
on a real run.
"""

from __future__ import annotations

import base64
import bisect
import difflib
import ipaddress
import json
import re
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Callable, Mapping, Optional, Sequence

from meshcore import certs, keys, presets, values as helm_values
from meshcore.errors import ConfigIssue, MeshConfigError

NS = "mesh"
"""The Pulumi config namespace of this program."""

DEFAULT_CHART_VERSION = "1.18.3"
DEFAULT_REPOSITORY = "https://helm.cilium.io/"
DEFAULT_APISERVER_PORT = 2379

# \Z, not $: $ also matches before a trailing newline (a YAML block scalar gives "cls-abc\n").
CLUSTER_NAME_RE = re.compile(r"^([a-z0-9][-a-z0-9]*)?[a-z0-9]\Z")
SUBNET_ID_RE = re.compile(r"^subnet-[a-z0-9]{8}\Z")
VPC_ID_RE = re.compile(r"^vpc-[a-z0-9]{8}\Z")
SG_ID_RE = re.compile(r"^sg-[a-z0-9]{8}\Z")
KEY_ID_RE = re.compile(r"^skey-[a-z0-9]{8}\Z")
TKE_CLUSTER_ID_RE = re.compile(r"^cls-[a-z0-9]{8}\Z")
K8S_VERSION_RE = re.compile(r"^1\.[0-9]{1,2}\.[0-9]{1,3}\Z")
INSTANCE_TYPE_RE = re.compile(r"^[A-Za-z0-9]+\.[A-Za-z0-9]+\Z")
REGION_RE = re.compile(r"^[a-z]{2,4}-[a-z]+(-[a-z0-9]+)?\Z")
CHART_1_18_RE = re.compile(r"^v?1\.18\.(0|[1-9][0-9]*)\Z")
REPOSITORY_RE = re.compile(r"^(https?|oci)://[^\s]+\Z")
OCI_CHART_RE = re.compile(r"^oci://[^\s/]+(/[^\s/:@]+)+\Z")
SUPPORTED_MAX_CONNECTED = (255, 511)

TOP_LEVEL_KEYS = (
    "cilium",
    "maxConnectedClusters",
    "masquerade",
    "hubbleRelay",
    "topology",
    "kubeconfig",
    "clusters",
    "ca",
    "allowIdentityChange",
    "caPrivateKey",
)
SECRET_KEYS = ("caPrivateKey",)
"""The only ``mesh`` keys that hold a secret (and must: ``pulumi config set --secret``)."""
UNREADABLE_SECRET = "[secret]"
"""What a secret's value reads as where it cannot be decrypted (the offline plan): not checked."""
CA_KEYS = ("generations", "signing", "certificate")
CILIUM_KEYS = ("version", "repository", "chart", "preset", "values", "skipAwait")
MASQUERADE_KEYS = ("mode", "extraNonMasqueradeCidrs")
MASQUERADE_MODES = ("none", "ipMasqAgent")
CLUSTER_KEYS = ("name", "id", "region", "context", "kubeconfigFrom", "tkeApi", "create", "prepareVpcCni", "podCidrs",
                "apiserver", "values")
KUBECONFIG_FROM = ("context", "tkeApi")
TKE_API_KEYS = ("endpoint", "enable", "subnetId", "securityGroup")
TKE_API_ENDPOINTS = ("intranet", "internet")
CREATE_KEYS = ("vpcId", "version", "serviceCidr", "eniSubnetIds", "endpointSubnetId", "deletionProtection", "nodePool")
NODE_POOL_KEYS = ("subnetIds", "instanceType", "minSize", "maxSize", "desiredCapacity", "systemDiskType", "systemDiskSize",
                  "securityGroupIds", "keyIds")
SYSTEM_DISK_TYPES = ("CLOUD_PREMIUM", "CLOUD_SSD", "CLOUD_BSSD", "CLOUD_HSSD", "CLOUD_TSSD", "LOCAL_BASIC", "LOCAL_SSD")
MAX_NODE_POOL_SIZE = 2000
"""An upper bound on a node pool's maxSize, to catch typos (TKE's own quotas are per account)."""
APISERVER_KEYS = ("subnetId", "vip", "createClb", "vpcId", "port")
TOPOLOGY_KEYS = ("peers",)


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class ApiserverSettings:
    """How a cluster's clustermesh-apiserver is exposed: an internal CLB in ``subnet_id``."""

    subnet_id: str
    vip: Optional[IPv4Address]
    """The VIP requested for the internal CLB (vip mode), or None (createClb mode)."""
    create_clb: bool
    """True: the program creates the internal CLB in ``subnet_id`` (needs ``vpc_id``)."""
    vpc_id: Optional[str]
    port: int


@dataclass(frozen=True)
class TkeApiSettings:
    """How an existing cluster's kubeconfig is fetched through the TKE API (``kubeconfigFrom: tkeApi``)."""

    endpoint: str
    """``intranet`` (the default) or ``internet``: which of the cluster's kubeconfigs is used."""
    enable: bool
    """True: the program enables that endpoint (a ``ClusterEndpoint`` resource); False: it must be on already."""
    subnet_id: Optional[str]
    """The intranet endpoint's subnet (enable + intranet)."""
    security_group: Optional[str]
    """The internet endpoint's security group (enable + internet)."""


@dataclass(frozen=True)
class NodePoolSettings:
    """The node pool of a created cluster, added once Cilium is installed."""

    subnet_ids: tuple[str, ...]
    instance_type: str
    min_size: int
    max_size: int
    desired_capacity: int
    system_disk_type: Optional[str]
    system_disk_size: Optional[int]
    security_group_ids: tuple[str, ...]
    key_ids: tuple[str, ...]


@dataclass(frozen=True)
class CreateSettings:
    """A TKE cluster the program creates, Cilium-ready (``create:``)."""

    vpc_id: str
    version: str
    """The Kubernetes version (``cluster_version``)."""
    service_cidr: IPv4Network
    eni_subnet_ids: tuple[str, ...]
    """The VPC-CNI pod subnets."""
    endpoint_subnet_id: str
    """The subnet of the cluster's intranet apiserver endpoint, which the program enables and uses."""
    deletion_protection: bool
    node_pool: NodePoolSettings


@dataclass(frozen=True)
class ClusterSettings:
    """One member of the mesh."""

    index: int
    """Position in ``mesh:clusters`` (for messages)."""
    name: str
    """TKE cluster ID and Cilium ``cluster.name``."""
    id: int
    """Cilium ``cluster.id``."""
    region: str
    context: Optional[str]
    """The kubeconfig context (``kubeconfigFrom: context``), else None."""
    pod_cidrs: tuple[IPv4Network, ...]
    apiserver: ApiserverSettings
    values: Mapping[str, Any]
    """Per-cluster Helm value overrides (never program-owned keys)."""
    kubeconfig_from: str = "context"
    """``context`` (a kubeconfig file), ``tkeApi`` (looked up by cluster ID) or ``create`` (created here)."""
    tke_api: Optional[TkeApiSettings] = None
    create: Optional[CreateSettings] = None
    prepare_vpc_cni: bool = False
    """An adopted cluster the program prepares for Cilium on VPC-CNI as it does created ones
    (``prepareVpcCni: true``): the ``cni-config`` ConfigMap, TKE's kube-proxy / tke-cni-agent /
    ip-masq-agent kept off the nodes, ``k8sServiceHost`` read from ``default/kubernetes``."""

    @property
    def reads_service_host(self) -> bool:
        """True when the program reads ``k8sServiceHost`` from the cluster (created or prepared)."""
        return self.create is not None or self.prepare_vpc_cni

    @property
    def needs_tencent(self) -> bool:
        """True when the program talks to the Tencent Cloud API for this cluster."""
        return self.apiserver.create_clb or self.kubeconfig_from in ("tkeApi", "create")

    @property
    def key(self) -> str:
        """The config key of this entry, ``mesh:clusters[i]``."""
        return f"{NS}:clusters[{self.index}]"


@dataclass(frozen=True)
class CiliumSettings:
    version: str
    repository: str
    values: Mapping[str, Any]
    """Base Helm values for every cluster, as the stack sets them (``mesh:cilium.values``)."""
    preset: Optional[str] = None
    """A named preset (``meshcore.presets``) merged under ``values``."""
    chart: Optional[str] = None
    """Where the chart is instead of ``repository``: a local directory or ``.tgz`` (relative to the
    project directory), or an ``oci://`` reference without a tag; None: chart ``cilium`` of ``repository``."""
    skip_await: bool = False
    """True: releases do not wait for Cilium's pods to be ready (``mesh:cilium.skipAwait``)."""
    base_values: Mapping[str, Any] = field(default=None)  # type: ignore[assignment]
    """The preset's values with ``values`` merged over them: what every release starts from."""

    def __post_init__(self) -> None:
        if self.base_values is None:
            object.__setattr__(self, "base_values", helm_values.deep_merge(presets.preset_values(self.preset), self.values))


@dataclass(frozen=True)
class MasqueradeSettings:
    mode: str
    """``none``: the program sets no masquerade value; ``ipMasqAgent``: eBPF masquerade
    with every cluster's pod CIDRs (plus extras) as non-masquerade CIDRs."""
    extra_non_masquerade_cidrs: tuple[IPv4Network, ...]


@dataclass(frozen=True)
class CaSettings:
    """The mesh CAs: every generation listed is trusted; ``signing`` signs the certificates.

    One generation (the default, ``[1]``) is the normal state. A rotation lists two: add the
    new one (both trusted, the old still signing), switch ``signing``, then drop the old one.
    """

    generations: tuple[int, ...]
    signing: int
    provided_certificate: Optional[str] = None
    """The PEM of a CA the stack brings (``mesh:ca.certificate``, its key in the secret
    ``mesh:caPrivateKey``) instead of one the program generates; then ``generations == (1,)``."""


@dataclass(frozen=True)
class Settings:
    """The whole validated ``mesh:*`` configuration of a stack."""

    cilium: CiliumSettings
    max_connected_clusters: int
    masquerade: MasqueradeSettings
    hubble_relay: bool
    full_mesh: bool
    """True for ``mesh:topology: full``."""
    kubeconfig: Optional[str]
    clusters: tuple[ClusterSettings, ...]
    peers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    ca: "CaSettings" = field(default_factory=lambda: CaSettings(generations=(1,), signing=1))
    allow_identity_change: frozenset[str] = frozenset()
    """Clusters whose Cilium name or id may change in this update (a disruptive, deliberate act)."""
    """Cluster name -> its peers' names, symmetric, ordered by peer cluster id."""

    def cluster(self, name: str) -> ClusterSettings:
        for c in self.clusters:
            if c.name == name:
                return c
        raise KeyError(name)


@dataclass
class _Partial:
    """What parsed of one cluster entry, for the checks across clusters."""

    index: int
    name: Optional[str] = None
    id: Optional[int] = None
    context: Optional[str] = None
    pod_cidrs: list[IPv4Network] = field(default_factory=list)
    vip: Optional[IPv4Address] = None
    subnet_id: Optional[str] = None
    values: Mapping[str, Any] = field(default_factory=dict)
    created: bool = False
    reads_service_host: bool = False
    """Created, or adopted with prepareVpcCni: the program sets k8sServiceHost/k8sServicePort."""
    service_cidr: Optional[IPv4Network] = None

    @property
    def key(self) -> str:
        return f"{NS}:clusters[{self.index}]"


# --------------------------------------------------------------------------- decoding


def decode_config(items: Mapping[str, str]) -> dict[str, Any]:
    """Decode the string values Pulumi hands a program (``namespace:key`` -> str).

    Structured values arrive JSON-encoded, booleans and numbers as their JSON text.
    Keys outside the ``mesh`` namespace are ignored; ``mesh:kubeconfig`` is a path and
    stays a string.
    """
    out: dict[str, Any] = {}
    prefix = f"{NS}:"
    for full_key, raw in items.items():
        if not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix) :]
        if key == "kubeconfig" or not isinstance(raw, str):
            out[key] = raw
            continue
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


# --------------------------------------------------------------------------- reading


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _quote(value: str) -> str:
    """A user string in a message: 'as typed', or JSON-escaped if it holds a newline or
    another unprintable character (each issue is printed as one line)."""
    return f"'{value}'" if value.isprintable() else json.dumps(value)


def _part(value: Any) -> str:
    """A user's mapping key as part of a config key (unprintable characters escaped)."""
    text = str(value)
    return text if text.isprintable() else json.dumps(text)[1:-1]


def _submap(values: Mapping[str, Any], k: str) -> Mapping[str, Any]:
    """``values[k]`` if it is a mapping, else an empty one (Helm values may hold anything)."""
    v = values.get(k)
    return v if isinstance(v, dict) else {}


class _Required:
    """Required keys of one mapping: each missing one reported, whether all were there kept."""

    def __init__(self, issues: "_Issues", m: Mapping[str, Any], key: str) -> None:
        self.issues, self.m, self.key, self.ok = issues, m, key, True

    def need(self, k: str) -> Any:
        value = self.issues.required(self.m, self.key, k)
        self.ok = self.ok and value is not None
        return value


class _Issues:
    def __init__(self) -> None:
        self.items: list[ConfigIssue] = []

    def add(self, key: str, message: str) -> None:
        self.items.append(ConfigIssue(key, message))

    def mapping(self, value: Any, key: str, allowed: Sequence[str], example: str) -> Optional[dict]:
        """``value`` as a mapping whose keys are all in ``allowed`` (typos reported)."""
        if not isinstance(value, dict):
            self.add(key, f"must be a mapping, got {_type_name(value)}; e.g. {example}")
            return None
        for k in value:
            if k not in allowed:
                near = difflib.get_close_matches(str(k), allowed, n=1, cutoff=0.6)
                hint = f"did you mean '{near[0]}'? " if near else ""
                self.add(
                    keys.join(key, _part(k)),
                    f"unknown key; {hint}the keys here are: {', '.join(allowed)}",
                )
        return value

    def required(self, m: Mapping[str, Any], key: str, k: str) -> Any:
        """``m[k]``, or None after reporting it missing (or null)."""
        if m.get(k) is None:
            self.add(f"{key}.{k}", "is required" if k not in m else "is required, got null")
            return None
        return m[k]

    def string(self, value: Any, key: str, example: str) -> Optional[str]:
        if isinstance(value, str) and value:
            return value
        self.add(key, f"must be a non-empty string, got {_type_name(value)}; e.g. {example}")
        return None

    def integer(self, value: Any, key: str, lo: int, hi: int, what: str) -> Optional[int]:
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(key, f"must be an integer in {lo}..{hi} ({what}), got {_type_name(value)} {json.dumps(value)}")
            return None
        if not lo <= value <= hi:
            self.add(key, f"{value} is out of range: must be in {lo}..{hi} ({what})")
            return None
        return value

    def boolean(self, value: Any, key: str) -> Optional[bool]:
        if isinstance(value, bool):
            return value
        self.add(key, f"must be true or false, got {_type_name(value)} {json.dumps(value)}")
        return None

    def network(self, value: Any, key: str) -> Optional[IPv4Network]:
        if not isinstance(value, str):
            self.add(key, f"must be an IPv4 CIDR string like 172.16.0.0/16, got {_type_name(value)}")
            return None
        try:
            net = ipaddress.ip_network(value, strict=True)
        except ValueError as err:
            try:
                fixed = ipaddress.ip_network(value, strict=False)
            except ValueError:
                self.add(key, f"{_quote(value)} is not a valid IPv4 CIDR ({err}); write it like 172.16.0.0/16")
            else:
                self.add(key, f"{_quote(value)} has host bits set; write the network address: {fixed}")
            return None
        if not isinstance(net, IPv4Network):
            self.add(key, f"{_quote(value)} is IPv6; this mesh is IPv4 only: give an IPv4 CIDR like 172.16.0.0/16")
            return None
        return net

    def address(self, value: Any, key: str) -> Optional[IPv4Address]:
        if not isinstance(value, str):
            self.add(key, f"must be an IPv4 address string like 10.0.1.100, got {_type_name(value)}")
            return None
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            self.add(key, f"{_quote(value)} is not a valid IPv4 address; write it like 10.0.1.100")
            return None
        if not isinstance(addr, IPv4Address):
            self.add(key, f"{_quote(value)} is IPv6; give the IPv4 VIP of the internal CLB")
            return None
        return addr


# --------------------------------------------------------------------------- parsing


def parse_settings(raw: Mapping[str, Any], secret_keys: Sequence[str] = ()) -> Settings:
    """Validate the decoded ``mesh`` namespace and return ``Settings``.

    ``secret_keys`` are the ``mesh`` keys the stack holds as secrets (without the
    namespace). Raises ``MeshConfigError`` with every problem found; the checks that
    relate several fields run on the fields that parsed.
    """
    issues = _Issues()
    for k in sorted(set(secret_keys) - set(SECRET_KEYS)):
        # The mesh settings end up in Helm values, component inputs and plan files as
        # plain text; a secret there would be silently unwrapped.
        issues.add(f"{NS}:{k}", "holds a secure value; mesh settings are not secret and are written in plain "
                   "text into Helm values and plans: keep secrets out of mesh:* keys (e.g. in a Kubernetes Secret); "
                   "the one secret key is mesh:caPrivateKey")
    top_allowed = TOP_LEVEL_KEYS
    for k in raw:
        if k not in top_allowed:
            near = difflib.get_close_matches(k, top_allowed, n=1, cutoff=0.6)
            hint = f"did you mean '{NS}:{near[0]}'? " if near else ""
            issues.add(f"{NS}:{_part(k)}", f"unknown key; {hint}the keys of this program are: "
                       + ", ".join(f"{NS}:{t}" for t in top_allowed))

    max_connected = _parse_max_connected(raw, issues)
    cilium = _parse_cilium(raw.get("cilium", {}), issues)
    masquerade = _parse_masquerade(raw.get("masquerade", {}), issues)
    hubble_relay = True
    if "hubbleRelay" in raw:
        hubble_relay = bool(issues.boolean(raw["hubbleRelay"], f"{NS}:hubbleRelay"))
    kubeconfig = None
    if raw.get("kubeconfig") is not None:
        kubeconfig = issues.string(raw["kubeconfig"], f"{NS}:kubeconfig", "~/.kube/mesh.yaml")

    partials: list[_Partial] = []
    clusters = _parse_clusters(raw.get("clusters"), max_connected, issues, partials)
    _check_identities(partials, max_connected, issues)
    _check_addresses(partials, cilium, issues)
    _check_service_cidrs(partials, issues)
    full_mesh, peers = _parse_topology(raw.get("topology", "full"), partials, issues)
    _check_owned_values(cilium, partials, masquerade, issues)
    _check_service_host(cilium, partials, issues)
    _check_masquerade_safety(cilium, partials, masquerade, issues)
    if hubble_relay:
        _check_hubble_enabled(cilium, partials, issues)
    for c in clusters:
        if c.create is not None and (cilium is None or cilium.preset != "tke-vpc-cni"):
            issues.add(f"{c.key}.create", "a created cluster runs VPC-CNI with kube-proxy, tke-cni-agent and "
                       "ip-masq-agent kept off its nodes, so Cilium must replace them: set mesh:cilium.preset: "
                       "tke-vpc-cni (override its values in mesh:cilium.values if needed)")
        if c.prepare_vpc_cni and (cilium is None or cilium.preset != "tke-vpc-cni"):
            issues.add(f"{c.key}.prepareVpcCni", "prepares the cluster for the tke-vpc-cni preset (its cni-config "
                       "chain, kube-proxy, tke-cni-agent and ip-masq-agent kept off the nodes): set "
                       "mesh:cilium.preset: tke-vpc-cni, or remove prepareVpcCni")
    ca = _parse_ca(raw.get("ca", {}), issues)
    _check_provided_ca_key(raw, secret_keys, issues)
    allowed = _parse_allow_identity_change(raw.get("allowIdentityChange", []), partials, issues)

    if issues.items:
        raise MeshConfigError(issues.items)
    assert cilium is not None and masquerade is not None
    return Settings(
        cilium=cilium,
        max_connected_clusters=max_connected,
        masquerade=masquerade,
        hubble_relay=hubble_relay,
        full_mesh=full_mesh,
        kubeconfig=kubeconfig,
        clusters=tuple(clusters),
        peers=peers,
        ca=ca,
        allow_identity_change=allowed,
    )


PEM_CERTIFICATE = "CERTIFICATE"
PEM_RSA_KEY = "RSA PRIVATE KEY"


def pem_blocks(text: str) -> list[tuple[str, bytes]]:
    """The (type, DER bytes) of every PEM block in ``text``; ValueError if one is malformed."""
    blocks: list[tuple[str, bytes]] = []
    for m in re.finditer(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END ([A-Z0-9 ]+)-----", text, re.S):
        if m.group(1) != m.group(3):
            raise ValueError(f"a PEM block begins as {m.group(1)} and ends as {m.group(3)}")
        body = "".join(m.group(2).split())
        try:
            blocks.append((m.group(1), base64.b64decode(body, validate=True)))
        except ValueError:
            raise ValueError(f"the {m.group(1)} block is not valid base64") from None
    return blocks


def _parse_provided_ca(value: Any, key: str, issues: _Issues) -> Optional[str]:
    """``mesh:ca.certificate``: one PEM CERTIFICATE block (what the chart's buildCustomCert parses)."""
    if not isinstance(value, str) or not value.strip():
        issues.add(key, f"must be the CA certificate as PEM text (-----BEGIN CERTIFICATE----- ...), got "
                        f"{_type_name(value)}")
        return None
    try:
        blocks = pem_blocks(value)
    except ValueError as err:
        issues.add(key, f"is not valid PEM: {err}")
        return None
    if [t for t, _ in blocks] != [PEM_CERTIFICATE]:
        issues.add(key, f"must hold exactly one CERTIFICATE PEM block (the CA's own certificate), found "
                        f"{[t for t, _ in blocks] or 'none'}")
        return None
    try:
        certs.not_after(value)
    except ValueError as err:
        issues.add(key, f"is not a readable X.509 certificate ({err}); give the CA certificate as "
                        "`openssl x509 -in ca.crt` prints it")
        return None
    return value.strip() + "\n"


def _check_provided_ca_key(raw: Mapping[str, Any], secret_keys: Sequence[str], issues: _Issues) -> None:
    """``mesh:caPrivateKey`` goes with ``mesh:ca.certificate``, as a secret PKCS#1 RSA PEM key.
    Its text is never part of a message."""
    key = f"{NS}:caPrivateKey"
    ca_raw = raw.get("ca")
    if not (isinstance(ca_raw, dict) and "certificate" in ca_raw):
        if "caPrivateKey" in raw:
            issues.add(key, "is only used with mesh:ca.certificate (a CA you bring); set both, or remove "
                            "mesh:caPrivateKey and let the program generate the mesh CA")
        return
    if "caPrivateKey" not in raw:
        issues.add(key, "is required with mesh:ca.certificate: the CA's private key, as a secret "
                        "(pulumi config set --secret mesh:caPrivateKey < ca.key)")
        return
    if "caPrivateKey" not in secret_keys:
        issues.add(key, "must be a secret: it is the CA's private key; set it with "
                        "pulumi config set --secret mesh:caPrivateKey < ca.key (and rotate this key: it was in plain text)")
        return
    text = raw["caPrivateKey"]
    if text == UNREADABLE_SECRET:
        return
    try:
        types = [t for t, _ in pem_blocks(text)] if isinstance(text, str) else []
    except ValueError:
        types = ["(malformed)"]
    if types != [PEM_RSA_KEY]:
        issues.add(key, "must hold one RSA PRIVATE KEY PEM block (PKCS#1, what the Cilium chart's buildCustomCert "
                        "and genSignedCert are known to accept); convert a PKCS#8 key with "
                        "openssl rsa -in ca.key -traditional")


def _parse_ca(value: Any, issues: _Issues) -> CaSettings:
    key = f"{NS}:ca"
    default = CaSettings(generations=(1,), signing=1)
    m = issues.mapping(value, key, CA_KEYS, "{generations: [1, 2], signing: 1}")
    if m is None:
        return default
    if "certificate" in m:
        for k in ("generations", "signing"):
            if k in m:
                issues.add(f"{key}.{k}", "is for rotating a CA the program generates; a CA you bring "
                                         "(mesh:ca.certificate) is one generation: remove this key")
        cert = _parse_provided_ca(m["certificate"], f"{key}.certificate", issues)
        return CaSettings(generations=(1,), signing=1, provided_certificate=cert)
    gens_raw = m.get("generations", [1])
    gens: list[int] = []
    if not isinstance(gens_raw, list) or not gens_raw:
        issues.add(f"{key}.generations", f"must be a non-empty list of CA generations (1, 2, ...), got "
                                         f"{_type_name(gens_raw)}")
        return default
    for i, g in enumerate(gens_raw):
        n = issues.integer(g, f"{key}.generations[{i}]", 1, 1000, "a CA generation")
        if n is not None:
            if n in gens:
                issues.add(f"{key}.generations[{i}]", f"generation {n} is listed twice")
            else:
                gens.append(n)
    if len(gens_raw) > 2:
        issues.add(f"{key}.generations", "list at most two generations: the CA being retired and its successor")
    signing = m.get("signing", gens[0] if len(gens) == 1 else None)
    if signing is None:
        issues.add(f"{key}.signing", "is required while two CA generations are trusted: the one that signs")
        return default
    if signing not in gens:
        issues.add(f"{key}.signing", f"{json.dumps(signing)} is not one of mesh:ca.generations {gens}")
        return default
    return CaSettings(generations=tuple(gens), signing=int(signing))


def _parse_allow_identity_change(value: Any, partials: Sequence[_Partial], issues: _Issues) -> frozenset[str]:
    key = f"{NS}:allowIdentityChange"
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        issues.add(key, f"must be a list of cluster names, got {_type_name(value)}")
        return frozenset()
    names = {c.name for c in partials if c.name}
    for i, v in enumerate(value):
        if v not in names:
            issues.add(f"{key}[{i}]", f"{_quote(v)} is not in mesh:clusters; list the cluster's new name")
    return frozenset(value)


def _parse_max_connected(raw: Mapping[str, Any], issues: _Issues) -> int:
    if "maxConnectedClusters" not in raw:
        return 255
    value = raw["maxConnectedClusters"]
    if isinstance(value, bool) or value not in SUPPORTED_MAX_CONNECTED:
        issues.add(
            f"{NS}:maxConnectedClusters",
            f"must be 255 or 511 (the only values Cilium 1.18 supports), got {json.dumps(value)}; "
            "it cannot be changed on running clusters, so leave 255 unless you need more than 255 clusters",
        )
        return 255
    return int(value)


def _parse_cilium(value: Any, issues: _Issues) -> Optional[CiliumSettings]:
    key = f"{NS}:cilium"
    m = issues.mapping(value, key, CILIUM_KEYS, "{version: 1.18.3, values: {}}")
    if m is None:
        return None
    version = DEFAULT_CHART_VERSION
    if "version" in m:
        v = m["version"]
        if isinstance(v, float):  # YAML reads 1.18 as a number
            v = str(v)
        if not isinstance(v, str) or not CHART_1_18_RE.match(v):
            issues.add(
                f"{key}.version",
                f"chart version {json.dumps(v)} is not supported: this program generates values for "
                "the Cilium 1.18.x chart (list-shaped clustermesh.config.clusters; 1.20 changes it to a map); "
                f"set a 1.18 patch release such as {DEFAULT_CHART_VERSION}",
            )
        else:
            version = v.lstrip("v")
    repository = DEFAULT_REPOSITORY
    if "repository" in m:
        r = issues.string(m["repository"], f"{key}.repository", DEFAULT_REPOSITORY)
        if r is not None:
            if not REPOSITORY_RE.match(r):
                issues.add(f"{key}.repository", f"{_quote(r)} is not a chart repository URL; e.g. {DEFAULT_REPOSITORY}")
            else:
                repository = r
    values: Mapping[str, Any] = {}
    if "values" in m and m["values"] is not None:
        if not isinstance(m["values"], dict):
            issues.add(f"{key}.values", f"must be a mapping of Helm values, got {_type_name(m['values'])}")
        else:
            values = m["values"]
    preset = None
    if m.get("preset") is not None:
        p = m["preset"]
        if not isinstance(p, str) or p not in presets.PRESETS:
            shown = _quote(p) if isinstance(p, str) else f"{_type_name(p)} {json.dumps(p, default=str)}"
            issues.add(f"{key}.preset", f"{shown} is not a preset of this program; the presets are: "
                                        f"{', '.join(presets.PRESETS)} (or leave it out and set mesh:cilium.values)")
        else:
            preset = p
    chart = None
    if "chart" in m:
        chart = _parse_chart(m["chart"], f"{key}.chart", issues)
        if "repository" in m:
            issues.add(f"{key}.repository", "is not used with mesh:cilium.chart (a local chart or an oci:// "
                                            "reference): remove one of the two")
    skip_await = False
    if "skipAwait" in m:
        skip_await = bool(issues.boolean(m["skipAwait"], f"{key}.skipAwait"))
    return CiliumSettings(version=version, repository=repository, values=values, preset=preset, chart=chart,
                          skip_await=skip_await)


def _parse_chart(value: Any, key: str, issues: _Issues) -> Optional[str]:
    """A local chart (directory or .tgz; whether it exists is checked by ``meshcore.chart`` where the
    program runs) or an ``oci://`` reference; the version is always ``mesh:cilium.version``."""
    c = issues.string(value, key, "./charts/cilium-1.18.3.tgz or oci://registry.example.com/cilium/cilium")
    if c is None:
        return None
    if "://" in c:
        if not c.startswith("oci://"):
            issues.add(key, f"{_quote(c)}: a chart reference is a local path or oci://HOST/PATH; for an https "
                            "chart repository set mesh:cilium.repository instead")
            return None
        if not OCI_CHART_RE.match(c):
            issues.add(key, f"{_quote(c)} is not an OCI chart reference like oci://registry.example.com/cilium/cilium "
                            "(no tag or digest: the version is mesh:cilium.version)")
            return None
    elif not c.isprintable():
        issues.add(key, f"{_quote(c)} is not a usable path")
        return None
    return c


def _parse_masquerade(value: Any, issues: _Issues) -> Optional[MasqueradeSettings]:
    key = f"{NS}:masquerade"
    m = issues.mapping(value, key, MASQUERADE_KEYS, "{mode: none}")
    if m is None:
        return None
    mode = m.get("mode", "none")
    mode_ok = mode in MASQUERADE_MODES
    if not mode_ok:
        issues.add(f"{key}.mode", f"must be one of: {', '.join(MASQUERADE_MODES)}; got {json.dumps(mode)}")
        mode = "none"
    extras: list[IPv4Network] = []
    raw_extras = m.get("extraNonMasqueradeCidrs", [])
    if not isinstance(raw_extras, list):
        issues.add(f"{key}.extraNonMasqueradeCidrs", f"must be a list of IPv4 CIDRs, got {_type_name(raw_extras)}")
    else:
        for i, item in enumerate(raw_extras):
            net = issues.network(item, f"{key}.extraNonMasqueradeCidrs[{i}]")
            if net is not None:
                extras.append(net)
        if extras and mode_ok and mode != "ipMasqAgent":
            issues.add(
                f"{key}.extraNonMasqueradeCidrs",
                "is only used with mode: ipMasqAgent; set mesh:masquerade.mode to ipMasqAgent or remove the list",
            )
    return MasqueradeSettings(mode=mode, extra_non_masquerade_cidrs=tuple(extras))


def _parse_clusters(
    value: Any, max_connected: int, issues: _Issues, partials: list[_Partial]
) -> list[ClusterSettings]:
    key = f"{NS}:clusters"
    if value is None:
        issues.add(key, "is required: list the clusters of the mesh, each with name, id, region, podCidrs and apiserver")
        return []
    if not isinstance(value, list) or not value:
        issues.add(key, f"must be a non-empty list of clusters, got {_type_name(value)}")
        return []
    if len(value) > max_connected:
        issues.add(
            key,
            f"{len(value)} clusters is more than a Cilium mesh can hold with maxConnectedClusters "
            f"{max_connected}; split the fleet into several meshes"
            + (" or set mesh:maxConnectedClusters: 511 on new clusters" if max_connected == 255 and len(value) <= 511 else ""),
        )
        return []
    out: list[ClusterSettings] = []
    for i, entry in enumerate(value):
        partial = _Partial(index=i)
        partials.append(partial)
        c = _parse_cluster(i, entry, max_connected, issues, partial)
        if c is not None:
            out.append(c)
    return out


def _parse_cluster(
    i: int, entry: Any, max_connected: int, issues: _Issues, partial: _Partial
) -> Optional[ClusterSettings]:
    key = f"{NS}:clusters[{i}]"
    m = issues.mapping(entry, key, CLUSTER_KEYS, "{name: cls-abcd1234, id: 1, region: ap-guangzhou, ...}")
    if m is None:
        return None
    ok = True

    required = _Required(issues, m, key)
    need = required.need

    name = need("name")
    if name is not None:
        name = _check_cluster_name(name, f"{key}.name", issues)
        ok = ok and name is not None
    cid = need("id")
    if cid is not None:
        cid = issues.integer(cid, f"{key}.id", 1, max_connected, "Cilium cluster.id; 0 is reserved")
        ok = ok and cid is not None
    region = need("region")
    if region is not None:
        region = issues.string(region, f"{key}.region", "ap-guangzhou")
        if region is not None and not REGION_RE.match(region):
            issues.add(f"{key}.region", f"{_quote(region)} is not a Tencent Cloud region; write it like ap-guangzhou")
            region = None
        ok = ok and region is not None
    kubeconfig_from, context, tke_api, create, source_ok = _parse_cluster_source(m, key, name, issues)
    ok = ok and source_ok
    pod_cidrs: list[IPv4Network] = []
    raw_cidrs = need("podCidrs")
    if raw_cidrs is not None:
        if isinstance(raw_cidrs, list) and not raw_cidrs:
            issues.add(f"{key}.podCidrs", "is an empty list; list the CIDRs this cluster's pods get their IPs "
                                          "from, e.g. podCidrs: [172.16.0.0/16]")
            ok = False
        elif not isinstance(raw_cidrs, list):
            issues.add(f"{key}.podCidrs", f"must be a non-empty list of IPv4 CIDRs, got {_type_name(raw_cidrs)}")
            ok = False
        else:
            for j, item in enumerate(raw_cidrs):
                net = issues.network(item, f"{key}.podCidrs[{j}]")
                if net is None:
                    ok = False
                else:
                    pod_cidrs.append(net)
    apiserver = None
    raw_api = need("apiserver")
    if raw_api is not None:
        apiserver = _parse_apiserver(raw_api, f"{key}.apiserver", issues)
        ok = ok and apiserver is not None
    values: Mapping[str, Any] = {}
    if m.get("values") is not None:
        if not isinstance(m["values"], dict):
            issues.add(f"{key}.values", f"must be a mapping of Helm values, got {_type_name(m['values'])}")
            ok = False
        else:
            values = m["values"]
    partial.name, partial.id, partial.context = name, cid, context
    partial.pod_cidrs = pod_cidrs
    partial.values = values
    partial.created = "create" in m
    prepare = False
    if "prepareVpcCni" in m:
        b = issues.boolean(m["prepareVpcCni"], f"{key}.prepareVpcCni")
        if b is None:
            ok = False
        elif b and partial.created:
            issues.add(f"{key}.prepareVpcCni", "a created cluster is always prepared for Cilium (cni-config, TKE's "
                                               "DaemonSets off, k8sServiceHost read): remove prepareVpcCni")
            ok = False
        prepare = bool(b)
    partial.reads_service_host = partial.created or prepare
    partial.service_cidr = create.service_cidr if create is not None else _raw_service_cidr(m.get("create"))
    if apiserver is not None:
        partial.vip, partial.subnet_id = apiserver.vip, apiserver.subnet_id
    elif isinstance(raw_api, dict) and isinstance(raw_api.get("vip"), str):
        # Keep the VIP for the uniqueness and overlap checks even when a sibling key is wrong.
        try:
            partial.vip = ipaddress.IPv4Address(raw_api["vip"])
        except ValueError:
            pass
    ok = ok and required.ok
    if not ok:
        return None
    return ClusterSettings(
        index=i,
        name=name,
        id=cid,
        region=region,
        context=context,
        pod_cidrs=tuple(pod_cidrs),
        apiserver=apiserver,  # type: ignore[arg-type]
        values=values,
        kubeconfig_from=kubeconfig_from,
        tke_api=tke_api,
        create=create,
        prepare_vpc_cni=prepare,
    )


def _raw_service_cidr(create: Any) -> Optional[IPv4Network]:
    """A create block's serviceCidr when it parses, for the overlap check even when a sibling key is wrong."""
    if isinstance(create, dict) and isinstance(create.get("serviceCidr"), str):
        try:
            net = ipaddress.ip_network(create["serviceCidr"], strict=True)
        except ValueError:
            return None
        return net if isinstance(net, IPv4Network) else None
    return None


def _parse_cluster_source(
    m: Mapping[str, Any], key: str, name: Optional[str], issues: _Issues
) -> tuple[str, Optional[str], Optional[TkeApiSettings], Optional[CreateSettings], bool]:
    """Where a cluster's kubeconfig comes from: (kubeconfig_from, context, tkeApi, create, ok).

    ``context`` (default): a context of the kubeconfig file; ``kubeconfigFrom: tkeApi``: the
    TKE API by cluster ID; ``create:``: the cluster is created and reached through the
    intranet endpoint the program enables. Keys of another mode are refused, not ignored.
    """
    ok = True
    if "create" in m:
        for k, why in (
            ("kubeconfigFrom", "a created cluster is reached through the intranet endpoint the program enables in "
                               "create.endpointSubnetId; remove kubeconfigFrom"),
            ("tkeApi", "is for adopting an existing cluster (kubeconfigFrom: tkeApi); a created cluster's endpoint is "
                       "create.endpointSubnetId: remove tkeApi"),
            ("context", "a created cluster has no kubeconfig context (its kubeconfig comes from the endpoint the "
                        "program enables); remove context"),
        ):
            if k in m:
                issues.add(f"{key}.{k}", why)
                ok = False
        create = _parse_create(m["create"], f"{key}.create", issues)
        return "create", None, None, create, ok and create is not None
    kubeconfig_from = "context"
    if "kubeconfigFrom" in m:
        raw = m["kubeconfigFrom"]
        if raw not in KUBECONFIG_FROM or not isinstance(raw, str):
            shown = _quote(raw) if isinstance(raw, str) else json.dumps(raw, default=str)
            issues.add(f"{key}.kubeconfigFrom", f"must be context (a kubeconfig context, the default) or tkeApi (the "
                                                f"TKE API, by cluster ID), got {shown}; to create the cluster, "
                                                "write a create: block instead")
            return "context", None, None, None, False
        kubeconfig_from = raw
    if kubeconfig_from == "tkeApi":
        if "context" in m:
            issues.add(f"{key}.context", "is only used with kubeconfigFrom: context; with kubeconfigFrom: tkeApi the "
                                         "kubeconfig comes from the TKE API: remove context")
            ok = False
        if isinstance(name, str) and not TKE_CLUSTER_ID_RE.match(name):
            issues.add(f"{key}.name", f"{_quote(name)} is not a TKE cluster ID: with kubeconfigFrom: tkeApi the name is "
                                      "the cluster ID the program looks up, like cls-abcd1234")
            ok = False
        tke_api = _parse_tke_api(m.get("tkeApi", {}), f"{key}.tkeApi", issues)
        return "tkeApi", None, tke_api, None, ok and tke_api is not None
    if "tkeApi" in m:
        issues.add(f"{key}.tkeApi", "is only used with kubeconfigFrom: tkeApi; set kubeconfigFrom: tkeApi or remove it")
        ok = False
    context = m.get("context", name)
    if "context" in m:
        context = issues.string(m["context"], f"{key}.context", "cls-abcd1234")
        ok = ok and context is not None
    return "context", context, None, None, ok


def _resource_id(value: Any, key: str, regex: re.Pattern, what: str, issues: _Issues) -> Optional[str]:
    """A Tencent Cloud resource ID of the given shape (``what`` e.g. 'subnet')."""
    if isinstance(value, str) and regex.match(value):
        return value
    issues.add(key, f"{json.dumps(value, default=str)} is not a {what} ID: write '{regex.pattern[1:].split('[')[0]}' "
                    "and 8 lowercase letters or digits")
    return None


def _id_list(value: Any, key: str, regex: re.Pattern, what: str, issues: _Issues, *, required: bool) -> Optional[tuple[str, ...]]:
    if value is None and not required:
        return ()
    if not isinstance(value, list) or (required and not value):
        issues.add(key, f"must be a {'non-empty ' if required else ''}list of {what} IDs, got {_type_name(value)}")
        return None
    out: list[str] = []
    ok = True
    for i, v in enumerate(value):
        got = _resource_id(v, f"{key}[{i}]", regex, what, issues)
        if got is None:
            ok = False
        elif got in out:
            issues.add(f"{key}[{i}]", f"{got} is listed twice")
            ok = False
        else:
            out.append(got)
    return tuple(out) if ok else None


def _parse_tke_api(value: Any, key: str, issues: _Issues) -> Optional[TkeApiSettings]:
    m = issues.mapping(value if value is not None else {}, key, TKE_API_KEYS, "{endpoint: intranet}")
    if m is None:
        return None
    ok = True
    endpoint = m.get("endpoint", "intranet")
    if endpoint not in TKE_API_ENDPOINTS or not isinstance(endpoint, str):
        issues.add(f"{key}.endpoint", f"must be intranet (the default: the VPC-internal apiserver endpoint) or internet, "
                                      f"got {json.dumps(endpoint, default=str)}")
        return None
    enable = False
    if "enable" in m:
        b = issues.boolean(m["enable"], f"{key}.enable")
        if b is None:
            return None
        enable = b
    subnet_id = security_group = None
    needed = "subnetId" if endpoint == "intranet" else "securityGroup"
    for k, regex, what in (("subnetId", SUBNET_ID_RE, "subnet"), ("securityGroup", SG_ID_RE, "security group")):
        if k not in m:
            if enable and k == needed:
                where = ("the subnet of the intranet endpoint" if k == "subnetId"
                         else "the security group of the internet endpoint")
                issues.add(f"{key}.{k}", f"is required with enable: true and endpoint: {endpoint}: {where}")
                ok = False
            continue
        if not enable or k != needed:
            issues.add(f"{key}.{k}", f"is only used with enable: true and endpoint: "
                                     f"{'intranet' if k == 'subnetId' else 'internet'}; remove it")
            ok = False
            continue
        got = _resource_id(m[k], f"{key}.{k}", regex, what, issues)
        ok = ok and got is not None
        if k == "subnetId":
            subnet_id = got
        else:
            security_group = got
    if not ok:
        return None
    return TkeApiSettings(endpoint=endpoint, enable=enable, subnet_id=subnet_id, security_group=security_group)


def _parse_create(value: Any, key: str, issues: _Issues) -> Optional[CreateSettings]:
    m = issues.mapping(value, key, CREATE_KEYS, "{vpcId: vpc-abcd1234, version: 1.32.2, serviceCidr: 10.200.0.0/22, "
                                                "eniSubnetIds: [subnet-abcd1234], endpointSubnetId: subnet-abcd1234, "
                                                "nodePool: {...}}")
    if m is None:
        return None
    ok = True

    required = _Required(issues, m, key)
    need = required.need

    vpc_id = need("vpcId")
    if vpc_id is not None:
        vpc_id = _resource_id(vpc_id, f"{key}.vpcId", VPC_ID_RE, "VPC", issues)
        ok = ok and vpc_id is not None
    version = need("version")
    if version is not None:
        if isinstance(version, float):  # YAML reads 1.32 as a number
            version = str(version)
        if not isinstance(version, str) or not K8S_VERSION_RE.match(version):
            issues.add(f"{key}.version", f"{json.dumps(version, default=str)} is not a Kubernetes version: write it "
                                         "like 1.32.2 (a version TKE offers; quote it in YAML)")
            version = None
            ok = False
    service_cidr = None
    raw_cidr = need("serviceCidr")
    if raw_cidr is not None:
        service_cidr = issues.network(raw_cidr, f"{key}.serviceCidr")
        ok = ok and service_cidr is not None
    eni = need("eniSubnetIds")
    if eni is not None:
        eni = _id_list(eni, f"{key}.eniSubnetIds", SUBNET_ID_RE, "subnet", issues, required=True)
        ok = ok and eni is not None
    endpoint_subnet = need("endpointSubnetId")
    if endpoint_subnet is not None:
        endpoint_subnet = _resource_id(endpoint_subnet, f"{key}.endpointSubnetId", SUBNET_ID_RE, "subnet", issues)
        ok = ok and endpoint_subnet is not None
    deletion_protection = True
    if "deletionProtection" in m:
        b = issues.boolean(m["deletionProtection"], f"{key}.deletionProtection")
        ok = ok and b is not None
        deletion_protection = bool(b) if b is not None else True
    pool = None
    raw_pool = need("nodePool")
    if raw_pool is not None:
        pool = _parse_node_pool(raw_pool, f"{key}.nodePool", issues)
        ok = ok and pool is not None
    ok = ok and required.ok
    if not ok:
        return None
    return CreateSettings(vpc_id=vpc_id, version=version, service_cidr=service_cidr,  # type: ignore[arg-type]
                          eni_subnet_ids=eni, endpoint_subnet_id=endpoint_subnet,  # type: ignore[arg-type]
                          deletion_protection=deletion_protection, node_pool=pool)  # type: ignore[arg-type]


def _parse_node_pool(value: Any, key: str, issues: _Issues) -> Optional[NodePoolSettings]:
    m = issues.mapping(value, key, NODE_POOL_KEYS, "{subnetIds: [subnet-abcd1234], instanceType: SA5.MEDIUM4, "
                                                   "minSize: 1, maxSize: 3, desiredCapacity: 2}")
    if m is None:
        return None
    ok = True

    required = _Required(issues, m, key)
    need = required.need

    subnets = need("subnetIds")
    if subnets is not None:
        subnets = _id_list(subnets, f"{key}.subnetIds", SUBNET_ID_RE, "subnet", issues, required=True)
        ok = ok and subnets is not None
    instance_type = need("instanceType")
    if instance_type is not None:
        if not isinstance(instance_type, str) or not INSTANCE_TYPE_RE.match(instance_type):
            issues.add(f"{key}.instanceType", f"{json.dumps(instance_type, default=str)} is not a CVM instance type: "
                                              "write it like SA5.MEDIUM4")
            instance_type = None
            ok = False
    sizes: dict[str, Optional[int]] = {}
    for k in ("minSize", "desiredCapacity", "maxSize"):
        raw = need(k)
        sizes[k] = None if raw is None else issues.integer(raw, f"{key}.{k}", 0, MAX_NODE_POOL_SIZE, "nodes")
        ok = ok and sizes[k] is not None
    lo, want, hi = sizes["minSize"], sizes["desiredCapacity"], sizes["maxSize"]
    if lo is not None and hi is not None and lo > hi:
        issues.add(f"{key}.maxSize", f"{hi} is below minSize {lo}; need 0 <= minSize <= desiredCapacity <= maxSize")
        ok = False
    elif want is not None and lo is not None and want < lo:
        issues.add(f"{key}.desiredCapacity", f"{want} is below minSize {lo}; need minSize <= desiredCapacity <= maxSize")
        ok = False
    elif want is not None and hi is not None and want > hi:
        issues.add(f"{key}.desiredCapacity", f"{want} is above maxSize {hi}; need minSize <= desiredCapacity <= maxSize")
        ok = False
    disk_type = m.get("systemDiskType")
    if disk_type is not None and disk_type not in SYSTEM_DISK_TYPES:
        issues.add(f"{key}.systemDiskType", f"must be one of: {', '.join(SYSTEM_DISK_TYPES)}; got "
                                            f"{json.dumps(disk_type, default=str)}")
        disk_type = None
        ok = False
    disk_size = None
    if m.get("systemDiskSize") is not None:
        disk_size = issues.integer(m["systemDiskSize"], f"{key}.systemDiskSize", 20, 2048, "GB")
        ok = ok and disk_size is not None
    sgs = _id_list(m.get("securityGroupIds"), f"{key}.securityGroupIds", SG_ID_RE, "security group", issues,
                   required=False)
    keys_ = _id_list(m.get("keyIds"), f"{key}.keyIds", KEY_ID_RE, "SSH key", issues, required=False)
    ok = ok and sgs is not None and keys_ is not None
    ok = ok and required.ok
    if not ok:
        return None
    return NodePoolSettings(subnet_ids=subnets, instance_type=instance_type, min_size=lo,  # type: ignore[arg-type]
                            max_size=hi, desired_capacity=want, system_disk_type=disk_type,  # type: ignore[arg-type]
                            system_disk_size=disk_size, security_group_ids=sgs, key_ids=keys_)  # type: ignore[arg-type]


def _check_cluster_name(name: Any, key: str, issues: _Issues) -> Optional[str]:
    if not isinstance(name, str) or not name:
        issues.add(key, f"must be a non-empty string (the TKE cluster ID, e.g. cls-abcd1234), got {_type_name(name)}")
        return None
    if len(name) > 32:
        issues.add(key, f"{_quote(name)} is {len(name)} characters; Cilium cluster names are at most 32")
        return None
    if not CLUSTER_NAME_RE.match(name):
        issues.add(
            key,
            f"{_quote(name)} is not a valid Cilium cluster name: use lowercase letters, digits and '-', "
            "starting and ending with a letter or digit (e.g. cls-abcd1234)",
        )
        return None
    if name == "default":
        issues.add(key, "'default' is reserved by Cilium for clusters outside a mesh; use the TKE cluster ID")
        return None
    return name


def _parse_apiserver(value: Any, key: str, issues: _Issues) -> Optional[ApiserverSettings]:
    m = issues.mapping(value, key, APISERVER_KEYS, "{subnetId: subnet-abcd1234, vip: 10.0.1.100}")
    if m is None:
        return None
    ok = True
    subnet = m.get("subnetId")
    if subnet is None:
        issues.add(f"{key}.subnetId", "is required: the subnet of the internal CLB that exposes clustermesh-apiserver")
        ok = False
    elif not isinstance(subnet, str) or not SUBNET_ID_RE.match(subnet):
        issues.add(f"{key}.subnetId", f"{json.dumps(subnet)} is not a subnet ID: write 'subnet-' and 8 lowercase letters or digits")
        ok = False
    create_clb = False
    create_ok = True  # createClb is unset or a boolean (else its relation to vip and vpcId is unknown)
    if "createClb" in m:
        b = issues.boolean(m["createClb"], f"{key}.createClb")
        create_ok = b is not None
        ok = ok and create_ok
        create_clb = bool(b)
    vip = None
    if m.get("vip") is not None:
        vip = issues.address(m["vip"], f"{key}.vip")
        ok = ok and vip is not None
    if not create_ok:
        pass
    elif m.get("vip") is not None and create_clb:
        issues.add(key, "set either vip (request that VIP for the internal CLB) or createClb: true (the program creates "
                   "the CLB and peers use its VIP), not both")
        ok = False
    elif m.get("vip") is None and not create_clb:
        issues.add(key, "needs vip: <a free IPv4 address in the subnet> or createClb: true, so that peers know the "
                   "address before any release is installed")
        ok = False
    vpc_id = m.get("vpcId")
    if vpc_id is not None and (not isinstance(vpc_id, str) or not VPC_ID_RE.match(vpc_id)):
        issues.add(f"{key}.vpcId", f"{json.dumps(vpc_id)} is not a VPC ID: write 'vpc-' and 8 lowercase letters or digits")
        ok = False
    elif create_ok and create_clb and vpc_id is None:
        issues.add(f"{key}.vpcId", "is required with createClb: true: the VPC of subnetId, where the internal CLB is created")
        ok = False
    elif create_ok and vpc_id is not None and not create_clb:
        issues.add(f"{key}.vpcId", "is only used with createClb: true; remove it")
        ok = False
    port = DEFAULT_APISERVER_PORT
    if "port" in m:
        p = issues.integer(m["port"], f"{key}.port", 1, 65535, "the TCP port peers connect to")
        if p is not None and p != DEFAULT_APISERVER_PORT:
            # The 1.18 chart's clustermesh-apiserver Service has no port value: it always
            # listens on 2379, so the CLB listener TKE creates for it is 2379 too.
            issues.add(f"{key}.port", f"{p}: the Cilium 1.18 chart exposes clustermesh-apiserver on port "
                                      f"{DEFAULT_APISERVER_PORT} only (its Service port is not configurable); "
                                      f"remove the key or set {DEFAULT_APISERVER_PORT}")
            p = None
        ok = ok and p is not None
        port = p or port
    if not ok:
        return None
    return ApiserverSettings(subnet_id=subnet, vip=vip, create_clb=create_clb, vpc_id=vpc_id, port=port)


def _check_identities(clusters: Sequence[_Partial], max_connected: int, issues: _Issues) -> None:
    """Names, ids, contexts and VIPs are unique across the mesh."""

    def unique(attr: str, label: str, hint: Callable[[Any], str]) -> None:
        seen: dict[Any, _Partial] = {}
        for c in clusters:
            v = getattr(c, attr)
            if v is None:
                continue
            if v in seen:
                first = seen[v]
                if attr == "context" and c.name is not None and c.name == first.name:
                    continue  # the same name, already reported (the context defaults to it)
                who = f" ({first.name})" if first.name else ""
                shown = _quote(v) if isinstance(v, str) and not v.isprintable() else v
                issues.add(f"{c.key}.{label}", f"{shown} is already used by {first.key}{who}; {hint(v)}")
            else:
                seen[v] = c

    used_ids = {c.id for c in clusters}
    free = next((i for i in range(1, max_connected + 1) if i not in used_ids), None)
    unique("name", "name", lambda v: "each TKE cluster appears once in a mesh")
    unique(
        "id",
        "id",
        lambda v: f"every cluster needs its own Cilium cluster.id (the lowest free one is {free})",
    )
    unique("context", "context", lambda v: "each cluster needs its own kubeconfig context")
    unique("vip", "apiserver.vip", lambda v: "each cluster's clustermesh-apiserver needs its own CLB VIP")


def _check_addresses(clusters: Sequence[_Partial], cilium: Optional[CiliumSettings], issues: _Issues) -> None:
    """Pod CIDRs never overlap (within or across clusters) and VIPs lie outside the pod CIDRs
    of clusters whose pods do not take VPC addresses.

    A sweep over the CIDRs sorted by address: O(n log n) for n CIDRs, so that a 511-cluster
    mesh is not checked pair by pair. Each overlapping CIDR is reported once, at the one
    that comes later in the config, naming a CIDR it overlaps.

    The VIP rule depends on the network mode (``helm_values.pods_take_vpc_addresses``): with
    VPC-CNI a cluster's pod CIDRs are ENI subnets of the VPC, which allocates pod IPs and CLB
    VIPs from the same subnets without conflict, so a VIP inside them is fine; in an overlay
    (or GlobalRouter) the pod range is the cluster's own, and a VIP inside it would shadow a pod.
    Without valid ``mesh:cilium`` settings the mode is unknown and the VIP rule is not applied
    (the cilium error is reported).
    """
    nets = sorted(
        ((int(n.network_address), int(n.broadcast_address), pos, c, j, n)
         for pos, (c, j, n) in enumerate((c, j, n) for c in clusters for j, n in enumerate(c.pod_cidrs))),
        key=lambda t: (t[0], t[1], t[2]),
    )
    found: dict[tuple[int, int], str] = {}
    holder = None  # the CIDR with the highest end so far
    prefix: list[tuple[int, Any]] = []  # (highest end so far, its holder), per sorted position
    for item in nets:
        start_, end_, pos, c, j, n = item
        if holder is not None and start_ <= holder[1]:
            a, b = (item, holder) if pos > holder[2] else (holder, item)
            slot = (a[3].index, a[4])
            if slot not in found:
                where = ("another pod CIDR of this cluster" if a[3] is b[3]
                         else f"{b[3].key}.podCidrs[{b[4]}] ({b[3].name or '?'})")
                found[slot] = (f"{a[5]} overlaps {b[5]}, {where}; pod CIDRs must be disjoint across the mesh or "
                               "cross-cluster routing and identities break")
        if holder is None or end_ > holder[1]:
            holder = item
        prefix.append((holder[1], holder))
    for (index, j), message in sorted(found.items()):
        issues.add(f"{NS}:clusters[{index}].podCidrs[{j}]", message)

    if cilium is None:
        return
    overlay = {c.index for c in clusters
               if not helm_values.pods_take_vpc_addresses(helm_values.deep_merge(cilium.base_values, c.values))}
    if len(overlay) < len(clusters):  # the sweep's prefix over the overlay clusters' CIDRs only
        nets = [t for t in nets if t[3].index in overlay]
        prefix, holder = [], None
        for item in nets:
            if holder is None or item[1] > holder[1]:
                holder = item
            prefix.append((holder[1], holder))
    starts = [t[0] for t in nets]
    for c in clusters:
        if c.vip is None:
            continue
        v = int(c.vip)
        p = bisect.bisect_right(starts, v) - 1
        if p >= 0 and prefix[p][0] >= v:
            other, net = prefix[p][1][3], prefix[p][1][5]
            issues.add(
                f"{c.key}.apiserver.vip",
                f"{c.vip} lies inside pod CIDR {net} of {other.key} ({other.name or '?'}), whose pods take their "
                "addresses from that range (not from the VPC: its IPAM is not TKE VPC-CNI's delegated-plugin), so "
                f"the VIP would collide with a pod; pick a free address of the subnet "
                f"{c.subnet_id or 'of the internal CLB'} outside the overlay pod CIDRs",
            )


def _check_service_cidrs(clusters: Sequence[_Partial], issues: _Issues) -> None:
    """A created cluster's service CIDR overlaps no pod CIDR of the mesh (nor another created cluster's services)."""
    created = [c for c in clusters if c.service_cidr is not None]
    if not created:
        return
    pods = [(c, j, n) for c in clusters for j, n in enumerate(c.pod_cidrs)]
    for c in created:
        net = c.service_cidr
        assert net is not None
        hit = next(((o, j, n) for o, j, n in pods if n.overlaps(net)), None)
        if hit is not None:
            o, j, n = hit
            where = "this cluster's own pod CIDR" if o is c else f"{o.key}.podCidrs[{j}] ({o.name or '?'})"
            issues.add(f"{c.key}.create.serviceCidr", f"{net} overlaps {n}, {where}; Service addresses must not "
                                                      "collide with any pod CIDR of the mesh")
            continue
        other = next((o for o in created if o is not c and o.index < c.index and o.service_cidr is not None
                      and o.service_cidr.overlaps(net)), None)
        if other is not None:
            issues.add(f"{c.key}.create.serviceCidr", f"{net} overlaps the serviceCidr of {other.key} "
                                                      f"({other.name or '?'}); give each created cluster its own")


def _parse_topology(
    value: Any, partials: Sequence[_Partial], issues: _Issues
) -> tuple[bool, dict[str, tuple[str, ...]]]:
    key = f"{NS}:topology"
    clusters = [c for c in partials if c.name is not None]
    by_name = {c.name: c for c in clusters}
    order = {c.name: c.id if c.id is not None else 1 << 20 for c in clusters}

    def ordered(names: set[str]) -> tuple[str, ...]:
        return tuple(sorted(names, key=lambda n: (order[n], n)))

    if value == "full":
        return True, {c.name: ordered({o.name for o in clusters if o.name != c.name}) for c in clusters}
    if isinstance(value, str):
        issues.add(key, f"{_quote(value)} is not a topology: write full, or {{peers: {{cls-a: [cls-b]}}}} for a partial mesh")
        return True, {}
    m = issues.mapping(value, key, TOPOLOGY_KEYS, "full, or {peers: {cls-a: [cls-b, cls-c]}}")
    if m is None:
        return False, {}
    peers_raw = m.get("peers")
    if not isinstance(peers_raw, dict) or not peers_raw:
        issues.add(f"{key}.peers", "must map cluster names to lists of peer names, e.g. {cls-a: [cls-b]}")
        return False, {}
    edges: dict[str, set[str]] = {c.name: set() for c in clusters}
    # Clusters whose own peer list has a problem (reported): not also reported as "without peers".
    rejected: set[str] = set()
    for src, dsts in peers_raw.items():
        skey = keys.join(f"{key}.peers", _part(src))
        if src not in by_name:
            issues.add(skey, f"{_quote(str(src))} is not in mesh:clusters; the clusters are: "
                       f"{', '.join(sorted(by_name)) or '(none)'}")
            continue
        if not isinstance(dsts, list):
            issues.add(skey, f"must be a list of cluster names, got {_type_name(dsts)}")
            rejected.add(src)
            continue
        for j, dst in enumerate(dsts):
            dkey = f"{skey}[{j}]"
            if not isinstance(dst, str):
                issues.add(dkey, f"must be a cluster name, got {_type_name(dst)}")
                rejected.add(src)
            elif dst == src:
                issues.add(dkey, f"'{src}' cannot peer with itself; remove it from its own list")
                rejected.add(src)
            elif dst not in by_name:
                issues.add(dkey, f"{json.dumps(dst)} is not in mesh:clusters; the clusters are: {', '.join(sorted(by_name))}")
                rejected.add(src)
            else:
                # Connections are bidirectional: a listed pair is made symmetric.
                edges[src].add(dst)
                edges[dst].add(src)
    for c in clusters:
        if not edges[c.name] and len(clusters) > 1 and c.name not in rejected:
            issues.add(
                keys.join(f"{key}.peers", c.name),
                f"cluster {c.name} has no peer in the topology; connect it to at least one cluster or remove it "
                "from mesh:clusters",
            )
    return False, {n: ordered(ps) for n, ps in edges.items()}


def _check_owned_values(
    cilium: Optional[CiliumSettings],
    clusters: Sequence[_Partial],
    masq: Optional[MasqueradeSettings],
    issues: _Issues,
) -> None:
    """Base and per-cluster ``values`` must not set what the program owns."""
    owned = helm_values.owned_paths(masq.mode if masq else "none")
    created_owned = owned + helm_values.CREATED_OWNED
    any_created = any(c.reads_service_host for c in clusters)
    sources: list[tuple[str, Mapping[str, Any], tuple]] = []
    if cilium is not None:
        # The base values reach every cluster, the created ones too.
        sources.append((f"{NS}:cilium.values", cilium.values, created_owned if any_created else owned))
    sources += [(f"{c.key}.values", c.values, created_owned if c.reads_service_host else owned) for c in clusters]
    for base, vals, paths in sources:
        for path, owner in helm_values.owned_conflicts(vals, paths):
            reason = helm_values.OWNERSHIP_REASONS.get(owner, "mesh-owned value")
            if len(path) < len(owner):
                # A non-mapping in place of a mapping the program sets keys in (hubble: on).
                reason = f"it would replace {keys.dotted(owner)}: {reason}"
            issues.add(
                keys.render(base, tuple(_part(p) if isinstance(p, str) else p for p in path)),
                f"is set by this program ({reason}); remove it from values" + _owned_hint(owner),
            )


def _check_service_host(cilium: Optional[CiliumSettings], clusters: Sequence[_Partial], issues: _Issues) -> None:
    """With the tke-vpc-cni preset, every cluster the program does not read it from needs ``k8sServiceHost``.

    The preset replaces kube-proxy (``kubeProxyReplacement``, TKE's kube-proxy kept off the
    nodes): agents cannot reach the apiserver through the ``kubernetes`` Service's ClusterIP.
    TKE's guide gives the 169.254.x.x address of ``default/kubernetes`` and warns that without
    it (or with the CLB address) the setup loops.
    """
    if cilium is None or cilium.preset != "tke-vpc-cni":
        return
    for c in clusters:
        if c.reads_service_host:
            continue
        if helm_values.deep_merge(cilium.base_values, c.values).get("k8sServiceHost"):
            continue
        issues.add(f"{c.key}.values.k8sServiceHost",
                   f"is required for {c.name or c.key} with the tke-vpc-cni preset: it replaces kube-proxy, so the "
                   "agents need the apiserver address itself; set it to the 169.254.x.x address of `kubectl -n "
                   "default get ep kubernetes -o jsonpath='{.subsets[0].addresses[0].ip}'` (not the CLB address: "
                   "TKE's guide warns the setup then loops), or set prepareVpcCni: true to have the program read it")


def _owned_hint(owner: tuple) -> str:
    hints = {
        ("cluster", "name"): ": set mesh:clusters[i].name",
        ("cluster", "id"): ": set mesh:clusters[i].id",
        ("clustermesh", "maxConnectedClusters"): ": set mesh:maxConnectedClusters",
        ("hubble", "relay", "enabled"): ": set mesh:hubbleRelay",
        ("clustermesh", "config"): ": peers come from mesh:topology",
    }
    if owner and owner[0] in ("ipMasqAgent", "bpf", "enableIPv4Masquerade"):
        return ": mesh:masquerade controls it"
    if owner in helm_values.CREATED_OWNED:
        return (": the program reads it from each created cluster (a cluster with create:); set it per cluster in "
                "mesh:clusters[i].values for the other clusters")
    if owner[:4] == ("clustermesh", "apiserver", "service", "annotations"):
        return ": mesh:clusters[i].apiserver controls the CLB"
    return hints.get(owner, "")


def _check_masquerade_safety(
    cilium: Optional[CiliumSettings],
    clusters: Sequence[_Partial],
    masq: Optional[MasqueradeSettings],
    issues: _Issues,
) -> None:
    """Refuse values that would SNAT cross-cluster pod traffic.

    With native routing and IPv4 masquerade on (the chart default when
    ``enableIPv4Masquerade`` is unset), Cilium SNATs every destination outside
    ``ipv4NativeRoutingCIDR``. Unless the ip-masq-agent is used, that CIDR must cover the
    pod CIDRs of every cluster, or remote pods see the node IP and policies drop the traffic.
    """
    if cilium is None or masq is None or masq.mode != "none" or not clusters:
        return
    all_cidrs = [n for c in clusters for n in c.pod_cidrs]
    for c in clusters:
        merged = helm_values.deep_merge(cilium.base_values, c.values)
        if merged.get("routingMode") != "native":
            continue
        if merged.get("enableIPv4Masquerade") is False:
            continue
        if _submap(merged, "ipMasqAgent").get("enabled") is True:
            continue
        native = merged.get("ipv4NativeRoutingCIDR")
        native_net: Optional[IPv4Network] = None
        if isinstance(native, str):
            try:
                net = ipaddress.ip_network(native, strict=False)
            except ValueError:
                pass
            else:
                native_net = net if isinstance(net, IPv4Network) else None
        missing = [n for n in all_cidrs if native_net is None or not n.subnet_of(native_net)]
        if missing:
            if native is None:
                shown = "unset"
            elif isinstance(native, str) and native and native.isprintable():
                shown = native
            else:
                shown = json.dumps(native)
            issues.add(
                f"{NS}:masquerade.mode",
                f"cluster {c.name or c.key} uses routingMode native with IPv4 masquerade on, and ipv4NativeRoutingCIDR "
                f"({shown}) does not cover pod CIDR(s) {', '.join(map(str, missing))}: cross-cluster pod "
                "traffic would be SNATed. Set mesh:masquerade.mode: ipMasqAgent, or enableIPv4Masquerade: false "
                "(TKE VPC-CNI), or an ipv4NativeRoutingCIDR covering every cluster's pod CIDRs",
            )


def _check_hubble_enabled(cilium: Optional[CiliumSettings], clusters: Sequence[_Partial], issues: _Issues) -> None:
    """Hubble Relay needs Hubble: refuse ``hubble.enabled: false`` while ``mesh:hubbleRelay`` is on."""
    if cilium is None:
        return
    for c in clusters:
        merged = helm_values.deep_merge(cilium.base_values, c.values)
        if _submap(merged, "hubble").get("enabled") is False:
            where = f"{c.key}.values" if _submap(c.values, "hubble").get("enabled") is False else f"{NS}:cilium.values"
            issues.add(f"{NS}:hubbleRelay", f"is true but {where} sets hubble.enabled: false for {c.name or c.key}; "
                                            "set mesh:hubbleRelay: false or enable Hubble")
            return
