"""Settings of the program's own Python process.

A mesh is one large graph of long-lived objects: Helm values, Outputs, and the coroutines
and tasks the Pulumi SDK makes for every value it serialises. With CPython's default
collector thresholds (a collection every 700 new objects), the collector scans that graph
again and again: at 511 clusters it took about a tenth of the run (measured with
``gc.callbacks``; see docs/benchmarks.md). The program makes almost no cyclic garbage, so
it collects far less often.
"""

from __future__ import annotations

import gc

GC_THRESHOLDS = (1_000_000, 50, 100)
"""Young collections every million new objects (most are freed before that by reference
counting and are never scanned); older generations rarely."""


def tune_gc() -> tuple[int, int, int]:
    """Set the program's collector thresholds; returns the previous ones."""
    previous = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    return previous
