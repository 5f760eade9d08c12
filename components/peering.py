"""A cluster's peer connections, as a node of its own in the graph.

Cilium has no object for a connection: it is one entry in each side's
``clustermesh.config.clusters``. Each cluster gets one ``MeshPeers`` node whose inputs
are its connections, ``{peer name: "address:port"}``. ``pulumi preview`` shows that node
created, deleted, or updated with exactly the connections that appear, disappear or
move (``+ peers.cls-d``), next to the release diff that carries them.

One node per *cluster*, not per pair: a full mesh of N clusters has N·(N−1)/2 pairs,
and per-pair nodes would make the graph grow quadratically (130,305 nodes for 511
clusters), while the peer data itself is the only part that has to. Each connection
therefore shows on both of its ends, which is also what changes in the clusters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from components import tokens
from components.endpoint import ApiserverEndpoint

TYPE_TOKEN = tokens.MESH_PEERS


@dataclass(frozen=True, kw_only=True)
class MeshPeersArgs:
    cluster: str
    peers: Sequence[str]
    """Peer names, in the order the release lists them."""
    endpoints: Mapping[str, ApiserverEndpoint]
    """Every cluster's endpoint, by name."""
    entries: Mapping[str, dict[str, Any]]
    """Every cluster's peer entry (``peer_entry``), by name: one object per cluster, shared
    by the N−1 peer lists it appears in (a full mesh of 511 would otherwise allocate 260,610)."""


class MeshPeers(pulumi.ComponentResource):
    """The connections of one cluster to its peers."""

    entries: list[dict[str, Any]]
    """The ``clustermesh.config.clusters`` entries of this cluster's release."""

    def __init__(self, name: str, args: MeshPeersArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        peers = {p: args.endpoints[p].address_with_port for p in args.peers}
        # The connections are the component's inputs, so a preview diffs them. They are
        # not secret (component inputs are stored in the state).
        super().__init__(TYPE_TOKEN, name, {"cluster": args.cluster, "peers": peers}, opts)
        # Mappings with an Output leaf: while a created CLB's VIP is unknown, a preview
        # still shows the peer's name and port.
        self.entries = [args.entries[p] for p in args.peers]
        # The peers are already the node's inputs; registering them again as outputs
        # would store every address twice.
        self.register_outputs({"count": len(self.entries)})
