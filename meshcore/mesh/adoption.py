"""Adopting a running mesh: from what each cluster runs to a stack of this program, or the reasons not to.

``python -m tools.adopt`` reads every cluster (the Helm release ``kube-system/cilium``, the
clustermesh-apiserver Service, ``cilium-config``, ``cilium-ca`` and the objects the chart renders
that may exist outside Helm) into one ``Observed`` per kubeconfig context; this module, pure (no
Pulumi, no Kubernetes client), turns them into the stack's ``mesh:*`` config (``adopt``) or the
refusals that stop it before anything is written, each naming the cluster and what to do.

What the program owns (``meshcore.chart.owned``) is not copied into ``values``: it becomes the stack's own keys
(``cluster.name``/``id`` the entry's, the Service annotations ``apiserver``, the peer lists
``mesh:topology``, ``tls.ca`` the brought CA ``mesh:ca.certificate`` with its key the secret
``mesh:caPrivateKey``, ``upgradeCompatibility`` ``adopted.firstInstalled``), or the program sets it
as it does everywhere. Every other value of the release stays: the values all clusters share under
``mesh:cilium.values``, the rest under the cluster's ``values``.
"""

from __future__ import annotations

import copy
import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshcore.chart import owned, versions
from meshcore.chart.effects import CA_SECRET, CLUSTERMESH_SECRET, CONFIG_MAP, KVSTOREMESH_SECRET, NAMESPACE, SERVICE
from meshcore.chart.values import get_path, without_path
from meshcore.config.clusters import NS
from meshcore.config.model import pem_blocks
from meshcore.errors import ConfigIssue
from meshcore.keypaths import dotted

RELEASE = "cilium"
"""The Helm release of Cilium in ``NAMESPACE`` (``components.cilium.RELEASE_NAME``: the CLI's and the guide's)."""
CHART = "cilium"
RENDERED_SECRETS = (CA_SECRET, CLUSTERMESH_SECRET, KVSTOREMESH_SECRET)
"""Objects the program's release renders that a hand install or an older CLI may have created outside Helm."""
RELEASE_NAME_ANNOTATION = "meta.helm.sh/release-name"
RELEASE_NAMESPACE_ANNOTATION = "meta.helm.sh/release-namespace"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
POD_CIDR_KEYS = ("cluster-pool-ipv4-cidr",)
"""``cilium-config`` keys that list the pod CIDRs (cluster-pool IPAM), space-separated."""


class Sensitive(str):
    """A secret's text: never in a repr, a log line or an error."""

    def __repr__(self) -> str:
        return "Sensitive('[secret]')"


@dataclass(frozen=True)
class Revision:
    revision: int
    status: str
    chart: str
    version: str


@dataclass(frozen=True)
class Ca:
    certificate: str
    """PEM."""
    key: Sensitive = field(repr=False)
    """PEM (PKCS#1 RSA: what the chart's buildCustomCert and the program take)."""
    fingerprint: str
    key_problem: str | None = None
    """Why the key cannot be brought as it is (not RSA, not readable), or None."""


@dataclass(frozen=True)
class Observed:
    """What one cluster (one kubeconfig context) runs."""

    context: str
    error: str | None = None
    """The cluster could not be read: why."""
    history: tuple[Revision, ...] = ()
    """Every revision Helm stores of release kube-system/cilium, oldest first."""
    values: Mapping[str, Any] = field(default_factory=dict, repr=False)
    """The user-supplied values of the deployed revision (``helm get values``): they hold the CA key."""
    service: Mapping[str, Any] | None = None
    """``{type, annotations, ingress}`` of Service kube-system/clustermesh-apiserver, or None."""
    cilium_config: Mapping[str, str] | None = None
    ca: Ca | None = None
    owners: Mapping[str, str | None] = field(default_factory=dict)
    """Name of each of ``RENDERED_SECRETS`` that exists -> the Helm release it belongs to (None: none)."""
    node_pod_cidrs: tuple[str, ...] = ()
    region: str | None = None
    """The nodes' ``topology.kubernetes.io/region`` when it is a Tencent Cloud region, else None."""
    chart_defaults: Mapping[str, Any] = field(default_factory=dict, repr=False)
    """The deployed chart's own values (its ``values.yaml``, as Helm stores it in the release)."""

    @property
    def deployed(self) -> Revision | None:
        live = [r for r in self.history if r.status == "deployed"]
        return max(live, key=lambda r: r.revision) if live else None


@dataclass(frozen=True)
class Options:
    kubeconfig: str
    region: str | None = None
    chart: str | None = None
    """A local chart (directory or .tgz) or oci:// reference for ``mesh:cilium.chart``; None: the repository."""
    skip_await: bool = False
    pod_cidrs: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Context or cluster name -> its pod CIDRs, where the cluster does not say."""


@dataclass
class Adoption:
    config: dict[str, Any]
    """The stack file's plain ``config:`` (``mesh:*`` keys)."""
    ca_key: Sensitive = field(repr=False)
    """``mesh:caPrivateKey``, set as a secret."""
    clusters: dict[str, str]
    """Cluster name -> its context."""
    notes: list[str] = field(default_factory=list)
    """What the program will do differently from what runs, and what adopt found (leftovers)."""
    leftovers: dict[str, list[str]] = field(default_factory=dict)
    """Context -> the Secrets of ``RENDERED_SECRETS`` not owned by release kube-system/cilium."""


class Refused(Exception):
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))


def _older(version: str, minor: str) -> bool:
    """True when ``version`` is a release of a minor older than ``minor`` (1.16.5 against 1.18)."""
    try:
        major, mine = (int(p) for p in version.lstrip("v").split(".")[:2])
    except ValueError:
        return False
    return (major, mine) < tuple(int(p) for p in minor.split("."))


def _minor(version: str) -> str:
    return ".".join(version.lstrip("v").split(".")[:2])


def _peers(values: Mapping[str, Any]) -> dict[str, tuple[str | None, int | None]]:
    """Peer name -> (address, port) of ``clustermesh.config.clusters`` (the 1.18 list or the 1.19+ map)."""
    raw = get_path(values, ("clustermesh", "config", "clusters"), [])
    if not get_path(values, ("clustermesh", "config", "enabled"), False):
        return {}
    entries = [{"name": k, **v} for k, v in raw.items() if isinstance(v, Mapping)] if isinstance(raw, Mapping) \
        else [e for e in raw or [] if isinstance(e, Mapping)]
    out = {}
    for e in entries:
        if isinstance(e.get("name"), str):
            port = e.get("port")
            out[e["name"]] = (e.get("address"), int(port) if isinstance(port, (int, float)) else None)
    return out


def _vip(o: Observed) -> str | None:
    """The clustermesh-apiserver's VIP: the load balancer's address, else the one its annotation requests."""
    svc = o.service or {}
    for address in svc.get("ingress") or []:
        try:
            ipaddress.IPv4Address(address)
            return str(address)
        except ValueError:
            continue
    params = (svc.get("annotations") or {}).get(owned.EXTENSIVE_PARAMETERS_ANNOTATION)
    try:
        vip = json.loads(params).get("Vip") if params else None
    except (ValueError, AttributeError):
        vip = None
    return vip if isinstance(vip, str) else None


def pod_cidrs(o: Observed, name: str | None, given: Mapping[str, Sequence[str]]) -> list[str]:
    """The cluster's pod CIDRs: given (by context or name), ``cilium-config``'s cluster pool, the release's
    ``ipam.operator.clusterPoolIPv4PodCIDRList`` (cluster-pool IPAM), or the nodes' ``spec.podCIDRs``."""
    for k in (o.context, name):
        if k is not None and k in given:
            return list(given[k])
    for key in POD_CIDR_KEYS:
        text = (o.cilium_config or {}).get(key)
        if text:
            return text.split()
    mode = get_path(o.values, ("ipam", "mode"), "cluster-pool")
    pool = get_path(o.values, ("ipam", "operator", "clusterPoolIPv4PodCIDRList"))
    if mode == "cluster-pool" and isinstance(pool, list) and pool:
        return [str(c) for c in pool]
    if o.node_pod_cidrs:
        return sorted({str(ipaddress.ip_network(c, strict=False)) for c in o.node_pod_cidrs if ":" not in c})
    return []


def first_installed(o: Observed) -> tuple[str, str | None]:
    """(the minor the cluster was first installed with, a note when that is a guess): the release's own
    ``upgradeCompatibility``, else the chart of revision 1, else (history pruned) the oldest revision Helm kept."""
    uc = o.values.get("upgradeCompatibility")
    if isinstance(uc, (str, float)) and str(uc):
        return str(uc), None
    oldest = o.history[0]
    if oldest.revision == 1:
        return _minor(oldest.version), None
    return _minor(oldest.version), (
        f"Helm keeps revisions {oldest.revision}..{o.history[-1].revision} only (the install is pruned): the first "
        f"install is taken as chart {_minor(oldest.version)}, that of revision {oldest.revision}; if it was older, set "
        "adopted.firstInstalled to that minor (upgradeCompatibility keeps its defaults)")


def _effective_pdlc(o: Observed, version: str) -> bool:
    v = get_path(o.values, ("clustermesh", "policyDefaultLocalCluster"))
    return bool(v) if isinstance(v, bool) else versions.row(version).chart_policy_default_local_cluster


def _split_common(trees: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(what every tree has alike, each tree's rest): mappings compared key by key, anything else as a whole."""
    common: dict[str, Any] = {}
    rests: list[dict[str, Any]] = [{} for _ in trees]
    keys = dict.fromkeys(k for t in trees for k in t)
    for k in keys:
        vals = [t.get(k, _ABSENT) for t in trees]
        if all(isinstance(v, Mapping) for v in vals):
            c, rs = _split_common(vals)
            if c:
                common[k] = c
            for rest, r in zip(rests, rs, strict=True):
                if r:
                    rest[k] = r
        elif all(v is not _ABSENT for v in vals) and all(v == vals[0] for v in vals):
            common[k] = copy.deepcopy(vals[0])
        else:
            for rest, v in zip(rests, vals, strict=True):
                if v is not _ABSENT:
                    rest[k] = copy.deepcopy(v)
    return common, rests


_ABSENT: Any = object()


def _kept_values(values: Mapping[str, Any], version: str, masquerade: str) -> tuple[dict[str, Any], list[str]]:
    """The release's values without what the program owns (it sets those itself) or refuses on that chart
    version; and the refused paths dropped, each with why."""
    kept: dict[str, Any] = copy.deepcopy(dict(values))
    for row in owned.owned_keys(masquerade, chart_minor=versions.minor_of(version)):
        kept = without_path(kept, row.path)
    kept = without_path(kept, ("upgradeCompatibility",))
    kept = without_path(kept, ("tls", "ca"))
    kept = without_path(kept, ("tls", "caBundle"))
    dropped = []
    for path, why in versions.row(version).refused.items():
        if get_path(kept, path, _ABSENT) is not _ABSENT:
            kept = without_path(kept, path)
            dropped.append(f"{dotted(path)} {why}")
    return kept, dropped


def refusals(fleet: Sequence[Observed]) -> list[str]:
    """Why this fleet cannot be adopted as it runs: each line names the cluster and what to do."""
    out: list[str] = []
    named: dict[str, list[str]] = {}
    ids: dict[int, list[str]] = {}
    cas: dict[str, list[str]] = {}
    read: list[tuple[Observed, Revision]] = []
    for o in fleet:
        where = f"context {o.context}"
        if o.error is not None:
            out.append(f"{where}: cannot be read: {o.error}; fix the kubeconfig or leave the context out of --contexts")
            continue
        live = o.deployed
        if live is None:
            states = ", ".join(f"{r.revision}: {r.status}" for r in o.history) or "no revision"
            out.append(f"{where}: no deployed Helm release {NAMESPACE}/{RELEASE} ({states}): install Cilium "
                       "first (or repair the release: helm -n kube-system history cilium), or leave the context out")
            continue
        if live.chart != CHART:
            out.append(f"{where}: release {NAMESPACE}/{RELEASE} is chart {live.chart!r} {live.version}, not chart "
                       f"{CHART!r}: adopt takes over the Cilium chart only; leave the context out")
            continue
        if not versions.is_supported(live.version):
            lo, hi = versions.ORDER[0], versions.ORDER[-1]
            fix = (f"upgrade it by hand to {versions.LATEST[lo]} first (Cilium's upgrade guide, one minor at a time), "
                   "then adopt" if _older(live.version, lo)
                   else f"adopt it with a program version that renders chart {_minor(live.version)}")
            out.append(f"{where}: runs chart cilium {live.version}; this program renders {lo}.x to {hi}.x "
                       f"(meshcore/chart/versions.py): {fix}")
            continue
        read.append((o, live))
        name = get_path(o.values, ("cluster", "name")) or (o.cilium_config or {}).get("cluster-name")
        cid = get_path(o.values, ("cluster", "id"))
        if cid is None and (o.cilium_config or {}).get("cluster-id", "").isdigit():
            cid = int((o.cilium_config or {})["cluster-id"])
        if not isinstance(name, str) or name in ("", "default"):
            out.append(f"{where}: its Cilium cluster.name is {name or 'unset'!r}: it is not a mesh member; name it "
                       "(helm upgrade --reuse-values --set cluster.name=<TKE cluster ID>, then restart the agents) "
                       "or leave the context out")
        else:
            named.setdefault(name, []).append(o.context)
        if not isinstance(cid, (int, float)) or int(cid) < 1:
            out.append(f"{where}: its Cilium cluster.id is {cid!r}: a mesh member has an id in 1..255 (or 511); set "
                       "one that is unique in the fleet first, or leave the context out")
        else:
            ids.setdefault(int(cid), []).append(f"{name} (context {o.context})")
        if o.ca is None:
            out.append(f"{where}: has no Secret {NAMESPACE}/{CA_SECRET} (ca.crt and ca.key): the mesh's CA is read "
                       "from it; a mesh member has one")
        else:
            cas.setdefault(o.ca.fingerprint, []).append(f"{name} (context {o.context})")
            if o.ca.key_problem:
                out.append(f"{where}: Secret {NAMESPACE}/{CA_SECRET}: {o.ca.key_problem}")
            given = get_path(o.values, ("tls", "ca", "cert"))
            if isinstance(given, str) and given and _b64_pem(given) != o.ca.certificate.strip():
                out.append(f"{where}: the release's tls.ca.cert is another certificate than Secret "
                           f"{NAMESPACE}/{CA_SECRET}'s ca.crt: make them one (the chart renders the Secret from the "
                           "value), then adopt")
        svc = o.service
        annotations = (svc or {}).get("annotations") or {}
        if svc is None:
            out.append(f"{where}: has no Service {NAMESPACE}/{SERVICE}: the program exposes every "
                       "clustermesh-apiserver on an internal CLB; enable it first (clustermesh.useAPIServer with "
                       "TKE's internal-CLB annotations) or leave the context out")
        else:
            if svc.get("type") != "LoadBalancer" or owned.INTERNAL_SUBNET_ANNOTATION not in annotations:
                out.append(f"{where}: Service {NAMESPACE}/{SERVICE} is {svc.get('type')} without annotation "
                           f"{owned.INTERNAL_SUBNET_ANNOTATION}: the program keeps it on an internal CLB of that "
                           "subnet; expose it so first (TKE's guide), or leave the context out")
            elif _vip(o) is None:
                out.append(f"{where}: Service {NAMESPACE}/{SERVICE} has no VIP yet (no status.loadBalancer.ingress and "
                           f"no requested Vip in {owned.EXTENSIVE_PARAMETERS_ANNOTATION}): wait until TKE assigns one")
            if owned.EXISTING_LB_ANNOTATION in annotations:
                lb = annotations[owned.EXISTING_LB_ANNOTATION]
                out.append(f"{where}: Service {NAMESPACE}/{SERVICE} uses an existing CLB "
                           f"({owned.EXISTING_LB_ANNOTATION}: {lb}): the program asks TKE for the VIP instead, "
                           "which would move peers to a new address; not adoptable as is")
        if get_path(o.values, ("tls", "caBundle", "enabled")):
            out.append(f"{where}: a CA bundle is set (tls.caBundle): finish that CA rotation first, then adopt")
    for name, contexts in sorted(named.items()):
        if len(contexts) > 1:
            out.append(f"contexts {', '.join(contexts)}: all run Cilium cluster.name {name}: names are unique in a "
                       "mesh; these are one cluster reached twice (leave all but one context out) or clusters to "
                       "rename first")
    for cid, names in sorted(ids.items()):
        if len(names) > 1:
            out.append(f"{', '.join(names)}: all run cluster.id {cid}: ids are unique in a mesh; give all but one "
                       "another id first (every workload of that cluster restarts), then adopt")
    if len(cas) > 1:
        groups = "; ".join(f"CA {fp[:23]}: {', '.join(members)}" for fp, members in sorted(cas.items()))
        out.append(f"the clusters run {len(cas)} different CAs in {NAMESPACE}/{CA_SECRET} ({groups}): a mesh has one; "
                   "clusters of another CA never connected to these: adopt each group as its own stack, or bring "
                   "them onto one CA first")
    if read:
        limits = {int(get_path(o.values, ("clustermesh", "maxConnectedClusters"), 255)) for o, _ in read}
        if len(limits) > 1:
            out.append(f"the clusters run clustermesh.maxConnectedClusters {sorted(limits)}: it is one value in a "
                       "mesh and cannot change on a running cluster; adopt the clusters of each value apart")
        skew = versions.skew_problem({o.context: r.version for o, r in read})
        if skew:
            out.append(f"contexts: {skew}")
        pdlc = {o.context: _effective_pdlc(o, r.version) for o, r in read}
        if len(set(pdlc.values())) > 1:
            parts = ", ".join(f"{c}: {v}" for c, v in sorted(pdlc.items()))
            out.append(f"clustermesh.policyDefaultLocalCluster differs ({parts}; unset is the chart's default): the "
                       "program sets one value everywhere; make it one first (cilium clustermesh "
                       "inspect-policy-default-local-cluster), then adopt")
        masq = {o.context: bool(get_path(o.values, ("ipMasqAgent", "enabled"), False)) for o, _ in read}
        if len(set(masq.values())) > 1:
            out.append(f"ipMasqAgent.enabled differs ({', '.join(f'{c}: {v}' for c, v in sorted(masq.items()))}): the "
                       "program sets the masquerade mode for the whole mesh; make it one first")
    return out


def _b64_pem(value: str) -> str:
    import base64

    try:
        return base64.b64decode(value).decode().strip()
    except (ValueError, UnicodeDecodeError):
        return ""


def adopt(fleet: Sequence[Observed], options: Options) -> Adoption:
    """The stack config of this fleet, or ``Refused`` with every reason not to (nothing is written then)."""
    problems = refusals(fleet)
    if problems:
        raise Refused(problems)
    entries: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    notes: list[str] = []
    read = [(o, live) for o in fleet for live in [o.deployed] if live is not None]
    version_count: dict[str, int] = {}
    for _, live in read:
        version_count[live.version] = version_count.get(live.version, 0) + 1
    mesh_version = max(version_count, key=lambda v: (version_count[v], versions.parse(v)))
    agent = all(get_path(o.values, ("ipMasqAgent", "enabled"), False) for o, _ in read)
    masquerade = "ipMasqAgent" if agent else "none"
    kept: list[dict[str, Any]] = []
    cidrs_of: dict[str, list[str]] = {}
    for o, live in read:
        name = str(get_path(o.values, ("cluster", "name")) or (o.cilium_config or {})["cluster-name"])
        names[name] = o.context
        cidrs = pod_cidrs(o, name, options.pod_cidrs)
        cidrs_of[name] = cidrs
        region = options.region or o.region
        if not cidrs:
            problems.append(f"context {o.context} ({name}): its pod CIDRs are not in cilium-config, the release's "
                            "ipam values or the nodes: pass --pod-cidrs " f"{name}=CIDR[,CIDR...]")
        if region is None:
            problems.append(f"context {o.context} ({name}): its nodes name no Tencent Cloud region: pass --region")
        first, guess = first_installed(o)
        if guess:
            notes.append(f"{name}: {guess}")
        annotations = (o.service or {}).get("annotations") or {}
        entry: dict[str, Any] = {
            "name": name,
            "id": int(get_path(o.values, ("cluster", "id")) or int((o.cilium_config or {})["cluster-id"])),
            "region": region,
        }
        if o.context != name:
            entry["context"] = o.context
        entry["podCidrs"] = cidrs
        entry["apiserver"] = {"subnetId": annotations[owned.INTERNAL_SUBNET_ANNOTATION], "vip": _vip(o)}
        values, dropped = _kept_values(o.values, live.version, masquerade)
        notes += [f"{name}: drops {d}" for d in dropped]
        kept.append(values)
        if live.version != mesh_version:
            entry["cilium"] = {"version": live.version}
        entry["adopted"] = {"version": live.version, "firstInstalled": first}
        entries.append(entry)
        leftovers = [s for s, owner in sorted(o.owners.items()) if owner != RELEASE]
        for secret in leftovers:
            notes.append(
                f"{name}: Secret {NAMESPACE}/{secret} exists outside release {RELEASE} (no "
                f"{RELEASE_NAME_ANNOTATION}: {RELEASE}): the release renders it, and Helm refuses to take over an "
                "object without its ownership metadata (`pulumi up` would fail for this cluster: invalid ownership "
                f"metadata). `--take-over` labels and annotates it ({MANAGED_BY_LABEL}=Helm, "
                f"{RELEASE_NAME_ANNOTATION}={RELEASE}, {RELEASE_NAMESPACE_ANNOTATION}={NAMESPACE}; no data changes), "
                "so the first `pulumi up` takes it over in place and writes the release's content into it: "
                + ("the same CA, nothing re-issued" if secret == CA_SECRET else
                   "the program's peer list, the same peers, so no connection drops"))
    if problems:
        raise Refused(problems)
    by_name = {e["name"]: e for e in entries}
    # The peer lists: the topology, and what the program will change in them.
    live_peers = {e["name"]: _peers(o.values) for e, (o, _) in zip(entries, read, strict=True)}
    wanted = {n: sorted(p for p in peers if p in by_name and p != n) for n, peers in live_peers.items()}
    for n, peers in sorted(live_peers.items()):
        for p, (address, _port) in sorted(peers.items()):
            if p not in by_name:
                notes.append(f"{n}: its peer {p} is not among the adopted clusters: the program drops it from {n}'s "
                             "peer list (adopt that cluster too, with its context in --contexts, to keep it)")
            elif address != by_name[p]["apiserver"]["vip"]:
                notes.append(f"{n}: its peer {p} is at {address}; the program connects it to {p}'s VIP "
                             f"{by_name[p]['apiserver']['vip']}")
    symmetric: dict[str, set[str]] = {n: set(ps) for n, ps in wanted.items()}
    for n, ps in wanted.items():
        for p in ps:
            symmetric[p].add(n)
    everyone = set(by_name)
    full = all(symmetric[n] == everyone - {n} for n in by_name)
    topology: Any = "full"
    if not full and all(symmetric.values()):
        topology = {"peers": {n: sorted(ps) for n, ps in sorted(symmetric.items()) if ps}}
    elif not full:
        notes.append("some clusters have no peer among the adopted ones: the stack connects every cluster to every "
                     "other (mesh:topology: full)")
    for n in by_name:
        added = symmetric[n] - set(wanted[n]) if topology != "full" else (everyone - {n}) - set(wanted[n])
        if added:
            notes.append(f"{n}: the program connects it to {', '.join(sorted(added))} too (a mesh's connections go "
                         "both ways)")
    common, rests = _split_common(kept)
    for e, rest in zip(entries, rests, strict=True):
        if rest:
            e["values"] = rest
    cilium: dict[str, Any] = {"version": mesh_version}
    if options.chart:
        cilium["chart"] = options.chart
    if options.skip_await:
        cilium["skipAwait"] = True
    if common:
        cilium["values"] = common
    o0 = read[0][0]
    ca = o0.ca
    assert ca is not None
    config: dict[str, Any] = {"mesh:cilium": cilium, "mesh:kubeconfig": options.kubeconfig}
    limit = int(get_path(o0.values, ("clustermesh", "maxConnectedClusters"), 255))
    if limit != 255:
        config["mesh:maxConnectedClusters"] = limit
    if masquerade == "ipMasqAgent":
        pods = {str(ipaddress.ip_network(c, strict=False)) for cs in cidrs_of.values() for c in cs}
        extras = sorted({str(c) for o, _ in read
                         for c in get_path(o.values, ("ipMasqAgent", "config", "nonMasqueradeCIDRs"), []) or []} - pods)
        config["mesh:masquerade"] = {"mode": "ipMasqAgent", **({"extraNonMasqueradeCidrs": extras} if extras else {})}
    relays = {bool(get_path(o.values, ("hubble", "relay", "enabled"), False)) for o, _ in read}
    relay = relays.pop() if len(relays) == 1 else True
    if len(relays) > 0:
        notes.append("hubble.relay.enabled differs between the clusters: the program turns Hubble Relay on everywhere "
                     "(mesh:hubbleRelay: true)")
    config["mesh:hubbleRelay"] = relay
    if topology != "full":
        config["mesh:topology"] = topology
    config["mesh:ca"] = {"certificate": ca.certificate.strip() + "\n"}
    pdlc = {_effective_pdlc(o, live.version) for o, live in read}
    if any(versions.minor_of(live.version) != versions.ORDER[0] for _, live in read) or any(
            isinstance(get_path(o.values, ("clustermesh", "policyDefaultLocalCluster")), bool) for o, _ in read):
        config["mesh:policyDefaultLocalCluster"] = pdlc.pop()
    config["mesh:clusters"] = entries
    outside = {o.context: [s for s, owner in sorted(o.owners.items()) if owner != RELEASE] for o, _ in read}
    return Adoption(config, ca.key, names, notes, {c: s for c, s in outside.items() if s})


# -- the program's side: the first update of an adopted cluster ------------------------------------------


def needs_live(previous: Mapping[str, Any] | None, c: Any) -> bool:
    """True while the stack has no record of adopted cluster ``c`` (its first update, or a retry of it): then the
    program reads what it runs (``cilium-config``, ``cilium-ca``) to compare its identity and CA with the stack."""
    return c.adopted is not None and not (isinstance(previous, Mapping) and isinstance(previous.get(c.name), Mapping))


def with_live(previous: Mapping[str, Any] | None, settings: Any,
              live: Mapping[str, Mapping[str, Any] | None]) -> tuple[dict[str, Any], list[Any]]:
    """(the last ``clusters`` output with a record for each adopted cluster it lacks, the CA refusals).

    ``live`` maps an adopted cluster (its config name) to what it runs: ``cluster-name``/``cluster-id`` of its
    ``cilium-config`` and ``ca`` (the PEM of ``cilium-ca``'s ``ca.crt``), or None where unknown (the offline
    plan). The record is the one the stack would have written had it deployed the cluster: under the name the
    cluster runs, with its id, context and chart record (``adopted``), so the identity guard
    (``meshcore.mesh.lifecycle.identity_changes``) refuses another id, or another name on its context, as for any
    running cluster, and the version guard continues from what it runs."""
    out: dict[str, Any] = dict(previous) if isinstance(previous, Mapping) else {}
    issues: list[Any] = []
    for c in settings.clusters:
        if not needs_live(previous, c):
            continue
        seen = live.get(c.name) or {}
        name = seen.get("cluster-name")
        running = name if isinstance(name, str) and name else c.name
        record: dict[str, Any] = {"context": c.context or "", "region": c.region,
                                  "cilium": {"version": c.adopted.version, "firstInstalled": c.adopted.first_installed}}
        cid = seen.get("cluster-id")
        if isinstance(cid, str) and cid.isdigit():
            record["id"] = int(cid)
        out.setdefault(running, record)
        ca = seen.get("ca")
        if not isinstance(ca, str) or not ca:
            continue
        where = f"cluster {c.name} ({c.key}.adopted)"
        brought = settings.ca.provided_certificate
        if brought is None:
            issues.append(ConfigIssue(f"{NS}:ca", f"{where} runs its own CA ({NAMESPACE}/{CA_SECRET}); a CA the "
                                      "program generates would replace it and disconnect its peers: bring the "
                                      "running one (mesh:ca.certificate and the secret mesh:caPrivateKey; python -m "
                                      "tools.adopt writes both)"))
        elif pem_blocks(ca) != pem_blocks(brought):
            issues.append(ConfigIssue(f"{NS}:ca.certificate", f"{where} runs another CA ({NAMESPACE}/{CA_SECRET}'s "
                                      "ca.crt) than mesh:ca.certificate: this update would change the CA of a running "
                                      "cluster and disconnect its peers; bring the CA it runs (python -m tools.adopt "
                                      "reads it), or rotate that cluster's CA first"))
    return out, issues


__all__ = ["needs_live", "with_live", "CONFIG_MAP", "CA_SECRET", "SERVICE", "Observed", "Revision", "Ca", "Options",
           "Adoption", "Refused", "Sensitive", "adopt", "refusals", "pod_cidrs", "first_installed",
           "RENDERED_SECRETS", "NAMESPACE", "RELEASE"]
