"""What this consumer reads from a tke-cilium-mesh stack, and checks it finds.

The mesh stack's outputs are a documented contract (its README, "Stack outputs");
``REQUIRED`` lists the output paths used here, so a test can hold both sides to it.
No Pulumi import: this is plain data checking.

Each cluster is reached through the mesh's ``kubeconfigs`` output (a secret: one minimal
kubeconfig per cluster, whichever way the mesh reaches it: a context, the TKE API, or a
cluster it created), never through ``clusters.<name>.context``: that is ``""`` for clusters
reached without a context, and a provider given an empty context uses the current context of
whatever kubeconfig the machine has, so every cluster's resources would land in one cluster.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

REQUIRED = ("clusters", "clusters.<name>", "clusters.<name>.id", "clusters.<name>.peers", "kubeconfigs",
            "kubeconfigs.<name>")


def check_clusters(clusters: Mapping[str, Any], wanted: Sequence[str], reachable: Collection[str]) -> dict[str, Any]:
    """The mesh's cluster map, refusing a drift between this stack's list and the mesh, and a wanted
    cluster the mesh gives no kubeconfig for (``reachable``: the keys of its ``kubeconfigs`` output)."""
    mesh = set(clusters)
    missing = [c for c in wanted if c not in mesh]
    extra = sorted(mesh - set(wanted))
    problems = []
    if missing:
        problems.append(f"not in the mesh: {', '.join(missing)}")
    if extra:
        problems.append(f"in the mesh but not in consumer:clusters: {', '.join(extra)} (add them, so the "
                        "Service is global everywhere)")
    for name in wanted:
        entry = clusters.get(name) or {}
        for key in ("id", "peers"):
            if key not in entry:
                problems.append(f"mesh output clusters.{name} has no '{key}'")
        if name in mesh and name not in reachable:
            problems.append(f"mesh output kubeconfigs has no kubeconfig for {name} (a mesh stack deployed before "
                            "that output: run pulumi up on it)")
    if problems:
        raise ValueError("consumer:clusters does not match the mesh stack: " + "; ".join(problems))
    return dict(clusters)


def kubeconfig_of(kubeconfigs: Mapping[str, Any], name: str) -> str:
    """Cluster ``name``'s kubeconfig from the mesh's ``kubeconfigs`` output (a secret: call this inside an
    ``apply`` of the secret Output, never print the result). Refuses an empty one: a provider without a
    kubeconfig would use the machine's current context, that is another cluster."""
    text = kubeconfigs.get(name)
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"mesh output kubeconfigs.{name} is empty: the consumer would reach the machine's current "
                         "context instead of that cluster")
    return text


def global_service_annotations(shared: bool) -> dict[str, str]:
    """Cilium's global-service annotations: load-balance across the mesh; share local endpoints or not."""
    return {"service.cilium.io/global": "true", "service.cilium.io/shared": "true" if shared else "false"}
