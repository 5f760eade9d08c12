"""One cluster's release inputs from its settings (meshcore/release.py): what the settings say is taken from them,
the wiring as given."""

from __future__ import annotations

from typing import Any

from meshcore import release
from meshcore.config_parse import parse_settings
from meshcore.values import cluster_values
from tests.conftest import cluster_entry, mesh_config

WIRING: dict[str, Any] = dict(ca_cert_b64="CERT", ca_key_b64="KEY", own_address="10.0.9.9", existing_lb_id=None,
                              peers=[])


def test_the_settings_make_the_inputs() -> None:
    raw = mesh_config(3, masquerade={"mode": "ipMasqAgent", "extraNonMasqueradeCidrs": ["10.0.0.0/8"]},
                      policyDefaultLocalCluster=False, hubbleRelay=False, maxConnectedClusters=511,
                      cilium={"version": "1.18.12", "values": {"hubble": {"ui": {"enabled": True}}}})
    raw["clusters"][0]["id"] = 9  # the non-masquerade CIDRs follow the cluster ids, not the entries' order
    raw["clusters"][1]["cilium"] = {"version": "1.19.6"}
    raw["clusters"][2] = cluster_entry(3, create_clb=True)
    raw["clusters"][2]["values"] = {"operator": {"replicas": 1}}
    settings = parse_settings(raw)
    masquerade = release.mesh_non_masquerade_cidrs(settings)
    assert masquerade == ["172.16.2.0/24", "172.16.3.0/24", "172.16.1.0/24", "10.0.0.0/8"]
    first, second, third = (release.release_inputs(settings, c, masquerade=masquerade, **WIRING)
                            for c in settings.clusters)
    assert (first.name, first.cluster_id, first.subnet_id, first.vip) == ("cls-00000001", 9, "subnet-00000001",
                                                                          "10.0.1.100")
    assert (first.max_connected_clusters, first.hubble_relay, first.policy_default_local_cluster) == (511, False, False)
    assert [i.chart_version for i in (first, second, third)] == ["1.18.12", "1.19.6", "1.18.12"]
    assert third.vip is None, "createClb: the Service is attached to the created CLB, no VIP is asked for"
    assert first.non_masquerade_cidrs is masquerade
    values = cluster_values(third)
    assert values["hubble"]["ui"] == {"enabled": True} and values["operator"] == {"replicas": 1}
    assert values["ipMasqAgent"]["config"]["nonMasqueradeCIDRs"] == masquerade
    assert values["clustermesh"]["policyDefaultLocalCluster"] is False


def test_the_wiring_is_taken_as_given() -> None:
    settings = parse_settings(mesh_config(2))
    assert release.mesh_non_masquerade_cidrs(settings) is None
    c = settings.clusters[0]
    guarded = object()
    i = release.release_inputs(settings, c, masquerade=None, cluster_id=guarded, ca_bundle="PEM",
                               k8s_service_host="169.254.0.1", k8s_service_port=60002, upgrade_compatibility="1.18",
                               **{**WIRING, "existing_lb_id": "lb-1"})
    assert (i.cluster_id, i.ca_bundle, i.k8s_service_host, i.k8s_service_port, i.upgrade_compatibility,
            i.existing_lb_id, i.own_address) == (guarded, "PEM", "169.254.0.1", 60002, "1.18", "lb-1", "10.0.9.9")
    assert release.release_inputs(settings, c, masquerade=None, **WIRING).cluster_id == c.id
