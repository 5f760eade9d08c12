"""How a message names a cluster entry: ``mesh:clusters[1].id (cls-b)``, the cluster's name after the whole
path, wherever the entry has a valid name (``meshcore.errors``). The tests that read messages check it here."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from meshcore.config.clusters import ClusterName
from meshcore.config.fields import adapter_of

_NAME = adapter_of(ClusterName)
MENTION = re.compile(r"mesh:clusters\[(\d+)\]((?:\.[A-Za-z0-9_-]+|\[\d+\]|\[\"[^\"]*\"\])*)")


def entry_names(clusters: Any) -> dict[int, str]:
    """Position -> name of each entry of a raw ``mesh:clusters`` whose name is valid."""
    out = {}
    for i, entry in enumerate(clusters if isinstance(clusters, list) else []):
        name = entry.get("name") if isinstance(entry, dict) else None
        try:
            out[i] = _NAME.validate_python(name)
        except ValueError:
            continue
    return out


def unnamed(line: str, names: Mapping[int, str]) -> list[str]:
    """The mentions of a named entry in one ``<key>: <message>`` line (without ``error: ``) that do not name
    its cluster: the key must; in the message, every other entry must (its own needs no second name)."""
    where, _, message = line.partition(": ")
    key = MENTION.match(where)
    missing = []
    if key and int(key.group(1)) in names and where[key.end():] != f" ({names[int(key.group(1))]})":
        missing.append(where)
    own = int(key.group(1)) if key else None
    for m in MENTION.finditer(message):
        i = int(m.group(1))
        if i in names and i != own and not message[m.end():].startswith(f" ({names[i]})"):
            missing.append(m.group(0))
    return missing


def key_of(line: str) -> str:
    """The config key of a ``<key> (<cluster>): <message>`` line."""
    where = line.partition(": ")[0]
    m = MENTION.match(where)
    return re.sub(r" \([^)]*\)$", "", where) if m else where
