"""The benchmark's inputs and arithmetic (its timings are printed by `make bench`, never asserted)."""

from __future__ import annotations

import json

from meshcore.config import decode_config, parse_settings
from tools import bench


def test_generated_stacks_are_valid_full_meshes() -> None:
    """The benchmark plans valid stacks: 511 clusters need maxConnectedClusters 511."""
    for n in (2, 300):
        config = bench.full_mesh_stack(n)["config"]
        settings = parse_settings(decode_config({k: json.dumps(v) for k, v in config.items()}))
        assert len(settings.clusters) == n and settings.full_mesh
        assert settings.max_connected_clusters == (511 if n > 255 else 255)


def test_manual_procedure_counts() -> None:
    """The guide's steps: install, CA copy, enable per cluster; connect per pair upgrading two releases."""
    assert bench.manual_steps(2) == {"installs": 2, "ca_copies": 1, "enables": 2, "connects": 1, "upgrades": 4,
                                     "sequential": 6}
    m = bench.manual_steps(511)
    assert m["connects"] == 130305 and m["upgrades"] == 511 + 2 * 130305


def test_measure_reports_a_real_plan(tmp_path) -> None:
    """One small measurement end to end: counts come from the plan's graph.json."""
    r = bench.measure(3, tmp_path, runs=2)
    assert r.resources == 4 + 6 * 3 and r.per_cluster == "6" and r.depth == 3
    assert 0 < r.seconds <= r.median_seconds and r.runs == 2 and r.peak_mib > 0 and r.values_kib > 0
