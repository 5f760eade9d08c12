"""Offline plan: run the program on a stack file without a cloud and write what it would do.

    python -m tools.plan stacks/Pulumi.dev.yaml --out build/plan-dev

Runs the very ``__main__.py`` that ``pulumi up`` runs, on Pulumi's mock engine, with the
stack file's ``config:`` (each ``secure:`` value becomes the string ``[secret]``, marked
secret), like a ``pulumi preview`` of a new stack: providers compute nothing, so values
only a cloud can know (a created CLB's VIP, the CA certificate) are ``[unknown]``.
The kubeconfig is the one thing of the local machine the program reads: the plan gives
it a generated kubeconfig whose contexts are the stack's contexts and which holds no
credentials (``mesh:kubeconfig`` is replaced; contexts of a real kubeconfig are checked by
``pulumi preview``/``up``).

Writes ``DIR/graph.json``, ``DIR/values/<cluster>.yaml`` and ``DIR/summary.md``; exit 0.
An invalid config: exit 2, ``error: <key>: <problem>`` lines on stderr, DIR untouched.

    python -m tools.plan diff OLD_DIR NEW_DIR [--format markdown]

compares two plans (see ``tools/diff.py``): exit 0 no change, 1 changes, 2 error.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

import pulumi
import yaml

from components.runtime import tune_gc
from meshcore import yamlio
from meshcore.config import NS, UNREADABLE_SECRET, decode_config
from meshcore.errors import ConfigIssue
from tools import render
from tools.engine import Recording, run_program

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "__main__.py"
SECRET_PLACEHOLDER = UNREADABLE_SECRET


GET_CLUSTERS = "tencentcloud:Kubernetes/getClusters:getClusters"


class PlanMocks(pulumi.runtime.Mocks):
    """Providers offline: they compute nothing, so ids and computed outputs are unknown, as
    in a preview of a new stack; the stack's StackReference to itself finds no outputs.

    The one lookup a preview runs for real, the TKE API's cluster lookup (adoption by
    cluster ID), is answered like the kubeconfig file: with a kubeconfig that holds no
    credentials and points nowhere, so the plan shows the adopted cluster's provider.
    """

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[Optional[str], dict]:
        if args.typ == "pulumi:pulumi:StackReference":
            # The stack's own last outputs: none, as for a stack never deployed.
            return args.name, {"name": args.name, "outputs": {}}
        return "", {}

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        if args.token == GET_CLUSTERS and isinstance(args.args.get("clusterId"), str):
            cluster_id = args.args["clusterId"]
            kubeconfig = offline_kubeconfig([cluster_id])
            return {"lists": [{"clusterId": cluster_id, "kubeConfig": kubeconfig, "kubeConfigIntranet": kubeconfig}]}
        return {}


class StackFileError(Exception):
    pass


def _stringify(value: Any) -> str:
    """A config value as the Pulumi CLI hands it to the program (YAML timestamps as their text)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=False, default=str)


def _replace_secure(value: Any) -> tuple[Any, bool]:
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return SECRET_PLACEHOLDER, True
        found = False
        out = {}
        for k, v in value.items():
            out[k], f = _replace_secure(v)
            found = found or f
        return out, found
    if isinstance(value, list):
        items = [_replace_secure(v) for v in value]
        return [v for v, _ in items], any(f for _, f in items)
    return value, False


def read_stack_file(path: str) -> tuple[str, dict[str, str], list[str]]:
    """(stack name, config as Pulumi passes it, secret keys) of a ``Pulumi.<stack>.yaml``."""
    name = os.path.basename(path)
    if not (name.startswith("Pulumi.") and name.endswith((".yaml", ".yml"))):
        raise StackFileError(f"{path}: a stack file is named Pulumi.<stack>.yaml")
    stack = name[len("Pulumi."):].rsplit(".", 1)[0]
    try:
        with open(path, encoding="utf-8") as fh:
            doc = yamlio.safe_load(fh.read())
    except OSError as err:
        raise StackFileError(f"{path}: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise StackFileError(f"{path}: not UTF-8 text (byte {err.start}); save the stack file as UTF-8") from None
    except yaml.YAMLError as err:
        detail = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
        raise StackFileError(f"{path}: not valid YAML: {detail}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict) or not isinstance(doc.get("config", {}), dict):
        raise StackFileError(f"{path}: expected a mapping with a 'config:' mapping")
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in (doc.get("config") or {}).items():
        key = str(key)
        if ":" not in key:
            raise StackFileError(f"{path}: config key '{key}' has no namespace; write {NS}:{key}")
        try:
            value, secret = _replace_secure(value)
        except RecursionError:
            raise StackFileError(f"{path}: {key} holds a YAML alias that refers to itself (an infinite "
                                 "value); write the value out") from None
        config[key] = _stringify(value)
        if secret:
            secret_keys.append(key)
    return stack, config, secret_keys


def _project_name() -> str:
    with open(ROOT / "Pulumi.yaml", encoding="utf-8") as fh:
        return str(yaml.safe_load(fh)["name"])


def offline_kubeconfig(contexts: list[str]) -> str:
    """A kubeconfig with the given contexts and no credentials, pointing nowhere."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "contexts": [{"name": c, "context": {"cluster": c, "user": c}} for c in contexts],
        "clusters": [{"name": c, "cluster": {"server": f"https://{c}.offline-plan.invalid"}} for c in contexts],
        "users": [{"name": c, "user": {}} for c in contexts],
    }
    return json.dumps(doc, sort_keys=True, indent=1) + "\n"  # JSON is YAML; fast for hundreds of contexts


def _contexts(raw: dict[str, Any]) -> list[str]:
    """The contexts the stack names (leniently: the program validates the entries)."""
    clusters = raw.get("clusters")
    entries = clusters if isinstance(clusters, list) else []
    names = {n for e in entries if isinstance(e, dict)
             for n in [e.get("context", e.get("name"))] if isinstance(n, str) and n}
    return sorted(names)


def plan(stack_file: str, mocks: Optional[pulumi.runtime.Mocks] = None) -> Recording:
    """Run the program on the stack file's config; the program's InvalidConfig propagates."""
    stack, config, secret_keys = read_stack_file(stack_file)
    with tempfile.TemporaryDirectory(prefix="mesh-plan-") as tmp:
        kubeconfig = os.path.join(tmp, "kubeconfig")
        with open(kubeconfig, "w", encoding="utf-8") as fh:
            fh.write(offline_kubeconfig(_contexts(decode_config(config))))
        config = {**config, f"{NS}:kubeconfig": kubeconfig}
        return run_program(
            str(PROGRAM),
            project=_project_name(),
            stack=stack,
            config=config,
            secret_keys=secret_keys,
            mocks=mocks or PlanMocks(),
            preview=True,
        )


def write(files: dict[str, str], out: str) -> None:
    """Replace DIR with the plan (written next to it first, so a failure leaves DIR as it was)."""
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_path.name}-", dir=out_path.parent))
    try:
        for rel, text in files.items():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        if out_path.exists():
            shutil.rmtree(out_path)
        staging.rename(out_path)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def main(argv: Optional[list[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["diff"]:
        from tools import diff

        return diff.main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m tools.plan", description=__doc__.split("\n\n")[0])
    parser.add_argument("stack_file", help="a stack file, e.g. stacks/Pulumi.dev.yaml")
    parser.add_argument("--out", required=True, help="the directory to write the plan to")
    args = parser.parse_args(argv)
    try:
        recording = plan(args.stack_file)
    except StackFileError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except pulumi.RunError as err:  # the program's own refusal (e.g. InvalidConfig)
        issues: tuple[ConfigIssue, ...] = getattr(err, "issues", ())
        lines = [f"error: {i.line()}" for i in issues] or [f"error: {err}"]
        print("\n".join(lines), file=sys.stderr)
        return 2
    write(render.artefacts(recording), args.out)
    print(f"plan of {args.stack_file} written to {args.out}/ ({len(recording.resources)} resources)")
    return 0


def exit_now(code: int) -> None:
    """Leave without interpreter finalisation.

    The Pulumi SDK leaves an unclosed event loop in each of its worker threads; at
    shutdown Python may collect them after their self-pipes and print a spurious
    "Invalid file descriptor" traceback. Everything is written and flushed by now.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    tune_gc()  # this process holds the program's objects and renders them: the program's settings
    exit_now(main())
