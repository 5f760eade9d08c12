"""A TKE cluster of the mesh, as the rest of the program needs it: a Kubernetes provider.

Today's clusters already exist and are reached through a kubeconfig context named
after their TKE cluster ID; the caller reads that context and passes it as a secret.
This is the seam for clusters the program creates or adopts through the TKE API: they
yield the same ``provider`` (and, later, what the release needs, such as
``k8sServiceHost``), so nothing downstream changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

TYPE_TOKEN = "mesh:tke:Cluster"


@dataclass(frozen=True, kw_only=True)
class ClusterArgs:
    cluster_name: str
    """TKE cluster ID, also the Cilium cluster name."""
    region: str
    kubeconfig: pulumi.Input[str]
    """A kubeconfig holding this cluster's context only; secret."""
    context: str


class Cluster(pulumi.ComponentResource):
    """One mesh member's cluster and the provider that talks to it."""

    provider: k8s.Provider
    """The Kubernetes provider for this cluster (the default provider is never used)."""
    region: str
    context: str

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=pulumi.Output.secret(args.kubeconfig),
            context=args.context,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.region = args.region
        self.context = args.context
        self.register_outputs({"region": self.region, "context": self.context})
