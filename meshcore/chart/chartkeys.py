"""Which Helm value paths a chart knows: the key tree of its ``values.yaml``, and the unknown
paths of a values mapping with a "did you mean".

Helm merges user values over the chart's defaults and the templates read what they read: a
key no template reads (``kubeProxyReplacment: true``, ``hubble.relya``) is ignored without a
word, and Cilium's ``values.schema.json`` does not forbid unknown keys (it has no
``additionalProperties``). So the program checks every user value path against the chart's own
key tree, built here from the chart's files (pure: text in, tree out; no chart is shipped with
the program, and nothing is fetched).

What the tree holds, and why:

- every key of ``values.yaml``. Its default decides what may be set below it:
  a mapping's keys are checked one by one; a list is replaced wholesale by Helm, so nothing
  below a list is checked; a scalar (``kubeProxyReplacement: "false"``) takes a value, and a
  mapping set there is wrong; ``null`` (``cni.chainingMode: ~``) says nothing, unless the
  schema gives its type.
- free maps, whose keys are the user's (anything below is accepted): a mapping whose default
  is ``{}`` (``annotations``, ``podLabels``, ``extraConfig``, ``resources``…), one whose keys
  look like label keys (``nodeSelector: {kubernetes.io/os: linux}``), and the Kubernetes object
  fields a chart passes on whole (``FREE_NAMES``, and names ending in ``annotations``/``labels``):
  their content is Kubernetes' to define (``operator.updateStrategy.rollingUpdate.maxSurge``,
  ``cni.resources.limits``), not the chart's.
- ``values.schema.json`` when the chart has one: its ``properties`` (keys the file may lack)
  and the types of ``null`` defaults (``[null, object]`` is a free map, ``[null, array]`` a
  list, ``[null, string]`` a scalar).
- keys ``values.yaml`` documents only as a comment, in helm-docs style
  (``# devices: ""``, ``  # readCniConf: …``; a block such as ``# config:`` /
  ``#   nonMasqueradeCIDRs: []``): a line ``# key: …`` whose ``#`` stands at the column of a
  mapping's keys belongs to that mapping. The 1.18 chart writes ``ipMasqAgent.config`` at
  column 0, right after ``ipMasqAgent``'s own keys; so a commented block that directly
  follows a deeper mapping's keys is also taken as that mapping's (this can only accept
  more). Their content is not typed (anything below is accepted).
- keys the chart's templates read (``.Values.cni.externalRouting``,
  ``hasKey .Values.k8s "apiServerURLs"``) when the templates are at hand (a local chart):
  the 1.18 ``values.yaml`` does not list ``cni.externalRouting``, which the TKE guide sets and
  ``cilium-config`` renders.

The check errs on the side of accepting: refusing a value the chart reads would stop a stack
for nothing, while a missed typo is what happened before the check. No Pulumi import here.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from meshcore import yamlio
from meshcore.keypaths import Path

MAP, FREE, LIST, SCALAR, ANY = "map", "free", "list", "scalar", "any"
"""Node kinds: keys checked; keys free; a list (nothing below checked); a single value
(a mapping there is wrong); nothing known (anything accepted)."""

FREE_NAMES = frozenset({"resources", "affinity", "nodeSelector", "securityContext", "podSecurityContext",
                        "updateStrategy", "tolerations", "extraConfig", "initResources"})
"""Keys whose mapping is a Kubernetes object (or the agent's free-form config) the chart passes
on whole: their keys are not the chart's to list. Names ending in ``annotations`` or ``labels``
(any case: ``podLabels``, ``serviceAnnotations``, ``matchLabels``) are free too."""

_SCHEMA_SCALARS = {"string", "integer", "number", "boolean"}


class _NoDefault:
    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _NoDefault()
"""The default of a scalar read from a key index, which holds no values of the chart."""


@dataclass
class Node:
    kind: str
    children: dict[str, Node] = field(default_factory=dict)
    default: Any = None
    """A scalar's default, for messages (``NO_DEFAULT``: not known)."""


def _free_name(name: str) -> bool:
    lower = name.lower()
    return name in FREE_NAMES or lower.endswith("annotations") or lower.endswith("labels")


def _from_value(value: Any, name: str = "") -> Node:
    if isinstance(value, dict):
        if not value or _free_name(name) or any("/" in str(k) or "." in str(k) for k in value):
            return Node(FREE)
        return Node(MAP, {str(k): _from_value(v, str(k)) for k, v in value.items()})
    if isinstance(value, list):
        return Node(LIST)
    if value is None:
        return Node(ANY)
    return Node(SCALAR, default=value)


def _schema_types(schema: Mapping[str, Any]) -> set[str]:
    t = schema.get("type")
    types = {t} if isinstance(t, str) else set(t) if isinstance(t, list) else set()
    for alt in schema.get("anyOf", []) + schema.get("oneOf", []):
        if isinstance(alt, dict):
            types |= _schema_types(alt)
    return types


def _from_schema(schema: Mapping[str, Any], name: str) -> Node:
    types = _schema_types(schema)
    props = schema.get("properties")
    if "object" in types or isinstance(props, dict):
        if isinstance(props, dict) and props and not _free_name(name):
            node = Node(MAP)
            _merge_schema(node, schema)
            return node
        return Node(FREE)
    if "array" in types:
        return Node(LIST)
    if types and types - {"null"} and types <= _SCHEMA_SCALARS | {"null"}:
        return Node(SCALAR)
    return Node(ANY)


def _merge_schema(node: Node, schema: Mapping[str, Any]) -> None:
    """Add the schema's keys under a MAP node; type the ``null`` defaults; never narrow a node."""
    props = schema.get("properties")
    if not isinstance(props, dict):
        return
    for key, sub in props.items():
        if not isinstance(sub, dict):
            continue
        child = node.children.get(key)
        if child is None or child.kind == ANY:
            node.children[key] = _from_schema(sub, key)
        elif child.kind == MAP:
            _merge_schema(child, sub)
        elif child.kind == SCALAR and "object" in _schema_types(sub):
            node.children[key] = Node(FREE)


_KEY_LINE = re.compile(r"^(?P<col> *)(?P<key>[A-Za-z_][A-Za-z0-9_-]*|\"[^\"]+\"|'[^']+'):(?:\s|$)")
_COMMENTED = re.compile(r"^(?P<col> *)# (?P<key>[a-z][A-Za-z0-9_]*):(?:\s|$)")
_COMMENT_CONT = re.compile(r"^(?P<col> *)#  ")
_DOC_WORDS = frozenset({"type", "enum", "ref", "default", "example", "note", "see"})
"""Words that start a documentation line (helm-schema's ``# type: [null, string]``,
``# ref: https://…``), not a commented-out key."""


def _commented_keys(text: str) -> list[tuple[Path, Any]]:
    """(mapping path, commented block as data) for every commented-out key of ``values.yaml``."""
    lines = text.splitlines()
    found: list[tuple[Path, Any]] = []
    stack: list[tuple[int, str]] = []  # (column, key) of the real keys enclosing the current line
    last_real: tuple[int, Path] | None = None  # (column, parent path) of the last real key line
    in_schema = False
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped == "# @schema":
            in_schema = not in_schema
            i += 1
            continue
        m = _KEY_LINE.match(line)
        if m and not line.lstrip().startswith("#"):
            col = len(m.group("col"))
            while stack and stack[-1][0] >= col:
                stack.pop()
            last_real = (col, tuple(k for _, k in stack))
            stack.append((col, m.group("key").strip("\"'")))
            i += 1
            continue
        c = _COMMENTED.match(line)
        if c and not in_schema and c.group("key").lower() not in _DOC_WORDS:
            col = len(c.group("col"))
            block = [line[col + 2:]]
            j = i + 1
            while j < len(lines):
                cont = _COMMENT_CONT.match(lines[j])
                if not cont or len(cont.group("col")) != col:
                    break
                block.append(lines[j][col + 2:])
                j += 1
            try:
                data = yamlio.safe_load("\n".join(block))
            except yaml.YAMLError:  # prose that looks like a key: take the key only
                data = None
            if not isinstance(data, dict):
                data = {c.group("key"): None}
            parents: list[Path] = [tuple(k for kc, k in stack if kc < col)]
            if last_real is not None and last_real[0] > col and last_real[1] not in parents:
                parents.append(last_real[1])  # written at the wrong column, after a deeper mapping
            found += [(p, data) for p in parents]
            i = j
            continue
        i += 1
    return found


def _add_commented(root: Node, parent: Path, data: Mapping[str, Any]) -> None:
    node = root
    for part in parent:
        child = node.children.get(str(part))
        if child is None or child.kind != MAP:
            return
        node = child
    for key, value in data.items():
        key = str(key)
        if key in node.children:
            if node.children[key].kind == MAP and isinstance(value, dict):
                _add_commented(node.children[key], (), value)
            continue
        if isinstance(value, dict) and value and not _free_name(key):
            sub = Node(MAP)
            node.children[key] = sub
            _add_commented(sub, (), value)
        else:
            node.children[key] = Node(ANY)  # an example, not a type


_TEMPLATE_REF = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
_TEMPLATE_HASKEY = re.compile(r"hasKey\s+\$?\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s+\"([^\"]+)\"")


def _template_paths(texts: Iterable[str]) -> set[Path]:
    paths: set[Path] = set()
    for text in texts:
        for m in _TEMPLATE_REF.finditer(text):
            paths.add(tuple(m.group(1).split(".")[1:]))
        for m in _TEMPLATE_HASKEY.finditer(text):
            paths.add((*[p for p in m.group(1).split(".") if p], m.group(2)))
    return paths


def _add_path(root: Node, path: Path) -> None:
    """Accept ``path``: the first missing key on it is added as an untyped node."""
    node = root
    for part in path:
        if node.kind != MAP:
            return
        child = node.children.get(str(part))
        if child is None:
            node.children[str(part)] = Node(ANY)
            return
        node = child


@dataclass(frozen=True)
class ChartKeys:
    """The key tree of one chart."""

    chart: str
    """The chart as messages name it, e.g. ``cilium 1.18.3``."""
    root: Node

    def count(self) -> int:
        """The number of keys in the tree."""
        def walk(n: Node) -> int:
            return sum(1 + walk(c) for c in n.children.values())
        return walk(self.root)

    def accept(self, path: Path) -> None:
        """Accept values at ``path`` from now on (a path the chart reads that its files do not show)."""
        _add_path(self.root, path)

    def knows(self, path: Path) -> bool:
        """True when a value at ``path`` is accepted (a mapping below a scalar is not)."""
        return not self.problems(_nest(path, "x"))

    def problems(self, values: Mapping[str, Any]) -> list[Problem]:
        """Every unknown path of ``values`` (the topmost unknown key only), and every mapping set
        where the chart has a single value; in the order of ``values``."""
        out: list[Problem] = []
        self._walk(self.root, values, (), out)
        return out

    def _walk(self, node: Node, values: Mapping[str, Any], prefix: Path, out: list[Problem]) -> None:
        for key, value in values.items():
            path = (*prefix, key)
            child = node.children.get(str(key))
            if child is None and "." in str(key) and self._dotted_known(node, str(key)):
                out.append(Problem(path, "dotted", (".".join(map(str, (*prefix, key))),)))
            elif child is None:
                out.append(Problem(path, "unknown", self._suggest(node, prefix, str(key))))
            elif isinstance(value, dict):
                if child.kind == MAP:
                    self._walk(child, value, path, out)
                elif child.kind == SCALAR:
                    out.append(Problem(path, "scalar", default=child.default))

    @staticmethod
    def _dotted_known(node: Node, key: str) -> bool:
        """True when ``a.b`` (one key, as ``--set`` writes a path) names a path below ``node``."""
        for part in key.split("."):
            child = node.children.get(part) if node.kind == MAP else None
            if child is None:
                return False
            node = child
        return True

    def _suggest(self, node: Node, prefix: Path, key: str) -> tuple[str, ...]:
        """The sibling the user probably meant (same name in another case, else the closest by
        difflib, at a ratio of 0.7: a removed key such as ``externalIPs`` gets no far-fetched
        ``extraVolumes``); else up to three places where a key of exactly this name is, nearest first
        (``relay`` at the top: ``hubble.relay``); only the nearest when some are nearer."""
        names = list(node.children)
        same_case = [n for n in names if n.lower() == key.lower()]
        close = same_case or difflib.get_close_matches(key, names, n=1, cutoff=0.7)
        if close:
            return (".".join(map(str, (*prefix, close[0]))),)
        def shared(p: Path) -> int:  # the places nearest the user's come first
            return next((i for i, (a, b) in enumerate(zip(p, prefix, strict=False)) if a != b),
                        min(len(p), len(prefix)))
        found = sorted(self._paths_named(key), key=lambda p: (-shared(p), len(p)))
        return tuple(".".join(map(str, p)) for p in found if shared(p) == shared(found[0]))[:3] if found else ()

    def _paths_named(self, key: str) -> list[Path]:
        out: list[Path] = []

        def walk(n: Node, prefix: Path) -> None:
            for k, c in n.children.items():
                if k == key:
                    out.append((*prefix, k))
                walk(c, (*prefix, k))
        walk(self.root, ())
        return out


@dataclass(frozen=True)
class Problem:
    path: Path
    kind: str
    """``unknown``: no such key; ``dotted``: one key with dots that names a path (``hubble.relay``:
    Helm takes it as one key, as it is, unlike ``--set``); ``scalar``: a mapping where the chart
    has a single value."""
    suggestions: tuple[str, ...] = ()
    """The paths the user probably meant (dotted), for ``unknown``."""
    default: Any = None
    """The chart's default, for ``scalar``."""

    def message(self, chart: str) -> str:
        if self.kind == "scalar":
            default = ("" if self.default is NO_DEFAULT else
                       f" (default: {json.dumps(self.default, default=str)})")
            return (f"is a mapping, but the {chart} chart takes a single value here{default}; set a value, not a "
                    "mapping (a mapping here would break the chart or be ignored)")
        if self.kind == "dotted":
            nested = self.suggestions[0].split(".")
            shown = ": {".join(nested[len(self.path) - 1:]) + ": …" + "}" * (len(nested) - len(self.path))
            return (f"unknown Helm value for the {chart} chart: in a values mapping a key with dots is one key, "
                    f"not a path as with helm --set; write it nested ({shown}) (the chart ignores unknown keys, so "
                    "this value would have no effect)")
        hint = ("did you mean " + " or ".join(f"'{s}'" for s in self.suggestions) + "?" if self.suggestions else
                "the chart has no key of this name here (see its values.yaml)")
        return (f"unknown Helm value for the {chart} chart; {hint} (the chart ignores unknown keys, so this "
                "value would have no effect)")


def _nest(path: Path, leaf: Any) -> dict[str, Any]:
    out: Any = leaf
    for part in reversed(path):
        out = {part: out}
    nested: dict[str, Any] = out
    return nested


def build(chart: str, values_yaml: str, schema_json: str | None = None,
          templates: Iterable[str] = ()) -> ChartKeys:
    """The key tree of a chart from the text of its ``values.yaml``, ``values.schema.json``
    (None: the chart has none) and templates (empty: not at hand). ValueError when
    ``values.yaml`` is not a mapping or the schema is not JSON."""
    values = yamlio.safe_load(values_yaml)
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ValueError("values.yaml is not a mapping")
    root = Node(MAP, {str(k): _from_value(v, str(k)) for k, v in values.items()})
    if schema_json is not None:
        schema = json.loads(schema_json)
        if isinstance(schema, dict):
            _merge_schema(root, schema)
    for parent, data in _commented_keys(values_yaml):
        _add_commented(root, parent, data)
    for path in _template_paths(templates):
        _add_path(root, path)
    return ChartKeys(chart, root)


# --- the key index: the tree as data -------------------------------------------------------

INDEX_FORMAT = 1
"""The version of the key index's layout (``index_json``)."""


def _index_node(node: Node) -> Any:
    return {k: _index_node(c) for k, c in node.children.items()} if node.kind == MAP else node.kind


def index_json(tree: ChartKeys, source: str) -> str:
    """The key index of ``tree``: ``{"chart", "format", "source", "keys"}``, ``keys`` the tree as nested objects (a
    mapping whose keys are checked) ending in the kind of each other key (``free``, ``list``, ``scalar``, ``any``),
    in the chart's order (suggestions follow it); one key a line, so a new chart version diffs key by key."""
    doc = {"chart": tree.chart, "format": INDEX_FORMAT, "source": source, "keys": _index_node(tree.root)}
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def _from_index_node(data: Any) -> Node:
    if isinstance(data, dict):
        return Node(MAP, {str(k): _from_index_node(v) for k, v in data.items()})
    if data in (FREE, LIST, ANY):
        return Node(data)
    if data == SCALAR:
        return Node(SCALAR, default=NO_DEFAULT)
    raise ValueError(f"not a key index: {data!r} is no kind of key")


def from_index(chart: str, text: str) -> ChartKeys:
    """The key tree of a key index (``index_json``) for messages naming ``chart``. ValueError when the text is
    not a key index of this layout."""
    doc = json.loads(text)
    if not isinstance(doc, dict) or doc.get("format") != INDEX_FORMAT or not isinstance(doc.get("keys"), dict):
        raise ValueError(f"not a key index of format {INDEX_FORMAT}")
    return ChartKeys(chart, _from_index_node(doc["keys"]))


def _union(a: Node, b: Node) -> Node:
    """Every key of ``a`` or ``b``; a key of two kinds takes anything (the check errs on the side of accepting)."""
    if a.kind == MAP and b.kind == MAP:
        children = dict(a.children)
        for k, c in b.children.items():
            children[k] = _union(children[k], c) if k in children else c
        return Node(MAP, children)
    return a if a.kind == b.kind else Node(ANY)


def union(chart: str, trees: Iterable[ChartKeys]) -> ChartKeys:
    """One tree accepting what any of ``trees`` accepts (the key indexes of several patches of one minor)."""
    root = Node(MAP)
    for t in trees:
        root = _union(root, t.root)
    return ChartKeys(chart, root)
