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

A chart version change is judged with the program's update rule (``meshcore.mesh.lifecycle.update_refusals``) and
an identity change with its identity rule (``meshcore.mesh.lifecycle``), the old plan's outputs taken as what is
deployed; what a value change does to the pods is ``meshcore/chart/effects.py``, a path the chart does not know is
one its key index (``meshcore.mesh.chartsource.index_keys``) lacks and the plan's ``chartOnlyKeys`` do not hold.
README's "Pull requests: plan diff and CI workflows" says what each line means.

The comparison is ``tools.plandiff``; this module reports it.
"""

from __future__ import annotations

from meshcore.chart import effects, versions
from meshcore.config.clusters import NS
from meshcore.keypaths import dotted as _path
from meshcore.mesh import chartsource as charts
from meshcore.mesh import lifecycle
from meshcore.mesh.lifecycle import Refusal
from tools.plandiff import (
    UNKNOWN_TO_CHART,
    Diff,
    PlanError,
    brief,
    compare,
    load,
    restarts,
    short_urn,
    some_paths,
)


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
                change = f"{brief(vc.old)} -> {brief(vc.new)}"
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
    return ([f"delete: {short_urn(u)}" for u in d.resources_removed]
            + [f"replace: {short_urn(u)} (changes {', '.join(keys)})" for u, keys in d.resources_replaced]
            + [f"create: {short_urn(u)}" for u in d.resources_added]
            + [f"update: {short_urn(u)} ({', '.join(keys)})" for u, keys in d.resources_updated])


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
                warnings.append(f"DISRUPTIVE: {name}: {_path(vc.path)} {brief(vc.old)} -> {brief(vc.new)} "
                                f"({vc.why})")
            elif vc.effect == "ca":
                warnings.append(f"CA CHANGE: {name}: {_path(vc.path)} ({vc.why})")
        r = restarts(changes)
        if r.rolls:
            rolled = ", ".join(f"{w} ({some_paths(paths)})" for w, paths in r.rolls.items())
            also = f"; the roll also applies {some_paths(r.applied)} (read at start)" if r.applied else ""
            warnings.append(f"ROLLS PODS NOW in {name}: {rolled}{also}")
        if r.waits:
            paths = some_paths(sorted({p for ps in r.waits.values() for p in ps}))
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
    """What ``pulumi up``'s update rule (``meshcore.mesh.lifecycle.update_refusals``) refuses of this update, the old
    plan's chart versions taken as what runs; versions this program does not render are not judged."""
    pairs = {n: (a, b) for n, (a, b) in d.charts.items()
             if versions.is_supported(b) and (a is None or versions.is_supported(a))}
    return lifecycle.update_refusals({n: a for n, (a, _) in pairs.items() if a is not None},
                                     {n: b for n, (_, b) in pairs.items()})


def _mesh_after(d: Diff) -> str:
    """The mesh's chart versions after this update and how far apart they are, by the program's own rule
    (``meshcore.chart.versions.skew_problem``: at most one minor apart)."""
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
