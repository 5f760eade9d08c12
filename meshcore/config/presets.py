"""Named Helm value presets (``mesh:cilium.preset``), merged *under* every other value.

A preset is a documented, reviewed set of install values for one kind of cluster. The
order of the values a release receives is: chart defaults < preset < ``mesh:cilium.values``
< the cluster's ``values`` < program-owned keys. So a stack can take a preset and still
override any of its values (except those the program owns, which it sets anyway).

``tke-vpc-cni``: the TKE Cilium guide's install values for VPC-CNI clusters in native
routing with ``generic-veth`` chaining, as the guide gave them for Cilium 1.18
(imroc/tke-guide, networking/cilium/install.md, "Native Routing (VPC-CNI)"; see
``../shared/docs/peers-and-tke.md`` section 3.1). Every path exists in the Cilium 1.18.3
chart's ``values.yaml`` and validates against its ``values.schema.json`` (tested).
What it does not hold: ``k8sServiceHost`` (each cluster's own 169.254.x.x apiserver
endpoint: a cluster's ``values`` for existing clusters, read from the cluster for
created ones) and the ``cni-config`` ConfigMap itself (created by the program for
created clusters; for existing clusters it is the guide's manual step).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

_MIRROR = "quay.tencentcloudcr.com/cilium"

TKE_VPC_CNI: dict[str, Any] = {
    # Native routing: pods use VPC IPs from TKE's ENI IPAM; Cilium only chains.
    "routingMode": "native",
    "endpointRoutes": {"enabled": True},
    "ipam": {"mode": "delegated-plugin"},
    # VPC-CNI pods have VPC addresses: no SNAT (mesh:masquerade.mode: ipMasqAgent overrides it).
    "enableIPv4Masquerade": False,
    # Every ENI (eth0, eth1, ...) carries pod traffic.
    "devices": "eth+",
    "cni": {
        "chainingMode": "generic-veth",
        "customConf": True,
        # The ConfigMap that chains tke-route-eni and cilium-cni (see components/cluster.py).
        "configMap": "cni-config",
        "externalRouting": True,
    },
    # Cilium allocates no pod IP, so it is told the cilium_host address.
    "extraConfig": {"local-router-ipv4": "169.254.32.16"},
    "localRedirectPolicies": {"enabled": True},
    # sysctlfix would reset eth0's rp_filter.
    "sysctlfix": {"enabled": False},
    "kubeProxyReplacement": "true",
    # TKE's apiserver endpoint port behind the 169.254.x.x address.
    "k8sServicePort": 60002,
    "operator": {
        "image": {"repository": f"{_MIRROR}/operator"},
        # The chart's defaults plus TKE's taints of nodes that have no network yet, so the
        # operator can start on a fresh cluster (no circular wait on TKE's own agents).
        "tolerations": [
            {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"},
            {"key": "node-role.kubernetes.io/master", "operator": "Exists"},
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists"},
            {"key": "node.cloudprovider.kubernetes.io/uninitialized", "operator": "Exists"},
            {"key": "tke.cloud.tencent.com/uninitialized", "operator": "Exists"},
            {"key": "tke.cloud.tencent.com/eni-ip-unavailable", "operator": "Exists"},
        ],
    },
    # Image mirrors reachable from inside TKE VPCs.
    "image": {"repository": f"{_MIRROR}/cilium"},
    "envoy": {"image": {"repository": f"{_MIRROR}/cilium-envoy"}},
    "certgen": {"image": {"repository": f"{_MIRROR}/certgen"}},
    "hubble": {
        "relay": {"image": {"repository": f"{_MIRROR}/hubble-relay"}},
        "ui": {
            "backend": {"image": {"repository": f"{_MIRROR}/hubble-ui-backend"}},
            "frontend": {"image": {"repository": f"{_MIRROR}/hubble-ui"}},
        },
    },
    "nodeinit": {"image": {"repository": f"{_MIRROR}/startup-script"}},
    "preflight": {
        "image": {"repository": f"{_MIRROR}/cilium"},
        "envoy": {"image": {"repository": f"{_MIRROR}/cilium-envoy"}},
    },
    "clustermesh": {"apiserver": {"image": {"repository": f"{_MIRROR}/clustermesh-apiserver"}}},
}

PRESETS: Mapping[str, Mapping[str, Any]] = {
    "tke-vpc-cni": TKE_VPC_CNI,
}
"""Preset name -> its Helm values."""


def preset_values(name: str | None) -> dict[str, Any]:
    """A deep copy of a preset's values ({} for None); KeyError for an unknown name."""
    if name is None:
        return {}
    return copy.deepcopy(dict(PRESETS[name]))
