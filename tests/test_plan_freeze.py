"""The offline plans of the example stacks, at every supported chart version, are frozen: every artefact's
SHA-256 is recorded in ``tests/plan-digests.json``.

A refactor must leave each byte of every plan as it was. A change that is meant to change plans regenerates the
record on purpose (``venv/bin/python -m tests.test_plan_freeze``) and shows it in review beside the code.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, committed_stacks
from tests.test_upgrade import _at_version
from tools import render
from tools.plan import plan

RECORD = ROOT / "tests" / "plan-digests.json"
VERSIONS = ["1.18.3", "1.18.12", "1.19.6", "1.20.0"]


def digests(stack: Path, version: str, out_dir: Path) -> dict[str, str]:
    files = render.artefacts(plan(str(_at_version(stack, version, out_dir))))
    return {name: hashlib.sha256(text.encode("utf-8")).hexdigest() for name, text in sorted(files.items())}


def _cases() -> list[tuple[str, str]]:
    return [(p.name, v) for p in committed_stacks() for v in VERSIONS]


@pytest.mark.parametrize(("stack", "version"), _cases())
def test_plan_is_byte_identical_to_the_record(stack: str, version: str, tmp_path: Path) -> None:
    record = json.loads(RECORD.read_text(encoding="utf-8"))
    key = f"{stack}@{version}"
    assert key in record, f"{key} has no recorded plan: regenerate with venv/bin/python -m tests.test_plan_freeze"
    assert digests(ROOT / "stacks" / stack, version, tmp_path) == record[key]


def test_the_record_covers_exactly_the_example_stacks() -> None:
    record = json.loads(RECORD.read_text(encoding="utf-8"))
    assert sorted(record) == sorted(f"{s}@{v}" for s, v in _cases())


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        out = {f"{s}@{v}": digests(ROOT / "stacks" / s, v, Path(tmp)) for s, v in _cases()}
    RECORD.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {RECORD.relative_to(ROOT)}: {len(out)} plans", file=sys.stderr)
