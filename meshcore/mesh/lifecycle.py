"""Changes to a running mesh that must never happen by accident.

A cluster's Cilium identity (``cluster.name``, ``cluster.id``) is baked into every
security identity, CiliumEndpoint and peer's view of it; changing it on a cluster with
workloads needs every workload restarted (Cilium docs), and the peers must drop the old
identity. The program compares the stack's config with what the stack last deployed (its
own ``clusters`` output) and refuses an identity change unless the cluster is named in
``mesh:allowIdentityChange``.

- same name, another ``id``: an id change;
- a new name on a context or mesh address that a now-absent cluster used: a rename;
- same name, another mesh address (vip mode): TKE does not move the VIP of an existing
  Service's CLB, so peers would dial an address nobody answers; refused the same way;
- another ``maxConnectedClusters``: never on running clusters (Cilium), always refused;
- a cluster absent from the config: a removal, which is allowed (its release and its peer
  entries go, the other clusters keep everything else).

The same outputs carry each cluster's chart record, ``cilium: {version, firstInstalled}``: what
the stack last deployed and the minor the cluster was first installed with. A new chart version
goes only one minor at a time, from the latest patch (``meshcore.chart.versions.upgrade_problem``),
refused before any release is sent; ``firstInstalled`` is the cluster's ``upgradeCompatibility``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from meshcore import keypaths
from meshcore.chart import versions
from meshcore.chart.effects import effect, restart_command
from meshcore.config.clusters import NS, ClusterSettings
from meshcore.config.model import Settings
from meshcore.errors import ConfigIssue
from meshcore.mesh import stackoutputs


class MemberIdentity(Protocol):
    """What the identity rules read of one cluster (``ClusterSettings``; the plan diff's planned cluster)."""

    @property
    def name(self) -> str: ...
    @property
    def id(self) -> int: ...
    @property
    def context(self) -> str | None: ...
    @property
    def key(self) -> str:
        """The config key messages name, ``mesh:clusters[i]``."""
        ...


class MeshIdentity(Protocol):
    """What the identity rules read of a mesh (``Settings``; the plan diff's planned mesh)."""

    @property
    def clusters(self) -> Sequence[MemberIdentity]: ...
    @property
    def allow_identity_change(self) -> Collection[str]: ...
    @property
    def max_connected_clusters(self) -> int | None: ...


@dataclass(frozen=True)
class IdentityChange:
    key: str
    """The config key of the change, e.g. ``mesh:clusters[1].id``."""
    cluster: str
    description: str
    allowed: bool
    consequence: str = ("this changes the Cilium identity of a running cluster (every workload must restart, "
                        "peers drop the old identity)")
    allowable: bool = True
    """False for changes no override can make safe."""
    previous: str | None = None
    """For a rename: the name the cluster was deployed with."""

    @property
    def renames_or_renumbers(self) -> bool:
        """A new ``cluster.name`` or ``cluster.id`` (not a mesh address or maxConnectedClusters)."""
        return self.key.endswith((".name", ".id"))

    def follow_up(self, context: str | None) -> str:
        """What to do after an allowed change: for a new name or id, exactly what to restart, in order."""
        if not self.renames_or_renumbers:
            return "every workload of the cluster must be restarted after this update"
        cilium = effect(("cluster", "id")).next_restart
        hubble = ("; Hubble's server certificate names the cluster and the chart keeps it across upgrades: renew it "
                  "(README, Lifecycle, Certificates: the hubble group)") if self.key.endswith(".name") else ""
        return (f"after this update run `{restart_command(cilium, self.cluster, context)}` (they read cluster-name and "
                "cluster-id from cilium-config only when they start; nothing restarts them), then restart every "
                f"workload of the cluster (its pods keep the old identity until they restart){hubble}")

    @property
    def in_entry(self) -> bool:
        """True when the key is in a ``mesh:clusters`` entry (not ``mesh:maxConnectedClusters``)."""
        return self.key.startswith(f"{NS}:clusters[")

    @property
    def where(self) -> str:
        """The key as a message shows it, with the cluster's name: ``mesh:clusters[1].id (cls-b)``."""
        return keypaths.named(self.key, self.cluster if self.in_entry else None)

    def issue(self) -> ConfigIssue:
        fix = (f"Revert it, or add {self.cluster} to mesh:allowIdentityChange for this update (see README, Lifecycle)"
               if self.allowable else "Revert it: a running mesh keeps this value for its lifetime")
        return ConfigIssue(self.key, f"{self.description}: {self.consequence}. {fix}",
                           self.cluster if self.in_entry else None)


def identity_changes(previous: Mapping[str, Any] | None, settings: MeshIdentity,
                     mesh_address: Mapping[str, str | None],
                     previous_max_connected: Any = None) -> list[IdentityChange]:
    """Identity changes between the last deployed outputs (``clusters``,
    ``maxConnectedClusters``) and ``settings``.

    ``mesh_address`` maps each configured cluster to its ``host:port`` when known from
    config (vip mode), else None.
    """
    out: list[IdentityChange] = []
    if (isinstance(previous_max_connected, (int, float)) and settings.max_connected_clusters is not None
            and int(previous_max_connected) != settings.max_connected_clusters):
        out.append(IdentityChange(
            f"{NS}:maxConnectedClusters", "*",
            f"the mesh was deployed with maxConnectedClusters {int(previous_max_connected)}, now "
            f"{settings.max_connected_clusters}",
            allowed=False, allowable=False,
            consequence="Cilium cannot change it on running clusters, and every cluster of a mesh must use the same "
                        "value"))
    if not isinstance(previous, Mapping):
        return out
    records = stackoutputs.read_clusters(previous)
    current = {c.name for c in settings.clusters}
    gone = {n: r for n, r in records.items() if n not in current}
    for c in settings.clusters:
        allowed = c.name in settings.allow_identity_change
        before = records.get(c.name)
        if before is not None:
            if before.id is not None and float(before.id) != float(c.id):
                out.append(IdentityChange(f"{c.key}.id", c.name,
                                          f"cluster {c.name} was deployed with id {int(float(before.id))}, now {c.id}",
                                          allowed))
            old_address, new_address = before.mesh_address, mesh_address.get(c.name)
            if old_address is not None and new_address and old_address != new_address:
                out.append(IdentityChange(
                    f"{c.key}.apiserver.vip", c.name,
                    f"cluster {c.name} was deployed at mesh address {old_address}, now {new_address}", allowed,
                    consequence="TKE does not move the VIP of an existing Service's CLB, so peers would dial an "
                                "address nobody answers until the Service is recreated"))
            continue
        for old_name, old in sorted(gone.items(), key=lambda kv: kv[0]):
            same_context = c.context is not None and old.context == c.context
            same_address = mesh_address.get(c.name) is not None and old.mesh_address == mesh_address[c.name]
            if same_context or same_address:
                what = f"context {c.context}" if same_context else f"mesh address {mesh_address[c.name]}"
                out.append(IdentityChange(f"{c.key}.name", c.name,
                                          f"cluster {old_name} ({what}) is now named {c.name}", allowed,
                                          previous=old_name))
                break
    return out


def renames(changes: list[IdentityChange]) -> dict[str, str]:
    """New name -> deployed name of every rename that goes through (allowed). The program registers the
    renamed cluster with an alias of its deployed name, so that its resources (the Helm release among them)
    are updated in place instead of created anew (a second ``helm install cilium``) and deleted."""
    return {c.cluster: c.previous for c in changes if c.previous and c.allowed and c.allowable}


@dataclass(frozen=True)
class _Record:
    """What the stack's last update recorded of one cluster."""

    deployed: bool
    version: str | None
    """Its chart version (None: deployed before the program recorded it, a 1.18 patch)."""
    first: str | None
    unreadable: str | None = None
    """A recorded version this program cannot read (a newer program's, or an edited state)."""
    adopted: bool = False
    """Not recorded yet: what the cluster ran when adopted (``mesh:clusters[i].adopted``)."""


def _deployed(previous: Mapping[str, Any] | None, c: ClusterSettings, renamed: Mapping[str, str]) -> _Record:
    """What the stack last recorded of one cluster (by its deployed name when this update renames it); for a
    cluster adopted running (``adopted``) that the stack has not recorded yet, what it ran then."""
    name = c.name
    before = stackoutputs.read_cluster(name, previous.get(renamed.get(name, name))) \
        if isinstance(previous, Mapping) else None
    if before is None:
        if c.adopted is not None:
            return _Record(True, c.adopted.version, c.adopted.first_installed, adopted=True)
        return _Record(False, None, None)
    record = before.cilium or {}
    version, first = record.get("version"), record.get("firstInstalled")
    if version is not None and not (isinstance(version, str) and versions.is_supported(version)):
        return _Record(True, None, None, unreadable=str(version))
    return _Record(True, version, first if isinstance(first, str) else None)


def version_key(c: ClusterSettings) -> str:
    """The config key that sets cluster ``c``'s chart version."""
    return f"{c.key}.cilium.version" if c.cilium is not None else f"{NS}:cilium.version"


def _version_issue(c: ClusterSettings, message: str) -> ConfigIssue:
    """A problem with cluster ``c``'s chart version, on the key that sets it (naming ``c`` when it is its own)."""
    return ConfigIssue(version_key(c), message, c.name if c.cilium is not None else None)


@dataclass(frozen=True)
class Refusal:
    """A chart version change ``pulumi up`` refuses (``update_refusals``)."""

    cluster: str
    problem: str
    """Why, with the path to take (``meshcore.chart.versions``)."""
    skew: bool = False
    """True: no step is refused on its own, but the update as a whole spans two minors."""


def update_refusals(deployed: Mapping[str, str | None], targets: Mapping[str, str]) -> list[Refusal]:
    """The one update rule: each running cluster's step from what it runs (``deployed``: None for a cluster deployed
    before the program recorded its chart, a 1.18 patch) to its ``targets`` version
    (``meshcore.chart.versions.upgrade_problem``), in ``targets``' order; when each step is allowed on its own, the
    update as a whole must not span more than one minor between what runs now and what it installs
    (``meshcore.chart.versions.update_skew_problem``). Clusters absent from ``deployed`` are new."""
    out = [Refusal(name, problem) for name, target in targets.items() if name in deployed
           for problem in [versions.upgrade_problem(deployed[name], target)] if problem is not None]
    if out:
        return out
    skew = versions.update_skew_problem({n: v for n, v in deployed.items() if v is not None}, targets)
    return [] if skew is None else [Refusal(skew[0], skew[1], skew=True)]


def version_refusals(previous: Mapping[str, Any] | None, settings: Settings,
                     renamed: Mapping[str, str] | None = None) -> list[ConfigIssue]:
    """Chart version changes of running clusters that ``update_refusals`` refuses, each on the key that sets the
    cluster's version and naming the path to take, and recorded versions this program cannot read. ``previous`` is
    the stack's last ``clusters`` output."""
    unreadable: dict[str, str] = {}
    deployed: dict[str, str | None] = {}
    adopted: set[str] = set()
    for c in settings.clusters:
        record = _deployed(previous, c, renamed or {})
        if record.adopted:
            adopted.add(c.name)
        if record.unreadable is not None:
            unreadable[c.name] = record.unreadable
        elif record.deployed:
            deployed[c.name] = record.version
    refusals = {r.cluster: r for r in update_refusals(deployed, {c.name: settings.version_of(c)
                                                                 for c in settings.clusters})}
    out = []
    for c in settings.clusters:
        if c.name in unreadable:
            out.append(_version_issue(c, (
                f"the stack's last update recorded chart {unreadable[c.name]!r} for cluster {c.name} "
                f"(output clusters.{c.name}.cilium.version), which this program cannot read: it renders "
                f"{versions.ORDER[0]}.x to {versions.ORDER[-1]}.x. Run the program version that deployed it")))
        elif c.name in refusals and not refusals[c.name].skew:
            version = deployed[c.name]
            source = f"{c.key}.adopted: what it ran when adopted" if c.name in adopted else "this stack's last update"
            runs = (f"runs {version} ({source})" if version
                    else f"was deployed before this stack recorded chart versions (a {versions.ORDER[0]} patch)")
            out.append(_version_issue(c, f"cluster {c.name} {runs}; {refusals[c.name].problem}"))
    if out:
        return out
    return [_version_issue(settings.cluster(r.cluster), r.problem) for r in refusals.values() if r.skew]


def cilium_records(previous: Mapping[str, Any] | None, settings: Settings,
                   renamed: Mapping[str, str] | None = None) -> dict[str, dict[str, str]]:
    """Cluster name -> the chart record this update leaves in its ``clusters`` output: ``version`` (what it
    installs now; the program records its release's own chart version instead, once the release is updated) and
    ``firstInstalled`` (the minor of its first install: kept from the record; a cluster deployed before the record
    existed ran 1.18; a new cluster's own minor)."""
    out = {}
    for c in settings.clusters:
        record = _deployed(previous, c, renamed or {})
        target = settings.version_of(c)
        first = record.first
        if first is None:
            first = versions.ORDER[0] if record.deployed else versions.minor_of(target)
        out[c.name] = {"version": target, "firstInstalled": first}
    return out


def unused_allowances(changes: list[IdentityChange], settings: MeshIdentity) -> list[str]:
    """Names in mesh:allowIdentityChange with no identity change: the override should go."""
    changed = {c.cluster for c in changes}
    return sorted(n for n in settings.allow_identity_change if n not in changed)


__all__ = ["IdentityChange", "identity_changes", "renames", "unused_allowances", "NS",
           "version_refusals", "update_refusals", "Refusal", "cilium_records", "version_key", "MeshIdentity",
           "MemberIdentity"]
