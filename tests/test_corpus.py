"""A corpus of invalid stack files: each is refused by the offline plan and by the program.

Every ``tests/corpus/Pulumi.<case>.yaml`` starts with comment lines:

    # expect: mesh:clusters[1].id     one line per config key its error lines must name
    # why: <one line>                 the mistake it stands for

``# expect: <file>`` stands for the stack file itself: the plan refuses the file before
the program runs (not YAML, not a stack file), so only the plan is checked.

For each file:

- the offline plan (``tools.plan.main``, in-process) exits 2, prints only ``error: <key>: ...``
  lines, naming exactly the expected keys, and creates no output directory;
- the program (``__main__.py`` on the mock engine, as ``pulumi up`` would run it with the
  file's config) raises ``InvalidConfig`` with exactly those keys and registers no resource.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.program import InvalidConfig
from meshcore.config.model import decode_config
from tests.conftest import ROOT
from tests.mockcloud import ComputingMocks, kubeconfig_for
from tests.naming import entry_names, key_of, unnamed
from tools.mockengine import Recording, run_program
from tools.plan import main as plan_main

CORPUS = Path(__file__).resolve().parent / "corpus"
FILE_KEY = "<file>"
PROJECT = "tke-cilium-mesh"


@dataclass(frozen=True)
class Case:
    path: Path
    expect: tuple[str, ...]
    why: str

    @property
    def name(self) -> str:
        return self.path.name[len("Pulumi."):-len(".yaml")]

    @property
    def plan_only(self) -> bool:
        """Refused as a file by the plan: the program never sees its config."""
        return FILE_KEY in self.expect


def read_case(path: Path) -> Case:
    expect: list[str] = []
    why = ""
    # Header lines are ASCII; the rest may be anything (one case is deliberately not UTF-8).
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        if not line.startswith("#"):
            break
        tag, _, value = line[1:].strip().partition(":")
        value = value.strip()
        if tag == "expect":
            expect.append(value)
        elif tag == "why":
            why = value
        else:
            raise ValueError(f"{path.name}: unknown header tag '# {tag}:'")
    return Case(path=path, expect=tuple(expect), why=why)


CASES = [read_case(p) for p in sorted(CORPUS.glob("Pulumi.*.yaml"))]


def _plan_params() -> list:
    return [pytest.param(c, id=c.name) for c in CASES]


def _program_params() -> list:
    return [pytest.param(c, id=c.name) for c in CASES if not c.plan_only]


def test_corpus_is_complete() -> None:
    """Enough files, each with its header; the single-problem and multi-problem shares; the absurd size."""
    assert len(CASES) >= 40
    for c in CASES:
        assert c.expect and c.why, f"{c.path.name}: needs '# expect:' and '# why:' lines"
        assert len(set(c.expect)) == len(c.expect), c.path.name
        assert all(k == FILE_KEY or k.startswith("mesh:") for k in c.expect), c.path.name
    single = [c for c in CASES if len(c.expect) == 1]
    multi = [c for c in CASES if len(c.expect) >= 3]
    assert len(single) >= 45 and len(multi) >= 5, (len(single), len(multi))
    # The absurd size is a real file (flow style, one cluster a line), not generated here.
    huge = yaml.safe_load((CORPUS / "Pulumi.clusters-600.yaml").read_text(encoding="utf-8"))
    assert len(huge["config"]["mesh:clusters"]) == 600
    assert huge["config"]["mesh:maxConnectedClusters"] == 511


def _named_keys(stderr: str, stack_file: str) -> set[str]:
    """The key of each ``error: <key>: <message>`` line (a file-level error names the file; a key in a named
    cluster entry is followed by the cluster's name)."""
    out = set()
    for line in stderr.splitlines():
        rest = line.removeprefix("error: ")
        if rest.startswith(stack_file + ": "):
            out.add(stack_file)
        else:
            out.add(key_of(rest))
    return out


def _entry_names(case: Case) -> dict[int, str]:
    doc = yaml.safe_load(case.path.read_text(encoding="utf-8")) if not case.plan_only else None
    config = doc.get("config") if isinstance(doc, dict) else None
    return entry_names(config.get("mesh:clusters") if isinstance(config, dict) else None)


@pytest.mark.parametrize("case", _plan_params())
def test_plan_refuses(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 2, only ``error: <key>: `` lines naming exactly the expected keys, no traceback, no DIR."""
    out = tmp_path / "plan"
    code = plan_main([str(case.path), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert captured.out == ""
    assert "Traceback" not in captured.err
    lines = captured.err.splitlines()
    assert lines, "no error line"
    assert all(line.startswith("error: ") for line in lines), lines
    expected = {str(case.path) if k == FILE_KEY else k for k in case.expect}
    for key in expected:
        assert any(key_of(line.removeprefix("error: ")) == key for line in lines), \
            f"no line names {key}:\n{captured.err}"
    assert _named_keys(captured.err, str(case.path)) == expected, captured.err
    names = _entry_names(case)
    for line in lines:
        assert unnamed(line.removeprefix("error: "), names) == [], f"a cluster entry without its name: {line}"
    assert not out.exists()


def _secure_to_placeholder(value: Any) -> tuple[Any, bool]:
    """A ``{secure: ...}`` leaf as the (secret) string the program would see; found or not."""
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return "[secret]", True
        pairs = {k: _secure_to_placeholder(v) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(f for _, f in pairs.values())
    if isinstance(value, list):
        items = [_secure_to_placeholder(v) for v in value]
        return [v for v, _ in items], any(f for _, f in items)
    return value, False


def program_config(case: Case, kubeconfig: Path) -> tuple[dict[str, str], list[str]]:
    """The file's config as Pulumi hands it to the program (strings; structures as JSON;
    YAML timestamps as the strings Pulumi keeps them as), with a kubeconfig of its contexts."""
    doc = yaml.safe_load(case.path.read_text(encoding="utf-8")) or {}
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in (doc.get("config") or {}).items():
        value, secret = _secure_to_placeholder(value)
        config[key] = value if isinstance(value, str) else json.dumps(value, default=str)
        if secret:
            secret_keys.append(key)
    clusters = decode_config(config).get("clusters")
    entries = clusters if isinstance(clusters, list) else []
    contexts = [e.get("context", e.get("name")) for e in entries if isinstance(e, dict)]
    kubeconfig.write_text(kubeconfig_for(sorted({c for c in contexts if isinstance(c, str) and c})))
    config["mesh:kubeconfig"] = str(kubeconfig)
    return config, secret_keys


@pytest.mark.parametrize("case", _program_params())
def test_program_registers_nothing(case: Case, tmp_path: Path) -> None:
    """The real program refuses the config with the same keys before registering anything."""
    config, secret_keys = program_config(case, tmp_path / "kubeconfig")
    recording = Recording(project=PROJECT, stack=case.name)
    with pytest.raises(InvalidConfig) as exc:
        run_program(
            str(ROOT / "__main__.py"), project=PROJECT, stack=case.name, config=config,
            secret_keys=secret_keys, mocks=ComputingMocks(), preview=False, recording=recording,
        )
    assert recording.resources == {}
    assert {i.key for i in exc.value.issues} == set(case.expect), [i.line() for i in exc.value.issues]
    names = _entry_names(case)
    for i in exc.value.issues:
        assert unnamed(i.line(), names) == [], f"a cluster entry without its name: {i.line()}"
    assert all(i.message and "\n" not in i.message for i in exc.value.issues)


def test_corpus_files_are_named_for_the_plan() -> None:
    """The plan takes Pulumi.<stack>.yaml only; nothing else may hide in the corpus."""
    others = [p.name for p in CORPUS.iterdir() if not (p.name.startswith("Pulumi.") and p.name.endswith(".yaml"))]
    assert others == []
