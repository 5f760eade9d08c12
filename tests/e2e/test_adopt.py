"""Adopting a mesh built by hand (issue #22), on the real engine and real API servers.

Three clusters of a local mesh of their own get Cilium (the stand-in chart) with the toolchain's Helm client,
without this program, as the TKE guide and ``cilium clustermesh enable/connect`` leave them: ids 11, 12, 13, a
CA made by hand, peers connected pairwise; the third as an older CLI leaves it (no peer list in its values, a
``cilium-clustermesh`` Secret outside Helm). ``tools.adopt`` writes the stack; it validates against the schema and
the program; the offline plan's values differ from what runs only in program-owned values. A fleet with two CAs or
a duplicated id is refused before anything is written or touched. Tests run in file order."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshcore import adoption, owned
from tests.e2e.harness import CHART, ROOT, Workspace, core_api, deployed, helm_releases
from tools import adopt, doctor, localmesh, toolchain
from tools.diff import _MISSING

CLUSTERS = ("cls-a", "cls-b", "cls-c", "cls-d")
"""The local mesh of this module: the first three are adopted, the fourth joins through the program."""
IDS = {"cls-a": 11, "cls-b": 12, "cls-c": 13, "cls-d": 14}
HAND = CLUSTERS[:3]
OLD_CLI = "cls-c"
"""Connected as an older CLI did: a cilium-clustermesh Secret outside Helm, no peer list in the values."""
TIMES: dict[str, float] = {}


def _vip(name: str) -> str:
    return localmesh.vip(IDS[name])


def hand_values(name: str, ca_cert: str, ca_key: str, peers: tuple[str, ...]) -> dict[str, Any]:
    """The values the guide's `helm install cilium` and `cilium clustermesh enable` leave (plus one of the user's)."""
    values: dict[str, Any] = {
        "cluster": {"name": name, "id": IDS[name]},
        "ipam": {"operator": {"clusterPoolIPv4PodCIDRList": [f"10.{IDS[name]}.0.0/16"]}},
        "operator": {"replicas": 1},
        "clustermesh": {
            "useAPIServer": True,
            "apiserver": {
                "service": {"type": "LoadBalancer", "annotations": {
                    owned.INTERNAL_SUBNET_ANNOTATION: f"subnet-hand{IDS[name]:04d}",
                    owned.EXTENSIVE_PARAMETERS_ANNOTATION: owned.vip_request(_vip(name))}},
                "tls": {"server": {"extraIpAddresses": [_vip(name)]}},
            },
        },
        "tls": {"ca": {"cert": base64.b64encode(ca_cert.encode()).decode(),
                       "key": base64.b64encode(ca_key.encode()).decode()}},
    }
    if peers:
        values["clustermesh"]["config"] = {"enabled": True, "clusters": [
            {"name": p, "address": _vip(p), "port": 2379} for p in peers]}
    return values


@dataclass(frozen=True)
class HandMesh:
    dir: Path
    ca_cert: str
    ca_key: str = field(repr=False)

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    def helm(self, *args: str, stdin: str | None = None) -> str:
        helm = toolchain.require() / "bin" / "helm"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "HELM_"))}
        env.update(HELM_CACHE_HOME=str(self.dir / "helm" / "cache"), HELM_CONFIG_HOME=str(self.dir / "helm" / "config"),
                   HELM_DATA_HOME=str(self.dir / "helm" / "data"))
        proc = subprocess.run([str(helm), "--kubeconfig", str(self.kubeconfig), *args], input=stdin,
                              capture_output=True, text=True, timeout=300, env=env)
        assert proc.returncode == 0, f"helm {' '.join(args)}: {proc.stderr}"
        return proc.stdout

    def install(self, name: str, values: dict[str, Any]) -> None:
        self.helm("install", "cilium", str(CHART), "--namespace", "kube-system", "--kube-context", name,
                  "--values", "-", stdin=json.dumps(values))


@pytest.fixture(scope="module")
def hand_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HandMesh]:
    d = tmp_path_factory.mktemp("handmesh")
    started = time.monotonic()
    localmesh.up(list(CLUSTERS), d)
    cert, key = localmesh.new_mesh_ca()
    mesh = HandMesh(d, cert, key)
    try:
        for name in HAND:
            peers = () if name == OLD_CLI else tuple(p for p in HAND if p != name)
            mesh.install(name, hand_values(name, cert, key, peers))
        # What an older `cilium clustermesh connect` left in the third cluster: a peer Secret outside Helm.
        core_api(mesh.kubeconfig, OLD_CLI).create_namespaced_secret("kube-system", {
            "metadata": {"name": "cilium-clustermesh"},
            "data": {p: base64.b64encode(f"endpoints:\n- https://{_vip(p)}:2379\n".encode()).decode()
                     for p in HAND if p != OLD_CLI}})
        localmesh.assign_vips(d)
        TIMES["hand install of 3 clusters (mesh up, helm install x3)"] = time.monotonic() - started
        yield mesh
    finally:
        localmesh.down(d)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("adopt-ws"), stack="adopted")


def run_adopt(ws: Workspace, mesh: HandMesh, contexts: tuple[str, ...], out: Path,
              *extra: str) -> subprocess.CompletedProcess[str]:
    started = time.monotonic()
    proc = subprocess.run(
        [str(ROOT / "venv" / "bin" / "python"), "-m", "tools.adopt", "--kubeconfig", str(mesh.kubeconfig),
         "--contexts", ",".join(contexts), "--out", str(out), "--region", "ap-guangzhou", "--chart", str(CHART),
         "--skip-await", "--pulumi", str(ws.bin / "pulumi"), *extra],
        cwd=ROOT, env=ws.env, capture_output=True, text=True, timeout=600)
    TIMES[f"adopt {','.join(contexts)} {' '.join(extra)}".strip()] = time.monotonic() - started
    return proc


def test_1_a_fleet_with_two_cas_or_one_id_twice_is_refused_before_anything_is_touched(
        hand_mesh: HandMesh, ws: Workspace) -> None:
    """cls-d gets Cilium by hand with cls-a's id and a CA of its own: adopting cls-a and cls-d is refused with
    both reasons, each naming the clusters; no stack file, no stack, no release touched. Then cls-d is emptied
    again (it joins through the program later)."""
    cert, key = localmesh.new_mesh_ca()
    values = hand_values("cls-d", cert, key, ("cls-a",))
    values["cluster"]["id"] = IDS["cls-a"]
    hand_mesh.install("cls-d", values)
    before = {n: [r["version"] for r in helm_releases(hand_mesh.kubeconfig, n)] for n in ("cls-a", "cls-d")}
    try:
        proc = run_adopt(ws, hand_mesh, ("cls-a", "cls-d"), ws.stack_file)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        errors = proc.stderr.splitlines()
        assert [e for e in errors if "all run cluster.id 11" in e] == [
            "error: cls-a (context cls-a), cls-d (context cls-d): all run cluster.id 11: ids are unique in a mesh; give "
            "all but one another id first (every workload of that cluster restarts), then adopt"]
        two_cas = [e for e in errors if "different CAs" in e]
        assert len(two_cas) == 1 and "cls-a (context cls-a)" in two_cas[0] and "cls-d (context cls-d)" in two_cas[0]
        assert errors[-1] == "error: nothing adopted, nothing written (2 problem(s))"
        assert not ws.stack_file.exists()
        assert ws.stacks() == []
        assert {n: [r["version"] for r in helm_releases(hand_mesh.kubeconfig, n)] for n in before} == before
        assert key not in proc.stdout + proc.stderr
    finally:
        hand_mesh.helm("uninstall", "cilium", "--namespace", "kube-system", "--kube-context", "cls-d")
    assert helm_releases(hand_mesh.kubeconfig, "cls-d") == []


def test_2_adopt_writes_a_stack_the_schema_and_the_program_accept(hand_mesh: HandMesh, ws: Workspace) -> None:
    import jsonschema

    from tools import schema

    proc = run_adopt(ws, hand_mesh, HAND, ws.stack_file, "--take-over")

    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = ws.stack_file.read_text(encoding="utf-8")
    # The CA key: only ciphertext, in the file and the output.
    assert hand_mesh.ca_key not in text and hand_mesh.ca_key not in proc.stdout + proc.stderr
    assert "PRIVATE KEY" not in text and "PRIVATE KEY" not in proc.stdout + proc.stderr
    doc = yaml.safe_load(text)
    assert set(doc["config"]["mesh:caPrivateKey"]) == {"secure"}
    checker = jsonschema.Draft202012Validator(json.loads(schema.SCHEMA_FILE.read_text(encoding="utf-8")),
                                              format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    assert [e.message for e in checker.iter_errors(doc)] == []
    settings = doctor.load_settings(str(ws.stack_file))
    assert {c.name: c.id for c in settings.clusters} == {n: IDS[n] for n in HAND}
    assert {c.name: (str(c.apiserver.vip), c.apiserver.subnet_id) for c in settings.clusters} == {
        n: (_vip(n), f"subnet-hand{IDS[n]:04d}") for n in HAND}
    assert {c.name: [str(p) for p in c.pod_cidrs] for c in settings.clusters} == {
        n: [f"10.{IDS[n]}.0.0/16"] for n in HAND}
    assert {c.name: (c.adopted.version, c.adopted.first_installed) for c in settings.clusters if c.adopted} == {
        n: ("1.18.3", "1.18") for n in HAND}
    assert settings.ca.provided_certificate == hand_mesh.ca_cert
    assert settings.full_mesh
    # What the program does not own stays: the user's operator.replicas, shared by all, and each pod pool.
    assert doc["config"]["mesh:cilium"]["values"] == {"operator": {"replicas": 1}}
    assert {c["name"]: c["values"] for c in doc["config"]["mesh:clusters"]} == {
        n: {"ipam": {"operator": {"clusterPoolIPv4PodCIDRList": [f"10.{IDS[n]}.0.0/16"]}}} for n in HAND}
    # The old CLI's leftover: said, and taken over (Helm's ownership metadata; its data as it was).
    assert any(line.startswith(f"note: {OLD_CLI}: Secret kube-system/cilium-clustermesh exists outside release "
                               "cilium") for line in proc.stdout.splitlines())
    assert f"{OLD_CLI}: Secret kube-system/cilium-clustermesh now carries release cilium's ownership" in proc.stdout
    s = core_api(hand_mesh.kubeconfig, OLD_CLI).read_namespaced_secret("cilium-clustermesh", "kube-system")
    assert s.metadata.annotations[adoption.RELEASE_NAME_ANNOTATION] == "cilium"
    assert sorted(s.data) == ["cls-a", "cls-b"]
    assert {n: deployed(hand_mesh.kubeconfig, n)["version"] for n in HAND} == dict.fromkeys(HAND, 1)


def test_3_the_offline_plan_changes_only_program_owned_values(hand_mesh: HandMesh, ws: Workspace) -> None:
    """The plan's values against what runs (`helm get values`): nothing the user set changes, no identity or CA
    change; only values the program owns (``meshcore.owned``), among them cls-c's peer list (the old CLI kept
    it in a Secret)."""
    fleet = adopt.observe_fleet(str(hand_mesh.kubeconfig), HAND)
    report = adopt.changes(ws.stack_file, fleet, {n: n for n in HAND})
    for name, cs in report.items():
        assert cs, name
        assert [c.path for c in cs if owned.owner_of(c.path) is None] == [], name
        assert [c.path for c in cs if c.effect in ("identity", "ca")] == [], name
        assert [c.path for c in cs if c.old is not _MISSING and c.path[:2] != ("clustermesh", "config")] \
            == [], name
    peers = {n: sorted(".".join(c.path) for c in cs if c.path[:3] == ("clustermesh", "config", "clusters"))
             for n, cs in report.items()}
    assert peers == {"cls-a": [], "cls-b": [], OLD_CLI: ["clustermesh.config.clusters.cls-a",
                                                          "clustermesh.config.clusters.cls-b"]}


def test_zz_times(capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print("\n" + "\n".join(f"  {k}: {v:.1f} s" for k, v in TIMES.items()))
