"""``python -m tools.localmesh stack``: a ready stack file for the clusters of a local mesh (``stack_config``:
loopback VIPs, DIR/kubeconfig, ``skipAwait``, the suite's stand-in chart or ``--chart``) with a CA it brings
(``DIR/pki/mesh-ca.*``, made once), its key set with ``pulumi config set --secret``, in a file backend and Pulumi home
of DIR's own (``DIR/pulumi``). The end-to-end suite builds its stacks with ``stack_config`` too."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from tools.localpki import new_mesh_ca
from tools.localstate import Mesh
from tools.workspace import CHART, Workspace

CHART_VERSION = "1.18.3"
"""The version of the suite's stand-in chart (its Chart.yaml)."""
PULUMI_DIR = "pulumi"
"""DIR's own Pulumi workspace: ``home`` (plugins: the toolchain's; logged in to ``state``), ``state`` (a file
backend), ``project`` (the program linked in, with its copy of the stack file) and ``passphrase``."""


def vip(i: int) -> str:
    """The mesh address of the member with Cilium ``cluster.id`` ``i``: a loopback address. Nothing listens
    on it (there are no pods), and nothing of the mesh leaves 127.0.0.0/8."""
    return f"127.0.{i}.100"


def stack_cluster(i: int, name: str) -> dict[str, Any]:
    """A VIP-mode mesh member ``name`` with Cilium id ``i``, reached through the local mesh's context of the same
    name: its own pod CIDR, subnet ID and loopback VIP, all derived from ``i``."""
    return {
        "name": name,
        "id": i,
        "region": "ap-guangzhou",
        "podCidrs": [f"172.{16 + i}.0.0/16"],
        "apiserver": {"subnetId": f"subnet-e2e{i:05d}", "vip": vip(i)},
    }


def stack_config(kubeconfig: Path, ca_cert: str, clusters: Sequence[str], members: Sequence[str] | None = None,
                 chart: Path = CHART, version: str = CHART_VERSION) -> dict[str, Any]:
    """The plain config of a stack of ``clusters`` in a local mesh (the end-to-end suite's and ``stack``'s):
    each cluster's id is its position in ``members`` (the mesh's API servers; default ``clusters``) plus one,
    so a cluster keeps its id when the stack takes others in or out; the CA is brought (its key, the secret
    ``mesh:caPrivateKey``, is set apart); ``skipAwait``: no pod ever runs."""
    order = list(members if members is not None else clusters)
    return {
        "mesh:cilium": {"version": version, "chart": str(chart), "skipAwait": True},
        "mesh:kubeconfig": str(kubeconfig),
        "mesh:ca": {"certificate": ca_cert},
        "mesh:clusters": [stack_cluster(order.index(n) + 1, n) for n in clusters],
    }


def mesh_ca(dir_: Path) -> tuple[str, str]:
    """The CA the local stacks of DIR bring (``new_mesh_ca``), made once: ``DIR/pki/mesh-ca.crt`` and
    ``mesh-ca.key`` (0600; the mesh's own material, like the API servers' keys in the same directory)."""
    pki = dir_ / "pki"
    crt, key = pki / "mesh-ca.crt", pki / "mesh-ca.key"
    if not (crt.is_file() and key.is_file()):
        pki.mkdir(parents=True, exist_ok=True)
        cert_pem, key_pem = new_mesh_ca()
        key.touch(mode=0o600)
        key.chmod(0o600)
        key.write_text(key_pem, encoding="ascii")
        crt.write_text(cert_pem, encoding="ascii")
    return crt.read_text(encoding="ascii"), key.read_text(encoding="ascii")


def chart_version(chart: Path) -> str:
    """The version a local chart (a directory or a ``.tgz``) states in its Chart.yaml."""
    import tarfile

    if chart.is_dir():
        meta = yaml.safe_load((chart / "Chart.yaml").read_text(encoding="utf-8"))
    else:
        with tarfile.open(chart) as tgz:
            member = next((m for m in tgz.getmembers() if m.name.count("/") == 1 and m.name.endswith("/Chart.yaml")),
                          None)
            fh = tgz.extractfile(member) if member is not None else None
            if fh is None:
                raise SystemExit(f"error: {chart} holds no <chart>/Chart.yaml")
            meta = yaml.safe_load(fh.read())
    return str(meta["version"])


def _passphrase(base: Path) -> Path:
    path = base / "passphrase"
    if not path.is_file():
        base.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(secrets.token_urlsafe(24), encoding="ascii")
    return path


def stack_name(out: Path) -> str:
    name = out.name
    if not (name.startswith("Pulumi.") and name.endswith(".yaml")) or len(name) <= len("Pulumi..yaml"):
        raise SystemExit(f"error: {out}: a stack file is named Pulumi.<stack>.yaml (pulumi finds it by that name)")
    return name[len("Pulumi."):-len(".yaml")]


SCHEMA_LINE = "# yaml-language-server: $schema=../schema/stack.schema.json\n"
GENERATED = "# Written by `python -m tools.localmesh stack` for a local mesh: paths of this machine; not to commit."
"""The second line of a stack file ``stack`` writes (the suite's tests of the committed stacks skip such files)."""


class _StackDumper(yaml.SafeDumper):
    """Multi-line text (the CA certificate) as a literal block, as one writes it by hand."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_StackDumper.add_representer(str, _text)


def dump_stack(doc: Any) -> str:
    return yaml.dump(doc, Dumper=_StackDumper, sort_keys=False)


def write_stack(dir_: Path, out: Path, chart: Path = CHART, version: str | None = None,
                clusters: Sequence[str] | None = None) -> tuple[str, Path]:
    """Write ``out``, a ready stack file for the local mesh in DIR (``stack_config``), and make its stack in DIR's
    own backend; returns (the stack's name, the file to source before ``pulumi up``: ``DIR/env``).

    The CA key reaches the file only as ciphertext: ``pulumi config set --secret mesh:caPrivateKey`` (its value on
    stdin) with the passphrase of ``DIR/pulumi/passphrase``. Run again, it rewrites ``out`` for the same stack
    (same CA, same encryption salt)."""
    mesh = Mesh.load(dir_)
    members = [m.name for m in mesh.clusters]
    names = list(clusters) if clusters else members
    unknown = [n for n in names if n not in members]
    if unknown:
        raise SystemExit(f"error: {', '.join(unknown)}: not a cluster of the local mesh in {mesh.dir} "
                         f"({', '.join(members)})")
    chart = chart.resolve()
    if not chart.exists():
        raise SystemExit(f"error: no chart at {chart}")
    stack = stack_name(out)
    cert, key = mesh_ca(mesh.path)
    base = mesh.path / PULUMI_DIR
    passphrase = _passphrase(base)
    ws = Workspace(base, stack=stack, passphrase=passphrase.read_text(encoding="ascii"))
    if stack not in ws.stacks():
        ws.stack_file.unlink(missing_ok=True)  # another backend's salt
        ws.pulumi("stack", "init", stack, "--secrets-provider", "passphrase")
    # From stdin, not argv: a secret does not belong in the process list.
    ws.pulumi("config", "set", "--secret", "--stack", stack, "mesh:caPrivateKey", stdin=key)
    ws.set_config(stack_config(mesh.path / "kubeconfig", cert, names, members, chart,
                               version or chart_version(chart)))
    text = SCHEMA_LINE + GENERATED + "\n" + dump_stack(yaml.safe_load(ws.stack_file.read_text(encoding="utf-8")))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    ws.stack_file.write_text(text, encoding="utf-8")  # the same file in DIR's copy of the project
    env = mesh.path / "env"
    env.write_text("\n".join([
        f"# Source this to run pulumi on the local mesh in {mesh.dir} (python -m tools.localmesh stack).",
        f'export PATH="{ws.bin}:$PATH"',
        f"export PULUMI_HOME={ws.home}             # logged in to the file backend {ws.state}",
        f"export PULUMI_CONFIG_PASSPHRASE_FILE={passphrase}",
        "export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true",
        "unset PULUMI_CONFIG_PASSPHRASE PULUMI_BACKEND_URL PULUMI_ACCESS_TOKEN",
        "unset MESH_KUBECONFIG_FILE                # it would win over the stack's mesh:kubeconfig",
        "",
    ]), encoding="utf-8")
    return stack, env
