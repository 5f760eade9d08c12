"""Where a cluster's clustermesh-apiserver is reached: an internal CLB VIP and port.

The address must be known before any release is rendered, so that every cluster's
peer list is complete in one ``pulumi up``. Either the stack names the VIP (the
Service asks TKE for it with ``service.extensiveParameters``), or this component
creates the internal CLB in the configured subnet and the Service is attached to it
with ``service.kubernetes.io/tke-existed-lbid``; its VIP is then an output of the CLB,
known to Pulumi before the releases that need it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from tencentcloud_iac_pulumi import clb  # only the submodule used: the SDK's dlc module is broken

from meshcore.config import ApiserverSettings
from meshcore.stackoutputs import configured_mesh_address, mesh_address

TYPE_TOKEN = "mesh:cilium:ApiserverEndpoint"


@dataclass(frozen=True, kw_only=True)
class ApiserverEndpointArgs:
    cluster_name: str
    apiserver: ApiserverSettings
    tencent_provider: pulumi.ProviderResource | None = None
    """The Tencent provider of the cluster's region; needed with createClb only."""


class ApiserverEndpoint(pulumi.ComponentResource):
    """The mesh address of one cluster."""

    address: pulumi.Input[str]
    """The VIP peers connect to: a plain string in vip mode, the CLB's output otherwise."""
    address_with_port: pulumi.Input[str]
    """``address:port``."""
    port: int
    existing_lb_id: pulumi.Output[str] | None
    """The created CLB's ID (createClb mode) or None."""

    def __init__(self, name: str, args: ApiserverEndpointArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        api = args.apiserver
        self.port = api.port
        if api.create_clb:
            if args.tencent_provider is None:
                raise ValueError(f"{name}: createClb needs the Tencent provider of the cluster's region")
            lb = clb.Instance(
                f"{name}-clb",
                clb_name=f"{args.cluster_name}-clustermesh-apiserver",
                network_type="INTERNAL",
                vpc_id=api.vpc_id,
                subnet_id=api.subnet_id,
                tags={"tke-cilium-mesh/cluster": args.cluster_name, "tke-cilium-mesh/role": "clustermesh-apiserver"},
                opts=pulumi.ResourceOptions(parent=self, provider=args.tencent_provider),
            )
            self.existing_lb_id = lb.id
            self.address = lb.clb_vips.apply(_first_vip)
        else:
            self.existing_lb_id = None
            # A plain value, not an Output: a full mesh puts every address into N-1
            # releases, and plain leaves cost nothing to serialise.
            self.address = str(api.vip)
        configured = configured_mesh_address(api)
        port = self.port
        self.address_with_port = (
            configured if configured is not None
            else pulumi.Output.from_input(self.address).apply(lambda host: mesh_address(host, port))
        )
        self.register_outputs({"address": self.address, "port": self.port})


def _first_vip(vips: list[str] | None) -> str:
    if not vips:
        raise ValueError("the internal CLB reported no VIP")
    return vips[0]
