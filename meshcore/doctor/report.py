"""The mesh doctor's summary: the worst finding of each cluster and check, and the exit code."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from meshcore.doctor.checks import CHECKS
from meshcore.doctor.records import FAILING, SEVERITIES, Desired, Finding


def worst(findings: Iterable[Finding]) -> str | None:
    ranks = [SEVERITIES.index(f.severity) for f in findings]
    return SEVERITIES[min(ranks)] if ranks else None


def table(want: Desired, findings: Sequence[Finding]) -> dict[str, dict[str, str]]:
    """cluster -> check -> the worst severity found ("-" when the check did not run)."""
    out: dict[str, dict[str, str]] = {}
    for c in want.clusters:
        row = {}
        for check in CHECKS:
            w = worst(f for f in findings if f.cluster == c.name and f.check == check)
            row[check] = w or "-"
        out[c.name] = row
    return out


def exit_code(findings: Iterable[Finding]) -> int:
    """0 when everything matches, 1 when anything differs, is pending or needs action."""
    return 1 if any(f.severity in FAILING for f in findings) else 0
