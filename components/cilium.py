"""One cluster's Cilium release: the chart with the mesh values.

The Helm release is named ``cilium`` in ``kube-system`` (what the ``cilium`` CLI
expects, so ``cilium clustermesh status`` works). Its values are computed by
``meshcore.values.cluster_values``; this component only wires the CA, the endpoint
and the peer entries in as Outputs. Because the release gets the full values on every
update, a peer list changed by hand (``cilium clustermesh connect``) is put back by the
next ``pulumi up``: the stack is the one owner of the mesh.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.ca import ProvidedCa, SharedCa
from components.endpoint import ApiserverEndpoint
from meshcore.config import CiliumSettings, ClusterSettings
from meshcore.effects import NAMESPACE
from meshcore.values import cluster_values, split_mesh_lists

TYPE_TOKEN = "mesh:cilium:CiliumRelease"
RELEASE_NAME = "cilium"


@dataclass(frozen=True, kw_only=True)
class CiliumReleaseArgs:
    cluster: ClusterSettings
    cilium: CiliumSettings
    """``mesh:cilium`` as this cluster installs it (``Settings.cilium_of``: its own version during an upgrade)."""
    max_connected_clusters: int
    hubble_relay: bool
    ca: SharedCa | ProvidedCa
    """The signing CA."""
    ca_bundle: pulumi.Input[str] | None
    """PEM of every trusted CA during a rotation, else None."""
    identity_guard: pulumi.Output[bool]
    """Resolves once the cluster identities are approved; fails the update otherwise."""
    endpoint: ApiserverEndpoint
    peers: Sequence[dict[str, Any]]
    """The peer entries, in the order the release lists them."""
    non_masquerade_cidrs: Sequence[str] | None
    provider: k8s.Provider
    k8s_service_host: pulumi.Input[str] | None = None
    """Created clusters: the apiserver address read from the cluster; else None (values decide)."""
    k8s_service_port: int | None = None
    depends_on: Sequence[pulumi.Resource] = ()
    """What must exist in the cluster before Cilium (created clusters: TKE DaemonSets disabled, ...)."""
    skip_await: bool = False
    """Do not wait for Cilium's pods to be ready (a created cluster has no node yet)."""
    policy_default_local_cluster: bool | None = None
    """``mesh:policyDefaultLocalCluster`` (None: not stated)."""
    upgrade_compatibility: pulumi.Input[str] | None = None
    """The minor the cluster was first installed with (read back from the stack's outputs)."""


class CiliumRelease(pulumi.ComponentResource):
    """The Cilium Helm release of one mesh member."""

    release: k8s.helm.v3.Release
    values: dict[str, Any]
    """The complete values the release is given (Outputs where only the cloud knows: the CA, a CLB's VIP)."""

    def __init__(self, name: str, args: CiliumReleaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        c = args.cluster
        values = cluster_values(
            base=args.cilium.base_values,
            overrides=c.values,
            name=c.name,
            # Waits for the identity guard: no release is sent before the check passed.
            cluster_id=args.identity_guard.apply(lambda _: c.id),
            max_connected_clusters=args.max_connected_clusters,
            hubble_relay=args.hubble_relay,
            ca_cert_b64=args.ca.cert_b64,
            ca_key_b64=args.ca.key_b64,
            subnet_id=c.apiserver.subnet_id,
            own_address=args.endpoint.address,
            vip=args.endpoint.vip,
            existing_lb_id=args.endpoint.existing_lb_id,
            peers=args.peers,
            non_masquerade_cidrs=args.non_masquerade_cidrs,
            ca_bundle=args.ca_bundle,
            k8s_service_host=args.k8s_service_host,
            k8s_service_port=args.k8s_service_port,
            chart_version=args.cilium.version,
            policy_default_local_cluster=args.policy_default_local_cluster,
            upgrade_compatibility=args.upgrade_compatibility,
        )
        # The peer list (and the non-masquerade CIDRs) grow with the mesh: as plain data
        # they go to a values file, which the provider merges back into `values` (see
        # split_mesh_lists). Peers behind a CLB created in this run stay in `values`.
        value_files = None
        self.values = values
        split = split_mesh_lists(values)
        if split is not None:
            values, lists_text = split
            value_files = [pulumi.StringAsset(lists_text)]
        cilium = args.cilium
        self.release = k8s.helm.v3.Release(
            name,
            name=RELEASE_NAME,
            namespace=NAMESPACE,
            # A local chart or an oci:// reference is read as it is; else chart "cilium" of the repository.
            chart=cilium.chart or "cilium",
            version=cilium.version,
            repository_opts=None if cilium.chart else k8s.helm.v3.RepositoryOptsArgs(repo=cilium.repository),
            values=values,
            value_yaml_files=value_files,
            skip_await=(args.skip_await or cilium.skip_await) or None,
            # No ignore_changes for the chart's per-render certificates: the provider's Check (4.25.0)
            # loads the chart and records its version, it does not render it or store a checksum
            # (`checksum` and `resourceNames` are deprecated inputs it drops), so an unchanged stack
            # previews no change even though the 1.18 `helm` TLS method mints new certificates on every
            # render (observed: tests/e2e, scenario 3, with a chart that does the same).
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider,
                                        depends_on=list(args.depends_on) or None),
        )
        self.register_outputs({"status": self.release.status})
