"""Who peers with whom: full and partial meshes."""

from __future__ import annotations

from meshcore.config_parse import parse_settings
from tests.conftest import mesh_config


def pairs(s) -> list[tuple[str, str]]:
    """Every connection once, (a, b) with a < b."""
    return sorted({(min(a, b), max(a, b)) for a, ps in s.peers.items() for b in ps})


def test_full_mesh_lists_every_other_cluster_by_id() -> None:
    """Full mesh: each cluster lists all others once, ordered by cluster id, never itself."""
    raw = mesh_config(4)
    raw["clusters"][0]["id"], raw["clusters"][3]["id"] = 9, 1  # ids out of list order
    s = parse_settings(raw)
    names = [c.name for c in s.clusters]
    for c in s.clusters:
        assert c.name not in s.peers[c.name]
        assert sorted(s.peers[c.name]) == sorted(n for n in names if n != c.name)
        ids = [s.cluster(p).id for p in s.peers[c.name]]
        assert ids == sorted(ids)
    assert len(pairs(s)) == 4 * 3 // 2 == len(set(pairs(s)))
    assert all(a < b for a, b in pairs(s))


def test_partial_topology_is_made_symmetric() -> None:
    """A pair listed on one side only is connected both ways; unlisted pairs are not connected."""
    raw = mesh_config(4, topology={"peers": {"cls-00000001": ["cls-00000002", "cls-00000003"],
                                             "cls-00000004": ["cls-00000003"]}})
    s = parse_settings(raw)
    assert not s.full_mesh
    assert s.peers["cls-00000001"] == ("cls-00000002", "cls-00000003")
    assert s.peers["cls-00000002"] == ("cls-00000001",)
    assert s.peers["cls-00000003"] == ("cls-00000001", "cls-00000004")
    assert s.peers["cls-00000004"] == ("cls-00000003",)
    assert pairs(s) == [("cls-00000001", "cls-00000002"), ("cls-00000001", "cls-00000003"),
                               ("cls-00000003", "cls-00000004")]


def test_single_cluster_has_no_peers() -> None:
    """A one-cluster stack (the first member of a growing mesh) is valid and has no connections."""
    s = parse_settings(mesh_config(1))
    assert s.peers == {"cls-00000001": ()} and pairs(s) == []
