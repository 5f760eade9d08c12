"""Configuration problems, collected and reported together.

Every problem names the stack config key it is about, written the way a user
would address it with ``pulumi config set --path`` (``mesh:clusters[1].id``),
followed by the cluster's name when the key is in a named cluster entry
(``mesh:clusters[1].id (cls-b)``: the path stays one to copy), and says how to fix it.
No Pulumi import here.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from meshcore.keypaths import named

_ENTRY = re.compile(r"^[a-z]+:clusters\[(\d+)\](?=$|[.\[])")


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in the stack configuration."""

    key: str
    """The config key, e.g. ``mesh:clusters[1].id``."""
    message: str
    """What is wrong and how to fix it."""
    cluster: str | None = None
    """The name of the cluster entry the key is in (``mesh:clusters[1]``: ``cls-b``), shown after the key."""

    @property
    def where(self) -> str:
        """The key as a message shows it: ``mesh:clusters[1].id (cls-b)``."""
        return named(self.key, self.cluster)

    def line(self) -> str:
        """The line printed on stderr (without the ``error: `` prefix)."""
        return f"{self.where}: {self.message}"


def naming_clusters(issues: Iterable[ConfigIssue], names: Mapping[int, str]) -> list[ConfigIssue]:
    """``issues``, each whose key is in entry ``i`` of ``mesh:clusters`` naming that entry's cluster
    (``names``: index -> name, the entries that have a valid name)."""
    out = []
    for issue in issues:
        m = _ENTRY.match(issue.key)
        if issue.cluster is None and m and int(m.group(1)) in names:
            issue = dataclasses.replace(issue, cluster=names[int(m.group(1))])
        out.append(issue)
    return out


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
