"""Settings of the program's own Python process.

A mesh is one large graph of long-lived objects: Helm values, Outputs, and the coroutines
and tasks the Pulumi SDK makes for every value it serialises. With CPython's default
collector thresholds (a young collection every 700 net new container objects), it scans
that graph again and again: the program part of a 511-cluster offline plan takes 9.7 s with
them and 5.9 s with the thresholds below, where the collector runs twice for about 0.3 s in
all (best of 3, measured with ``gc.callbacks``; see docs/benchmarks.md). The program makes
little cyclic garbage, so it collects far less often. Measured on the mock engine only: a
real ``pulumi up`` runs the same program code, then mostly waits for the engine.
"""

from __future__ import annotations

import gc

GC_THRESHOLDS = (1_000_000, 10, 10)
"""A young collection once a million more container objects exist than were freed (most are
freed by reference counting before that and are never scanned; CPython's default is 700);
older generations at CPython's default ratio to it. A 511-cluster plan then runs 2 young
collections instead of hundreds; its peak memory grew by about 5 % (570 to 600 MiB). A
long ``pulumi up`` allocates little while it waits for the engine, so little garbage can
wait for a collection."""


def tune_gc() -> None:
    """Set the program's collector thresholds (for the whole process)."""
    gc.set_threshold(*GC_THRESHOLDS)
