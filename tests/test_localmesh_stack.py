"""``python -m tools.localmesh stack``'s pure parts, without a mesh: the stack's name from its file, the version of
a ``--chart`` given as a directory or a ``.tgz``, the stack config it writes (the end-to-end run of the command:
``tests/e2e/test_local_try.py``)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import yaml

from meshcore.config.parse import parse_settings
from tools import localstack
from tools.workspace import CHART


def test_the_stack_is_named_after_its_file() -> None:
    """pulumi finds a stack's file as Pulumi.<stack>.yaml, so any other name is refused before anything is made."""
    assert localstack.stack_name(Path("stacks/Pulumi.local.yaml")) == "local"
    for bad in ("stacks/local.yaml", "stacks/Pulumi..yaml", "Pulumi.local.yml"):
        with pytest.raises(SystemExit, match="Pulumi.<stack>.yaml"):
            localstack.stack_name(Path(bad))


def test_the_chart_version_is_read_from_a_directory_or_a_tgz(tmp_path: Path) -> None:
    """``--version`` defaults to the chart's own: the stand-in's directory, or a packaged chart's <name>/Chart.yaml."""
    assert localstack.chart_version(CHART) == "1.18.3"
    tgz = tmp_path / "cilium-1.19.6.tgz"
    with tarfile.open(tgz, "w:gz") as out:
        for name, text in (("cilium/Chart.yaml", "name: cilium\nversion: 1.19.6\n"),
                           ("cilium/charts/sub/Chart.yaml", "name: sub\nversion: 0.0.1\n")):
            info = tarfile.TarInfo(name)
            info.size = len(text)
            out.addfile(info, io.BytesIO(text.encode()))
    assert localstack.chart_version(tgz) == "1.19.6"
    empty = tmp_path / "empty.tgz"
    with tarfile.open(empty, "w:gz"):
        pass
    with pytest.raises(SystemExit, match="holds no <chart>/Chart.yaml"):
        localstack.chart_version(empty)


def test_the_stack_config_is_a_valid_vip_mesh_on_loopback(tmp_path: Path) -> None:
    """Each cluster keeps the id of its place among the mesh's members (a stack of some of them too), its VIP on
    127.0.0.0/8; with the CA key set apart, the config passes the program's own validation."""
    cert, key = localstack.mesh_ca(tmp_path)
    assert (tmp_path / "pki" / "mesh-ca.key").stat().st_mode & 0o777 == 0o600
    assert localstack.mesh_ca(tmp_path) == (cert, key)  # made once
    config = localstack.stack_config(tmp_path / "kubeconfig", cert, ["cls-c", "cls-a"], ["cls-a", "cls-b", "cls-c"])
    assert [(c["name"], c["id"], c["apiserver"]["vip"]) for c in config["mesh:clusters"]] == [
        ("cls-c", 3, "127.0.3.100"), ("cls-a", 1, "127.0.1.100")]
    assert config["mesh:cilium"] == {"version": "1.18.3", "chart": str(CHART), "skipAwait": True}
    raw = {k.removeprefix("mesh:"): v for k, v in config.items()}
    settings = parse_settings({**raw, "caPrivateKey": key}, secret_keys=["caPrivateKey"])
    assert [c.name for c in settings.clusters] == ["cls-c", "cls-a"]
    assert "PRIVATE KEY" not in yaml.safe_dump(config)
