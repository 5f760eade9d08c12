"""Configuration problems, collected and reported together.

Every problem names the stack config key it is about, written the way a user
would address it with ``pulumi config set --path`` (``mesh:clusters[1].id``),
and says how to fix it. No Pulumi import here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in the stack configuration."""

    key: str
    """The config key, e.g. ``mesh:clusters[1].id``."""
    message: str
    """What is wrong and how to fix it."""

    def line(self) -> str:
        """The line printed on stderr (without the ``error: `` prefix)."""
        return f"{self.key}: {self.message}"


class MeshConfigError(Exception):
    """The stack configuration is invalid; ``issues`` lists every problem found."""

    def __init__(self, issues: Iterable[ConfigIssue]) -> None:
        self.issues: tuple[ConfigIssue, ...] = tuple(issues)
        super().__init__(self.summary())

    def summary(self) -> str:
        n = len(self.issues)
        return f"the stack configuration has {n} problem{'s' if n != 1 else ''}"

    def lines(self) -> list[str]:
        """``error: <key>: <message>`` lines, in the order found."""
        return [f"error: {issue.line()}" for issue in self.issues]

    def __str__(self) -> str:
        return "\n".join([self.summary() + ":", *(i.line() for i in self.issues)])
