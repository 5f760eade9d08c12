"""A mesh's life under the real engine: preview, deploy, no-op, grow, refuse, shrink, faults,
secrets, policies, an allowed rename, destroy. One stack, one local mesh, in order: each test starts from the
state the one before left (pytest runs a module's tests in file order)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshcore.chart import certs
from tests.e2e import real_chart
from tests.e2e.conftest import CLUSTERS, Ca, LocalMesh, stack_config
from tests.e2e.harness import (
    CHART,
    ROOT,
    Workspace,
    config_map,
    core_api,
    deployed,
    diagnostics,
    helm_releases,
    plan_values,
    secret_data,
)

RELEASE = "kubernetes:helm.sh/v3:Release"


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, local_mesh: LocalMesh, mesh_ca: Ca) -> Workspace:
    w = Workspace(tmp_path_factory.mktemp("ws"))
    w.init_stack(stack_config(local_mesh, mesh_ca), secrets={"mesh:caPrivateKey": mesh_ca.key_pem})
    return w


def _plan(ws: Workspace, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    out = tmp_path / "plan"
    return out, ws.offline_plan(out)


def _steps(preview: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["urn"]: s for s in preview["steps"] if s["urn"].split("::")[-2] != "pulumi:pulumi:Stack"}


def _revisions(mesh: LocalMesh, names: tuple[str, ...]) -> dict[str, int]:
    return {n: deployed(mesh.kubeconfig, n)["version"] for n in names}


def _strip(value: Any) -> Any:
    """A values document without what only one side can know: secrets and unknowns."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not _opaque(v)}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _opaque(v: Any) -> bool:
    return isinstance(v, str) and (v in ("[secret]", "[unknown]") or v.startswith("output<"))


_RECORDS: dict[str, dict[str, Any]] = {}
"""Each cluster's ``certificates`` output as the last scenario left it (scenarios run in order)."""


def _not_after(pem: str) -> datetime:
    from cryptography import x509
    return x509.load_pem_x509_certificate(pem.encode()).not_valid_after_utc


def _certificates_match_the_live_ones(mesh: LocalMesh, name: str, record: dict[str, Any]) -> None:
    """The recorded expiries are those of the certificates the chart rendered: the revision Helm
    deployed, the clustermesh-apiserver server certificate and the Hubble server certificate."""
    assert record["revision"] == deployed(mesh.kubeconfig, name)["version"], name
    for group, secret in (("clustermeshApiserver", "clustermesh-apiserver-server-cert"),
                          ("hubble", "hubble-server-certs")):
        live = _not_after(secret_data(mesh.kubeconfig, name, secret)["tls.crt"])
        recorded = certs.parse_time(record["leaves"][group]["expiresAt"])
        # The chart signs during the release's upgrade; the program stamps the time right after it.
        assert timedelta(0) <= recorded - live < timedelta(minutes=5), (name, group, live, recorded)


def test_1_preview_matches_the_offline_plan(ws: Workspace, tmp_path: Path) -> None:
    """A new stack's real preview: the same URNs, types and release values as the offline plan."""
    plan_dir, graph = _plan(ws, tmp_path)
    preview = ws.pulumi("preview", "--json").json()
    steps = _steps(preview)
    planned = {r["urn"]: r for r in graph["resources"]}
    assert set(steps) == set(planned)
    # Everything is created; the program reads its own last outputs without a resource (no read step).
    assert {urn: s["op"] for urn, s in steps.items()} == dict.fromkeys(planned, "create")
    for urn, s in steps.items():
        assert s["newState"]["type"] == planned[urn]["type"], urn
        if planned[urn]["type"] == RELEASE:
            cluster = planned[urn]["name"].removesuffix("-cilium")
            assert _strip(s["newState"]["inputs"]["values"]) == _strip(plan_values(plan_dir, cluster)), cluster


def test_2_up_deploys_the_planned_release_into_every_api_server(ws: Workspace, local_mesh: LocalMesh, mesh_ca: Ca,
                                                                  tmp_path: Path) -> None:
    """`pulumi up`: each API server holds release cilium, deployed, with the offline plan's values
    (the CA filled in), the same CA everywhere, and the plan's stack outputs."""
    plan_dir, graph = _plan(ws, tmp_path)
    ws.pulumi("up", "--yes", "--skip-preview")
    ca_b64 = base64.b64encode(mesh_ca.cert_pem.encode()).decode()
    key_b64 = base64.b64encode(mesh_ca.key_pem.encode()).decode()
    for name in CLUSTERS[:3]:
        release = deployed(local_mesh.kubeconfig, name)
        assert release is not None, name
        assert (release["name"], release["namespace"]) == ("cilium", "kube-system")
        assert release["chart"]["metadata"]["version"] == "1.18.3"
        expected = plan_values(plan_dir, name)
        expected["tls"]["ca"] = {"cert": ca_b64, "key": key_b64}
        assert release["config"] == expected, name
        # What the chart rendered from those values.
        assert config_map(local_mesh.kubeconfig, name, "cilium-config") == {
            "cluster-name": name, "cluster-id": str(CLUSTERS.index(name) + 1), "max-connected-clusters": "255"}
        assert secret_data(local_mesh.kubeconfig, name, "cilium-ca")["ca.crt"] == mesh_ca.cert_pem
    outputs = ws.outputs()
    # A brought CA is config, so the offline plan knows every output but the certificates'
    # render record and the chart record, which only the release after apply tells.
    for name in CLUSTERS[:3]:
        assert graph["outputs"]["clusters"][name].pop("certificates") == "[unknown]"
        assert graph["outputs"]["clusters"][name].pop("cilium") == "[unknown]"
        assert outputs["clusters"][name].pop("cilium") == {"version": "1.18.3", "firstInstalled": "1.18"}
        _RECORDS[name] = outputs["clusters"][name].pop("certificates")
        assert _RECORDS[name]["revision"] == 1
        assert _RECORDS[name]["renderedAt"] == _RECORDS[name]["firstRenderedAt"]
        _certificates_match_the_live_ones(local_mesh, name, _RECORDS[name])
    assert outputs == graph["outputs"]
    assert outputs["caCertificatePem"] == mesh_ca.cert_pem
    assert outputs["caExpiresAt"] == {"1": certs.not_after(mesh_ca.cert_pem)}


def _live(kubeconfig: Path, context: str, kind: str, name: str, namespace: str = "kube-system") -> Any:
    """The object ``kind``/``name`` as the API server holds it (an ApiException if it does not)."""
    from kubernetes import client, config

    api = config.new_client_from_config(str(kubeconfig), context=context)
    core, apps, rbac = client.CoreV1Api(api), client.AppsV1Api(api), client.RbacAuthorizationV1Api(api)
    namespaced = {"ServiceAccount": core.read_namespaced_service_account, "Secret": core.read_namespaced_secret,
                  "ConfigMap": core.read_namespaced_config_map, "Service": core.read_namespaced_service,
                  "DaemonSet": apps.read_namespaced_daemon_set, "Deployment": apps.read_namespaced_deployment,
                  "Role": rbac.read_namespaced_role, "RoleBinding": rbac.read_namespaced_role_binding}
    if kind in namespaced:
        return namespaced[kind](name, namespace)
    return {"ClusterRole": rbac.read_cluster_role, "ClusterRoleBinding": rbac.read_cluster_role_binding}[kind](name)


def test_2b_the_api_servers_admit_what_the_real_chart_asks_of_them(local_mesh: LocalMesh,
                                                                   chart_values: dict[str, Any]) -> None:
    """The stand-in chart renders, through Helm in the provider, every object the real 1.18.3 chart renders for
    these values (``real_chart.OBJECTS``: the agent and Envoy DaemonSets, the operator, clustermesh-apiserver and
    Relay Deployments, their ServiceAccounts, ClusterRoles, Roles and bindings, ConfigMaps, Services and Secrets),
    and every API server admitted all of them: among them the agent, a hostNetwork DaemonSet whose init container
    mount-bpf-fs is privileged with Bidirectional mount propagation, which an API server without
    ``--allow-privileged`` refuses (issue #19: ``initContainers[3].securityContext.privileged: Forbidden``)."""
    for name in CLUSTERS[:3]:
        release = deployed(local_mesh.kubeconfig, name)
        rendered = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(release["manifest"]) if d}
        assert [(k, n) for k, n, _ in real_chart.OBJECTS if (k, n) not in rendered] == [], name
        assert {k for k, _ in rendered} == real_chart.KINDS, name
        for kind, obj in sorted(rendered):
            assert _live(local_mesh.kubeconfig, name, kind, obj).metadata.name == obj, (name, kind, obj)

    ds = _live(local_mesh.kubeconfig, "cls-a", "DaemonSet", "cilium")
    pod = ds.spec.template.spec
    assert [c.name for c in pod.init_containers] == [n for n, _ in real_chart.AGENT_INIT_CONTAINERS]
    assert [c.name for c in pod.containers] == list(real_chart.AGENT_CONTAINERS)
    assert [c.name for c in pod.init_containers].index("mount-bpf-fs") == 3, "the container the API server refused"
    containers = {c.name: c for c in pod.init_containers + pod.containers}
    for c in real_chart.PRIVILEGED:
        assert containers[c].security_context.privileged is True, c
        assert [m.mount_propagation for m in containers[c].volume_mounts] == ["Bidirectional"], c
    capabilities = chart_values["securityContext"]["capabilities"]
    for c, key in real_chart.AGENT_CAPABILITIES.items():
        assert containers[c].security_context.capabilities.add == capabilities[key], c
        assert containers[c].security_context.capabilities.drop == ["ALL"], c
    assert not any(c.security_context and c.security_context.privileged
                   for name, c in containers.items() if name not in real_chart.PRIVILEGED)
    workloads = {w: _live(local_mesh.kubeconfig, "cls-a", *w.split("/")).spec.template.spec
                 for w in {*real_chart.HOST_NETWORK, *real_chart.PRIORITY_CLASSES}}
    assert {w for w, spec in workloads.items() if spec.host_network} == set(real_chart.HOST_NETWORK)
    assert {w: workloads[w].priority_class_name for w in real_chart.PRIORITY_CLASSES} == real_chart.PRIORITY_CLASSES


def test_2c_only_an_api_server_with_allow_privileged_admits_the_agent(local_mesh: LocalMesh,
                                                                     tmp_path_factory: pytest.TempPathFactory) -> None:
    """The agent DaemonSet the release rendered, created again (under another name, a server-side dry run) in the
    mesh's API servers, which run with ``--allow-privileged=true``, is admitted; created in an API server without it,
    it is refused as `pulumi up` of the real chart was refused before (issue #19, part 2)."""
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    from tools import localmesh

    manifest = yaml.safe_load_all(deployed(local_mesh.kubeconfig, "cls-a")["manifest"])
    agent = next(d for d in manifest if d and (d["kind"], d["metadata"]["name"]) == ("DaemonSet", "cilium"))
    agent["metadata"] = {"name": "cilium-admission-probe", "namespace": "kube-system"}

    def create(kubeconfig: Path, context: str, **kw: Any) -> Any:
        apps = client.AppsV1Api(config.new_client_from_config(str(kubeconfig), context=context))
        return apps.create_namespaced_daemon_set("kube-system", agent, **kw)

    assert create(local_mesh.kubeconfig, "cls-a", dry_run="All").metadata.name == "cilium-admission-probe"
    d = tmp_path_factory.mktemp("unprivileged-mesh")
    localmesh.up(["cls-x"], d, allow_privileged=False)
    try:
        with pytest.raises(ApiException) as refused:
            create(d / "kubeconfig", "cls-x")
    finally:
        localmesh.down(d)
    assert refused.value.status == 422
    assert ("spec.template.spec.initContainers[3].securityContext.privileged: Forbidden: disallowed by cluster "
            "policy") in json.loads(refused.value.body)["message"]


def test_3_nothing_changed_previews_no_change_and_up_upgrades_nothing(ws: Workspace, local_mesh: LocalMesh) -> None:
    """Right after `pulumi up`: `preview --expect-no-changes` passes, and another `up` keeps every
    release revision, although the chart mints new certificates on every render (as the 1.18
    chart's `helm` TLS method does): the provider's Check does not render the chart."""
    before = _revisions(local_mesh, CLUSTERS[:3])
    ws.pulumi("preview", "--expect-no-changes")
    # What a reviewer reads: the stack, unchanged, and nothing else (the program's read of its own last
    # outputs is no resource, so the outputs this up wrote show as no change of one).
    diff = ws.pulumi("preview", "--diff").stdout.splitlines()
    assert diff[1:3] == ["  pulumi:pulumi:Stack: (same)", f"    [urn={_stack_urn(ws)}]"], diff
    assert diff[3:] == ["Resources:", "    20 unchanged"], diff
    ws.pulumi("up", "--yes", "--expect-no-changes")
    assert _revisions(local_mesh, CLUSTERS[:3]) == before
    # The same revisions: the certificates' record is kept as it was (not stamped again).
    assert {n: ws.outputs()["clusters"][n]["certificates"] for n in CLUSTERS[:3]} == _RECORDS


def _stack_urn(ws: Workspace) -> str:
    return f"urn:pulumi:{ws.stack}::tke-cilium-mesh::pulumi:pulumi:Stack::tke-cilium-mesh-{ws.stack}"


def _ops(preview: dict[str, Any]) -> dict[str, str]:
    """URN -> operation of every step that is not the stack itself, a read or a no-op."""
    return {urn: s["op"] for urn, s in _steps(preview).items() if s["op"] not in ("same", "read")}


def _peers(mesh: LocalMesh, name: str) -> dict[str, str]:
    """cluster -> the endpoint its KVStoreMesh Secret lists for each peer."""
    data = secret_data(mesh.kubeconfig, name, "cilium-kvstoremesh")
    return {peer: yaml.safe_load(text)["endpoints"][0] for peer, text in data.items()}


def test_4_a_fourth_cluster_creates_its_own_resources_and_updates_only_the_peer_lists(
        ws: Workspace, local_mesh: LocalMesh, mesh_ca: Ca) -> None:
    ws.set_config(stack_config(local_mesh, mesh_ca, CLUSTERS))
    ops = _ops(ws.pulumi("preview", "--json").json())
    assert {urn for urn, op in ops.items() if op == "create"} == {u for u in ops if "cls-d" in u}
    assert ops, "the preview changes nothing"
    updated = {urn.rsplit("::", 1)[1] for urn, op in ops.items() if op == "update"}
    assert updated == {f"{n}-{kind}" for n in CLUSTERS[:3] for kind in ("peers", "cilium")}, ops
    assert not {op for op in ops.values()} - {"create", "update"}, ops
    hubble_before = {n: secret_data(local_mesh.kubeconfig, n, "hubble-server-certs")["tls.crt"] for n in CLUSTERS[:3]}
    ws.pulumi("up", "--yes", "--skip-preview")
    for name in CLUSTERS[:3]:
        assert _peers(local_mesh, name)["cls-d"] == "https://127.0.4.100:2379", name
        # The upgrade re-issued the clustermesh-apiserver certificates (a new render), while the
        # chart's lookup kept Hubble's: the record dates each group from the render it comes from.
        record = ws.outputs()["clusters"][name]["certificates"]
        assert record["revision"] == 2 and record["firstRenderedAt"] == _RECORDS[name]["firstRenderedAt"]
        assert record["renderedAt"] > _RECORDS[name]["renderedAt"]
        assert record["leaves"]["hubble"] == _RECORDS[name]["leaves"]["hubble"]
        assert record["leaves"]["clustermeshApiserver"]["expiresAt"] > \
            _RECORDS[name]["leaves"]["clustermeshApiserver"]["expiresAt"]
        assert secret_data(local_mesh.kubeconfig, name, "hubble-server-certs")["tls.crt"] == hubble_before[name]
        _certificates_match_the_live_ones(local_mesh, name, record)
        _RECORDS[name] = record
    assert set(_peers(local_mesh, "cls-d")) == set(CLUSTERS[:3])


def test_5_changing_a_running_clusters_id_is_refused_naming_the_key(ws: Workspace, local_mesh: LocalMesh,
                                                                      mesh_ca: Ca) -> None:
    before = _revisions(local_mesh, CLUSTERS)
    config = stack_config(local_mesh, mesh_ca, CLUSTERS)
    config["mesh:clusters"][1]["id"] = 9
    ws.set_config(config)
    try:
        result = ws.pulumi("up", "--yes", "--skip-preview", check=False)
        assert result.returncode != 0
        # Once, naming the cluster (the guard fails inside an Output: still one error line).
        refused = [line for line in diagnostics(result.output) if "was deployed with id 2, now 9" in line]
        assert len(refused) == 1, result.output[-3000:]
        assert refused[0].startswith("error: mesh:clusters[1].id (cls-b): cluster cls-b was deployed"), refused
        assert _revisions(local_mesh, CLUSTERS) == before
    finally:
        ws.set_config(stack_config(local_mesh, mesh_ca, CLUSTERS))


def test_6_removing_a_cluster_uninstalls_its_release_and_drops_it_from_the_others(
        ws: Workspace, local_mesh: LocalMesh, mesh_ca: Ca) -> None:
    ws.set_config(stack_config(local_mesh, mesh_ca, CLUSTERS[:3]))
    ws.pulumi("up", "--yes", "--skip-preview")
    assert helm_releases(local_mesh.kubeconfig, "cls-d") == []
    for name in CLUSTERS[:3]:
        assert set(_peers(local_mesh, name)) == set(CLUSTERS[:3]) - {name}, name


def test_7_the_exported_state_holds_no_ca_key_and_no_credential_in_plain_text(ws: Workspace, local_mesh: LocalMesh,
                                                                                mesh_ca: Ca) -> None:
    text = json.dumps(ws.export())
    # Slices from the middle: every RSA key's encodings begin with the same bytes.
    key_body = "".join(mesh_ca.key_pem.strip().splitlines()[1:-1])
    needles = {
        "the CA key (PEM)": key_body[300:364],
        "the CA key (base64 of the PEM)": base64.b64encode(mesh_ca.key_pem.encode()).decode()[400:464],
    }
    kubeconfig = yaml.safe_load(local_mesh.kubeconfig.read_text())
    for user in kubeconfig["users"]:
        needles["a kubeconfig client key"] = user["user"]["client-key-data"][400:464]
        pem = base64.b64decode(user["user"]["client-key-data"]).decode()
        needles["a kubeconfig client key (PEM)"] = "".join(pem.strip().splitlines()[1:-1])[300:364]
    for what, needle in needles.items():
        assert needle not in text, f"{what} is in the exported state in plain text"
    assert '"ciphertext"' in text, "the state holds no secret at all: the CA key should be one"


def test_8_an_unreachable_cluster_fails_alone_and_the_mesh_converges_after(ws: Workspace, local_mesh: LocalMesh,
                                                                           mesh_ca: Ca) -> None:
    """One API server down while the mesh changes: `pulumi up --continue-on-error` fails for that
    cluster only and names it; the others are updated (without the flag the engine stops starting
    new steps at the first failure, so which others are updated depends on timing). Back up,
    `pulumi up` converges; refresh then preview: no drift."""
    from tools import localmesh

    before = _revisions(local_mesh, CLUSTERS[:3])
    localmesh.stop_member(local_mesh.dir, "cls-b")
    try:
        config = stack_config(local_mesh, mesh_ca, CLUSTERS[:3])
        config["mesh:hubbleRelay"] = False
        ws.set_config(config)
        result = ws.pulumi("up", "--yes", "--skip-preview", "--continue-on-error", check=False)
        assert result.returncode != 0
        errors = [line for line in result.output.splitlines() if "error" in line.lower()]
        assert any("cls-b" in line for line in errors), result.output[-3000:]
        assert not any(n in line for line in errors for n in ("cls-a-cilium", "cls-c-cilium")), errors
        after = _revisions(local_mesh, ("cls-a", "cls-c"))
        assert all(after[n] == before[n] + 1 for n in after), (before, after)
    finally:
        localmesh.start_member(local_mesh.dir, "cls-b")
    ws.pulumi("up", "--yes", "--skip-preview")
    assert deployed(local_mesh.kubeconfig, "cls-b")["config"]["hubble"]["relay"]["enabled"] is False
    ws.pulumi("refresh", "--yes")
    ws.pulumi("preview", "--expect-no-changes")


def test_9_the_policy_pack_runs_for_real_and_refuses_a_stack_that_breaks_a_policy(
        ws: Workspace, local_mesh: LocalMesh, tmp_path: Path) -> None:
    pack = ws.policy_pack()
    ws.pulumi("preview", "--policy-pack", str(pack), "--expect-no-changes")
    bad = Workspace(tmp_path / "without-mesh-ca", program=ROOT / "tests" / "e2e" / "programs" / "without-mesh-ca")
    bad.init_stack({"e2e:kubeconfig": str(local_mesh.kubeconfig), "e2e:context": "cls-a",
                    "e2e:chart": str(CHART)})
    result = bad.pulumi("preview", "--policy-pack", str(pack), check=False)
    assert result.returncode != 0
    assert re.search(r"\[mandatory\]\s+cilium-ca-key-secret\s+\(kubernetes:helm\.sh/v3:Release: cls-x-cilium\)",
                     result.output), result.output[-3000:]


def _renamed(mesh: LocalMesh, ca: Ca, allow: bool) -> dict[str, Any]:
    """cls-b renamed mesh-b, on its context cls-b (the same cluster), allowed by mesh:allowIdentityChange or not."""
    config = stack_config(mesh, ca, CLUSTERS[:3])
    config["mesh:clusters"][1].update(name="mesh-b", context="cls-b")
    if allow:
        config["mesh:allowIdentityChange"] = ["mesh-b"]
    return config


def test_10_an_allowed_rename_upgrades_the_same_release_in_place(ws: Workspace, local_mesh: LocalMesh, mesh_ca: Ca,
                                                                  tmp_path: Path) -> None:
    """cls-b renamed mesh-b with mesh:allowIdentityChange: the real preview updates the renamed cluster's resources
    (aliases) and creates, deletes or replaces nothing; `pulumi up` upgrades Helm release `cilium` in that API
    server to the next revision, history kept (no uninstall, no second install), cilium-config carries the new
    name and the peers list it; the offline plan diff says renamed, not uninstalled; the update says what to
    restart. With the allowance removed afterwards, nothing changes (the provider keeps its identifier)."""
    before_plan, _ = _plan(ws, tmp_path / "before")
    history = [r["version"] for r in helm_releases(local_mesh.kubeconfig, "cls-b")]
    revision = deployed(local_mesh.kubeconfig, "cls-b")["version"]
    ws.set_config(_renamed(local_mesh, mesh_ca, allow=True))
    after_plan, _ = _plan(ws, tmp_path / "after")
    diff = subprocess.run([str(ROOT / "venv" / "bin" / "python"), "-m", "tools.plan", "diff", str(before_plan),
                           str(after_plan)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert diff.returncode == 1, diff.stderr
    assert "- renamed: cls-b -> mesh-b (id 2, ap-guangzhou, mesh address 127.0.2.100:2379): the same cluster" in diff.stdout
    assert "UNINSTALLS" not in diff.stdout and "- create:" not in diff.stdout and "- delete:" not in diff.stdout

    steps = _steps(ws.pulumi("preview", "--json").json())
    ops = {urn: s["op"] for urn, s in steps.items() if s["op"] not in ("same", "read")}
    assert not {op for op in ops.values()} - {"update"}, ops
    releases = {urn: s for urn, s in steps.items() if s["newState"]["type"] == RELEASE}
    [(urn, step)] = [(u, s) for u, s in releases.items() if "mesh-b" in u]
    assert urn.endswith("::mesh-b-cilium") and step["op"] == "update", (urn, step["op"])
    assert not any("::cls-b" in u for u in steps), "a step for the old URN: a delete"

    up = ws.pulumi("up", "--yes", "--skip-preview")
    assert ("after this update run `kubectl --context cls-b -n kube-system rollout restart ds/cilium "
            "deploy/cilium-operator deploy/clustermesh-apiserver`") in up.output
    assert "Hubble's server certificate names the cluster" in " ".join(up.output.split())
    stored = helm_releases(local_mesh.kubeconfig, "cls-b")
    assert [r["version"] for r in stored] == history + [revision + 1], "the release's history is kept: no uninstall"
    release = deployed(local_mesh.kubeconfig, "cls-b")
    assert (release["name"], release["namespace"], release["version"]) == ("cilium", "kube-system", revision + 1)
    assert release["info"]["description"] == "Upgrade complete"
    assert release["config"]["cluster"] == {"name": "mesh-b", "id": 2}
    assert config_map(local_mesh.kubeconfig, "cls-b", "cilium-config")["cluster-name"] == "mesh-b"
    for name in ("cls-a", "cls-c"):
        assert set(_peers(local_mesh, name)) == {"mesh-b", *({"cls-a", "cls-c"} - {name})}, name

    ws.set_config(_renamed(local_mesh, mesh_ca, allow=False))
    ws.pulumi("preview", "--expect-no-changes")


def test_11_destroy_removes_every_release_from_every_api_server(ws: Workspace, local_mesh: LocalMesh) -> None:
    """`pulumi destroy`. With a CA the stack brings, no CA resource is protected; the refusal of a
    destroy while the generated CA is protected needs the tls provider, which cannot be built here."""
    ws.pulumi("destroy", "--yes", "--skip-preview")
    for name in CLUSTERS:
        assert helm_releases(local_mesh.kubeconfig, name) == [], name
        api_secrets = [s.metadata.name for s in
                       core_api(local_mesh.kubeconfig, name).list_namespaced_secret("kube-system").items]
        assert not {"cilium-ca", "cilium-kvstoremesh", "cilium-test-values"} & set(api_secrets), (name, api_secrets)
    assert ws.pulumi("stack", "output", "--json").json() == {}
