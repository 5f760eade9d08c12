"""README's "Try it on a local mesh", as written: its commands run one by one in a shell, in a copy of the
checkout (the program's files linked, its own empty ``stacks/``), with a directory of the test's for
``/tmp/mesh``, each timed (``pytest -s`` prints the times README states). The last one, the doctor, exits 0."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from pathlib import Path

from tests.e2e.harness import ROOT

SECTION = "### Try it on a local mesh"
CLEAN_UP = ("pulumi destroy --stack local --yes --skip-preview", "python -m tools.localmesh down --dir /tmp/mesh")


def readme_commands() -> list[str]:
    """The command lines of the first bash block under README's SECTION (comments dropped)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", text[text.index(SECTION):], re.S)
    assert block, f"README: no bash block under {SECTION!r}"
    return [line.split("  #")[0].strip() for line in block[1].splitlines() if line.strip()]


def _checkout_copy(base: Path) -> Path:
    work = base / "checkout"
    work.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in ("stacks", ".git", "build", ".pytest_cache"):
            (work / entry.name).symlink_to(entry)
    (work / "stacks").mkdir()
    return work


def _run(line: str, cwd: Path, mesh: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    python = shlex.quote(str(ROOT / "venv" / "bin" / "python"))
    command = re.sub(r"(^|&& )python ", rf"\1{python} ", line.replace("/tmp/mesh", str(mesh)))
    # A user's shell: nothing of the suite's Pulumi or kubeconfig settings.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "KUBECONFIG", "MESH_KUBECONFIG"))}
    start = time.perf_counter()
    proc = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    return proc, time.perf_counter() - start


def test_the_local_try_of_the_readme_ends_with_a_healthy_mesh(tmp_path: Path) -> None:
    commands = readme_commands()
    assert len(commands) <= 5, commands
    assert commands[0].startswith("python -m tools.localmesh up ") and commands[-1].startswith("python -m tools.doctor ")
    work, mesh = _checkout_copy(tmp_path), tmp_path / "mesh"
    times = []
    try:
        for line in commands:
            proc, seconds = _run(line, work, mesh)
            times.append((line, seconds))
            assert proc.returncode == 0, f"`{line}` exited {proc.returncode}:\n{(proc.stdout + proc.stderr)[-4000:]}"
        assert proc.stdout.rstrip().endswith("the fleet matches the stack (exit 0)"), proc.stdout
        assert "INFO" not in proc.stdout and "ERROR" not in proc.stdout, proc.stdout
        # Only ciphertext of the CA key in the stack file; the key itself is the mesh's own, 0600, in DIR.
        stack_file = (work / "stacks" / "Pulumi.local.yaml").read_text(encoding="utf-8")
        key = (mesh / "pki" / "mesh-ca.key").read_text(encoding="ascii")
        assert "mesh:caPrivateKey:\n    secure: v1:" in stack_file
        assert key.splitlines()[5] not in stack_file and "PRIVATE KEY" not in stack_file
        assert (mesh / "pki" / "mesh-ca.key").stat().st_mode & 0o777 == 0o600
        assert (mesh / "pulumi" / "passphrase").stat().st_mode & 0o777 == 0o600
    finally:
        if (mesh / "localmesh.json").exists():
            for line in (f". /tmp/mesh/env && {CLEAN_UP[0]}", CLEAN_UP[1]):
                _run(line, work, mesh)
        for line, seconds in times:
            print(f"{seconds:6.1f} s  {line}")
