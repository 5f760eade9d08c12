"""The checks across sections and clusters of the stack config: a pass over the typed entries.

Each section and each cluster entry is validated on its own (``meshcore.config``); these checks
relate them: names, ids, contexts and VIPs unique; pod CIDRs disjoint; VIPs outside overlay pod
CIDRs; service CIDRs; the topology; program-owned Helm values and values a cluster's chart version
refuses; ``k8sServiceHost`` with the ``tke-vpc-cni`` preset; masquerade safety; Hubble for Hubble Relay;
the brought CA's key; the chart versions of the mesh (``meshcore.versions``).

They run on whatever parsed: a cluster entry that is invalid still takes part with the fields
that are valid (an ``Entry``), so one run reports every problem of a stack at once.
"""

from __future__ import annotations

import bisect
import difflib
import ipaddress
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Literal, Protocol

from meshcore import keypaths, owned, versions
from meshcore import values as helm_values
from meshcore.config import (
    NS,
    PEM_RSA_KEY,
    SECRET_KEYS,
    TOP_LEVEL_KEYS,
    UNREADABLE_SECRET,
    ApiserverSettings,
    CiliumSettings,
    ClusterSettings,
    MasqueradeSettings,
    TopologySettings,
    pem_blocks,
)
from meshcore.config_fields import part, quote, type_name
from meshcore.errors import ConfigIssue


def _submap(values: Mapping[str, Any], k: str) -> Mapping[str, Any]:
    """``values[k]`` if it is a mapping, else an empty one (Helm values may hold anything)."""
    v = values.get(k)
    return v if isinstance(v, dict) else {}


# --------------------------------------------------------------------------- what the checks read


class Found:
    """Every issue found so far, and what parsed of each section (None where it did not)."""

    def __init__(self) -> None:
        self.issues: list[ConfigIssue] = []
        self.sections: dict[str, Any] = {}

    def add(self, key: str, message: str) -> None:
        self.issues.append(ConfigIssue(key, message))


class Entry(Protocol):
    """What the checks across clusters read of one ``mesh:clusters`` entry: a valid entry is the model itself
    (a ``ClusterSettings``); an invalid one is the fields of it that are valid on their own
    (``meshcore.config_parse.PartialEntry``, None where invalid)."""

    @property
    def index(self) -> int: ...
    @property
    def key(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def id(self) -> int | None: ...
    @property
    def context(self) -> str | None: ...
    @property
    def pod_cidrs(self) -> Sequence[IPv4Network]: ...
    @property
    def vip(self) -> IPv4Address | None: ...
    @property
    def apiserver(self) -> ApiserverSettings | None: ...
    @property
    def values(self) -> Mapping[str, Any]: ...
    @property
    def reads_service_host(self) -> bool:
        """Created, or adopted with prepareVpcCni: the program sets k8sServiceHost/k8sServicePort."""
    @property
    def service_cidr(self) -> IPv4Network | None: ...
    @property
    def own_version(self) -> str | None:
        """``mesh:clusters[i].cilium.version`` (None: the mesh's, or not known)."""


def _version(c: Entry, cilium: CiliumSettings | None) -> str | None:
    """The chart version cluster ``c`` installs (None when neither it nor mesh:cilium is valid)."""
    return c.own_version or (cilium.version if cilium is not None else None)


def _valid_entries(members: Sequence[Entry]) -> list[ClusterSettings]:
    return [m for m in members if isinstance(m, ClusterSettings)]


# --------------------------------------------------------------------------- top level


def check_secrets_and_keys(raw: Mapping[str, Any], secret_keys: Sequence[str], parsed: Found) -> None:
    """No mesh key but ``caPrivateKey`` is a secret; every key is one of this program's."""
    for k in sorted(set(secret_keys) - set(SECRET_KEYS)):
        # The mesh settings end up in Helm values, component inputs and plan files as
        # plain text; a secret there would be silently unwrapped.
        parsed.add(f"{NS}:{k}", "holds a secure value; mesh settings are not secret and are written in plain "
                   "text into Helm values and plans: keep secrets out of mesh:* keys (e.g. in a Kubernetes Secret); "
                   "the one secret key is mesh:caPrivateKey")
    for k in raw:
        if k not in TOP_LEVEL_KEYS:
            near = difflib.get_close_matches(k, TOP_LEVEL_KEYS, n=1, cutoff=0.6)
            hint = f"did you mean '{NS}:{near[0]}'? " if near else ""
            parsed.add(f"{NS}:{part(k)}", f"unknown key; {hint}the keys of this program are: "
                       + ", ".join(f"{NS}:{t}" for t in TOP_LEVEL_KEYS))


@dataclass
class Mesh:
    """What the checks across clusters give the settings: the topology and each cluster's peers."""

    topology: Literal["full"] | TopologySettings
    peers: dict[str, tuple[str, ...]]


def check_mesh(raw: Mapping[str, Any], members: Sequence[Entry], parsed: Found) -> Mesh:
    """Every check across clusters, on the members and the sections that parsed."""
    cilium: CiliumSettings | None = parsed.sections.get("cilium")
    masq: MasqueradeSettings | None = parsed.sections.get("masquerade")
    max_connected = parsed.sections.get("max_connected_clusters") or 255
    check_identities(members, max_connected, parsed)
    check_addresses(members, cilium, parsed)
    check_service_cidrs(members, parsed)
    mesh = check_topology(raw.get("topology", "full"), members, parsed)
    check_owned_values(cilium, members, masq, parsed)
    check_refused_values(cilium, members, parsed)
    check_service_host(cilium, members, parsed)
    check_masquerade_safety(cilium, members, masq, parsed)
    if parsed.sections.get("hubble_relay") is True:
        check_hubble_enabled(cilium, members, parsed)
    check_created_need_the_preset(cilium, members, parsed)
    return mesh


def check_created_need_the_preset(cilium: CiliumSettings | None, members: Sequence[Entry], parsed: Found) -> None:
    """Created and prepared clusters run VPC-CNI with TKE's DaemonSets off: Cilium must replace them."""
    for c in _valid_entries(members):
        if c.create is not None and (cilium is None or cilium.preset != "tke-vpc-cni"):
            parsed.add(f"{c.key}.create", "a created cluster runs VPC-CNI with kube-proxy, tke-cni-agent and "
                       "ip-masq-agent kept off its nodes, so Cilium must replace them: set mesh:cilium.preset: "
                       "tke-vpc-cni (override its values in mesh:cilium.values if needed)")
        if c.prepare_vpc_cni and (cilium is None or cilium.preset != "tke-vpc-cni"):
            parsed.add(f"{c.key}.prepareVpcCni", "prepares the cluster for the tke-vpc-cni preset (its cni-config "
                       "chain, kube-proxy, tke-cni-agent and ip-masq-agent kept off the nodes): set "
                       "mesh:cilium.preset: tke-vpc-cni, or remove prepareVpcCni")


# --------------------------------------------------------------------------- the CA's key, identity changes


def check_provided_ca_key(raw: Mapping[str, Any], secret_keys: Sequence[str], parsed: Found) -> None:
    """``mesh:caPrivateKey`` goes with ``mesh:ca.certificate``, as a secret PKCS#1 RSA PEM key.
    Its text is never part of a message."""
    key = f"{NS}:caPrivateKey"
    ca_raw = raw.get("ca")
    if not (isinstance(ca_raw, dict) and "certificate" in ca_raw):
        if "caPrivateKey" in raw:
            parsed.add(key, "is only used with mesh:ca.certificate (a CA you bring); set both, or remove "
                            "mesh:caPrivateKey and let the program generate the mesh CA")
        return
    if "caPrivateKey" not in raw:
        parsed.add(key, "is required with mesh:ca.certificate: the CA's private key, as a secret "
                        "(pulumi config set --secret mesh:caPrivateKey < ca.key)")
        return
    if "caPrivateKey" not in secret_keys:
        parsed.add(key, "must be a secret: it is the CA's private key; set it with pulumi config set --secret "
                        "mesh:caPrivateKey < ca.key (and rotate this key: it was in plain text)")
        return
    text = raw["caPrivateKey"]
    if text == UNREADABLE_SECRET:
        return
    try:
        types = [t for t, _ in pem_blocks(text)] if isinstance(text, str) else []
    except ValueError:
        types = ["(malformed)"]
    if types != [PEM_RSA_KEY]:
        parsed.add(key, "must hold one RSA PRIVATE KEY PEM block (PKCS#1, what the Cilium chart's buildCustomCert "
                        "and genSignedCert are known to accept); convert a PKCS#8 key with "
                        "openssl rsa -in ca.key -traditional")


def check_identity_changes(raw: Mapping[str, Any], members: Sequence[Entry], parsed: Found) -> None:
    """``mesh:allowIdentityChange`` names clusters of the mesh (by their new name)."""
    allowed = parsed.sections.get("allow_identity_change")
    if not allowed:
        return
    names = {c.name for c in members if c.name}
    for i, v in enumerate(raw.get("allowIdentityChange") or []):
        if v not in names:
            parsed.add(f"{NS}:allowIdentityChange[{i}]", f"{quote(v)} is not in mesh:clusters; list the cluster's "
                                                        "new name")


# --------------------------------------------------------------------------- identities and addresses


def check_identities(clusters: Sequence[Entry], max_connected: int, parsed: Found) -> None:
    """Names, ids, contexts and VIPs are unique across the mesh."""

    def unique(attr: str, label: str, hint: Callable[[Any], str]) -> None:
        seen: dict[Any, Entry] = {}
        for c in clusters:
            v = getattr(c, attr)
            if v is None:
                continue
            if v in seen:
                first = seen[v]
                if attr == "context" and c.name is not None and c.name == first.name:
                    continue  # the same name, already reported (the context defaults to it)
                shown = quote(v) if isinstance(v, str) and not v.isprintable() else v
                parsed.add(f"{c.key}.{label}", f"{shown} is already used by {keypaths.named(first.key, first.name)}; "
                                               f"{hint(v)}")
            else:
                seen[v] = c

    used_ids = {c.id for c in clusters}
    free = next((i for i in range(1, max_connected + 1) if i not in used_ids), None)
    unique("name", "name", lambda v: "each TKE cluster appears once in a mesh")
    unique("id", "id", lambda v: f"every cluster needs its own Cilium cluster.id (the lowest free one is {free})")
    unique("context", "context", lambda v: "each cluster needs its own kubeconfig context")
    unique("vip", "apiserver.vip", lambda v: "each cluster's clustermesh-apiserver needs its own CLB VIP")


def check_addresses(clusters: Sequence[Entry], cilium: CiliumSettings | None, parsed: Found) -> None:
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
    _check_overlaps(nets, parsed)
    if cilium is None:
        return
    overlay = {c.index for c in clusters
               if not helm_values.pods_take_vpc_addresses(helm_values.deep_merge(cilium.base_values, c.values))}
    nets = [t for t in nets if t[3].index in overlay]
    prefix: list[tuple[int, Any]] = []  # (highest end so far, its holder), per sorted position
    holder = None
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
            parsed.add(
                f"{c.key}.apiserver.vip",
                f"{c.vip} lies inside pod CIDR {net} of {keypaths.named(other.key, other.name)}, whose pods take their "
                "addresses from that range (not from the VPC: its IPAM is not TKE VPC-CNI's delegated-plugin), so "
                f"the VIP would collide with a pod; pick a free address of the subnet "
                f"{c.apiserver.subnet_id if c.apiserver else 'of the internal CLB'} outside the overlay pod CIDRs",
            )


def _check_overlaps(nets: Sequence[tuple[Any, ...]], parsed: Found) -> None:
    """Report every pod CIDR that overlaps an earlier one (``nets`` sorted by start, end, position)."""
    found: dict[tuple[int, int], str] = {}
    holder = None  # the CIDR with the highest end so far
    for item in nets:
        start_, end_, pos = item[0], item[1], item[2]
        if holder is not None and start_ <= holder[1]:
            a, b = (item, holder) if pos > holder[2] else (holder, item)
            slot = (a[3].index, a[4])
            if slot not in found:
                where = ("another pod CIDR of this cluster" if a[3] is b[3]
                         else keypaths.named(f"{b[3].key}.podCidrs[{b[4]}]", b[3].name))
                found[slot] = (f"{a[5]} overlaps {b[5]}, {where}; pod CIDRs must be disjoint across the mesh or "
                               "cross-cluster routing and identities break")
        if holder is None or end_ > holder[1]:
            holder = item
    for (index, j), message in sorted(found.items()):
        parsed.add(f"{NS}:clusters[{index}].podCidrs[{j}]", message)


def check_service_cidrs(clusters: Sequence[Entry], parsed: Found) -> None:
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
            where = "this cluster's own pod CIDR" if o is c else keypaths.named(f"{o.key}.podCidrs[{j}]", o.name)
            parsed.add(f"{c.key}.create.serviceCidr", f"{net} overlaps {n}, {where}; Service addresses must not "
                                                      "collide with any pod CIDR of the mesh")
            continue
        other = next((o for o in created if o is not c and o.index < c.index and o.service_cidr is not None
                      and o.service_cidr.overlaps(net)), None)
        if other is not None:
            parsed.add(f"{c.key}.create.serviceCidr", f"{net} overlaps the serviceCidr of "
                                                      f"{keypaths.named(other.key, other.name)}; give each created "
                                                      "cluster its own")


# --------------------------------------------------------------------------- topology


def check_topology(value: Any, members: Sequence[Entry], parsed: Found) -> Mesh:
    """``mesh:topology``: full, or peers that are clusters of the mesh; nobody left without a peer."""
    key = f"{NS}:topology"
    names = [c.name for c in members if c.name is not None]
    order = {c.name: c.id if c.id is not None else 1 << 20 for c in members if c.name is not None}

    def ordered(names: set[str]) -> tuple[str, ...]:
        return tuple(sorted(names, key=lambda n: (order[n], n)))

    if value == "full":
        return Mesh("full", {n: ordered({o for o in names if o != n}) for n in names})
    if isinstance(value, str):
        parsed.add(key, f"{quote(value)} is not a topology: write full, or {{peers: {{cls-a: [cls-b]}}}} for a "
                        "partial mesh")
        return Mesh("full", {})
    if not isinstance(value, dict):
        parsed.add(key, f"must be a mapping, got {type_name(value)}; e.g. {TopologySettings.EXAMPLE}")
        return Mesh("full", {})
    for k in value:
        if k not in TopologySettings.keys():
            near = difflib.get_close_matches(str(k), TopologySettings.keys(), n=1, cutoff=0.6)
            hint = f"did you mean '{near[0]}'? " if near else ""
            parsed.add(keypaths.join(key, part(k)), f"unknown key; {hint}the keys here are: "
                                                f"{', '.join(TopologySettings.keys())}")
    peers_raw = value.get("peers")
    if not isinstance(peers_raw, dict) or not peers_raw:
        parsed.add(f"{key}.peers", "must map cluster names to lists of peer names, e.g. {cls-a: [cls-b]}")
        return Mesh("full", {})
    edges = _edges(peers_raw, set(names), parsed)
    for n in names:
        if not edges[n] and len(names) > 1 and n not in edges.rejected:
            parsed.add(keypaths.join(f"{key}.peers", n),
                       f"cluster {n} has no peer in the topology; connect it to at least one cluster or remove it "
                       "from mesh:clusters")
    topology = TopologySettings.model_construct(peers=dict(peers_raw))  # checked: valid when nothing was reported
    return Mesh(topology, {n: ordered(ps) for n, ps in edges.items()})


class _Edges(dict[str, set[str]]):
    rejected: set[str]
    """Clusters whose own peer list has a problem (reported): not also reported as "without peers"."""


def _edges(peers_raw: Mapping[Any, Any], names: set[str], parsed: Found) -> _Edges:
    """The symmetric peer sets the lists give (each problem of a list reported at its key)."""
    key = f"{NS}:topology.peers"
    edges = _Edges({n: set() for n in names})
    edges.rejected = set()
    for src, dsts in peers_raw.items():
        skey = keypaths.join(key, part(src))
        if src not in names:
            parsed.add(skey, f"{quote(str(src))} is not in mesh:clusters; the clusters are: "
                             f"{', '.join(sorted(names)) or '(none)'}")
            continue
        if not isinstance(dsts, list):
            parsed.add(skey, f"must be a list of cluster names, got {type_name(dsts)}")
            edges.rejected.add(src)
            continue
        for j, dst in enumerate(dsts):
            dkey = f"{skey}[{j}]"
            if not isinstance(dst, str):
                parsed.add(dkey, f"must be a cluster name, got {type_name(dst)}")
                edges.rejected.add(src)
            elif dst == src:
                parsed.add(dkey, f"'{src}' cannot peer with itself; remove it from its own list")
                edges.rejected.add(src)
            elif dst not in names:
                parsed.add(dkey, f"{json.dumps(dst)} is not in mesh:clusters; the clusters are: "
                                 f"{', '.join(sorted(names))}")
                edges.rejected.add(src)
            else:
                # Connections are bidirectional: a listed pair is made symmetric.
                edges[src].add(dst)
                edges[dst].add(src)
    return edges


# --------------------------------------------------------------------------- Helm values


def check_owned_values(cilium: CiliumSettings | None, clusters: Sequence[Entry],
                       masq: MasqueradeSettings | None, parsed: Found) -> None:
    """Base and per-cluster ``values`` must not set what the program owns (``meshcore.owned``) on the
    cluster's chart version (the base values: on any cluster's)."""
    mode = masq.mode if masq else "none"

    def owned_paths(rsh: bool, version: str | None) -> tuple[keypaths.Path, ...]:
        minors = [versions.minor_of(version)] if version else list(versions.ORDER)
        return tuple(dict.fromkeys(k.path for m in minors
                                   for k in owned.owned_keys(mode, reads_service_host=rsh, chart_minor=m)))

    sources: list[tuple[str, Mapping[str, Any], tuple[keypaths.Path, ...]]] = []
    if cilium is not None:
        # The base values reach every cluster, the created ones too.
        rsh = any(c.reads_service_host for c in clusters)
        paths = tuple(dict.fromkeys(p for v in {_version(c, cilium) for c in clusters} | {cilium.version}
                                    for p in owned_paths(rsh, v)))
        sources.append((f"{NS}:cilium.values", cilium.values, paths))
    sources += [(f"{c.key}.values", c.values, owned_paths(c.reads_service_host, _version(c, cilium))) for c in clusters]
    for base, vals, paths in sources:
        for path, owner in helm_values.owned_conflicts(vals, paths):
            row = owned.row(owner)
            reason = row.reason
            if len(path) < len(owner):
                # A non-mapping in place of a mapping the program sets keys in (hubble: on).
                reason = f"it would replace {keypaths.dotted(owner)}: {reason}"
            parsed.add(
                keypaths.render(base, tuple(part(p) if isinstance(p, str) else p for p in path)),
                f"is set by this program ({reason}); remove it from values" + (f": {row.instead}" if row.instead
                                                                                 else ""),
            )


def check_refused_values(cilium: CiliumSettings | None, clusters: Sequence[Entry], parsed: Found) -> None:
    """Values a cluster's chart version deprecated, removed or does not have yet (``meshcore.versions``): the
    chart ignores unknown keys, so they would silently do nothing (or fail its validate.yaml)."""
    if cilium is None:
        return
    sources: list[tuple[str, Mapping[str, Any], set[str]]] = [
        (f"{NS}:cilium.values", cilium.values, {_version(c, cilium) or cilium.version for c in clusters})]
    sources += [(f"{c.key}.values", c.values, {_version(c, cilium) or cilium.version}) for c in clusters]
    for base, vals, used in sources:
        for leaf in helm_values.leaf_paths(vals):
            for version in sorted(used, key=versions.parse):
                refused = versions.row(version).refused
                hit = next((leaf[:n] for n in range(len(leaf), 0, -1) if leaf[:n] in refused), None)
                if hit is not None:
                    parsed.add(keypaths.render(base, tuple(part(p) if isinstance(p, str) else p for p in leaf)),
                               f"{keypaths.dotted(hit)} {refused[hit]} (chart {version})")
                    break


def check_versions(raw: Mapping[str, Any], members: Sequence[Entry], parsed: Found) -> None:
    """The chart versions of one mesh: at most one minor apart (N-1/N); ``mesh:policyDefaultLocalCluster``
    stated once any cluster runs 1.19+; a cluster's own local chart with a local ``mesh:cilium.chart``."""
    cilium: CiliumSettings | None = parsed.sections.get("cilium")
    if cilium is None:
        return
    stated = parsed.sections.get("policy_default_local_cluster")
    by_name = {m.name or m.key: m for m in members}
    chosen = {n: _version(m, cilium) or cilium.version for n, m in by_name.items()}
    problem = versions.skew_problem(chosen)
    if problem is not None:
        top = max(by_name.values(), key=lambda m: versions.parse(chosen[m.name or m.key]))
        where = f"{top.key}.cilium.version" if top.own_version else f"{NS}:cilium.version"
        parsed.add(where, problem)
    flipped = sorted({v for v in chosen.values() if versions.row(v).chart_policy_default_local_cluster},
                     key=versions.parse)
    if flipped and stated is None and "policyDefaultLocalCluster" not in raw:
        before = next(m for m in reversed(versions.ORDER) if not versions.MINORS[m].chart_policy_default_local_cluster)
        parsed.add(f"{NS}:policyDefaultLocalCluster",
                   f"is required once a cluster runs chart {flipped[0]}: its default of clustermesh."
                   f"policyDefaultLocalCluster is true ({before}: false), which makes policies without a cluster "
                   "selector select only the local cluster; run `cilium clustermesh "
                   "inspect-policy-default-local-cluster` against every cluster, then set "
                   f"mesh:policyDefaultLocalCluster: false to keep {before}'s behaviour or true once the policies it "
                   "lists carry io.cilium.k8s.policy.cluster selectors")
    local = cilium.chart is not None and "://" not in cilium.chart
    for c in _valid_entries(members):
        if c.cilium is None:
            continue
        if c.cilium.chart is not None and cilium.chart is None:
            parsed.add(f"{c.key}.cilium.chart", "is only used with mesh:cilium.chart (a local or oci:// chart); "
                                                f"{NS}:cilium.repository serves every version: remove it")
        elif c.cilium.chart is None and local and c.cilium.version != cilium.version:
            parsed.add(f"{c.key}.cilium.chart", f"is required: mesh:cilium.chart is the local {cilium.version} chart "
                                                f"and this cluster installs {c.cilium.version}; point it at the "
                                                f"cilium {c.cilium.version} chart (helm pull cilium/cilium --version "
                                                f"{c.cilium.version})")


def check_service_host(cilium: CiliumSettings | None, clusters: Sequence[Entry], parsed: Found) -> None:
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
        parsed.add(f"{c.key}.values.k8sServiceHost",
                   f"is required for {c.name or c.key} with the tke-vpc-cni preset: it replaces kube-proxy, so the "
                   "agents need the apiserver address itself; set it to the 169.254.x.x address of `kubectl -n "
                   "default get ep kubernetes -o jsonpath='{.subsets[0].addresses[0].ip}'` (not the CLB address: "
                   "TKE's guide warns the setup then loops), or set prepareVpcCni: true to have the program read it")


def check_masquerade_safety(cilium: CiliumSettings | None, clusters: Sequence[Entry],
                            masq: MasqueradeSettings | None, parsed: Found) -> None:
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
        if merged.get("routingMode") != "native" or merged.get("enableIPv4Masquerade") is False:
            continue
        if _submap(merged, "ipMasqAgent").get("enabled") is True:
            continue
        native = merged.get("ipv4NativeRoutingCIDR")
        native_net = _network(native)
        missing = [n for n in all_cidrs if native_net is None or not n.subnet_of(native_net)]
        if missing:
            if native is None:
                shown = "unset"
            elif isinstance(native, str) and native and native.isprintable():
                shown = native
            else:
                shown = json.dumps(native)
            parsed.add(
                f"{NS}:masquerade.mode",
                f"cluster {c.name or c.key} uses routingMode native with IPv4 masquerade on, and ipv4NativeRoutingCIDR "
                f"({shown}) does not cover pod CIDR(s) {', '.join(map(str, missing))}: cross-cluster pod "
                "traffic would be SNATed. Set mesh:masquerade.mode: ipMasqAgent, or enableIPv4Masquerade: false "
                "(TKE VPC-CNI), or an ipv4NativeRoutingCIDR covering every cluster's pod CIDRs",
            )


def _network(value: Any) -> IPv4Network | None:
    if not isinstance(value, str):
        return None
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None
    return net if isinstance(net, IPv4Network) else None


def check_hubble_enabled(cilium: CiliumSettings | None, clusters: Sequence[Entry], parsed: Found) -> None:
    """Hubble Relay needs Hubble: refuse ``hubble.enabled: false`` while ``mesh:hubbleRelay`` is on."""
    if cilium is None:
        return
    for c in clusters:
        merged = helm_values.deep_merge(cilium.base_values, c.values)
        if _submap(merged, "hubble").get("enabled") is False:
            where = (f"{keypaths.named(f'{c.key}.values', c.name)} sets hubble.enabled: false"
                     if _submap(c.values, "hubble").get("enabled") is False
                     else f"{NS}:cilium.values sets hubble.enabled: false for {c.name or c.key}")
            parsed.add(f"{NS}:hubbleRelay", f"is true but {where}; set mesh:hubbleRelay: false or enable Hubble")
            return
