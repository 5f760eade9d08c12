"""Outputs combined without looking into their values.

``pulumi.Output.all`` passes every argument through ``Output.from_input``, which unwraps nested
Inputs: it lifts each element of a resolved list and each value of a resolved mapping into an
Output of its own, recursively, and gathers them again. For an Output of plain data that is work
in proportion to the whole value, done by every ``Output.all`` it is given to. Issue #19: every
cluster's chart record combined with the records of *all* clusters, and every cluster's
certificate dates with the whole previous ``clusters`` output (N entries of N−1 peers each), made
the plan quadratic in N (cubic for a deployed stack).

The SDK also walks the value of every Output it resolves, once, looking for unknowns; so the values
are unwrapped only inside the function applied to them, whose result is what the new Output holds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pulumi

T = TypeVar("T")


class _Opaque:
    """A value ``Output.from_input`` does not look into (not a list, mapping, input type or awaitable)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def apply_all(outputs: Sequence[pulumi.Output[Any]], func: Callable[[list[Any]], T]) -> pulumi.Output[T]:
    """``Output.all(*outputs).apply(func)`` for Outputs of plain data: ``func`` gets the same list of values and
    the result the same dependencies, secret and unknown marks, in work that does not depend on the size of the
    values (each is passed on as it is, so an Output nested inside one is not unwrapped)."""
    return pulumi.Output.all(*[o.apply(_Opaque) for o in outputs]).apply(
        lambda boxes: func([b.value for b in boxes]))
