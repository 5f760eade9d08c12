"""A local Cilium chart (``mesh:cilium.chart``): is it there, and is it the chart the stack names?

Air-gapped installs and mirrors give the chart as a directory or a ``.tgz`` (what
``helm pull cilium/cilium --version X`` writes). Helm would install whatever is at the path;
the program refuses a path that is missing, is not a chart, is not ``cilium``, or holds
another version than ``mesh:cilium.version`` (the values are made for that version).
``oci://`` references are resolved by Helm at deploy time and not checked here.
"""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any, Optional

import yaml

from meshcore.errors import ConfigIssue


def is_local(chart: str) -> bool:
    return not chart.startswith("oci://")


def resolve(chart: str, project_dir: Path) -> Path:
    """A relative chart path is relative to the project directory (where Pulumi runs the program)."""
    path = Path(chart).expanduser()
    return path if path.is_absolute() else project_dir / path


def _chart_yaml(path: Path) -> Optional[str]:
    """The text of the chart's Chart.yaml (a chart directory, or the top directory of a .tgz)."""
    if path.is_dir():
        meta = path / "Chart.yaml"
        return meta.read_text(encoding="utf-8") if meta.is_file() else None
    with tarfile.open(path, "r:*") as tar:
        for member in tar.getmembers():
            parts = member.name.split("/")
            if len(parts) == 2 and parts[1] == "Chart.yaml" and member.isfile():
                fh = tar.extractfile(member)
                return fh.read().decode("utf-8") if fh is not None else None
    return None


def check_local_chart(chart: str, version: str, project_dir: Path, key: str) -> list[ConfigIssue]:
    """Problems with the local chart ``chart`` (empty when it is chart ``cilium`` at ``version``)."""
    path = resolve(chart, project_dir)
    fix = f"set {key} to the directory or .tgz of the cilium chart {version} (helm pull cilium/cilium --version {version})"
    if not path.exists():
        return [ConfigIssue(key, f"{path} does not exist; {fix}")]
    try:
        text = _chart_yaml(path)
        meta: Any = yaml.safe_load(text) if text is not None else None
    except (OSError, tarfile.TarError, UnicodeDecodeError, yaml.YAMLError) as err:
        return [ConfigIssue(key, f"{path} is not a readable chart ({err}); {fix}")]
    if not isinstance(meta, dict):
        return [ConfigIssue(key, f"{path} is not a Helm chart (no Chart.yaml at its top); {fix}")]
    issues = []
    if meta.get("name") != "cilium":
        issues.append(ConfigIssue(key, f"{path} is the chart {meta.get('name')!r}, not cilium; {fix}"))
    if str(meta.get("version")) != version:
        issues.append(ConfigIssue(key, f"{path} is chart version {meta.get('version')}, but mesh:cilium.version is "
                                       f"{version} (the values are made for it): set mesh:cilium.version: "
                                       f"{meta.get('version')} or point {key} at the {version} chart"))
    return issues
