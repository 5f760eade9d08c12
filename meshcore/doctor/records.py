"""The mesh doctor's records: its vocabulary, the desired state (``desired``) and the observation.

Pure: no Pulumi, no Kubernetes client, no clock. ``desired`` computes each cluster's desired
state from the validated ``Settings`` with the program's own ``meshcore.mesh.release.release_inputs`` and
``meshcore.chart.values.cluster_values`` (the very values a release receives; what only the cloud knows is
``UNKNOWN``); ``meshcore.doctor.checks.examine`` compares it with what ``tools/doctor.py`` read from the
clusters (an ``Observation`` each).

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
  {desired, ready, available}}``;
- ``mesh_status``: what the cluster's kvstoremesh reports, where the doctor can reach it (a local mesh's control
  plane: one cluster's entry of ``python -m tools.localmesh mesh-status --json``): ``{error, reason, remotes:
  {peer: {connected, ready, synced, status, failures, lastError, reason}}}``; None: not read.

``CertFacts``: ``{sha256, subject, issuer, not_after (ISO 8601, UTC), ski, aki, ips, dns}``, or
``{error}`` for text that is not a certificate.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from meshcore.chart import certs, versions
from meshcore.chart.effects import CLUSTERMESH_SECRET, KVSTOREMESH_SECRET, SERVICE
from meshcore.chart.values import (
    ANNOTATIONS,
    EXISTING_LB_ANNOTATION,
    EXTENSIVE_PARAMETERS_ANNOTATION,
    INTERNAL_SUBNET_ANNOTATION,
    cluster_values,
    peer_entry,
)
from meshcore.config.clusters import DEFAULT_APISERVER_PORT
from meshcore.config.model import Settings
from meshcore.mesh import stackoutputs
from meshcore.mesh.release import mesh_non_masquerade_cidrs, release_inputs

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


PEER_SECRETS = (KVSTOREMESH_SECRET, CLUSTERMESH_SECRET)
SERVER_CERT = certs.CLUSTERMESH_SECRETS[0]
MESH_TLS_SECRETS = certs.LEAF_SECRETS
"""The clustermesh-apiserver's and Hubble's TLS Secrets (``meshcore.chart.certs``); the chart keeps two of
Hubble's from the first install (365 days), and neither a CA rotation nor a rename re-issues them."""
WORKLOADS = ("DaemonSet/cilium", "Deployment/clustermesh-apiserver")
"""The agents and the clustermesh-apiserver."""
EXPIRY_WARNING_DAYS = 30
DEFAULT_MESH_DOMAIN = "mesh.cilium.io"
"""The chart's ``clustermesh.config.domain`` (a program-owned mapping that never sets it)."""
OWNED_ANNOTATIONS = (INTERNAL_SUBNET_ANNOTATION, EXTENSIVE_PARAMETERS_ANNOTATION, EXISTING_LB_ANNOTATION)


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
    """The release's namespace (``meshcore.chart.effects.NAMESPACE``)."""
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
            annotations={k: v for k, v in annotations.items() if k in OWNED_ANNOTATIONS},
            mesh_address=addresses[c.name],
            server_ips=tuple(str(ip) for ip in extra_ips if ip is not UNKNOWN),
            peer_secrets=expected_peer_secrets(values, namespace),
        ))
    return Desired(tuple(out), namespace, release, ca_fingerprint, ca_source)


# -- what was observed -------------------------------------------------------------------------


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
    mesh_status: Mapping[str, Any] | None = None

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


def deployed_release(releases: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The revision Helm serves: the highest one with status ``deployed``."""
    live = [r for r in releases if r.get("status") == "deployed"]
    return max(live, key=lambda r: int(r.get("revision") or 0)) if live else None
