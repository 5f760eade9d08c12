"""The CI workflow files: valid YAML, pinned actions, and the commands they run exist."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def _steps(doc: dict) -> list[dict]:
    return [s for job in doc["jobs"].values() for s in job.get("steps", [])]


def test_workflows_exist_and_pin_every_action() -> None:
    """Every `uses:` names an exact release (vX.Y.Z), never a moving tag or branch."""
    assert {w.name for w in WORKFLOWS} == {"mesh-plan.yml", "mesh-deploy.yml"}
    for w in WORKFLOWS:
        doc = yaml.safe_load(w.read_text())
        uses = [s["uses"] for s in _steps(doc) if "uses" in s]
        assert uses, w.name
        for u in uses:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+\.\d+\.\d+", u), f"{w.name}: {u} is not pinned"


def test_pull_request_workflow_posts_the_offline_diff() -> None:
    """PRs: plan + diff without credentials, comment, then preview gated on secrets."""
    doc = yaml.safe_load((ROOT / ".github/workflows/mesh-plan.yml").read_text())
    triggers = doc.get("on", doc.get(True))  # PyYAML reads the key `on` as the boolean true
    assert "pull_request" in triggers
    runs = " ".join(s.get("run", "") for s in _steps(doc))
    assert "make setup" in runs and ".github/scripts/plan-diff.sh" in runs
    script = ROOT / ".github/scripts/plan-diff.sh"
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert "-m tools.plan diff" in text and "--format markdown" in text
    preview = doc["jobs"]["preview"]
    assert any(s.get("with", {}).get("command") == "preview" for s in preview["steps"])
    assert all("if" in s for s in preview["steps"]), "preview steps must be skipped without secrets"


def test_deploy_workflow_gates_each_stack_by_environment() -> None:
    """main: pulumi up per stack, one at a time, each in its GitHub environment (prod gets reviewers)."""
    doc = yaml.safe_load((ROOT / ".github/workflows/mesh-deploy.yml").read_text())
    job = doc["jobs"]["up"]
    assert job["environment"] == "${{ matrix.stack }}" and job["strategy"]["max-parallel"] == 1
    assert job["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    assert any(s.get("with", {}).get("command") == "up" for s in job["steps"])
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^setup:", makefile, re.M)


# --------------------------------------------------------------------------- plan-diff.sh, run for real

PROGRAM_FILES = ("__main__.py", "Pulumi.yaml", "requirements.txt", "tools", "meshcore", "components",
                 ".github/scripts")
DEV_STACK = yaml.safe_load((ROOT / "stacks/Pulumi.dev.yaml").read_text())
THIRD = {"name": "cls-dev6e7f8", "id": 3, "region": "ap-guangzhou", "podCidrs": ["172.22.0.0/16"],
         "apiserver": {"subnetId": "subnet-dev6e7f8", "vip": "10.10.3.100"},
         "values": {"k8sServiceHost": "169.254.128.12"}}


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


def _stack(repo: Path, name: str, mutate=None) -> None:
    doc = copy.deepcopy(DEV_STACK)
    if mutate:
        mutate(doc["config"])
    (repo / "stacks" / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


def _duplicate_id(c: dict) -> None:
    c["mesh:clusters"][1]["id"] = 1


def _commit(repo: Path, message: str) -> str:
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture()
def scratch_repo(tmp_path: Path) -> Path:
    """A fresh checkout of the program (no build/, no venv/): base commit with stacks dev, old (deleted on the
    branch), fixed (invalid at base, valid on the branch); `main` is the base."""
    repo = tmp_path / "repo"
    repo.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for rel in PROGRAM_FILES:
        src = ROOT / rel
        if src.is_dir():
            shutil.copytree(src, repo / rel, ignore=ignore)
        else:
            shutil.copy2(src, repo / rel)
    (repo / "stacks").mkdir()
    _stack(repo, "dev")
    _stack(repo, "old")
    _stack(repo, "fixed", _duplicate_id)
    _git(repo, "init", "-q", "-b", "main")
    _commit(repo, "base")
    return repo


def run_plan_diff(repo: Path, base: str) -> tuple[int, str, str]:
    """The script as the workflow runs it, with this suite's Python (not a venv/ of the checkout)."""
    proc = subprocess.run([str(repo / ".github/scripts/plan-diff.sh"), "plan-diff.md", base], cwd=repo,
                          env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True, timeout=300)
    comment = (repo / "plan-diff.md").read_text() if (repo / "plan-diff.md").exists() else ""
    return proc.returncode, comment, proc.stderr


def sections(comment: str) -> dict[str, str]:
    """Stack name -> its section of the comment."""
    parts = comment.split("\n## Stack `")[1:]
    return {p.split("`", 1)[0]: p.split("\n", 1)[1].lstrip("\n") for p in parts}


def headings(markdown: str) -> list[str]:
    """The heading lines of a Markdown text, outside fenced blocks."""
    out, fenced = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#+ ", line):
            out.append(line)
    return out


def test_plan_diff_reports_changed_new_deleted_and_base_failing_stacks(scratch_repo: Path) -> None:
    """A branch that changes dev, deletes old, fixes fixed and adds new: exit 0 and one section per stack, saying
    for each what it is (a diff, a deleted stack, a base that fails to plan with its error, a new stack)."""
    repo = scratch_repo
    base = _git(repo, "rev-parse", "HEAD").strip()
    _git(repo, "checkout", "-q", "-b", "feature")
    _stack(repo, "dev", lambda c: c["mesh:clusters"].append(THIRD))
    (repo / "stacks/Pulumi.old.yaml").unlink()
    _stack(repo, "fixed")
    _stack(repo, "new")
    _commit(repo, "feature")
    assert not (repo / "build").exists() and not (repo / "venv").exists()

    code, comment, stderr = run_plan_diff(repo, base)
    assert code == 0, stderr + comment
    assert comment.startswith(f"<!-- tke-cilium-mesh:plan-diff -->\n# Offline plan diff against `{base[:7]}")
    assert "Failing" not in comment
    s = sections(comment)
    assert list(s) == ["dev", "fixed", "new", "old"]
    assert "\n### Mesh plan diff\n" in f"\n{s['dev']}" and "- added: cls-dev6e7f8 (id 3" in s["dev"]
    # Each stack's diff or summary sits under its `## Stack` heading, one level down, its own order kept.
    assert headings(comment)[0].startswith("# Offline plan diff against")
    assert [h for h in headings(comment) if h.startswith(("# ", "## "))][1:] == [f"## Stack `{n}`" for n in s]
    assert headings(s["dev"])[:2] == ["### Mesh plan diff", "#### Clusters"], headings(s["dev"])
    assert headings(s["new"])[:2] == ["### Offline plan: tke-cilium-mesh / new", "#### Resources by type"]
    assert "**The plan of the base revision fails**" in s["fixed"]
    assert "error: mesh:clusters[1].id (cls-dev3c4d5): 1 is already used by mesh:clusters[0] (cls-dev0a1b2)" in s["fixed"]
    assert "\n### Offline plan: tke-cilium-mesh / fixed\n" in s["fixed"] and "New stack" not in s["fixed"]
    assert s["new"].startswith("New stack (no `stacks/Pulumi.new.yaml` at the base revision)")
    assert s["old"].startswith("**Deleted on this branch:** `stacks/Pulumi.old.yaml` exists at the base revision")
    assert "pulumi destroy --stack old" in s["old"]
    assert json.loads((repo / "build/head/dev/graph.json").read_text())["stack"] == "dev"
    assert _git(repo, "worktree", "list").count("\n") == 1, "the base worktree is removed"


def test_plan_diff_fails_the_job_when_a_plan_of_the_branch_fails(scratch_repo: Path) -> None:
    """A branch that breaks dev: the comment is written, names the failing stack and shows the plan's error
    lines; the script exits 1. The other stacks are still diffed."""
    repo = scratch_repo
    base = _git(repo, "rev-parse", "HEAD").strip()
    _git(repo, "checkout", "-q", "-b", "broken")
    _stack(repo, "dev", _duplicate_id)
    _stack(repo, "fixed")
    _commit(repo, "broken")

    code, comment, stderr = run_plan_diff(repo, base)
    assert code == 1, comment
    assert "the plan or diff of this branch fails for: dev" in stderr
    assert "\n**Failing on this branch: `dev`** (details below).\n" in comment
    s = sections(comment)
    assert s["dev"].startswith("**The plan of this branch fails**")
    block = s["dev"].split("```\n")[1]
    assert block.startswith("error: mesh:clusters[1].id (cls-dev3c4d5): 1 is already used by mesh:clusters[0] (cls-dev0a1b2)")
    assert s["old"].startswith("No changes")
    assert s["fixed"].startswith("**The plan of the base revision fails**")


def test_plan_diff_without_a_python_says_what_to_do(scratch_repo: Path) -> None:
    """No venv/ in the checkout and no PYTHON: exit 2 and the fix, no comment with empty blocks."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHON"}
    proc = subprocess.run([str(scratch_repo / ".github/scripts/plan-diff.sh"), "plan-diff.md", "HEAD"],
                          cwd=scratch_repo, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "run `make setup`" in proc.stderr and "PYTHON" in proc.stderr
    assert not (scratch_repo / "plan-diff.md").exists()


def test_plan_comment_is_posted_when_the_plan_fails() -> None:
    """The plan-diff step fails the job when a plan fails; the artifact upload and the comment still run."""
    doc = yaml.safe_load((ROOT / ".github/workflows/mesh-plan.yml").read_text())
    steps = doc["jobs"]["offline-plan"]["steps"]
    at = next(i for i, s in enumerate(steps) if ".github/scripts/plan-diff.sh" in s.get("run", ""))
    after = steps[at + 1:]
    assert [s.get("uses", "").split("@")[0] for s in after] == ["actions/upload-artifact", "actions/github-script"]
    for s in after:
        assert re.search(r"always\(\)|!\s*cancelled\(\)", str(s.get("if", ""))), s


def _action_list(value: object) -> list[str]:
    """A list input of pulumi/actions, read as the action reads it (``parseArray``: lines, then commas)."""
    return [p.strip() for line in str(value or "").splitlines() for p in line.split(",") if p.strip()]


@pytest.mark.parametrize("workflow, job, command", [("mesh-plan.yml", "preview", "preview"),
                                                    ("mesh-deploy.yml", "up", "up")])
def test_preview_and_deploy_run_the_policy_pack(workflow: str, job: str, command: str) -> None:
    """`pulumi preview` (PRs) and `pulumi up` (main) run with `--policy-pack policy`: the action's policyPacks
    input names the pack's directory (relative to its work-dir), and an earlier step of the job creates the
    virtualenv PulumiPolicy.yaml names, from the pack's requirements."""
    doc = yaml.safe_load((ROOT / ".github/workflows" / workflow).read_text())
    steps = doc["jobs"][job]["steps"]
    [(at, step)] = [(i, s) for i, s in enumerate(steps)
                    if s.get("uses", "").startswith("pulumi/actions@") and s.get("with", {}).get("command") == command]
    major = int(step["uses"].split("@v")[1].split(".")[0])
    assert major >= 3, "pulumi/actions takes policyPacks since v3"
    work_dir = ROOT / step["with"].get("work-dir", ".")
    packs = [(work_dir / p).resolve() for p in _action_list(step["with"].get("policyPacks"))]
    assert packs == [ROOT / "policy"], step
    assert (ROOT / "policy" / "PulumiPolicy.yaml").is_file()
    options = yaml.safe_load((ROOT / "policy/PulumiPolicy.yaml").read_text())["runtime"]["options"]
    earlier = "\n".join(s.get("run", "") for s in steps[:at])
    assert f"python -m venv policy/{options['virtualenv']}\n" in earlier
    assert f"policy/{options['virtualenv']}/bin/pip install" in earlier and "-r policy/requirements.txt" in earlier


# --------------------------------------------------------------------------- the kubeconfig step, run for real

def _kubeconfig_step(workflow: str, job: str) -> dict:
    doc = yaml.safe_load((ROOT / ".github/workflows" / workflow).read_text())
    [step] = [s for s in doc["jobs"][job]["steps"] if s.get("name") == "Kubeconfig"]
    return step


def run_step(step: dict, env: dict[str, str], tmp_path: Path) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
    """A `run:` step as the runner runs it (`bash -e`, GitHub's default shell on Linux), with $RUNNER_TEMP
    and $GITHUB_ENV; returns the process and the variables the step exported to the later steps."""
    assert "${{" not in step["run"], "expressions in the step would need the runner to expand them"
    runner_temp, github_env = tmp_path / "runner-temp", tmp_path / "github-env"
    runner_temp.mkdir()
    github_env.write_text("")
    script = tmp_path / "step.sh"
    script.write_text(step["run"])
    proc = subprocess.run(["bash", "-e", str(script)], env={"PATH": os.environ["PATH"], **env,
                                                            "RUNNER_TEMP": str(runner_temp),
                                                            "GITHUB_ENV": str(github_env)},
                          capture_output=True, text=True, timeout=60)
    exported: dict[str, str] = {}
    lines = iter(github_env.read_text().splitlines())
    for line in lines:  # NAME=value, or NAME<<DELIMITER ... DELIMITER
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            exported[name] = "\n".join(iter(lambda: next(lines), delim))
        elif line:
            name, value = line.split("=", 1)
            exported[name] = value
    return proc, exported


def run_program_in(env: dict[str, str], stack_file: Path) -> subprocess.CompletedProcess:
    """The program (`__main__.py`, on the mock engine) on a stack file, in a process with exactly `env`: what the
    language host runs after the workflow's steps. Prints each cluster provider's kubeconfig token; on a failure,
    what the program logged (on stderr, as the engine shows it), then the exception."""
    driver = (
        "import json, sys\n"
        "from tools.plan import read_stack_file\n"
        "from tools.mockengine import Recording, run_program\n"
        "from tests.mockcloud import ComputingMocks\n"
        "stack, config, secret_keys = read_stack_file(sys.argv[1])\n"
        "rec = Recording(project='tke-cilium-mesh', stack=stack)\n"
        "try:\n"
        "    run_program('__main__.py', project='tke-cilium-mesh', stack=stack, config=config,\n"
        "                secret_keys=secret_keys, mocks=ComputingMocks(), preview=True, recording=rec)\n"
        "except Exception:\n"
        "    print('\\n'.join(f'{level}: {message}' for level, message in rec.logs), file=sys.stderr)\n"
        "    raise\n"
        "print(json.dumps({r.name: r.inputs['kubeconfig']['value'] for r in rec.resources.values()\n"
        "                  if r.type == 'pulumi:providers:kubernetes' and isinstance(r.inputs['kubeconfig'], dict)}))\n"
    )
    return subprocess.run([sys.executable, "-c", driver, str(stack_file)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def _stack_contexts(stack_file: Path) -> list[str]:
    clusters = yaml.safe_load(stack_file.read_text())["config"]["mesh:clusters"]
    return [c.get("context", c["name"]) for c in clusters if c.get("kubeconfigFrom", "context") == "context"
            and "create" not in c]


@pytest.mark.parametrize("workflow, job, stack", [("mesh-deploy.yml", "up", "dev"), ("mesh-deploy.yml", "up", "prod"),
                                                  ("mesh-plan.yml", "preview", "dev")])
def test_workflow_kubeconfig_reaches_the_program_over_the_stack_path(workflow: str, job: str, stack: str,
                                                                    tmp_path: Path) -> None:
    """The committed stack names a laptop path (mesh:kubeconfig: ~/.kube/mesh-<stack>.yaml); the workflow's
    Kubeconfig step, run as written, writes the MESH_KUBECONFIG secret to a private file and exports the
    override: the program then reads that file, not the stack's path (which on this runner holds a
    kubeconfig of other clusters), and each provider gets its cluster from the secret. The offline plan,
    which the deploy job runs after this step, still reads its own generated kubeconfig."""
    from tests.mockcloud import kubeconfig_for

    stack_file = ROOT / "stacks" / f"Pulumi.{stack}.yaml"
    config = yaml.safe_load(stack_file.read_text())["config"]
    assert config["mesh:kubeconfig"].startswith("~/"), "the example stacks name a path on the user's machine"
    contexts = _stack_contexts(stack_file)
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    laptop = Path(config["mesh:kubeconfig"].replace("~", str(home), 1))
    laptop.write_text(kubeconfig_for(["someone-elses-cluster"]))
    secret = kubeconfig_for(contexts)

    proc, exported = run_step(_kubeconfig_step(workflow, job), {"MESH_KUBECONFIG": secret}, tmp_path)
    assert proc.returncode == 0, proc.stderr
    written = Path(exported["MESH_KUBECONFIG_FILE"])
    assert yaml.safe_load(written.read_text()) == yaml.safe_load(secret)
    assert written.stat().st_mode & 0o077 == 0, "the kubeconfig file is readable by its owner only"
    assert "KUBECONFIG" not in exported, "one override, not a $KUBECONFIG that mesh:kubeconfig would beat"

    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "MESH_KUBECONFIG"))},
           "HOME": str(home), **exported}
    run = run_program_in(env, stack_file)
    assert run.returncode == 0, run.stderr[-3000:]
    kubeconfigs = json.loads(run.stdout.strip().splitlines()[-1])
    clusters = yaml.safe_load(stack_file.read_text())["config"]["mesh:clusters"]
    expected = {f"{c['name']}-k8s": c.get("context", c["name"]) for c in clusters}
    assert sorted(kubeconfigs) == sorted(expected)
    for provider, context in expected.items():
        assert f"TEST-TOKEN-{context}" in kubeconfigs[provider], provider
        assert "someone-elses-cluster" not in kubeconfigs[provider]

    if workflow == "mesh-deploy.yml":
        plan = subprocess.run([sys.executable, "-m", "tools.plan", str(stack_file), "--out", str(tmp_path / "plan")],
                              cwd=ROOT, env={**env, "MESH_KUBECONFIG_FILE": str(tmp_path / "absent")},
                              capture_output=True, text=True, timeout=300)
        assert plan.returncode == 0, plan.stderr


def test_workflow_without_the_kubeconfig_secret_names_the_stack_path_and_the_override(tmp_path: Path) -> None:
    """The deploy job of an environment without MESH_KUBECONFIG: the step exports nothing and says so; the
    program then fails on the stack's own path, saying it came from mesh:kubeconfig and how to override it."""
    proc, exported = run_step(_kubeconfig_step("mesh-deploy.yml", "up"), {"MESH_KUBECONFIG": ""}, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert exported == {} and "No MESH_KUBECONFIG secret" in proc.stdout
    home = tmp_path / "home"
    home.mkdir()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "MESH_KUBECONFIG"))},
           "HOME": str(home)}
    run = run_program_in(env, ROOT / "stacks" / "Pulumi.dev.yaml")
    assert run.returncode != 0
    [line] = [ln for ln in run.stderr.splitlines() if "cannot read kubeconfig" in ln]
    assert line.startswith("error: mesh:kubeconfig: ")
    assert f"{home}/.kube/mesh-dev.yaml (from the stack's mesh:kubeconfig)" in line
    assert "set $MESH_KUBECONFIG_FILE=PATH for this run" in line


FAKE_HELM = """#!/usr/bin/env python3
# Stands in for `helm pull CHART --repo URL --version V -d DIR`: records the call, writes DIR/cilium-V.tgz
# (the e2e stand-in chart at that version, with the real 1.18.3 values.yaml and schema).
import io, json, os, sys, tarfile
args = sys.argv[1:]
with open(os.environ["FAKE_HELM_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
version, directory = args[args.index("--version") + 1], args[args.index("-d") + 1]
with tarfile.open(os.path.join(directory, f"cilium-{version}.tgz"), "w:gz") as tar:
    for name, path in ((f"Chart.yaml", None), ("values.yaml", os.environ["REAL_VALUES"]),
                       ("values.schema.json", os.environ["REAL_SCHEMA"])):
        data = (f"apiVersion: v2\\nname: cilium\\nversion: {version}\\n".encode() if path is None
                else open(path, "rb").read())
        info = tarfile.TarInfo(f"cilium/{name}")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
"""


def test_ci_pulls_the_charts_the_value_path_check_reads(tmp_path: Path) -> None:
    """The workflows' chart step (run as the runner runs it, with a stand-in helm) fills the cache the
    check reads; the plan then refuses a typo in values instead of only warning that it could not check."""
    from tests.conftest import CHART_DIR

    bin_dir, cache, log = tmp_path / "bin", tmp_path / "cache", tmp_path / "helm.log"
    bin_dir.mkdir()
    (bin_dir / "helm").write_text(FAKE_HELM)
    (bin_dir / "helm").chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "XDG_CACHE_HOME": str(cache),
           "FAKE_HELM_LOG": str(log), "REAL_VALUES": str(CHART_DIR / "values.yaml"),
           "REAL_SCHEMA": str(CHART_DIR / "values.schema.json"), "HOME": str(tmp_path)}
    for workflow, job in (("mesh-plan.yml", "offline-plan"), ("mesh-deploy.yml", "up")):
        doc = yaml.safe_load((ROOT / ".github/workflows" / workflow).read_text())
        [step] = [s for s in doc["jobs"][job]["steps"] if s.get("name", "").startswith("Chart cop")]
        proc = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr
    # One pull for the one version every example stack names, the second workflow finding it there.
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls == [["pull", "cilium", "--repo", "https://helm.cilium.io/", "--version", "1.18.3", "-d",
                      str(cache / "tke-cilium-mesh" / "charts")]]
    stack = yaml.safe_load((ROOT / "stacks/Pulumi.dev.yaml").read_text())
    stack["config"]["mesh:clusters"][0]["values"]["kubeProxyReplacment"] = "true"
    typo = tmp_path / "Pulumi.typo.yaml"
    typo.write_text(yaml.safe_dump(stack))
    plan = subprocess.run([sys.executable, "-m", "tools.plan", str(typo), "--out", str(tmp_path / "plan")], cwd=ROOT,
                          env={**os.environ, **env, "PATH": os.environ["PATH"]}, capture_output=True, text=True)
    assert plan.returncode == 2, plan.stderr
    assert ("error: mesh:clusters[0].values.kubeProxyReplacment (cls-dev0a1b2): unknown Helm value for the cilium 1.18.3 chart; "
            "did you mean 'kubeProxyReplacement'?") in plan.stderr


FAKE_PYTHON = """#!/bin/sh
# `python -m venv DIR` makes DIR/bin/python (this script); every call is logged.
echo "python $*" >> "$LOG"
if [ "$1 $2" = "-m venv" ]; then mkdir -p "$3/bin" && cp "$0" "$3/bin/python"; fi
"""


def test_make_setup_says_what_it_does_before_pip_installs(tmp_path: Path) -> None:
    """`make setup` (first of every target) on a fresh machine: a line saying what it sets up and how long it
    takes comes before pip runs, pip is not silenced (it names each package), and without a terminal it
    draws no progress bars."""
    for name in ("Makefile", "requirements.txt", "requirements-dev.txt"):
        shutil.copy2(ROOT / name, tmp_path / name)
    fake = tmp_path / "fake-python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    log = tmp_path / "calls.log"
    proc = subprocess.run(["make", "--no-print-directory", "setup", f"PYTHON={fake}"], cwd=tmp_path,
                          env={**os.environ, "LOG": str(log)}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    said = [i for i, line in enumerate(lines) if line.startswith("setting up venv/: installing the pinned")]
    pip = [i for i, line in enumerate(lines) if " -m pip install " in line]
    assert said and pip and said[0] < pip[0], proc.stdout
    assert "about a minute on a fresh machine" in lines[said[0]]
    install = [c for c in log.read_text().splitlines() if " -m pip install " in c]
    assert len(install) == 1 and "--quiet" not in install[0] and "--progress-bar off" in install[0], install
    assert lines[-1] == "venv/ is set up" and (tmp_path / "venv/.installed").exists()
