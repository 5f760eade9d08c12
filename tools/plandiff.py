"""The comparison of two offline plans (``python -m tools.plan diff``, reported by ``tools.diff``): the plans
read back (``load``), and what changes between them (``compare``: a ``Diff``).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshcore import yamlio
from meshcore.chart import chartkeys, effects, owned, versions
from meshcore.chart.effects import Effect
from meshcore.keypaths import dotted as _path
from meshcore.mesh import chartsource as charts
from meshcore.mesh import stackoutputs
from meshcore.mesh.lifecycle import IdentityChange, identity_changes, renames
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
    (``meshcore.chart.effects``): "rolls", "next-restart", "none"."""
    why: str
    impact: Effect
    """The row of ``meshcore.chart.effects.EFFECTS`` for the path: which pods roll now, which must restart."""


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
    kind of its ``meshcore.chart.effects`` row ("rolls", "next-restart", "none") with the row's reason."""
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
        if a.get(path, MISSING) != b.get(path, MISSING):
            effect, why = classify(path)
            out.append(ValueChange(path, a.get(path, MISSING), b.get(path, MISSING), effect, why,
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
                 if value is not MISSING]
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
    """What one cluster's value changes do to its pods (``meshcore.chart.effects``)."""

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


def some_paths(paths: list[str], limit: int = 5) -> str:
    return ", ".join(paths[:limit]) + (" …" if len(paths) > limit else "")


class Missing:
    def __repr__(self) -> str:
        return "(unset)"


MISSING = Missing()


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
            by_path[path] = ValueChange(path, f"{brief(old_leaves.get(path, MISSING))} from {a or 'the stack'}",
                                        f"{brief(new_leaves.get(path, MISSING))} from {b or 'the stack'}", "ca", why,
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
    """What the program's identity guard (``meshcore.mesh.lifecycle.identity_changes``) decides when
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
    """A cluster of the new plan, as the identity rules read it (``meshcore.mesh.lifecycle.MemberIdentity``)."""

    name: str
    id: int
    context: str | None

    @property
    def key(self) -> str:
        """The entry's key as the diff can name it (the plan does not record the entry's index)."""
        return self.name


@dataclass(frozen=True)
class _PlannedMesh:
    """The new plan's mesh, as the identity rules read it (``meshcore.mesh.lifecycle.MeshIdentity``)."""

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
            # pulumi up keeps the deployed record's first minor (meshcore.mesh.lifecycle.cilium_records); an offline
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
            gained = ", ".join(short_urn(u).split(" ")[-1] for u in sorted(now_on - before_on)) or "(nothing new)"
            lost = ", ".join(short_urn(u).split(" ")[-1] for u in sorted(before_on - now_on)) or "(nothing)"
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


def short_urn(urn: str) -> str:
    parts = urn.split("::")
    return f"{parts[-2].split('$')[-1]} {parts[-1]}" if len(parts) >= 4 else urn


def brief(v: Any, limit: int = 80) -> str:
    if v is MISSING:
        return "(unset)"
    text = json.dumps(v, sort_keys=True, ensure_ascii=False) if not isinstance(v, str) else v
    return text if len(text) <= limit else text[: limit - 1] + "…"
