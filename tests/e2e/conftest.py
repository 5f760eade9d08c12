"""The end-to-end suite's fixtures: one local mesh of API servers for the whole run, a CA the
stacks bring, and stack configs for it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import CHART
from tools import localmesh, localpki, localstack

CLUSTERS = ("cls-a", "cls-b", "cls-c", "cls-d")
"""API servers of the local mesh; the stacks start with the first three."""


@dataclass(frozen=True)
class LocalMesh:
    dir: Path

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"


@pytest.fixture(scope="session")
def local_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    d = tmp_path_factory.mktemp("localmesh")
    localmesh.up(list(CLUSTERS), d)
    try:
        yield LocalMesh(d)
    finally:
        localmesh.down(d)


@dataclass(frozen=True)
class Ca:
    cert_pem: str
    key_pem: str = field(repr=False)
    """Never in a failing test's output."""


@pytest.fixture(scope="session")
def mesh_ca() -> Ca:
    """A CA as a platform team brings it (see ``localpki.new_mesh_ca``)."""
    return Ca(*localpki.new_mesh_ca())


def cluster(i: int, name: str) -> dict[str, Any]:
    """A VIP-mode mesh member reached through the local mesh's context of the same name (``localstack.stack_cluster``:
    the builder ``python -m tools.localmesh stack`` uses too)."""
    return localstack.stack_cluster(i, name)


def stack_config(mesh: LocalMesh, ca: Ca, names: tuple[str, ...] = CLUSTERS[:3]) -> dict[str, Any]:
    """``localstack.stack_config`` for the suite's mesh: ids by position in ``CLUSTERS``, the stand-in chart."""
    return localstack.stack_config(mesh.kubeconfig, ca.cert_pem, names, CLUSTERS, CHART)
