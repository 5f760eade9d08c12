"""User Helm value paths are checked against the chart's own key tree (#11 item 16).

Against the real charts' values.yaml and values.schema.json (1.18.3, 1.18.12, 1.19.6, 1.20.0 in
``../shared``); the charts the program reads are built in a tmp directory from the end-to-end
stand-in chart plus a copied real values.yaml (nothing of the real chart is committed).
"""

from __future__ import annotations

import copy
import json
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
from meshcore.config_parse import parse_settings
from meshcore.keypaths import dotted
from meshcore.presets import PRESETS
from tests.conftest import ROOT, SHARED, mesh_config, write_stack
from tools import workspace

VERSIONS = ("1.18.3", "1.18.12", "1.19.6", "1.20.0")
STAND_IN = workspace.CHART


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
    return hv.cluster_values(owned.Inputs(
        base={}, overrides={}, name="cls-00000001", cluster_id=1, max_connected_clusters=255, hubble_relay=True,
        ca_cert_b64="Y2E=", ca_key_b64="a2V5", subnet_id="subnet-00000001", own_address="10.0.0.100",
        vip="10.0.0.100", existing_lb_id="lb-00000001", peers=[hv.peer_entry("cls-00000002", "10.0.0.200", 2379)],
        non_masquerade_cidrs=["172.16.0.0/16"] if masquerade == "ipMasqAgent" else None,
        ca_bundle="pem", k8s_service_host="169.254.128.10", k8s_service_port=60002, **extra))


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
    for path in (k.path for k in owned.owned_keys("ipMasqAgent", reads_service_host=True)):
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


# --- the key index that ships with the program ---------------------------------------------

def _shape(node: chartkeys.Node) -> Any:
    return [(k, c.kind, _shape(c)) for k, c in node.children.items()]


@pytest.mark.parametrize("version", VERSIONS)
def test_the_key_index_is_the_tree_of_values_yaml_and_schema(version: str) -> None:
    """The shipped index reads back as the very tree chartkeys builds from the chart's values.yaml and schema (every
    key, its kind, the chart's order, which suggestions follow), so the offline check refuses and suggests the same."""
    found = charts.index_keys(version)
    assert found is not None and found[1] == (version,)
    text = charts.index_file(version).read_text(encoding="utf-8")
    assert _shape(chartkeys.from_index(f"cilium {version}", text).root) == _shape(tree(version).root)
    values = {"kubeProxyReplacment": True, "hubble": {"relya": {"enabled": True}}, "relay": {}, "zzqqxx": 1,
              "kubeProxyReplacement": {"enabled": True}, "hubble.ui.enabled": True}
    assert [(p.path, p.kind, p.suggestions) for p in found[0].problems(values)] == [
        (p.path, p.kind, p.suggestions) for p in tree(version).problems(values)]


@pytest.mark.parametrize("version", VERSIONS)
def test_the_key_index_holds_keys_only(version: str) -> None:
    """Value paths and their kinds, nothing of the chart's values or comments: a scalar's message then gives no
    default."""
    doc = json.loads(charts.index_file(version).read_text(encoding="utf-8"))

    def leaves(node: Any) -> set:
        return set().union(*(leaves(v) for v in node.values())) if isinstance(node, dict) else {node}
    assert leaves(doc["keys"]) <= {"free", "list", "scalar", "any"}
    assert set(doc) == {"chart", "format", "source", "keys"}
    assert "quay.io" not in charts.index_file(version).read_text(encoding="utf-8")
    [problem] = charts.index_keys(version)[0].problems({"kubeProxyReplacement": {"enabled": True}})
    assert problem.message(f"cilium {version}").startswith(
        f"is a mapping, but the cilium {version} chart takes a single value here; set a value")


def test_a_version_without_its_own_index_is_checked_against_its_minors() -> None:
    """1.18.5 ships no index: the indexes of 1.18.3 and 1.18.12 together check it (a key of either is accepted:
    configDriftDetection came with a later 1.18 patch), and errors name both; a minor without any has none."""
    tree_, used = charts.index_keys("1.18.5")
    assert used == ("1.18.3", "1.18.12") and tree_.chart == "cilium 1.18.5"
    assert not tree("1.18.3").knows(("configDriftDetection", "enabled"))
    assert tree_.knows(("configDriftDetection", "enabled")) and tree_.knows(("cni", "externalRouting"))
    assert [p.path for p in tree_.problems({"kubeProxyReplacment": True})] == [("kubeProxyReplacment",)]
    assert charts.index_keys("1.20.3")[1] == ("1.20.0",)
    s = parse_settings(mesh_config(2, cilium={"version": "1.18.5", "values": {"kubeProxyReplacment": True}}))
    [issue], notes = charts.check_values(s, ROOT, environ={"XDG_CACHE_HOME": "/nonexistent"})
    assert notes == [] and issue.key == "mesh:cilium.values.kubeProxyReplacment"
    assert issue.message.startswith("unknown Helm value for the cilium 1.18.5 chart; did you mean 'kubeProxyReplacement'?")
    assert "; checked against the key index of cilium 1.18.3 and 1.18.12 that ships with the program; none of 1.18.5 " \
           "ships (no copy of the chart at hand;" in issue.message


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
    issues, notes = charts.check_values(s, tmp_path, environ={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert notes == []
    assert [(i.key, i.message.split("; ")[1].split(" (")[0]) for i in issues] == EXPECTED
    assert all("cilium 1.18.3 chart" in i.message and "key index" not in i.message for i in issues)


TEMPLATE_ONLY = {"clusterHealthPort": 4240, "cni": {"externalRouting": False}, "hubble": {"lostEventSendInterval": "1s"}}
"""clusterHealthPort and hubble.lostEventSendInterval are read by the real chart's cilium-config with hasKey, but in
no line of the 1.18.3 values.yaml or its schema: only a chart's templates know them. cni.externalRouting is a preset's
path (accepted either way)."""
TEMPLATE_READING = ('{{- if hasKey .Values "clusterHealthPort" }}{{ .Values.clusterHealthPort }}{{- end }}\n'
                    '{{- if hasKey .Values.hubble "lostEventSendInterval" }}{{- end }}\n')


def test_a_local_chart_reads_its_templates(tmp_path: Path) -> None:
    """The template-only keys are accepted only when a template of the chart reads them."""
    path = local_chart(tmp_path)
    s = settings_with({"chart": str(path)}, values0=TEMPLATE_ONLY)
    assert [i.key for i in charts.check_values(s, tmp_path)[0]] == [
        "mesh:clusters[0].values.clusterHealthPort", "mesh:clusters[0].values.hubble.lostEventSendInterval"]
    (path / "templates" / "extra.yaml").write_text(TEMPLATE_READING)
    assert charts.check_values(s, tmp_path) == ([], [])


@pytest.mark.parametrize("where", ["local", "cache"])
def test_a_chart_at_hand_takes_precedence_over_the_key_index(tmp_path: Path, where: str) -> None:
    """Without a copy of the chart the key index refuses the template-only keys, saying that a copy knows more and
    how to get one; with a copy (the local mesh:cilium.chart, or the chart cache's) its templates are read and the
    same values pass: the copy is read, not the index."""
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path / "home")}
    issues, notes = charts.check_values(settings_with({}, values0=TEMPLATE_ONLY), tmp_path, environ=env)
    assert notes == [] and [i.key for i in issues] == [
        "mesh:clusters[0].values.clusterHealthPort", "mesh:clusters[0].values.hubble.lostEventSendInterval"]
    where_to = tmp_path / "xdg" / "tke-cilium-mesh" / "charts"
    assert all(i.message.endswith(
        "; checked against the key index of cilium 1.18.3 that ships with the program (no copy of the chart at hand; "
        "a key only the chart's templates read is known with one: helm pull cilium --repo https://helm.cilium.io/ "
        f"--version 1.18.3 -d {where_to})") for i in issues), issues[0].message
    path = local_chart(tmp_path)
    (path / "templates" / "extra.yaml").write_text(TEMPLATE_READING)
    if where == "local":
        s = settings_with({"chart": str(path)}, values0=TEMPLATE_ONLY)
    else:
        where_to.mkdir(parents=True)
        with tarfile.open(where_to / "cilium-1.18.3.tgz", "w:gz") as tar:
            tar.add(path, arcname="cilium")
        s = settings_with({}, values0=TEMPLATE_ONLY)
    assert charts.check_values(s, tmp_path, environ=env) == ([], [])


def test_a_local_chart_without_values_yaml_is_refused(tmp_path: Path) -> None:
    path = local_chart(tmp_path, values_yaml=False)
    issues, _ = charts.check_values(settings_with({"chart": str(path)}, base={"debug": {"enabled": True}}), tmp_path)
    assert [(i.key, "has no values.yaml" in i.message) for i in issues] == [("mesh:cilium.chart", True)]


@pytest.mark.parametrize("version", VERSIONS)
def test_without_a_copy_typos_are_refused_from_the_key_index(tmp_path: Path, version: str) -> None:
    """No chart anywhere (an empty cache, no helm): every typo is refused at its key with its "did you mean", from
    the key index of the stack's version, which the message names."""
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path / "home")}
    raw = mesh_config(3, cilium={"version": version, "values": TYPOS[0]})
    raw["clusters"][0]["values"] = TYPOS[1]
    raw["policyDefaultLocalCluster"] = False
    issues, notes = charts.check_values(parse_settings(raw), tmp_path, environ=env)
    assert notes == []
    assert [(i.key, i.message.split("; ")[1].split(" (")[0]) for i in issues] == EXPECTED
    assert all(i.message.startswith(f"unknown Helm value for the cilium {version} chart; ") for i in issues)
    assert all(f"checked against the key index of cilium {version} that ships with the program (" in i.message
               for i in issues)


def test_a_repository_chart_is_checked_from_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "xdg"
    env = {"XDG_CACHE_HOME": str(cache), "HOME": str(tmp_path / "home")}
    s = settings_with({}, values0=TYPOS[1], base=TYPOS[0])
    where = cache / "tke-cilium-mesh" / "charts"
    # what helm pull -d writes: the archive, named by its version
    where.mkdir(parents=True)
    shutil.move(local_chart(tmp_path, tgz=True), where / "cilium-1.18.3.tgz")
    issues, notes = charts.check_values(s, tmp_path, environ=env)
    assert notes == [] and [i.key for i in issues] == [k for k, _ in EXPECTED]
    assert all("key index" not in i.message for i in issues)


def test_the_cache_dir_defaults_to_home(tmp_path: Path) -> None:
    assert charts.cache_dir({"HOME": str(tmp_path)}) == tmp_path / ".cache" / "tke-cilium-mesh" / "charts"


def test_a_wrong_chart_in_the_cache_is_not_used(tmp_path: Path) -> None:
    """A copy of another version (or an unreadable one) is not read: the key index is, and a warning says so."""
    where = tmp_path / "tke-cilium-mesh" / "charts"
    where.mkdir(parents=True)
    shutil.move(local_chart(tmp_path, "1.18.12", tgz=True), where / "cilium-1.18.3.tgz")
    issues, notes = charts.check_values(settings_with({}, base=TYPOS[0]), tmp_path,
                                        environ={"XDG_CACHE_HOME": str(tmp_path)})
    assert [i.key for i in issues] == ["mesh:cilium.values.kubeProxyReplacment"]
    assert "checked against the key index of cilium 1.18.3" in issues[0].message
    [note] = notes
    assert note.startswith(f"{charts.INDEX_INSTEAD}: {where / 'cilium-1.18.3.tgz'} is not the cilium 1.18.3 chart")
    assert "'1.18.12'" in note and note.endswith(f"replace it: helm pull cilium --repo https://helm.cilium.io/ "
                                                 f"--version 1.18.3 -d {where}")


def test_an_oci_chart_names_its_own_pull(tmp_path: Path) -> None:
    s = settings_with({"chart": "oci://registry.example.com/cilium/cilium"}, base=TYPOS[0])
    [issue], _ = charts.check_values(s, tmp_path, environ={"XDG_CACHE_HOME": str(tmp_path)})
    assert "helm pull oci://registry.example.com/cilium/cilium --version 1.18.3 -d" in issue.message


def test_nothing_to_check_without_user_values(tmp_path: Path) -> None:
    """No user values: nothing was skipped, so nothing is said (the e2e stacks use the stand-in
    chart, whose values.yaml is tiny, and set no values)."""
    s = parse_settings(mesh_config(2, cilium={"version": "1.18.3", "chart": str(STAND_IN)}))
    assert charts.check_values(s, tmp_path, environ={"XDG_CACHE_HOME": str(tmp_path)}) == ([], [])
    s = parse_settings(mesh_config(2, cilium={"version": "1.18.3", "values": {}}))
    assert charts.check_values(s, tmp_path, environ={"XDG_CACHE_HOME": str(tmp_path)}) == ([], [])


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


def test_the_plan_refuses_a_typo_offline_without_any_chart(tmp_path: Path) -> None:
    """No chart in the cache, no local chart, no helm on the PATH: the plan still refuses each typo at its key (the
    shared values, a cluster's), with its "did you mean", from the key index that ships with the program."""
    raw = mesh_config(2, cilium={"version": "1.18.3", "values": {"kubeProxyReplacment": True}})
    raw["clusters"][1]["values"] = {"hubble": {"relya": {"enabled": True}}}
    empty = tmp_path / "bin"
    empty.mkdir()
    proc = subprocess.run([sys.executable, "-m", "tools.plan", str(write_stack(tmp_path, raw)), "--out",
                           str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "PATH": str(empty)})
    assert proc.returncode == 2, proc.stderr
    index = ("; checked against the key index of cilium 1.18.3 that ships with the program (no copy of the chart at "
             "hand; a key only the chart's templates read is known with one: helm pull cilium --repo "
             f"https://helm.cilium.io/ --version 1.18.3 -d {tmp_path / 'cache' / 'tke-cilium-mesh' / 'charts'})")
    assert proc.stderr.splitlines() == [
        "error: mesh:cilium.values.kubeProxyReplacment: unknown Helm value for the cilium 1.18.3 chart; did you mean "
        f"'kubeProxyReplacement'? (the chart ignores unknown keys, so this value would have no effect){index}",
        "error: mesh:clusters[1].values.hubble.relya (cls-00000002): unknown Helm value for the cilium 1.18.3 chart; did you mean "
        f"'hubble.relay'? (the chart ignores unknown keys, so this value would have no effect){index}",
    ]
    assert not (tmp_path / "out").exists()


def test_the_plan_says_on_stderr_and_in_graph_json_when_it_did_not_check(tmp_path: Path, monkeypatch, capsys) -> None:
    """A minor without a key index (none ships here) and no copy of its chart: the check cannot run. The plan
    still plans, and says so on stderr, in summary.md and in graph.json (which its diff reads); with the chart in
    the cache the same stack is checked and refused."""
    from tools.plan import main as plan_main

    monkeypatch.setattr(charts, "INDEX_DIR", tmp_path / "no-index")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    raw = mesh_config(2, cilium={"version": "1.18.3", "values": {"kubeProxyReplacment": True}})
    stack = write_stack(tmp_path, raw)
    assert plan_main([str(stack), "--out", str(tmp_path / "out")]) == 0
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"warning: {charts.NOT_CHECKED}: the cilium 1.18.3 chart ignores unknown keys (a typo has "
                           "no effect), the program ships no key index of chart 1.18, and there is no copy of it at ")
    assert line.endswith("to check them: helm pull cilium --repo https://helm.cilium.io/ --version 1.18.3 -d "
                         f"{tmp_path / 'cache' / 'tke-cilium-mesh' / 'charts'}")
    note = line.removeprefix("warning: ")
    summary = (tmp_path / "out" / "summary.md").read_text(encoding="utf-8")
    assert [ln for ln in summary.splitlines() if charts.NOT_CHECKED in ln] == [f"**{note}**"]
    assert json.loads((tmp_path / "out" / "graph.json").read_text())["helmValuesNotChecked"] == [note]
    # with the chart in the cache, the same stack is checked and refused
    where = tmp_path / "cache" / "tke-cilium-mesh" / "charts"
    where.mkdir(parents=True)
    shutil.move(local_chart(tmp_path, tgz=True), where / "cilium-1.18.3.tgz")
    assert plan_main([str(stack), "--out", str(tmp_path / "out")]) == 2
    assert "error: mesh:cilium.values.kubeProxyReplacment: unknown Helm value" in capsys.readouterr().err
    # and a valid stack plans without a note anywhere
    raw["cilium"]["values"] = {"kubeProxyReplacement": "true"}
    assert plan_main([str(write_stack(tmp_path, raw)), "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().err == ""
    assert charts.NOT_CHECKED not in (tmp_path / "out" / "summary.md").read_text(encoding="utf-8")
    assert "helmValuesNotChecked" not in json.loads((tmp_path / "out" / "graph.json").read_text())


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
    issues, notes = charts.check_values(parse_settings(raw), tmp_path)
    assert notes == []
    assert [i.key for i in issues] == ["mesh:cilium.values.encryption.strictMode.enabled"]
    assert "cilium 1.20.0 chart" in issues[0].message
    del raw["clusters"][0]["cilium"]
    assert charts.check_values(parse_settings(raw), tmp_path) == ([], [])
