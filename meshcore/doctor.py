"""The mesh doctor's comparison: the stack's desired mesh against what the clusters hold.

Pure: no Pulumi, no Kubernetes client, no clock. ``desired`` computes each cluster's desired
state from the validated ``Settings`` with the program's own ``meshcore.release.release_inputs`` and
``meshcore.values.cluster_values`` (the very values a release receives; what only the cloud knows is
``UNKNOWN``), and ``examine`` compares it with what ``tools/doctor.py`` read from the clusters (an
``Observation`` each), returning ``Finding``\\ s. Every check reads only the facts it is given, so each can be
tested on plain data; each is registered once (``REGISTERED``).

What a cluster's observation holds (``Observation``; ``tools/doctor.py`` builds it; every field optional but
``reachable``; an object that is not there is ``None``):

- ``reachable`` (bool), ``error`` (str, when not reachable);
- ``releases``: ``[{revision, status, chart, version, rendered}]``, one per stored revision of
  Helm release ``cilium`` (Helm 3's ``sh.helm.release.v1.cilium.vN`` Secrets); ``rendered``:
  ``[{kind, name, type}]`` of the objects that revision's manifest holds (nothing else of it);
- ``config``: the data of ConfigMap ``cilium-config``;
- ``ca``: the certificate facts (``CertFacts``) of ``cilium-ca``'s ``ca.crt`` (its ``ca.key`` is
  never read);
- ``service``: ``{type, annotations, ingress: [ip or hostname]}`` of ``clustermesh-apiserver``;
- ``secrets``: ``{"cilium-kvstoremesh": {peer: text}, "cilium-clustermesh": {peer: text}}``, the
  peer entries (keys that are cluster names) of the peer Secrets, decoded;
- ``tls``: ``{secret name: {"crt": CertFacts, "ca": CertFacts or None}}`` of the mesh TLS Secrets
  that exist (``MESH_TLS_SECRETS``; their ``tls.key`` is never read);
- ``workloads``: ``{"DaemonSet/cilium": {desired, ready, available}, "Deployment/clustermesh-apiserver":
  {desired, ready, available}}``.

``CertFacts``: ``{sha256, subject, issuer, not_after (ISO 8601, UTC), ski, aki, ips, dns}``, or
``{error}`` for text that is not a certificate.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import yaml

from meshcore import certs, stackoutputs, versions
from meshcore.config import CLUSTER_NAME_RE, DEFAULT_APISERVER_PORT, Settings
from meshcore.release import mesh_non_masquerade_cidrs, release_inputs
from meshcore.values import (
    ANNOTATIONS,
    EXISTING_LB_ANNOTATION,
    EXTENSIVE_PARAMETERS_ANNOTATION,
    INTERNAL_SUBNET_ANNOTATION,
    cluster_values,
    peer_entry,
)

# -- the vocabulary -------------------------------------------------------------------------

ERROR = "error"
"""The cluster differs from the stack, or something the mesh needs is broken."""
PENDING = "pending"
"""Not there yet (a load balancer address TKE has not assigned): not healthy either."""
WARNING = "warning"
"""Works today, needs action (a certificate expiring within ``EXPIRY_WARNING_DAYS``)."""
INFO = "info"
"""Worth knowing, nothing to fix (a workload the chart did not create)."""
OK = "ok"
SEVERITIES = (ERROR, PENDING, WARNING, INFO, OK)
"""Most serious first."""
FAILING = (ERROR, PENDING, WARNING)
"""Severities that make the doctor exit 1."""


CONFIG_MAP = "cilium-config"
CA_SECRET = "cilium-ca"
SERVICE = "clustermesh-apiserver"
KVSTOREMESH_SECRET = "cilium-kvstoremesh"
CLUSTERMESH_SECRET = "cilium-clustermesh"
PEER_SECRETS = (KVSTOREMESH_SECRET, CLUSTERMESH_SECRET)
SERVER_CERT = certs.CLUSTERMESH_SECRETS[0]
MESH_TLS_SECRETS = certs.LEAF_SECRETS
"""The clustermesh-apiserver's and Hubble's TLS Secrets (``meshcore.certs``); the chart keeps two of
Hubble's from the first install (365 days), and neither a CA rotation nor a rename re-issues them."""
WORKLOADS = ("DaemonSet/cilium", "Deployment/clustermesh-apiserver")
"""The agents and the clustermesh-apiserver."""
EXPIRY_WARNING_DAYS = 30
DEFAULT_MESH_DOMAIN = "mesh.cilium.io"
"""The chart's ``clustermesh.config.domain`` (a program-owned mapping that never sets it)."""
_OWNED_ANNOTATIONS = (INTERNAL_SUBNET_ANNOTATION, EXTENSIVE_PARAMETERS_ANNOTATION, EXISTING_LB_ANNOTATION)


@dataclass(frozen=True)
class Finding:
    cluster: str
    check: str
    """One of ``CHECKS``."""
    severity: str
    """One of ``SEVERITIES``."""
    message: str

    def line(self, width: int = 12) -> str:
        """The finding as one line of text, the cluster name padded to ``width`` (12: a TKE cluster ID)."""
        return f"{self.severity.upper():8} {self.cluster:<{width}} {self.check:13} {self.message}"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)



# -- the desired state ----------------------------------------------------------------------


class _Unknown:
    """A value only a deployed stack knows (a created CLB's id or VIP): compared for presence."""

    def __repr__(self) -> str:
        return "[unknown]"


UNKNOWN: Any = _Unknown()


@dataclass(frozen=True)
class Peer:
    name: str
    endpoint: str | None
    """``https://<address>:<port>`` as the chart writes it; None when the address is unknown."""


@dataclass(frozen=True)
class DesiredCluster:
    """What one cluster should hold, read from the values its release receives."""

    name: str
    cluster_id: int
    max_connected_clusters: int
    chart_version: str
    service_type: str
    annotations: Mapping[str, Any]
    """The owned Service annotations; a value may be ``UNKNOWN`` (a created CLB's id)."""
    mesh_address: str | None
    """The VIP peers connect to (the Service's load balancer address), None if unknown."""
    server_ips: tuple[str, ...]
    """The IPs the server certificate must cover (``extraIpAddresses``; unknown ones left out)."""
    peer_secrets: Mapping[str, tuple[Peer, ...]]
    """Secret name -> the entries it must hold, exactly."""


@dataclass(frozen=True)
class Desired:
    clusters: tuple[DesiredCluster, ...]
    namespace: str
    """The release's namespace (``meshcore.effects.NAMESPACE``)."""
    release: str
    """The Helm release name (``components.cilium.RELEASE_NAME``)."""
    ca_fingerprint: str | None = None
    """The SHA-256 fingerprint of the CA the stack deploys, when known (a brought CA, or
    ``caCertificatePem`` of the stack outputs)."""
    ca_source: str = ""
    """Where ``ca_fingerprint`` comes from, for messages."""


def _get(tree: Any, *path: object, default: Any = None) -> Any:
    for part in path:
        if not isinstance(tree, dict) or part not in tree:
            return default
        tree = tree[part]
    return tree


def mesh_addresses(settings: Settings,
                   deployed: Mapping[str, stackoutputs.ClusterRecord]) -> dict[str, str | None]:
    """Each cluster's mesh address (its VIP): the configured VIP, or for a CLB the program
    creates, the host of ``clusters.<name>.meshAddress`` in the stack outputs (None without them)."""
    out: dict[str, str | None] = {}
    for c in settings.clusters:
        if c.apiserver.vip is not None:
            out[c.name] = str(c.apiserver.vip)
        else:
            recorded = deployed.get(c.name)
            out[c.name] = recorded.host if recorded is not None else None
    return out


def _peer_entries(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``clustermesh.config.clusters`` as ``[{name, address, port, ips}]``: the 1.18 list form or
    the 1.19+ map form (entries with ``enabled: false`` left out), as the chart reads it."""
    clusters = _get(values, "clustermesh", "config", "clusters", default=[])
    if isinstance(clusters, dict):
        return [{"name": n, **e} for n, e in clusters.items() if isinstance(e, dict) and e.get("enabled", True)]
    return [e for e in clusters or [] if isinstance(e, dict)]


def expected_peer_secrets(values: Mapping[str, Any], namespace: str) -> dict[str, tuple[Peer, ...]]:
    """What the chart writes into the peer Secrets from a release's values (the real chart's
    ``clustermesh-config`` templates, ../shared/docs/cilium-mesh.md section 2): with the
    clustermesh-apiserver and KVStoreMesh, ``cilium-kvstoremesh`` holds each peer's remote
    endpoint and ``cilium-clustermesh`` points every peer at the local clustermesh-apiserver
    (the agents read KVStoreMesh's cache); otherwise ``cilium-clustermesh`` holds the remote
    endpoints. An entry with ``ips`` is reached by name (``<name>.<domain>``), else by ``address``."""
    if not _get(values, "clustermesh", "config", "enabled", default=False):
        return {}
    domain = _get(values, "clustermesh", "config", "domain", default=None) or DEFAULT_MESH_DOMAIN
    remote: list[Peer] = []
    for e in _peer_entries(values):
        address = f"{e['name']}.{domain}" if e.get("ips") else e.get("address")
        endpoint = None if address is None or address is UNKNOWN else f"https://{address}:{e.get('port')}"
        remote.append(Peer(str(e["name"]), endpoint))
    kvstoremesh = bool(_get(values, "clustermesh", "useAPIServer", default=False)) and bool(
        _get(values, "clustermesh", "apiserver", "kvstoremesh", "enabled", default=True))
    if kvstoremesh:
        local = f"https://{SERVICE}.{namespace}.svc:{DEFAULT_APISERVER_PORT}"  # the chart's fixed Service port
        return {KVSTOREMESH_SECRET: tuple(remote), CLUSTERMESH_SECRET: tuple(Peer(p.name, local) for p in remote)}
    return {CLUSTERMESH_SECRET: tuple(remote)}


def desired(settings: Settings, *, namespace: str, release: str, outputs: Mapping[str, Any] | None = None,
            ca_fingerprint: str | None = None, ca_source: str = "") -> Desired:
    """Every cluster's desired state, from the values the program gives its release
    (``release_inputs`` and ``cluster_values``, with the program's peer entries); the CA's values are left opaque
    (the CA is compared by fingerprint), as are a created CLB's id and, without outputs, its VIP."""
    records = stackoutputs.read_clusters((outputs or {}).get(stackoutputs.CLUSTERS))
    addresses = mesh_addresses(settings, records)
    entries = {c.name: peer_entry(c.name, addresses[c.name] or UNKNOWN, c.apiserver.port) for c in settings.clusters}
    masquerade = mesh_non_masquerade_cidrs(settings)
    rotating = len(settings.ca.generations) > 1 and settings.ca.provided_certificate is None
    out = []
    for c in settings.clusters:
        record = records.get(c.name)
        first = (record.cilium or {}).get("firstInstalled") if record is not None else None
        values = cluster_values(release_inputs(
            settings, c, masquerade=masquerade, ca_cert_b64=UNKNOWN, ca_key_b64=UNKNOWN,
            ca_bundle=UNKNOWN if rotating else None, own_address=addresses[c.name] or UNKNOWN,
            existing_lb_id=UNKNOWN if c.apiserver.create_clb else None,
            peers=[entries[p] for p in settings.peers[c.name]],
            k8s_service_host=UNKNOWN if c.reads_service_host else None,
            k8s_service_port=UNKNOWN if c.reads_service_host else None,
            upgrade_compatibility=first if isinstance(first, str) else None))
        annotations = _get(values, *ANNOTATIONS, default={}) or {}
        extra_ips = _get(values, *versions.row(settings.version_of(c)).server_ips, default=[]) or []
        out.append(DesiredCluster(
            name=_get(values, "cluster", "name"),
            cluster_id=_get(values, "cluster", "id"),
            max_connected_clusters=_get(values, "clustermesh", "maxConnectedClusters"),
            chart_version=settings.version_of(c),
            service_type=_get(values, "clustermesh", "apiserver", "service", "type", default="NodePort"),
            annotations={k: v for k, v in annotations.items() if k in _OWNED_ANNOTATIONS},
            mesh_address=addresses[c.name],
            server_ips=tuple(str(ip) for ip in extra_ips if ip is not UNKNOWN),
            peer_secrets=expected_peer_secrets(values, namespace),
        ))
    return Desired(tuple(out), namespace, release, ca_fingerprint, ca_source)


# -- the comparison -------------------------------------------------------------------------


@dataclass(frozen=True)
class Observation:
    """What one cluster holds, as ``tools/doctor.py`` read it (see the module docstring for each field)."""

    reachable: bool
    error: str | None = None
    """Why it is not reachable."""
    releases: Sequence[Mapping[str, Any]] = ()
    config: Mapping[str, Any] | None = None
    ca: Mapping[str, Any] | None = None
    service: Mapping[str, Any] | None = None
    secrets: Mapping[str, Mapping[str, str] | None] = field(default_factory=dict)
    tls: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    workloads: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)

    @property
    def rendered(self) -> set[tuple[str, str]] | None:
        """(kind, name) of the objects the deployed revision rendered, None if unknown."""
        r = deployed_release(self.releases)
        if r is None or r.get("rendered") is None:
            return None
        return {(str(x.get("kind")), str(x.get("name"))) for x in r["rendered"]}


NOT_EXAMINED = Observation(False, "not examined")


@dataclass(frozen=True)
class Subject:
    """What a check of one reachable cluster reads."""

    want: Desired
    cluster: DesiredCluster
    observed: Observation
    now: datetime.datetime
    """An aware datetime (certificate expiry)."""


def examine(want: Desired, observed: Mapping[str, Observation], now: datetime.datetime) -> list[Finding]:
    """Every finding, most serious first (then by cluster, in the stack's order, and check).

    ``observed`` maps every cluster of ``want`` to its observation (see the module docstring);
    ``now`` is an aware datetime (certificate expiry)."""
    findings: list[Finding] = []
    for c in want.clusters:
        o = observed.get(c.name) or NOT_EXAMINED
        findings += _check_cluster(Subject(want, c, o, now))
    for check in REGISTERED:
        if check.fleet is not None:
            findings += check.fleet(want, observed)
    order = {c.name: i for i, c in enumerate(want.clusters)}
    return sorted(findings, key=lambda f: (SEVERITIES.index(f.severity), order.get(f.cluster, -1),
                                            CHECKS.index(f.check)))


def _check_cluster(x: Subject) -> list[Finding]:
    c, o = x.cluster, x.observed
    if not o.reachable:
        return [Finding(c.name, "reachable", ERROR, f"{o.error or 'no answer'}; nothing else of this "
                                                    "cluster was checked")]
    out = [Finding(c.name, "reachable", OK, "the API server answers")]
    for check in REGISTERED:
        if check.cluster is not None:
            out += check.cluster(x)
    return out


def _ok_unless(findings: list[Finding], cluster: str, check: str, message: str) -> list[Finding]:
    return findings or [Finding(cluster, check, OK, message)]


def deployed_release(releases: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The revision Helm serves: the highest one with status ``deployed``."""
    live = [r for r in releases if r.get("status") == "deployed"]
    return max(live, key=lambda r: int(r.get("revision") or 0)) if live else None


def check_release(x: Subject) -> list[Finding]:
    want, c = x.want, x.cluster
    name = f"Helm release {want.namespace}/{want.release}"
    releases = x.observed.releases

    def f(severity: str, message: str) -> Finding:
        return Finding(c.name, "release", severity, message)

    if not releases:
        return [f(ERROR, f"{name} not found (no {_release_secret_prefix(want)}* Secret); run pulumi up")]
    latest = max(releases, key=lambda r: int(r.get("revision") or 0))
    live = deployed_release(releases)
    out = []
    if live is None:
        return [f(ERROR, f"{name} has no deployed revision (revision {latest.get('revision')} is "
                         f"{latest.get('status')}); run pulumi up")]
    if live.get("unreadable"):
        return [f(ERROR, f"{name}: {live['unreadable']}; Helm cannot upgrade it either: inspect it with "
                         f"`helm -n {want.namespace} history {want.release}`")]
    if latest is not live:
        status = str(latest.get("status"))
        blocking = status.startswith("pending-")
        out.append(f(ERROR if blocking else WARNING,
                     f"{name}: revision {latest.get('revision')} is {status}, revision {live.get('revision')} is the "
                     "deployed one" + ("; Helm refuses the next upgrade until it is rolled back" if blocking
                                        else "; the last update did not complete: run pulumi up")))
    if live.get("chart") != "cilium":
        out.append(f(ERROR, f"{name} (revision {live.get('revision')}) is chart {live.get('chart')!r}, not cilium"))
    if str(live.get("version")) != c.chart_version:
        out.append(f(ERROR, f"{name} (revision {live.get('revision')}) is chart version {live.get('version')}, "
                            f"planned {c.chart_version}"))
    return _ok_unless(out, c.name, "release",
                      f"{name} revision {live.get('revision')} deployed, chart cilium {live.get('version')}")


def _release_secret_prefix(want: Desired) -> str:
    return f"{want.namespace}/sh.helm.release.v1.{want.release}.v"


def check_config(x: Subject) -> list[Finding]:
    c, data = x.cluster, x.observed.config
    if data is None:
        return [Finding(c.name, "cilium-config", ERROR, f"ConfigMap {CONFIG_MAP} not found")]
    out = []
    for key, planned in (("cluster-name", c.name), ("cluster-id", c.cluster_id),
                         ("max-connected-clusters", c.max_connected_clusters)):
        have = data.get(key)
        if have is None:
            out.append(Finding(c.name, "cilium-config", ERROR, f"{CONFIG_MAP} has no {key}, planned {planned}"))
        elif str(have) != str(planned):
            out.append(Finding(c.name, "cilium-config", ERROR, f"{CONFIG_MAP} {key} is {have}, planned {planned}"))
    return _ok_unless(out, c.name, "cilium-config",
                      f"cluster-name {c.name}, cluster-id {c.cluster_id}, max-connected-clusters "
                      f"{c.max_connected_clusters}")


def check_service(x: Subject) -> list[Finding]:
    c, svc = x.cluster, x.observed.service

    def f(severity: str, message: str) -> Finding:
        return Finding(c.name, "service", severity, message)

    if svc is None:
        return [f(ERROR, f"Service {SERVICE} not found")]
    out = []
    if svc.get("type") != c.service_type:
        out.append(f(ERROR, f"Service {SERVICE} is type {svc.get('type')}, planned {c.service_type}"))
    have = svc.get("annotations") or {}
    for key in _OWNED_ANNOTATIONS:
        planned = c.annotations.get(key)
        if key not in c.annotations:
            if key in have:
                out.append(f(ERROR, f"Service {SERVICE} has annotation {key}: {have[key]}, which the stack does "
                                    "not set"))
        elif key not in have:
            shown = "the created CLB's id" if planned is UNKNOWN else planned
            out.append(f(ERROR, f"Service {SERVICE} has no annotation {key}, planned {shown}"))
        elif planned is not UNKNOWN and have[key] != planned:
            out.append(f(ERROR, f"Service {SERVICE} annotation {key} is {have[key]}, planned {planned}"))
    ingress = [str(i) for i in svc.get("ingress") or []]
    if c.mesh_address is None:
        out.append(f(INFO, "the planned address is unknown: the stack creates this cluster's CLB (createClb); "
                           "give --outputs (pulumi stack output --json) to check it"))
        if not ingress:
            out.append(f(PENDING, f"Service {SERVICE} has no load balancer address yet (pending)"))
    elif not ingress:
        out.append(f(PENDING, f"Service {SERVICE} has no load balancer address yet (pending), planned "
                              f"{c.mesh_address}"))
    elif c.mesh_address not in ingress:
        out.append(f(ERROR, f"Service {SERVICE} load balancer address is {', '.join(ingress)}, planned "
                            f"{c.mesh_address}"))
    return _ok_unless(out, c.name, "service", f"Service {SERVICE}: {c.service_type}, address "
                                              f"{', '.join(ingress) or '-'}")


def peer_endpoints(text: str) -> list[str] | None:
    """The ``endpoints`` of one peer entry of a peer Secret (an etcd client config), None if unreadable."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    endpoints = doc.get("endpoints") if isinstance(doc, dict) else None
    if not isinstance(endpoints, list) or not all(isinstance(e, str) for e in endpoints):
        return None
    return endpoints


def is_peer_key(key: str) -> bool:
    """A peer Secret key that is a peer entry (a cluster name), not one of the per-peer TLS files
    (``<name>.etcd-client.key`` ...), which are never read."""
    return bool(CLUSTER_NAME_RE.match(key))


def check_peers(x: Subject) -> list[Finding]:
    c, secrets = x.cluster, x.observed.secrets
    out = []

    def f(severity: str, message: str) -> Finding:
        return Finding(c.name, "peers", severity, message)

    for name, planned in c.peer_secrets.items():
        data = secrets.get(name)
        if data is None:
            out.append(f(ERROR, f"Secret {name} not found; planned peers: "
                                f"{', '.join(p.name for p in planned) or '(none)'}"))
            continue
        want = {p.name: p.endpoint for p in planned}
        for peer, endpoint in want.items():
            if peer not in data:
                shown = endpoint or "its address is unknown"
                out.append(f(ERROR, f"{name}: peer {peer} is missing (planned {shown})"))
                continue
            have = peer_endpoints(data[peer])
            if have is None:
                out.append(f(ERROR, f"{name}: the entry of peer {peer} is not an etcd config with endpoints"))
            elif endpoint is not None and have != [endpoint]:
                at = ", ".join(have) or "(no endpoint)"
                out.append(f(ERROR, f"{name}: peer {peer} is at {at}, planned {endpoint}"))
        for peer in sorted(set(data) - set(want)):
            have = peer_endpoints(data[peer])
            at = f" (at {', '.join(have)})" if have else ""
            out.append(f(ERROR, f"{name}: peer {peer}{at} is not planned"))
    names = sorted({p.name for planned in c.peer_secrets.values() for p in planned})
    return _ok_unless(out, c.name, "peers", f"{' and '.join(c.peer_secrets) or 'no peer Secret'}: "
                                            f"{len(names)} planned peer(s), each at its planned address")


def _days_left(facts: Mapping[str, Any], now: datetime.datetime) -> int | None:
    try:
        not_after = datetime.datetime.fromisoformat(str(facts["not_after"]))
    except (KeyError, ValueError):
        return None
    if not_after.tzinfo is None:
        not_after = not_after.replace(tzinfo=datetime.UTC)
    return math.floor((not_after - now).total_seconds() / 86400)


def _expiry(cluster: str, what: str, facts: Mapping[str, Any], now: datetime.datetime) -> Finding | None:
    days = _days_left(facts, now)
    if days is None:
        return Finding(cluster, "certificates", ERROR, f"{what}: no readable expiry date")
    if days < 0:
        return Finding(cluster, "certificates", ERROR, f"{what} expired {-days} day(s) ago ({facts['not_after']})")
    if days < EXPIRY_WARNING_DAYS:
        return Finding(cluster, "certificates", WARNING, f"{what} expires in {days} day(s) ({facts['not_after']})")
    return None


def _issued_by(leaf: Mapping[str, Any], ca: Mapping[str, Any]) -> bool:
    if leaf.get("aki") and ca.get("ski"):
        return bool(leaf["aki"] == ca["ski"])
    return bool(leaf.get("issuer") == ca.get("subject"))


def check_certificates(x: Subject) -> list[Finding]:
    """Expiry of the CA and of every mesh TLS Secret; each TLS Secret chains to ``cilium-ca``; the
    server certificate covers the mesh address; TLS Secrets the release rendered exist."""
    out: list[Finding] = []

    def f(severity: str, message: str) -> Finding:
        return Finding(c.name, "certificates", severity, message)

    c, now, rendered = x.cluster, x.now, x.observed.rendered
    ca = x.observed.ca
    days: list[int] = []
    if ca and "error" not in ca:
        e = _expiry(c.name, f"CA {CA_SECRET}", ca, now)
        out += [e] if e else []
        d = _days_left(ca, now)
        days += [d] if d is not None else []
    tls = x.observed.tls
    for name in MESH_TLS_SECRETS:
        entry = tls.get(name)
        if entry is None:
            if rendered is not None and ("Secret", name) in rendered:
                out.append(f(ERROR, f"Secret {name} is in the release but not in the cluster"))
            continue
        crt = entry.get("crt") or {"error": "no tls.crt"}
        if "error" in crt:
            out.append(f(ERROR, f"Secret {name}: tls.crt is not a certificate ({crt['error']})"))
            continue
        e = _expiry(c.name, f"Secret {name}", crt, now)
        out += [e] if e else []
        d = _days_left(crt, now)
        days += [d] if d is not None else []
        if ca and "error" not in ca:
            if not _issued_by(crt, ca):
                by = (f"its issuer's key id {crt['aki'][:16]}…, {CA_SECRET}'s {ca['ski'][:16]}…"
                      if crt.get("aki") and ca.get("ski") else f"issuer {crt.get('issuer')}")
                out.append(f(ERROR, f"Secret {name}: its certificate is not issued by {CA_SECRET} ({by}); "
                                    "run pulumi up to re-issue it"))
            bundled = entry.get("ca")
            if bundled and "error" not in bundled and bundled.get("sha256") != ca.get("sha256"):
                out.append(f(ERROR, f"Secret {name}: its ca.crt (sha256 {short(bundled.get('sha256'))}) is not "
                                    f"{CA_SECRET} (sha256 {short(ca.get('sha256'))})"))
        if name == SERVER_CERT:
            missing = [ip for ip in c.server_ips if ip not in (crt.get("ips") or [])]
            if missing:
                out.append(f(ERROR, f"Secret {name}: the server certificate does not cover {', '.join(missing)} "
                                    "(peers connecting to that address fail with an x509 error)"))
    if SERVER_CERT not in tls and (rendered is None or ("Secret", SERVER_CERT) not in rendered):
        out.append(f(INFO, f"Secret {SERVER_CERT} not present (the release does not render it); not checked"))
    return _ok_unless(out, c.name, "certificates",
                      f"{len(days)} certificate(s), the first to expire in {min(days)} day(s)" if days
                      else "no certificate to check")


def check_workloads(x: Subject) -> list[Finding]:
    """The agents and the clustermesh-apiserver ready, where they exist. A workload the deployed
    release did not render and the cluster does not have is reported as not present (``info``):
    a chart or a cluster without them (the local mesh has no kubelet) is not a broken mesh."""
    want, cluster, rendered = x.want, x.cluster.name, x.observed.rendered
    workloads = x.observed.workloads
    out = []
    absent = []
    for key in WORKLOADS:
        kind, name = key.split("/", 1)
        w = workloads.get(key)
        what = f"{kind} {want.namespace}/{name}"
        if w is None:
            if rendered is not None and (kind, name) in rendered:
                out.append(Finding(cluster, "workloads", ERROR, f"{what} is in the release but not in the cluster"))
            else:
                absent.append(what)
            continue
        desired_n, ready = int(w.get("desired") or 0), int(w.get("ready") or 0)
        if desired_n == 0:
            out.append(Finding(cluster, "workloads", INFO, f"{what}: no pod scheduled (0 desired)"))
        elif ready < desired_n:
            out.append(Finding(cluster, "workloads", ERROR, f"{what}: {ready}/{desired_n} ready"))
        else:
            out.append(Finding(cluster, "workloads", OK, f"{what}: {ready}/{desired_n} ready"))
    if absent:
        them = "them" if len(absent) > 1 else "it"
        out.append(Finding(cluster, "workloads", INFO, f"{' and '.join(absent)} not present (the release does not "
                                                       f"create {them}); not checked"))
    return out


def check_ca(want: Desired, observed: Mapping[str, Observation]) -> list[Finding]:
    """``cilium-ca`` the same certificate in every reachable cluster, and the stack's CA when known.

    With the stack's CA known, every cluster holding another one is named; without it, the
    clusters that differ from the certificate most clusters hold (with no majority, every one)."""
    prints: dict[str, str] = {}
    out: list[Finding] = []
    for c in want.clusters:
        o = observed.get(c.name) or NOT_EXAMINED
        if not o.reachable:
            continue
        ca = o.ca
        if ca is None:
            out.append(Finding(c.name, "cilium-ca", ERROR, f"Secret {CA_SECRET} not found"))
        elif "error" in ca:
            out.append(Finding(c.name, "cilium-ca", ERROR, f"Secret {CA_SECRET}: ca.crt is not a certificate "
                                                           f"({ca['error']})"))
        else:
            prints[c.name] = str(ca.get("sha256"))
    counts: dict[str, int] = {}
    for fp in prints.values():
        counts[fp] = counts.get(fp, 0) + 1
    reference, source = want.ca_fingerprint, want.ca_source
    if reference is None and counts:
        top = max(counts.values())
        leaders = [fp for fp, n in counts.items() if n == top]
        if len(leaders) == 1 and (len(counts) == 1 or top > 1):
            reference, source = leaders[0], f"the other clusters' ({top})"
    for name, fp in prints.items():
        if reference is None:
            out.append(Finding(name, "cilium-ca", ERROR, f"Secret {CA_SECRET} (sha256 {short(fp)}) differs between "
                                                         "clusters, with no majority: every cluster must hold the "
                                                         "same CA"))
        elif fp != reference:
            others = [n for n, p in prints.items() if p == reference]
            also = f" (the stack's CA is in {', '.join(others)})" if others and want.ca_fingerprint else ""
            out.append(Finding(name, "cilium-ca", ERROR, f"Secret {CA_SECRET} is another CA (sha256 {short(fp)}) "
                                                         f"than {source} (sha256 {short(reference)}){also}; "
                                                         "run pulumi up to put the mesh CA back"))
        else:
            out.append(Finding(name, "cilium-ca", OK, f"Secret {CA_SECRET} sha256 {short(fp)}"
                                                      + (f", {source}" if want.ca_fingerprint else "")))
    return out


def short(fingerprint: str | None) -> str:
    """The first 8 bytes of a colon-separated fingerprint, for one-line messages."""
    return ":".join(str(fingerprint).split(":")[:8]) + "…" if fingerprint else "?"


# -- the registry ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One check: of each reachable cluster (``cluster``), or of the fleet at once (``fleet``); ``reachable``,
    which gates the others, is neither."""

    name: str
    cluster: Callable[[Subject], list[Finding]] | None = None
    fleet: Callable[[Desired, Mapping[str, Observation]], list[Finding]] | None = None


REGISTERED: tuple[Check, ...] = (
    Check("reachable"),
    Check("release", cluster=check_release),
    Check("cilium-config", cluster=check_config),
    Check("cilium-ca", fleet=check_ca),
    Check("service", cluster=check_service),
    Check("peers", cluster=check_peers),
    Check("certificates", cluster=check_certificates),
    Check("workloads", cluster=check_workloads),
)
"""Every check, in the order the summary table shows them: adding one is its function and its row here."""
CHECKS = tuple(c.name for c in REGISTERED)


# -- summing up -----------------------------------------------------------------------------


def worst(findings: Iterable[Finding]) -> str | None:
    ranks = [SEVERITIES.index(f.severity) for f in findings]
    return SEVERITIES[min(ranks)] if ranks else None


def table(want: Desired, findings: Sequence[Finding]) -> dict[str, dict[str, str]]:
    """cluster -> check -> the worst severity found ("-" when the check did not run)."""
    out: dict[str, dict[str, str]] = {}
    for c in want.clusters:
        row = {}
        for check in CHECKS:
            w = worst(f for f in findings if f.cluster == c.name and f.check == check)
            row[check] = w or "-"
        out[c.name] = row
    return out


def exit_code(findings: Iterable[Finding]) -> int:
    """0 when everything matches, 1 when anything differs, is pending or needs action."""
    return 1 if any(f.severity in FAILING for f in findings) else 0
