"""The stack-outputs record (meshcore/stackoutputs.py): what the program writes is what the readers get back."""

from __future__ import annotations

from meshcore import stackoutputs as so
from meshcore.config_parse import parse_settings
from tests.conftest import cluster_entry, mesh_config


def test_an_entry_reads_back_as_written() -> None:
    entry = so.cluster_entry(cluster_id=3, region="ap-guangzhou", context=None, address="10.0.3.100:2379",
                             peers=("cls-a", "cls-b"), certificates={"revision": 2},
                             cilium={"version": "1.19.6", "firstInstalled": "1.18"})
    assert entry["context"] == "" and entry["peers"] == ["cls-a", "cls-b"]
    r = so.read_clusters({"cls-c": entry, "junk": "not a mapping"})
    assert list(r) == ["cls-c"]
    assert (r["cls-c"].id, r["cls-c"].context, r["cls-c"].mesh_address, r["cls-c"].host, r["cls-c"].region) == (
        3, "", "10.0.3.100:2379", "10.0.3.100", "ap-guangzhou")
    assert r["cls-c"].cilium == {"version": "1.19.6", "firstInstalled": "1.18"}
    assert r["cls-c"].certificates == {"revision": 2}


def test_values_of_another_shape_read_as_absent() -> None:
    r = so.read_cluster("cls-c", {"meshAddress": "[unknown]", "cilium": "1.18.3", "context": 7})
    assert r is not None and (r.mesh_address, r.host, r.cilium, r.context, r.id) == (None, None, None, None, None)
    assert so.read_clusters(None) == {}


def test_the_configured_mesh_address() -> None:
    raw = mesh_config(2)
    raw["clusters"][1] = cluster_entry(2, create_clb=True)
    vip, clb = parse_settings(raw).clusters
    assert so.configured_mesh_address(vip.apiserver) == so.mesh_address("10.0.1.100", vip.apiserver.port) \
        == f"10.0.1.100:{vip.apiserver.port}"
    assert so.configured_mesh_address(clb.apiserver) is None
