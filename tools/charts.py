"""Copies of the stacks' Cilium charts for the Helm value-path check (``meshcore.chart.check_values``).

    python -m tools.charts pull STACK_FILE [STACK_FILE ...]

For each stack whose chart comes from a repository (or ``oci://``), ``helm pull`` puts it into
the cache the check reads (``meshcore.chart.cache_dir()``, ``cilium-<version>.tgz``) unless it
is there already; a local chart (``mesh:cilium.chart``) is checked where it is. The CI workflows
run it before planning, so ``values`` are checked against the chart itself, templates included
(without a copy the check reads the program's key index, which lacks the keys only the templates
read: such a key would be refused). Exit 0: every chart is there; 1: a pull failed (its output is
shown); 2: a stack file is invalid.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys

from meshcore import chart as charts
from meshcore.config import NS, decode_config
from meshcore.config_parse import parse_settings
from meshcore.errors import MeshConfigError
from tools.plan import StackFileError, read_stack_file


def pull(stack_files: list[str]) -> int:
    directory = charts.cache_dir()
    wanted: dict[str, str] = {}  # cache file -> the helm pull that writes it
    for path in stack_files:
        try:
            _, config, secret_keys = read_stack_file(path)
            settings = parse_settings(decode_config(config),
                                      [k.split(":", 1)[1] for k in secret_keys if k.startswith(f"{NS}:")])
        except StackFileError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except MeshConfigError as err:
            print("\n".join(f"error: {path}: {line.removeprefix('error: ')}" for line in err.lines()), file=sys.stderr)
            return 2
        cilium = settings.cilium
        if cilium.chart is not None and charts.is_local(cilium.chart):
            print(f"{path}: local chart {cilium.chart}, checked where it is")
            continue
        target = directory / f"cilium-{cilium.version}.tgz"
        wanted.setdefault(str(target), charts.pull_command(cilium.chart, cilium.repository, cilium.version, directory))
    directory.mkdir(parents=True, exist_ok=True)
    for tgz, command in sorted(wanted.items()):
        if (directory / tgz).is_file():
            print(f"{tgz}: there")
            continue
        print(f"{tgz}: {command}")
        done = subprocess.run(shlex.split(command), capture_output=True, text=True)
        if done.returncode != 0 or not (directory / tgz).is_file():
            print(f"error: {command} failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()}",
                  file=sys.stderr)
            return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.charts", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pull", help="helm pull each stack's repository chart into the value-path check's cache")
    p.add_argument("stack_files", nargs="+", metavar="STACK_FILE")
    args = parser.parse_args(argv)
    return pull(args.stack_files)


if __name__ == "__main__":
    sys.exit(main())
