"""User Helm value paths are checked against the chart's own key tree (#11 item 16).

Against the real charts' values.yaml and values.schema.json (1.18.3, 1.18.12, 1.19.6, 1.20.0 in
``../shared``); the charts the program reads are built in a tmp directory from the end-to-end
stand-in chart plus a copied real values.yaml (nothing of the real chart is committed).
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from meshcore import chart as charts
from meshcore import chartkeys, owned, versions
from meshcore import values as hv
from meshcore.config import parse_settings
from meshcore.keypaths import dotted
from meshcore.presets import PRESETS
from tests.conftest import ROOT, SHARED, mesh_config, write_stack

VERSIONS = ("1.18.3", "1.18.12", "1.19.6", "1.20.0")
STAND_IN = ROOT / "tests" / "e2e" / "chart" / "cilium"


def _shared(version: str) -> Path:
    d = SHARED / f"cilium-{version}"
    assert (d / "values.yaml").is_file(), (
        f"the Cilium {version} chart's values.yaml is missing at {d}: put the chart's values.yaml and "
        f"values.schema.json there (helm pull cilium/cilium --version {version} --untar), or set MESH_SHARED_DIR")
    return d


_TREES: dict[tuple[str, bool], chartkeys.ChartKeys] = {}


def tree(version: str, schema: bool = True) -> chartkeys.ChartKeys:
    """The key tree of the real chart's files (no templates: ../shared holds none)."""
    if (version, schema) not in _TREES:
        d = _shared(version)
        _TREES[version, schema] = chartkeys.build(
            f"cilium {version}", (d / "values.yaml").read_text(encoding="utf-8"),
            (d / "values.schema.json").read_text(encoding="utf-8") if schema else None)
    return _TREES[version, schema]


def leaves(values: dict, prefix: tuple = ()) -> list[tuple]:
    out: list[tuple] = []
    for k, v in values.items():
        out += leaves(v, (*prefix, k)) if isinstance(v, dict) and v else [(*prefix, k)]
    return out


def nest(path: tuple, leaf: Any = True) -> dict:
    out: Any = leaf
    for part in reversed(path):
        out = {part: out}
    return out


def generated_values(masquerade: str, **extra: Any) -> dict:
    """Everything the program sets in a release's values (no user values): both CLB modes'
    annotations, a CA bundle, the created-cluster keys, and masquerade when asked."""
    return hv.cluster_values(
        base={}, overrides={}, name="cls-00000001", cluster_id=1, max_connected_clusters=255, hubble_relay=True,
        ca_cert_b64="Y2E=", ca_key_b64="a2V5", subnet_id="subnet-00000001", own_address="10.0.0.100",
        vip="10.0.0.100", existing_lb_id="lb-00000001", peers=[hv.peer_entry("cls-00000002", "10.0.0.200", 2379)],
        non_masquerade_cidrs=["172.16.0.0/16"] if masquerade == "ipMasqAgent" else None,
        ca_bundle="pem", k8s_service_host="169.254.128.10", k8s_service_port=60002, **extra)


# --- the tree of the real charts ------------------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
def test_every_key_of_values_yaml_is_in_the_tree(version: str) -> None:
    import yaml

    values = yaml.safe_load((_shared(version) / "values.yaml").read_text(encoding="utf-8"))
    t = tree(version)
    missing = [p for p in leaves(values) if not t.knows(p)]
    assert missing == [] and t.count() > 1000, (missing[:5], t.count())


@pytest.mark.parametrize("version", ("1.18.3", "1.18.12", "1.19.6"))
def test_every_value_the_program_sets_is_known(version: str) -> None:
    for mode in ("none", "ipMasqAgent"):
        doc = generated_values(mode)
        assert tree(version).problems(doc) == [], (version, mode)
    for path in hv.owned_paths("ipMasqAgent") + hv.CREATED_OWNED:
        assert tree(version).knows(path), path


@pytest.mark.parametrize("version", VERSIONS)
def test_every_owned_row_is_a_key_of_its_charts_values_yaml(version: str) -> None:
    """Every row of meshcore.owned.OWNED whose ``charts`` name this version's minor is a path of the key tree of
    this version's values.yaml (no schema: the file itself; annotation keys are free keys of a free map, and a key
    values.yaml documents only as a helm-docs comment at that position counts, as chartkeys reads it)."""
    minor = versions.minor_of(version)
    rows = [k for k in owned.OWNED if minor in k.charts]
    assert rows and {versions.minor_of(v) for v in VERSIONS} == set(versions.ORDER), "a minor without reference data"
    t = tree(version, schema=False)
    assert [dotted(k.path) for k in rows if not t.knows(k.path)] == []
    # The check tells a chart's keys apart: the server certificate's IPs moved in 1.20, and each minor's path is
    # unknown to the charts of the other place.
    here = versions.row(version).server_ips
    assert [m for m, r in versions.MINORS.items() if r.server_ips != here and t.knows(r.server_ips)] == []


def test_a_key_documented_only_as_a_comment_is_a_key_at_its_position() -> None:
    """1.19.6 documents clustermesh.apiserver.tls.auto.schedule only as the commented line
    ``# schedule: "0 0 1 */4 *"`` (1.20.0 sets it): chartkeys takes it as a key of tls.auto, and of nothing else."""
    import yaml

    d = _shared("1.19.6")
    text = (d / "values.yaml").read_text(encoding="utf-8")
    auto = yaml.safe_load(text)["clustermesh"]["apiserver"]["tls"]["auto"]
    assert "schedule" not in auto and '        # schedule: "0 0 1 */4 *"' in text.splitlines()
    t = tree("1.19.6", schema=False)
    assert t.knows(("clustermesh", "apiserver", "tls", "auto", "schedule"))
    assert not t.knows(("clustermesh", "apiserver", "tls", "schedule"))
    assert not t.knows(("clustermesh", "apiserver", "schedule"))


def test_the_1_20_chart_moved_the_server_certificate_values() -> None:
    """The tree follows the chart: 1.20 has clustermesh.apiserver.tls.server under tls.auto (the
    program supports 1.18 only, which config validation enforces)."""
    problems = tree("1.20.0").problems(generated_values("ipMasqAgent"))
    assert [(p.path, p.kind, p.suggestions) for p in problems] == [
        (("clustermesh", "apiserver", "tls", "server"), "unknown", ("clustermesh.apiserver.tls.auto.server",))]


@pytest.mark.parametrize("version", VERSIONS)
def test_preset_paths_are_chart_keys_but_one_the_templates_read(version: str) -> None:
    """Every preset path is in the chart's files but cni.externalRouting (the TKE guide's; the
    templates read it: cilium-config's cni-external-routing). The program's tree adds the preset
    paths (``charts.chart_keys``), and a chart's templates teach it too."""
    t = tree(version)
    for name, preset in PRESETS.items():
        unknown = [p for p in leaves(copy.deepcopy(dict(preset))) if not t.knows(p)]
        assert unknown == [("cni", "externalRouting")], name
    d = _shared(version)
    with_template = chartkeys.build(
        "cilium", (d / "values.yaml").read_text(encoding="utf-8"), None,
        ['{{- if (not (kindIs "invalid" .Values.cni.externalRouting)) }}\n'
         '{{- if hasKey .Values.k8s "apiServerURLs" }}'])
    assert with_template.knows(("cni", "externalRouting")) and with_template.knows(("k8s", "apiServerURLs"))
    assert not with_template.knows(("cni", "externalRoutng"))


@pytest.mark.parametrize("version", VERSIONS)
def test_the_issues_typos_are_refused_with_a_suggestion(version: str) -> None:
    t = tree(version)
    problems = t.problems({"kubeProxyReplacment": True, "hubble": {"enabled": True, "relya": {"enabled": True}}})
    assert [(p.path, p.kind, p.suggestions) for p in problems] == [
        (("kubeProxyReplacment",), "unknown", ("kubeProxyReplacement",)),
        (("hubble", "relya"), "unknown", ("hubble.relay",)),
    ]
    assert problems[0].message(t.chart) == (
        f"unknown Helm value for the cilium {version} chart; did you mean 'kubeProxyReplacement'? "
        "(the chart ignores unknown keys, so this value would have no effect)")


def test_suggestions_other_case_elsewhere_or_none() -> None:
    t = tree("1.18.3")
    by_path = {p.path: p for p in t.problems({"kubeproxyreplacement": True, "relay": {"enabled": True},
                                               "zzqqxx": 1, "ipMasqAgent": {"config": {"masqLinkLocl": True}}})}
    assert by_path[("kubeproxyreplacement",)].suggestions == ("kubeProxyReplacement",)
    assert "hubble.relay" in by_path[("relay",)].suggestions  # the key exists, one level down
    assert by_path[("zzqqxx",)].suggestions == ()
    assert "has no key of this name" in by_path[("zzqqxx",)].message("cilium 1.18.3")
    # values.yaml documents ipMasqAgent.config only in a comment: its keys are still checked.
    assert by_path[("ipMasqAgent", "config", "masqLinkLocl")].suggestions == ("ipMasqAgent.config.masqLinkLocal",)


@pytest.mark.parametrize("version", VERSIONS)
def test_keys_documented_in_comments_are_known(version: str) -> None:
    t = tree(version)
    for path in [("devices",), ("cni", "readCniConf"), ("ipMasqAgent", "config", "nonMasqueradeCIDRs"),
                 ("ipMasqAgent", "config", "masqLinkLocal"), ("hubble", "eventQueueSize")]:
        assert t.knows(path), path
    # helm-schema's annotations and references are not keys
    assert not t.knows(("type",)) and not t.knows(("ref",))


@pytest.mark.parametrize("version", VERSIONS)
def test_free_maps_take_any_key(version: str) -> None:
    t = tree(version)
    free = {
        "podAnnotations": {"example.com/a": "1"},
        "podLabels": {"team": "net"},
        "nodeSelector": {"node.example.com/pool": "mesh"},  # a default with label keys
        "extraConfig": {"local-router-ipv4": "169.254.32.16", "anything": "x"},
        "resources": {"limits": {"memory": "1Gi"}},
        "cni": {"resources": {"limits": {"cpu": "1"}}},  # default has requests only
        "operator": {"updateStrategy": {"rollingUpdate": {"maxSurge": 1}}, "podLabels": {"a": "b"}},
        "clustermesh": {"apiserver": {"service": {"annotations": {"example.com/lb": "x"}}}},
    }
    assert t.problems(free) == []
    # ... but a typo next to a free map is still refused
    problems = t.problems({"clustermesh": {"apiserver": {"service": {"annotatons": {"a": "b"}}}}})
    assert [p.suggestions for p in problems] == [("clustermesh.apiserver.service.annotations",)]


@pytest.mark.parametrize("version", VERSIONS)
def test_nothing_below_a_list_is_checked(version: str) -> None:
    t = tree(version)
    assert t.problems({"tolerations": [{"anything": "goes", "nested": {"x": 1}}],
                       "operator": {"tolerations": [{"key": "k", "operatr": "Exists"}]},
                       "extraEnv": [{"name": "A", "value": "b"}]}) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_a_mapping_where_the_chart_has_a_single_value_is_refused(version: str) -> None:
    t = tree(version)
    problems = t.problems({"kubeProxyReplacement": {"enabled": True}, "routingMode": {},
                           "cni": {"chainingMode": {"mode": "generic-veth"}}})
    assert [(p.path, p.kind) for p in problems] == [
        (("kubeProxyReplacement",), "scalar"), (("routingMode",), "scalar"), (("cni", "chainingMode"), "scalar")]
    assert 'default: "false"' in problems[0].message(t.chart)
    # cni.chainingMode defaults to null: only the schema says it is a string ([null, string])
    assert tree(version, schema=False).problems({"cni": {"chainingMode": {"mode": "x"}}}) == []
    # a null default the schema types as an object is a free map
    assert t.problems({"ipam": {"operator": {"autoCreateCiliumPodIPPools": {"pool-a": {"ipv4": {"cidrs": []}}}}}}) == []


def test_a_scalar_value_is_never_refused_for_its_type() -> None:
    """Types are the schema's business (Helm validates them at install); only key paths are checked here."""
    assert tree("1.18.3").problems({"kubeProxyReplacement": True, "hubble": {"enabled": "yes"}, "debug": None}) == []


# --- the program's check: charts.check_values -----------------------------------------------

def local_chart(tmp_path: Path, version: str = "1.18.3", *, tgz: bool = False, values_yaml: bool = True) -> Path:
    """The stand-in chart's Chart.yaml and templates with the real chart's values.yaml and schema."""
    d = tmp_path / "chart" / "cilium"
    shutil.copytree(STAND_IN, d)
    os.chmod(d, 0o755)
    (d / "Chart.yaml").write_text((STAND_IN / "Chart.yaml").read_text().replace("version: 1.18.3", f"version: {version}"),
                                  encoding="utf-8")
    (d / "values.yaml").unlink()
    if values_yaml:
        shutil.copy(_shared(version) / "values.yaml", d / "values.yaml")
        shutil.copy(_shared(version) / "values.schema.json", d / "values.schema.json")
    if not tgz:
        return d
    archive = tmp_path / f"cilium-{version}.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(d, arcname="cilium")
    shutil.rmtree(d)
    return archive


def settings_with(cilium: dict, values0: dict | None = None, base: dict | None = None):
    raw = mesh_config(3, cilium={"version": "1.18.3", **cilium})
    if base is not None:
        raw["cilium"]["values"] = base
    if values0 is not None:
        raw["clusters"][0]["values"] = values0
    raw["clusters"][2]["values"] = {"hubble": {"relay": {"rollOutPods": True}}}
    return parse_settings(raw)


TYPOS = ({"kubeProxyReplacment": True}, {"hubble": {"relya": {"enabled": True}}, "debug": {"enabled": True}})
EXPECTED = [
    ("mesh:cilium.values.kubeProxyReplacment", "did you mean 'kubeProxyReplacement'?"),
    ("mesh:clusters[0].values.hubble.relya", "did you mean 'hubble.relay'?"),
]


@pytest.mark.parametrize("tgz", [False, True], ids=["directory", "tgz"])
def test_a_local_chart_refuses_every_unknown_path_at_its_key(tmp_path: Path, tgz: bool) -> None:
    path = local_chart(tmp_path, tgz=tgz)
    s = settings_with({"chart": str(path)}, values0=TYPOS[1], base=TYPOS[0])
    issues, note = charts.check_values(s, tmp_path, environ={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert note is None
    assert [(i.key, i.message.split("; ")[1].split(" (")[0]) for i in issues] == EXPECTED
    assert all("cilium 1.18.3 chart" in i.message for i in issues)


def test_a_local_chart_reads_its_templates(tmp_path: Path) -> None:
    """cni.externalRouting is accepted from the preset either way; clusterHealthPort and
    hubble.lostEventSendInterval (read by the real chart's cilium-config with hasKey, but in no
    line of the 1.18.3 values.yaml) only when a template reads them."""
    path = local_chart(tmp_path)
    s = settings_with({"chart": str(path)}, values0={"clusterHealthPort": 4240, "cni": {"externalRouting": False},
                                                      "hubble": {"lostEventSendInterval": "1s"}})
    assert [i.key for i in charts.check_values(s, tmp_path)[0]] == [
        "mesh:clusters[0].values.clusterHealthPort", "mesh:clusters[0].values.hubble.lostEventSendInterval"]
    (path / "templates" / "extra.yaml").write_text(
        '{{- if hasKey .Values "clusterHealthPort" }}{{ .Values.clusterHealthPort }}{{- end }}\n'
        '{{- if hasKey .Values.hubble "lostEventSendInterval" }}{{- end }}\n')
    assert charts.check_values(s, tmp_path) == ([], None)


def test_a_local_chart_without_values_yaml_is_refused(tmp_path: Path) -> None:
    path = local_chart(tmp_path, values_yaml=False)
    issues, _ = charts.check_values(settings_with({"chart": str(path)}, base={"debug": {"enabled": True}}), tmp_path)
    assert [(i.key, "has no values.yaml" in i.message) for i in issues] == [("mesh:cilium.chart", True)]


def test_a_repository_chart_is_checked_from_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "xdg"
    env = {"XDG_CACHE_HOME": str(cache), "HOME": str(tmp_path / "home")}
    s = settings_with({}, values0=TYPOS[1], base=TYPOS[0])
    issues, note = charts.check_values(s, tmp_path, environ=env)
    where = cache / "tke-cilium-mesh" / "charts"
    assert issues == [] and note is not None and note.startswith(charts.NOT_CHECKED)
    assert f"no copy of it at {where / 'cilium-1.18.3.tgz'}" in note
    assert f"helm pull cilium --repo https://helm.cilium.io/ --version 1.18.3 -d {where}" in note
    # what helm pull -d writes: the archive, named by its version
    where.mkdir(parents=True)
    shutil.move(local_chart(tmp_path, tgz=True), where / "cilium-1.18.3.tgz")
    issues, note = charts.check_values(s, tmp_path, environ=env)
    assert note is None and [i.key for i in issues] == [k for k, _ in EXPECTED]


def test_the_cache_dir_defaults_to_home(tmp_path: Path) -> None:
    assert charts.cache_dir({"HOME": str(tmp_path)}) == tmp_path / ".cache" / "tke-cilium-mesh" / "charts"


def test_a_wrong_chart_in_the_cache_is_not_used(tmp_path: Path) -> None:
    where = tmp_path / "tke-cilium-mesh" / "charts"
    where.mkdir(parents=True)
    shutil.move(local_chart(tmp_path, "1.18.12", tgz=True), where / "cilium-1.18.3.tgz")
    issues, note = charts.check_values(settings_with({}, base=TYPOS[0]), tmp_path,
                                       environ={"XDG_CACHE_HOME": str(tmp_path)})
    assert issues == [] and note is not None and "is not the cilium 1.18.3 chart" in note and "'1.18.12'" in note


def test_an_oci_chart_names_its_own_pull(tmp_path: Path) -> None:
    s = settings_with({"chart": "oci://registry.example.com/cilium/cilium"}, base={"debug": {"enabled": True}})
    _, note = charts.check_values(s, tmp_path, environ={"XDG_CACHE_HOME": str(tmp_path)})
    assert note is not None and "helm pull oci://registry.example.com/cilium/cilium --version 1.18.3 -d" in note


def test_nothing_to_check_without_user_values(tmp_path: Path) -> None:
    """No user values: nothing was skipped, so nothing is said (the e2e stacks use the stand-in
    chart, whose values.yaml is tiny, and set no values)."""
    s = parse_settings(mesh_config(2, cilium={"version": "1.18.3", "chart": str(STAND_IN)}))
    assert charts.check_values(s, tmp_path, environ={"XDG_CACHE_HOME": str(tmp_path)}) == ([], None)
    s = parse_settings(mesh_config(2, cilium={"version": "1.18.3", "values": {}}))
    assert charts.check_values(s, tmp_path, environ={"XDG_CACHE_HOME": str(tmp_path)}) == ([], None)


def test_the_stand_in_chart_checks_what_it_declares(tmp_path: Path) -> None:
    """The e2e stand-in is a chart like any other: values it does not declare are refused."""
    s = parse_settings(mesh_config(2, cilium={"version": "1.18.3", "chart": str(STAND_IN),
                                              "values": {"clustermesh": {"config": {}}, "debug": {"enabled": True}}}))
    assert [i.key for i in charts.check_values(s, ROOT)[0]] == ["mesh:cilium.values.debug"]


# --- through the offline plan ----------------------------------------------------------------

def plan(stack: Path, out: Path, cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools.plan", str(stack), "--out", str(out)], cwd=ROOT,
                          env={**os.environ, "XDG_CACHE_HOME": str(cache)}, capture_output=True, text=True, timeout=120)


def test_the_plan_refuses_a_typo_naming_the_key(tmp_path: Path) -> None:
    raw = mesh_config(2, cilium={"version": "1.18.3", "chart": str(local_chart(tmp_path, tgz=True)),
                                 "values": {"kubeProxyReplacment": True}})
    raw["clusters"][1]["values"] = {"hubble": {"relya": {"enabled": True}}}
    proc = plan(write_stack(tmp_path, raw), tmp_path / "out", tmp_path / "cache")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        "error: mesh:cilium.values.kubeProxyReplacment: unknown Helm value for the cilium 1.18.3 chart; did you mean "
        "'kubeProxyReplacement'? (the chart ignores unknown keys, so this value would have no effect)",
        "error: mesh:clusters[1].values.hubble.relya (cls-00000002): unknown Helm value for the cilium 1.18.3 chart; did you mean "
        "'hubble.relay'? (the chart ignores unknown keys, so this value would have no effect)",
    ]
    assert not (tmp_path / "out").exists()


def test_the_plan_says_when_it_did_not_check(tmp_path: Path) -> None:
    raw = mesh_config(2, cilium={"version": "1.18.3", "values": {"kubeProxyReplacment": True}})
    stack = write_stack(tmp_path, raw)
    proc = plan(stack, tmp_path / "out", tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr
    summary = (tmp_path / "out" / "summary.md").read_text(encoding="utf-8")
    lines = [line for line in summary.splitlines() if charts.NOT_CHECKED in line]
    assert len(lines) == 1 and "helm pull cilium --repo https://helm.cilium.io/ --version 1.18.3" in lines[0]
    # with the chart in the cache, the same stack is checked and refused
    where = tmp_path / "cache" / "tke-cilium-mesh" / "charts"
    where.mkdir(parents=True)
    shutil.move(local_chart(tmp_path, tgz=True), where / "cilium-1.18.3.tgz")
    proc = plan(stack, tmp_path / "out", tmp_path / "cache")
    assert proc.returncode == 2 and "mesh:cilium.values.kubeProxyReplacment" in proc.stderr
    # and a valid stack plans without the note
    raw["cilium"]["values"] = {"kubeProxyReplacement": "true"}
    proc = plan(write_stack(tmp_path, raw), tmp_path / "out", tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr
    assert charts.NOT_CHECKED not in (tmp_path / "out" / "summary.md").read_text(encoding="utf-8")


def test_a_key_the_chart_no_longer_has_is_refused_without_a_far_fetched_suggestion() -> None:
    """externalIPs.enabled and hostPort.enabled (older guides) are not values of the 1.18 charts."""
    problems = tree("1.18.3").problems({"externalIPs": {"enabled": True}, "hostPort": {"enabled": True}})
    assert [(p.path, p.suggestions) for p in problems] == [(("externalIPs",), ()), (("hostPort",), ())]


def test_a_dotted_key_is_one_key_and_says_how_to_nest_it() -> None:
    """``hubble.relay.replicas: 2`` in YAML is one key to Helm (only --set splits dots)."""
    t = tree("1.18.3")
    problems = t.problems({"hubble.ui.enabled": True, "hubble": {"relay.replicas": 2},
                           "podAnnotations": {"example.com/a.b": "x"}, "no.such.path": 1})
    assert [(p.path, p.kind) for p in problems] == [
        (("hubble.ui.enabled",), "dotted"), (("hubble", "relay.replicas"), "dotted"), (("no.such.path",), "unknown")]
    assert "write it nested (hubble: {ui: {enabled: …}})" in problems[0].message(t.chart)
    assert "write it nested (relay: {replicas: …})" in problems[1].message(t.chart)


def test_shared_values_are_checked_against_every_chart_of_a_wave(tmp_path: Path) -> None:
    """During a wave the shared mesh:cilium.values also go to the clusters on the next chart version: a path that
    version dropped (encryption.strictMode, moved in 1.20) is refused at its key, naming that chart."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    mesh, wave = local_chart(tmp_path / "a", "1.19.6"), local_chart(tmp_path / "b", "1.20.0")
    raw = mesh_config(3, cilium={"version": "1.19.6", "chart": str(mesh),
                                 "values": {"encryption": {"strictMode": {"enabled": False}}}})
    raw["policyDefaultLocalCluster"] = False
    raw["clusters"][0]["cilium"] = {"version": "1.20.0", "chart": str(wave)}
    issues, note = charts.check_values(parse_settings(raw), tmp_path)
    assert note is None
    assert [i.key for i in issues] == ["mesh:cilium.values.encryption.strictMode.enabled"]
    assert "cilium 1.20.0 chart" in issues[0].message
    del raw["clusters"][0]["cilium"]
    assert charts.check_values(parse_settings(raw), tmp_path) == ([], None)
