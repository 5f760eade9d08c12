"""The Cilium Helm values of one mesh member, and the keys the program owns.

``cluster_values`` is pure: the CA, the cluster's own address and its peers' entries
are passed in as opaque leaves (plain values in tests, Pulumi Outputs in the program),
so the same function serves the program, the offline plan and the tests.

Design choices that matter for running clusters (see ``../shared/docs/cilium-mesh.md``):

- One shared CA as ``tls.ca.cert``/``tls.ca.key`` in every cluster (the chart renders
  ``cilium-ca`` from them, no ``lookup``); the TLS method for the clustermesh-apiserver and
  Hubble is the chart version's (``meshcore.chart.versions``): ``helm`` on 1.18 (``cronJob`` deadlocks
  with Helm's wait there), ``cronJob`` from 1.19 (its certgen reuses ``cilium-ca``).
- Peers are ``{name, address: <CLB VIP>, port}`` (a list on 1.18, a map keyed by name from 1.19:
  ``meshcore.chart.versions.peers_value``) and each cluster's server certificate
  carries its own VIP in ``extraIpAddresses``. With ``address`` the chart renders no
  ``hostAliases``, so adding or removing a peer changes only the data of the
  ``cilium-clustermesh``/``cilium-kvstoremesh`` Secrets: no pod template changes, no restart.
- KVStoreMesh on and ``rollOutCiliumPods: false``, so masquerade CIDR edits (hot-reloaded by
  the agent) never roll agents either.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from meshcore import yamlio
from meshcore.chart import owned
from meshcore.keypaths import Path

# The program-owned keys are one table (meshcore.chart.owned); these names are derived from it.
INTERNAL_SUBNET_ANNOTATION = owned.INTERNAL_SUBNET_ANNOTATION
EXISTING_LB_ANNOTATION = owned.EXISTING_LB_ANNOTATION
EXTENSIVE_PARAMETERS_ANNOTATION = owned.EXTENSIVE_PARAMETERS_ANNOTATION
ANNOTATIONS: Path = owned.ANNOTATIONS

# Value paths that may differ in an existing cluster when a cluster joins or leaves.
PEER_DEPENDENT_PATHS: tuple[Path, ...] = (
    ("clustermesh", "config", "clusters"),
    ("ipMasqAgent", "config", "nonMasqueradeCIDRs"),
)


_MISSING = object()


def get_path(tree: Any, path: Path, default: Any = None) -> Any:
    """The value at ``path`` in nested mappings, or ``default`` where the path is not there."""
    for part in path:
        if not isinstance(tree, Mapping) or part not in tree:
            return default
        tree = tree[part]
    return tree


def without_path(tree: Mapping[Any, Any], path: Path) -> dict[Any, Any]:
    """A copy of ``tree`` without the leaf at ``path`` (if there) and the mappings that leaves empty (only the
    mappings on the path are copied)."""
    out = dict(tree)
    head = path[0]
    if head not in out:
        return out
    if len(path) == 1:
        del out[head]
    elif isinstance(out[head], Mapping):
        rest = without_path(out[head], path[1:])
        if rest:
            out[head] = rest
        else:  # a mapping left empty goes too
            del out[head]
    return out


def split_mesh_lists(values: Mapping[str, Any]) -> tuple[dict[str, Any], str] | None:
    """Move the lists that grow with the mesh (``PEER_DEPENDENT_PATHS``) to a values file.

    Returns ``(values without those lists, the file's text)``, or None when a list holds
    anything but plain data (a peer address that is only known after its CLB is created):
    such lists stay in ``values``, where only that leaf is unknown (in a file the whole file
    would be).

    Why: a full mesh of N clusters carries N·(N−1) peer entries, and the Pulumi SDK
    serialises ``values`` node by node (a million nodes at 511 clusters), while a values
    file is one string. The kubernetes provider's ``Check`` reads the file and merges
    ``values`` over it (``valueYamlFiles``: maps merge, lists are replaced); what it
    returns, what ``pulumi preview`` diffs and what the state keeps is the merged
    ``values``, peer by peer, exactly as if the lists had been in ``values``.
    """
    rest = dict(values)
    moved: dict[str, Any] = {}
    for path in PEER_DEPENDENT_PATHS:
        value = get_path(rest, path, _MISSING)
        if value is not _MISSING:
            rest = without_path(rest, path)
            _set(moved, path, value)
    try:
        text = mesh_lists_file(moved)
    except TypeError:  # not JSON data: a leaf is an Output
        return None
    return rest, text


def mesh_lists_file(doc: Mapping[str, Any]) -> str:
    """A values document as a values file: JSON, which YAML reads as the same data (one C
    encoder call, fast for 255,000 entries). Text is written as itself (a \\u escape of a
    character outside the BMP would be a surrogate pair, which PyYAML does not join), but for
    what YAML would not read back as itself: escaped, as in JSON (and in YAML's double quotes).
    Raises TypeError for anything but JSON data."""
    return yamlio.yaml_json(doc, separators=(",", ":"), sort_keys=True) + "\n"


def leaf_paths(values: Mapping[str, Any], prefix: Path = ()) -> Iterator[Path]:
    """Every leaf path of a values document (an empty mapping is no leaf)."""
    for k, v in values.items():
        path = (*prefix, k)
        if isinstance(v, dict) and v:
            yield from leaf_paths(v, path)
        elif not (isinstance(v, dict) and not v):
            yield path


def owned_conflicts(values: Mapping[str, Any], owned: Sequence[Path]) -> list[tuple[Path, Path]]:
    """(user path, owned path) for every user value that sets or replaces an owned one.

    A user path conflicts when it is an owned path, lies below one, or replaces an
    owned path's parent with a non-mapping (``cluster: x``).
    """
    out = []
    for leaf in leaf_paths(values):
        for own in owned:
            n = min(len(leaf), len(own))
            if leaf[:n] == own[:n]:
                out.append((leaf, own))
                break
    return out


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Helm-style merge: mappings merge key by key, anything else replaces."""
    out: dict[str, Any] = copy.deepcopy(dict(base))
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _set(tree: dict[Any, Any], path: Path, value: Any) -> None:
    node = tree
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value


def peer_entry(name: str, address: Any, port: int) -> dict[str, Any]:
    """One ``clustermesh.config.clusters`` entry (1.18 list form; ``meshcore.chart.versions.peers_value`` writes
    the form of the cluster's chart version) for a peer."""
    return {"name": name, "address": address, "port": port}


def cluster_values(inputs: owned.Inputs) -> dict[str, Any]:
    """The complete values one cluster's Cilium release receives.

    ``inputs.base`` (``mesh:cilium.values``) and ``inputs.overrides`` (the cluster's ``values``) are merged first;
    the program-owned keys (``meshcore.chart.owned``, each made of ``inputs``) are set last (validation already refused
    them in user values).
    """
    values = deep_merge(inputs.base, inputs.overrides)
    for path, value in owned.owned_values(inputs):
        _set(values, path, value)
    return values


def pods_take_vpc_addresses(values: Mapping[str, Any]) -> bool:
    """True when a cluster's pods get their IPs from the VPC (TKE VPC-CNI), judged from its
    merged values: ``ipam.mode: delegated-plugin`` (TKE's ENI IPAM hands out VPC addresses,
    Cilium only chains, as the ``tke-vpc-cni`` preset sets it). Its ``podCidrs`` are then ENI
    subnets of the VPC, from which the VPC also allocates CLB VIPs without conflict. Any other
    IPAM (cluster-pool, multi-pool, kubernetes: an overlay or TKE GlobalRouter) hands out pod
    addresses the VPC does not know, so a VIP there would collide with a pod."""
    ipam = values.get("ipam")
    return isinstance(ipam, Mapping) and ipam.get("mode") == "delegated-plugin"


def non_masquerade_cidrs(pod_cidrs_by_cluster: Sequence[Sequence[str]], extras: Sequence[str]) -> list[str]:
    """Every cluster's pod CIDRs (in cluster order) then the extras, without repeats."""
    out: list[str] = []
    for cidr in [c for cidrs in pod_cidrs_by_cluster for c in cidrs] + list(extras):
        if cidr not in out:
            out.append(cidr)
    return out
