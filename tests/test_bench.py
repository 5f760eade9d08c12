"""The benchmark's inputs and arithmetic (its timings are printed by `make bench`, never asserted)."""

from __future__ import annotations

import json

from meshcore.config import decode_config
from meshcore.config_parse import parse_settings
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


def test_measure_reports_real_plans_in_rounds(tmp_path) -> None:
    """Two sizes, two rounds, end to end: counts come from the plans' graph.json, one time per round."""
    small, big = bench.measure([2, 3], tmp_path, runs=2)
    assert (small.n, big.n) == (2, 3)
    assert small.resources == 3 + 6 * 2 and big.resources == 3 + 6 * 3
    assert big.per_cluster == "6" and big.depth == 3
    assert big.runs == 2 and len(big.samples) == 2 and all(t > 0 for t in big.samples)
    assert big.seconds == min(big.samples) and big.median_seconds == sum(big.samples) / 2
    assert big.peak_mib > 0 and big.values_kib > 0
    assert bench.paired_ratios(big, small) == [b / s for b, s in zip(big.samples, small.samples, strict=False)]


def test_targets_judge_the_ratio_round_by_round() -> None:
    """The ratio target is judged on the median of the rounds' ratios; every round is shown."""
    def result(n: int, samples: list[float]) -> bench.Result:
        return bench.Result(n=n, samples=samples, peak_mib=1, resources=6 * n + 3, per_cluster="6", depth=3,
                            values_kib=1)

    notes = bench.targets([result(64, [0.5, 0.5, 1.0]), result(511, [4.0, 4.5, 4.5])])
    assert "511 clusters planned in 4.0 s (target: under 5 s): met" in notes
    ratio = next(n for n in notes if n.startswith("time(511)/time(64)"))
    assert ratio.startswith("time(511)/time(64) = 8.0, the median of the 3 rounds' ratios (target: at most 9): met")
    assert "rounds from 4.5 to 9.0" in ratio and "best times: 8.0" in ratio
    notes = bench.targets([result(64, [1.0]), result(511, [9.5])])
    assert any("NOT met" in n and n.startswith("time(511)") for n in notes)


def test_the_document_keeps_the_real_engine_section() -> None:
    """`make bench` rewrites docs/benchmarks.md but keeps what `make bench-engine` measured there."""
    section = f"{bench.ENGINE_BEGIN}\n## Real engine\n\n| 16 | preview |\n{bench.ENGINE_END}"
    assert bench.with_engine_section("# new\n", f"# old\n\n{section}\n") == f"# new\n\n{section}\n"
    assert bench.with_engine_section("# new\n", "# old\n") == "# new\n"
