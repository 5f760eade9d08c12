"""What one cluster's Cilium release is made of: ``release_inputs``, the one builder of ``owned.Inputs``.

A cluster's settings become the inputs of its release here, once; the program
(``components.program``, with Pulumi Outputs for what only the cloud knows), the doctor (``meshcore.doctor.checks``,
with ``UNKNOWN``-like leaves) and the tests give the wiring, and ``meshcore.chart.values.cluster_values`` turns the
result into the release's values. No Pulumi import.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from meshcore.chart.owned import Inputs
from meshcore.chart.values import non_masquerade_cidrs
from meshcore.config.clusters import ClusterSettings
from meshcore.config.model import Settings


def mesh_non_masquerade_cidrs(settings: Settings) -> list[str] | None:
    """The non-masquerade CIDRs every release of the mesh lists (``mesh:masquerade.mode: ipMasqAgent``; else None):
    every cluster's pod CIDRs, by cluster id, then the extras. Once per mesh: it grows with N."""
    if settings.masquerade.mode != "ipMasqAgent":
        return None
    return non_masquerade_cidrs(
        [[str(n) for n in c.pod_cidrs] for c in sorted(settings.clusters, key=lambda c: c.id)],
        [str(n) for n in settings.masquerade.extra_non_masquerade_cidrs])


def release_inputs(settings: Settings, c: ClusterSettings, *, masquerade: Sequence[str] | None,
                   ca_cert_b64: Any, ca_key_b64: Any, own_address: Any, existing_lb_id: Any, peers: Sequence[Any],
                   cluster_id: Any = None, ca_bundle: Any = None, k8s_service_host: Any = None,
                   k8s_service_port: Any = None, upgrade_compatibility: Any = None) -> Inputs:
    """The inputs of cluster ``c``'s release: everything the settings say, and the wiring given here.

    ``masquerade`` is ``mesh_non_masquerade_cidrs(settings)`` (computed once for the mesh). The wiring: the signing
    CA's certificate and key, the cluster's own address (its VIP), the created CLB's id (createClb; else None), its
    peers' entries in the order the release lists them, the trust bundle of a generated CA's rotation (else None;
    a brought CA's comes from the settings: ``CaSettings.brought_bundle``), the
    apiserver address read from the cluster (else None: values decide) and the minor it was first installed with
    (None: unknown). ``cluster_id`` None is the configured id (the program's waits for the identity guard)."""
    api = c.apiserver
    return Inputs(
        name=c.name,
        cluster_id=c.id if cluster_id is None else cluster_id,
        max_connected_clusters=settings.max_connected_clusters,
        hubble_relay=settings.hubble_relay,
        ca_cert_b64=ca_cert_b64,
        ca_key_b64=ca_key_b64,
        subnet_id=api.subnet_id,
        own_address=own_address,
        vip=str(api.vip) if api.vip is not None and not api.create_clb else None,
        existing_lb_id=existing_lb_id,
        peers=peers,
        non_masquerade_cidrs=masquerade,
        ca_bundle=ca_bundle if ca_bundle is not None else settings.ca.brought_bundle,
        k8s_service_host=k8s_service_host,
        k8s_service_port=k8s_service_port,
        chart_version=settings.version_of(c),
        policy_default_local_cluster=settings.policy_default_local_cluster,
        upgrade_compatibility=upgrade_compatibility,
        base=settings.cilium.base_values,
        overrides=c.values,
    )
