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
goes only one minor at a time, from the latest patch (``meshcore.versions.upgrade_problem``),
refused before any release is sent; ``firstInstalled`` is the cluster's ``upgradeCompatibility``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meshcore import keypaths, versions
from meshcore.config import NS, ApiserverSettings, ClusterSettings, Settings
from meshcore.effects import effect, restart_command
from meshcore.errors import ConfigIssue


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


def identity_changes(previous: Mapping[str, Any] | None, settings: Settings,
                     mesh_address: Mapping[str, str | None],
                     previous_max_connected: Any = None) -> list[IdentityChange]:
    """Identity changes between the last deployed outputs (``clusters``,
    ``maxConnectedClusters``) and ``settings``.

    ``mesh_address`` maps each configured cluster to its ``host:port`` when known from
    config (vip mode), else None.
    """
    out: list[IdentityChange] = []
    if (isinstance(previous_max_connected, (int, float))
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
    current = {c.name for c in settings.clusters}
    gone = {n: v for n, v in previous.items() if n not in current and isinstance(v, Mapping)}
    for c in settings.clusters:
        allowed = c.name in settings.allow_identity_change
        before = previous.get(c.name)
        if isinstance(before, Mapping):
            old_id = before.get("id")
            if old_id is not None and float(old_id) != float(c.id):
                out.append(IdentityChange(f"{c.key}.id", c.name,
                                          f"cluster {c.name} was deployed with id {int(float(old_id))}, now {c.id}",
                                          allowed))
            old_address, new_address = before.get("meshAddress"), mesh_address.get(c.name)
            if isinstance(old_address, str) and ":" in old_address and new_address and old_address != new_address:
                out.append(IdentityChange(
                    f"{c.key}.apiserver.vip", c.name,
                    f"cluster {c.name} was deployed at mesh address {old_address}, now {new_address}", allowed,
                    consequence="TKE does not move the VIP of an existing Service's CLB, so peers would dial an "
                                "address nobody answers until the Service is recreated"))
            continue
        for old_name, old in sorted(gone.items()):
            same_context = c.context is not None and old.get("context") == c.context
            same_address = mesh_address.get(c.name) is not None and old.get("meshAddress") == mesh_address[c.name]
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


def configured_mesh_address(apiserver: ApiserverSettings) -> str | None:
    """``vip:port`` of a cluster whose VIP the config names (vip mode), else None (a created CLB's VIP is
    known only once the CLB exists)."""
    return f"{apiserver.vip}:{apiserver.port}" if apiserver.vip is not None and not apiserver.create_clb else None


@dataclass(frozen=True)
class _Record:
    """What the stack's last update recorded of one cluster."""

    deployed: bool
    version: str | None
    """Its chart version (None: deployed before the program recorded it, a 1.18 patch)."""
    first: str | None
    unreadable: str | None = None
    """A recorded version this program cannot read (a newer program's, or an edited state)."""


def _deployed(previous: Mapping[str, Any] | None, name: str, renamed: Mapping[str, str]) -> _Record:
    """What the stack last recorded of one cluster (by its deployed name when this update renames it)."""
    before = previous.get(renamed.get(name, name)) if isinstance(previous, Mapping) else None
    if not isinstance(before, Mapping):
        return _Record(False, None, None)
    record = before.get("cilium")
    record = record if isinstance(record, Mapping) else {}
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


def version_refusals(previous: Mapping[str, Any] | None, settings: Settings,
                     renamed: Mapping[str, str] | None = None) -> list[ConfigIssue]:
    """Chart version changes of running clusters that skip a minor, do not start from the latest patch, or go
    back a minor: each names the path to take. ``previous`` is the stack's last ``clusters`` output; a cluster
    deployed before the program recorded its chart ran a patch of the table's oldest minor (the only one it
    accepted). When each step is allowed on its own, the update as a whole must not span more than one minor
    between what runs now and what it installs (``meshcore.versions.update_skew_problem``)."""
    out = []
    deployed: dict[str, str] = {}
    for c in settings.clusters:
        record = _deployed(previous, c.name, renamed or {})
        if not record.deployed:
            continue
        if record.unreadable is not None:
            out.append(_version_issue(c, (
                f"the stack's last update recorded chart {record.unreadable!r} for cluster {c.name} "
                f"(output clusters.{c.name}.cilium.version), which this program cannot read: it renders "
                f"{versions.ORDER[0]}.x to {versions.ORDER[-1]}.x. Run the program version that deployed it")))
            continue
        target = settings.version_of(c)
        problem = versions.upgrade_problem(record.version, target)
        if problem is not None:
            runs = (f"runs {record.version} (this stack's last update)" if record.version
                    else f"was deployed before this stack recorded chart versions (a {versions.ORDER[0]} patch)")
            out.append(_version_issue(c, f"cluster {c.name} {runs}; {problem}"))
        elif record.version is not None:
            deployed[c.name] = record.version
    if out:
        return out
    by_name = {c.name: c for c in settings.clusters}
    skew = versions.update_skew_problem(deployed, {c.name: settings.version_of(c) for c in settings.clusters})
    if skew is not None:
        out.append(_version_issue(by_name[skew[0]], skew[1]))
    return out


def cilium_records(previous: Mapping[str, Any] | None, settings: Settings,
                   renamed: Mapping[str, str] | None = None) -> dict[str, dict[str, str]]:
    """Cluster name -> the chart record this update leaves in its ``clusters`` output: ``version`` (what it
    installs now; the program records its release's own chart version instead, once the release is updated) and
    ``firstInstalled`` (the minor of its first install: kept from the record; a cluster deployed before the record
    existed ran 1.18; a new cluster's own minor)."""
    out = {}
    for c in settings.clusters:
        record = _deployed(previous, c.name, renamed or {})
        target = settings.version_of(c)
        first = record.first
        if first is None:
            first = versions.ORDER[0] if record.deployed else versions.minor_of(target)
        out[c.name] = {"version": target, "firstInstalled": first}
    return out


def unused_allowances(changes: list[IdentityChange], settings: Settings) -> list[str]:
    """Names in mesh:allowIdentityChange with no identity change: the override should go."""
    changed = {c.cluster for c in changes}
    return sorted(n for n in settings.allow_identity_change if n not in changed)


__all__ = ["IdentityChange", "identity_changes", "renames", "configured_mesh_address", "unused_allowances", "NS",
           "version_refusals", "cilium_records", "version_key"]
