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
DIR is replaced as a whole, so it must be new, empty, or a previous plan (``graph.json``,
``summary.md``, ``values/*.yaml`` and nothing else); anything else is refused (exit 2).

    python -m tools.plan diff OLD_DIR NEW_DIR [--format markdown] [--allow-different-stacks]

compares two plans (see ``tools/diff.py``): exit 0 no change, 1 changes, 2 error.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import yaml

from components.collector import tune_gc
from components.program import READ_STACK_OUTPUTS
from meshcore import yamlio
from meshcore.config.clusters import NS
from meshcore.config.model import UNREADABLE_SECRET, decode_config
from meshcore.errors import ConfigIssue
from meshcore.mesh import chartsource as charts
from meshcore.mesh.kubeconfig import OVERRIDE_ENV
from tools import ROOT, render
from tools.mockengine import Recording, run_program

PROGRAM = ROOT / "__main__.py"
SECRET_PLACEHOLDER = UNREADABLE_SECRET


GET_CLUSTERS = "tencentcloud:Kubernetes/getClusters:getClusters"


class PlanMocks(pulumi.runtime.Mocks):
    """Providers offline: they compute nothing, so ids and computed outputs are unknown, as
    in a preview of a new stack; the program's read of its own last outputs finds none.

    The one lookup a preview runs for real, the TKE API's cluster lookup (adoption by
    cluster ID), is answered like the kubeconfig file: with a kubeconfig that holds no
    credentials and points nowhere, so the plan shows the adopted cluster's provider.
    """

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        return "", {}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == READ_STACK_OUTPUTS:
            # The stack's own last outputs: none, as for a stack never deployed.
            return {"name": args.args["name"], "outputs": {}, "secretOutputNames": []}, []
        if args.token == GET_CLUSTERS and isinstance(args.args.get("clusterId"), str):
            cluster_id = args.args["clusterId"]
            kubeconfig = offline_kubeconfig([cluster_id])
            found = {"clusterId": cluster_id, "kubeConfig": kubeconfig, "kubeConfigIntranet": kubeconfig}
            return {"lists": [found]}, []
        return {}, []


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


def _allowances(raw: dict[str, Any]) -> list[str]:
    """``mesh:allowIdentityChange`` of a config the program accepted (a list of names)."""
    value = raw.get("allowIdentityChange", [])
    return sorted(str(v) for v in value) if isinstance(value, list) else []


def plan(stack_file: str, mocks: pulumi.runtime.Mocks | None = None) -> Recording:
    """Run the program on the stack file's config; the program's InvalidConfig propagates."""
    stack, config, secret_keys = read_stack_file(stack_file)
    raw = decode_config(config)
    with tempfile.TemporaryDirectory(prefix="mesh-plan-") as tmp:
        kubeconfig = os.path.join(tmp, "kubeconfig")
        with open(kubeconfig, "w", encoding="utf-8") as fh:
            fh.write(offline_kubeconfig(_contexts(raw)))
        config = {**config, f"{NS}:kubeconfig": kubeconfig}
        # $MESH_KUBECONFIG_FILE would win over mesh:kubeconfig (CI sets it before the plan runs):
        # the plan reads its generated kubeconfig whatever the environment says.
        saved = os.environ.get(OVERRIDE_ENV)
        os.environ[OVERRIDE_ENV] = kubeconfig
        try:
            recording = run_program(
                str(PROGRAM),
                project=_project_name(),
                stack=stack,
                config=config,
                secret_keys=secret_keys,
                mocks=mocks or PlanMocks(),
                preview=True,
            )
        finally:
            if saved is None:
                os.environ.pop(OVERRIDE_ENV, None)
            else:
                os.environ[OVERRIDE_ENV] = saved
    # What the diff needs to tell an identity change pulumi up refuses from an allowed one
    # (the offline plan has no deployed outputs to compare with; see tools/diff.py).
    recording.annotations["allowIdentityChange"] = _allowances(raw)
    # What the diff needs to judge value paths as the chart does: that the check did not run, and the keys only
    # the chart copy the check read knows (its templates'), which the key index lacks. Only when there are some.
    not_checked = program_notes(recording, (charts.NOT_CHECKED,))
    if not_checked:
        recording.annotations[render.NOT_CHECKED_KEY] = not_checked
    beyond = chart_only_keys(recording)
    if beyond:
        recording.annotations[render.CHART_ONLY_KEY] = beyond
    return recording


def program_notes(recording: Recording,
                  prefixes: tuple[str, ...] = (charts.NOT_CHECKED, charts.INDEX_INSTEAD)) -> list[str]:
    """The program's warnings about the Helm value-path check (``meshcore.mesh.chartsource.check_values``) that
    start with one of ``prefixes``, once each."""
    notes = [m for level, m in recording.logs if level == "warning" and m.startswith(prefixes)]
    return list(dict.fromkeys(notes))


def chart_only_keys(recording: Recording) -> dict[str, list[list[str]]]:
    """Cluster -> the value paths of its release that the chart copy the check reads knows and the key index does
    not (``meshcore.mesh.chartsource.keys_beyond_index``), for the clusters that have some."""
    groups: dict[tuple[str | None, str], list[dict[str, Any]]] = {}
    for r in recording.resources.values():
        if r.type != render.RELEASE_TYPE:
            continue
        inputs = render.scrub(r.inputs)
        values, version = inputs.get("values"), inputs.get("version")
        if not isinstance(values, dict) or not isinstance(version, str):
            continue
        chart = None if inputs.get("repositoryOpts") else inputs.get("chart")
        groups.setdefault((chart if isinstance(chart, str) else None, version), []).append(values)
    out: dict[str, list[list[str]]] = {}
    for (chart, version), releases in sorted(groups.items(), key=lambda kv: (kv[0][0] or "", kv[0][1])):
        for values, paths in zip(releases, charts.keys_beyond_index(chart, version, releases, ROOT), strict=True):
            name = values.get("cluster", {}).get("name") if isinstance(values.get("cluster"), dict) else None
            if paths and isinstance(name, str):
                out[name] = [[str(p) for p in path] for path in paths]
    return dict(sorted(out.items()))


class OutDirError(Exception):
    """``--out`` names something the plan must not replace."""


PLAN_ENTRIES = {"graph.json", "summary.md", "values"}
SUMMARY_TITLE = "# Offline plan: "
"""The first line of every summary.md (``render.summary``): what marks a directory as a plan."""
OUT_FIX = "give a new or empty directory, or one a previous plan wrote (e.g. build/plan-dev)"


def is_plan_dir(path: Path) -> bool:
    """True for a directory a plan wrote: graph.json, summary.md (starting with the plan's
    title) and values/ with .yaml files only, and nothing else. The plan replaces such a
    directory as a whole; anything else in it would be deleted with it."""
    try:
        entries = {e.name: e for e in path.iterdir()}
        if not {"graph.json", "summary.md"} <= entries.keys() <= PLAN_ENTRIES:
            return False
        for name in ("graph.json", "summary.md"):
            if entries[name].is_symlink() or not entries[name].is_file():
                return False
        with open(entries["summary.md"], encoding="utf-8", errors="replace") as fh:
            if not fh.readline().startswith(SUMMARY_TITLE):
                return False
        values = entries.get("values")
        if values is not None:
            if values.is_symlink() or not values.is_dir():
                return False
            for v in values.iterdir():
                if v.is_symlink() or not v.is_file() or v.suffix != ".yaml":
                    return False
    except OSError:
        return False
    return True


def check_out_dir(out: str) -> None:
    """Raise OutDirError unless ``out`` may be (re)placed by a plan: it does not exist, is an
    empty directory, or holds a previous plan (``is_plan_dir``)."""
    path = Path(out)
    if path.is_symlink():
        raise OutDirError(f"--out {out}: is a symbolic link; the plan replaces its --out directory, so {OUT_FIX}")
    if not path.exists():
        ancestor = next((p for p in path.absolute().parents if p.exists()), None)
        if ancestor is not None and not ancestor.is_dir():
            raise OutDirError(f"--out {out}: {ancestor} is a file, not a directory; {OUT_FIX}")
        return
    if not path.is_dir():
        raise OutDirError(f"--out {out}: is a file, not a directory; the plan writes a directory "
                          f"(graph.json, summary.md, values/): {OUT_FIX}")
    if path.resolve() == Path.cwd().resolve():
        raise OutDirError(f"--out {out}: is the current directory; the plan replaces its --out directory, so {OUT_FIX}")
    try:
        entries = sorted(e.name for e in path.iterdir())
    except OSError as err:
        raise OutDirError(f"--out {out}: cannot be read ({err.strerror}); {OUT_FIX}") from None
    if not entries or is_plan_dir(path):
        return
    foreign = [e for e in entries if e not in PLAN_ENTRIES] or entries
    shown = ", ".join(foreign[:3]) + (f", … ({len(foreign)} entries)" if len(foreign) > 3 else "")
    raise OutDirError(f"--out {out}: holds files that are not a plan ({shown}), and the plan replaces its --out "
                      f"directory as a whole; {OUT_FIX}")


def write(files: dict[str, str], out: str) -> None:
    """Replace DIR with the plan (written next to it first, so a failure leaves DIR as it was).

    Raises OutDirError, touching nothing, unless DIR is new, empty or a previous plan."""
    _write(lambda: files, None, out)


def write_plan(recording: Recording, out: str) -> None:
    """Render the plan and replace DIR with it, as ``write(render.artefacts(recording), out)`` does, with both cores:
    where the system can fork and this process runs no other thread, a child process renders and writes summary.md
    and the values files while this one renders and writes graph.json (each about half of the rendering)."""
    g = render.graph(recording)
    _write(lambda: {"graph.json": render.graph_json(g)}, lambda: render.summary_and_values(g), out)


def _write(render_files: Callable[[], dict[str, str]], render_more: Callable[[], dict[str, str]] | None,
           out: str) -> None:
    check_out_dir(out)
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_path.name}-", dir=out_path.parent))
    try:
        child = None
        if render_more is not None and hasattr(os, "fork") and threading.active_count() == 1:
            child = _fork_writer(render_more, staging)
        try:
            _write_into(staging, render_files())
        finally:
            if child is not None:
                _wait_for_writer(*child)
        if render_more is not None and child is None:
            _write_into(staging, render_more())
        if out_path.exists():
            check_out_dir(out)  # still new, empty or a plan: nothing else is ever deleted
            shutil.rmtree(out_path)
        staging.rename(out_path)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def _write_into(staging: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        target = staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def _fork_writer(render_files: Callable[[], dict[str, str]], staging: Path) -> tuple[int, int]:
    """A child process that renders and writes ``render_files()`` into ``staging``, then leaves at once (nothing of
    this process runs in it after that); it reports a failure on a pipe. Returns (its pid, the pipe's read end)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(read_end)
            _write_into(staging, render_files())
        except BaseException as err:  # reported to the parent, which raises it
            code = 1
            report = ({"errno": err.errno, "strerror": err.strerror, "filename": err.filename}
                      if isinstance(err, OSError) else {"error": f"{type(err).__name__}: {err}"})
            os.write(write_end, json.dumps(report).encode())
        finally:
            os._exit(code)
    os.close(write_end)
    return pid, read_end


def _wait_for_writer(pid: int, read_end: int) -> None:
    """Wait for ``_fork_writer``'s child; raise its failure here (an OSError as it was)."""
    with os.fdopen(read_end, "rb") as fh:
        report = fh.read()
    _, status = os.waitpid(pid, 0)
    if status == 0:
        return
    err = json.loads(report) if report else {"error": f"exit status {status}"}
    if "errno" in err:
        raise OSError(err["errno"], err["strerror"], err["filename"])
    raise RuntimeError(f"rendering the plan's summary and values files failed: {err['error']}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["diff"]:
        from tools import diff

        return diff.main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m tools.plan",
        usage="%(prog)s STACK_FILE --out DIR\n       %(prog)s diff OLD_DIR NEW_DIR [--format text|markdown] "
              "[--allow-different-stacks]",
        description=__doc__.split("\n\n")[0],
        epilog="diff: python -m tools.plan diff OLD_DIR NEW_DIR compares two plans, most important first "
               "(exit 0: no change, 1: changes, 2: error); see python -m tools.plan diff --help.",
    )
    parser.add_argument("stack_file", help="a stack file, e.g. stacks/Pulumi.dev.yaml")
    parser.add_argument("--out", required=True,
                        help="the directory to write the plan to: new, empty, or a previous plan (it is replaced)")
    args = parser.parse_args(argv)
    try:
        check_out_dir(args.out)
    except OutDirError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
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
    for note in program_notes(recording):  # on the terminal too: the check did not run, or read the key index
        print(f"warning: {note}", file=sys.stderr)
    try:
        write_plan(recording, args.out)
    except OutDirError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: --out {args.out}: cannot write the plan there ({err.strerror}: {err.filename}); "
              f"{OUT_FIX}", file=sys.stderr)
        return 2
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
