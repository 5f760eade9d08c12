"""Run this program on the real engine in a workspace of its own.

A ``Workspace`` is a Pulumi project directory (the program's files linked in, its own
``stacks/``), a ``PULUMI_HOME`` whose ``plugins`` are the toolchain's, and a file backend, so
nothing is written into the checkout or the user's ``~/.pulumi``. The end-to-end suite and the
real-engine benchmark (``tools/bench_engine.py``) drive ``pulumi`` through it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tools import ROOT, toolchain

CHART = ROOT / "tools" / "stand-in-chart" / "cilium"
"""The stand-in Cilium chart of the local mesh (``tools.localmesh``), the real-engine benchmark and the
end-to-end suite (the real chart cannot be shipped here)."""
PROGRAM_FILES = ("__main__.py", "components", "meshcore", "requirements.txt", "venv")
PASSPHRASE = "e2e-not-a-secret-passphrase"
COMMAND_TIMEOUT = 900


@dataclass
class Result:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self) -> Any:
        return json.loads(self.stdout)


class Workspace:
    """This program's project (``program=None``), or another program of the suite's, in ``base``."""

    def __init__(self, base: Path, stack: str = "e2e", program: Path | None = None,
                 passphrase: str = PASSPHRASE) -> None:
        """A new workspace in ``base``, or the one already there (its stacks and state kept)."""
        install = toolchain.require()
        self.bin = install / "bin"
        self.base = base
        self.project = base / "project"
        self.stack = stack
        self.project.mkdir(parents=True, exist_ok=True)

        def link(path: Path, target: Path) -> None:
            if path.is_symlink() and path.resolve() != target.resolve():
                path.unlink()  # a toolchain or checkout that moved since
            if not path.is_symlink():
                path.symlink_to(target, target_is_directory=target.is_dir())

        if program is None:
            for name in PROGRAM_FILES:
                link(self.project / name, ROOT / name)
            shutil.copyfile(ROOT / "Pulumi.yaml", self.project / "Pulumi.yaml")
        else:
            link(self.project / "__main__.py", program / "__main__.py")
            link(self.project / "venv", ROOT / "venv")
            (self.project / "Pulumi.yaml").write_text(yaml.safe_dump({
                "name": program.name, "stackConfigDir": "stacks",
                "runtime": {"name": "python", "options": {"toolchain": "pip", "virtualenv": "venv"}}}))
        (self.project / "stacks").mkdir(exist_ok=True)
        self.home = base / "home"
        self.home.mkdir(exist_ok=True)
        link(self.home / "plugins", install / "plugins")
        self.state = base / "state"
        self.state.mkdir(exist_ok=True)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "KUBECONFIG", "MESH_KUBECONFIG"))},
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "PULUMI_HOME": str(self.home),
            "PULUMI_CONFIG_PASSPHRASE": passphrase,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
        }
        self.pulumi("login", f"file://{self.state}")

    @property
    def stack_file(self) -> Path:
        return self.project / "stacks" / f"Pulumi.{self.stack}.yaml"

    def pulumi(self, *args: str, check: bool = True, stdin: str | None = None,
               timeout: float = COMMAND_TIMEOUT) -> Result:
        cmd = [str(self.bin / "pulumi"), "--non-interactive", *args]
        proc = subprocess.run(cmd, cwd=self.project, env=self.env, input=stdin, capture_output=True, text=True,
                              timeout=timeout)
        result = Result(cmd, proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise AssertionError(f"`pulumi {' '.join(args)}` exited {proc.returncode}:\n{result.output[-6000:]}")
        return result

    def init_stack(self, config: dict[str, Any], secrets: dict[str, str] | None = None) -> None:
        self.pulumi("stack", "init", self.stack)
        for k, v in (secrets or {}).items():
            # From stdin, not argv: a secret does not belong in the process list.
            self.pulumi("config", "set", "--secret", k, stdin=v)
        self.set_config(config)

    def set_config(self, config: dict[str, Any]) -> None:
        """Replace the stack file's plain config with ``config``; secrets set before stay."""
        doc = yaml.safe_load(self.stack_file.read_text(encoding="utf-8")) or {}
        kept = {k: v for k, v in (doc.get("config") or {}).items() if isinstance(v, dict) and set(v) == {"secure"}}
        doc["config"] = {**config, **kept}
        self.stack_file.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")

    def stacks(self) -> list[str]:
        """The names of the stacks in the workspace's backend."""
        return [s["name"] for s in self.pulumi("stack", "ls", "--json").json()]

    def policy_pack(self) -> Path:
        """The repository's policy pack, run from the program's virtualenv (it has the pack's pins)."""
        pack = self.base / "policy"
        if not pack.exists():
            pack.mkdir()
            for f in (ROOT / "policy").iterdir():
                if f.name not in ("venv", "__pycache__"):
                    (pack / f.name).symlink_to(f)
            (pack / "venv").symlink_to(ROOT / "venv")
        return pack

    def offline_plan(self, out: Path) -> dict[str, Any]:
        """The offline plan of the workspace's stack file (what `make plan` writes)."""
        proc = subprocess.run([str(ROOT / "venv" / "bin" / "python"), "-m", "tools.plan", str(self.stack_file),
                               "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        graph: dict[str, Any] = json.loads((out / "graph.json").read_text(encoding="utf-8"))
        return graph

    def export(self) -> dict[str, Any]:
        state: dict[str, Any] = self.pulumi("stack", "export").json()
        return state

    def outputs(self) -> dict[str, Any]:
        outputs: dict[str, Any] = self.pulumi("stack", "output", "--json").json()
        return outputs
