"""The program's work per cluster does not grow with the mesh: counted, never timed.

A full mesh of N clusters carries N·(N−1) peer entries, and nothing else of it has to grow
faster than N. Issue #19: one Output per cluster combined with the chart records of *every*
cluster (``Output.all`` lifts each value of a resolved mapping into an Output of its own), and one
per cluster with the whole previous ``clusters`` output, made the plan quadratic in N (cubic for a
deployed stack), which no wall-clock test on a shared machine would have caught reliably.

Each scenario is run at two sizes and the work counted at both: the Outputs the SDK resolves, the
values it serialises for the engine (less the peer entries, the one part that has to grow: a
MeshPeers node's connections and the ``clusters.<name>.peers`` outputs, N−1 each) and the calls into
the version, record and certificate helpers. Every count is deterministic (the program's structure
and data, not the machine); per cluster it may shrink with N (the fixed part is shared), never grow.
And the SDK walks the value of every Output it resolves: an Output that holds the data of every
cluster (more values than any one cluster's, N−1 peers included) is fine once (the chart records,
the previous outputs read back), never once per cluster, so the number of them must not grow.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pulumi.output
import pytest
from pulumi.runtime import rpc

from meshcore.chart import certs, owned, versions
from meshcore.mesh import lifecycle
from tests.conftest import mesh_config, write_stack
from tests.mockcloud import ComputingMocks, by_type, run
from tools.mockengine import Recording
from tools.plan import plan
from tools.render import scrub

SIZES = (32, 64)
MESH_SIZED = "Outputs holding every cluster's data"
HELPERS: tuple[tuple[Any, str], ...] = (
    (versions, "row"), (versions, "minor_of"), (versions, "parse"), (versions, "peers_value"),
    (owned, "owned_values"), (certs, "leaf_expiries"), (certs, "track_renders"), (lifecycle, "_deployed"),
)
"""The per-version rows, the owned values, the certificate dates and the chart records (each cluster's record is
read by ``_deployed``): one call a cluster each, or a few."""


def _raw(n: int) -> dict[str, Any]:
    """The issue's case: a full mesh with ``mesh:masquerade.mode: ipMasqAgent`` (N CIDRs in every cluster)."""
    return mesh_config(n, masquerade={"mode": "ipMasqAgent"})


@contextmanager
def counting(monkeypatch: pytest.MonkeyPatch, n: int) -> Iterator[Counter[str]]:
    """Count, while the block runs: Outputs resolved (``_OutputData``, the SDK's one record of a resolved Output),
    values serialised (``rpc.serialize_property``, called once per value, nested ones included) and helper calls;
    then the Outputs that held more than 2·n values (``MESH_SIZED``)."""
    counts: Counter[str] = Counter()
    sizes: list[int] = []
    with monkeypatch.context() as m:
        resolved = pulumi.output._OutputData.__post_init__

        def post_init(self: Any) -> None:
            counts["Outputs resolved"] += 1
            sizes.append(_size(self.value))
            resolved(self)

        m.setattr(pulumi.output._OutputData, "__post_init__", post_init)
        serialize = rpc.serialize_property

        async def serialize_property(*args: Any, **kwargs: Any) -> Any:
            counts["values serialised"] += 1
            return await serialize(*args, **kwargs)

        m.setattr(rpc, "serialize_property", serialize_property)
        for module, name in HELPERS:
            m.setattr(module, name, _counted(counts, f"{module.__name__}.{name}", getattr(module, name)))
        yield counts
    counts[MESH_SIZED] = sum(1 for s in sizes if s > 2 * n)


def _size(value: Any) -> int:
    """The values in ``value``, as the SDK walks it looking for unknowns (lists and mappings, and their items)."""
    if isinstance(value, dict):
        return 1 + sum(_size(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(_size(v) for v in value)
    return 1


def _counted(counts: Counter[str], key: str, f: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        counts[key] += 1
        return f(*args, **kwargs)
    return call


def _peer_entries(rec: Recording, previous: dict[str, Any] | None) -> int:
    """The peer entries serialised however the program is written: every MeshPeers node's connections, every
    ``clusters.<name>.peers`` output, and those of the previous ``clusters`` output the engine hands the program's
    StackReference (N·(N−1) each in a full mesh)."""
    inputs = sum(len(r.inputs["peers"]) for r in by_type(rec, "mesh:mesh:MeshPeers"))
    outputs = sum(len(c["peers"]) for c in rec.outputs["clusters"].values())
    read = sum(len(c["peers"]) for c in (previous or {}).values())
    return inputs + outputs + read


def _per_cluster(counts: Counter[str], rec: Recording, n: int, previous: dict[str, Any] | None = None,
                 ) -> dict[str, float]:
    assert len(by_type(rec, "kubernetes:helm.sh/v3:Release")) == n
    work = dict(counts)
    work["values serialised"] -= _peer_entries(rec, previous)
    return {k: v if k == MESH_SIZED else v / n for k, v in work.items()}


def _assert_no_growth(work: dict[int, dict[str, float]]) -> None:
    small, big = SIZES
    assert work[small].keys() == work[big].keys() and "Outputs resolved" in work[big]
    grown = {k: (round(work[small][k], 2), round(work[big][k], 2)) for k in work[big] if work[big][k] > work[small][k]}
    assert not grown, (f"work per cluster grows with N (N={small} -> N={big}; {MESH_SIZED}: in all, not per "
                       f"cluster): {grown}")


def test_the_offline_plan_of_a_new_stack_does_no_more_work_per_cluster_at_twice_the_size(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`make bench`'s case, with ipMasqAgent: the offline plan (a preview of a new stack)."""
    work = {}
    for n in SIZES:
        stack = write_stack(tmp_path, _raw(n), stack=f"growth{n}")
        with counting(monkeypatch, n) as counts:
            rec = plan(str(stack))
        work[n] = _per_cluster(counts, rec, n)
    _assert_no_growth(work)


def test_an_update_of_a_deployed_mesh_does_no_more_work_per_cluster_at_twice_the_size(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `pulumi up` of a deployed stack: the guard and the certificate dates read its previous ``clusters``
    output (N entries, each with N−1 peers) back through the StackReference, and every release's status is known."""
    work = {}
    for n in SIZES:
        raw = _raw(n)
        deployed = scrub(run(raw, tmp_path).outputs)["clusters"]
        with counting(monkeypatch, n) as counts:
            rec = run(raw, tmp_path, mocks=ComputingMocks(previous=deployed))
        assert counts["meshcore.chart.certs.leaf_expiries"] == n, "every release's certificate dates were computed"
        work[n] = _per_cluster(counts, rec, n, deployed)
    _assert_no_growth(work)
