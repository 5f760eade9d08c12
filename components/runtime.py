"""Settings of the program's own Python process.

A mesh is one large graph of long-lived objects: Helm values, Outputs, and the coroutines
and tasks the Pulumi SDK makes for every value it serialises. With CPython's default
collector thresholds (a collection every 700 new objects), the collector scans that graph
again and again: at 511 clusters it took 4.0 s of a 12.5 s plan, 0.25 s with the thresholds
below (measured with ``gc.callbacks``; see docs/benchmarks.md). The program makes little
cyclic garbage, so it collects far less often.
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
