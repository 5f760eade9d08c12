"""Scale benchmark: offline plans of full meshes of N clusters.

    python -m tools.bench [--sizes 2,16,64,255,511] [--doc docs/benchmarks.md]

For each N it generates a full-mesh stack (N clusters, the TKE install values of the
dev stack as base values, ``maxConnectedClusters: 511`` above 255), runs the offline plan
in a fresh process (as a user would: interpreter start and imports included), and
reports wall time, peak memory (the child's max RSS), resources registered, resources per
cluster, dependency depth (the longest chain of waits in graph.json), and the size of
one cluster's values file. It prints a table and writes it, with the comparison against
the manual procedure of the TKE guide, to ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml

from tools import render

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SIZES = (2, 16, 64, 255, 511)


def full_mesh_stack(n: int) -> dict[str, Any]:
    """A valid full-mesh stack of ``n`` clusters (vip mode, spread over three regions)."""
    dev = yaml.safe_load((ROOT / "stacks/Pulumi.dev.yaml").read_text())["config"]
    regions = ("ap-guangzhou", "ap-shanghai", "ap-beijing")
    clusters = []
    for i in range(1, n + 1):
        clusters.append({
            "name": f"cls-{i:08d}",
            "id": i,
            "region": regions[i % len(regions)],
            "podCidrs": [f"172.{16 + i // 256}.{i % 256}.0/24"],
            "apiserver": {"subnetId": f"subnet-{i:08d}", "vip": f"10.{i // 256}.{i % 256}.100"},
            "values": {"k8sServiceHost": f"169.254.{i // 256}.{i % 256}"},
        })
    config: dict[str, Any] = {"mesh:cilium": dev["mesh:cilium"], "mesh:clusters": clusters}
    if n > 255:
        config["mesh:maxConnectedClusters"] = 511
    return {"config": config}


@dataclass
class Result:
    n: int
    seconds: float
    peak_mib: float
    resources: int
    per_cluster: str
    depth: int
    values_kib: float


def measure(n: int, workdir: Path) -> Result:
    stack = workdir / f"Pulumi.bench{n}.yaml"
    stack.write_text(yaml.safe_dump(full_mesh_stack(n), sort_keys=False))
    out = workdir / f"plan{n}"
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "tools.plan", str(stack), "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"plan of {n} clusters failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    g = json.loads((out / "graph.json").read_text())
    parents = {r["urn"]: r["parent"] for r in g["resources"]}
    clusters = {r["urn"]: r["name"] for r in g["resources"] if r["type"] == render.CLUSTER_TYPE}
    counts: dict[str, int] = {}
    for r in g["resources"]:
        owner = render.ancestor_cluster(r["urn"], parents, clusters)
        if owner:
            counts[owner] = counts.get(owner, 0) + 1
    lo, hi = min(counts.values()), max(counts.values())
    values = out / "values" / "cls-00000001.yaml"
    return Result(
        n=n,
        seconds=seconds,
        peak_mib=usage.ru_maxrss / 1024,  # Linux reports KiB
        resources=len(g["resources"]),
        per_cluster=str(lo) if lo == hi else f"{lo}..{hi}",
        depth=render.depth(g),
        values_kib=values.stat().st_size / 1024,
    )


def manual_steps(n: int) -> dict[str, int]:
    """Sequential steps of the TKE guide's procedure for n clusters (no parallelism)."""
    pairs = n * (n - 1) // 2
    return {
        "installs": n,                 # helm install per cluster
        "ca_copies": n - 1,            # delete + apply cilium-ca in every other cluster
        "enables": n,                  # cilium clustermesh enable (a helm upgrade each)
        "connects": pairs,             # cilium clustermesh connect per pair
        "upgrades": n + 2 * pairs,     # enable + two release upgrades per connect
        "sequential": n + (n - 1) + n + pairs,
    }


def table(results: list[Result]) -> str:
    lines = [
        "| N | wall time (s) | peak memory (MiB) | resources | resources per cluster | depth | one cluster's values (KiB) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [f"| {r.n} | {r.seconds:.2f} | {r.peak_mib:.0f} | {r.resources} | {r.per_cluster} | {r.depth} | "
              f"{r.values_kib:.1f} |" for r in results]
    return "\n".join(lines)


def comparison(results: list[Result]) -> str:
    lines = [
        "| N | manual: sequential steps | manual: `connect` runs | manual: Helm upgrades | this program: graph depth | "
        "this program: Helm releases applied |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        m = manual_steps(r.n)
        lines.append(f"| {r.n} | {m['sequential']} | {m['connects']} | {m['upgrades']} | {r.depth} | {r.n} |")
    return "\n".join(lines)


def targets(results: list[Result]) -> list[str]:
    by_n = {r.n: r for r in results}
    notes = []
    if 511 in by_n:
        notes.append(f"511 clusters planned in {by_n[511].seconds:.1f} s (target: under 30 s): "
                     f"{'met' if by_n[511].seconds < 30 else 'NOT met'}")
    if 511 in by_n and 64 in by_n:
        ratio = by_n[511].seconds / by_n[64].seconds
        notes.append(f"time(511)/time(64) = {ratio:.1f} (target: at most 10): {'met' if ratio <= 10 else 'NOT met'}")
    depths = {r.depth for r in results}
    notes.append(f"depth for every N: {sorted(depths)} ({'constant' if len(depths) == 1 else 'NOT constant'})")
    per = {r.per_cluster for r in results}
    notes.append(f"resources per cluster for every N: {sorted(per)} ({'constant' if len(per) == 1 else 'NOT constant'})")
    return notes


def document(results: list[Result]) -> str:
    return "\n".join([
        "# Benchmarks: offline plans of full meshes",
        "",
        "Made by `make bench` (`python -m tools.bench`); do not edit by hand.",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()} {platform.machine()}.",
        "Each plan runs in a fresh process (interpreter start and imports included). Peak memory is that "
        "process's max RSS. Depth is the longest chain of waits (dependencies and providers) in graph.json, "
        "a lower bound on the sequential steps of `pulumi up`.",
        "",
        table(results),
        "",
        *[f"- {t}" for t in targets(results)],
        "",
        "Where the time goes (cProfile of N = 511): serialising the Helm values in the Pulumi SDK "
        "(the N·(N−1) peer entries: the data itself), then writing the artefacts. Validation is "
        "O(N log N) (a sweep over sorted pod CIDRs instead of comparing every pair), the program runs "
        "once, the mock engine does not decode and re-encode inputs, and the values files are written "
        "by a small YAML emitter instead of PyYAML's representer.",
        "",
        "Why time(511)/time(64) stays above 10: from 64 to 511 clusters the peer data grows 64-fold "
        "(N·(N−1) entries), and what is left of the plan time is almost all the Pulumi Python SDK "
        "serialising that data, node by node, into the Helm release inputs. Measured on 2026-11-25: "
        "with the MeshPeers inputs and the outputs' peer lists removed, the program part of the "
        "N = 511 plan still took 11.9 s, so the ratio cannot reach 10 while the releases carry their "
        "peer lists as Helm `values`. Reaching it would mean passing the peer list as a values-file "
        "asset (a `pulumi preview` would then show an asset hash for the release and the readable "
        "change only on the MeshPeers node): a product decision, not taken here.",
        "",
        "## Against the manual procedure",
        "",
        "The TKE guide installs Cilium per cluster, copies `cilium-ca` to every other cluster, runs "
        "`cilium clustermesh enable` per cluster and `cilium clustermesh connect` per pair; each connect "
        "upgrades both releases. Done one after another, that is N + (N−1) + N + N·(N−1)/2 steps. "
        "This program applies each release once, with its complete peer list, and nothing waits for "
        "another cluster, so the chain of waits stays the same length for any N.",
        "",
        comparison(results),
        "",
    ])


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)))
    parser.add_argument("--doc", default=str(ROOT / "docs" / "benchmarks.md"), help="'' to skip writing it")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    results = []
    with tempfile.TemporaryDirectory(prefix="mesh-bench-") as tmp:
        for n in sizes:
            r = measure(n, Path(tmp))
            results.append(r)
            print(f"N={n}: {r.seconds:.2f} s, {r.peak_mib:.0f} MiB, {r.resources} resources, depth {r.depth}",
                  flush=True)
    print()
    print(table(results))
    print()
    for t in targets(results):
        print(f"- {t}")
    if args.doc:
        Path(args.doc).parent.mkdir(parents=True, exist_ok=True)
        Path(args.doc).write_text(document(results))
        print(f"\nwritten to {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
