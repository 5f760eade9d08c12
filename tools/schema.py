"""What is generated from the model: the JSON Schema of stack files (``meshcore.config``), the
README's list of program-owned Helm values (``meshcore.owned``) and its chart version table (``meshcore.versions``);
and from the charts, the key index of each chart version in ``meshcore.versions.INDEXED``
(``meshcore/keyindex/cilium-<version>.json``, read from ``../shared/cilium-<version>/values.yaml`` and
``values.schema.json``, or ``$MESH_SHARED_DIR/cilium-<version>/``).

    python -m tools.schema            # (re)writes schema/stack.schema.json, README's two tables and the key indexes
    python -m tools.schema --check    # exit 1 if any is not what the model and the charts generate

Editors that speak the YAML language server (VS Code's YAML extension, JetBrains, neovim's
yamlls) complete and check ``stacks/Pulumi.<stack>.yaml`` against it, given this first line:

    # yaml-language-server: $schema=../schema/stack.schema.json

The schema describes the shape of each ``mesh:*`` key: types, choices, patterns, unknown keys
(typos) refused, descriptions and examples. What it cannot say (the checks across keys and
clusters: unique ids, disjoint CIDRs, the topology, program-owned Helm values) the program and
``make plan`` check; they are the authority, the schema is the editor's early warning.

A key index holds the chart's value paths and the kind of each (``meshcore.chartkeys.index_json``), none of its
values or comments; the Helm value-path check reads it when no copy of the chart is at hand (``meshcore.chart``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from meshcore import chart as charts
from meshcore import chartkeys, owned, versions
from meshcore.config import NS, SECRET_KEYS, TOP_LEVEL_KEYS, Settings
from tools import ROOT, SHARED

SCHEMA_FILE = ROOT / "schema" / "stack.schema.json"
README = ROOT / "README.md"
OWNED_BEGIN, OWNED_END = "<!-- owned-keys:begin -->\n", "<!-- owned-keys:end -->\n"
VERSIONS_BEGIN, VERSIONS_END = "<!-- versions:begin -->\n", "<!-- versions:end -->"
MODELINE = "# yaml-language-server: $schema=../schema/stack.schema.json"
"""The first line of a stack file in stacks/ that points editors at the schema."""

_SECRET = {
    "type": "object",
    "description": "The PKCS#1 RSA private key of the CA in mesh:ca.certificate, as a Pulumi secret: "
                   "pulumi config set --secret mesh:caPrivateKey < ca.key",
    "properties": {"secure": {"type": "string"}},
    "required": ["secure"],
    "additionalProperties": False,
}


def stack_schema() -> dict[str, Any]:
    """The schema of a ``Pulumi.<stack>.yaml`` of this project: ``config`` with the ``mesh:*`` keys."""
    model = Settings.model_json_schema(by_alias=True)
    mesh = {f"{NS}:{k}": v for k, v in model["properties"].items()}
    for k in SECRET_KEYS:
        mesh[f"{NS}:{k}"] = _SECRET
    assert list(mesh) == [f"{NS}:{k}" for k in TOP_LEVEL_KEYS], "every key of the program is in the schema"
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Pulumi stack file of tke-cilium-mesh",
        "description": "stacks/Pulumi.<stack>.yaml: the mesh:* keys of this program (generated from "
                       "meshcore/config.py by python -m tools.schema); keys of other namespaces are left to "
                       "their programs and providers.",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "description": "The stack's configuration: mesh:* keys, and those of other namespaces "
                               "(e.g. tencentcloud:region).",
                "properties": mesh,
                "required": [f"{NS}:clusters"],
                # Other namespaces are free; an unknown mesh:* key (a typo) is refused.
                "patternProperties": {f"^(?!{NS}:)": True},
                "additionalProperties": False,
            },
        },
        "required": ["config"],
        "$defs": model["$defs"],
    }


def schema_text() -> str:
    return json.dumps(stack_schema(), indent=2, ensure_ascii=False) + "\n"


def _replace(text: str, begin: str, end: str, table: str) -> str:
    head, found, rest = text.partition(begin)
    _, ended, tail = rest.partition(end)
    if not (found and ended):
        raise SystemExit(f"error: README.md has no {begin.strip()} ... {end.strip()} section")
    return head + begin + table + end + tail


def readme_text(current: str) -> str:
    """``current`` (README.md) with the owned-keys table generated from ``meshcore.owned`` and the chart version
    table from ``meshcore.versions``."""
    text = _replace(current, OWNED_BEGIN, OWNED_END, owned.markdown_table())
    return _replace(text, VERSIONS_BEGIN, VERSIONS_END, versions.markdown_table())


def key_index_text(version: str, shared: Path = SHARED) -> str:
    """The key index of the cilium ``version`` chart, from its values.yaml and values.schema.json in ``shared``."""
    d = shared / f"cilium-{version}"
    values, schema = d / "values.yaml", d / "values.schema.json"
    if not values.is_file():
        raise SystemExit(f"error: {values} is missing, so the key index of cilium {version} cannot be generated: "
                         f"helm pull cilium/cilium --version {version} --untar --untardir x && mv x/cilium {d} "
                         "(or set MESH_SHARED_DIR)")
    tree = chartkeys.build(f"cilium {version}", values.read_text(encoding="utf-8"),
                           schema.read_text(encoding="utf-8") if schema.is_file() else None)
    return chartkeys.index_json(tree, f"python -m tools.schema, from the keys of the cilium {version} chart's "
                                      "values.yaml and values.schema.json (none of its values)")


def key_index_files(shared: Path = SHARED) -> dict[Path, str]:
    """Each key index that ships with the program -> its text (``meshcore.versions.INDEXED``)."""
    return {charts.index_file(v): key_index_text(v, shared) for v in versions.INDEXED}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.schema", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the schema or the README table is out of date")
    args = parser.parse_args(argv)
    readme = README.read_text(encoding="utf-8")
    wanted = {SCHEMA_FILE: schema_text(), README: readme_text(readme), **key_index_files()}
    stale = [p for p, text in wanted.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    extra = sorted(p for p in charts.INDEX_DIR.glob("*.json") if p not in wanted)
    if args.check:
        for p in stale:
            print(f"error: {p.relative_to(ROOT)} is out of date: run python -m tools.schema", file=sys.stderr)
        for p in extra:
            print(f"error: {p.relative_to(ROOT)} is no key index of meshcore.versions.INDEXED: run python -m "
                  "tools.schema", file=sys.stderr)
        return 1 if stale or extra else 0
    SCHEMA_FILE.parent.mkdir(exist_ok=True)
    charts.INDEX_DIR.mkdir(exist_ok=True)
    for p in stale:
        p.write_text(wanted[p], encoding="utf-8")
        print(f"wrote {p.relative_to(ROOT)}")
    for p in extra:
        p.unlink()
        print(f"removed {p.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
