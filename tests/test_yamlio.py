"""YAML reading: libyaml's speed, PyYAML's documents and error messages."""

from __future__ import annotations

import pytest
import yaml

from meshcore import yamlio


def test_reads_what_pyyaml_reads() -> None:
    text = "a: [1, 2]\nb: {c: yes, d: null, e: '010'}\nf: 1.5\ng: 2026-11-25\n"
    assert yamlio.safe_load(text) == yaml.safe_load(text)


def test_errors_carry_pyyaml_source_excerpt() -> None:
    """A broken document is reported by PyYAML's parser: line, column and the line itself."""
    with pytest.raises(yaml.YAMLError) as err:
        yamlio.safe_load("config:\n  mesh:clusters: [a,\n  b: 2\n")
    assert "line 2, column 18" in str(err.value) and "mesh:clusters: [a," in str(err.value)


def test_unsafe_tags_are_refused() -> None:
    with pytest.raises(yaml.YAMLError):
        yamlio.safe_load("!!python/object/apply:os.system ['true']\n")
