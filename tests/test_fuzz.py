"""Property tests: valid stacks, randomly broken, are either accepted or refused cleanly.

Start from a valid ``mesh`` namespace (1..5 clusters, vip or createClb, masquerade modes,
full or partial topology, TKE-like values), apply random mutations (delete, retype, null,
duplicate, swap, unknown and typo keys, perturb strings/numbers/CIDRs, copy a field from a sibling
cluster, write an owned value path) and check:

1. ``parse_settings`` returns ``Settings`` or raises ``MeshConfigError`` whose issues each name a
   ``mesh:`` key and say something, on one line; never any other exception.
2. The real program on the mock engine either completes, and then every release carries the
   program's values, or raises ``InvalidConfig`` having registered nothing.

Deterministic in the default profile (``tests/conftest.py``): CI runs the same examples every time;
``make fuzz`` runs twenty times as many, random.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import math
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from components.program import InvalidConfig
from meshcore.config import (
    APISERVER_KEYS,
    CLUSTER_KEYS,
    TOP_LEVEL_KEYS,
    Settings,
)
from meshcore.config_parse import parse_settings
from meshcore.errors import MeshConfigError
from meshcore.owned import owned_keys
from tests.conftest import cluster_entry, examples, mesh_config
from tests.mockcloud import release_values, run
from tools.mockengine import Recording
from tools.render import scrub

VALID_EXAMPLES = 200
PARSE_EXAMPLES = 2000
PROGRAM_EXAMPLES = 30
RELEASE = "kubernetes:helm.sh/v3:Release"


# ----------------------------------------------------------------------------- valid stacks

TKE_VALUES = {"routingMode": "native", "enableIPv4Masquerade": False, "ipam": {"mode": "delegated-plugin"},
              "kubeProxyReplacement": "true", "k8sServicePort": 60002}
BASE_VALUES = [
    {},
    TKE_VALUES,
    {"routingMode": "tunnel", "tunnelProtocol": "vxlan"},
    {"routingMode": "native", "ipv4NativeRoutingCIDR": "172.16.0.0/12", "autoDirectNodeRoutes": True},
    {"hubble": {"enabled": True, "ui": {"enabled": True}}, "clustermesh": {"apiserver": {"replicas": 2}}},
]
MASQUERADE = [None, {"mode": "none"}, {"mode": "ipMasqAgent"},
              {"mode": "ipMasqAgent", "extraNonMasqueradeCidrs": ["10.0.0.0/8", "192.168.0.0/16"]}]


@st.composite
def valid_stacks(draw: st.DrawFn) -> dict[str, Any]:
    """A valid decoded ``mesh`` namespace (keys without ``mesh:``)."""
    n = draw(st.integers(1, 5))
    raw = mesh_config(0)
    raw["clusters"] = [cluster_entry(i, create_clb=draw(st.booleans()),
                                     region=draw(st.sampled_from(["ap-guangzhou", "ap-shanghai", "ap-beijing"])))
                       for i in range(1, n + 1)]
    if draw(st.booleans()):
        # Ids need not be 1..n: spread them (still unique, in range).
        ids = draw(st.lists(st.integers(1, 255), min_size=n, max_size=n, unique=True))
        for c, i in zip(raw["clusters"], ids, strict=False):
            c["id"] = i
    for c in raw["clusters"]:
        if draw(st.booleans()):
            c["context"] = f"tke-{c['name']}"
        if draw(st.booleans()):
            c["values"] = {"k8sServiceHost": f"169.254.128.{c['id'] % 250}"}
        if draw(st.booleans()):
            c["apiserver"]["port"] = 2379  # the only port the 1.18 chart serves
    masq = draw(st.sampled_from(MASQUERADE))
    if masq is not None:
        raw["masquerade"] = copy.deepcopy(masq)
    if draw(st.booleans()):
        values = copy.deepcopy(draw(st.sampled_from(BASE_VALUES)))
        if masq and masq["mode"] == "ipMasqAgent":
            values.pop("enableIPv4Masquerade", None)  # owned in that mode
        raw["cilium"] = {"version": draw(st.sampled_from(["1.18.3", "1.18.0", "v1.18.4"])), "values": values}
    if draw(st.booleans()):
        raw["maxConnectedClusters"] = draw(st.sampled_from([255, 511]))
    if draw(st.booleans()):
        raw["hubbleRelay"] = draw(st.booleans())
    if draw(st.booleans()):
        raw["topology"] = "full"
    elif n > 1 and draw(st.booleans()):
        # A random spanning tree, plus a few extra edges: connected, so nobody is isolated.
        names = [c["name"] for c in raw["clusters"]]
        peers: dict[str, list[str]] = {}
        for i in range(1, n):
            j = draw(st.integers(0, i - 1))
            peers.setdefault(names[i], []).append(names[j])
        for _ in range(draw(st.integers(0, 2))):
            a, b = draw(st.sampled_from(names)), draw(st.sampled_from(names))
            if a != b:
                peers.setdefault(a, []).append(b)
        raw["topology"] = {"peers": peers}
    return raw


# ----------------------------------------------------------------------------- mutations

INTERESTING_INTS = [0, 1, -1, 2, 254, 255, 256, 511, 512, 65535, 65536, 2**31, 2**63, -(2**63)]
INTERESTING_STRINGS = [
    "", " ", "default", "full", "none", "ipMasqAgent", "true", "1.18", "1.18.3\n", "cls-00000001", "CLS-1",
    "cls-", "-cls", "a" * 33, "subnet-00000001", "vpc-00000001", "10.0.1.100", "10.0.1.100/32", "172.16.1.0/24",
    "172.16.1.7/24", "0.0.0.0/0", "fd00::/8", "::1", "[secret]", "ap-guangzhou", "é", "a\nb", "\u2028", "null",
]
JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.sampled_from(INTERESTING_INTS), st.integers(),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(INTERESTING_STRINGS), st.text(max_size=12),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)
KNOWN_KEYS = sorted(set(TOP_LEVEL_KEYS) | set(CLUSTER_KEYS) | set(APISERVER_KEYS)
                    | {"version", "repository", "values", "mode", "extraNonMasqueradeCidrs", "peers"})

Path_ = tuple[Any, ...]


def _nodes(tree: Any, path: Path_ = ()) -> list[Path_]:
    """Every path in the tree (the root is ``()``)."""
    out = [path]
    if isinstance(tree, dict):
        for k, v in tree.items():
            out += _nodes(v, (*path, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            out += _nodes(v, (*path, i))
    return out


def _get(tree: Any, path: Path_) -> Any:
    for p in path:
        tree = tree[p]
    return tree


def _typo(key: str, draw: st.DrawFn) -> str:
    how = draw(st.sampled_from(["case", "drop", "double", "plural", "swap", "random"]))
    if how == "case":
        return key.upper() if key != key.upper() else key.lower() + "x"
    if how == "drop" and len(key) > 1:
        i = draw(st.integers(0, len(key) - 1))
        return key[:i] + key[i + 1:]
    if how == "double":
        return key + key[-1]
    if how == "plural":
        return key[:-1] if key.endswith("s") else key + "s"
    if how == "swap" and len(key) > 2:
        return key[1] + key[0] + key[2:]
    return draw(st.text(min_size=1, max_size=10))


def _perturb(value: Any, draw: st.DrawFn) -> Any:
    """A nearby value of the same kind: what a human would get wrong."""
    if isinstance(value, bool):
        return draw(st.sampled_from([not value, str(value).lower(), int(value), None]))
    if isinstance(value, int):
        return draw(st.sampled_from([value + 1, value - 1, -value, value * 2, value + 256, float(value),
                                     str(value), 0]))
    if isinstance(value, float):
        return draw(st.sampled_from([math.nan, math.inf, int(value) if math.isfinite(value) else 0, str(value)]))
    if isinstance(value, str):
        try:
            net = ipaddress.ip_network(value, strict=False)
        except ValueError:
            net = None
        if net is not None and "/" in value:
            base = str(net.network_address)
            return draw(st.sampled_from([
                f"{base}/{min(net.prefixlen + 1, 32)}", f"{base}/{max(net.prefixlen - 8, 0)}", f"{base}/33",
                f"{str(net.network_address + 1)}/{net.prefixlen}", "172.16.0.0/12", "fd00:10::/64",
                base, value.replace("172.", "10.", 1),
            ]))
        if net is not None and net.version == 4 and value.count(".") == 3:  # an address (a VIP)
            octets = value.split(".")
            return draw(st.sampled_from([
                ".".join(octets[:3] + ["256"]), ".".join(octets[:3]), value + "/32", "172.16.1.10", "fd00::100",
                ".".join(octets[:3] + [str((int(octets[3]) + 1) % 256)]),
            ]))
        return draw(st.sampled_from([
            value.upper(), value + " ", value + "\n", value[:-1], value + "-", "-" + value, value.replace("-", "_"),
            value * 3, "", value[:8],
        ]))
    return value


def mutate(raw: dict[str, Any], draw: st.DrawFn) -> None:
    """Apply one random mutation to ``raw`` in place."""
    kind = draw(st.sampled_from([
        "delete", "retype", "null", "duplicate", "swap", "unknown-key", "perturb", "perturb", "sibling", "owned",
        "typo-key",
    ]))
    paths = _nodes(raw)
    if kind == "owned":
        owned = [k.path for k in owned_keys("ipMasqAgent")]
        target = draw(st.sampled_from(owned))
        cut = draw(st.integers(1, len(target)))  # the owned path, or a parent replaced by a value
        holders: list[dict] = [raw.setdefault("cilium", {})] if isinstance(raw.get("cilium", {}), dict) else []
        if isinstance(raw.get("clusters"), list):
            holders += [c for c in raw["clusters"] if isinstance(c, dict)]
        if not holders:
            return
        holder = draw(st.sampled_from(holders))
        node = holder.setdefault("values", {})
        if not isinstance(node, dict):
            return
        for part in target[:cut - 1]:
            nxt = node.get(part)
            if not isinstance(nxt, dict):
                nxt = node[part] = {}
            node = nxt
        node[target[cut - 1]] = draw(JSON_SCALARS)
        return
    if kind == "sibling":
        clusters = raw.get("clusters")
        if not isinstance(clusters, list) or len(clusters) < 2:
            return
        i, j = draw(st.integers(0, len(clusters) - 1)), draw(st.integers(0, len(clusters) - 1))
        a, b = clusters[i], clusters[j]
        if i == j or not isinstance(a, dict) or not isinstance(b, dict):
            return
        # A copied-and-half-edited entry: one field equal to a sibling's (name, id, VIP, CIDRs, ...).
        field = draw(st.sampled_from(["name", "id", "context", "podCidrs", "values", "apiserver",
                                      *(f"apiserver.{k}" for k in APISERVER_KEYS)]))
        *outer, k = field.split(".")
        if outer:
            a, b = a.get("apiserver"), b.get("apiserver")
        if isinstance(a, dict) and isinstance(b, dict) and k in a:
            b[k] = copy.deepcopy(a[k])
        return
    path = draw(st.sampled_from(paths))
    node = _get(raw, path)
    if kind in ("delete", "retype", "null", "perturb") and path:
        parent, last = _get(raw, path[:-1]), path[-1]
        if kind == "delete":
            del parent[last]
        elif kind == "null":  # `key:` with nothing after it in YAML
            parent[last] = None
        elif kind == "retype":
            parent[last] = draw(JSON_VALUES)
        else:
            parent[last] = _perturb(node, draw)
    elif kind == "duplicate" and isinstance(node, list) and node:
        i = draw(st.integers(0, len(node) - 1))
        node.insert(draw(st.integers(0, len(node))), copy.deepcopy(node[i]))
    elif kind == "swap" and isinstance(node, (list, dict)) and len(node) >= 2:
        ks = list(range(len(node))) if isinstance(node, list) else list(node)
        a, b = draw(st.sampled_from(ks)), draw(st.sampled_from(ks))
        node[a], node[b] = node[b], node[a]
    elif kind == "unknown-key" and isinstance(node, dict):
        key = draw(st.one_of(st.sampled_from(KNOWN_KEYS).map(lambda k: k + "s"), st.text(min_size=1, max_size=10)))
        node[key] = draw(JSON_VALUES)
    elif kind == "typo-key" and isinstance(node, dict) and node:
        key = draw(st.sampled_from(sorted(node)))
        node[_typo(key, draw)] = node.pop(key)


@st.composite
def broken_stacks(draw: st.DrawFn, min_mutations: int = 1, max_mutations: int = 4) -> tuple[dict[str, Any], list[str]]:
    """A valid stack with a few mutations (some may happen to leave it valid), and rarely a secret key."""
    raw = draw(valid_stacks())
    for _ in range(draw(st.integers(min_mutations, max_mutations))):
        mutate(raw, draw)
    secret_keys = draw(st.lists(st.sampled_from(sorted(raw) or ["clusters"]), max_size=1, unique=True)) \
        if draw(st.integers(0, 9)) == 0 else []
    return raw, secret_keys


# ----------------------------------------------------------------------------- properties


def check_settings(s: Settings, raw: dict[str, Any]) -> None:
    """What accepted settings always satisfy."""
    assert len(s.clusters) == len(raw["clusters"])
    names = [c.name for c in s.clusters]
    assert len(set(names)) == len(names)
    assert len({c.id for c in s.clusters}) == len(names)
    assert len({c.context for c in s.clusters}) == len(names)
    assert all(1 <= c.id <= s.max_connected_clusters for c in s.clusters)
    assert s.max_connected_clusters in (255, 511)
    for c in s.clusters:
        assert isinstance(c.name, str) and isinstance(c.region, str) and c.pod_cidrs
        assert (c.apiserver.vip is None) == c.apiserver.create_clb
        for peer in s.peers[c.name]:
            assert peer != c.name and c.name in s.peers[peer]
        if len(s.clusters) > 1:
            assert s.peers[c.name], f"{c.name} has no peer"
    nets = [n for c in s.clusters for n in c.pod_cidrs]
    assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:])


def check_refusal(err: MeshConfigError) -> None:
    assert err.issues
    for issue in err.issues:
        assert isinstance(issue.key, str) and issue.key.startswith("mesh:"), issue
        assert isinstance(issue.message, str) and issue.message.strip(), issue
        assert "\n" not in issue.key and "\n" not in issue.message and "\r" not in issue.message, issue
    assert all(line.startswith("error: mesh:") for line in err.lines())


@settings(max_examples=examples(VALID_EXAMPLES))
@given(valid_stacks())
def test_generated_stacks_are_valid(raw: dict[str, Any]) -> None:
    """The starting points of the mutations are themselves valid (else the fuzzing proves little)."""
    check_settings(parse_settings(copy.deepcopy(raw)), raw)


@settings(max_examples=examples(PARSE_EXAMPLES))
@given(broken_stacks())
def test_parse_settings_accepts_or_refuses_cleanly(case: tuple[dict[str, Any], list[str]]) -> None:
    """Any mutated stack: Settings, or MeshConfigError with mesh: keys and one-line messages; nothing else."""
    raw, secret_keys = case
    before = json.dumps(raw, sort_keys=True, default=str)
    try:
        s = parse_settings(raw, secret_keys)
    except MeshConfigError as err:
        event("refused")
        check_refusal(err)
    else:
        event("accepted")
        assert not secret_keys
        check_settings(s, raw)
    assert json.dumps(raw, sort_keys=True, default=str) == before, "parse_settings changed its input"


def check_release_values(rec: Recording) -> None:
    """Every release has the program's values: its identity, the CA, peers that exist, the mesh size."""
    releases = [r for r in rec.resources.values() if r.type == RELEASE]
    assert releases
    clusters = scrub(rec.outputs)["clusters"]
    assert len(releases) == len(clusters)
    max_connected = scrub(rec.outputs)["maxConnectedClusters"]
    seen = set()
    for r in releases:
        v = release_values(r)
        name = v["cluster"]["name"]
        seen.add(name)
        assert r.inputs["version"].startswith("1.18.") and r.inputs["namespace"] == "kube-system"
        assert v["cluster"]["id"] == clusters[name]["id"]
        assert 1 <= v["cluster"]["id"] <= max_connected == v["clustermesh"]["maxConnectedClusters"]
        assert v["tls"]["ca"]["key"] == "[secret]" and v["tls"]["ca"]["cert"]
        assert v["rollOutCiliumPods"] is False and v["clustermesh"]["useAPIServer"] is True
        assert v["clustermesh"]["apiserver"]["tls"]["auto"] == {"enabled": True, "method": "helm"}
        peers = v["clustermesh"]["config"]["clusters"]
        assert v["clustermesh"]["config"]["enabled"] is True
        assert [p["name"] for p in peers] == clusters[name]["peers"]
        assert all(p["name"] != name and p["name"] in clusters and p["address"] and p["port"] for p in peers)
    assert seen == set(clusters)


def _contexts(raw: dict[str, Any]) -> list[str]:
    """The contexts the stack names, for a kubeconfig that has them all (leniently)."""
    clusters = raw.get("clusters")
    entries = [c for c in clusters if isinstance(c, dict)] if isinstance(clusters, list) else []
    names = [c.get("context", c.get("name")) for c in entries]
    return sorted({n for n in names if isinstance(n, str) and n})


@settings(max_examples=examples(PROGRAM_EXAMPLES))
@given(broken_stacks(min_mutations=0, max_mutations=2))
def test_program_completes_or_registers_nothing(case: tuple[dict[str, Any], list[str]]) -> None:
    """The real program: a whole mesh with sane release values, or InvalidConfig and no resource."""
    raw, secret_keys = case
    recording = Recording(project="tke-cilium-mesh", stack="test")
    with tempfile.TemporaryDirectory(prefix="mesh-fuzz-") as tmp:
        try:
            run(raw, Path(tmp), contexts=_contexts(raw), secret_keys=[f"mesh:{k}" for k in secret_keys],
                recording=recording)
        except InvalidConfig as err:
            event("refused")
            assert recording.resources == {}
            assert err.issues and all(i.key.startswith("mesh:") and i.message for i in err.issues)
            return
    event("completed")
    check_release_values(recording)
