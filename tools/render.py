"""Plan artefacts from a recording: graph.json, values/<cluster>.yaml, summary.md.

Secrets are replaced by ``"[secret]"`` wherever the engine would see a secret marker
(a secret leaf stays a leaf: the rest of a values document remains readable), values
that are only known after apply by ``"[unknown]"``. Everything is sorted, so the same
recording gives byte-identical files.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from components import sdk_internals as sdk
from components import tokens
from meshcore import yamlio
from meshcore.chart import certs, versions
from tools.mockengine import Recording

SECRET = "[secret]"
UNKNOWN = "[unknown]"
RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
CLUSTER_TYPE = tokens.CLUSTER
PEERS_TYPE = tokens.MESH_PEERS
LISTED_CONNECTIONS = 60

_SIG = sdk.SIG_KEY
_SECRET_SIG = sdk.SECRET_SIG
_RESOURCE_SIG = sdk.RESOURCE_SIG
_ASSET_SIG = sdk.ASSET_SIG
_UNKNOWN_WIRE = sdk.UNKNOWN


def scrub(value: Any) -> Any:
    """Wire JSON -> plan JSON: secret markers -> "[secret]", unknowns -> "[unknown]"."""
    if isinstance(value, dict):
        sig = value.get(_SIG)
        if sig == _SECRET_SIG:
            return SECRET
        if sig == _RESOURCE_SIG:
            return value.get("urn", UNKNOWN)
        # Plain strings are most leaves (peer names and addresses): no call for them.
        return {k: v if type(v) is str and v != _UNKNOWN_WIRE else scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [v if type(v) is str and v != _UNKNOWN_WIRE else scrub(v) for v in value]
    if isinstance(value, str) and value == _UNKNOWN_WIRE:
        return UNKNOWN
    if isinstance(value, float) and value.is_integer():
        # The wire has doubles only; Helm values such as cluster.id are integers.
        return int(value)
    return value


def checked_release_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    """A Helm Release's inputs (wire or plan form) as the kubernetes provider's ``Check`` returns them.

    Read from pulumi-kubernetes 4.34 (``decodeRelease`` and ``mergeMaps``), and compared with
    the real provider 4.25.0 by the end-to-end suite (its first test diffs a real preview's
    release values with the plan's; the version is pinned, and a test fails when it changes): since 4.8
    ``Check`` decodes the release in every case, unknown inputs included. It merges the ``valueYamlFiles``
    assets in order
    (Helm's merge: mappings key by key, anything else replaced, nulls kept), drops nulls
    from that and from ``values`` unless ``allowNullValues``, merges ``values`` over it, and
    returns that as ``values``, without ``valueYamlFiles``. That is what ``pulumi preview``
    diffs, what CrossGuard policies see and what the state keeps.

    Where this differs from the provider, it does not matter for what the program sends
    (its values files and ``values`` never set the same leaf): the provider's last merge
    does not let an empty value (``false``, ``0``, ``""``) of ``values`` replace a file's
    value; and in a preview it turns unknown leaves into nulls and drops them, where the
    plan keeps them as ``[unknown]`` (secret and unknown markers are leaves here). Inputs of
    another shape (``values`` a secret or unknown as a whole, an asset that is not text) are
    returned as they are. ``inputs`` is not changed; the result may share parts of it.
    """
    files = inputs.get("valueYamlFiles", [])
    values = inputs.get("values", {})
    if not isinstance(files, list) or not _is_mapping(values):
        return inputs
    keep_nulls = bool(inputs.get("allowNullValues"))
    merged: dict[str, Any] = {}
    nulls = False
    for f in files:
        text = f.get("text") if isinstance(f, dict) and f.get(_SIG) == _ASSET_SIG else None
        if not isinstance(text, str):
            return inputs
        _merge_into(merged, json.loads(text) or {})  # the program writes JSON (which is YAML)
        nulls = nulls or "null" in text  # no walk over every peer entry unless a file spells null
    if not keep_nulls:
        merged = _without_nulls(merged) if nulls else merged
        values = _without_nulls(values)
    out = {k: v for k, v in inputs.items() if k != "valueYamlFiles"}
    out["values"] = _merge_into(merged, values)
    return out


def _is_mapping(v: Any) -> bool:
    """A plain mapping: not a secret or resource marker."""
    return isinstance(v, dict) and _SIG not in v


def _without_nulls(node: Any) -> Any:
    if _is_mapping(node):
        return {k: _without_nulls(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [_without_nulls(v) for v in node if v is not None]
    return node


def _merge_into(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's merge into ``base`` (a fresh document): mappings merge, the rest replaces."""
    for k, v in override.items():
        if _is_mapping(v) and _is_mapping(base.get(k)):
            _merge_into(base[k], v)
        else:
            base[k] = v
    return base


def graph(rec: Recording) -> dict[str, Any]:
    resources = [
        {
            "urn": r.urn,
            "type": r.type,
            "name": r.name,
            "parent": r.parent,
            "provider": r.provider,
            "dependencies": r.dependencies,
            "protect": r.protect,
            # The values files hold plain data only: scrubbing before the merge is the same.
            "inputs": checked_release_inputs(scrub(r.inputs)) if r.type == RELEASE_TYPE else scrub(r.inputs),
            # Only when set: the inputs whose changes the engine ignores (the diff does too).
            **({"ignoreChanges": r.ignore_changes} if r.ignore_changes else {}),
        }
        for r in sorted(rec.resources.values(), key=lambda r: r.urn)
    ]
    return {**rec.annotations, "project": rec.project, "stack": rec.stack, "resources": resources,
            "outputs": scrub(rec.outputs)}


def releases(g: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Cluster name -> its Cilium release (the graph's resource)."""
    return {r["inputs"]["values"]["cluster"]["name"]: r for r in g["resources"] if r["type"] == RELEASE_TYPE}


def release_values(g: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Cluster name -> the values its Cilium release receives (plan form)."""
    return {name: r["inputs"]["values"] for name, r in releases(g).items()}


# Strings that YAML (1.1 and 1.2) reads back as the same string when written plain.
_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./-]*$")
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


@functools.lru_cache(maxsize=1 << 16)
def _string(v: str) -> str:
    # Cached: a full mesh writes every peer's name and address into N-1 values files.
    if _PLAIN.fullmatch(v) and v.lower() not in _RESERVED:  # fullmatch: $ alone matches before a final "\n"
        return v
    return yamlio.yaml_json(v)  # a JSON string is a YAML double-quoted scalar (YAML's unprintables escaped)


def _scalar(v: Any) -> str:
    if v is None:
        return "null"
    if v is True or v is False:
        return "true" if v else "false"
    if isinstance(v, float):
        return yamlio.yaml_float(v)
    if isinstance(v, int):
        return json.dumps(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, (dict, list)):  # only empty ones get here
        return yamlio.yaml_json(v)
    raise TypeError(f"cannot write {type(v).__name__} as YAML")


def _flow(v: Any) -> str:
    """A list or mapping inside a list item, in flow style: ``[a, {"k": 1.0e-05}]``."""
    if isinstance(v, list):
        return "[" + ", ".join(_flow(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_scalar(str(k))}: {_flow(x)}" for k, x in v.items()) + "}"
    return _scalar(v)


def _emit(node: Any, pad: str, out: list[str]) -> None:
    if isinstance(node, dict):
        for k in sorted(node):
            v = node[k]
            key = _scalar(str(k))
            if isinstance(v, dict) and v:
                out.append(f"{pad}{key}:")
                _emit(v, pad + "  ", out)
            elif isinstance(v, list) and v:
                out.append(f"{pad}{key}:")
                _emit(v, pad, out)
            else:
                out.append(f"{pad}{key}: {_scalar(v)}")
        return
    for item in node:  # a list: block sequence at the parent's indentation
        if isinstance(item, dict) and item:
            if all(type(k) is str and type(v) in _FLAT_TYPES for k, v in item.items()):
                out.append(_flat_item(pad, tuple(item.items())))
                continue
            start = len(out)
            _emit(item, pad + "  ", out)
            out[start] = f"{pad}- {out[start][len(pad) + 2:]}"
        elif isinstance(item, list) and item:
            out.append(f"{pad}- {_flow(item)}")
        else:
            out.append(f"{pad}- {_scalar(item)}")


# Exact types (keys are str): True == 1 == 1.0 as cache keys, but they are written differently.
_FLAT_TYPES = frozenset({str, int, type(None)})


@functools.lru_cache(maxsize=1 << 16)
def _flat_item(pad: str, items: tuple[tuple[str, Any], ...]) -> str:
    """A list item that is a mapping of scalars (a peer entry): cached, since a full mesh
    writes every peer entry into N-1 values files."""
    lines = [f"{pad}  {_scalar(str(k))}: {_scalar(v)}" for k, v in sorted(items)]
    return f"{pad}- " + "\n".join(lines)[len(pad) + 2:]


def dump_yaml(doc: dict[str, Any]) -> str:
    """Block-style YAML with sorted keys.

    A small emitter of its own: PyYAML's representer takes seconds on a 511-cluster
    mesh (255,000 peer entries). Plan values are JSON data (mappings, lists, strings,
    numbers, booleans, null); tests check that PyYAML reads every document back equal.
    """
    out: list[str] = []
    _emit(doc, "", out)
    return "\n".join(out) + "\n"


def values_yaml(name: str, release: dict[str, Any], values: dict[str, Any]) -> str:
    inputs = release["inputs"]
    repo = inputs.get("repositoryOpts", {}).get("repo", "")
    header = (
        f"# Cilium Helm values of {name}: chart {inputs.get('chart')} {inputs.get('version')} from {repo},\n"
        f"# release {inputs.get('namespace')}/{inputs.get('name')}. {SECRET} = a secret, "
        f"{UNKNOWN} = known after apply.\n"
    )
    return header + dump_yaml(values)


def depth(g: dict[str, Any]) -> int:
    """The number of resources on the longest chain of waits (dependencies and providers):
    a lower bound on the sequential steps of ``pulumi up``."""
    deps = {r["urn"]: [*r["dependencies"], *([r["provider"]] if r["provider"] else [])] for r in g["resources"]}
    memo: dict[str, int] = {}
    for start in deps:
        stack = [(start, False)]
        while stack:
            urn, expanded = stack.pop()
            if urn in memo:
                continue
            children = [d for d in deps.get(urn, []) if d in deps]
            if expanded:
                memo[urn] = 1 + max((memo[d] for d in children), default=0)
                continue
            stack.append((urn, True))
            stack.extend((d, False) for d in children if d not in memo)
    return max(memo.values(), default=0)


def connections(g: dict[str, Any]) -> set[tuple[str, str]]:
    """Every peer connection of a plan once, as (a, b) with a < b, from its MeshPeers nodes."""
    return {
        (c, peer) if c < peer else (peer, c)
        for r in g["resources"] if r["type"] == PEERS_TYPE
        for c in [r["inputs"]["cluster"]]
        for peer in r["inputs"].get("peers", {})
    }


def connection_count(g: dict[str, Any]) -> int:
    """``len(connections(g))``, counted without building the pairs (N·(N−1)/2 of them in a full mesh): a connection
    is counted at its smaller end, or at its larger end when the smaller does not list it."""
    nodes = [(r["inputs"]["cluster"], r["inputs"].get("peers", {})) for r in g["resources"] if r["type"] == PEERS_TYPE]
    peers = dict(nodes)
    if len(peers) != len(nodes) or not all(isinstance(p, dict) for p in peers.values()):
        return len(connections(g))  # two nodes of a cluster, or peers not a mapping: not the program's shape
    count = 0
    for c, listed in peers.items():
        for peer in listed:
            if c <= peer or c not in peers.get(peer, ()):
                count += 1
    return count


def ancestor_cluster(urn: str, parents: dict[str, str], clusters: dict[str, str]) -> str | None:
    while urn:
        if urn in clusters:
            return clusters[urn]
        urn = parents.get(urn, "")
    return None


NOT_CHECKED_KEY = "helmValuesNotChecked"
"""graph.json: the program's warnings that the Helm value paths were not checked
(``meshcore.mesh.chartsource.check_values``; only when there are some)."""
CHART_ONLY_KEY = "chartOnlyKeys"
"""graph.json: cluster -> the value paths of its release that the chart copy the check read knows and the key index
does not (its templates' keys; only for clusters that have some)."""


def summary(g: dict[str, Any], now: datetime | None = None) -> str:
    outputs = g["outputs"].get("clusters", {})
    values = release_values(g)
    parents = {r["urn"]: r["parent"] for r in g["resources"]}
    cluster_urns = {r["urn"]: r["name"] for r in g["resources"] if r["type"] == CLUSTER_TYPE}
    per_cluster: Counter[str] = Counter()
    for r in g["resources"]:
        owner = ancestor_cluster(r["urn"], parents, cluster_urns)
        if owner:
            per_cluster[owner] += 1
    now = now or datetime.now(UTC)
    count = connection_count(g)
    types = Counter(r["type"] for r in g["resources"])

    lines = [
        f"# Offline plan: {g['project']} / {g['stack']}",
        "",
        f"{len(values)} clusters, {count} peer connections, {len(g['resources'])} resources, "
        f"dependency depth {depth(g)}.",
        "",
        "| cluster | id | region | context | mesh address | peers | resources |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in sorted(values, key=lambda n: (values[n]["cluster"]["id"], n)):
        v = values[name]
        o = outputs.get(name, {}) if isinstance(outputs, dict) else {}
        listed = v["clustermesh"]["config"]["clusters"]  # the 1.18 list or, from 1.19, the map by name
        # The first seven names only: a full mesh lists N-1 peers in each cluster.
        peers = list(itertools.islice(listed, 7)) if isinstance(listed, dict) else [p["name"] for p in listed[:7]]
        shown = ", ".join(peers) if len(peers) <= 6 else f"{', '.join(peers[:6])}, … ({len(listed)})"
        lines.append(
            f"| {name} | {v['cluster']['id']} | {o.get('region', '')} | {o.get('context', '')} | "
            f"{o.get('meshAddress', '')} | {shown or '—'} | {per_cluster[name]} |"
        )
    lines += ["", "## Resources by type", "", "| type | count |", "| --- | --- |"]
    lines += [f"| {t} | {n} |" for t, n in sorted(types.items())]
    lines += ["", "## Peer connections", ""]
    if count > LISTED_CONNECTIONS:
        lines.append(f"{count} connections (every pair of the {len(values)} clusters: full mesh)"
                     if count == len(values) * (len(values) - 1) // 2 else
                     f"{count} connections; see the MeshPeers nodes in graph.json")
    else:
        lines += [f"- {a} <-> {b}" for a, b in sorted(connections(g))] or ["- (none)"]
    lines += ["", *certificates_section(g, values, now)]
    lines += [
        "",
        f"`{SECRET}` marks secrets; `{UNKNOWN}` marks values known only after apply (e.g. a created CLB's VIP, "
        "the CA certificate of a new stack).",
        "",
    ]
    # Last, where a reader of the summary looks for what the plan could not do.
    return "\n".join(lines) + "".join(f"\n**{note}**\n" for note in g.get(NOT_CHECKED_KEY, []))


def certificates_section(g: dict[str, Any], values: dict[str, dict[str, Any]], now: datetime) -> list[str]:
    """What expires when (``meshcore/chart/certs.py``): known dates, else the rule that dates them; a
    warning line for each known date within ``certs.WARN_DAYS`` of ``now``."""
    outputs = g["outputs"]
    clusters = outputs.get("clusters", {}) if isinstance(outputs.get("clusters"), dict) else {}
    ca = outputs.get("caExpiresAt")
    dates: dict[str, str | None] = {}
    # Each cluster's chart version: its release's (the record in the outputs is the engine's, unknown offline).
    charts = {name: r["inputs"].get("version") for name, r in releases(g).items()}
    lines = ["## Certificates", "", "| cluster | certificates | Secrets | valid (days) | renewal | expires |",
             "| --- | --- | --- | --- | --- | --- |"]
    if isinstance(ca, dict):
        for generation, date in sorted(ca.items()):
            dates[f"the mesh CA (generation {generation})"] = date if date != UNKNOWN else None
            shown = date if date != UNKNOWN else f"{UNKNOWN} ({certs.CA_VALIDITY_DAYS} days after it is created)"
            lines.append(f"| (mesh) | CA generation {generation} | tls.ca.* | | rotation (README, Lifecycle) | "
                         f"{shown} |")
    else:
        lines.append(f"| (mesh) | CA | tls.ca.* | | rotation (README, Lifecycle) | {UNKNOWN} (a generated CA: "
                     f"{certs.CA_VALIDITY_DAYS} days after it is created) |")
    for name in sorted(values, key=lambda n: (values[n]["cluster"]["id"], n)):
        record = clusters.get(name, {}).get("certificates") if isinstance(clusters.get(name), dict) else None
        renders = record if isinstance(record, dict) else {}
        version = charts.get(name)
        version = version if isinstance(version, str) and versions.is_supported(version) else versions.DEFAULT
        for key, group in certs.leaf_expiries(values[name], renders, version).items():
            since = "the first install" if certs.GROUPS[key].kept else "each upgrade"
            expires = group["expiresAt"] or (f"{group['validityDays']} days after each renewal (the live dates: "
                                             "python -m tools.doctor)" if "CronJob" in group["renewal"]
                                             else f"{group['validityDays']} days after {since}")
            dates[f"{name}: the {key} certificates"] = group["expiresAt"]
            lines.append(f"| {name} | {key} | {', '.join(group['secrets'])} | {group['validityDays']} | "
                         f"{group['renewal']} | {expires} |")
    soon = certs.expiring(dates, now)
    if soon:
        lines.append("")
        lines += [f"- **EXPIRES SOON**: {what}: {date} ({days} days)" for what, date, days in soon]
    return lines


def graph_json(g: dict[str, Any]) -> str:
    """graph.json with one resource per line: diffable resource by resource, and written by
    the C JSON encoder (an indented dump of a 511-cluster mesh takes seconds)."""
    def line(obj: Any) -> str:
        return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    head = {k: v for k, v in g.items() if k != "resources"}
    parts = [f"  {json.dumps(k)}: {line(v)}" for k, v in sorted(head.items())]
    resources = ",\n".join(f"    {line(r)}" for r in g["resources"])
    parts.append(f'  "resources": [\n{resources}\n  ]')
    return "{\n" + ",\n".join(parts) + "\n}\n"


def artefacts(rec: Recording) -> dict[str, str]:
    """Relative path -> file text."""
    g = graph(rec)
    return {"graph.json": graph_json(g), **summary_and_values(g)}


def summary_and_values(g: dict[str, Any]) -> dict[str, str]:
    """The artefacts but graph.json: summary.md and each cluster's values file (what the offline plan renders on a
    second core while it writes graph.json, ``tools.plan.write_plan``)."""
    files = {"summary.md": summary(g)}
    for name, release in releases(g).items():
        files[f"values/{name}.yaml"] = values_yaml(name, release, release["inputs"]["values"])
    return files
