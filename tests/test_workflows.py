"""The CI workflow files: valid YAML, pinned actions, and the commands they run exist."""

from __future__ import annotations

import os
import re

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
