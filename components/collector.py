"""The garbage collector of the program's own Python process, tuned for a mesh.

A mesh is one large graph of long-lived objects: Helm values, Outputs, and the coroutines
and tasks the Pulumi SDK makes for every value it serialises. With CPython's default
collector thresholds (a young collection every 700 net new container objects), the collector
scans that graph again and again; the program makes little cyclic garbage, so it collects far
less often. What that saves at 511 clusters, and what it costs in memory, is measured in
docs/benchmarks.md (``make bench``). Measured on the mock engine only: a real ``pulumi up``
runs the same program code, then mostly waits for the engine.
"""

from __future__ import annotations

import gc

GC_THRESHOLDS = (1_000_000, 10, 10)
"""A young collection once a million more container objects exist than were freed (most are
freed by reference counting before that and are never scanned; CPython's default is 700);
older generations at CPython's default ratio to it. A long ``pulumi up`` allocates little while
it waits for the engine, so little garbage can wait for a collection."""


def tune_gc() -> None:
    """Set the program's collector thresholds (for the whole process)."""
    gc.set_threshold(*GC_THRESHOLDS)
