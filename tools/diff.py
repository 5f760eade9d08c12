"""What changes between two offline plans, most important first, for a pull request.

    python -m tools.plan diff OLD_DIR NEW_DIR [--format text|markdown] [--allow-different-stacks]

Reads two plan directories (``graph.json`` and ``values/*.yaml``) and reports:
clusters added, removed or renamed (an allowed rename: the same cluster, its resources paired with
the deployed ones as the program's alias makes the engine pair them); per cluster, the Helm value
paths that change (old -> new, secrets stay ``[secret]``) and what each does to the running pods or
to the cluster's mesh identity (loudly); peer connections added or removed; resources added,
removed, replaced or updated. Exit 0: no change; 1: changes; 2: error.

The CA a release's ``tls.ca.*`` come from is read from the graph, not only from the values:
in an offline plan the CA certificate is ``[unknown]`` in both plans, so switching the
signing CA (rotation step 2) shows as the release depending on another CA's key.

A chart version change of a cluster (the release's ``version``: ``mesh:cilium.version`` or the cluster's own
``mesh:clusters[i].cilium.version``, one wave of an upgrade) is said loudly: it rolls that cluster's agents,
operator and clustermesh-apiserver (new images); the diff lists the clusters of this wave and those that keep
their version, with the mesh's versions after the update, and judges the update with the program's own rule
(``meshcore.lifecycle.update_refusals``: each step one minor at a time, from the latest patch; then one update
never spans two minors between what runs and what it installs).

Identity changes that ``pulumi up`` refuses (``meshcore/lifecycle.py``: another id, a rename,
another VIP of a running cluster, another ``maxConnectedClusters``) are judged with the
program's own rule, taking the old plan's outputs as what is deployed and the new plan's
``allowIdentityChange``. Plans of two different stacks are refused (their URNs differ, so
every resource would show as deleted and created) unless ``--allow-different-stacks``.

What a value change does to the running pods comes from one table, ``meshcore/effects.py``
(from the charts, ``../shared/docs/cilium-mesh.md`` sections 5 and 7): a pod template value
**rolls pods now** (naming the workload); a ``cilium-config`` value **takes effect at the next
restart** (``rollOutCiliumPods: false``: nothing restarts now), with the ``kubectl rollout
restart`` that applies it; Secret data, the ip-masq-agent file and Service objects change
live. A path the table does not name is reported as rolling the agents: a false alarm is
cheaper than a silent restart. A path the chart does not know is never said to restart anything: one its key
index (``meshcore.chart.index_keys``, of the release's chart version in the plan that sets it) lacks, and that
plan does not record as a key of the chart copy its check read (graph.json ``chartOnlyKeys``: keys only the
chart's templates read), is **unknown to the chart**: Helm ignores it, nothing restarts (a typo, e.g. in a plan
made where the check could not run). When the new plan's Helm values were not checked (graph.json
``helmValuesNotChecked``), the diff says so first among the value lines.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshcore import chart as charts
from meshcore import chartkeys, effects, lifecycle, owned, stackoutputs, versions, yamlio
from meshcore.config import NS
from meshcore.effects import Effect
from meshcore.keypaths import dotted as _path
from meshcore.lifecycle import IdentityChange, Refusal, identity_changes, renames
from tools.render import CHART_ONLY_KEY, CLUSTER_TYPE, NOT_CHECKED_KEY, RELEASE_TYPE, UNKNOWN, connections

Path_ = tuple[str, ...]

CA_KEY_TYPE = "tls:index/privateKey:PrivateKey"
"""The generated CA's key: a release depends on the key of the CA that signs its certificates."""

# Inputs whose change makes the provider replace the resource (ForceNew / replaceOnChanges).
REPLACING_INPUTS: dict[str, set[str]] = {
    RELEASE_TYPE: {"name", "namespace"},
    "tls:index/privateKey:PrivateKey": {"algorithm", "rsaBits", "ecdsaCurve"},
    "tls:index/selfSignedCert:SelfSignedCert": {"privateKeyPem", "subject", "validityPeriodHours", "isCaCertificate",
                                                "allowedUses", "setSubjectKeyId", "dnsNames", "ipAddresses"},
    "tencentcloud:Clb/instance:Instance": {"networkType", "vpcId", "subnetId", "vip", "masterZoneId", "zoneId"},
}


STACK_REFERENCE_TYPE = "pulumi:pulumi:StackReference"


class PlanError(Exception):
    pass


@dataclass
class Plan:
    graph: dict[str, Any]
    values: dict[str, dict[str, Any]]

    @functools.cached_property
    def resources(self) -> dict[str, dict[str, Any]]:
        return {r["urn"]: r for r in self.graph["resources"]}

    @functools.cached_property
    def releases(self) -> dict[str, dict[str, Any]]:
        """Cluster name -> its Cilium release."""
        out = {}
        for r in self.graph["resources"]:
            values = r["inputs"].get("values") if r["type"] == RELEASE_TYPE else None
            cluster = values.get("cluster") if isinstance(values, dict) else None
            if isinstance(cluster, dict) and isinstance(cluster.get("name"), str):
                out[cluster["name"]] = r
        return out

    @property
    def not_checked(self) -> list[str]:
        """The program's warnings that this plan's Helm value paths were not checked."""
        return [n for n in self.graph.get(NOT_CHECKED_KEY, []) if isinstance(n, str)]

    def chart_knows(self, cluster: str, path: Path_) -> bool | None:
        """Whether the chart of ``cluster``'s release in this plan has the value ``path``: True when its key index
        has it, or the plan records it as a key of the chart copy its check read; False when the index lacks it;
        None when there is no index of the release's chart version (cannot tell)."""
        release = self.releases.get(cluster)
        version = release["inputs"].get("version") if release is not None else None
        tree = _index(version, charts.INDEX_DIR) if isinstance(version, str) else None
        if tree is None:
            return None
        if tree.knows(path):
            return True
        recorded = self.graph.get(CHART_ONLY_KEY, {})
        known = recorded.get(cluster, []) if isinstance(recorded, dict) else []
        return any(isinstance(k, list) and tuple(map(str, k)) == path[:len(k)] for k in known)

    def chart_version(self, cluster: str) -> str:
        release = self.releases.get(cluster)
        return str(release["inputs"].get("version")) if release is not None else "?"

    @property
    def stack_id(self) -> str:
        return f"{self.graph.get('project')}/{self.graph.get('stack')}"

    def connections(self) -> set[tuple[str, str]]:
        return connections(self.graph)

    def signing_ca(self, cluster: str) -> str | None:
        """The CA the cluster's ``tls.ca.cert``/``tls.ca.key`` come from, by the name of its
        component (``mesh-ca``, ``mesh-ca-2``): the CA whose private key the release depends
        on (``tls.ca.key`` is that key; the trust bundle holds certificates only). None when
        no CA resource feeds the release (a CA the stack brings: its certificate is a value,
        which the values diff compares)."""
        release = self.releases.get(cluster)
        if release is None:
            return None
        res = self.resources
        names = sorted({_component_name(res[d], res) for d in release["dependencies"]
                        if d in res and res[d]["type"] == CA_KEY_TYPE})
        return ", ".join(names) or None


@functools.cache
def _index(version: str, directory: Path) -> chartkeys.ChartKeys | None:
    """The key tree of the cilium ``version`` chart from the key indexes in ``directory`` (None: none)."""
    found = charts.index_keys(version, directory) if versions.is_supported(version) else None
    return found[0] if found is not None else None


def _component_name(resource: dict[str, Any], resources: dict[str, dict[str, Any]]) -> str:
    parent = resource.get("parent") or ""
    return parent.rsplit("::", 1)[-1] if parent in resources else resource["name"]


def load(directory: str) -> Plan:
    d = Path(directory)
    try:
        graph = json.loads((d / "graph.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlanError(f"{d}: no graph.json; make one with python -m tools.plan STACK_FILE --out {d}") from None
    except ValueError as err:
        raise PlanError(f"{d}/graph.json is not JSON: {err}") from None
    if isinstance(graph.get("resources"), list):
        # A plan of a program that still read its own outputs through a StackReference lists it: a read, which
        # an update neither creates nor deletes (the program now reads them without one; components/program.py).
        graph["resources"] = [r for r in graph["resources"] if r.get("type") != STACK_REFERENCE_TYPE]
    values = {}
    for f in sorted((d / "values").glob("*.yaml")):
        values[f.stem] = yamlio.safe_load(f.read_text(encoding="utf-8")) or {}
    return Plan(graph, values)


@dataclass
class ValueChange:
    path: Path_
    old: Any
    new: Any
    effect: str
    """"identity", "ca", "unknown" (not a key of the chart: no effect), or what it does to pods
    (``meshcore.effects``): "rolls", "next-restart", "none"."""
    why: str
    impact: Effect
    """The row of ``meshcore.effects.EFFECTS`` for the path: which pods roll now, which must restart."""


@dataclass
class Diff:
    clusters_added: list[str] = field(default_factory=list)
    identities: dict[str, str] = field(default_factory=dict)
    """Cluster name -> "id N, region, address" (from the plan that has it)."""
    clusters_removed: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)
    """New name -> deployed name of each rename mesh:allowIdentityChange lets through: the same cluster, updated."""
    resources_renamed: dict[str, str] = field(default_factory=dict)
    """New URN -> the old URN it takes over (the program aliases a renamed cluster's resources)."""
    values: dict[str, list[ValueChange]] = field(default_factory=dict)
    contexts: dict[str, str] = field(default_factory=dict)
    """Cluster name -> its kubeconfig context (the new plan's ``clusters`` output; "" when reached without one)."""
    stacks: tuple[str, str] | None = None
    """(old, new) "project/stack" when the plans are of different stacks (--allow-different-stacks)."""
    identity: list[IdentityChange] = field(default_factory=list)
    """Identity changes pulumi up refuses (or allows through mesh:allowIdentityChange), old plan as deployed."""
    connections_added: list[tuple[str, str]] = field(default_factory=list)
    connections_removed: list[tuple[str, str]] = field(default_factory=list)
    resources_added: list[str] = field(default_factory=list)
    resources_removed: list[str] = field(default_factory=list)
    resources_replaced: list[tuple[str, list[str]]] = field(default_factory=list)
    resources_updated: list[tuple[str, list[str]]] = field(default_factory=list)
    charts: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    """Cluster name -> (its chart version in the old plan, or None for a new cluster; in the new plan)."""
    not_checked: list[str] = field(default_factory=list)
    """The new plan's warnings that its Helm value paths were not checked (said, but no change by itself)."""

    @property
    def wave(self) -> dict[str, tuple[str, str]]:
        """The clusters whose chart version changes in this update (this wave of an upgrade): (old, new)."""
        return {n: (a, b) for n, (a, b) in self.charts.items() if a is not None and a != b}

    @property
    def changed(self) -> bool:
        return any([self.stacks, self.identity, self.clusters_added, self.clusters_removed, self.renamed, self.values,
                    self.connections_added,
                    self.connections_removed, self.resources_added, self.resources_removed,
                    self.resources_replaced, self.resources_updated])


def _leaves(node: Any, prefix: Path_ = ()) -> dict[Path_, Any]:
    """Leaf paths of a values document. Lists are leaves, except the peer list, which is
    keyed by peer name so that a joining cluster shows as one entry, not a shifted list; its
    1.18 list and 1.19+ map forms give the same entries (the form follows the chart version)."""
    if prefix == ("clustermesh", "config", "clusters") and isinstance(node, list):
        return {(*prefix, str(e.get("name"))): e for e in node if isinstance(e, dict)}
    if prefix == ("clustermesh", "config", "clusters") and isinstance(node, dict):
        return {(*prefix, str(k)): {"name": k, **v} if isinstance(v, dict) else v for k, v in node.items()}
    if isinstance(node, dict) and node:
        out: dict[Path_, Any] = {}
        for k, v in node.items():
            out.update(_leaves(v, (*prefix, str(k))))
        return out
    return {prefix: node}


def classify(path: Path_) -> tuple[str, str]:
    """(effect, why) of a change of ``path``: "identity" or "ca" (said loudly whatever restarts), else the
    kind of its ``meshcore.effects`` row ("rolls", "next-restart", "none") with the row's reason."""
    impact = effects.effect(path)
    row = owned.owner_of(path)  # the loud classes come from the table of owned keys
    if row is not None and row.change == "identity":
        return "identity", f"{row.change_note}; {impact.reason}"
    if row is not None and row.change == "ca":
        return "ca", row.change_note
    return impact.kind, impact.reason


def value_changes(old: dict[str, Any], new: dict[str, Any]) -> list[ValueChange]:
    a, b = _leaves(old), _leaves(new)
    out = []
    for path in sorted(a.keys() | b.keys()):
        if a.get(path, _MISSING) != b.get(path, _MISSING):
            effect, why = classify(path)
            out.append(ValueChange(path, a.get(path, _MISSING), b.get(path, _MISSING), effect, why,
                                   effects.effect(path)))
    return out


UNKNOWN_TO_CHART = "unknown"
"""The effect of a change of a path the chart does not know: none (Helm ignores it)."""


def unknown_to_chart(changes: list[ValueChange], old: Plan, new: Plan, name: str, old_name: str) -> list[ValueChange]:
    """``changes`` of one cluster with every path that no chart setting it knows marked ``unknown`` (no effect, no
    restart): the path is unknown to the chart of each plan that sets it (``Plan.chart_knows``). A path one of them
    cannot tell about (no key index) keeps its effect."""
    for c in changes:
        if c.effect in ("identity", "ca"):
            continue
        sides = [(plan, cluster) for plan, cluster, value in ((old, old_name, c.old), (new, name, c.new))
                 if value is not _MISSING]
        if not sides or any(plan.chart_knows(cluster, c.path) is not False for plan, cluster in sides):
            continue
        charts_ = " or ".join(dict.fromkeys(f"cilium {plan.chart_version(cluster)}" for plan, cluster in sides))
        plan, cluster = sides[-1]
        tree = _index(plan.chart_version(cluster), charts.INDEX_DIR)
        problems = tree.problems(_nested(c.path)) if tree is not None else []
        hint = (" (did you mean " + " or ".join(f"'{x}'" for x in problems[0].suggestions) + "?)"
                if problems and problems[0].suggestions else "")
        c.effect = UNKNOWN_TO_CHART
        c.why = (f"not a key of the {charts_} chart{hint}: the chart ignores it, nothing restarts (its key index; "
                 "the program refuses it wherever it checks the values)")
        c.impact = Effect("(unknown to the chart)", (), (), c.why)
    return changes


def _nested(path: Path_) -> dict[str, Any]:
    out: Any = True
    for part in reversed(path):
        out = {part: out}
    nested: dict[str, Any] = out
    return nested


@dataclass
class Restarts:
    """What one cluster's value changes do to its pods (``meshcore.effects``)."""

    rolls: dict[str, list[str]]
    """Workload -> the value paths that roll its pods in this update."""
    waits: dict[str, list[str]]
    """Workload -> the value paths it reads only when it starts, and that no roll of this update applies."""
    applied: list[str]
    """Paths read at start by workloads that roll anyway in this update: the roll applies them."""


def restarts(changes: list[ValueChange]) -> Restarts:
    """Rolls and pending restarts of one cluster's changes. Identity changes are left out: their
    follow-up (restart the Cilium pods, then every workload) is said with the identity change."""
    rolls: dict[str, list[str]] = {}
    pending: dict[str, list[str]] = {}
    for c in changes:
        if c.effect in ("identity", UNKNOWN_TO_CHART):
            continue
        for w in c.impact.rolls:
            rolls.setdefault(w, []).append(_path(c.path))
        for w in c.impact.next_restart:
            pending.setdefault(w, []).append(_path(c.path))
    waits = {w: paths for w, paths in pending.items() if w not in rolls}
    applied = sorted({p for w, paths in pending.items() if w in rolls for p in paths})
    return Restarts(rolls, waits, applied)


def _paths(paths: list[str], limit: int = 5) -> str:
    return ", ".join(paths[:limit]) + (" …" if len(paths) > limit else "")


class _Missing:
    def __repr__(self) -> str:
        return "(unset)"


_MISSING = _Missing()


def ca_source_changes(name: str, old: Plan, new: Plan, changes: list[ValueChange],
                      old_name: str | None = None) -> list[ValueChange]:
    """``changes`` of one cluster, with the switch of its signing CA when the graph shows one.

    The values alone miss it in an offline plan: the CA certificate is ``[unknown]`` (and
    the key ``[secret]``) in both plans, whichever CA they come from."""
    old_name = old_name or name
    a, b = old.signing_ca(old_name), new.signing_ca(name)
    if a == b:
        return changes
    given = "the CA the stack brings (mesh:ca.certificate)"
    why = (f"changes the mesh CA: certificates are now issued by {b or given} (were by {a or given}); every "
           "release re-issues its certificates from it; see README, Lifecycle (Rotating the CA)")
    old_leaves, new_leaves = _leaves(old.values[old_name]), _leaves(new.values[name])
    by_path = {c.path: c for c in changes}
    for path in sorted(tuple(map(str, p)) for p in owned.SIGNING_CA_PATHS):
        if path in by_path:
            by_path[path].effect, by_path[path].why = "ca", why
        else:
            by_path[path] = ValueChange(path, f"{_fmt(old_leaves.get(path, _MISSING))} from {a or 'the stack'}",
                                        f"{_fmt(new_leaves.get(path, _MISSING))} from {b or 'the stack'}", "ca", why,
                                        effects.effect(path))
    return [by_path[p] for p in sorted(by_path)]


def _restacked(plan: Plan, like: Plan) -> Plan:
    """``plan`` with the URNs it would have in ``like``'s stack: resources of two stacks are then
    matched by type and name. The URN prefix holds the stack and project names (and so did the name of the
    StackReference to its own stack that older plans list, ``<org>/<project>/<stack>``)."""
    def quoted(text: str) -> str:
        return json.dumps(text)[1:-1]

    (p_old, s_old), (p_new, s_new) = ((g.get("project"), g.get("stack")) for g in (plan.graph, like.graph))
    text = json.dumps(plan.graph)
    text = text.replace(quoted(f"urn:pulumi:{s_old}::{p_old}::"), quoted(f"urn:pulumi:{s_new}::{p_new}::"))
    text = text.replace(quoted(f"/{p_old}/{s_old}") + '"', quoted(f"/{p_new}/{s_new}") + '"')
    return Plan(json.loads(text), plan.values)


def identity_verdicts(old: Plan, new: Plan) -> list[IdentityChange]:
    """What the program's identity guard (``meshcore.lifecycle.identity_changes``) decides when
    the old plan's outputs are what this stack last deployed: the changes it refuses, and those
    ``allowIdentityChange`` of the new plan lets through. The offline plan itself cannot see
    them (it plans a stack with no deployed outputs)."""
    outputs = new.graph.get("outputs", {})
    previous_outputs = old.graph.get("outputs", {})
    previous = previous_outputs.get("clusters")
    clusters_out = outputs.get("clusters")
    if not isinstance(clusters_out, dict):
        return []
    allowed = frozenset(n for n in new.graph.get("allowIdentityChange", []) if isinstance(n, str))
    clusters, addresses = [], {}
    for name, o in sorted(stackoutputs.read_clusters(clusters_out).items(), key=lambda kv: kv[0]):
        if type(o.id) is not int:
            continue  # not what the program exports: nothing to judge
        clusters.append(_Planned(name, o.id, o.context or None))
        address = o.mesh_address
        addresses[name] = address if address is not None and UNKNOWN not in address else None
    max_connected = outputs.get(stackoutputs.MAX_CONNECTED_CLUSTERS)
    mesh = _PlannedMesh(tuple(clusters), allowed, max_connected if type(max_connected) is int else None)
    previous_max = previous_outputs.get(stackoutputs.MAX_CONNECTED_CLUSTERS)
    if mesh.max_connected_clusters is None or type(previous_max) is not int:
        previous_max = None
    return identity_changes(previous if isinstance(previous, dict) else None, mesh, addresses,
                            previous_max_connected=previous_max)


@dataclass(frozen=True)
class _Planned:
    """A cluster of the new plan, as the identity rules read it (``meshcore.lifecycle.MemberIdentity``)."""

    name: str
    id: int
    context: str | None

    @property
    def key(self) -> str:
        """The entry's key as the diff can name it (the plan does not record the entry's index)."""
        return self.name


@dataclass(frozen=True)
class _PlannedMesh:
    """The new plan's mesh, as the identity rules read it (``meshcore.lifecycle.MeshIdentity``)."""

    clusters: tuple[_Planned, ...]
    allow_identity_change: frozenset[str]
    max_connected_clusters: int | None


def rename_aliases(old: Plan, new: Plan, renamed: dict[str, str]) -> dict[str, str]:
    """New URN -> the old URN it takes over, for the resources of renamed clusters, as the engine matches them
    (pulumi pkg/resource/deploy/step_generator.go, ``generateAliases``): the program aliases a renamed cluster's
    component to its deployed name (``components.program.cluster_aliases``), and every descendant whose name
    starts with its parent's name inherits the alias with the deployed name in its place. Every resource of a
    cluster is named ``<cluster>-…``, so a descendant's old name is its name with the deployed name first."""
    out: dict[str, str] = {}
    res = new.resources
    for urn, r in res.items():
        top = r
        while top.get("parent") in res:
            top = res[top["parent"]]
        before = renamed.get(top["name"]) if top["type"] == CLUSTER_TYPE else None
        if before is None or not r["name"].startswith(top["name"]):
            continue
        candidate = f"{urn.rsplit('::', 1)[0]}::{before}{r['name'][len(top['name']):]}"
        if candidate in old.resources and candidate not in res:
            out[urn] = candidate
    return out


def compare(old: Plan, new: Plan, *, allow_different_stacks: bool = False) -> Diff:
    d = Diff(not_checked=new.not_checked)
    if old.stack_id != new.stack_id:
        if not allow_different_stacks:
            raise PlanError(f"the old plan is of stack {old.stack_id} and the new one of {new.stack_id}: every "
                            "resource would show as deleted and created (URNs hold the project and stack names); diff "
                            "two plans of the same stack, or pass --allow-different-stacks to compare them anyway")
        d.stacks = (old.stack_id, new.stack_id)
        old = _restacked(old, new)
    else:
        d.identity = identity_verdicts(old, new)
    d.contexts = {n: o.context or "" for n, o in
                  stackoutputs.read_clusters(new.graph.get("outputs", {}).get(stackoutputs.CLUSTERS)).items()}
    d.renamed = {n: o for n, o in renames(d.identity).items() if n in new.values and o in old.values}
    was = {n: d.renamed.get(n, n) for n in new.values}
    d.clusters_added = sorted(n for n in new.values.keys() - old.values.keys() if n not in d.renamed)
    d.clusters_removed = sorted(old.values.keys() - new.values.keys() - set(d.renamed.values()))
    for plan, names in ((new, d.clusters_added), (old, d.clusters_removed), (new, sorted(d.renamed))):
        outputs = plan.graph.get("outputs", {}).get("clusters", {})
        for n in names:
            o = outputs.get(n, {}) if isinstance(outputs, dict) else {}
            cid = o.get("id", plan.values[n].get("cluster", {}).get("id"))
            d.identities[n] = f"id {cid}, {o.get('region', '?')}, mesh address {o.get('meshAddress', '?')}"
    for name in sorted(n for n in new.values if was[n] in old.values):
        changes = ca_source_changes(name, old, new, value_changes(old.values[was[name]], new.values[name]),
                                    old_name=was[name])
        changes = unknown_to_chart(changes, old, new, name, was[name])
        if "upgradeCompatibility" in old.values[was[name]]:
            # pulumi up keeps the deployed record's first minor (meshcore.lifecycle.cilium_records); an offline
            # plan cannot read it and shows the planned minor instead. An old plan without the value was made
            # before the program recorded it: pulumi up then sets it for the first time, a real change.
            changes = [c for c in changes if c.path != ("upgradeCompatibility",)]
        if changes:
            d.values[name] = changes
    for name, release in new.releases.items():
        before = old.releases.get(was.get(name, name))
        d.charts[name] = (str(before["inputs"].get("version")) if before is not None else None,
                          str(release["inputs"].get("version")))
    now = {o: n for n, o in d.renamed.items()}
    old_connections = {_pair(now.get(a, a), now.get(b, b)) for a, b in old.connections()}
    d.connections_added = sorted(new.connections() - old_connections)
    d.connections_removed = sorted(old_connections - new.connections())
    _compare_resources(d, old, new)
    return d


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


def _compare_resources(d: Diff, old: Plan, new: Plan) -> None:
    """Resources created, deleted, replaced, updated or renamed (an allowed cluster rename), into ``d``."""
    ro, rn = old.resources, new.resources
    d.resources_renamed = rename_aliases(old, new, d.renamed)
    taken = {o: n for n, o in d.resources_renamed.items()}
    d.resources_added = sorted(rn.keys() - ro.keys() - d.resources_renamed.keys())
    d.resources_removed = sorted(ro.keys() - rn.keys() - taken.keys())
    for urn in sorted((ro.keys() & rn.keys()) | d.resources_renamed.keys()):
        a, b = ro[d.resources_renamed.get(urn, urn)], rn[urn]
        ignored = set(b.get("ignoreChanges", ()))  # the engine keeps their old value
        keys = sorted(k for k in a["inputs"].keys() | b["inputs"].keys()
                      if a["inputs"].get(k) != b["inputs"].get(k) and k not in ignored)
        if taken.get(a["provider"], a["provider"]) != b["provider"]:
            keys.append("(provider)")
        old_dependencies = sorted(taken.get(u, u) for u in a["dependencies"])
        if not keys and old_dependencies != b["dependencies"] and f'"{UNKNOWN}"' in json.dumps(b["inputs"]):
            # Equal inputs, but an [unknown] one may now come from another resource (e.g. another CA).
            now_on, before_on = set(b["dependencies"]), set(a["dependencies"])
            gained = ", ".join(_short(u).split(" ")[-1] for u in sorted(now_on - before_on)) or "(nothing new)"
            lost = ", ".join(_short(u).split(" ")[-1] for u in sorted(before_on - now_on)) or "(nothing)"
            keys.append(f"[unknown] inputs now depend on {gained}, no longer on {lost}")
        if urn in d.resources_renamed:
            keys.append(f"renamed from {d.resources_renamed[urn].rsplit('::', 1)[-1]}")
        if not keys:
            continue
        replacing = [k for k in keys if k in REPLACING_INPUTS.get(b["type"], set())]
        if replacing:
            d.resources_replaced.append((urn, replacing))
        else:
            d.resources_updated.append((urn, keys))


def _short(urn: str) -> str:
    parts = urn.split("::")
    return f"{parts[-2].split('$')[-1]} {parts[-1]}" if len(parts) >= 4 else urn


def _fmt(v: Any, limit: int = 80) -> str:
    if v is _MISSING:
        return "(unset)"
    text = json.dumps(v, sort_keys=True, ensure_ascii=False) if not isinstance(v, str) else v
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(d: Diff, fmt: str = "text") -> str:
    md = fmt == "markdown"
    lines: list[str] = []

    def head(text: str) -> None:
        lines.append("")
        lines.append(f"### {text}" if md else f"== {text}")

    def item(text: str) -> None:
        lines.append(f"- {text}")

    if not d.changed:
        return "No changes: both plans register the same resources with the same inputs.\n" + "".join(
            f"- {'**' + w + '**' if md else w}\n" for w in _not_checked(d))
    warnings = _attention(d)
    if md:
        lines.append("## Mesh plan diff")
    if warnings:
        head("⚠ Attention" if md else "ATTENTION")
        for w in warnings:
            item(f"**{w}**" if md else w)
    if d.clusters_added or d.clusters_removed or d.renamed:
        head("Clusters")
        for n, o in sorted(d.renamed.items()):
            item(f"renamed: {o} -> {n} ({d.identities[n]}): the same cluster, updated in place (its Helm release "
                 "`cilium` is upgraded with the new cluster.name; no resource of it is created or deleted)")
        for c in d.clusters_added:
            item(f"added: {c} ({d.identities[c]})")
        for c in d.clusters_removed:
            item(f"removed: {c} ({d.identities[c]}): its release is deleted and every peer drops it")
    if d.wave:
        head("Chart versions")
        item("this wave: " + ", ".join(f"{n} {a} -> {b}" for n, (a, b) in sorted(d.wave.items())))
        kept = sorted(n for n in d.charts if n not in d.wave)
        item("not in this wave: " + (", ".join(f"{n} {d.charts[n][1]}" for n in kept) or "none"))
        item(f"the mesh after this update: {_mesh_after(d)}")
    if d.values or d.clusters_added:
        head("Helm values per cluster")
        for name, changes in d.values.items():
            r = restarts(changes)
            unknown = sum(c.effect == UNKNOWN_TO_CHART for c in changes)
            verdict = ", ".join(
                ([f"rolls {', '.join(r.rolls)} now"] if r.rolls else [])
                + ([f"waits for a restart of {', '.join(r.waits)}"] if r.waits else [])
                + (["changes the mesh identity"] if any(c.effect == "identity" for c in changes) else [])
            ) or "no restart"
            if unknown:
                verdict += f", {unknown} unknown to the chart (no effect)"
            lines.append(f"- {'**' + name + '**' if md else name}: {len(changes)} value(s), {verdict}")
            for vc in changes:
                change = f"{_fmt(vc.old)} -> {_fmt(vc.new)}"
                path = f"`{_path(vc.path)}`" if md else _path(vc.path)
                lines.append(f"  - {path}: {change}  ({vc.why})")
        for name in d.clusters_added:
            lines.append(f"- {'**' + name + '**' if md else name}: new cluster, complete values in values/{name}.yaml")
    if d.connections_added or d.connections_removed:
        head("Peer connections")
        for a, b in d.connections_added:
            item(f"added: {a} <-> {b}")
        for a, b in d.connections_removed:
            item(f"removed: {a} <-> {b}")
    if d.resources_added or d.resources_removed or d.resources_replaced or d.resources_updated:
        head("Resources")
        lines += [f"- {line}" for line in _resource_lines(d)]
    return "\n".join(lines).lstrip("\n") + "\n"


def _resource_lines(d: Diff) -> list[str]:
    """What happens to each resource: deleted, replaced, created, updated."""
    return ([f"delete: {_short(u)}" for u in d.resources_removed]
            + [f"replace: {_short(u)} (changes {', '.join(keys)})" for u, keys in d.resources_replaced]
            + [f"create: {_short(u)}" for u in d.resources_added]
            + [f"update: {_short(u)} ({', '.join(keys)})" for u, keys in d.resources_updated])


def _attention(d: Diff) -> list[str]:
    """The diff's loud lines: other stacks, identity verdicts, disruptive and CA changes, restarts, uninstalls."""
    warnings = []
    if d.stacks:
        warnings.append(f"DIFFERENT STACKS: the old plan is of {d.stacks[0]}, the new one of {d.stacks[1]}; resources "
                        "are matched by type and name, which is not what pulumi up of either stack does: this compares "
                        "two stacks, it is not an update")
    for c in d.identity:
        where = f"{c.cluster}: {c.key.removeprefix(c.cluster).lstrip('.') or 'identity'}" if c.cluster != "*" else c.key
        if c.allowed and c.allowable:
            warnings.append(f"ALLOWED BY {NS}:allowIdentityChange: {where}: {c.description}: {c.consequence}; "
                            f"{c.follow_up(d.contexts.get(c.cluster) or None)}")
        else:
            warnings.append(f"REFUSED BY pulumi up: {where}: {c.issue().message}")
    warnings += _not_checked(d)
    for name, changes in d.values.items():
        for vc in changes:
            if vc.effect == UNKNOWN_TO_CHART:
                warnings.append(f"UNKNOWN TO THE CHART in {name}: {_path(vc.path)} ({vc.why})")
            if vc.effect == "identity":
                warnings.append(f"DISRUPTIVE: {name}: {_path(vc.path)} {_fmt(vc.old)} -> {_fmt(vc.new)} ({vc.why})")
            elif vc.effect == "ca":
                warnings.append(f"CA CHANGE: {name}: {_path(vc.path)} ({vc.why})")
        r = restarts(changes)
        if r.rolls:
            rolled = ", ".join(f"{w} ({_paths(paths)})" for w, paths in r.rolls.items())
            also = f"; the roll also applies {_paths(r.applied)} (read at start)" if r.applied else ""
            warnings.append(f"ROLLS PODS NOW in {name}: {rolled}{also}")
        if r.waits:
            paths = _paths(sorted({p for ps in r.waits.values() for p in ps}))
            command = effects.restart_command(list(r.waits), name, d.contexts.get(name) or None)
            warnings.append(f"TAKES EFFECT AT THE NEXT RESTART in {name}: {paths} (cilium-config, read only when "
                            f"{', '.join(r.waits)} start; with rollOutCiliumPods false this update restarts none of "
                            f"them): run `{command}` to apply it")
    refusals = update_refusals(d)
    steps = {r.cluster: r.problem for r in refusals if not r.skew}
    for name, (a, b) in d.wave.items():
        if name in steps:
            warnings.append(f"REFUSED BY pulumi up: {name}: chart {steps[name]}")
            continue
        form = ""
        if versions.is_supported(a) and versions.is_supported(b) and \
                versions.row(a).peer_form != versions.row(b).peer_form:
            form = f"; its peer list changes to the {versions.row(b).peer_form} form of {versions.minor_of(b)}"
        warnings.append(f"CHART UPGRADE in {name}: cilium {a} -> {b}: rolls {effects.AGENT} (one node at a time), "
                        f"{effects.OPERATOR} and {effects.APISERVER} (new images){form}; run `cilium clustermesh "
                        "status --wait` in every cluster before the next wave")
    # As pulumi up: the whole update is judged once each step is allowed on its own.
    warnings += [f"REFUSED BY pulumi up: {r.cluster}: chart {r.problem}" for r in refusals if r.skew]
    for name in d.clusters_removed:  # (a rename allowed by mesh:allowIdentityChange is no removal: see Clusters)
        # After what stops or frames the whole update (other stacks, refusals), before the rest.
        warnings.insert(len(d.identity) + bool(d.stacks),
                        f"UNINSTALLS CILIUM from {name}: its release is deleted (helm uninstall) while the cluster "
                        "may still run workloads; retire or drain the cluster first")
    return warnings


def _not_checked(d: Diff) -> list[str]:
    """The new plan's warnings that its Helm value paths were not checked (a typo there would have no effect)."""
    return [f"HELM VALUES NOT CHECKED in the new plan: {note.removeprefix(charts.NOT_CHECKED + ': ')}"
            for note in d.not_checked]


def update_refusals(d: Diff) -> list[Refusal]:
    """What ``pulumi up``'s update rule (``meshcore.lifecycle.update_refusals``) refuses of this update, the old
    plan's chart versions taken as what runs; versions this program does not render are not judged."""
    pairs = {n: (a, b) for n, (a, b) in d.charts.items()
             if versions.is_supported(b) and (a is None or versions.is_supported(a))}
    return lifecycle.update_refusals({n: a for n, (a, _) in pairs.items() if a is not None},
                                     {n: b for n, (_, b) in pairs.items()})


def _mesh_after(d: Diff) -> str:
    """The mesh's chart versions after this update and how far apart they are, by the program's own rule
    (``meshcore.versions.skew_problem``: at most one minor apart)."""
    after = {n: b for n, (_, b) in d.charts.items()}
    unsupported = ", ".join(sorted({v for v in after.values() if not versions.is_supported(v)}))
    if unsupported:
        return f"{', '.join(sorted(set(after.values())))} (not a chart version of this program: {unsupported})"
    shown = ", ".join(sorted(set(after.values()), key=versions.parse))
    if len({versions.minor_of(v) for v in after.values()}) == 1:
        return f"{shown} (one minor)"
    return f"{shown} ({'mixed N-1/N' if versions.skew_problem(after) is None else 'MORE THAN ONE MINOR APART'})"


def main(argv: list[str]) -> int:
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m tools.plan diff", description=__doc__.split("\n\n")[0])
    parser.add_argument("old_dir")
    parser.add_argument("new_dir")
    parser.add_argument("--format", choices=("text", "markdown"), default="text")
    parser.add_argument("--allow-different-stacks", action="store_true",
                        help="compare plans of two different stacks (or projects), matching resources by type and name")
    args = parser.parse_args(argv)
    try:
        d = compare(load(args.old_dir), load(args.new_dir), allow_different_stacks=args.allow_different_stacks)
    except PlanError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    sys.stdout.write(render(d, args.format))
    return 1 if d.changed else 0
