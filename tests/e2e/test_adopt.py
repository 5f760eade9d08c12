"""Adopting a mesh built by hand (issue #22), on the real engine and real API servers.

Three clusters of a local mesh of their own get Cilium (the stand-in chart) with the toolchain's Helm client,
without this program, as the TKE guide and ``cilium clustermesh enable/connect`` leave them: ids 11, 12, 13, a
CA made by hand, peers connected pairwise; the third as an older CLI leaves it (no peer list in its values, a
``cilium-clustermesh`` Secret outside Helm). ``tools.adopt`` writes the stack; it validates against the schema and
the program; the offline plan's values differ from what runs only in program-owned values. A fleet with two CAs or
a duplicated id is refused before anything is written or touched. Tests run in file order."""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import random
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshcore.chart import owned
from meshcore.mesh import adoption
from tests.e2e.harness import CHART, ROOT, Workspace, core_api, deployed, helm_releases, sampling
from tests.e2e.test_connect import CONNECT_TIMEOUT, _full_mesh, _pids, _poll, _status
from tools import adopt, controlplane, cpstate, doctor, localmesh, localpki, localstack, markready, toolchain
from tools.plandiff import MISSING

CLUSTERS = ("cls-a", "cls-b", "cls-c", "cls-d")
"""The local mesh of this module: the first three are adopted, the fourth joins through the program."""
IDS = {"cls-a": 11, "cls-b": 12, "cls-c": 13, "cls-d": 14}
HAND = CLUSTERS[:3]
OLD_CLI = "cls-c"
"""Connected as an older CLI did: a cilium-clustermesh Secret outside Helm, no peer list in the values."""
TIMES: dict[str, float] = {}
HAND_CONNECTIONS = {"cls-a": {"cls-b", "cls-c"}, "cls-b": {"cls-a", "cls-c"}, OLD_CLI: set()}
"""Who each kvstoremesh of the hand-made mesh is connected to."""


def _connected(mesh: Any, wanted: dict[str, set[str]]) -> Any:
    """A probe: the mesh status when every cluster's kvstoremesh is connected to and synced with exactly ``wanted``."""
    def probe() -> dict[str, Any] | None:
        status = _status(mesh)
        for name, peers in wanted.items():
            remotes = status.get(name, {}).get("remotes", {})
            if set(remotes) != peers or not all(r["connected"] and r["synced"] for r in remotes.values()):
                return None
        return status
    return probe


@functools.cache
def _prefix() -> str:
    """``127.X.11``: loopback addresses nobody on this host listens on (the control plane binds each mesh address;
    parallel runs pick others)."""
    for _ in range(50):
        prefix = f"127.{random.randint(100, 250)}.11"
        with contextlib.ExitStack() as stack:
            try:
                for cid in IDS.values():
                    for port in (cpstate.API_PORT, 2379):
                        stack.enter_context(socket.socket()).bind((f"{prefix}.{cid}", port))
            except OSError:
                continue
            return prefix
    raise AssertionError("no free loopback addresses for the mesh")


def _vip(name: str) -> str:
    return f"{_prefix()}.{IDS[name]}"


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
    cert, key = localpki.new_mesh_ca()
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
        markready.assign_vips(d)
        TIMES["hand install of 3 clusters (mesh up, helm install x3)"] = time.monotonic() - started
        # Their clustermesh-apiservers run (Cilium's own binaries, tools.controlplane): cls-a and cls-b connect to
        # each other and to cls-c; cls-c, whose values name no peer, to none (its kvstoremesh has no peer list).
        controlplane.connect(d)
        _, took = _poll("the hand-made mesh", _connected(mesh, HAND_CONNECTIONS), CONNECT_TIMEOUT)
        TIMES["hand-made mesh connected"] = took
        yield mesh
    finally:
        try:
            controlplane.down(d)
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
    cert, key = localpki.new_mesh_ca()
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
    change; only values the program owns (``meshcore.chart.owned``), among them cls-c's peer list (the old CLI kept
    it in a Secret)."""
    fleet = adopt.observe_fleet(str(hand_mesh.kubeconfig), HAND)
    report = adopt.changes(ws.stack_file, fleet, {n: n for n in HAND})
    for name, cs in report.items():
        assert cs, name
        assert [c.path for c in cs if owned.owner_of(c.path) is None] == [], name
        assert [c.path for c in cs if c.effect in ("identity", "ca")] == [], name
        assert [c.path for c in cs if c.old is not MISSING and c.path[:2] != ("clustermesh", "config")] \
            == [], name
    peers = {n: sorted(".".join(c.path) for c in cs if c.path[:3] == ("clustermesh", "config", "clusters"))
             for n, cs in report.items()}
    assert peers == {"cls-a": [], "cls-b": [], OLD_CLI: ["clustermesh.config.clusters.cls-a",
                                                          "clustermesh.config.clusters.cls-b"]}


def _edited(ws: Workspace, edit: Any) -> str:
    """The stack file as it is, after ``edit(config)`` is written into it (the caller restores the text)."""
    text = ws.stack_file.read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    edit(doc["config"])
    ws.stack_file.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return text


def test_4_a_stack_that_would_change_what_an_adopted_cluster_runs_is_refused(hand_mesh: HandMesh,
                                                                              ws: Workspace) -> None:
    """Before the first `up` the stack has no record of the adopted clusters: the program reads what they run
    (cilium-config, cilium-ca) and refuses another id, another name on the same context, or another CA, naming
    the key; no release is touched."""
    other_ca, _ = localpki.new_mesh_ca()

    def edit(config: dict[str, Any]) -> None:
        config["mesh:clusters"][1]["id"] = 15
        config["mesh:clusters"][2]["name"] = "cls-renamed"
        config["mesh:clusters"][2]["context"] = OLD_CLI
        config["mesh:ca"]["certificate"] = other_ca

    text = _edited(ws, edit)
    try:
        started = time.monotonic()
        result = ws.pulumi("preview", check=False)
        TIMES["refused preview (id, name, CA of running clusters)"] = time.monotonic() - started
        assert result.returncode != 0
        out = result.output
        assert "mesh:clusters[1].id (cls-b): cluster cls-b was deployed with id 12, now 15" in out, out[-3000:]
        assert "mesh:clusters[2].name (cls-renamed): cluster cls-c (context cls-c) is now named cls-renamed" in out
        assert "mesh:ca.certificate: cluster cls-a (mesh:clusters[0].adopted) runs another CA" in out
    finally:
        ws.stack_file.write_text(text, encoding="utf-8")
    assert {n: deployed(hand_mesh.kubeconfig, n)["version"] for n in HAND} == dict.fromkeys(HAND, 1)


def _templates(mesh: HandMesh, name: str) -> dict[str, Any]:
    from kubernetes import client, config

    apps = client.AppsV1Api(config.new_client_from_config(str(mesh.kubeconfig), context=name))
    out = {f"ds/{d.metadata.name}": d.spec.template.to_dict() for d in apps.list_namespaced_daemon_set("kube-system").items}
    out.update({f"deploy/{d.metadata.name}": d.spec.template.to_dict()
                for d in apps.list_namespaced_deployment("kube-system").items})
    return out


def test_5_up_imports_every_release_and_upgrades_it_once(hand_mesh: HandMesh, ws: Workspace) -> None:
    """The first `pulumi up` imports each release (no uninstall, no second install) and upgrades it to the
    program's values: revision 2, Helm's history kept, no pod template changed; the chart record continues from
    what ran. The mesh stays connected through it: sampled while it runs, every connection of the hand-made mesh
    stays up, no clustermesh-apiserver process restarts, and afterwards cls-c is connected to both peers too."""
    before = {n: _templates(hand_mesh, n) for n in HAND}
    pids = _pids(hand_mesh, HAND)
    started = time.monotonic()
    preview = ws.pulumi("preview", "--json").json()
    TIMES["preview of the adoption"] = time.monotonic() - started
    ops: dict[str, list[str]] = {}
    for s in preview["steps"]:
        if s["urn"].split("::")[-2].endswith("helm.sh/v3:Release"):
            ops.setdefault(s["urn"].rsplit("::", 1)[1], []).append(s["op"])
    assert ops == {f"{n}-cilium": ["import", "update"] for n in HAND}, ops
    started = time.monotonic()
    with _watching(hand_mesh, HAND_CONNECTIONS) as seen:
        up = ws.pulumi("up", "--yes", "--skip-preview")
    TIMES["up of the adoption"] = time.monotonic() - started
    assert seen["samples"] >= 3 and seen["dropped"] == [], seen
    controlplane.connect(hand_mesh.dir)  # the pods' volumes as the kubelet keeps them (its poller does too)
    _, took = _poll("the adopted mesh", _full_mesh(hand_mesh, HAND), CONNECT_TIMEOUT)
    TIMES["adopted mesh fully connected"] = took
    assert _pids(hand_mesh, HAND) == pids
    for n in HAND:
        history = helm_releases(hand_mesh.kubeconfig, n)
        assert [(r["version"], r["info"]["status"]) for r in history] == [(1, "superseded"), (2, "deployed")], n
        assert _templates(hand_mesh, n) == before[n], n
    outputs = ws.outputs()
    assert {n: outputs["clusters"][n]["cilium"] for n in HAND} == dict.fromkeys(
        HAND, {"version": "1.18.3", "firstInstalled": "1.18"})
    # The old CLI's Secret is the release's now, with the program's peer list (the same peers).
    s = core_api(hand_mesh.kubeconfig, OLD_CLI).read_namespaced_secret("cilium-clustermesh", "kube-system")
    assert sorted(s.data) == ["cls-a", "cls-b"]
    assert "import" in up.output


@contextlib.contextmanager
def _watching(mesh: HandMesh, wanted: dict[str, set[str]]) -> Iterator[dict[str, Any]]:
    """Sample the mesh status while the block runs: ``samples`` read, and ``dropped``, every connection seen down."""
    seen: dict[str, Any] = {"samples": 0, "dropped": []}

    def check(status: Any) -> None:
        seen["samples"] += 1
        dropped = [f"{name} -> {p}" for name, peers in wanted.items() for p in peers
                   if not status[name]["remotes"].get(p, {}).get("connected")]
        seen["dropped"] += dropped

    with sampling(lambda: _status(mesh), check, 0.2, (OSError, ValueError, AssertionError)):
        yield seen


def test_6_a_second_preview_shows_no_change(ws: Workspace) -> None:
    """Nothing changes in any cluster or resource: the only steps are the state forgetting the adoption's reads of
    cilium-config and cilium-ca (`discard`: no request to a cluster), which the next update does once."""
    started = time.monotonic()
    preview = ws.pulumi("preview", "--json").json()
    TIMES["second preview"] = time.monotonic() - started
    assert sorted((s["urn"].rsplit("::", 1)[1], s["op"]) for s in preview["steps"] if s["op"] != "same") == sorted(
        (f"{n}-{read}", "discard") for n in HAND for read in ("cilium-config", "cilium-ca"))


def test_7_a_fourth_cluster_joins_through_the_program(hand_mesh: HandMesh, ws: Workspace) -> None:
    """cls-d, without Cilium, joins: its release is installed (revision 1), the adopted ones get the new peer
    (revision 3, history kept)."""
    def edit(config: dict[str, Any]) -> None:
        entry = localstack.stack_cluster(IDS["cls-d"], "cls-d")
        entry["podCidrs"] = [f"10.{IDS['cls-d']}.0.0/16"]
        entry["apiserver"]["vip"] = _vip("cls-d")
        config["mesh:clusters"].append(entry)

    _edited(ws, edit)
    pids = _pids(hand_mesh, HAND)
    started = time.monotonic()
    ws.pulumi("up", "--yes", "--skip-preview")
    TIMES["up of a 4th cluster"] = time.monotonic() - started
    markready.assign_vips(hand_mesh.dir)
    controlplane.connect(hand_mesh.dir)
    _, took = _poll("a full mesh of 4", _full_mesh(hand_mesh, CLUSTERS), CONNECT_TIMEOUT)
    TIMES["4th cluster connected"] = took
    assert _pids(hand_mesh, HAND) == pids
    assert [r["version"] for r in helm_releases(hand_mesh.kubeconfig, "cls-d")] == [1]
    for n in HAND:
        release = deployed(hand_mesh.kubeconfig, n)
        assert release["version"] == 3, n
        assert [r["version"] for r in helm_releases(hand_mesh.kubeconfig, n)] == [1, 2, 3], n
        assert "cls-d" in {p["name"] for p in release["config"]["clustermesh"]["config"]["clusters"]}, n
    assert [(s["urn"], s["op"]) for s in ws.pulumi("preview", "--json").json()["steps"] if s["op"] != "same"] == []


def test_zz_times(capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print("\n" + "\n".join(f"  {k}: {v:.1f} s" for k, v in TIMES.items()))
