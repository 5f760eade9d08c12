"""No module of meshcore/, components/ or tools/ is over 600 lines (#20.6): a longer one is split along its seams."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ROOT

LIMIT = 600
FOLDERS = ("meshcore", "components", "tools")


def long_modules(root: Path, limit: int = LIMIT) -> dict[str, int]:
    """Each ``.py`` under ``FOLDERS`` of ``root`` with more than ``limit`` lines -> its line count."""
    out = {}
    for folder in FOLDERS:
        for f in sorted((root / folder).rglob("*.py")):
            n = len(f.read_text(encoding="utf-8").splitlines())
            if n > limit:
                out[f.relative_to(root).as_posix()] = n
    return out


def test_no_module_is_over_600_lines() -> None:
    assert long_modules(ROOT) == {}


def test_a_long_module_is_found(tmp_path: Path) -> None:
    (tmp_path / "meshcore" / "chart").mkdir(parents=True)
    (tmp_path / "tools").mkdir()
    (tmp_path / "meshcore" / "chart" / "long.py").write_text("x = 1\n" * 601)
    (tmp_path / "tools" / "short.py").write_text("x = 1\n" * 600)
    assert long_modules(tmp_path) == {"meshcore/chart/long.py": 601}
