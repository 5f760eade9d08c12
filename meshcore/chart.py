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
Without one it reads the key index that ships with the program (``meshcore/keyindex/``: the keys
of the chart's ``values.yaml`` and ``values.schema.json``, not those only its templates read),
so a typo is refused offline too. A version without an index of its own (1.18.5) is checked
against the indexes of its minor together (1.18.3 and 1.18.12: a key any of them has is
accepted; patches add keys, they seldom remove one), and the errors name them. Only a minor
without any index and without a copy is not checked, and ``check_values`` says so (a warning
of the program; the offline plan prints it, adds it to summary.md and graph.json, and its diff
repeats it).
"""

from __future__ import annotations

import functools
import json
import os
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from meshcore import chartkeys, keypaths, presets, versions
from meshcore.errors import ConfigIssue, MeshConfigError, naming_clusters

if TYPE_CHECKING:
    from meshcore.config import CiliumSettings, Settings

NOT_CHECKED = "Helm values not checked"
"""How the warning of an unchecked run starts (the offline plan finds it by this)."""
INDEX_INSTEAD = "Helm values checked against the key index"
"""How the warning starts when the chart cache holds an unusable copy and the key index was read instead."""
INDEX_DIR = Path(__file__).resolve().parent / "keyindex"
"""The key indexes that ship with the program: ``cilium-<version>.json`` (``meshcore.chartkeys.index_json``),
written by ``python -m tools.schema``."""


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
    return _with_presets(chartkeys.build(f"cilium {version}", files["values.yaml"], files.get("values.schema.json"),
                                         templates))


def _with_presets(tree: chartkeys.ChartKeys) -> chartkeys.ChartKeys:
    # The presets' paths are values the chart reads (reviewed against the chart, tested), although
    # values.yaml may not list them (cni.externalRouting); a user may override any of them.
    for preset in presets.PRESETS.values():
        for leaf in _leaves(preset):
            tree.accept(leaf)
    return tree


def index_file(version: str, directory: Path | None = None) -> Path:
    """Where the key index of the cilium ``version`` chart is (``INDEX_DIR`` unless ``directory``)."""
    return (INDEX_DIR if directory is None else directory) / f"cilium-{version}.json"


def index_versions(directory: Path | None = None) -> list[str]:
    """The chart versions with a key index (in ``INDEX_DIR`` unless ``directory``), oldest first."""
    d = INDEX_DIR if directory is None else directory
    found = [f.name[len("cilium-"):-len(".json")] for f in d.glob("cilium-*.json")] if d.is_dir() else []
    return sorted((v for v in found if versions.is_supported(v)), key=versions.parse)


@functools.cache
def _index_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def index_keys(version: str, directory: Path | None = None) -> tuple[chartkeys.ChartKeys, tuple[str, ...]] | None:
    """The key tree of the cilium ``version`` chart from the key indexes (with the presets' paths) and the versions
    whose indexes it is: ``version``'s own; else every index of its minor together (a key any of those patches
    has is accepted); None when its minor has none."""
    indexed = index_versions(directory)
    used = ((version,) if version in indexed else
            tuple(v for v in indexed if versions.minor_of(v) == versions.minor_of(version)))
    if not used:
        return None
    trees = [chartkeys.from_index(f"cilium {v}", _index_text(index_file(v, directory))) for v in used]
    tree = trees[0] if len(trees) == 1 else chartkeys.union(f"cilium {version}", trees)
    return _with_presets(chartkeys.ChartKeys(f"cilium {version}", tree.root)), used


def _index_note(version: str, used: Sequence[str], pull: str) -> str:
    """What errors found against a key index add: which index, and how to check against the chart itself."""
    names = " and ".join(used)
    own = "" if version in used else f"; none of {version} ships"
    return (f"; checked against the key index of cilium {names} that ships with the program{own} (no copy of the "
            f"chart at hand; a key only the chart's templates read is known with one: {pull})")


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
                 environ: Mapping[str, str] = os.environ) -> tuple[list[ConfigIssue], list[str]]:
    """Check every user Helm value path (``mesh:cilium.values``, each ``mesh:clusters[i].values``)
    against the chart's key tree (``meshcore.chartkeys``).

    Returns (one issue per unknown path, keyed at that path; the warnings of the check: that it did
    not run, or that it read the key index instead of an unusable copy of the chart). The chart is
    ``mesh:cilium.chart`` when it is local (already checked by ``check_local_chart``), else
    ``cache_dir()/cilium-<version>.tgz``, else the key index (``index_keys``); without any the
    warning says how to get a copy. Nothing to check (no user values): ([], []). A cluster with its own chart
    version (``mesh:clusters[i].cilium``, a wave of an upgrade) has its values, and the shared
    ``mesh:cilium.values`` it also receives, checked against that chart.
    """
    from meshcore.config import NS

    own = [c for c in settings.clusters if c.cilium is not None and settings.version_of(c) != settings.cilium.version]
    sources = [(f"{NS}:cilium.values", settings.cilium.values)] + [
        (f"{c.key}.values", c.values) for c in settings.clusters if c not in own]
    issues, notes = _check_values(settings.cilium, sources, project_dir, environ, f"{NS}:cilium.chart")
    for c in own:
        more, said = _check_values(settings.cilium_of(c), [(f"{NS}:cilium.values", settings.cilium.values),
                                                           (f"{c.key}.values", c.values)],
                                   project_dir, environ, f"{c.key}.cilium.chart")
        issues += [i for i in more if i not in issues]
        notes += [n for n in said if n not in notes]
    return issues, notes


_UNREADABLE = (OSError, tarfile.TarError, UnicodeError, ValueError, KeyError, yaml.YAMLError)
"""What reading a chart copy may raise (``chart_keys``)."""


def _problem(err: Exception) -> str:
    return "it has no values.yaml" if isinstance(err, KeyError) else f"its values cannot be read ({err})"


def _copy(chart: str | None, version: str, project_dir: Path, environ: Mapping[str, str]) -> tuple[Path, bool]:
    """(the copy of the chart the check reads first, whether it is the local ``mesh:cilium.chart``)."""
    if chart is not None and is_local(chart):
        return resolve(chart, project_dir), True
    return cache_dir(environ) / f"cilium-{version}.tgz", False


def _cached_keys(path: Path, version: str) -> tuple[chartkeys.ChartKeys | None, str | None]:
    """(the key tree of the chart cache's ``path``, or None with why it is not used; (None, None) when absent)."""
    if not path.is_file():
        return None, None
    meta = _meta(path)
    if meta != ("cilium", version):
        return None, f"{path} is not the cilium {version} chart (its Chart.yaml says {meta[0]!r} {meta[1]!r})"
    try:
        return chart_keys(path, version), None
    except _UNREADABLE as err:
        return None, f"{path}: {_problem(err)}"


def _check_values(cilium: CiliumSettings, sources: Sequence[tuple[str, Mapping[str, Any]]], project_dir: Path,
                  environ: Mapping[str, str], chart_key: str) -> tuple[list[ConfigIssue], list[str]]:
    from meshcore.config import NS

    sources = [(k, v) for k, v in sources if v]
    if not sources:
        return [], []
    version = cilium.version
    path, local = _copy(cilium.chart, version, project_dir, environ)
    pull = pull_command(cilium.chart, cilium.repository, version, cache_dir(environ))
    where = f"the paths of {NS}:cilium.values and {NS}:clusters[i].values"
    notes: list[str] = []
    origin = ""
    if local:
        try:
            tree = chart_keys(path, version)
        except _UNREADABLE as err:
            return [ConfigIssue(chart_key, f"{path}: {_problem(err)}; point it at the cilium {version} "
                                           "chart as helm pull writes it")], []
    else:
        cached, unusable = _cached_keys(path, version)
        found = (cached, ()) if cached is not None else index_keys(version)
        if found is None:
            why = unusable or f"there is no copy of it at {path}"
            return [], [f"{NOT_CHECKED}: the cilium {version} chart ignores unknown keys (a typo has no effect), the "
                        f"program ships no key index of chart {versions.minor_of(version)}, and {why}, so {where} "
                        f"were not checked; to check them: {pull}"]
        tree, used = found
        if cached is None:
            origin = _index_note(version, used, pull)
            if unusable is not None:
                notes.append(f"{INDEX_INSTEAD}: {unusable}, so {where} were checked against the key index of "
                             f"cilium {' and '.join(used)} instead (without the chart's templates); replace it: {pull}")
    issues = [
        ConfigIssue(keypaths.render(base, tuple(_key_part(p) for p in problem.path)),
                    problem.message(tree.chart) + origin)
        for base, values in sources
        for problem in tree.problems(values)
    ]
    return issues, notes


def keys_beyond_index(chart: str | None, version: str, releases: Sequence[Mapping[str, Any]], project_dir: Path,
                      environ: Mapping[str, str] = os.environ) -> list[list[keypaths.Path]]:
    """For the values of each release of the cilium ``version`` chart ``chart`` (None: of a repository), the topmost
    paths that the copy of the chart the check reads (the local ``chart``, else the chart cache's) knows and the key
    index does not: keys only its templates read, which the offline plan records so that its diff does not take
    them for typos. Empty lists without a usable copy or without an index."""
    path, local = _copy(chart, version, project_dir, environ)
    try:
        tree = chart_keys(path, version) if local else _cached_keys(path, version)[0]
    except _UNREADABLE:
        tree = None
    found = index_keys(version) if tree is not None else None
    if tree is None or found is None:
        return [[] for _ in releases]
    index, out = found[0], []
    for values in releases:
        refused = [p.path for p in tree.problems(values)]
        out.append([p.path for p in index.problems(values) if not any(r[:len(p.path)] == p.path for r in refused)])
    return out


def _meta(path: Path) -> tuple[Any, Any]:
    """(name, version) of the chart at ``path``; (None, None) when it has no readable Chart.yaml."""
    try:
        text = _chart_yaml(path)
        meta = yaml.safe_load(text) if text is not None else None
    except (OSError, tarfile.TarError, UnicodeError, yaml.YAMLError):
        return None, None
    return (meta.get("name"), str(meta.get("version"))) if isinstance(meta, dict) else (None, None)


def validated_settings(raw: Mapping[str, Any], secret_keys: Sequence[str], project_dir: Path,
                       environ: Mapping[str, str] = os.environ) -> tuple[Settings, list[str]]:
    """The stack's settings as every entry point validates them (the program, ``tools.doctor``):
    the config (``meshcore.config_parse.parse_settings``), then a local chart, then the Helm value paths.
    Raises ``MeshConfigError`` with the problems; returns the settings and the warnings of the value-path
    check (``check_values``: that it did not run, or read the key index instead of an unusable copy)."""
    from meshcore.config import NS
    from meshcore.config_parse import parse_settings

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
    issues, notes = check_values(settings, project_dir, environ)
    if issues:
        raise MeshConfigError(naming_clusters(issues, settings.entry_names))
    return settings, notes
