"""A local Cilium chart (``mesh:cilium.chart``): is it there, and is it the chart the stack names?

Air-gapped installs and mirrors give the chart as a directory or a ``.tgz`` (what
``helm pull cilium/cilium --version X`` writes). Helm would install whatever is at the path;
the program refuses a path that is missing, is not a chart, is not ``cilium``, or holds
another version than ``mesh:cilium.version`` (the values are made for that version).
``oci://`` references are resolved by Helm at deploy time and not checked here.

The chart's ``values.yaml`` (with ``values.schema.json`` and the templates) is also what user
Helm values are checked against (``check_values``, see ``meshcore.chartkeys``): a local chart
is read where it is; a chart from a repository or an OCI registry is not fetched (the program
and the offline plan make no network call), so the check reads the copy ``helm pull`` leaves
in the chart cache, ``${XDG_CACHE_HOME:-~/.cache}/tke-cilium-mesh/charts/cilium-<version>.tgz``
(``helm pull cilium --repo https://helm.cilium.io/ --version 1.18.3 -d ~/.cache/tke-cilium-mesh/charts``).
Without one the values are not checked, and ``check_values`` says so (a warning of the
program, a line of the offline plan's summary.md).
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from meshcore import chartkeys, keypaths, presets
from meshcore.errors import ConfigIssue, MeshConfigError, naming_clusters

if TYPE_CHECKING:
    from meshcore.config import CiliumSettings, Settings

NOT_CHECKED = "Helm values not checked"
"""How the warning of an unchecked run starts (the offline plan finds it by this)."""


def is_local(chart: str) -> bool:
    return not chart.startswith("oci://")


def resolve(chart: str, project_dir: Path) -> Path:
    """A relative chart path is relative to the project directory (where Pulumi runs the program)."""
    path = Path(chart).expanduser()
    return path if path.is_absolute() else project_dir / path


def _chart_files(path: Path, wanted: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    """(path inside the chart, text) of the chart's own files whose path starts with one of
    ``wanted`` (a chart directory, or the top directory of a .tgz; not its subcharts)."""
    if path.is_dir():
        for name in wanted:
            target = path / name
            files = sorted(target.rglob("*")) if target.is_dir() else [target]
            for f in files:
                if f.is_file():
                    yield f.relative_to(path).as_posix(), f.read_text(encoding="utf-8")
        return
    with tarfile.open(path, "r:*") as tar:
        for member in tar.getmembers():
            inner = member.name.split("/", 1)[1] if "/" in member.name else ""
            if member.isfile() and any(inner == w or inner.startswith(f"{w}/") for w in wanted):
                fh = tar.extractfile(member)
                if fh is not None:
                    yield inner, fh.read().decode("utf-8")


def _chart_yaml(path: Path) -> str | None:
    """The text of the chart's Chart.yaml (a chart directory, or the top directory of a .tgz)."""
    return next((text for _, text in _chart_files(path, ("Chart.yaml",))), None)


def check_local_chart(chart: str, version: str, project_dir: Path, key: str,
                      version_key: str = "mesh:cilium.version") -> list[ConfigIssue]:
    """Problems with the local chart ``chart`` (empty when it is chart ``cilium`` at ``version``, which
    ``version_key`` sets)."""
    path = resolve(chart, project_dir)
    fix = (f"set {key} to the directory or .tgz of the cilium chart {version} "
           f"(helm pull cilium/cilium --version {version})")
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
        issues.append(ConfigIssue(key, f"{path} is chart version {meta.get('version')}, but {version_key} is "
                                       f"{version} (the values are made for it): set {version_key}: "
                                       f"{meta.get('version')} or point {key} at the {version} chart"))
    return issues


def cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where ``check_values`` looks for charts of a repository: ``$XDG_CACHE_HOME/tke-cilium-mesh/charts``
    (``~/.cache/tke-cilium-mesh/charts`` when XDG_CACHE_HOME is not set)."""
    base = environ.get("XDG_CACHE_HOME") or os.path.join(environ.get("HOME") or os.path.expanduser("~"), ".cache")
    return Path(base) / "tke-cilium-mesh" / "charts"


def pull_command(chart: str | None, repository: str, version: str, directory: Path) -> str:
    """The ``helm pull`` that puts the chart into ``directory`` as ``cilium-<version>.tgz``."""
    source = chart if chart is not None and not is_local(chart) else f"cilium --repo {repository}"
    return f"helm pull {source} --version {version} -d {directory}"


def chart_keys(path: Path, version: str) -> chartkeys.ChartKeys:
    """The key tree of the chart at ``path`` (directory or .tgz): its values.yaml, values.schema.json
    and templates. OSError, tarfile.TarError, UnicodeDecodeError, ValueError (also for JSON and YAML
    errors, both ValueErrors or YAMLErrors) when they cannot be read; KeyError without values.yaml."""
    files = dict(_chart_files(path, ("values.yaml", "values.schema.json", "templates")))
    templates = [t for n, t in files.items() if n.startswith("templates/")]
    tree = chartkeys.build(f"cilium {version}", files["values.yaml"], files.get("values.schema.json"), templates)
    # The presets' paths are values the chart reads (reviewed against the chart, tested), although
    # values.yaml may not list them (cni.externalRouting); a user may override any of them.
    for preset in presets.PRESETS.values():
        for leaf in _leaves(preset):
            tree.accept(leaf)
    return tree


def _leaves(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for k, v in tree.items():
        if isinstance(v, dict) and v:
            yield from _leaves(v, (*prefix, k))
        else:
            yield (*prefix, k)


def _key_part(part: Any) -> Any:
    """A user's mapping key as part of a config key (unprintable characters escaped)."""
    text = str(part)
    return text if text.isprintable() else json.dumps(text)[1:-1]


def check_values(settings: Settings, project_dir: Path,
                 environ: Mapping[str, str] = os.environ) -> tuple[list[ConfigIssue], str | None]:
    """Check every user Helm value path (``mesh:cilium.values``, each ``mesh:clusters[i].values``)
    against the chart's key tree (``meshcore.chartkeys``).

    Returns (one issue per unknown path, keyed at that path; a warning when the check did not
    run). The chart is ``mesh:cilium.chart`` when it is local (already checked by
    ``check_local_chart``), else ``cache_dir()/cilium-<version>.tgz``; without it the warning
    says how to get it. Nothing to check (no user values): ([], None). A cluster with its own chart
    version (``mesh:clusters[i].cilium``, a wave of an upgrade) has its values, and the shared
    ``mesh:cilium.values`` it also receives, checked against that chart.
    """
    from meshcore.config import NS

    own = [c for c in settings.clusters if c.cilium is not None and settings.version_of(c) != settings.cilium.version]
    sources = [(f"{NS}:cilium.values", settings.cilium.values)] + [
        (f"{c.key}.values", c.values) for c in settings.clusters if c not in own]
    issues, not_checked = _check_values(settings.cilium, sources, project_dir, environ, f"{NS}:cilium.chart")
    for c in own:
        more, note = _check_values(settings.cilium_of(c), [(f"{NS}:cilium.values", settings.cilium.values),
                                                           (f"{c.key}.values", c.values)],
                                   project_dir, environ, f"{c.key}.cilium.chart")
        issues += [i for i in more if i not in issues]
        not_checked = not_checked or note
    return issues, not_checked


def _check_values(cilium: CiliumSettings, sources: Sequence[tuple[str, Mapping[str, Any]]], project_dir: Path,
                  environ: Mapping[str, str], chart_key: str) -> tuple[list[ConfigIssue], str | None]:
    from meshcore.config import NS

    sources = [(k, v) for k, v in sources if v]
    if not sources:
        return [], None
    version = cilium.version
    local = cilium.chart is not None and is_local(cilium.chart)
    path = (resolve(cilium.chart, project_dir) if local and cilium.chart is not None
            else cache_dir(environ) / f"cilium-{version}.tgz")
    pull = pull_command(cilium.chart, cilium.repository, version, cache_dir(environ))
    where = f"the paths of {NS}:cilium.values and {NS}:clusters[i].values"
    if not local:
        if not path.is_file():
            return [], (f"{NOT_CHECKED}: the cilium {version} chart ignores unknown keys (a typo has no effect), "
                        f"and there is no copy of it at {path} to check {where} against; to check them: {pull}")
        meta = _meta(path)
        if meta != ("cilium", version):
            return [], (f"{NOT_CHECKED}: {path} is not the cilium {version} chart (its Chart.yaml says "
                        f"{meta[0]!r} {meta[1]!r}), so {where} were not checked; replace it: {pull}")
    try:
        tree = chart_keys(path, version)
    except (OSError, tarfile.TarError, UnicodeError, ValueError, KeyError, yaml.YAMLError) as err:
        problem = "it has no values.yaml" if isinstance(err, KeyError) else f"its values cannot be read ({err})"
        if local:
            return [ConfigIssue(chart_key, f"{path}: {problem}; point it at the cilium {version} "
                                                      "chart as helm pull writes it")], None
        return [], f"{NOT_CHECKED}: {path}: {problem}, so {where} were not checked; replace it: {pull}"
    issues = [
        ConfigIssue(keypaths.render(base, tuple(_key_part(p) for p in problem.path)), problem.message(tree.chart))
        for base, values in sources
        for problem in tree.problems(values)
    ]
    return issues, None


def _meta(path: Path) -> tuple[Any, Any]:
    """(name, version) of the chart at ``path``; (None, None) when it has no readable Chart.yaml."""
    try:
        text = _chart_yaml(path)
        meta = yaml.safe_load(text) if text is not None else None
    except (OSError, tarfile.TarError, UnicodeError, yaml.YAMLError):
        return None, None
    return (meta.get("name"), str(meta.get("version"))) if isinstance(meta, dict) else (None, None)


def validated_settings(raw: Mapping[str, Any], secret_keys: Sequence[str], project_dir: Path,
                       environ: Mapping[str, str] = os.environ) -> tuple[Settings, str | None]:
    """The stack's settings as every entry point validates them (the program, ``tools.doctor``):
    the config (``meshcore.config.parse_settings``), then a local chart, then the Helm value paths.
    Raises ``MeshConfigError`` with the problems; returns the settings and the warning that the
    value paths could not be checked (or None)."""
    from meshcore.config import NS, parse_settings

    settings = parse_settings(raw, secret_keys)
    chart = settings.cilium.chart
    if chart is not None and is_local(chart):
        issues = check_local_chart(chart, settings.cilium.version, project_dir, f"{NS}:cilium.chart")
        if issues:
            raise MeshConfigError(issues)
    own = [(c, settings.cilium_of(c)) for c in settings.clusters if c.cilium is not None and c.cilium.chart]
    issues = [i for c, cilium in own if cilium.chart is not None and is_local(cilium.chart)
              for i in check_local_chart(cilium.chart, cilium.version, project_dir, f"{c.key}.cilium.chart",
                                         f"{c.key}.cilium.version")]
    if issues:
        raise MeshConfigError(naming_clusters(issues, settings.entry_names))
    issues, not_checked = check_values(settings, project_dir, environ)
    if issues:
        raise MeshConfigError(naming_clusters(issues, settings.entry_names))
    return settings, not_checked
