"""Real-engine benchmark: `pulumi preview` of full meshes, `pulumi up` into real API servers.

    python -m tools.bench_engine [--preview 16,64,255] [--up 16] [--doc docs/benchmarks.md]

For each N it writes the full-mesh stack of ``tools/bench.py`` (the same clusters and values),
with the stand-in chart (tools/stand-in-chart: the real one cannot be shipped here), a CA the
stack brings (the tls provider cannot be built here) and ``skipAwait``, and times in a fresh
workspace (``tools.workspace``):

- ``pulumi preview`` of the new stack; no API server is needed (each context points at a
  closed loopback port: the provider renders the chart client-side), and the offline plan of the
  same stack file, for the ratio real/offline;
- ``pulumi up`` of N clusters into N API servers of a local mesh (``tools.localmesh``), then the
  size of the state (``pulumi stack export``).

It prints a table and replaces the "Real engine" section of ``docs/benchmarks.md``. A benchmark
that prints numbers, not a timed test.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools import ROOT, localmesh, localpki
from tools.bench import ENGINE_BEGIN, ENGINE_END, full_mesh_stack
from tools.workspace import CHART, Workspace

DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = ENGINE_BEGIN, ENGINE_END


def _closed_kubeconfig(path: Path, names: list[str]) -> None:
    """Contexts named after the clusters, each pointing at a closed loopback port."""
    doc = {"apiVersion": "v1", "kind": "Config",
           "clusters": [{"name": n, "cluster": {"server": "https://127.0.0.1:9"}} for n in names],
           "users": [{"name": "nobody", "user": {}}],
           "contexts": [{"name": n, "context": {"cluster": n, "user": "nobody"}} for n in names]}
    path.write_text(json.dumps(doc))


def _config(n: int, kubeconfig: Path, ca_cert: str) -> dict[str, Any]:
    config: dict[str, Any] = full_mesh_stack(n)["config"]
    config["mesh:cilium"] = {**config["mesh:cilium"], "chart": str(CHART), "skipAwait": True}
    config["mesh:cilium"].pop("repository", None)
    config["mesh:kubeconfig"] = str(kubeconfig)
    config["mesh:ca"] = {"certificate": ca_cert}
    return config


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@dataclass
class Row:
    n: int
    operation: str
    seconds: float
    offline_seconds: float | None = None
    state_kib: float | None = None


def preview(n: int, work: Path, ca: tuple[str, str]) -> Row:
    names = [c["name"] for c in full_mesh_stack(n)["config"]["mesh:clusters"]]
    kubeconfig = work / "kubeconfig"
    _closed_kubeconfig(kubeconfig, names)
    ws = Workspace(work / "ws", stack=f"bench{n}")
    ws.init_stack(_config(n, kubeconfig, ca[0]), secrets={"mesh:caPrivateKey": ca[1]})
    seconds = _timed(lambda: ws.pulumi("preview", timeout=3600))
    offline = _timed(lambda: ws.offline_plan(work / "plan"))
    return Row(n, "preview", seconds, offline_seconds=offline)


def up(n: int, work: Path, ca: tuple[str, str]) -> Row:
    names = [c["name"] for c in full_mesh_stack(n)["config"]["mesh:clusters"]]
    mesh_dir = work / "mesh"
    localmesh.up(names, mesh_dir)
    try:
        ws = Workspace(work / "ws", stack=f"bench{n}")
        ws.init_stack(_config(n, mesh_dir / "kubeconfig", ca[0]), secrets={"mesh:caPrivateKey": ca[1]})
        seconds = _timed(lambda: ws.pulumi("up", "--yes", "--skip-preview", timeout=3600))
        state = ws.pulumi("stack", "export").stdout
        row = Row(n, "up", seconds, state_kib=len(state.encode()) / 1024)
        ws.pulumi("destroy", "--yes", "--skip-preview", timeout=3600)
        return row
    finally:
        localmesh.down(mesh_dir)


def table(rows: list[Row]) -> str:
    lines = ["| N | operation | real engine (s) | offline plan (s) | real/offline | state (KiB) |",
             "| ---: | --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        off = f"{r.offline_seconds:.1f}" if r.offline_seconds is not None else ""
        ratio = f"{r.seconds / r.offline_seconds:.1f}" if r.offline_seconds else ""
        state = f"{r.state_kib:.0f}" if r.state_kib is not None else ""
        lines.append(f"| {r.n} | {r.operation} | {r.seconds:.1f} | {off} | {ratio} | {state} |")
    return "\n".join(lines)


def document(rows: list[Row]) -> str:
    return "\n".join([
        BEGIN,
        "## Real engine (`make bench-engine`)",
        "",
        f"Measured {datetime.date.today().isoformat()} on {platform.machine()}, 2 cores, one run each, with the",
        "toolchain of `python -m tools.toolchain` (pulumi v3.276.0, our Python host, kubernetes provider",
        "4.25.0, kube-apiserver v1.34.4, etcd v3.6.16). Full meshes of `tools/bench.py`, with the suite's",
        "stand-in chart (the real chart cannot be shipped here), a CA the stack brings and `skipAwait`.",
        "`preview`: a new stack, contexts pointing at a closed port (no API server needed); `offline plan`:",
        "`python -m tools.plan` of the same stack file. `up`: into N API servers of a local mesh; state:",
        "the size of `pulumi stack export` after it.",
        "",
        table(rows),
        END,
    ])


def write_doc(rows: list[Row], doc: Path) -> None:
    text = doc.read_text(encoding="utf-8") if doc.exists() else ""
    section = document(rows)
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + section + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    doc.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_engine", description=__doc__.split("\n\n")[0])
    parser.add_argument("--preview", default="16,64,255", help="sizes to preview (comma-separated)")
    parser.add_argument("--up", default="16", help="sizes to deploy into a local mesh (comma-separated)")
    parser.add_argument("--doc", type=Path, default=DOC)
    args = parser.parse_args(argv)
    sizes = {"preview": [int(x) for x in args.preview.split(",") if x], "up": [int(x) for x in args.up.split(",") if x]}
    ca = localpki.new_mesh_ca(days=30)
    rows = []
    with tempfile.TemporaryDirectory(prefix="mesh-bench-engine-") as tmp:
        for op, fn in (("preview", preview), ("up", up)):
            for n in sizes[op]:
                work = Path(tmp) / f"{op}{n}"
                work.mkdir()
                rows.append(fn(n, work, ca))
                print(table(rows[-1:]).splitlines()[-1], flush=True)
                shutil.rmtree(work, ignore_errors=True)
    print(table(rows))
    write_doc(rows, args.doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
