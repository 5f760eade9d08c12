"""The offline plan: CLI contract, artefacts, determinism, secrets, and restart safety."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshcore.chart.values import PEER_DEPENDENT_PATHS
from tests.conftest import ROOT, cluster_entry, mesh_config, write_stack
from tests.mockcloud import CA_KEY_PEM, ComputingMocks
from tools import render
from tools.plan import plan


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools.plan", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def read_tree(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_dev_stack_plan_writes_the_artefacts(tmp_path: Path, chart_schema: Any) -> None:
    """The README's first command: exit 0, graph.json, one values file per cluster, summary.md."""
    out = tmp_path / "plan"
    proc = cli("stacks/Pulumi.dev.yaml", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    files = read_tree(out)
    assert set(files) == {"graph.json", "summary.md", "values/cls-dev0a1b2.yaml", "values/cls-dev3c4d5.yaml"}
    g = json.loads(files["graph.json"])
    assert g["project"] == "tke-cilium-mesh" and g["stack"] == "dev"
    assert {"urn", "type", "name", "parent", "provider", "dependencies", "protect", "inputs"} == set(g["resources"][0])
    urns = {r["urn"] for r in g["resources"]}
    for r in g["resources"]:
        assert set(r["dependencies"]) <= urns, r["urn"]
        assert r["urn"].startswith("urn:pulumi:dev::tke-cilium-mesh::")
    for name in ("cls-dev0a1b2", "cls-dev3c4d5"):
        values = yaml.safe_load(files[f"values/{name}.yaml"])
        assert values["cluster"]["name"] == name
        assert values["tls"]["ca"] == {"cert": "[unknown]", "key": "[secret]"}
        assert chart_schema(values) == []
    summary = files["summary.md"].decode()
    assert "| cls-dev0a1b2 | 1 | ap-guangzhou | cls-dev0a1b2 | 10.10.1.100:2379 | cls-dev3c4d5 |" in summary


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_committed_stacks_values_match_the_chart_schema(stack: str, chart_schema: Any) -> None:
    """Every values document the committed stacks generate validates against values.schema.json."""
    files = render.artefacts(plan(str(ROOT / f"stacks/Pulumi.{stack}.yaml")))
    docs = {k: yaml.safe_load(v) for k, v in files.items() if k.startswith("values/")}
    assert len(docs) == {"dev": 2, "prod": 3}[stack]
    for name, values in docs.items():
        assert chart_schema(values) == [], name


def test_plan_is_byte_identical(tmp_path: Path) -> None:
    """The same stack file gives the same bytes, run after run (separate processes)."""
    a, b = tmp_path / "a", tmp_path / "b"
    assert cli("stacks/Pulumi.prod.yaml", "--out", str(a)).returncode == 0
    assert cli("stacks/Pulumi.prod.yaml", "--out", str(b)).returncode == 0
    assert read_tree(a) == read_tree(b)
    assert len(read_tree(a)) == 5


def test_invalid_config_exits_2_and_leaves_dir_untouched(tmp_path: Path) -> None:
    """Exit 2, one `error: <key>: ...` line per problem on stderr, no traceback, DIR as it was."""
    raw = mesh_config(2)
    raw["clusters"][1]["id"] = 1
    raw["clusters"][1]["podCidrs"] = ["172.16.1.0/24"]
    raw["bogus"] = 1
    stack = write_stack(tmp_path, raw)
    out = tmp_path / "out"
    assert cli("stacks/Pulumi.dev.yaml", "--out", str(out)).returncode == 0  # a previous plan
    previous = read_tree(out)
    proc = cli(str(stack), "--out", str(out))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        "error: mesh:bogus: unknown key; the keys of this program are: mesh:cilium, mesh:maxConnectedClusters, "
        "mesh:masquerade, mesh:hubbleRelay, mesh:topology, mesh:kubeconfig, mesh:clusters, mesh:ca, "
        "mesh:allowIdentityChange, mesh:policyDefaultLocalCluster, mesh:caPrivateKey",
        "error: mesh:clusters[1].id (cls-00000002): 1 is already used by mesh:clusters[0] (cls-00000001); every "
        "cluster needs its own Cilium cluster.id (the lowest free one is 2)",
        "error: mesh:clusters[1].podCidrs[0] (cls-00000002): 172.16.1.0/24 overlaps 172.16.1.0/24, "
        "mesh:clusters[0].podCidrs[0] (cls-00000001); pod CIDRs must be disjoint across the mesh or cross-cluster "
        "routing and identities break",
    ]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert read_tree(out) == previous
    missing = tmp_path / "never"
    assert cli(str(stack), "--out", str(missing)).returncode == 2 and not missing.exists()


@pytest.mark.parametrize("content, fragment", [
    ("config: [1, 2\n", "not valid YAML"),
    ("config: 3\n", "expected a mapping"),
    ("config:\n  clusters: []\n", "has no namespace"),
])
def test_malformed_stack_files_exit_2(tmp_path: Path, content: str, fragment: str) -> None:
    """A stack file that is not a stack file is refused like a bad config, without a traceback."""
    stack = tmp_path / "Pulumi.bad.yaml"
    stack.write_text(content)
    proc = cli(str(stack), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and fragment in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_secure_values_stay_secret(tmp_path: Path) -> None:
    """A `secure:` stack value reaches the program as a secret and the plan shows only [secret]."""
    raw = mesh_config(1)
    raw["clusters"].append(cluster_entry(2, create_clb=True, region="ap-shanghai"))
    stack = write_stack(tmp_path, raw, extra={
        "tencentcloud:secretId": {"secure": "v1:AAAAIDONLYCIPHERTEXT"},
        "tencentcloud:secretKey": {"secure": "v1:AAAAKEYCIPHERTEXT"},
    })
    files = render.artefacts(plan(str(stack)))
    g = json.loads(files["graph.json"])
    provider = next(r for r in g["resources"] if r["type"] == "pulumi:providers:tencentcloud")
    assert provider["inputs"]["secretKey"] == "[secret]" and provider["inputs"]["secretId"] == "[secret]"
    assert not any("CIPHERTEXT" in t for t in files.values())


PEM = re.compile(r"-----BEGIN [A-Z ]+-----")
KUBECONFIG_FIELDS = re.compile(r"client-key-data|client-certificate-data|certificate-authority-data|\btoken\b|"
                               r"current-context|apiVersion: v1\s+kind: Config")


def test_no_secret_reaches_plan_files_or_outputs(tmp_path: Path) -> None:
    """With a cloud that computes the CA, its key appears nowhere in the artefacts; [secret] stands in."""
    stack = write_stack(tmp_path, mesh_config(3))
    rec = plan(str(stack), mocks=ComputingMocks())
    files = render.artefacts(rec)
    assert CA_KEY_PEM in json.dumps([r.inputs for r in rec.resources.values()]), "the key did reach the releases"
    for path, content in files.items():
        assert CA_KEY_PEM not in content, path
        assert "TEST-TOKEN" not in content and "offline-plan.invalid" not in content, path
        assert not PEM.search(content), path
        assert not KUBECONFIG_FIELDS.search(content), path
    for name in ("cls-00000001", "cls-00000002", "cls-00000003"):
        values = yaml.safe_load(files[f"values/{name}.yaml"])
        assert values["tls"]["ca"]["key"] == "[secret]"
        assert values["tls"]["ca"]["cert"] not in ("[secret]", "[unknown]")
    g = json.loads(files["graph.json"])
    assert CA_KEY_PEM not in json.dumps(g["outputs"])
    providers = [r for r in g["resources"] if r["type"] == "pulumi:providers:kubernetes"]
    assert providers and all(p["inputs"]["kubeconfig"] == "[secret]" for p in providers)


def _leaves(node: Any, prefix: tuple = ()) -> dict[tuple, Any]:
    if isinstance(node, dict) and node:
        out: dict[tuple, Any] = {}
        for k, v in node.items():
            out.update(_leaves(v, (*prefix, k)))
        return out
    return {prefix: node}


@pytest.mark.parametrize("masquerade", ["none", "ipMasqAgent"])
@pytest.mark.parametrize("create_clb", [False, True])
def test_adding_a_cluster_changes_only_peer_lists_and_masquerade_cidrs(
    tmp_path: Path, masquerade: str, create_clb: bool
) -> None:
    """N -> N+1 clusters: existing clusters' values differ only under the peer-dependent paths."""
    def stack(n: int) -> dict:
        raw = mesh_config(0, masquerade={"mode": masquerade}, cilium={"values": {"operator": {"replicas": 1}}})
        raw["clusters"] = [cluster_entry(i, create_clb=create_clb and i % 2 == 0) for i in range(1, n + 1)]
        return raw

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    before = render.artefacts(plan(str(write_stack(tmp_path / "a", stack(3))), mocks=ComputingMocks()))
    after = render.artefacts(plan(str(write_stack(tmp_path / "b", stack(4))), mocks=ComputingMocks()))
    assert "values/cls-00000004.yaml" in after and "values/cls-00000004.yaml" not in before
    allowed = set(PEER_DEPENDENT_PATHS if masquerade == "ipMasqAgent" else PEER_DEPENDENT_PATHS[:1])
    for i in (1, 2, 3):
        old = _leaves(yaml.safe_load(before[f"values/cls-{i:08d}.yaml"]))
        new = _leaves(yaml.safe_load(after[f"values/cls-{i:08d}.yaml"]))
        changed = {p for p in old.keys() | new.keys() if old.get(p) != new.get(p)}
        assert changed == allowed, f"cls-{i:08d}: {changed}"
        peers = new[("clustermesh", "config", "clusters")]
        assert peers[:-1] == old[("clustermesh", "config", "clusters")], "the new peer is appended, others kept"
        assert peers[-1]["name"] == "cls-00000004"


def test_secure_value_in_mesh_config_is_refused(tmp_path: Path) -> None:
    """A secure: value inside mesh:* is refused (it would end up in plain Helm values), naming the key."""
    raw = mesh_config(2, cilium={"values": {"hubble": {"ui": {"password": {"secure": "v1:CIPHER"}}}}})
    proc = cli(str(write_stack(tmp_path, raw)), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: mesh:cilium: holds a secure value")


def test_out_replaces_only_a_previous_plan(tmp_path: Path) -> None:
    """--out: a new, empty or previous-plan directory is (re)written; a re-plan replaces the previous plan."""
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli("stacks/Pulumi.dev.yaml", "--out", str(empty)).returncode == 0
    assert set(read_tree(empty)) == {"graph.json", "summary.md", "values/cls-dev0a1b2.yaml", "values/cls-dev3c4d5.yaml"}
    proc = cli("stacks/Pulumi.prod.yaml", "--out", str(empty))  # over the previous (dev) plan
    assert proc.returncode == 0, proc.stderr
    assert len(read_tree(empty)) == 5 and json.loads((empty / "graph.json").read_text())["stack"] == "prod"
    nested = tmp_path / "new" / "plan"
    assert cli("stacks/Pulumi.dev.yaml", "--out", str(nested)).returncode == 0 and (nested / "graph.json").is_file()


def _checkout_copy(tmp_path: Path) -> Path:
    """A directory like the checkout, with the files --out must never delete."""
    work = tmp_path / "checkout"
    (work / ".git").mkdir(parents=True)
    (work / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (work / "stacks").mkdir()
    for name in ("Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        (work / "stacks" / name).write_bytes((ROOT / "stacks" / name).read_bytes())
    (work / "README.md").write_text("mine\n")
    return work


@pytest.mark.parametrize("out, named", [
    ("stacks", "holds files that are not a plan (Pulumi.dev.yaml, Pulumi.prod.yaml)"),
    (".", "is the current directory"),
    ("README.md", "is a file, not a directory"),
    ("README.md/plan", "README.md is a file, not a directory"),
    ("half-plan", "holds files that are not a plan (notes.txt)"),
])
def test_out_refuses_anything_else_and_deletes_nothing(tmp_path: Path, out: str, named: str) -> None:
    """--out naming the stack files, the checkout itself, a file, or a plan directory with a file of the user's
    in it: exit 2, one `error: --out ...` line saying what to do, and every file as it was."""
    work = _checkout_copy(tmp_path)
    plan_dir = work / "half-plan"
    assert cli("stacks/Pulumi.dev.yaml", "--out", str(plan_dir)).returncode == 0
    (plan_dir / "notes.txt").write_text("mine too\n")
    before = read_tree(work)
    proc = subprocess.run([sys.executable, "-m", "tools.plan", str(ROOT / "stacks/Pulumi.dev.yaml"), "--out", out],
                          cwd=work, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stdout
    [line] = proc.stderr.splitlines()
    assert line.startswith(f"error: --out {out}: ") and named in line, line
    assert "give a new or empty directory, or one a previous plan wrote" in line
    assert read_tree(work) == before
    assert sorted(p.name for p in work.iterdir()) == [".git", "README.md", "half-plan", "stacks"]


def test_help_names_the_diff_command() -> None:
    """`python -m tools.plan --help` shows both commands: the plan and the diff."""
    proc = cli("--help")
    assert proc.returncode == 0
    assert "python -m tools.plan diff OLD_DIR NEW_DIR" in proc.stdout
    assert "--allow-different-stacks" in proc.stdout


def test_empty_pod_cidrs_say_the_list_is_empty(tmp_path: Path) -> None:
    """`podCidrs: []` is reported as an empty list with what to put there, not as "got a list"."""
    proc = cli(str(ROOT / "tests/corpus/Pulumi.pod-cidrs-empty.yaml"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "error: mesh:clusters[1].podCidrs (cls-gz4t8w1x): is an empty list; list the CIDRs this cluster's pods get their IPs from, "
        "e.g. podCidrs: [172.16.0.0/16]"]


def test_the_cli_writes_on_two_cores_what_artefacts_renders(tmp_path: Path) -> None:
    """The CLI (a process with one thread, where the system can fork) renders summary.md and the values files in a
    child process while it writes graph.json (tools.plan.write_plan): the same bytes as render.artefacts."""
    out = tmp_path / "plan"
    proc = cli("stacks/Pulumi.prod.yaml", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    expected = render.artefacts(plan(str(ROOT / "stacks/Pulumi.prod.yaml")))
    assert read_tree(out) == {k: v.encode() for k, v in expected.items()}
    assert [p.name for p in tmp_path.iterdir()] == ["plan"]  # no staging directory left


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the child process of write_plan needs fork")
def test_a_failure_of_the_child_writer_is_raised_by_the_parent_and_leaves_nothing(tmp_path: Path) -> None:
    script = (
        "import errno, sys, threading\n"
        "from tools import plan, render\n"
        "assert threading.active_count() == 1\n"
        "def full(*args): raise OSError(errno.ENOSPC, 'No space left on device', 'values/x.yaml')\n"
        "render.values_yaml = full\n"
        "rec = plan.plan('stacks/Pulumi.dev.yaml')\n"
        "try:\n"
        "    plan.write_plan(rec, sys.argv[1])\n"
        "except OSError as err:\n"
        "    print(err.errno == errno.ENOSPC, err.strerror, err.filename)\n"
    )
    out = tmp_path / "plan"
    proc = subprocess.run([sys.executable, "-c", script, str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "True No space left on device values/x.yaml\n"
    assert list(tmp_path.iterdir()) == []
