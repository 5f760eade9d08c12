"""A peer connection between two clusters, as a node of its own in the graph.

Cilium has no object for a connection: it is one entry in each side's
``clustermesh.config.clusters``. Modelling it as a component gives every connection
a URN (``<a>--<b>``, names sorted), so ``pulumi preview`` lists the connections that
are created, updated (an endpoint moved) or deleted, next to the release diffs that
carry them. Its inputs are the two non-secret endpoints; its outputs are the entries
each side's release puts in its peer list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.endpoint import ApiserverEndpoint
from meshcore.values import peer_entry

TYPE_TOKEN = "mesh:mesh:PeerConnection"


def connection_name(a: str, b: str) -> str:
    """The logical name of the connection between ``a`` and ``b`` (order-free)."""
    x, y = sorted((a, b))
    return f"{x}--{y}"


@dataclass(frozen=True, kw_only=True)
class PeerConnectionArgs:
    a: str
    b: str
    endpoint_a: ApiserverEndpoint
    endpoint_b: ApiserverEndpoint


class PeerConnection(pulumi.ComponentResource):
    """Both directions of one mesh connection."""

    clusters: list[str]
    entries: dict[str, dict[str, Any]]
    """Cluster name -> the entry its release lists for the *other* cluster."""

    def __init__(self, name: str, args: PeerConnectionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        endpoints = {
            args.a: pulumi.Output.concat(args.endpoint_a.address, ":", str(args.endpoint_a.port)),
            args.b: pulumi.Output.concat(args.endpoint_b.address, ":", str(args.endpoint_b.port)),
        }
        # The endpoints are the component's inputs: a moved VIP shows as an update of the
        # connection in a preview. Nothing secret goes here (component inputs are stored).
        super().__init__(TYPE_TOKEN, name, {"clusters": [args.a, args.b], "endpoints": endpoints}, opts)
        self.clusters = [args.a, args.b]
        # Plain mappings with an Output leaf: while a created CLB's VIP is still unknown,
        # a preview still shows the peer's name and port.
        self.entries = {
            args.a: peer_entry(args.b, args.endpoint_b.address, args.endpoint_b.port),
            args.b: peer_entry(args.a, args.endpoint_a.address, args.endpoint_a.port),
        }
        self.register_outputs({"clusters": list(self.clusters), "endpoints": endpoints})

    def entry_for(self, cluster: str) -> dict[str, Any]:
        """The peer entry ``cluster``'s release lists for the other side."""
        return self.entries[cluster]
