"""Plan rendering helpers: the YAML writer reads back equal, scrubbing, graph depth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi_kubernetes
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from components import sdk_internals as sdk
from tests.conftest import examples
from tools import render

TRICKY = ["", " x", "x ", "yes", "No", "on", "null", "~", "1.18.3", "10.0.1.100", "0x1f", "1e3", ".inf", "-",
          "- a", "a: b", "#c", "a #b", '{"Vip":"10.0.0.1"}', "[x]", "é", "tab\there", "line\nbreak", "'q'", '"dq"',
          "service.kubernetes.io/x", "@a", "`b", "%c", "!d", "&e", "*f", "|g", ">h", "?i", "a,b", "=", "<<"]


SCALARS = st.one_of(
    st.sampled_from(TRICKY + ["plain-word"]), st.integers(-10**6, 10**6), st.booleans(), st.none(),
    st.floats(allow_nan=False), st.text(alphabet="ab-_./:0 \t\n", max_size=6), st.text(max_size=8),
)
KEYS = st.one_of(st.sampled_from(TRICKY + ["k1", "k2", "cluster"]), st.text(max_size=8))
DOCS = st.dictionaries(
    st.sampled_from([f"k{i}" for i in range(6)]),
    st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                   st.dictionaries(KEYS, inner, max_size=4)), max_leaves=20),
    min_size=1, max_size=5,
)


@settings(max_examples=examples(200))
@given(DOCS)
def test_yaml_writer_round_trips(doc: dict[str, Any]) -> None:
    """PyYAML reads every written document back equal, whatever the strings look like."""
    assert yaml.safe_load(render.dump_yaml(doc)) == doc


def test_yaml_writer_is_block_style_and_sorted() -> None:
    """The values files look like hand-written Helm values."""
    text = render.dump_yaml({"b": {"z": [{"name": "c", "port": 2379}], "x": "10.0.0.1", "y": 1}, "a": True})
    assert text == 'a: true\nb:\n  x: "10.0.0.1"\n  "y": 1\n  z:\n  - name: c\n    port: 2379\n'


def test_yaml_writer_keeps_equal_but_different_scalars_apart() -> None:
    """List items that compare equal (1, True, 1.0) are written each as itself, caches or not."""
    doc = {"l": [{"a": 1}, {"a": True}, {"a": 1.0}, {"a": "1"}, {"a": 1}, {"a": None}]}
    text = render.dump_yaml(doc)
    assert yaml.safe_load(text) == doc
    assert [type(i["a"]) for i in yaml.safe_load(text)["l"]] == [int, bool, float, str, int, type(None)]


def test_release_inputs_as_the_provider_checks_them() -> None:
    """Values files merge in order, values merge over them: mappings key by key, lists and
    scalars replaced; nulls dropped (after the files are merged); markers are leaves;
    valueYamlFiles is gone."""
    def asset(text: str) -> dict[str, Any]:
        return {sdk.SIG_KEY: sdk.ASSET_SIG, "text": text}

    secret = {sdk.SIG_KEY: sdk.SECRET_SIG, "value": "KEY"}
    inputs = {
        "chart": "cilium",
        "valueYamlFiles": [asset('{"a": {"l": [1, 2], "x": 1, "m": {"k": 1}}, "b": 1, "n": null}'),
                           asset('{"a": {"x": 2}, "c": [3, null], "key": {"k": 1}}')],
        "values": {"a": {"l": [9], "m": {"j": 2}, "gone": None}, "key": secret, "u": sdk.UNKNOWN},
    }
    before = repr(inputs)
    checked = render.checked_release_inputs(inputs)
    assert checked == {"chart": "cilium", "values": {"a": {"l": [9], "x": 2, "m": {"k": 1, "j": 2}}, "b": 1, "c": [3],
                                                     "key": secret, "u": sdk.UNKNOWN}}
    assert repr(inputs) == before, "the inputs are not changed"
    assert render.checked_release_inputs({"values": {"a": None}, "allowNullValues": True}) == \
        {"values": {"a": None}, "allowNullValues": True}
    assert render.checked_release_inputs({"values": {"a": 1, "b": [None]}}) == {"values": {"a": 1, "b": []}}
    # Files merge with their nulls first (a later null erases a key), and keep them with allowNullValues.
    two = [asset('{"a": {"x": 1, "y": 2}}'), asset('{"a": {"x": null}}')]
    assert render.checked_release_inputs({"valueYamlFiles": two, "values": {}}) == {"values": {"a": {"y": 2}}}
    assert render.checked_release_inputs({"valueYamlFiles": two, "values": {"b": None}, "allowNullValues": True}) == \
        {"values": {"a": {"x": None, "y": 2}, "b": None}, "allowNullValues": True}
    for odd in ({"values": {}, "valueYamlFiles": [{sdk.SIG_KEY: sdk.ARCHIVE_SIG, "path": "x"}]},
                {"values": secret, "valueYamlFiles": [asset("{}")]}, {"values": "[secret]"}):
        assert render.checked_release_inputs(odd) is odd, "left as sent"


def test_the_emulated_provider_is_the_pinned_one() -> None:
    """checked_release_inputs emulates the provider's Check (read from pulumi-kubernetes 4.34's
    decodeRelease and mergeMaps; the end-to-end suite compares it with the real 4.25.0's preview).
    A new provider version: read them again, run make e2e, then update this."""
    plugin = json.loads((Path(pulumi_kubernetes.__file__).parent / "pulumi-plugin.json").read_text())
    assert (plugin["name"], plugin["version"]) == ("kubernetes", "4.25.0")


def test_yaml_writer_caches_per_type_of_key() -> None:
    """Mapping keys True and 1 are equal as cache keys but written differently."""
    doc = {"l": [{1: "a"}, {True: "a"}]}
    assert render.dump_yaml(doc) == 'l:\n- "1": a\n- "True": a\n'


def test_scrub_markers() -> None:
    """Secrets become [secret] at the leaf, unknowns [unknown], integral doubles ints."""
    secret = {sdk.SIG_KEY: sdk.SECRET_SIG, "value": "KEY"}
    wire = {"tls": {"ca": {"key": secret, "cert": sdk.UNKNOWN}}, "id": 3.0, "ratio": 0.5}
    assert render.scrub(wire) == {"tls": {"ca": {"key": "[secret]", "cert": "[unknown]"}}, "id": 3, "ratio": 0.5}


def test_depth_counts_dependencies_and_providers() -> None:
    """Depth is the longest chain of waits, through dependencies and explicit providers."""
    def r(urn: str, deps: list[str], provider: str = "") -> dict:
        return {"urn": urn, "dependencies": deps, "provider": provider}

    g = {"resources": [r("p", []), r("key", []), r("cert", ["key"]), r("rel", ["cert"], "p"), r("lone", [])]}
    assert render.depth(g) == 3
    g["resources"].append(r("tp", []))
    g["resources"].append(r("clb", [], "tp"))
    g["resources"].append(r("rel2", ["clb", "cert"], "p"))
    assert render.depth(g) == 3
    g["resources"].append(r("x", ["rel2"]))
    assert render.depth(g) == 4


def test_graph_json_is_json_with_one_resource_per_line() -> None:
    """graph.json parses back to the graph, and each resource is one line."""
    import json

    g = {"project": "p", "stack": "s", "outputs": {"a": [1, "é"]},
         "resources": [{"urn": "u1", "inputs": {"x": 1}}, {"urn": "u2", "inputs": {}}]}
    text = render.graph_json(g)
    assert json.loads(text) == g
    lines = text.splitlines()
    assert sum(1 for line in lines if '"urn":' in line) == 2


@pytest.mark.parametrize("nodes", [
    [("a", {"b": "1", "c": "2"}), ("b", {"a": "0", "c": "2"}), ("c", {"a": "0", "b": "1"})],  # full mesh
    [("a", {"b": "1"}), ("b", {}), ("c", {"a": "0", "b": "1"})],  # listed at one end only
    [("b", {"a": "0", "z": "9"}), ("a", {"a": "0"})],  # a peer that has no node; a cluster that lists itself
    [("a", {"b": "1"}), ("a", {"c": "2"}), ("b", {"a": "0"})],  # two nodes of one cluster
    [("a", ["b", "c", "b"]), ("b", {"a": "0"})],  # peers as a list
    [],
])
def test_connection_count_is_the_number_of_connections(nodes: list[tuple[str, Any]]) -> None:
    """summary.md counts the connections without building the pairs (render.connection_count): the same number."""
    g = {"resources": [{"type": render.PEERS_TYPE, "inputs": {"cluster": c, "peers": p}} for c, p in nodes]
         + [{"type": render.CLUSTER_TYPE, "inputs": {}}]}
    assert render.connection_count(g) == len(render.connections(g))
