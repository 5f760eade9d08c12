"""One cluster's Cilium release: the chart with the mesh values.

The Helm release is named ``cilium`` in ``kube-system`` (what the ``cilium`` CLI
expects, so ``cilium clustermesh status`` works). Its values are computed by
``meshcore.chart.values.cluster_values`` from its ``meshcore.chart.owned.Inputs``
(``meshcore.mesh.release.release_inputs``, where the program wires the CA, the endpoint and the peer entries in
as Outputs). Because the release gets the full values on every update, a peer list changed by hand (``cilium clustermesh
connect``) is put back by the next ``pulumi up``: the stack is the one owner of the mesh.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from meshcore.chart.effects import NAMESPACE
from meshcore.chart.owned import Inputs
from meshcore.chart.values import cluster_values, split_mesh_lists
from meshcore.config.model import CiliumSettings

TYPE_TOKEN = "mesh:cilium:CiliumRelease"
RELEASE_NAME = "cilium"


@dataclass(frozen=True, kw_only=True)
class CiliumReleaseArgs:
    inputs: Inputs
    """What its values are made of (``meshcore.mesh.release.release_inputs``; Outputs where only the cloud knows)."""
    cilium: CiliumSettings
    """``mesh:cilium`` as this cluster installs it (``Settings.cilium_of``: its own version during an upgrade)."""
    provider: k8s.Provider
    depends_on: Sequence[pulumi.Resource] = ()
    """What must exist in the cluster before Cilium (created clusters: TKE DaemonSets disabled, ...)."""
    skip_await: bool = False
    """Do not wait for Cilium's pods to be ready (a created cluster has no node yet)."""
    adopted: bool = False
    """The cluster runs the release already (``mesh:clusters[i].adopted``): the first update imports it."""


class CiliumRelease(pulumi.ComponentResource):
    """The Cilium Helm release of one mesh member."""

    release: k8s.helm.v3.Release
    values: dict[str, Any]
    """The complete values the release is given (Outputs where only the cloud knows: the CA, a CLB's VIP)."""

    def __init__(self, name: str, args: CiliumReleaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        values = cluster_values(args.inputs)
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
            # An adopted cluster's release runs already: the first update imports it (then upgrades it to these
            # values: its next revision, history kept), never a second `helm install`; later ones find it in the
            # state under the same id, which the engine does not import again.
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider,
                                        depends_on=list(args.depends_on) or None,
                                        import_=f"{NAMESPACE}/{RELEASE_NAME}" if args.adopted else None),
        )
        self.register_outputs({"status": self.release.status})
