"""The JSON Schema of stack files (schema/stack.schema.json), generated from the config model."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings

from meshcore.chart import versions
from meshcore.mesh import chartsource as charts
from tests.conftest import ROOT, committed_stacks, examples
from tests.test_corpus import CORPUS
from tests.test_fuzz import valid_stacks
from tools import schema

STACKS = committed_stacks()


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    doc = json.loads(schema.SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(doc)
    return jsonschema.Draft202012Validator(doc, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def errors(validator: jsonschema.Draft202012Validator, doc: Any) -> list[str]:
    """Each error as '<path>: <message>' (the path as the editor shows it)."""
    return ["/".join(map(str, e.absolute_path)) + ": " + e.message for e in validator.iter_errors(doc)]


def test_the_committed_schema_is_what_the_model_generates() -> None:
    """A model change without `python -m tools.schema` fails here (and `--check` says so)."""
    assert schema.SCHEMA_FILE.read_text(encoding="utf-8") == schema.schema_text()
    assert schema.main(["--check"]) == 0


@pytest.mark.parametrize("version", versions.INDEXED)
def test_the_committed_key_index_is_what_the_charts_generate(version: str) -> None:
    """The key index that ships for each version is what `python -m tools.schema` generates from the chart's files in
    ../shared: a new chart version, or a change of chartkeys, without regenerating it fails here."""
    committed = charts.index_file(version)
    assert committed.is_file(), f"{committed.name} is missing: run python -m tools.schema"
    assert committed.read_text(encoding="utf-8") == schema.key_index_text(version), (
        f"{committed.name} is out of date: run python -m tools.schema")


def test_only_the_indexed_versions_ship_a_key_index_and_check_says_so(tmp_path, monkeypatch, capsys) -> None:
    """meshcore/chart/keyindex/ holds one file per version of versions.INDEXED and nothing else; `--check` fails on a stale
    or a stray file, naming it."""
    assert sorted(p.name for p in charts.INDEX_DIR.iterdir()) == sorted(f"cilium-{v}.json" for v in versions.INDEXED)
    assert {versions.DEFAULT, *versions.LATEST.values()} <= set(versions.INDEXED)
    copy_dir = tmp_path / "meshcore" / "chart" / "keyindex"
    copy_dir.mkdir(parents=True)
    for p in charts.INDEX_DIR.iterdir():
        (copy_dir / p.name).write_text(p.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(charts, "INDEX_DIR", copy_dir)
    monkeypatch.setattr(schema, "ROOT", tmp_path)
    monkeypatch.setattr(schema, "README", tmp_path / "README.md")
    monkeypatch.setattr(schema, "SCHEMA_FILE", tmp_path / "schema" / "stack.schema.json")
    (tmp_path / "README.md").write_text((ROOT / "README.md").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "schema").mkdir()
    (tmp_path / "schema" / "stack.schema.json").write_text(schema.schema_text(), encoding="utf-8")
    assert schema.main(["--check"]) == 0
    stale = copy_dir / "cilium-1.19.6.json"
    stale.write_text(stale.read_text(encoding="utf-8").replace('"clustermesh"', '"clustermsh"', 1), encoding="utf-8")
    (copy_dir / "cilium-1.19.3.json").write_text("{}", encoding="utf-8")
    capsys.readouterr()
    assert schema.main(["--check"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: meshcore/chart/keyindex/cilium-1.19.6.json is out of date: run python -m tools.schema",
        "error: meshcore/chart/keyindex/cilium-1.19.3.json is no key index of meshcore.chart.versions.INDEXED: run python -m "
        "tools.schema"]
    assert schema.main([]) == 0 and schema.main(["--check"]) == 0
    assert sorted(p.name for p in copy_dir.iterdir()) == sorted(f"cilium-{v}.json" for v in versions.INDEXED)


@pytest.mark.parametrize("path", STACKS, ids=[p.name for p in STACKS])
def test_every_example_stack_is_valid_and_names_the_schema(path, validator) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == schema.MODELINE, f"{path.name}: the first line points editors at the schema"
    assert errors(validator, yaml.safe_load(text)) == []


def _dev() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "stacks/Pulumi.dev.yaml").read_text(encoding="utf-8"))


def _rename(where: Callable[[dict], dict], old: str, new: str) -> Callable[[dict], None]:
    def apply(doc: dict) -> None:
        node = where(doc)
        node[new] = node.pop(old)
    return apply


def _config(doc: dict) -> dict:
    return doc["config"]


def _cluster(doc: dict) -> dict:
    return doc["config"]["mesh:clusters"][0]


TYPOS = [
    ("mesh key", _rename(_config, "mesh:hubbleRelay", "mesh:hubbleRelais"), "config"),
    ("cluster key", _rename(_cluster, "podCidrs", "podCidr"), "config/mesh:clusters/0"),
    ("apiserver key", _rename(lambda d: _cluster(d)["apiserver"], "vip", "vpi"), "config/mesh:clusters/0"),
    ("cilium key", _rename(lambda d: d["config"]["mesh:cilium"], "version", "verison"), "config/mesh:cilium"),
    ("a string id", lambda d: _cluster(d).update(id="1"), "config/mesh:clusters/0"),
    ("a boolean id", lambda d: _cluster(d).update(id=True), "config/mesh:clusters/0"),
    ("a masquerade mode", lambda d: d["config"].update({"mesh:masquerade": {"mode": "snat"}}),
     "config/mesh:masquerade/mode"),
    ("a cluster name", lambda d: _cluster(d).update(name="Cls_1"), "config/mesh:clusters/0"),
    ("a created cluster's context", lambda d: _cluster(d).update(create={}), "config/mesh:clusters/0"),
]


@pytest.mark.parametrize("what, mutate, where", TYPOS, ids=[t[0] for t in TYPOS])
def test_typos_are_refused(what: str, mutate: Callable[[dict], None], where: str, validator) -> None:
    doc = _dev()
    assert errors(validator, doc) == []
    mutate(doc)
    found = errors(validator, doc)
    assert found and any(e.startswith(where) for e in found), found


SHAPE_CASES = ["cluster-typo-podcidr", "cilium-typo-version", "masquerade-typo-key", "apiserver-typo-port",
               "cluster-vpcid-misplaced", "create-with-kubeconfig-from", "id-a-string", "id-a-boolean",
               "name-too-long", "name-default", "port-70000", "preset-unknown", "masquerade-mode-unknown"]


@pytest.mark.parametrize("case", SHAPE_CASES)
def test_corpus_shape_errors_are_refused_by_the_schema(case: str, validator) -> None:
    """Invalid stacks of the corpus whose mistake is one of shape: the editor flags them too."""
    doc = yaml.safe_load((CORPUS / f"Pulumi.{case}.yaml").read_text(encoding="utf-8"))
    assert errors(validator, doc), case


@settings(max_examples=examples(100))
@given(valid_stacks())
def test_every_stack_the_program_accepts_the_schema_accepts(raw: dict[str, Any]) -> None:
    """The schema is never stricter than the program (generated valid stacks, every mode)."""
    doc = {"config": {f"mesh:{k}": copy.deepcopy(v) for k, v in raw.items()}}
    validator = jsonschema.Draft202012Validator(json.loads(schema.SCHEMA_FILE.read_text(encoding="utf-8")))
    assert errors(validator, doc) == []
