"""One upgrade wave under the real engine: a mesh on chart 1.18.12, then `pulumi up` with one cluster's
``mesh:clusters[i].cilium.version: 1.19.6``: only that release is upgraded (to the 1.19 chart, its peers in the
1.19 map form, upgradeCompatibility 1.18), the other keeps its revision, and the stack records both versions;
then a step that skips a minor is refused before any release moves. The charts are versioned copies of the
suite's stand-in chart (the program checks a local chart's version against the stack's), in tmp.
Runs after tests/e2e/test_mesh_lifecycle.py (file order), which destroys its releases at its end."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import CLUSTERS, Ca, LocalMesh, cluster
from tests.e2e.harness import CHART, Workspace, deployed, helm_releases, secret_data

NAMES = CLUSTERS[:2]


def _chart(base: Path, version: str) -> Path:
    """The stand-in chart at ``version`` (its Chart.yaml says so, as `helm pull` of that version would)."""
    out = base / f"cilium-{version}"
    if not out.exists():
        shutil.copytree(CHART, out)
        meta = yaml.safe_load((out / "Chart.yaml").read_text(encoding="utf-8"))
        meta["version"] = meta["appVersion"] = version
        (out / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False), encoding="utf-8")
    return out


def _config(mesh: LocalMesh, ca: Ca, charts: Path, mesh_version: str, own: dict[int, str]) -> dict[str, Any]:
    clusters = [cluster(CLUSTERS.index(n) + 1, n) for n in NAMES]
    for i, v in own.items():
        clusters[i]["cilium"] = {"version": v, "chart": str(_chart(charts, v))}
    return {
        "mesh:cilium": {"version": mesh_version, "chart": str(_chart(charts, mesh_version)), "skipAwait": True},
        "mesh:kubeconfig": str(mesh.kubeconfig),
        "mesh:ca": {"certificate": ca.cert_pem},
        "mesh:policyDefaultLocalCluster": False,
        "mesh:clusters": clusters,
    }


@pytest.fixture(scope="module")
def charts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("charts")


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, local_mesh: LocalMesh, mesh_ca: Ca, charts: Path) -> Any:
    for name in NAMES:
        assert helm_releases(local_mesh.kubeconfig, name) == [], f"{name} already holds a release cilium"
    w = Workspace(tmp_path_factory.mktemp("ws-upgrade"), stack="upgrade")
    w.init_stack(_config(local_mesh, mesh_ca, charts, "1.18.12", {}), secrets={"mesh:caPrivateKey": mesh_ca.key_pem})
    yield w
    w.pulumi("destroy", "--yes", "--skip-preview", check=False)


def _peers(mesh: LocalMesh, name: str) -> set[str]:
    return set(secret_data(mesh.kubeconfig, name, "cilium-kvstoremesh"))


def test_one_wave_upgrades_only_its_cluster(ws: Workspace, local_mesh: LocalMesh, mesh_ca: Ca, charts: Path) -> None:
    ws.pulumi("up", "--yes", "--skip-preview")
    before = {n: deployed(local_mesh.kubeconfig, n) for n in NAMES}
    for n in NAMES:
        assert before[n]["chart"]["metadata"]["version"] == "1.18.12", n
        assert isinstance(before[n]["config"]["clustermesh"]["config"]["clusters"], list), n
    assert {n: o["cilium"] for n, o in ws.outputs()["clusters"].items()} == {
        n: {"version": "1.18.12", "firstInstalled": "1.18"} for n in NAMES}

    # The wave: cls-a to 1.19.6, cls-b stays (a mesh mixed N-1/N).
    ws.set_config(_config(local_mesh, mesh_ca, charts, "1.18.12", {0: "1.19.6"}))
    ws.pulumi("up", "--yes", "--skip-preview")
    a, b = (deployed(local_mesh.kubeconfig, n) for n in NAMES)
    assert a["chart"]["metadata"]["version"] == "1.19.6" and a["version"] == before["cls-a"]["version"] + 1
    assert a["config"]["clustermesh"]["config"]["clusters"] == {"cls-b": {"address": "127.0.2.100", "port": 2379}}
    assert a["config"]["upgradeCompatibility"] == "1.18"
    assert a["config"]["clustermesh"]["apiserver"]["tls"]["auto"]["method"] == "cronJob"
    assert a["config"]["clustermesh"]["apiserver"]["tls"]["authMode"] == "migration"
    assert b == before["cls-b"], "cls-b is not in this wave: its release is not touched"
    assert _peers(local_mesh, "cls-a") == {"cls-b"} and _peers(local_mesh, "cls-b") == {"cls-a"}
    assert {n: o["cilium"] for n, o in ws.outputs()["clusters"].items()} == {
        "cls-a": {"version": "1.19.6", "firstInstalled": "1.18"},
        "cls-b": {"version": "1.18.12", "firstInstalled": "1.18"}}

    # A step that skips a minor (cls-b 1.18.12 -> 1.20.0, the mesh 1.19/1.20) is refused before any release moves.
    ws.set_config(_config(local_mesh, mesh_ca, charts, "1.19.6", {1: "1.20.0"}))
    result = ws.pulumi("up", "--yes", "--skip-preview", check=False)
    assert result.returncode != 0
    assert "mesh:clusters[1].cilium.version" in result.output and "skips a minor" in result.output, \
        result.output[-3000:]
    assert [deployed(local_mesh.kubeconfig, n)["version"] for n in NAMES] == [a["version"], b["version"]]
    assert ws.outputs()["clusters"]["cls-b"]["cilium"]["version"] == "1.18.12"
