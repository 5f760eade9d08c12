"""What this consumer reads from a tke-cilium-mesh stack, and checks it finds.

The mesh stack's outputs are a documented contract (its README, "Stack outputs");
``REQUIRED`` lists the output paths used here, so a test can hold both sides to it.
No Pulumi import: this is plain data checking.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

REQUIRED = ("clusters", "clusters.<name>", "clusters.<name>.context", "clusters.<name>.id",
            "clusters.<name>.peers")


def check_clusters(clusters: Mapping[str, Any], wanted: Sequence[str]) -> dict[str, Any]:
    """The mesh's cluster map, refusing a drift between this stack's list and the mesh."""
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
        for key in ("context", "id", "peers"):
            if key not in entry:
                problems.append(f"mesh output clusters.{name} has no '{key}'")
    if problems:
        raise ValueError("consumer:clusters does not match the mesh stack: " + "; ".join(problems))
    return dict(clusters)


def global_service_annotations(shared: bool) -> dict[str, str]:
    """Cilium's global-service annotations: load-balance across the mesh; share local endpoints or not."""
    return {"service.cilium.io/global": "true", "service.cilium.io/shared": "true" if shared else "false"}
