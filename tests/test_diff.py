"""The plan diff: real plans of before/after stacks, compared as a reviewer reads them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, cluster_entry
from tests.mockcloud import ComputingMocks
from tools import diff, plandiff, render
from tools.plan import main as plan_main
from tools.plan import plan, write

DEV = yaml.safe_load((ROOT / "stacks/Pulumi.dev.yaml").read_text())
THIRD = {"name": "cls-dev6e7f8", "id": 3, "region": "ap-guangzhou", "podCidrs": ["172.22.0.0/16"],
         "apiserver": {"subnetId": "subnet-dev6e7f8", "vip": "10.10.3.100"},
         "values": {"k8sServiceHost": "169.254.128.12"}}


def make_plan(tmp: Path, label: str, doc: dict[str, Any]) -> Path:
    d = tmp / label
    d.mkdir()
    stack = d / "Pulumi.dev.yaml"
    stack.write_text(yaml.safe_dump(doc, sort_keys=False))
    write(render.artefacts(plan(str(stack))), str(d / "plan"))
    return d / "plan"


def dev(mutate=None) -> dict[str, Any]:
    doc = copy.deepcopy(DEV)
    if mutate:
        mutate(doc["config"])
    return doc


def run_diff(old: Path, new: Path, capsys, *extra: str) -> tuple[int, str]:
    code = plan_main(["diff", str(old), str(new), *extra])
    return code, capsys.readouterr().out


def test_adding_a_third_cluster_reads_per_cluster(tmp_path: Path, capsys) -> None:
    """Dev + a third cluster: one new peer entry in each existing cluster, no restart, two new connections."""
    old = make_plan(tmp_path, "old", dev())
    new = make_plan(tmp_path, "new", dev(lambda c: c["mesh:clusters"].append(THIRD)))
    code, out = run_diff(old, new, capsys)
    assert code == 1
    d = plandiff.compare(plandiff.load(str(old)), plandiff.load(str(new)))
    assert d.clusters_added == ["cls-dev6e7f8"] and d.clusters_removed == []
    assert set(d.values) == {"cls-dev0a1b2", "cls-dev3c4d5"}
    for changes in d.values.values():
        assert [(c.path, c.effect) for c in changes] == [(("clustermesh", "config", "clusters", "cls-dev6e7f8"), "none")]
        assert changes[0].new == {"address": "10.10.3.100", "name": "cls-dev6e7f8", "port": 2379}
    assert d.connections_added == [("cls-dev0a1b2", "cls-dev6e7f8"), ("cls-dev3c4d5", "cls-dev6e7f8")]
    assert len(d.resources_added) == 6 and d.resources_removed == [] and d.resources_replaced == []
    assert "added: cls-dev6e7f8 (id 3, ap-guangzhou, mesh address 10.10.3.100:2379)" in out
    assert "- cls-dev0a1b2: 1 value(s), no restart" in out
    assert "ROLLS" not in out and "TAKES EFFECT" not in out and "DISRUPTIVE" not in out
    assert out.index("Clusters") < out.index("Helm values") < out.index("Peer connections") < out.index("Resources")


def test_identical_plans_exit_0(tmp_path: Path, capsys) -> None:
    """No change: exit 0 and a one-line answer."""
    a = make_plan(tmp_path, "a", dev())
    b = make_plan(tmp_path, "b", dev())
    code, out = run_diff(a, b, capsys)
    assert code == 0 and out.startswith("No changes")


def test_agent_restarting_value_is_loud(tmp_path: Path, capsys) -> None:
    """A value of the agent's pod template (rolls now) or of cilium-config (waits for a restart) is flagged loudly,
    in Markdown too."""
    old = make_plan(tmp_path, "old", dev())
    new = make_plan(tmp_path, "new", dev(lambda c: c["mesh:cilium"].setdefault("values", {}).update(
        devices="eth0", operator={"resources": {"limits": {"cpu": "1"}}})))
    code, out = run_diff(old, new, capsys, "--format", "markdown")
    assert code == 1
    assert "- **ROLLS PODS NOW in cls-dev0a1b2: deploy/cilium-operator (operator.resources.limits.cpu)**" in out
    assert "- **TAKES EFFECT AT THE NEXT RESTART in cls-dev0a1b2: devices (cilium-config" in out
    assert "`devices`: eth+ -> eth0" in out and out.startswith("## Mesh plan diff")


def test_identity_change_is_disruptive(tmp_path: Path, capsys) -> None:
    """Changing a cluster id is reported first: pulumi up refuses it (the program's guard), and it is disruptive."""
    old = make_plan(tmp_path, "old", dev())
    new = make_plan(tmp_path, "new", dev(lambda c: c["mesh:clusters"][1].update(id=7)))
    code, out = run_diff(old, new, capsys)
    assert code == 1
    first, second = out.splitlines()[1:3]
    assert first.startswith("- REFUSED BY pulumi up: cls-dev3c4d5: id: cluster cls-dev3c4d5 was deployed with id 2, "
                            "now 7: ")
    assert first.endswith("Revert it, or add cls-dev3c4d5 to mesh:allowIdentityChange for this update "
                          "(see README, Lifecycle)")
    assert second.startswith("- DISRUPTIVE: cls-dev3c4d5: cluster.id 2 -> 7")


def test_removing_a_cluster(tmp_path: Path, capsys) -> None:
    """Removing a cluster deletes its resources and its connections; the other cluster only loses the peer."""
    with_third = dev(lambda c: c["mesh:clusters"].append(THIRD))
    old = make_plan(tmp_path, "old", with_third)
    new = make_plan(tmp_path, "new", dev())
    d = plandiff.compare(plandiff.load(str(old)), plandiff.load(str(new)))
    assert d.clusters_removed == ["cls-dev6e7f8"] and len(d.resources_removed) == 6
    assert diff.render(d).splitlines()[1].startswith("- UNINSTALLS CILIUM from cls-dev6e7f8")
    assert d.connections_removed == [("cls-dev0a1b2", "cls-dev6e7f8"), ("cls-dev3c4d5", "cls-dev6e7f8")]
    for changes in d.values.values():
        assert [c.path[-1] for c in changes] == ["cls-dev6e7f8"] and changes[0].new is plandiff.MISSING


def test_replacement_is_named(tmp_path: Path) -> None:
    """Moving a created CLB to another subnet replaces it, and says which input forces that."""
    def with_clb(subnet: str):
        def m(c):
            entry = cluster_entry(3, create_clb=True)
            entry["apiserver"]["subnetId"] = subnet
            entry["values"] = {"k8sServiceHost": "169.254.128.13"}  # the dev stack's preset needs it
            c["mesh:clusters"].append(entry)
        return m
    old = make_plan(tmp_path, "old", dev(with_clb("subnet-00000003")))
    new = make_plan(tmp_path, "new", dev(with_clb("subnet-0000000b")))
    d = plandiff.compare(plandiff.load(str(old)), plandiff.load(str(new)))
    assert [(plandiff.short_urn(u), keys) for u, keys in d.resources_replaced] == [
        ("tencentcloud:Clb/instance:Instance cls-00000003-apiserver-clb", ["subnetId"])
    ]


def test_missing_plan_dir_exits_2(tmp_path: Path, capsys) -> None:
    """A directory without graph.json is an error, not a diff."""
    code = plan_main(["diff", str(tmp_path / "nope"), str(tmp_path / "nope2")])
    assert code == 2 and "no graph.json" in capsys.readouterr().err


@pytest.mark.parametrize("path, effect", [
    (("clustermesh", "config", "clusters", "x"), "none"),
    (("ipMasqAgent", "config", "nonMasqueradeCIDRs"), "none"),
    (("clustermesh", "apiserver", "replicas"), "none"),
    (("cluster", "id"), "identity"),
    (("tls", "ca", "cert"), "ca"),
    (("tls", "caBundle", "content"), "ca"),
    (("image", "tag"), "rolls"),
    (("bpf", "masquerade"), "next-restart"),
    (("hubble", "relya", "enabled"), "rolls"),  # not in the table: the loud answer
])
def test_classification(path, effect) -> None:
    """Peer lists, masquerade CIDRs and other pods' values do not restart anything; pod templates roll; cilium-config
    waits; what the table does not name is assumed to roll the agents."""
    assert plandiff.classify(path)[0] == effect


def test_readme_shows_the_real_diff(tmp_path: Path, capsys) -> None:
    """The diff quoted in the README is what the tool prints for dev + a third cluster."""
    old = make_plan(tmp_path, "old", dev())
    new = make_plan(tmp_path, "new", dev(lambda c: c["mesh:clusters"].append(THIRD)))
    _, out = run_diff(old, new, capsys)
    readme = (ROOT / "README.md").read_text()
    quoted = readme.split("Adding a third cluster to the\ndev stack reads:\n\n```\n")[1].split("```")[0]
    lines = [line for line in quoted.splitlines() if line and line != "..."]
    assert len(lines) > 8
    assert all(line in out.splitlines() for line in lines), [line for line in lines if line not in out.splitlines()]


ROTATION = [  # README, Lifecycle, "Rotating the CA": (before, after) of each step
    (None, {"generations": [1, 2], "signing": 1}),
    ({"generations": [1, 2], "signing": 1}, {"generations": [1, 2], "signing": 2}),
    ({"generations": [1, 2], "signing": 2}, {"generations": [2]}),
]


def with_ca(ca):
    def m(c):
        if ca is not None:
            c["mesh:ca"] = ca
    return m


@pytest.mark.parametrize("step", [1, 2, 3])
def test_every_ca_rotation_step_is_a_ca_change(tmp_path: Path, capsys, step: int) -> None:
    """Each rotation step flags a CA change in every cluster (exit 1), including step 2, where the offline
    plans' values are the same ([unknown] certificate, [secret] key) but they come from another CA."""
    before, after = ROTATION[step - 1]
    old = make_plan(tmp_path, "old", dev(with_ca(before)))
    new = make_plan(tmp_path, "new", dev(with_ca(after)))
    code, out = run_diff(old, new, capsys)
    assert code == 1, out
    for cluster in ("cls-dev0a1b2", "cls-dev3c4d5"):
        assert f"- CA CHANGE: {cluster}: tls." in out
    if step == 2:
        d = plandiff.compare(plandiff.load(str(old)), plandiff.load(str(new)))
        for changes in d.values.values():
            assert [(c.path, c.effect) for c in changes] == [(("tls", "ca", "cert"), "ca"), (("tls", "ca", "key"), "ca")]
            assert (changes[0].old, changes[0].new) == ("[unknown] from mesh-ca", "[unknown] from mesh-ca-2")
            assert "now issued by mesh-ca-2 (were by mesh-ca)" in changes[0].why
        assert sorted(plandiff.short_urn(u) for u, _ in d.resources_updated) == [
            "kubernetes:helm.sh/v3:Release cls-dev0a1b2-cilium", "kubernetes:helm.sh/v3:Release cls-dev3c4d5-cilium"]


def test_the_signing_ca_is_read_from_the_graph(tmp_path: Path) -> None:
    """The CA a release's tls.ca.* come from is the CA whose key it depends on, in either rotation state."""
    one = plandiff.load(str(make_plan(tmp_path, "one", dev(with_ca({"generations": [1, 2], "signing": 1})))))
    two = plandiff.load(str(make_plan(tmp_path, "two", dev(with_ca({"generations": [1, 2], "signing": 2})))))
    assert {one.signing_ca(c) for c in one.values} == {"mesh-ca"}
    assert {two.signing_ca(c) for c in two.values} == {"mesh-ca-2"}


def _vip(c, vip: str = "10.10.2.200") -> None:
    c["mesh:clusters"][1]["apiserver"]["vip"] = vip


def test_vip_change_of_a_running_cluster_says_pulumi_up_refuses_it(tmp_path: Path, capsys) -> None:
    """A new apiserver.vip for a cluster of the old plan: the diff says, first and in the program's own words,
    that pulumi up refuses the update, and how to do it on purpose."""
    old = make_plan(tmp_path, "old", dev())
    new_doc = dev(_vip)
    new = make_plan(tmp_path, "new", new_doc)
    code, out = run_diff(old, new, capsys, "--format", "markdown")
    assert code == 1
    # What the program itself says when the old plan's outputs are what the stack deployed.
    previous = plandiff.load(str(old)).graph["outputs"]["clusters"]
    stack = tmp_path / "program" / "Pulumi.dev.yaml"
    stack.parent.mkdir()
    stack.write_text(yaml.safe_dump(new_doc, sort_keys=False))
    with pytest.raises(Exception) as exc:
        plan(str(stack), mocks=ComputingMocks(previous))
    err = exc.value
    while err is not None and not getattr(err, "issues", None):
        err = err.__cause__ or err.__context__
    [issue] = err.issues
    assert issue.key == "mesh:clusters[1].apiserver.vip"
    assert "was deployed at mesh address 10.10.2.100:2379, now 10.10.2.200:2379" in issue.message
    attention = out.split("### ⚠ Attention\n")[1].splitlines()
    assert attention[0] == f"- **REFUSED BY pulumi up: cls-dev3c4d5: apiserver.vip: {issue.message}**"
    assert "mesh:allowIdentityChange" in attention[0]


def test_allowed_vip_change_says_it_is_allowed(tmp_path: Path, capsys) -> None:
    """With the cluster in mesh:allowIdentityChange the diff says the change goes through, not that it is refused."""
    def allowed(c):
        _vip(c)
        c["mesh:allowIdentityChange"] = ["cls-dev3c4d5"]
    old = make_plan(tmp_path, "old", dev())
    new = make_plan(tmp_path, "new", dev(allowed))
    code, out = run_diff(old, new, capsys)
    assert code == 1 and "REFUSED" not in out
    assert out.splitlines()[1].startswith("- ALLOWED BY mesh:allowIdentityChange: cls-dev3c4d5: apiserver.vip: cluster "
                                          "cls-dev3c4d5 was deployed at mesh address 10.10.2.100:2379, now "
                                          "10.10.2.200:2379")


def copied(tmp: Path, label: str, stack: str, doc: dict[str, Any]) -> Path:
    d = tmp / label
    d.mkdir()
    path = d / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    write(render.artefacts(plan(str(path))), str(d / "plan"))
    return d / "plan"


def test_plans_of_different_stacks_are_refused(tmp_path: Path, capsys) -> None:
    """dev against a copy of its stack file named staging: exit 2 naming both stacks and the flag."""
    old = make_plan(tmp_path, "old", dev())
    new = copied(tmp_path, "new", "staging", dev())
    code = plan_main(["diff", str(old), str(new)])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.startswith("error: the old plan is of stack tke-cilium-mesh/dev and the new one of "
                                   "tke-cilium-mesh/staging: ")
    assert "--allow-different-stacks" in captured.err and len(captured.err.splitlines()) == 1


def test_different_stacks_compared_on_purpose_say_so_first(tmp_path: Path, capsys) -> None:
    """With --allow-different-stacks: the first line says the stacks differ; resources are matched by type and
    name, so a copied stack file with one change shows that change, not every resource deleted and created."""
    old = make_plan(tmp_path, "old", dev())
    new = copied(tmp_path, "new", "staging", dev(lambda c: c["mesh:clusters"].append(THIRD)))
    code, out = run_diff(old, new, capsys, "--allow-different-stacks")
    assert code == 1
    assert out.splitlines()[1].startswith("- DIFFERENT STACKS: the old plan is of tke-cilium-mesh/dev, the new one of "
                                          "tke-cilium-mesh/staging")
    d = plandiff.compare(plandiff.load(str(old)), plandiff.load(str(new)), allow_different_stacks=True)
    assert d.resources_removed == [] and len(d.resources_added) == 6
    assert "REFUSED" not in out  # another stack's plan is not what this one deployed
    same = copied(tmp_path, "same", "staging", dev())
    code, out = run_diff(old, same, capsys, "--allow-different-stacks")
    assert code == 1 and out.splitlines()[1].startswith("- DIFFERENT STACKS") and "Resources" not in out


# --------------------------------------------------------------------------- what a value change restarts (#11.7)

from meshcore.chart import effects, versions  # noqa: E402
from meshcore.chart.effects import AGENT, APISERVER, ENVOY, LIVE, NEXT_RESTART, NODE_INIT, OPERATOR, RELAY, ROLLS, UI  # noqa: E402
from meshcore.keypaths import dotted  # noqa: E402

FIRST = "cls-dev0a1b2"


class _BeforeRecords:
    """No config change; the plan as one made before the program recorded chart versions (no ``cilium`` record in
    its outputs, no ``upgradeCompatibility`` in its values)."""

    def __call__(self, config: dict) -> None:
        pass

    @staticmethod
    def edit_plan(plan_dir: Path) -> None:
        graph = json.loads((plan_dir / "graph.json").read_text())
        for o in graph["outputs"]["clusters"].values():
            o.pop("cilium")
        for r in graph["resources"]:
            if r["type"] == "kubernetes:helm.sh/v3:Release":
                r["inputs"]["values"].pop("upgradeCompatibility")
        (plan_dir / "graph.json").write_text(json.dumps(graph))
        for f in (plan_dir / "values").glob("*.yaml"):
            values = yaml.safe_load(f.read_text())
            values.pop("upgradeCompatibility")
            f.write_text(yaml.safe_dump(values))


def _values(**kw):
    """A mutation setting mesh:cilium.values (every cluster)."""
    def m(c):
        c["mesh:cilium"].setdefault("values", {}).update(copy.deepcopy(kw))
    return m


def _at(version: str, **kw):
    """Every cluster on chart ``version`` (mesh:policyDefaultLocalCluster stated, as 1.19+ needs), with
    mesh:cilium.values ``kw``: a row for a value of the 1.19/1.20 charts compares two plans at that version."""
    def m(c):
        c["mesh:cilium"]["version"] = version
        c["mesh:policyDefaultLocalCluster"] = False
        _values(**kw)(c)
    return m


_AT_1_19 = _at("1.19.6")
_AT_1_20 = _at("1.20.0")


def _cluster_values(**kw):
    def m(c):
        c["mesh:clusters"][0].setdefault("values", {}).update(kw)
    return m


def _masq(*extra: str):
    def m(c):
        c["mesh:masquerade"] = {"mode": "ipMasqAgent", "extraNonMasqueradeCidrs": list(extra)}
    return m


def _rename(c):
    c["mesh:clusters"][0]["name"] = "cls-dev9z9z9"
    c["mesh:clusters"][0]["context"] = FIRST
    c["mesh:allowIdentityChange"] = ["cls-dev9z9z9"]


_LIMIT = {"resources": {"limits": {"cpu": "2"}}}
_POD = [AGENT]
_CONFIG = []

# Row prefix -> (the changed value path the row must classify, expected kind, expected workloads, new stack
# mutation[, old stack mutation]). Written out, not derived from the table: a row that changes must change here.
EXAMPLES: dict[str, tuple] = {
    "": ("bpfClockProbe", ROLLS, [AGENT], _values(bpfClockProbe=True)),
    "cluster.name": ("cluster.name", NEXT_RESTART, [AGENT, OPERATOR, APISERVER], _rename),
    "cluster.id": ("cluster.id", NEXT_RESTART, [AGENT, OPERATOR, APISERVER],
                   lambda c: c["mesh:clusters"][0].update(id=9)),
    "clustermesh.maxConnectedClusters": ("clustermesh.maxConnectedClusters", ROLLS, [APISERVER],
                                         lambda c: c.update({"mesh:maxConnectedClusters": 511})),
    "clustermesh.config": (f"clustermesh.config.clusters.{THIRD['name']}", LIVE, [],
                           lambda c: c["mesh:clusters"].append(THIRD)),
    "clustermesh.enableEndpointSliceSynchronization": ("clustermesh.enableEndpointSliceSynchronization", NEXT_RESTART,
                                                       [AGENT, OPERATOR],
                                                       _values(clustermesh={"enableEndpointSliceSynchronization": True})),
    "clustermesh.enableMCSAPISupport": ("clustermesh.enableMCSAPISupport", ROLLS, [APISERVER],
                                        _values(clustermesh={"enableMCSAPISupport": True})),
    "clustermesh.mcsapi": ("clustermesh.mcsapi.enabled", ROLLS, [APISERVER],
                           _at("1.19.6", clustermesh={"mcsapi": {"enabled": True}}), _AT_1_19),
    "clustermesh.mcsapi.corednsAutoConfigure": ("clustermesh.mcsapi.corednsAutoConfigure.enabled", LIVE, [],
                                                _at("1.19.6", clustermesh={"mcsapi": {"corednsAutoConfigure": {
                                                    "enabled": True}}}), _AT_1_19),
    "clustermesh.cacheTTL": ("clustermesh.cacheTTL", ROLLS, [APISERVER], _at("1.19.6", clustermesh={"cacheTTL": "5m"}),
                             _AT_1_19),
    "clustermesh.defaultGlobalNamespace": ("clustermesh.defaultGlobalNamespace", NEXT_RESTART, [AGENT, OPERATOR, APISERVER],
                                           _at("1.20.0", clustermesh={"defaultGlobalNamespace": False}), _AT_1_20),
    "clustermesh.policyDefaultLocalCluster": ("clustermesh.policyDefaultLocalCluster", NEXT_RESTART, [AGENT],
                                              lambda c: c.update({"mesh:policyDefaultLocalCluster": True})),
    "clustermesh.apiserver": ("clustermesh.apiserver.resources.limits.cpu", ROLLS, [APISERVER],
                              _values(clustermesh={"apiserver": _LIMIT})),
    "clustermesh.apiserver.service": ("clustermesh.apiserver.service.labels.team", LIVE, [],
                                      _values(clustermesh={"apiserver": {"service": {"labels": {"team": "net"}}}})),
    "clustermesh.apiserver.tls": ("clustermesh.apiserver.tls.server.extraDnsNames", LIVE, [],
                                  _values(clustermesh={"apiserver": {"tls": {"server": {"extraDnsNames": ["m.x"]}}}})),
    "clustermesh.apiserver.tls.authMode": ("clustermesh.apiserver.tls.authMode", ROLLS, [APISERVER],
                                           _values(clustermesh={"apiserver": {"tls": {"authMode": "cluster"}}})),
    "clustermesh.apiserver.replicas": ("clustermesh.apiserver.replicas", LIVE, [],
                                       _values(clustermesh={"apiserver": {"replicas": 3}})),
    "clustermesh.apiserver.updateStrategy": ("clustermesh.apiserver.updateStrategy.rollingUpdate.maxUnavailable", LIVE,
                                             [], _values(clustermesh={"apiserver": {"updateStrategy": {
                                                 "rollingUpdate": {"maxUnavailable": 2}}}})),
    "clustermesh.apiserver.podDisruptionBudget": ("clustermesh.apiserver.podDisruptionBudget.enabled", LIVE, [],
                                                  _values(clustermesh={"apiserver": {
                                                      "podDisruptionBudget": {"enabled": False}}})),
    "tls.ca": ("tls.ca.cert", LIVE, [], with_ca({"generations": [1, 2], "signing": 2}),
               with_ca({"generations": [1, 2], "signing": 1})),
    "tls.caBundle": ("tls.caBundle.enabled", ROLLS, [AGENT, APISERVER], with_ca({"generations": [1, 2], "signing": 1})),
    "ipMasqAgent.config": ("ipMasqAgent.config.nonMasqueradeCIDRs", LIVE, [], _masq("10.0.0.0/8", "192.168.0.0/16"),
                           _masq("10.0.0.0/8")),
    "ipMasqAgent.enabled": ("ipMasqAgent.enabled", ROLLS, [AGENT], _masq("10.0.0.0/8")),
    "image": ("image.tag", ROLLS, _POD, _values(image={"tag": "v1.18.4"})),
    "resources": ("resources.limits.cpu", ROLLS, _POD, _values(**_LIMIT)),
    "initResources": ("initResources.limits.cpu", ROLLS, _POD, _values(initResources={"limits": {"cpu": "1"}})),
    "securityContext": ("securityContext.privileged", ROLLS, _POD, _values(securityContext={"privileged": True})),
    "podSecurityContext": ("podSecurityContext.appArmorProfile.type", ROLLS, _POD,
                           _values(podSecurityContext={"appArmorProfile": {"type": "RuntimeDefault"}})),
    "podAnnotations": ("podAnnotations.team", ROLLS, _POD, _values(podAnnotations={"team": "net"})),
    "podLabels": ("podLabels.team", ROLLS, _POD, _values(podLabels={"team": "net"})),
    "nodeSelector": ("nodeSelector.pool", ROLLS, _POD, _values(nodeSelector={"pool": "a"})),
    "tolerations": ("tolerations", ROLLS, _POD, _values(tolerations=[{"operator": "Exists", "effect": "NoSchedule"}])),
    "affinity": ("affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms", ROLLS, _POD,
                 _values(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                     "nodeSelectorTerms": [{"matchExpressions": [{"key": "a", "operator": "Exists"}]}]}}})),
    "priorityClassName": ("priorityClassName", ROLLS, _POD, _values(priorityClassName="system-node-critical")),
    "dnsPolicy": ("dnsPolicy", ROLLS, _POD, _values(dnsPolicy="ClusterFirstWithHostNet")),
    "extraArgs": ("extraArgs", ROLLS, _POD, _values(extraArgs=["--log-driver=syslog"])),
    "extraEnv": ("extraEnv", ROLLS, _POD, _values(extraEnv=[{"name": "X", "value": "1"}])),
    "extraVolumes": ("extraVolumes", ROLLS, _POD, _values(extraVolumes=[{"name": "v", "emptyDir": {}}])),
    "extraVolumeMounts": ("extraVolumeMounts", ROLLS, _POD, _values(extraVolumeMounts=[{"name": "v", "mountPath": "/v"}])),
    "extraHostPathMounts": ("extraHostPathMounts", ROLLS, _POD,
                            _values(extraHostPathMounts=[{"name": "h", "hostPath": "/h", "mountPath": "/h"}])),
    "extraContainers": ("extraContainers", ROLLS, _POD, _values(extraContainers=[{"name": "s", "image": "busybox"}])),
    "extraInitContainers": ("extraInitContainers", ROLLS, _POD,
                            _values(extraInitContainers=[{"name": "i", "image": "busybox"}])),
    "terminationGracePeriodSeconds": ("terminationGracePeriodSeconds", ROLLS, _POD,
                                      _values(terminationGracePeriodSeconds=5)),
    "startupProbe": ("startupProbe.failureThreshold", ROLLS, _POD, _values(startupProbe={"failureThreshold": 300})),
    "livenessProbe": ("livenessProbe.failureThreshold", ROLLS, _POD, _values(livenessProbe={"failureThreshold": 20})),
    "readinessProbe": ("readinessProbe.failureThreshold", ROLLS, _POD, _values(readinessProbe={"failureThreshold": 5})),
    "sleepAfterInit": ("sleepAfterInit", ROLLS, _POD, _values(sleepAfterInit=True)),
    "daemon": ("daemon.runPath", ROLLS, _POD, _values(daemon={"runPath": "/var/run/cilium-mesh"})),
    "cgroup": ("cgroup.hostRoot", ROLLS, _POD, _values(cgroup={"hostRoot": "/sys/fs/cgroup2"})),
    "sysctlfix": ("sysctlfix.enabled", ROLLS, _POD, _values(sysctlfix={"enabled": True})),
    "cni": ("cni.logFile", ROLLS, _POD, _values(cni={"logFile": "/var/log/cilium-cni.log"})),
    "bpf.autoMount": ("bpf.autoMount.enabled", ROLLS, _POD, _values(bpf={"autoMount": {"enabled": False}})),
    "bpf.root": ("bpf.root", ROLLS, _POD, _values(bpf={"root": "/sys/fs/bpf2"})),
    "prometheus": ("prometheus.enabled", ROLLS, _POD, _values(prometheus={"enabled": True})),
    "encryption": ("encryption.enabled", ROLLS, _POD, _values(encryption={"enabled": True})),
    "healthPort": ("healthPort", ROLLS, _POD, _values(healthPort=9878)),
    "k8sServiceHost": ("k8sServiceHost", ROLLS, [AGENT, OPERATOR, APISERVER],
                       _cluster_values(k8sServiceHost="169.254.128.99")),
    "k8sServicePort": ("k8sServicePort", ROLLS, [AGENT, OPERATOR, APISERVER], _cluster_values(k8sServicePort=443)),
    "annotations": ("annotations.team", LIVE, [], _values(annotations={"team": "net"})),
    "updateStrategy": ("updateStrategy.rollingUpdate.maxUnavailable", LIVE, [],
                       _values(updateStrategy={"rollingUpdate": {"maxUnavailable": 3}})),
    "devices": ("devices", NEXT_RESTART, [AGENT], _values(devices="eth0")),
    "routingMode": ("routingMode", NEXT_RESTART, [AGENT], _values(routingMode="tunnel")),
    "tunnelProtocol": ("tunnelProtocol", NEXT_RESTART, [AGENT], _values(tunnelProtocol="geneve")),
    "tunnelPort": ("tunnelPort", NEXT_RESTART, [AGENT], _values(tunnelPort=8473)),
    "autoDirectNodeRoutes": ("autoDirectNodeRoutes", NEXT_RESTART, [AGENT], _values(autoDirectNodeRoutes=True)),
    "ipv4NativeRoutingCIDR": ("ipv4NativeRoutingCIDR", NEXT_RESTART, [AGENT], _values(ipv4NativeRoutingCIDR="10.0.0.0/8")),
    "ipv6NativeRoutingCIDR": ("ipv6NativeRoutingCIDR", NEXT_RESTART, [AGENT], _values(ipv6NativeRoutingCIDR="fd00::/8")),
    "enableIPv4Masquerade": ("enableIPv4Masquerade", NEXT_RESTART, [AGENT],
                             _values(enableIPv4Masquerade=True, ipv4NativeRoutingCIDR="0.0.0.0/0")),
    "enableIPv6Masquerade": ("enableIPv6Masquerade", NEXT_RESTART, [AGENT], _values(enableIPv6Masquerade=False)),
    "enableIPv4BIGTCP": ("enableIPv4BIGTCP", NEXT_RESTART, [AGENT], _values(enableIPv4BIGTCP=True)),
    "enableIPv6BIGTCP": ("enableIPv6BIGTCP", NEXT_RESTART, [AGENT], _values(enableIPv6BIGTCP=True)),
    "bpf": ("bpf.preallocateMaps", NEXT_RESTART, [AGENT], _values(bpf={"preallocateMaps": True})),
    "kubeProxyReplacement": ("kubeProxyReplacement", NEXT_RESTART, [AGENT], _values(kubeProxyReplacement="false")),
    "bandwidthManager": ("bandwidthManager.enabled", NEXT_RESTART, [AGENT], _values(bandwidthManager={"enabled": True})),
    "policyEnforcementMode": ("policyEnforcementMode", NEXT_RESTART, [AGENT], _values(policyEnforcementMode="always")),
    "l7Proxy": ("l7Proxy", NEXT_RESTART, [AGENT], _values(l7Proxy=False)),
    "loadBalancer": ("loadBalancer.algorithm", NEXT_RESTART, [AGENT], _values(loadBalancer={"algorithm": "maglev"})),
    "nodePort": ("nodePort.enabled", NEXT_RESTART, [AGENT], _values(nodePort={"enabled": True})),
    "socketLB": ("socketLB.hostNamespaceOnly", NEXT_RESTART, [AGENT], _values(socketLB={"hostNamespaceOnly": True})),
    "hostFirewall": ("hostFirewall.enabled", NEXT_RESTART, [AGENT], _values(hostFirewall={"enabled": True})),
    "ipv4": ("ipv4.enabled", NEXT_RESTART, [AGENT], _values(ipv4={"enabled": False})),
    "ipv6": ("ipv6.enabled", NEXT_RESTART, [AGENT], _values(ipv6={"enabled": True})),
    "MTU": ("MTU", NEXT_RESTART, [AGENT], _values(MTU=1400)),
    "endpointRoutes": ("endpointRoutes.enabled", NEXT_RESTART, [AGENT], _values(endpointRoutes={"enabled": False})),
    "egressGateway": ("egressGateway.enabled", NEXT_RESTART, [AGENT], _values(egressGateway={"enabled": True})),
    "installNoConntrackIptablesRules": ("installNoConntrackIptablesRules", NEXT_RESTART, [AGENT],
                                        _values(installNoConntrackIptablesRules=True)),
    "monitor": ("monitor.enabled", NEXT_RESTART, [AGENT], _values(monitor={"enabled": True})),
    "policyCIDRMatchMode": ("policyCIDRMatchMode", NEXT_RESTART, [AGENT], _values(policyCIDRMatchMode=["nodes"])),
    "localRedirectPolicy": ("localRedirectPolicy", NEXT_RESTART, [AGENT], _values(localRedirectPolicy=True)),
    "l2announcements": ("l2announcements.enabled", NEXT_RESTART, [AGENT], _values(l2announcements={"enabled": True})),
    "dnsProxy": ("dnsProxy.enableTransparentMode", NEXT_RESTART, [AGENT],
                 _values(dnsProxy={"enableTransparentMode": False})),
    "enableNonDefaultDenyPolicies": ("enableNonDefaultDenyPolicies", NEXT_RESTART, [AGENT],
                                     _values(enableNonDefaultDenyPolicies=False)),
    "extraConfig": ("extraConfig.bpf-events-drop-enabled", NEXT_RESTART, [AGENT],
                    _values(extraConfig={"bpf-events-drop-enabled": "false"})),
    "hubble.eventBufferCapacity": ("hubble.eventBufferCapacity", NEXT_RESTART, [AGENT],
                                   _values(hubble={"eventBufferCapacity": "8191"})),
    "debug": ("debug.enabled", NEXT_RESTART, [AGENT, OPERATOR], _values(debug={"enabled": True})),
    "ipam": ("ipam.operator.clusterPoolIPv4MaskSize", NEXT_RESTART, [AGENT, OPERATOR],
             _values(ipam={"operator": {"clusterPoolIPv4MaskSize": 25}})),
    "identityAllocationMode": ("identityAllocationMode", NEXT_RESTART, [AGENT, OPERATOR],
                               _values(identityAllocationMode="kvstore")),
    "k8sClientRateLimit": ("k8sClientRateLimit.qps", NEXT_RESTART, [AGENT, OPERATOR],
                           _values(k8sClientRateLimit={"qps": 20})),
    # Owned: the minor each cluster was first installed with, set from the stack's chart record; it appears in the
    # first plan after a plan made before the program recorded it.
    "upgradeCompatibility": ("upgradeCompatibility", NEXT_RESTART, [AGENT, OPERATOR], None, _BeforeRecords()),
    "operator": ("operator.resources.limits.cpu", ROLLS, [OPERATOR], _values(operator=_LIMIT)),
    **{f"operator.{k}": (f"operator.{k}{sub}", NEXT_RESTART, [OPERATOR], _values(operator={k: v})) for k, sub, v in (
        ("endpointGCInterval", "", "10m0s"), ("nodeGCInterval", "", "10m0s"), ("identityGCInterval", "", "30m0s"),
        ("identityHeartbeatTimeout", "", "1h0m0s"), ("removeNodeTaints", "", False), ("setNodeTaints", "", True),
        ("setNodeNetworkStatus", "", False), ("skipCRDCreation", "", True),
        ("unmanagedPodWatcher", ".restart", {"restart": False}))},
    "operator.replicas": ("operator.replicas", LIVE, [], _values(operator={"replicas": 3})),
    "operator.updateStrategy": ("operator.updateStrategy.rollingUpdate.maxUnavailable", LIVE, [],
                                _values(operator={"updateStrategy": {"rollingUpdate": {"maxUnavailable": 2}}})),
    "operator.podDisruptionBudget": ("operator.podDisruptionBudget.enabled", LIVE, [],
                                     _values(operator={"podDisruptionBudget": {"enabled": True}})),
    "hubble.tls": ("hubble.tls.auto.certValidityDuration", LIVE, [],
                   _values(hubble={"tls": {"auto": {"certValidityDuration": 30}}})),
    "hubble.relay": ("hubble.relay.resources.limits.cpu", ROLLS, [RELAY], _values(hubble={"relay": _LIMIT})),
    "hubble.relay.replicas": ("hubble.relay.replicas", LIVE, [], _values(hubble={"relay": {"replicas": 2}})),
    "hubble.ui": ("hubble.ui.enabled", ROLLS, [UI], _values(hubble={"ui": {"enabled": True}})),
    "hubble.ui.replicas": ("hubble.ui.replicas", LIVE, [], _values(hubble={"ui": {"replicas": 2}})),
    "envoy": ("envoy.resources.limits.cpu", ROLLS, [ENVOY], _values(envoy=_LIMIT)),
    "nodeinit": ("nodeinit.enabled", ROLLS, [NODE_INIT], _values(nodeinit={"enabled": True})),
    "certgen": ("certgen.ttlSecondsAfterFinished", LIVE, [], _values(certgen={"ttlSecondsAfterFinished": 600})),
}


def test_every_effects_row_has_an_example() -> None:
    """Each row of meshcore/chart/effects.py is pinned below by a concrete plan diff (and nothing else is)."""
    assert sorted(EXAMPLES) == sorted(e.prefix for e in effects.EFFECTS)


@pytest.fixture(scope="module")
def dev_plans(tmp_path_factory) -> dict:
    """Plans by stack mutation, made once per module (several rows share their old plan)."""
    cache: dict = {}
    base = tmp_path_factory.mktemp("effects")

    def get(mutation) -> Path:
        if mutation not in cache:
            cache[mutation] = make_plan(base, f"p{len(cache)}", dev(mutation))
            if hasattr(mutation, "edit_plan"):
                mutation.edit_plan(cache[mutation])
        return cache[mutation]
    return get


@pytest.mark.parametrize("prefix", sorted(EXAMPLES))
def test_effects_row_against_a_plan_diff(prefix: str, dev_plans) -> None:
    """The row's value changed in a real plan of the dev stack: the diff classifies that path by this row, with the
    expected effect and workloads, and says so in the attention lines (rolls now naming the workload, or waits for
    the next restart with the exact kubectl command, or nothing restarts)."""
    path, kind, workloads, new_mutation, *old_mutation = EXAMPLES[prefix]
    row = effects.effect(tuple(path.split(".")))
    assert row.prefix == prefix, f"{path} is classified by row {row.prefix!r}"
    assert row.kind == kind
    assert list(row.rolls if kind == ROLLS else row.next_restart) == workloads
    old = dev_plans(old_mutation[0] if old_mutation else None)
    d = plandiff.compare(plandiff.load(str(old)), plandiff.load(str(dev_plans(new_mutation))))
    cluster = "cls-dev9z9z9" if prefix == "cluster.name" else FIRST
    [change] = [c for c in d.values[cluster] if dotted(c.path) == path]
    assert change.impact is row
    out = diff.render(d)
    attention = [ln for ln in out.split("\n\n")[0].splitlines() if f" in {cluster}:" in ln]
    rolls = [ln for ln in attention if ln.startswith(f"- ROLLS PODS NOW in {cluster}: ")]
    waits = [ln for ln in attention if ln.startswith(f"- TAKES EFFECT AT THE NEXT RESTART in {cluster}: ")]
    if kind == ROLLS and change.effect != "identity":  # an identity change says its follow-up itself
        [line] = rolls
        for w in workloads:
            assert f"{w} (" in line and path in line.split(f"{w} (")[1].split(")")[0], line
    elif kind == NEXT_RESTART and change.effect != "identity":
        [line] = waits
        assert path in line.split(" (cilium-config")[0]
        assert line.endswith(f"run `kubectl --context {cluster} -n kube-system rollout restart {' '.join(workloads)}` "
                             "to apply it")
    if kind == LIVE and len(d.values[cluster]) == 1:
        assert not rolls and not waits, attention
        assert f"- {cluster}: 1 value(s), no restart" in out


def test_the_rows_that_roll_and_wait_say_both(dev_plans) -> None:
    """A value that is both a clustermesh-apiserver argument and cilium-config (cacheTTL, MCS-API) rolls the
    clustermesh-apiserver now and waits for the agents' and the operator's next restart: the diff says both."""
    for path, mutation, old in (("clustermesh.cacheTTL", EXAMPLES["clustermesh.cacheTTL"][3], _AT_1_19),
                                ("clustermesh.enableMCSAPISupport", EXAMPLES["clustermesh.enableMCSAPISupport"][3], None)):
        out = diff.render(plandiff.compare(plandiff.load(str(dev_plans(old))), plandiff.load(str(dev_plans(mutation)))))
        assert f"- ROLLS PODS NOW in {FIRST}: {APISERVER} ({path})" in out, out
        assert f"- TAKES EFFECT AT THE NEXT RESTART in {FIRST}: {path} (cilium-config" in out, out
        assert f"rollout restart {AGENT} {OPERATOR}` to apply it" in out, out


def test_the_1_20_etcd_qps_values_roll_the_clustermesh_apiserver(dev_plans) -> None:
    """1.20's clustermesh.apiserver.etcdQPS and kvstoremesh.etcdQPS are arguments of the clustermesh-apiserver's
    containers: the clustermesh.apiserver row classifies them, and a real 1.20 plan diff rolls it for both."""
    new = _at("1.20.0", clustermesh={"apiserver": {"etcdQPS": 80, "kvstoremesh": {"etcdQPS": 150}}})
    d = plandiff.compare(plandiff.load(str(dev_plans(_AT_1_20))), plandiff.load(str(dev_plans(new))))
    changes = {dotted(c.path): c for c in d.values[FIRST]}
    assert sorted(changes) == ["clustermesh.apiserver.etcdQPS", "clustermesh.apiserver.kvstoremesh.etcdQPS"]
    assert {c.impact.prefix for c in changes.values()} == {"clustermesh.apiserver"}
    assert (f"- ROLLS PODS NOW in {FIRST}: {APISERVER} (clustermesh.apiserver.etcdQPS, "
            "clustermesh.apiserver.kvstoremesh.etcdQPS)") in diff.render(d)


def test_the_certificates_row_says_what_each_tls_method_does() -> None:
    """The clustermesh-apiserver certificates row names the chart minors of each TLS method as meshcore.chart.versions sets
    them: the helm method re-mints on every render, the cronJob method's certgen issues them."""
    reason = effects.effect(("clustermesh", "apiserver", "tls", "server", "extraDnsNames")).reason
    helm = [m.minor for m in versions.MINORS.values() if m.tls_method == "helm"]
    cron = [m.minor for m in versions.MINORS.values() if m.tls_method == "cronJob"]
    assert helm == ["1.18"] and cron == ["1.19", "1.20"]
    assert "the helm method, chart 1.18: the chart re-mints them on every render" in reason
    assert "the cronJob method, chart 1.19, 1.20: the certgen Job/CronJob issues them, no render re-mints them" in reason
    assert "upgrade" not in reason


def test_cilium_config_and_pod_template_changes_are_told_apart(tmp_path: Path, capsys) -> None:
    """devices (cilium-config) waits for the next restart and says how to apply it; resources.limits (the pod
    template) rolls ds/cilium now; together, the roll applies devices and nothing else waits for the agents."""
    old = make_plan(tmp_path, "old", dev())
    config_only = make_plan(tmp_path, "config", dev(_values(devices="eth0")))
    code, out = run_diff(old, config_only, capsys)
    assert code == 1 and "ROLLS" not in out and "RESTARTS" not in out
    assert (f"- TAKES EFFECT AT THE NEXT RESTART in {FIRST}: devices (cilium-config, read only when ds/cilium start; "
            f"with rollOutCiliumPods false this update restarts none of them): run `kubectl --context {FIRST} -n "
            "kube-system rollout restart ds/cilium` to apply it") in out.splitlines()
    assert f"- {FIRST}: 1 value(s), waits for a restart of ds/cilium" in out
    both = make_plan(tmp_path, "both", dev(_values(devices="eth0", **_LIMIT)))
    code, out = run_diff(old, both, capsys)
    assert (f"- ROLLS PODS NOW in {FIRST}: ds/cilium (resources.limits.cpu); the roll also applies devices (read at "
            "start)") in out.splitlines()
    assert "TAKES EFFECT" not in out and f"- {FIRST}: 2 value(s), rolls ds/cilium now" in out


def test_allowed_id_change_says_exactly_what_to_restart(tmp_path: Path, capsys) -> None:
    """An id change let through by mesh:allowIdentityChange: the diff names the Cilium workloads to restart, with
    the cluster's context, then every workload; the program's own warning says the same."""
    def allowed(c):
        c["mesh:clusters"][1]["id"] = 7
        c["mesh:allowIdentityChange"] = ["cls-dev3c4d5"]
    old = make_plan(tmp_path, "old", dev())
    new = make_plan(tmp_path, "new", dev(allowed))
    _, out = run_diff(old, new, capsys)
    command = ("kubectl --context cls-dev3c4d5 -n kube-system rollout restart ds/cilium deploy/cilium-operator "
               "deploy/clustermesh-apiserver")
    first = out.splitlines()[1]
    assert first.startswith("- ALLOWED BY mesh:allowIdentityChange: cls-dev3c4d5: id: cluster cls-dev3c4d5 was "
                            "deployed with id 2, now 7: ")
    assert first.endswith(f"after this update run `{command}` (they read cluster-name and cluster-id from "
                          "cilium-config only when they start; nothing restarts them), then restart every workload "
                          "of the cluster (its pods keep the old identity until they restart)")
    assert "TAKES EFFECT" not in out  # said once, with the identity change
    stack = tmp_path / "program" / "Pulumi.dev.yaml"
    stack.parent.mkdir()
    stack.write_text(yaml.safe_dump(dev(allowed), sort_keys=False))
    rec = plan(str(stack), mocks=ComputingMocks(plandiff.load(str(old)).graph["outputs"]["clusters"]))
    warnings = [m for level, m in rec.logs if level == "warning"]
    assert any(m.startswith("mesh:clusters[1].id (cls-dev3c4d5): cluster cls-dev3c4d5 was deployed with id 2, now 7: allowed by "
                            "mesh:allowIdentityChange; after this update run `" + command + "`") for m in warnings), warnings


def test_an_allowed_rename_reads_as_the_same_cluster_updated(tmp_path: Path, capsys) -> None:
    """cls-dev0a1b2 renamed on its context, allowed: the diff says renamed (not added and removed, no UNINSTALLS),
    pairs its resources with the deployed ones (updated, `renamed from`; nothing created or deleted, as the
    program's alias makes the engine do), compares its values with its deployed values (cluster.name only) and
    says what to restart; refused (not allowed), it is the removal and addition pulumi up would refuse."""
    old = make_plan(tmp_path, "old", dev())
    new = make_plan(tmp_path, "new", dev(_rename))
    code, out = run_diff(old, new, capsys)
    assert code == 1
    d = plandiff.compare(plandiff.load(str(old)), plandiff.load(str(new)))
    assert d.renamed == {"cls-dev9z9z9": FIRST} and d.clusters_added == [] and d.clusters_removed == []
    assert d.resources_added == [] and d.resources_removed == [] and d.resources_replaced == []
    assert [(c.path, c.effect) for c in d.values["cls-dev9z9z9"]] == [(("cluster", "name"), "identity")]
    assert d.connections_added == d.connections_removed == []
    renamed = {plandiff.short_urn(u): keys for u, keys in d.resources_updated if u in d.resources_renamed}
    assert renamed["kubernetes:helm.sh/v3:Release cls-dev9z9z9-cilium"] == ["values",
                                                                           "renamed from cls-dev0a1b2-cilium"]
    assert renamed["pulumi:providers:kubernetes cls-dev9z9z9-k8s"] == ["renamed from cls-dev0a1b2-k8s"], \
        "clusterIdentifier is ignored: no provider change"
    assert len(renamed) == 6
    assert "UNINSTALLS" not in out
    assert (f"- renamed: {FIRST} -> cls-dev9z9z9 (id 1, ap-guangzhou, mesh address 10.10.1.100:2379): the same "
            "cluster, updated in place") in out
    assert f"run `kubectl --context {FIRST} -n kube-system rollout restart ds/cilium" in out
    assert "Hubble's server certificate names the cluster and the chart keeps it across upgrades" in out

    def refused(c):
        _rename(c)
        del c["mesh:allowIdentityChange"]
    new = make_plan(tmp_path, "refused", dev(refused))
    _, out = run_diff(old, new, capsys)
    d = plandiff.compare(plandiff.load(str(old)), plandiff.load(str(new)))
    assert d.renamed == {} and d.clusters_removed == [FIRST] and d.clusters_added == ["cls-dev9z9z9"]
    assert out.splitlines()[1].startswith("- REFUSED BY pulumi up: cls-dev9z9z9: name: cluster cls-dev0a1b2")


# --------------------------------------------------------------------------- paths the chart does not know (#19.3)

from meshcore.mesh import chartsource as charts  # noqa: E402
from tests.test_chartkeys import TEMPLATE_READING, local_chart  # noqa: E402

TYPO = {"kubeProxyReplacment": True, "devices": "eth0"}
"""A typo next to a real cilium-config value."""


def _unchecked_plan(tmp_path: Path, monkeypatch, label: str, doc: dict[str, Any]) -> Path:
    """The plan of ``doc`` made where the value-path check cannot run (no key index, no copy of the chart)."""
    with monkeypatch.context() as m:
        m.setattr(charts, "INDEX_DIR", tmp_path / "no-index")
        m.setenv("XDG_CACHE_HOME", str(tmp_path / "no-cache"))
        return make_plan(tmp_path, label, doc)


def test_a_typo_in_an_unchecked_plan_never_rolls_pods(tmp_path: Path, monkeypatch, capsys) -> None:
    """A plan whose values were not checked holds a typo: the diff says first that the new plan was not checked,
    takes the typo for what the chart's key index says it is (unknown to the chart: Helm ignores it, nothing
    restarts, with its "did you mean"), never for a pod roll; the real value next to it keeps its effect."""
    old = make_plan(tmp_path, "old", dev())
    new = _unchecked_plan(tmp_path, monkeypatch, "new", dev(_values(**TYPO)))
    assert "helmValuesNotChecked" in json.loads((new / "graph.json").read_text())
    code, out = run_diff(old, new, capsys)
    assert code == 1
    attention = out.split("\n\n")[0].splitlines()
    assert "ROLLS" not in out
    assert attention[1].startswith("- HELM VALUES NOT CHECKED in the new plan: the cilium 1.18.3 chart ignores unknown "
                                   "keys (a typo has no effect), the program ships no key index of chart 1.18")
    unknown = (f"- UNKNOWN TO THE CHART in {FIRST}: kubeProxyReplacment (not a key of the cilium 1.18.3 chart (did you "
               "mean 'kubeProxyReplacement'?): the chart ignores it, nothing restarts (its key index; the program "
               "refuses it wherever it checks the values))")
    assert unknown in attention
    assert any(ln.startswith(f"- TAKES EFFECT AT THE NEXT RESTART in {FIRST}: devices (cilium-config")
               for ln in attention)
    assert f"- {FIRST}: 2 value(s), waits for a restart of ds/cilium, 1 unknown to the chart (no effect)" in out
    # fixing the typo (the old plan has it) is no roll either; a plan that does not say it was unchecked (one made
    # before the program recorded that) is judged by the key index all the same
    graph = json.loads((new / "graph.json").read_text())
    del graph["helmValuesNotChecked"]
    (new / "graph.json").write_text(json.dumps(graph))
    code, out = run_diff(new, old, capsys)
    assert code == 1 and "ROLLS" not in out and "NOT CHECKED" not in out
    assert f"- UNKNOWN TO THE CHART in {FIRST}: kubeProxyReplacment (not a key of the cilium 1.18.3 chart" in out
    d = plandiff.compare(plandiff.load(str(new)), plandiff.load(str(old)))
    assert {dotted(c.path): c.effect for c in d.values[FIRST]} == {"kubeProxyReplacment": "unknown",
                                                                  "devices": NEXT_RESTART}


def test_an_unchecked_plan_without_changes_still_says_so(tmp_path: Path, monkeypatch, capsys) -> None:
    a = _unchecked_plan(tmp_path, monkeypatch, "a", dev(_values(devices="eth0")))
    code, out = run_diff(a, a, capsys)
    assert code == 0 and out.splitlines()[0].startswith("No changes")
    assert out.splitlines()[1].startswith("- HELM VALUES NOT CHECKED in the new plan: ")


def test_only_known_paths_are_given_effects(tmp_path: Path, monkeypatch) -> None:
    """Whatever the values, a change is said to restart something only when the chart knows its path: every
    unknown-to-the-chart change has no workload, and every other change of a path the key index lacks is one the
    plan records as its chart copy's."""
    old = make_plan(tmp_path, "old", dev())
    new = _unchecked_plan(tmp_path, monkeypatch, "new", dev(_values(
        kubeProxyReplacment=True, hubble={"relya": {"enabled": True}, "relay": {"rollOutPods": True}},
        operator={"resourcs": {"limits": {"cpu": "1"}}}, image={"tag": "v1.18.4"})))
    d = plandiff.compare(plandiff.load(str(old)), plandiff.load(str(new)))
    index = charts.index_keys("1.18.3")[0]
    for changes in d.values.values():
        for c in changes:
            if index.knows(c.path):
                assert c.effect != plandiff.UNKNOWN_TO_CHART, c.path
            else:
                assert c.effect == plandiff.UNKNOWN_TO_CHART and not c.impact.rolls and not c.impact.next_restart, c.path
    rolls = plandiff.restarts(d.values[FIRST]).rolls
    assert rolls == {AGENT: ["image.tag"], RELAY: ["hubble.relay.rollOutPods"]}, rolls


def test_a_key_only_the_chart_copy_knows_keeps_its_effect(tmp_path: Path) -> None:
    """A key only the local chart's templates read (clusterHealthPort, not in the 1.18.3 key index) is accepted by
    the plan's check, which the plan records in graph.json (chartOnlyKeys): the diff then gives it its effect
    (rolls ds/cilium, as a path meshcore/chart/effects.py does not name). Without the record it would be unknown."""
    chart = local_chart(tmp_path)
    (chart / "templates" / "extra.yaml").write_text(TEMPLATE_READING)

    def with_chart(c):
        c["mesh:cilium"]["chart"] = str(chart)
    old = make_plan(tmp_path, "old", dev(with_chart))
    new = make_plan(tmp_path, "new", dev(lambda c: (with_chart(c), c["mesh:clusters"][0]["values"].update(
        clusterHealthPort=4240))))
    graph = json.loads((new / "graph.json").read_text())
    assert graph["chartOnlyKeys"] == {FIRST: [["clusterHealthPort"]]}
    assert "chartOnlyKeys" not in json.loads((old / "graph.json").read_text())
    out = diff.render(plandiff.compare(plandiff.load(str(old)), plandiff.load(str(new))))
    assert f"- ROLLS PODS NOW in {FIRST}: ds/cilium (clusterHealthPort)" in out and "UNKNOWN" not in out
    del graph["chartOnlyKeys"]
    (new / "graph.json").write_text(json.dumps(graph))
    out = diff.render(plandiff.compare(plandiff.load(str(old)), plandiff.load(str(new))))
    assert "ROLLS" not in out and f"- UNKNOWN TO THE CHART in {FIRST}: clusterHealthPort" in out
def test_a_plan_with_the_old_stackreference_read_diffs_as_no_change(tmp_path: Path, capsys) -> None:
    """A base plan made when the program read its own outputs through a StackReference lists that read; the
    program now reads them without a resource. A read is neither created nor deleted: no change."""
    old = make_plan(tmp_path, "old", dev())
    new = make_plan(tmp_path, "new", dev())
    graph = json.loads((old / "graph.json").read_text())
    assert not [r for r in graph["resources"] if r["type"] == plandiff.STACK_REFERENCE_TYPE]
    name = f"organization/{graph['project']}/{graph['stack']}"
    graph["resources"].append({
        "urn": f"urn:pulumi:{graph['stack']}::{graph['project']}::pulumi:pulumi:StackReference::{name}",
        "type": plandiff.STACK_REFERENCE_TYPE, "name": name, "custom": True, "parent": "", "provider": "",
        "dependencies": [], "protect": False, "inputs": {"name": name}, "additional_secret_outputs": []})
    (old / "graph.json").write_text(json.dumps(graph))
    code, out = run_diff(old, new, capsys)
    assert (code, out) == (0, "No changes: both plans register the same resources with the same inputs.\n")
