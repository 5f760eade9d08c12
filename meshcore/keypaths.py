"""How config keys and Helm value paths are written in messages.

Paths are tuples of mapping keys and list indexes; they are shown the way
``pulumi config set --path`` takes them: ``mesh:clusters[0].values.cluster.name``,
with keys that hold dots or slashes quoted (``annotations["service.kubernetes.io/x"]``).
"""

from __future__ import annotations

import re

PathPart = str | int
Path = tuple[PathPart, ...]

_PLAIN = re.compile(r"^[A-Za-z0-9_-]+$")


def join(base: str, part: PathPart) -> str:
    """``base`` followed by one mapping key or list index."""
    if isinstance(part, int):
        return f"{base}[{part}]"
    if _PLAIN.match(part):
        return f"{base}.{part}" if base else part
    return f'{base}["{part}"]'


def render(base: str, path: Path) -> str:
    """``base`` followed by every part of ``path``."""
    out = base
    for part in path:
        out = join(out, part)
    return out


def dotted(path: Path) -> str:
    """A Helm value path for humans: ``clustermesh.apiserver.service.annotations["a/b"]``."""
    return render("", path)


def named(key: str, cluster: str | None) -> str:
    """A config key in a cluster entry as messages write it, the cluster's name after the whole path so that
    the path stays one ``pulumi config set --path`` takes: ``mesh:clusters[1].id (cls-b)``."""
    return f"{key} ({cluster})" if cluster else key
