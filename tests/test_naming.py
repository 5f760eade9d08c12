"""Every message naming a cluster entry names its cluster: ``mesh:clusters[1].id (cls-b)``, the name after the whole
path (which stays one to copy into ``pulumi config set --path``). The invalid-stack corpus checks every line it
gets (tests/test_corpus.py); these are the messages only a deployed stack or a kubeconfig gives."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from components.program import InvalidConfig
from meshcore.errors import ConfigIssue, MeshConfigError, naming_clusters
from meshcore.keypaths import named
from tests.conftest import mesh_config
from tests.mockcloud import ComputingMocks, run
from tests.naming import entry_names, unnamed
from tests.test_lifecycle import deployed
from tools.mockengine import Recording


def test_the_name_follows_the_whole_key() -> None:
    assert named("mesh:clusters[1].values.hubble.relya", "cls-b") == "mesh:clusters[1].values.hubble.relya (cls-b)"
    assert named("mesh:clusters[1]", None) == "mesh:clusters[1]"
    issue = ConfigIssue("mesh:clusters[1].id", "1 is already used", "cls-b")
    assert issue.line() == "mesh:clusters[1].id (cls-b): 1 is already used"
    assert str(MeshConfigError([issue])).endswith("\nmesh:clusters[1].id (cls-b): 1 is already used")


def test_only_keys_of_named_entries_are_named() -> None:
    issues = [ConfigIssue("mesh:clusters[1].id", "m"), ConfigIssue("mesh:clusters[2]", "m"),
              ConfigIssue("mesh:clusters[10].name", "m"), ConfigIssue("mesh:clusters", "m"),
              ConfigIssue("mesh:clustersX[1]", "m"), ConfigIssue("mesh:clusters[1].id", "m", "kept")]
    got = naming_clusters(issues, {1: "cls-b", 2: "cls-c"})
    assert [i.where for i in got] == ["mesh:clusters[1].id (cls-b)", "mesh:clusters[2] (cls-c)",
                                      "mesh:clusters[10].name", "mesh:clusters", "mesh:clustersX[1]",
                                      "mesh:clusters[1].id (kept)"]


def _refused(raw: dict, tmp_path: Path, mocks: ComputingMocks | None = None) -> tuple[list[str], Recording]:
    recording = Recording(project="tke-cilium-mesh", stack="test")
    with pytest.raises(Exception) as exc:
        run(raw, tmp_path, mocks=mocks, recording=recording)
    err: BaseException | None = exc.value
    while err is not None and not isinstance(err, InvalidConfig):
        err = err.__cause__ or err.__context__
    assert isinstance(err, InvalidConfig), exc.value
    return [i.line() for i in err.issues], recording


def _all_named(lines: list[str], raw: dict) -> None:
    names = entry_names(raw["clusters"])
    assert lines
    for line in lines:
        assert unnamed(line, names) == [], line


def test_a_refused_identity_change_names_the_cluster(tmp_path: Path) -> None:
    raw = mesh_config(3)
    previous = deployed(raw, tmp_path)
    changed = copy.deepcopy(raw)
    changed["clusters"][1]["id"] = 9
    lines, recording = _refused(changed, tmp_path, ComputingMocks(previous))
    assert lines[0].startswith("mesh:clusters[1].id (cls-00000002): cluster cls-00000002 was deployed with id 2")
    _all_named(lines + [m for level, m in recording.logs if level in ("error", "warning")], changed)


def test_an_allowed_identity_change_warns_naming_the_cluster(tmp_path: Path) -> None:
    raw = mesh_config(2)
    previous = deployed(raw, tmp_path)
    changed = copy.deepcopy(raw)
    changed["clusters"][1]["id"] = 9
    changed["allowIdentityChange"] = ["cls-00000002"]
    rec = run(changed, tmp_path, mocks=ComputingMocks(previous))
    warnings = [m for level, m in rec.logs if level == "warning" and "mesh:clusters[" in m]
    assert warnings and warnings[0].startswith("mesh:clusters[1].id (cls-00000002): ")
    _all_named(warnings, changed)


def test_a_refused_chart_step_names_the_cluster_whose_version_it_is(tmp_path: Path) -> None:
    raw = mesh_config(2)
    raw["cilium"] = {"version": "1.18.12"}
    raw["policyDefaultLocalCluster"] = False
    previous = deployed(raw, tmp_path)
    step = copy.deepcopy(raw)
    step["clusters"][1]["cilium"] = {"version": "1.20.0"}
    lines, _ = _refused(step, tmp_path, ComputingMocks(previous))
    assert lines[0].startswith("mesh:clusters[1].cilium.version (cls-00000002): "), lines
    _all_named(lines, step)


def test_a_missing_context_names_the_cluster(tmp_path: Path) -> None:
    raw = mesh_config(3)
    with pytest.raises(InvalidConfig) as exc:
        run(raw, tmp_path, contexts=["cls-00000001"])
    lines = [i.line() for i in exc.value.issues]
    assert [line.split(": ")[0] for line in lines] == ["mesh:clusters[1].context (cls-00000002)",
                                                       "mesh:clusters[2].context (cls-00000003)"]
    _all_named(lines, raw)


def test_a_key_outside_the_entries_names_the_entry_its_message_blames() -> None:
    """mesh:hubbleRelay refused because one cluster's own values turn Hubble off: that entry is named."""
    from meshcore.config_parse import parse_settings

    raw = mesh_config(2, hubbleRelay=True)
    raw["clusters"][1]["values"] = {"hubble": {"enabled": False}}
    with pytest.raises(MeshConfigError) as exc:
        parse_settings(raw)
    [line] = [i.line() for i in exc.value.issues]
    assert line.startswith("mesh:hubbleRelay: is true but mesh:clusters[1].values (cls-00000002) sets "
                           "hubble.enabled: false; "), line
    _all_named([line], raw)
