"""The Helm values the program owns: one table, from which everything else is derived.

Each row is one value path of a cluster's Cilium release that the program sets itself: why, what
it is set to (``value``), when it is set (every cluster, with ``mesh:masquerade.mode:
ipMasqAgent``, or on clusters whose apiserver address the program reads), which ``mesh:*`` key
to change instead, how the plan diff classes a change of it, and which chart versions own it.
From it come: the values builder (``meshcore.values.cluster_values`` sets exactly these rows),
the validation that refuses them in user values (``meshcore.config_checks``), the plan diff's
loud classes (``tools.diff``) and the README's list (``markdown_table``, checked by a test).
What a change of it does to running pods is not restated here: ``effect`` reads
``meshcore.effects``, the one table of value path -> rolls now / next restart / live.

A row's ``charts`` are the chart minors that own it (``meshcore.versions``); a key that moved or
exists only in some minors is one row per place, each with its own ``charts``, and what a row
sets may depend on the cluster's chart version (``Inputs.chart_version``: the version table).
No Pulumi import.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from meshcore import effects, versions
from meshcore.keypaths import Path, dotted

INTERNAL_SUBNET_ANNOTATION = "service.kubernetes.io/qcloud-loadbalancer-internal-subnetid"
EXISTING_LB_ANNOTATION = "service.kubernetes.io/tke-existed-lbid"
EXTENSIVE_PARAMETERS_ANNOTATION = "service.kubernetes.io/service.extensiveParameters"
ANNOTATIONS: Path = ("clustermesh", "apiserver", "service", "annotations")
CHART_MINORS: tuple[str, ...] = versions.ORDER
"""The chart minors this program renders values for."""


@dataclass(frozen=True)
class Inputs:
    """What one cluster's release values are made of (``meshcore.release.release_inputs`` builds it from the
    settings and the wiring). The CA, the cluster's own address, its peers' entries and the apiserver address may
    be opaque leaves (Pulumi Outputs in the program)."""

    name: str
    cluster_id: Any
    max_connected_clusters: int
    hubble_relay: bool
    ca_cert_b64: Any
    ca_key_b64: Any
    subnet_id: str
    own_address: Any
    vip: str | None
    """Ask TKE for this VIP (vip mode), or None."""
    existing_lb_id: Any
    """Attach the Service to the CLB the program created (createClb mode), or None."""
    peers: Sequence[Any]
    non_masquerade_cidrs: Sequence[str] | None
    """None unless the masquerade mode is ipMasqAgent."""
    ca_bundle: Any | None = None
    """PEM text of every trusted CA, during a CA rotation only."""
    k8s_service_host: Any | None = None
    k8s_service_port: Any | None = None
    chart_version: str = versions.DEFAULT
    """The cluster's chart version (its row of ``meshcore.versions``)."""
    policy_default_local_cluster: bool | None = None
    """``mesh:policyDefaultLocalCluster``, or None when the stack does not state it."""
    upgrade_compatibility: Any | None = None
    """The minor the cluster was first installed with (``1.18``), or None when unknown."""
    base: Mapping[str, Any] = field(default_factory=dict)
    """``mesh:cilium.values``: the user values of every cluster."""
    overrides: Mapping[str, Any] = field(default_factory=dict)
    """``mesh:clusters[i].values``, merged over ``base`` (never program-owned keys)."""

    @property
    def chart(self) -> versions.Minor:
        return versions.row(self.chart_version)


SKIP: Any = object()
"""What a row's ``value`` returns when it is not set for this cluster."""

When = Literal["always", "ipMasqAgent", "reads-service-host"]
Change = Literal["", "identity", "ca"]


@dataclass(frozen=True)
class OwnedKey:
    path: Path
    reason: str
    """Why the program owns it (said when a user value sets it)."""
    value: Callable[[Inputs], Any]
    """What the program sets it to (``SKIP``: not set for this cluster)."""
    when: When = "always"
    """``always``; ``ipMasqAgent``: with mesh:masquerade.mode ipMasqAgent; ``reads-service-host``: on created
    clusters and adopted ones with prepareVpcCni (elsewhere the key is the user's)."""
    instead: str = ""
    """What to change instead (the end of the refusal message)."""
    change: Change = ""
    """How the plan diff classes a change of it: ``identity`` or ``ca`` (said loudly), else by its effect."""
    change_note: str = ""
    """What the plan diff says of such a change."""
    charts: tuple[str, ...] = CHART_MINORS

    @property
    def effect(self) -> str:
        """What a change of it does on a running cluster, in ``meshcore.effects``' words: ``rolls`` (pods roll
        now), ``next-restart`` (applies at the next restart) or ``none`` (live data)."""
        return effects.effect(self.path).kind


_CA = "the shared mesh CA"
_BY_TLS = {method: [m for m, r in versions.MINORS.items() if r.tls_method == method] for method in ("helm", "cronJob")}
_TLS = (f"the TLS method of the chart version (meshcore.versions): helm on {', '.join(_BY_TLS['helm'])} (cronJob "
        f"deadlocks with Helm's wait there), cronJob from {_BY_TLS['cronJob'][0]} (no longer a Helm hook; renews by "
        "itself)")
_UNSCHEDULED = [m for m in _BY_TLS["cronJob"] if versions.MINORS[m].clustermesh_schedule is None]
_WITH_AUTH_MODE = tuple(m for m, r in versions.MINORS.items() if r.auth_mode is not None)
_POLICY_FLIP = next(m for m, r in versions.MINORS.items() if r.chart_policy_default_local_cluster)
_SERVER_IPS: dict[Path, tuple[str, ...]] = {}
for _m, _r in versions.MINORS.items():
    _SERVER_IPS[_r.server_ips] = (*_SERVER_IPS.get(_r.server_ips, ()), _m)
_CLB = "the internal CLB of the clustermesh-apiserver"
_MASQ = "mesh:masquerade controls it"
_CLB_INSTEAD = "mesh:clusters[i].apiserver controls the CLB"
_READ = ("the program reads it from each created cluster (a cluster with create:); set it per cluster in "
         "mesh:clusters[i].values for the other clusters")
_IDENTITY = "changes the cluster's mesh identity (every workload must restart)"


def _const(v: Any) -> Callable[[Inputs], Any]:
    return lambda _: v


def _masq(v: Callable[[Inputs], Any]) -> Callable[[Inputs], Any]:
    return lambda i: SKIP if i.non_masquerade_cidrs is None else v(i)


def _unless_none(v: Callable[[Inputs], Any]) -> Callable[[Inputs], Any]:
    return lambda i: SKIP if v(i) is None else v(i)


def vip_request(vip: str) -> str:
    """The TKE annotation value that asks the CLB controller for a given VIP."""
    return json.dumps({"Vip": vip}, separators=(",", ":"))


OWNED: tuple[OwnedKey, ...] = (
    OwnedKey(("cluster", "name"), "the Cilium cluster name is the mesh identity", lambda i: i.name,
             instead="set mesh:clusters[i].name", change="identity", change_note=_IDENTITY),
    OwnedKey(("cluster", "id"), "the Cilium cluster id is the mesh identity", lambda i: i.cluster_id,
             instead="set mesh:clusters[i].id", change="identity", change_note=_IDENTITY),
    OwnedKey(("tls", "ca", "cert"), _CA, lambda i: i.ca_cert_b64, change="ca",
             change_note="changes the mesh CA: certificates are re-issued; see README, Lifecycle"),
    OwnedKey(("tls", "ca", "key"), _CA, lambda i: i.ca_key_b64, change="ca",
             change_note="changes the mesh CA: certificates are re-issued; see README, Lifecycle"),
    OwnedKey(("rollOutCiliumPods",), "it must stay false so peer and CIDR changes never restart agents",
             _const(False)),
    OwnedKey(("hubble", "tls", "auto", "method"), _TLS, lambda i: i.chart.tls_method),
    OwnedKey(("hubble", "relay", "enabled"), "Hubble Relay", lambda i: i.hubble_relay, instead="set mesh:hubbleRelay"),
    OwnedKey(("clustermesh", "useAPIServer"), "the mesh needs the clustermesh-apiserver", _const(True)),
    OwnedKey(("clustermesh", "maxConnectedClusters"), "it must be equal in every cluster",
             lambda i: i.max_connected_clusters, instead="set mesh:maxConnectedClusters", change="identity",
             change_note=_IDENTITY),
    OwnedKey(("clustermesh", "config"), "the peer list of every cluster",
             lambda i: {"enabled": True, "clusters": versions.peers_value(i.peers, i.chart_version)},
             instead="peers come from mesh:topology"),
    OwnedKey(("clustermesh", "policyDefaultLocalCluster"), f"its chart default flipped in {_POLICY_FLIP} (false -> "
             "true), which changes what every cross-cluster network policy allows: the stack states it",
             _unless_none(lambda i: i.policy_default_local_cluster), instead="set mesh:policyDefaultLocalCluster"),
    OwnedKey(("clustermesh", "apiserver", "kvstoremesh", "enabled"), "KVStoreMesh keeps peer changes away from agents",
             _const(True)),
    OwnedKey(("clustermesh", "apiserver", "service", "type"), "the apiserver is exposed on an internal CLB",
             _const("LoadBalancer")),
    OwnedKey(("clustermesh", "apiserver", "tls", "auto", "enabled"), "certificates come from the shared CA",
             _const(True)),
    OwnedKey(("clustermesh", "apiserver", "tls", "auto", "method"), _TLS, lambda i: i.chart.tls_method),
    OwnedKey(("clustermesh", "apiserver", "tls", "auto", "schedule"), "the certgen CronJob renews the "
             "clustermesh-apiserver leaves" + (f" (the {', '.join(_UNSCHEDULED)} chart sets no schedule: its certgen "
                                               "Job issues them once and nothing renews them)" if _UNSCHEDULED else ""),
             lambda i: versions.CERTGEN_SCHEDULE if i.chart.tls_method == "cronJob" else SKIP,
             charts=tuple(_BY_TLS["cronJob"])),
    OwnedKey(("clustermesh", "apiserver", "tls", "authMode"), "migration: accepts the legacy shared user of 1.18 peers "
             "and the per-cluster users of 1.19+ peers, so a mesh mixed N-1/N connects both ways (pinned, so a "
             "chart default cannot change it silently)", lambda i: i.chart.auth_mode or SKIP, charts=_WITH_AUTH_MODE),
    *(OwnedKey(path, "the server certificate must cover the CLB VIP" + (f" (moved in {charts[0]})" if n else ""),
               lambda i: [i.own_address], charts=charts) for n, (path, charts) in enumerate(_SERVER_IPS.items())),
    OwnedKey((*ANNOTATIONS, INTERNAL_SUBNET_ANNOTATION), _CLB, lambda i: i.subnet_id, instead=_CLB_INSTEAD),
    OwnedKey((*ANNOTATIONS, EXTENSIVE_PARAMETERS_ANNOTATION), _CLB,
             lambda i: SKIP if i.vip is None else vip_request(i.vip), instead=_CLB_INSTEAD),
    OwnedKey((*ANNOTATIONS, EXISTING_LB_ANNOTATION), _CLB, _unless_none(lambda i: i.existing_lb_id),
             instead=_CLB_INSTEAD),
    OwnedKey(("enableIPv4Masquerade",), "masquerading", _masq(_const(True)), when="ipMasqAgent", instead=_MASQ),
    OwnedKey(("bpf", "masquerade"), "masquerading", _masq(_const(True)), when="ipMasqAgent", instead=_MASQ),
    OwnedKey(("ipMasqAgent", "enabled"), "masquerading", _masq(_const(True)), when="ipMasqAgent", instead=_MASQ),
    OwnedKey(("ipMasqAgent", "config", "nonMasqueradeCIDRs"), "every cluster's pod CIDRs are non-masquerade",
             _masq(lambda i: list(i.non_masquerade_cidrs or ())), when="ipMasqAgent", instead=_MASQ),
    # TKE's masquerading guide sets it: traffic to link-local addresses (TKE's metadata, DNS and the 169.254.x.x
    # apiserver endpoints) leaves with the node's address. Without it, a config file without the key keeps
    # link-local unmasqueraded (Cilium's default).
    OwnedKey(("ipMasqAgent", "config", "masqLinkLocal"), "TKE's link-local services (169.254.0.0/16) are reached with "
             "the node's address, as TKE's masquerading guide sets it", _masq(_const(True)), when="ipMasqAgent",
             instead=_MASQ),
    OwnedKey(("tls", "caBundle"), "the trust bundle of a CA rotation (mesh:ca)",
             lambda i: SKIP if i.ca_bundle is None else {"enabled": True, "content": i.ca_bundle}, change="ca",
             change_note="changes the CA trust bundle: agents and clustermesh-apiserver mount it, so their pods roll "
                         "in every cluster; see README, Lifecycle"),
    OwnedKey(("k8sServiceHost",), "a created cluster's apiserver address is read from its default/kubernetes "
             "Endpoints", _unless_none(lambda i: i.k8s_service_host), when="reads-service-host", instead=_READ),
    OwnedKey(("upgradeCompatibility",), "the minor the cluster was first installed with, recorded by the program "
             "(Cilium's upgrade guide: keeps cilium-config's critical defaults across upgrades)",
             _unless_none(lambda i: i.upgrade_compatibility),
             instead="the program records it in the stack's outputs (clusters.<name>.cilium.firstInstalled)"),
    OwnedKey(("k8sServicePort",), "a created cluster's apiserver port is TKE's 60002",
             _unless_none(lambda i: i.k8s_service_port), when="reads-service-host", instead=_READ),
)

SIGNING_CA_PATHS: tuple[Path, ...] = tuple(k.path for k in OWNED if k.change == "ca" and k.path[:2] == ("tls", "ca"))
"""The owned values that come from the signing CA (its certificate and key)."""

_BY_PATH = {k.path: k for k in OWNED}
assert len(_BY_PATH) == len(OWNED), "a path is listed twice in OWNED"


def owned_keys(masquerade_mode: str, *, reads_service_host: bool = False,
               chart_minor: str = CHART_MINORS[0]) -> tuple[OwnedKey, ...]:
    """The rows the program sets for a cluster (so user values may not)."""
    when = {"always"} | ({"ipMasqAgent"} if masquerade_mode == "ipMasqAgent" else set()) \
        | ({"reads-service-host"} if reads_service_host else set())
    return tuple(k for k in OWNED if k.when in when and chart_minor in k.charts)


def row(path: Path) -> OwnedKey:
    return _BY_PATH[path]


def owner_of(path: Path) -> OwnedKey | None:
    """The row that owns ``path`` or a mapping above it (a leaf path of a values diff)."""
    for n in range(len(path), 0, -1):
        k = _BY_PATH.get(tuple(path[:n]))
        if k is not None:
            return k
    return None


def owned_values(i: Inputs) -> list[tuple[Path, Any]]:
    """(path, value) of every row set for this cluster, in the table's order."""
    out = []
    minor = versions.minor_of(i.chart_version)
    for k in OWNED:
        if minor not in k.charts:
            continue
        v = k.value(i)
        if v is not SKIP:
            out.append((k.path, v))
    return out


_WHEN = {"always": "every cluster", "ipMasqAgent": "with mesh:masquerade.mode: ipMasqAgent",
         "reads-service-host": "created clusters, and adopted ones with prepareVpcCni"}


def markdown_table() -> str:
    """The README's list of owned keys (between the ``owned-keys`` markers), one row per key."""
    lines = ["| value path | why the program owns it | set on | change it through | a change on a running "
             "cluster | chart versions |", "| --- | --- | --- | --- | --- | --- |"]
    for k in OWNED:
        instead = k.instead.removeprefix("set ") if k.instead else "—"
        lines.append(f"| `{dotted(k.path)}` | {k.reason} | {_WHEN[k.when]} | {instead} | {k.effect} | "
                     f"{', '.join(f'{c}.x' for c in k.charts)} |")
    return "\n".join(lines) + "\n"
