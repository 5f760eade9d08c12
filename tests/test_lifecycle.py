"""Lifecycle: removing clusters, refusing identity changes, rotating the CA."""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.program import InvalidConfig
from meshcore.config_parse import parse_settings
from meshcore.lifecycle import identity_changes
from meshcore.values import PEER_DEPENDENT_PATHS
from tests.conftest import cluster_entry, mesh_config, write_stack
from tests.mockcloud import CA_CERT_PEM, ComputingMocks, by_type, one, release_values, run
from tools import render
from tools.mockengine import Recording
from tools.plan import plan
from tools.render import scrub

RELEASE = "kubernetes:helm.sh/v3:Release"


def deployed(raw: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """The `clusters` output a deployment of ``raw`` leaves in the stack."""
    (tmp_path / "before").mkdir()
    return scrub(run(raw, tmp_path / "before").outputs)["clusters"]


def _issue_keys(err: BaseException) -> list[str]:
    """The config keys of the InvalidConfig behind ``err`` (the SDK may wrap it)."""
    while err is not None and not isinstance(err, InvalidConfig):
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
    assert isinstance(err, InvalidConfig), "the update must fail with InvalidConfig"
    return [i.key for i in err.issues]


def test_identity_change_is_refused_before_any_release(tmp_path: Path) -> None:
    """Changing a deployed cluster's id fails the update, naming the key; no release is registered."""
    raw = mesh_config(3)
    previous = deployed(raw, tmp_path)
    changed = copy.deepcopy(raw)
    changed["clusters"][1]["id"] = 9
    recording = Recording(project="tke-cilium-mesh", stack="test")
    with pytest.raises(Exception) as exc:
        run(changed, tmp_path, mocks=ComputingMocks(previous), recording=recording)
    assert _issue_keys(exc.value) == ["mesh:clusters[1].id"]
    assert by_type(recording, RELEASE) == []
    # What the next run compares with waits for the guard: a retry is refused again.
    assert "clusters" not in recording.outputs and "maxConnectedClusters" not in recording.outputs
    errors = [m for lvl, m in recording.logs if lvl == "error"]
    assert any("deployed with id 2, now 9" in m and "mesh:allowIdentityChange" in m for m in errors)


def test_rename_on_the_same_context_is_refused(tmp_path: Path) -> None:
    """A new name where a removed cluster's context was is a rename, refused at the new name."""
    raw = mesh_config(2)
    previous = deployed(raw, tmp_path)
    renamed = copy.deepcopy(raw)
    renamed["clusters"][1].update(name="cls-renamed1", context="cls-00000002")
    with pytest.raises(Exception) as exc:
        run(renamed, tmp_path, mocks=ComputingMocks(previous))
    assert _issue_keys(exc.value) == ["mesh:clusters[1].name"]


def test_allowed_identity_change_goes_through_loudly(tmp_path: Path) -> None:
    """Listed in mesh:allowIdentityChange, the change applies with a warning to restart workloads."""
    raw = mesh_config(2)
    previous = deployed(raw, tmp_path)
    changed = copy.deepcopy(raw)
    changed["clusters"][1]["id"] = 9
    changed["allowIdentityChange"] = ["cls-00000002"]
    rec = run(changed, tmp_path, mocks=ComputingMocks(previous))
    assert release_values(one(rec, RELEASE, "cls-00000002-cilium"))["cluster"]["id"] == 9
    warnings = [m for lvl, m in rec.logs if lvl == "warning"]
    assert any(m.startswith("mesh:clusters[1].id (cls-00000002): cluster cls-00000002 was deployed with id 2, now 9: allowed by "
                            "mesh:allowIdentityChange; after this update run `kubectl --context cls-00000002 -n "
                            "kube-system rollout restart ds/cilium deploy/cilium-operator deploy/clustermesh-apiserver`")
               and m.endswith("then restart every workload of the cluster (its pods keep the old identity until they "
                              "restart)") for m in warnings), warnings


def test_unused_allowance_is_reported(tmp_path: Path) -> None:
    """An override left in place after its update is pointed out."""
    raw = mesh_config(2, allowIdentityChange=["cls-00000001"])
    rec = run(raw, tmp_path, mocks=ComputingMocks(deployed(mesh_config(2), tmp_path)))
    assert any("lists cls-00000001, whose identity does not change" in m for lvl, m in rec.logs if lvl == "warning")


def test_removal_and_addition_are_not_identity_changes() -> None:
    """A removed cluster and a new cluster on a new context are ordinary changes."""
    settings = parse_settings(mesh_config(3))
    previous = {"cls-00000001": {"id": 1, "context": "cls-00000001"},
                "cls-gone0001": {"id": 7, "context": "cls-gone0001", "meshAddress": "10.9.9.9:2379"}}
    assert identity_changes(previous, settings, {}) == []
    assert identity_changes(None, settings, {}) == []
    moved = {"cls-gone0001": {"id": 7, "context": "other", "meshAddress": "10.0.2.100:2379"}}
    changes = identity_changes(moved, settings, {"cls-00000002": "10.0.2.100:2379"})
    assert [(c.key, c.allowed) for c in changes] == [("mesh:clusters[1].name", False)]


def _leaves(node: Any, prefix: tuple = ()) -> dict:
    if isinstance(node, dict) and node:
        out: dict = {}
        for k, v in node.items():
            out.update(_leaves(v, (*prefix, k)))
        return out
    return {prefix: node}


@pytest.mark.parametrize("masquerade", ["none", "ipMasqAgent"])
def test_removing_a_cluster_touches_only_peer_lists(tmp_path: Path, masquerade: str) -> None:
    """N+1 -> N: the removed cluster's resources go; the others lose it from peer lists (and CIDRs) only."""
    def stack(n: int) -> dict:
        return mesh_config(n, masquerade={"mode": masquerade})

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    before = plan(str(write_stack(tmp_path / "a", stack(4))), mocks=ComputingMocks())
    after = plan(str(write_stack(tmp_path / "b", stack(3))), mocks=ComputingMocks())
    gone = {u for u in before.resources if "cls-00000004" in u}
    assert len(gone) == 6 and not any("cls-00000004" in u for u in after.resources)
    fa, fb = render.artefacts(before), render.artefacts(after)
    allowed = set(PEER_DEPENDENT_PATHS if masquerade == "ipMasqAgent" else PEER_DEPENDENT_PATHS[:1])
    for i in (1, 2, 3):
        old = _leaves(yaml.safe_load(fa[f"values/cls-{i:08d}.yaml"]))
        new = _leaves(yaml.safe_load(fb[f"values/cls-{i:08d}.yaml"]))
        assert {p for p in old.keys() | new.keys() if old.get(p) != new.get(p)} == allowed
        assert "cls-00000004" not in fb[f"values/cls-{i:08d}.yaml"]


def test_ca_rotation_trusts_both_then_switches(tmp_path: Path, chart_schema: Any) -> None:
    """generations [1, 2]: two protected CAs, every cluster trusts both, `signing` picks tls.ca."""
    for signing in (1, 2):
        (tmp_path / str(signing)).mkdir()
        rec = run(mesh_config(2, ca={"generations": [1, 2], "signing": signing}), tmp_path / str(signing))
        cas = sorted(r.name for r in by_type(rec, "mesh:pki:SharedCa"))
        assert cas == ["mesh-ca", "mesh-ca-2"]
        assert all(r.protect for r in rec.resources.values() if r.type.startswith("tls:"))
        assert len(by_type(rec, "tls:index/privateKey:PrivateKey")) == 2
        signer = one(rec, "tls:index/privateKey:PrivateKey", "mesh-ca-key" if signing == 1 else "mesh-ca-2-key")
        for r in by_type(rec, RELEASE):
            values = release_values(r)
            assert values["tls"]["caBundle"] == {"enabled": True, "content": CA_CERT_PEM * 2}
            assert base64.b64decode(values["tls"]["ca"]["cert"]).decode() == CA_CERT_PEM
            assert signer.urn in r.dependencies
            assert chart_schema(values) == []


def test_one_ca_generation_means_no_bundle(tmp_path: Path) -> None:
    """The default (generation 1 only) keeps the original CA names and sets no trust bundle."""
    rec = run(mesh_config(2), tmp_path)
    assert [r.name for r in by_type(rec, "mesh:pki:SharedCa")] == ["mesh-ca"]
    assert all("caBundle" not in r.inputs["values"]["tls"] for r in by_type(rec, RELEASE))


@pytest.mark.parametrize("ca, key", [
    ({"generations": [1, 2]}, "mesh:ca.signing"),
    ({"generations": [1, 2], "signing": 3}, "mesh:ca.signing"),
    ({"generations": [1, 1]}, "mesh:ca.generations[1]"),
    ({"generations": []}, "mesh:ca.generations"),
    ({"generations": [1, 2, 3], "signing": 2}, "mesh:ca.generations"),
    ({"rotate": True}, "mesh:ca.rotate"),
])
def test_ca_config_is_validated(ca: dict, key: str) -> None:
    """A rotation config that does not say which CA signs, or lists too many, is refused."""
    from meshcore.errors import MeshConfigError

    with pytest.raises(MeshConfigError) as exc:
        parse_settings(mesh_config(2, ca=ca))
    assert key in [i.key for i in exc.value.issues]


def test_allow_identity_change_names_configured_clusters() -> None:
    """The override lists cluster names of this stack."""
    from meshcore.errors import MeshConfigError

    with pytest.raises(MeshConfigError) as exc:
        parse_settings(mesh_config(2, allowIdentityChange=["cls-nothere"]))
    assert [i.key for i in exc.value.issues] == ["mesh:allowIdentityChange[0]"]



def test_max_connected_clusters_change_is_refused_even_when_allowed(tmp_path: Path) -> None:
    """maxConnectedClusters never changes on a running mesh; no override applies."""
    raw = mesh_config(2, maxConnectedClusters=511, allowIdentityChange=["cls-00000001"])
    with pytest.raises(Exception) as exc:
        run(raw, tmp_path, mocks=ComputingMocks(deployed(mesh_config(2), tmp_path), previous_max=255))
    assert _issue_keys(exc.value) == ["mesh:maxConnectedClusters"]


def test_moving_a_running_clusters_vip_is_refused(tmp_path: Path) -> None:
    """A new VIP for a deployed cluster is refused (TKE keeps the old one); allowed, it goes through."""
    raw = mesh_config(2)
    previous = deployed(raw, tmp_path)
    moved = copy.deepcopy(raw)
    moved["clusters"][0]["apiserver"]["vip"] = "10.0.9.100"
    with pytest.raises(Exception) as exc:
        run(moved, tmp_path, mocks=ComputingMocks(previous))
    assert _issue_keys(exc.value) == ["mesh:clusters[0].apiserver.vip"]
    moved["allowIdentityChange"] = ["cls-00000001"]
    rec = run(moved, tmp_path, mocks=ComputingMocks(previous))
    assert scrub(rec.outputs)["clusters"]["cls-00000001"]["meshAddress"] == "10.0.9.100:2379"


# --------------------------------------------------------------------------- an allowed rename: in place (#11.5)

STACK = "pulumi:pulumi:Stack"


def _urn(recording_stack: str, project: str, parent: str, type_: str, name: str) -> str:
    """A URN as the engine makes it: the parent's qualified type chain, unless the parent is the stack."""
    qualified = type_
    if parent and parent.split("::")[2] != STACK:
        qualified = f"{parent.split('::')[2]}${type_}"
    return f"urn:pulumi:{recording_stack}::{project}::{qualified}::{name}"


def engine_matches(old: set[str], rec: Recording) -> dict[str, str]:
    """New URN -> the old URN the engine takes it to be, by the rules of its step generator (pulumi v3.276
    pkg/resource/deploy/step_generator.go, ``getOldResource``/``generateAliases``): the resource's own URN first;
    else its aliases, each resolved against its parent's matched alias; else the alias inherited from the parent's
    matched alias, with the parent's name prefix of its name replaced by the alias's name. Registrations come in
    the order the engine sees them (a parent before its children)."""
    matched: dict[str, str] = {}
    aliased: dict[str, str] = {}  # new URN -> the old URN it matched through an alias
    for urn, r in rec.resources.items():
        if urn in old:
            matched[urn] = urn
            continue
        candidates = []
        for a in r.aliases:
            if "urn" in a:
                candidates.append(a["urn"])
                continue
            parent = a.get("parent") or r.parent
            candidates.append(_urn(rec.stack, rec.project, aliased.get(parent, parent), a.get("type") or r.type,
                                   a.get("name") or r.name))
        if r.parent in aliased:
            parent_alias, parent_name = aliased[r.parent], r.parent.rsplit("::", 1)[-1]
            name = r.name
            if name.startswith(parent_name):
                name = parent_alias.rsplit("::", 1)[-1] + name[len(parent_name):]
            candidates.append(_urn(rec.stack, rec.project, parent_alias, r.type, name))
        for c in candidates:
            if c in old:
                matched[urn] = aliased[urn] = c
                break
    return matched


def _rename(raw: dict[str, Any], allow: bool = True) -> dict[str, Any]:
    renamed = copy.deepcopy(raw)
    renamed["clusters"][1].update(name="cls-renamed1", context="cls-00000002")
    if allow:
        renamed["allowIdentityChange"] = ["cls-renamed1"]
    return renamed


@pytest.mark.parametrize("create_clb", [False, True])
def test_allowed_rename_updates_the_same_resources_in_place(tmp_path: Path, create_clb: bool) -> None:
    """cls-00000002 renamed cls-renamed1 (same context), allowed: every resource of the deployed stack is taken
    over by exactly one resource of the new run (the engine matches them through the program's alias), nothing
    is created, nothing is deleted. The Helm release is still `cilium` in kube-system, now with the new
    cluster.name: an upgrade of the same release, not a second `helm install cilium` and a `helm uninstall`.
    The provider's clusterIdentifier changes, and is ignored, so the provider (and its release) is not replaced."""
    raw = mesh_config(3)
    if create_clb:
        raw["clusters"][1] = cluster_entry(2, create_clb=True)
    (tmp_path / "old").mkdir()
    old_run = run(raw, tmp_path / "old")
    previous = scrub(old_run.outputs)["clusters"]
    new_run = run(_rename(raw), tmp_path, mocks=ComputingMocks(previous))
    old_urns = set(old_run.resources)
    matched = engine_matches(old_urns, new_run)
    assert sorted(set(new_run.resources) - set(matched)) == [], "created"
    assert sorted(old_urns - set(matched.values())) == [], "deleted"
    assert len(set(matched.values())) == len(matched), "an old resource taken twice"
    renamed = {n: o for n, o in matched.items() if n != o}
    names = sorted((n.rsplit("::", 1)[-1], o.rsplit("::", 1)[-1]) for n, o in renamed.items())
    expected = [("cls-renamed1", "cls-00000002"), ("cls-renamed1-apiserver", "cls-00000002-apiserver"),
                ("cls-renamed1-cilium", "cls-00000002-cilium"), ("cls-renamed1-cilium", "cls-00000002-cilium"),
                ("cls-renamed1-k8s", "cls-00000002-k8s"), ("cls-renamed1-peers", "cls-00000002-peers")]
    if create_clb:
        expected.insert(2, ("cls-renamed1-apiserver-clb", "cls-00000002-apiserver-clb"))
    assert names == expected
    old_release = old_run.resources[matched[one(new_run, RELEASE, "cls-renamed1-cilium").urn]]
    new_release = one(new_run, RELEASE, "cls-renamed1-cilium")
    for key in ("name", "namespace", "chart", "version"):
        assert new_release.inputs[key] == old_release.inputs[key]
    assert (new_release.inputs["name"], new_release.inputs["namespace"]) == ("cilium", "kube-system")
    assert release_values(new_release)["cluster"] == {"name": "cls-renamed1", "id": 2}
    assert release_values(old_release)["cluster"] == {"name": "cls-00000002", "id": 2}
    provider = one(new_run, "pulumi:providers:kubernetes", "cls-renamed1-k8s")
    assert provider.inputs["clusterIdentifier"] == "cls-renamed1" and provider.ignore_changes == ["clusterIdentifier"]
    assert new_release.provider == provider.urn


def test_only_a_listed_cluster_is_aliased(tmp_path: Path) -> None:
    """A stack that renames nothing registers no alias at all (its URNs and registrations are what they were);
    a cluster listed in mesh:allowIdentityChange without a rename aliases its own name (which the engine skips)."""
    raw = mesh_config(2)
    previous = deployed(raw, tmp_path)
    plain = run(raw, tmp_path, mocks=ComputingMocks(previous))
    assert [r.name for r in plain.resources.values() if r.aliases] == []
    listed = run({**raw, "allowIdentityChange": ["cls-00000002"]}, tmp_path, mocks=ComputingMocks(previous))
    assert [(r.name, r.aliases) for r in listed.resources.values() if r.aliases] == [
        ("cls-00000002", [{"name": "cls-00000002", "parent": ""}])]
    assert set(listed.resources) == set(plain.resources)


def test_refused_rename_is_not_aliased(tmp_path: Path) -> None:
    """Without the allowance the rename is refused, and nothing is aliased to the deployed name either."""
    raw = mesh_config(2)
    previous = deployed(raw, tmp_path)
    recording = Recording(project="tke-cilium-mesh", stack="test")
    with pytest.raises(Exception) as exc:
        run(_rename(raw, allow=False), tmp_path, mocks=ComputingMocks(previous), recording=recording)
    assert _issue_keys(exc.value) == ["mesh:clusters[1].name"]
    assert [r.name for r in recording.resources.values() if r.aliases] == []


def test_the_restart_for_a_cluster_without_a_context_names_its_kubeconfig(tmp_path: Path) -> None:
    """A cluster reached through the TKE API has no kubeconfig context: the command reads its
    kubeconfig from the stack's secret output instead of acting on the current context."""
    from tests.test_tke import adopted_entry

    raw = mesh_config(1)
    raw["clusters"].append(adopted_entry(2))
    previous = deployed(raw, tmp_path)
    changed = copy.deepcopy(raw)
    changed["clusters"][1]["id"] = 9
    changed["allowIdentityChange"] = ["cls-00000002"]
    rec = run(changed, tmp_path, mocks=ComputingMocks(previous), contexts=["cls-00000001"])
    warnings = [m for lvl, m in rec.logs if lvl == "warning"]
    command = ("kubectl --kubeconfig <(pulumi stack output kubeconfigs --show-secrets --json | jq -r "
               "'.[\"cls-00000002\"]') -n kube-system rollout restart ds/cilium deploy/cilium-operator "
               "deploy/clustermesh-apiserver")
    assert any(f"run `{command}`" in m for m in warnings), warnings
    assert not any("`kubectl -n" in m for m in warnings), "never a bare kubectl"
