"""What is generated from the model: the JSON Schema of stack files (``meshcore.config``), the
README's list of program-owned Helm values (``meshcore.owned``) and its chart version table (``meshcore.versions``).

    python -m tools.schema            # (re)writes schema/stack.schema.json and README's two tables
    python -m tools.schema --check    # exit 1 if either is not what the model generates

Editors that speak the YAML language server (VS Code's YAML extension, JetBrains, neovim's
yamlls) complete and check ``stacks/Pulumi.<stack>.yaml`` against it, given this first line:

    # yaml-language-server: $schema=../schema/stack.schema.json

The schema describes the shape of each ``mesh:*`` key: types, choices, patterns, unknown keys
(typos) refused, descriptions and examples. What it cannot say (the checks across keys and
clusters: unique ids, disjoint CIDRs, the topology, program-owned Helm values) the program and
``make plan`` check; they are the authority, the schema is the editor's early warning.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from meshcore import owned, versions
from meshcore.config import NS, SECRET_KEYS, TOP_LEVEL_KEYS, Settings

ROOT = Path(__file__).resolve().parent.parent
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.schema", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the schema or the README table is out of date")
    args = parser.parse_args(argv)
    readme = README.read_text(encoding="utf-8")
    wanted = {SCHEMA_FILE: schema_text(), README: readme_text(readme)}
    stale = [p for p, text in wanted.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    if args.check:
        for p in stale:
            print(f"error: {p.relative_to(ROOT)} is out of date: run python -m tools.schema", file=sys.stderr)
        return 1 if stale else 0
    SCHEMA_FILE.parent.mkdir(exist_ok=True)
    for p in stale:
        p.write_text(wanted[p], encoding="utf-8")
        print(f"wrote {p.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
