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


@pytest.mark.parametrize("value", [
    {"clusters": [{"name": "cls-a", "address": "10.0.0.1", "port": 2379}]}, "plain ascii", "del \x7f here",
    "caf\u00e9", "line\u2028sep", "nel \x85", ["\ud800", "\ufffe"], "\U0001f600", 1.5, None,
])
def test_yaml_json_of_ascii_text_skips_the_escape_walk_and_gives_the_same(value: object) -> None:
    """The common case (ASCII JSON text without DEL) is returned as json.dumps wrote it: what the escape walk
    (``_NOT_YAML_TEXT``) would give, and what YAML reads back as the value."""
    import json

    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    walked = yamlio._NOT_YAML_TEXT.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    assert yamlio.yaml_json(value, sort_keys=True) == walked
    if not any("\ud800" <= c <= "\udfff" for c in text):
        assert yaml.safe_load(walked) == value
