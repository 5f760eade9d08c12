"""The plan diff: real plans of before/after stacks, compared as a reviewer reads them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, cluster_entry
from tests.mockcloud import ComputingMocks
from tools import diff, render
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
    d = diff.compare(diff.load(str(old)), diff.load(str(new)))
    assert d.clusters_added == ["cls-dev6e7f8"] and d.clusters_removed == []
    assert set(d.values) == {"cls-dev0a1b2", "cls-dev3c4d5"}
    for changes in d.values.values():
        assert [(c.path, c.effect) for c in changes] == [(("clustermesh", "config", "clusters", "cls-dev6e7f8"), "none")]
        assert changes[0].new == {"address": "10.10.3.100", "name": "cls-dev6e7f8", "port": 2379}
    assert d.connections_added == [("cls-dev0a1b2", "cls-dev6e7f8"), ("cls-dev3c4d5", "cls-dev6e7f8")]
    assert len(d.resources_added) == 6 and d.resources_removed == [] and d.resources_replaced == []
    assert "added: cls-dev6e7f8 (id 3, ap-guangzhou, mesh address 10.10.3.100:2379)" in out
    assert "- cls-dev0a1b2: 1 value(s), no cilium agent restart" in out
    assert "RESTARTS" not in out and "DISRUPTIVE" not in out
    assert out.index("Clusters") < out.index("Helm values") < out.index("Peer connections") < out.index("Resources")


def test_identical_plans_exit_0(tmp_path: Path, capsys) -> None:
    """No change: exit 0 and a one-line answer."""
    a = make_plan(tmp_path, "a", dev())
    b = make_plan(tmp_path, "b", dev())
    code, out = run_diff(a, b, capsys)
    assert code == 0 and out.startswith("No changes")


def test_agent_restarting_value_is_loud(tmp_path: Path, capsys) -> None:
    """A value of the agent's pod template or cilium-config is flagged as restarting agents."""
    old = make_plan(tmp_path, "old", dev())
    new = make_plan(tmp_path, "new", dev(lambda c: c["mesh:cilium"].setdefault("values", {}).update(devices="eth0")))
    code, out = run_diff(old, new, capsys, "--format", "markdown")
    assert code == 1
    assert "**RESTARTS CILIUM AGENTS in cls-dev0a1b2: devices**" in out
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
    d = diff.compare(diff.load(str(old)), diff.load(str(new)))
    assert d.clusters_removed == ["cls-dev6e7f8"] and len(d.resources_removed) == 6
    assert diff.render(d).splitlines()[1].startswith("- UNINSTALLS CILIUM from cls-dev6e7f8")
    assert d.connections_removed == [("cls-dev0a1b2", "cls-dev6e7f8"), ("cls-dev3c4d5", "cls-dev6e7f8")]
    for changes in d.values.values():
        assert [c.path[-1] for c in changes] == ["cls-dev6e7f8"] and changes[0].new is diff._MISSING


def test_replacement_is_named(tmp_path: Path) -> None:
    """Moving a created CLB to another subnet replaces it, and says which input forces that."""
    def with_clb(subnet: str):
        def m(c):
            entry = cluster_entry(3, create_clb=True)
            entry["apiserver"]["subnetId"] = subnet
            c["mesh:clusters"].append(entry)
        return m
    old = make_plan(tmp_path, "old", dev(with_clb("subnet-00000003")))
    new = make_plan(tmp_path, "new", dev(with_clb("subnet-0000000b")))
    d = diff.compare(diff.load(str(old)), diff.load(str(new)))
    assert [(diff._short(u), keys) for u, keys in d.resources_replaced] == [
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
    (("image", "tag"), "agents"),
    (("bpf", "masquerade"), "agents"),
])
def test_classification(path, effect) -> None:
    """Peer lists, masquerade CIDRs and other pods' values do not restart agents; the rest may."""
    assert diff.classify(path)[0] == effect


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
        d = diff.compare(diff.load(str(old)), diff.load(str(new)))
        for changes in d.values.values():
            assert [(c.path, c.effect) for c in changes] == [(("tls", "ca", "cert"), "ca"), (("tls", "ca", "key"), "ca")]
            assert (changes[0].old, changes[0].new) == ("[unknown] from mesh-ca", "[unknown] from mesh-ca-2")
            assert "now issued by mesh-ca-2 (were by mesh-ca)" in changes[0].why
        assert sorted(diff._short(u) for u, _ in d.resources_updated) == [
            "kubernetes:helm.sh/v3:Release cls-dev0a1b2-cilium", "kubernetes:helm.sh/v3:Release cls-dev3c4d5-cilium"]


def test_the_signing_ca_is_read_from_the_graph(tmp_path: Path) -> None:
    """The CA a release's tls.ca.* come from is the CA whose key it depends on, in either rotation state."""
    one = diff.load(str(make_plan(tmp_path, "one", dev(with_ca({"generations": [1, 2], "signing": 1})))))
    two = diff.load(str(make_plan(tmp_path, "two", dev(with_ca({"generations": [1, 2], "signing": 2})))))
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
    previous = diff.load(str(old)).graph["outputs"]["clusters"]
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
    d = diff.compare(diff.load(str(old)), diff.load(str(new)), allow_different_stacks=True)
    assert d.resources_removed == [] and len(d.resources_added) == 6
    assert "REFUSED" not in out  # another stack's plan is not what this one deployed
    same = copied(tmp_path, "same", "staging", dev())
    code, out = run_diff(old, same, capsys, "--allow-different-stacks")
    assert code == 1 and out.splitlines()[1].startswith("- DIFFERENT STACKS") and "Resources" not in out
