"""Cilium 1.18 -> 1.19 -> 1.20: the version table at work, refusals, and the whole upgrade walked wave by wave.

The walk runs the real program on the mock engine, one run per wave, each reading back what the previous one
deployed (its ``clusters`` output, as the program's StackReference to itself does), and the offline plans of the
same stack files through the plan diff (what a pull request shows for each wave).
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pulumi
import pytest
import yaml

from meshcore import versions
from tests.conftest import ROOT, SHARED, committed_stacks, mesh_config, write_stack
from tests.mockcloud import ComputingMocks, by_type, release_values, run
from tools import diff, render, workspace
from tools.mockengine import Recording
from tools.plan import plan
from tools.render import scrub

RELEASE = "kubernetes:helm.sh/v3:Release"
VERSIONS = ["1.18.3", "1.18.12", "1.19.6", "1.20.0"]
NAMES = ["cls-00000001", "cls-00000002", "cls-00000003"]


def _issues(err: BaseException) -> dict[str, str]:
    from components.program import InvalidConfig

    while err is not None and not isinstance(err, InvalidConfig):
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
    assert isinstance(err, InvalidConfig), "the update must fail with InvalidConfig"
    return {i.key: i.message for i in err.issues}


@functools.cache
def _schema(version: str) -> Any:
    path = SHARED / f"cilium-{version}" / "values.schema.json"
    assert path.is_file(), f"no {path}: put the cilium {version} chart's values.schema.json there (MESH_SHARED_DIR)"
    schema = json.loads(path.read_text(encoding="utf-8"))
    return jsonschema.validators.validator_for(schema)(schema)


def _errors(validator: Any, values: dict[str, Any]) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(values)]


# --------------------------------------------------------------------------- every version plans and validates


def _at_version(stack: Path, version: str, tmp_path: Path) -> Path:
    doc = yaml.safe_load(stack.read_text(encoding="utf-8"))
    config = doc["config"]
    config.setdefault("mesh:cilium", {})["version"] = version
    if versions.minor_of(version) != "1.18":
        config["mesh:policyDefaultLocalCluster"] = False
    out = tmp_path / stack.name
    out.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return out


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("stack", [p.name for p in committed_stacks()])
def test_example_stacks_plan_at_every_version_and_match_its_schema(stack: str, version: str, tmp_path: Path) -> None:
    """Each example stack, at each supported chart version: the offline plan's values documents validate against
    that version's own values.schema.json, in the form that version reads."""
    files = render.artefacts(plan(str(_at_version(ROOT / "stacks" / stack, version, tmp_path))))
    docs = {k: yaml.safe_load(v) for k, v in files.items() if k.startswith("values/")}
    graph = json.loads(files["graph.json"])
    assert docs and {r["inputs"]["version"] for r in graph["resources"] if r["type"] == RELEASE} == {version}
    validator = _schema(version)
    row = versions.row(version)
    for name, values in docs.items():
        assert _errors(validator, values) == [], name
        peers = values["clustermesh"]["config"]["clusters"]
        assert isinstance(peers, list if row.peer_form == "list" else dict), name
        tls = values["clustermesh"]["apiserver"]["tls"]
        assert tls["auto"]["method"] == values["hubble"]["tls"]["auto"]["method"] == row.tls_method
        # The 1.19 chart has no clustermesh-apiserver certgen schedule (issued once, never renewed): set with cronJob.
        assert tls["auto"].get("schedule") == (versions.CERTGEN_SCHEDULE if row.tls_method == "cronJob" else None)
        assert tls.get("authMode") == row.auth_mode
        # cilium/cilium#44181: authMode migration/cluster with useAPIServer and clustermesh.config.enabled false
        # needs a clustermesh-remote-users ConfigMap nobody creates; the program always enables the config.
        assert values["clustermesh"]["useAPIServer"] is True and values["clustermesh"]["config"]["enabled"] is True
        assert values["upgradeCompatibility"] == versions.minor_of(version)  # a new stack: installed with it
    broken = copy.deepcopy(next(iter(docs.values())))
    broken["clustermesh"]["config"]["clusters"] = "cls-a"
    assert _errors(validator, broken), "the schema check must be able to fail"


# --------------------------------------------------------------------------- refusals on a running mesh


def _stack(version: str | None = None, own: dict[int, str] | None = None, stated: bool | None = None) -> dict:
    raw = mesh_config(3)
    if version is not None:
        raw["cilium"] = {"version": version}
    for i, v in (own or {}).items():
        raw["clusters"][i]["cilium"] = {"version": v}
    if stated is not None:
        raw["policyDefaultLocalCluster"] = stated
    return raw


def _deploy(raw: dict, tmp_path: Path, previous: dict | None = None) -> tuple[Recording, dict]:
    d = tmp_path / f"run{len(list(tmp_path.glob('run*')))}"
    d.mkdir()
    rec = run(raw, d, mocks=ComputingMocks(previous))
    return rec, scrub(rec.outputs)["clusters"]


@pytest.mark.parametrize("deployed, target, fragment", [
    ("1.18.3", "1.19.6", "does not start from the latest 1.18 patch: take the path 1.18.3 -> 1.18.12 -> 1.19.6"),
    ("1.18.12", "1.20.0", "skips a minor"),
    ("1.19.6", "1.18.12", "a minor downgrade (1.19.6 -> 1.18.12)"),
])
def test_a_step_off_the_path_is_refused_before_any_release(deployed: str, target: str, fragment: str,
                                                            tmp_path: Path) -> None:
    """Only consecutive minors, each from its latest patch, and never back: refused at the key that sets the
    version, saying the path, before any release is registered; nothing is recorded."""
    _, previous = _deploy(_stack(deployed, stated=False), tmp_path)
    raw, key = _stack(deployed, own={1: target}, stated=False), "mesh:clusters[1].cilium.version"
    if versions.minor_of(target) == "1.20":  # the others run 1.19.6 (a valid N-1/N mesh): only this step is wrong
        raw = _stack("1.19.6", own={1: target}, stated=False)
        for n in (NAMES[0], NAMES[2]):
            previous[n] = {**previous[n], "cilium": {"version": "1.19.6", "firstInstalled": "1.18"}}
    recording = Recording(project="tke-cilium-mesh", stack="test")
    with pytest.raises(Exception) as exc:
        run(raw, tmp_path, mocks=ComputingMocks(previous), recording=recording)
    issues = _issues(exc.value)
    assert list(issues) == [key] and fragment in issues[key], issues
    assert by_type(recording, RELEASE) == []
    assert "clusters" not in recording.outputs


def test_a_cluster_deployed_before_the_record_goes_to_the_latest_1_18_first(tmp_path: Path) -> None:
    """A stack deployed before the program recorded chart versions ran a 1.18 patch: a 1.18 patch is allowed (and
    recorded, first installed 1.18); 1.19 is refused until 1.18.12 is recorded."""
    _, previous = _deploy(_stack(), tmp_path)
    unrecorded = {n: {k: v for k, v in o.items() if k != "cilium"} for n, o in previous.items()}
    with pytest.raises(Exception) as exc:
        run(_stack("1.19.6", stated=False), tmp_path, mocks=ComputingMocks(unrecorded))
    issues = _issues(exc.value)
    assert set(issues) == {"mesh:cilium.version"}
    assert "first deploy 1.18.12" in issues["mesh:cilium.version"]
    rec, after = _deploy(_stack("1.18.12"), tmp_path, unrecorded)
    assert {n: o["cilium"] for n, o in after.items()} == {n: {"version": "1.18.12", "firstInstalled": "1.18"}
                                                          for n in NAMES}
    assert {release_values(r)["upgradeCompatibility"] for r in by_type(rec, RELEASE)} == {"1.18"}


def test_one_update_never_spans_two_minors_between_what_runs_and_what_it_installs(tmp_path: Path) -> None:
    """Each step allowed on its own, and the versions the update ends with one minor apart (1.19/1.20), yet
    cls-3 still runs 1.18.12 while cls-1 would go to 1.20.0 in the same update (and stays so if its own release
    fails): refused at the key of the cluster that moves furthest, before any release; nothing recorded."""
    _, previous = _deploy(_stack("1.18.12", stated=False), tmp_path)
    for n in NAMES[:2]:
        previous[n] = {**previous[n], "cilium": {"version": "1.19.6", "firstInstalled": "1.18"}}
    recording = Recording(project="tke-cilium-mesh", stack="test")
    with pytest.raises(Exception) as exc:
        run(_stack("1.19.6", own={0: "1.20.0"}, stated=False), tmp_path, mocks=ComputingMocks(previous),
            recording=recording)
    issues = _issues(exc.value)
    assert list(issues) == ["mesh:clusters[0].cilium.version"], issues
    assert f"{NAMES[0]} would run 1.20.0 while {NAMES[2]} still runs 1.18.12" in issues[
        "mesh:clusters[0].cilium.version"]
    assert "first upgrade every cluster to 1.19.6" in issues["mesh:clusters[0].cilium.version"]
    assert by_type(recording, RELEASE) == [] and "clusters" not in recording.outputs
    # The same target once cls-3 is recorded on 1.19.6: allowed.
    previous[NAMES[2]] = {**previous[NAMES[2]], "cilium": {"version": "1.19.6", "firstInstalled": "1.18"}}
    _deploy(_stack("1.19.6", own={0: "1.20.0"}, stated=False), tmp_path, previous)


@pytest.mark.parametrize("deployed, target, path", [
    ("1.19.7", "1.20.0", None),                 # a patch newer than the table's latest is past it
    ("1.18.13", "1.19.6", None),
    ("1.18.13", "1.20.0", "1.18.13 -> 1.19.6 -> 1.20.0"),
    ("1.18.3", "1.20.0", "1.18.3 -> 1.18.12 -> 1.19.6 -> 1.20.0"),
])
def test_the_path_never_goes_back_a_patch(deployed: str, target: str, path: str | None) -> None:
    problem = versions.upgrade_problem(deployed, target)
    assert (problem is None) == (path is None), problem
    if path is not None:
        assert f"take the path {path}," in str(problem)


@pytest.mark.parametrize("recorded", ["1.21.0", "latest", 7])
def test_a_record_the_program_cannot_read_is_refused(recorded: object, tmp_path: Path) -> None:
    """A chart version in the outputs that this program does not render (a newer program's, an edited state) is
    not taken for an unrecorded 1.18: refused, naming the output and what to do."""
    _, previous = _deploy(_stack("1.18.12"), tmp_path)
    previous[NAMES[1]] = {**previous[NAMES[1]], "cilium": {"version": recorded, "firstInstalled": "1.18"}}
    with pytest.raises(Exception) as exc:
        run(_stack("1.18.12"), tmp_path, mocks=ComputingMocks(previous))
    issues = _issues(exc.value)
    assert list(issues) == ["mesh:cilium.version"], issues
    message = issues["mesh:cilium.version"]
    assert f"clusters.{NAMES[1]}.cilium.version" in message and repr(recorded) in message
    assert "Run the program version that deployed it" in message


class _UnreachedRelease(ComputingMocks):
    """The engine's answer for a release this update did not reach (``pulumi up --target``): its state keeps the
    chart version of the last update."""

    def __init__(self, previous: dict, unreached: str, version: str) -> None:
        super().__init__(previous)
        self.unreached, self.version = unreached, version

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        rid, state = super().new_resource(args)
        if args.typ == RELEASE and args.name == f"{self.unreached}-cilium":
            state["version"] = self.version
        return rid, state


def test_the_record_is_the_releases_own_chart_version(tmp_path: Path) -> None:
    """The chart record in the outputs is what the engine says each release runs, not what the config asked."""
    _, previous = _deploy(_stack("1.18.12"), tmp_path)
    d = tmp_path / "unreached"
    d.mkdir()
    rec = run(_stack("1.18.12", own={0: "1.19.6"}, stated=False), d,
              mocks=_UnreachedRelease(previous, NAMES[0], "1.18.12"))
    records = {n: o["cilium"] for n, o in scrub(rec.outputs)["clusters"].items()}
    assert records[NAMES[0]] == {"version": "1.18.12", "firstInstalled": "1.18"}


# --------------------------------------------------------------------------- the whole walk, wave by wave


def _waves() -> list[tuple[str, str | None, dict[int, str]]]:
    """(step, mesh:cilium.version, per-cluster versions): 1.18.3 installed, then each target one cluster per
    wave (the first two by mesh:clusters[i].cilium.version, the last by mesh:cilium.version, dropping them).
    The stack states mesh:policyDefaultLocalCluster: false throughout (1.18's own default: stating it early
    changes nothing, and the 1.19 waves then touch only their cluster)."""
    steps: list[tuple[str, str | None, dict[int, str]]] = [("install 1.18.3", "1.18.3", {})]
    previous = "1.18.3"
    for target in VERSIONS[1:]:
        steps.append((f"{target} wave 1", previous, {0: target}))
        steps.append((f"{target} wave 2", previous, {0: target, 1: target}))
        steps.append((f"{target} wave 3", target, {}))
        previous = target
    return steps


def test_the_upgrade_walks_wave_by_wave(tmp_path: Path) -> None:
    """1.18.3 -> 1.18.12 -> 1.19.6 -> 1.20.0, one cluster per `pulumi up`: at every step only the wave's cluster
    gets a new chart version, the mesh is at most one minor apart, each cluster's peers are in the form of its
    own chart version (and validate against that version's schema), upgradeCompatibility stays the first minor,
    and the record read back is what was sent."""
    previous = None
    versions_before: dict[str, str] = {}
    values_before: dict[str, Any] = {}
    for step, mesh, own in _waves():
        raw = _stack(mesh, own, stated=False)
        rec, previous = _deploy(raw, tmp_path, previous)
        releases = {r.name.removesuffix("-cilium"): r for r in by_type(rec, RELEASE)}
        now = {n: r.inputs["version"] for n, r in releases.items()}
        changed = {n for n in now if versions_before and now[n] != versions_before[n]}
        assert len(changed) <= 1, (step, changed)
        if versions_before:
            assert changed, f"{step}: one cluster moves per wave"
        values_now = {n: release_values(r) for n, r in releases.items()}
        for n in set(values_before) - changed:
            assert values_now[n] == values_before[n], f"{step}: {n} is not in this wave but its values change"
        values_before = values_now
        minors = {versions.ORDER.index(versions.minor_of(v)) for v in now.values()}
        assert max(minors) - min(minors) <= 1, (step, now)
        for n, r in releases.items():
            values = release_values(r)
            peers = values["clustermesh"]["config"]["clusters"]
            if versions.row(now[n]).peer_form == "list":
                assert [p["name"] for p in peers] == [p for p in NAMES if p != n], step
            else:
                assert sorted(peers) == [p for p in NAMES if p != n], step
                assert all(set(e) == {"address", "port"} for e in peers.values()), step
            assert values["upgradeCompatibility"] == "1.18", (step, n)
            assert values["clustermesh"]["apiserver"]["tls"]["auto"]["method"] == versions.row(now[n]).tls_method
            assert values["clustermesh"]["policyDefaultLocalCluster"] is False, step
            assert _errors(_schema(now[n]), values) == [], (step, n)
        assert {n: o["cilium"] for n, o in previous.items()} == {
            n: {"version": v, "firstInstalled": "1.18"} for n, v in now.items()}, step
        versions_before = now
    assert set(versions_before.values()) == {"1.20.0"}


def _plan_dir(raw: dict, tmp_path: Path, name: str) -> Path:
    stack = write_stack(tmp_path, raw, stack="walk")
    out = tmp_path / name
    files = render.artefacts(plan(str(stack)))
    for rel, data in files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data if isinstance(data, bytes) else data.encode())
    return out


def walk_diffs(tmp_path: Path) -> list[tuple[str, diff.Diff, str]]:
    """(step, diff, its text) for each wave of the walk, from the offline plans of consecutive stack files."""
    out = []
    before = None
    for i, (step, mesh, own) in enumerate(_waves()):
        raw = _stack(mesh, own, stated=False)
        after = _plan_dir(raw, tmp_path, f"plan{i}")
        if before is not None:
            d = diff.compare(diff.load(str(before)), diff.load(str(after)))
            out.append((step, d, diff.render(d)))
        before = after
    return out


def test_the_plan_diff_shows_each_wave(tmp_path: Path) -> None:
    """Each wave's plan diff names the one cluster whose chart changes (rolling its agents, operator and
    clustermesh-apiserver), the clusters it leaves alone, and the mesh's versions after it; the peer form change
    is said at the minor boundary and no peer connection appears or disappears."""
    for step, d, text in walk_diffs(tmp_path):
        [(name, (a, b))] = d.wave.items()
        assert f"CHART UPGRADE in {name}: cilium {a} -> {b}: rolls ds/cilium" in text, step
        assert f"- this wave: {name} {a} -> {b}" in text, step
        others = [n for n in NAMES if n != name]
        assert "- not in this wave: " + ", ".join(f"{n} {d.charts[n][1]}" for n in others) in text, step
        assert "MORE THAN ONE MINOR APART" not in text and "REFUSED" not in text, step
        after = {b for _, b in d.charts.values()}
        skew = "one minor" if len({versions.minor_of(v) for v in after}) == 1 else "mixed N-1/N"
        assert f"- the mesh after this update: {', '.join(sorted(after, key=versions.parse))} ({skew})" in text, step
        assert ("changes to the map form" in text) == (versions.minor_of(a) == "1.18" != versions.minor_of(b)), step
        assert not d.connections_added and not d.connections_removed, step
        assert set(d.values) <= {name}, f"{step}: only the wave's cluster's values may change"
        assert all(c.path != ("upgradeCompatibility",) for c in d.values.get(name, [])), "pulumi up keeps it"
        assert [u.rsplit("::", 1)[-1] for u, keys in d.resources_updated if "version" in keys] == [f"{name}-cilium"]


def test_the_plan_diff_refuses_a_skipped_minor(tmp_path: Path) -> None:
    """Two plans whose step skips a minor: the diff says pulumi up refuses it, with the path."""
    old = _plan_dir(_stack("1.18.12", {}, None), tmp_path, "old")
    new = _plan_dir(_stack("1.18.12", {0: "1.19.6"}, False), tmp_path, "new")
    newer = _plan_dir(_stack("1.19.6", {0: "1.20.0"}, False), tmp_path, "newer")
    assert "REFUSED" not in diff.render(diff.compare(diff.load(str(old)), diff.load(str(new))))
    text = diff.render(diff.compare(diff.load(str(old)), diff.load(str(newer))))
    assert f"REFUSED BY pulumi up: {NAMES[0]}: chart 1.18.12 -> 1.20.0 skips a minor" in text
    assert f"CHART UPGRADE in {NAMES[1]}: cilium 1.18.12 -> 1.19.6" in text


@pytest.mark.parametrize("charts, expected", [
    ({"a": ("1.18.12", "1.19.6"), "b": ("1.18.12", "1.18.12")}, "1.18.12, 1.19.6 (mixed N-1/N)"),
    ({"a": ("1.19.6", "1.20.0"), "b": ("1.20.0", "1.20.0")}, "1.20.0 (one minor)"),
    ({"a": ("1.18.3", "1.18.12"), "b": ("1.18.3", "1.18.3")}, "1.18.3, 1.18.12 (one minor)"),
    # Not a mesh the program plans (the config refuses it), but a diff of hand-made or older plans may show it.
    ({"a": ("1.19.6", "1.20.0"), "b": ("1.18.12", "1.18.12")}, "1.18.12, 1.20.0 (MORE THAN ONE MINOR APART)"),
    ({"a": ("1.20.0", "1.21.0"), "b": ("1.20.0", "1.20.0")},
     "1.20.0, 1.21.0 (not a chart version of this program: 1.21.0)"),
])
def test_the_plan_diff_judges_the_mesh_after_a_wave(charts: dict, expected: str) -> None:
    """The chart versions line says how far apart the mesh is after the wave, by meshcore.versions' rule, the
    versions ordered as versions (1.18.12 after 1.18.3)."""
    d = diff.Diff(charts=charts, values={"a": []})
    assert f"- the mesh after this update: {expected}\n" in diff.render(d)


def test_the_plan_diff_refuses_an_update_spanning_two_minors(tmp_path: Path) -> None:
    """cls-3 still on 1.18.12 goes to 1.19.6 while cls-1 goes 1.19.6 -> 1.20.0 in the same update: each step is
    allowed, the update is not (pulumi up refuses it); the diff says so, naming the path."""
    old = _plan_dir(_stack("1.19.6", {2: "1.18.12"}, False), tmp_path, "old")
    new = _plan_dir(_stack("1.19.6", {0: "1.20.0"}, False), tmp_path, "new")
    text = diff.render(diff.compare(diff.load(str(old)), diff.load(str(new))))
    assert (f"REFUSED BY pulumi up: {NAMES[0]}: chart {NAMES[0]} would run 1.20.0 while {NAMES[2]} still runs "
            "1.18.12") in text
    assert "first upgrade every cluster to 1.19.6" in text
    one_wave = _plan_dir(_stack("1.19.6", {}, False), tmp_path, "one")
    assert "REFUSED" not in diff.render(diff.compare(diff.load(str(old)), diff.load(str(one_wave))))


def test_the_readme_lists_the_version_table() -> None:
    """README's version table is meshcore/versions.py's (so the docs cannot drift from what the program does)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("<!-- versions:begin -->\n")[1].split("<!-- versions:end -->")[0]
    assert section == versions.markdown_table()


def test_a_waves_local_chart_must_be_its_version(tmp_path: Path) -> None:
    """With a local mesh:cilium.chart, a wave's cluster names its own chart, which must be chart cilium at its
    version (as mesh:cilium.chart is checked against mesh:cilium.version)."""
    import shutil

    from meshcore.chart import validated_settings
    from meshcore.errors import MeshConfigError

    def chart(version: str) -> str:
        out = tmp_path / f"cilium-{version}"
        shutil.copytree(workspace.CHART, out)
        meta = yaml.safe_load((out / "Chart.yaml").read_text())
        (out / "Chart.yaml").write_text(yaml.safe_dump({**meta, "version": version}))
        return str(out)

    raw = _stack(stated=False)
    raw["cilium"] = {"version": "1.18.12", "chart": chart("1.18.12")}
    raw["clusters"][1]["cilium"] = {"version": "1.19.6", "chart": raw["cilium"]["chart"]}
    with pytest.raises(MeshConfigError) as err:
        validated_settings(raw, [], ROOT)
    [issue] = err.value.issues
    assert issue.key == "mesh:clusters[1].cilium.chart"
    assert "is chart version 1.18.12, but mesh:clusters[1].cilium.version is 1.19.6" in issue.message
    raw["clusters"][1]["cilium"]["chart"] = chart("1.19.6")
    settings, _ = validated_settings(raw, [], ROOT)
    assert settings.cilium_of(settings.clusters[1]).chart == raw["clusters"][1]["cilium"]["chart"]
