"""Where the chart comes from (mesh:cilium.chart) and whether the releases wait (skipAwait)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from meshcore import chart as charts
from meshcore.config_parse import parse_settings
from tests.conftest import mesh_config
from tests.test_config import issues_of

KEY = "mesh:cilium.chart"


def _chart_dir(tmp_path: Path, name: str = "cilium", version: str = "1.18.3") -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "Chart.yaml").write_text(f"apiVersion: v2\nname: {name}\nversion: {version}\n")
    return d


def _tgz(tmp_path: Path, name: str = "cilium", version: str = "1.18.3") -> Path:
    path = tmp_path / f"{name}-{version}.tgz"
    data = f"apiVersion: v2\nname: {name}\nversion: {version}\n".encode()
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(f"{name}/Chart.yaml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def test_the_default_is_chart_cilium_of_the_repository_and_releases_wait() -> None:
    s = parse_settings(mesh_config(2))
    assert s.cilium.chart is None and s.cilium.skip_await is False


@pytest.mark.parametrize("ref", ["oci://registry.example.com/cilium/cilium", "./charts/cilium-1.18.3.tgz",
                                 "/srv/charts/cilium"])
def test_a_local_path_or_an_oci_reference_is_taken(ref: str) -> None:
    s = parse_settings(mesh_config(2, cilium={"chart": ref, "skipAwait": True}))
    assert s.cilium.chart == ref and s.cilium.skip_await is True


@pytest.mark.parametrize("ref, says", [
    ("oci://registry.example.com/cilium/cilium:1.18.3", "no tag or digest"),
    ("oci://registry.example.com", "is not an OCI chart reference"),
    ("https://helm.cilium.io/cilium", "set mesh:cilium.repository instead"),
    ("", "must be a non-empty string"),
])
def test_a_chart_reference_of_another_shape_is_refused(ref: str, says: str) -> None:
    assert says in issues_of(mesh_config(2, cilium={"chart": ref}))[KEY]


def test_chart_and_repository_together_are_refused() -> None:
    issues = issues_of(mesh_config(2, cilium={"chart": "./cilium", "repository": "https://helm.cilium.io/"}))
    assert "remove one of the two" in issues["mesh:cilium.repository"]


def test_skip_await_must_be_a_boolean() -> None:
    assert "must be true or false" in issues_of(mesh_config(2, cilium={"skipAwait": "yes"}))["mesh:cilium.skipAwait"]


def test_a_local_chart_of_the_stacks_version_passes(tmp_path: Path) -> None:
    assert charts.check_local_chart(str(_chart_dir(tmp_path)), "1.18.3", tmp_path, KEY) == []
    assert charts.check_local_chart(_tgz(tmp_path).name, "1.18.3", tmp_path, KEY) == [], "relative to the project"


def test_a_missing_or_wrong_local_chart_is_refused_naming_the_key(tmp_path: Path) -> None:
    def message(path: str) -> str:
        issues = charts.check_local_chart(path, "1.18.3", tmp_path, KEY)
        assert [i.key for i in issues] == [KEY]
        return issues[0].message

    assert "does not exist" in message("nowhere")
    assert "helm pull cilium/cilium --version 1.18.3" in message("nowhere")
    (tmp_path / "empty").mkdir()
    assert "not a Helm chart" in message(str(tmp_path / "empty"))
    assert "is chart version 1.18.5, but mesh:cilium.version is 1.18.3" in message(str(_tgz(tmp_path, version="1.18.5")))
    assert "not cilium" in message(str(_chart_dir(tmp_path, name="tetragon")))
    (tmp_path / "junk.tgz").write_bytes(b"not a tarball")
    assert "not a readable chart" in message(str(tmp_path / "junk.tgz"))
