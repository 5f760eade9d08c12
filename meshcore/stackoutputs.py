"""The stack outputs record, one place for its keys: the program writes it, the next run's guards, the doctor
and the plan diff read it back (README, "Stack outputs").

``clusters.<name>`` holds ``id``, ``region``, ``context``, ``meshAddress`` (``host:port``, ``mesh_address``),
``peers``, ``certificates`` and ``cilium`` (``{version, firstInstalled}``). What a last update left is read as
``ClusterRecord``\\ s (``read_clusters``), where a value of another shape than the program writes is None. No
Pulumi import: the writer takes opaque leaves (Pulumi Outputs in the program).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meshcore.config import ApiserverSettings

CLUSTERS = "clusters"
MAX_CONNECTED_CLUSTERS = "maxConnectedClusters"
KUBECONFIGS = "kubeconfigs"
CA_CERTIFICATE_PEM = "caCertificatePem"
CA_EXPIRES_AT = "caExpiresAt"


def mesh_address(host: str, port: int) -> str:
    """A cluster's mesh address as the stack records it and peers dial it: ``host:port``."""
    return f"{host}:{port}"


def configured_mesh_address(apiserver: ApiserverSettings) -> str | None:
    """The mesh address of a cluster whose VIP the config names (vip mode), else None (a created CLB's VIP is
    known only once the CLB exists)."""
    return mesh_address(str(apiserver.vip), apiserver.port) \
        if apiserver.vip is not None and not apiserver.create_clb else None


def cluster_entry(*, cluster_id: Any, region: str, context: str | None, address: Any, peers: Sequence[str],
                  certificates: Any, cilium: Any) -> dict[str, Any]:
    """One cluster's ``clusters.<name>`` entry (leaves may be Pulumi Outputs)."""
    return {
        "id": cluster_id,
        "region": region,
        # "" for clusters reached without a kubeconfig context (tkeApi, create).
        "context": context or "",
        "meshAddress": address,
        "peers": list(peers),
        "certificates": certificates,
        # What the next run reads back: the chart version deployed, the minor first installed.
        "cilium": cilium,
    }


@dataclass(frozen=True)
class ClusterRecord:
    """One cluster as a stack's outputs record it."""

    name: str
    id: Any
    """As recorded (a number; None when absent)."""
    context: str | None
    """Its kubeconfig context ("" when reached without one); None when absent."""
    mesh_address: str | None
    """``host:port``; None when absent or not of that form."""
    region: str | None
    cilium: Mapping[str, Any] | None
    """The chart record ``{version, firstInstalled}``; None before the program recorded it."""
    certificates: Mapping[str, Any] | None

    @property
    def host(self) -> str | None:
        """The host of the mesh address (the VIP)."""
        return self.mesh_address.rsplit(":", 1)[0] if self.mesh_address is not None else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _mapping(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def read_cluster(name: str, raw: Any) -> ClusterRecord | None:
    """``clusters.<name>`` as a record; None when it is not a mapping."""
    if not isinstance(raw, Mapping):
        return None
    address = raw.get("meshAddress")
    return ClusterRecord(name, raw.get("id"), _str(raw.get("context")),
                         address if isinstance(address, str) and ":" in address else None, _str(raw.get("region")),
                         _mapping(raw.get("cilium")), _mapping(raw.get("certificates")))


def read_clusters(clusters: Any) -> dict[str, ClusterRecord]:
    """The ``clusters`` output as records (empty when there is none: a new stack)."""
    if not isinstance(clusters, Mapping):
        return {}
    return {name: r for name, raw in clusters.items() if (r := read_cluster(str(name), raw)) is not None}
