"""A local mesh: one real kube-apiserver per cluster on loopback, sharing one etcd.

    python -m tools.localmesh up --clusters cls-a,cls-b,cls-c --dir DIR
    python -m tools.localmesh status --dir DIR
    python -m tools.localmesh stop --dir DIR --cluster cls-b     # one API server down (faults)
    python -m tools.localmesh start --dir DIR --cluster cls-b    # and up again, same port
    python -m tools.localmesh down --dir DIR                     # stops everything (the control plane too)

After ``pulumi up`` created the releases, ``tools.controlplane`` runs each cluster's clustermesh-apiserver pod
(Cilium's etcd, clustermesh and kvstoremesh) on its mesh address, and the mesh connects for real:

    python -m tools.localmesh connect --dir DIR
    python -m tools.localmesh mesh-status --dir DIR [--json]

``up`` starts etcd and the API servers from the toolchain (``python -m tools.toolchain build``),
each cluster under its own etcd prefix, with certificates made for the run, RBAC on, and
an admin client certificate (group ``system:masters``). It writes ``DIR/kubeconfig`` with one
context per cluster, named after it, and ``DIR/localmesh.json`` (ports and process ids). Only
127.0.0.1 is used. There is no kubelet or controller-manager: objects are stored, pods never
run, and a LoadBalancer Service gets no address unless something sets its status (as TKE's
controller does; ``assign-vips`` plays that part for the Services the mesh creates).

    python -m tools.localmesh assign-vips --dir DIR   # status.loadBalancer.ingress = the requested VIP
    python -m tools.localmesh mark-ready --dir DIR    # that, and every Deployment and DaemonSet ready

``mark-ready`` plays the other missing controllers' part: each certgen Job (the chart's ``cronJob`` TLS
method, 1.19+) runs once and completes (``tools.certgen``: the Secrets certgen would issue), and every Deployment
and DaemonSet reports its pods ready (``--nodes N``: the DaemonSets' node count, 1 by default), as the Deployment and
DaemonSet controllers and the kubelets would once the pods ran; it assigns the VIPs too.

    python -m tools.localmesh stack --dir DIR --out stacks/Pulumi.local.yaml [--chart PATH]

writes a ready stack file for the mesh's clusters (``stack_config``: loopback VIPs, DIR/kubeconfig,
``skipAwait``, the suite's stand-in chart or ``--chart``) with a CA it brings (``DIR/pki/mesh-ca.*``,
made once), its key set with ``pulumi config set --secret`` (only ciphertext reaches the stack
file), in a file backend and Pulumi home of DIR's own (``DIR/pulumi``; the passphrase in
``DIR/pulumi/passphrase``); ``DIR/env`` sets the shell up for ``pulumi up --stack local``.

Everything lives in DIR; ``down`` leaves no process running. Try the program on it: README,
"Real engine".
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import ssl
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from tools import controlplane, meshstatus, toolchain
from tools.localpki import certs
from tools.localstack import PULUMI_DIR, write_stack
from tools.localstate import STATE, Member, Mesh, alive, free_ports, spawn, stop
from tools.markready import assign_vips, mark_ready
from tools.workspace import CHART

READY_TIMEOUT = 90.0
SERVICE_CIDR = "10.96.0.0/16"


# -- processes ------------------------------------------------------------------------------


def _start_etcd(mesh: Mesh, bin_dir: Path) -> None:
    d = mesh.path
    client = f"http://127.0.0.1:{mesh.etcd_port}"
    peer = f"http://127.0.0.1:{mesh.etcd_peer_port}"
    mesh.etcd_pid = spawn([
        str(bin_dir / "etcd"), "--name", "localmesh", "--data-dir", str(d / "etcd"),
        "--listen-client-urls", client, "--advertise-client-urls", client,
        "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
        "--initial-cluster", f"localmesh={peer}", "--log-level", "warn",
        "--quota-backend-bytes", str(2 * 2**30),
    ], d / "logs" / "etcd.log")


def _start_apiserver(mesh: Mesh, member: Member, bin_dir: Path) -> None:
    d = mesh.path
    pki = d / "pki"
    member.pid = spawn([
        str(bin_dir / "kube-apiserver"),
        f"--etcd-servers=http://127.0.0.1:{mesh.etcd_port}",
        f"--etcd-prefix=/localmesh/{member.name}",
        "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={member.port}",
        f"--tls-cert-file={pki / 'serving.crt'}", f"--tls-private-key-file={pki / 'serving.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        f"--service-account-issuer=https://{member.name}.localmesh.invalid",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--authorization-mode=Node,RBAC",
        # As every real cluster (TKE's too): the Cilium chart's agent DaemonSet has a privileged init
        # container (mount-bpf-fs, with Bidirectional mount propagation); without this the API server
        # refuses it ("privileged: Forbidden: disallowed by cluster policy").
        f"--allow-privileged={str(mesh.allow_privileged).lower()}",
        # No controller keeps the `kubernetes` Service's endpoints on loopback; without this the
        # lease reconciler logs an error every few seconds.
        "--endpoint-reconciler-type=none",
        "--profiling=false",
        "--v=1",
    ], d / "logs" / f"{member.name}.log")


def _ready(mesh: Mesh, member: Member) -> bool:
    pki = mesh.path / "pki"
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    try:
        with urllib.request.urlopen(f"https://127.0.0.1:{member.port}/readyz", context=ctx, timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def _wait_ready(mesh: Mesh, members: list[Member]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    pending = list(members)
    while pending:
        if not alive(mesh.etcd_pid):
            raise SystemExit(f"error: etcd exited; see {mesh.path / 'logs' / 'etcd.log'}")
        for m in list(pending):
            if not alive(m.pid):
                log = mesh.path / "logs" / f"{m.name}.log"
                raise SystemExit(f"error: the API server of {m.name} exited; see {log}")
            if _ready(mesh, m):
                pending.remove(m)
        if pending and time.monotonic() > deadline:
            raise SystemExit(f"error: not ready after {READY_TIMEOUT:.0f} s: {', '.join(m.name for m in pending)}; "
                             f"see {mesh.path / 'logs'}")
        if pending:
            time.sleep(0.25)


def _kubeconfig(mesh: Mesh) -> None:
    pki = mesh.path / "pki"

    def b64(name: str) -> str:
        return base64.b64encode((pki / name).read_bytes()).decode()

    doc = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": m.name, "cluster": {"server": f"https://127.0.0.1:{m.port}",
                                                   "certificate-authority-data": b64("ca.crt")}}
                     for m in mesh.clusters],
        "users": [{"name": "localmesh-admin", "user": {"client-certificate-data": b64("admin.crt"),
                                                        "client-key-data": b64("admin.key")}}],
        "contexts": [{"name": m.name, "context": {"cluster": m.name, "user": "localmesh-admin"}}
                     for m in mesh.clusters],
        "current-context": mesh.clusters[0].name,
    }
    path = mesh.path / "kubeconfig"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    path.chmod(0o600)


def up(names: list[str], dir_: Path, *, allow_privileged: bool = True) -> Mesh:
    bin_dir = toolchain.require() / "bin"
    dir_.mkdir(parents=True, exist_ok=True)
    dir_ = dir_.resolve()
    if (dir_ / STATE).exists():
        old = Mesh.load(dir_)
        if alive(old.etcd_pid) or any(alive(m.pid) for m in old.clusters):
            raise SystemExit(f"error: a local mesh is already running in {dir_}; `down --dir {dir_}` first")
    if (dir_ / "etcd").exists():
        # A new mesh starts empty: the old data would bring back the releases of an earlier run.
        shutil.rmtree(dir_ / "etcd")
    # And so do its stacks (``stack``): their state is of releases in the old etcd.
    shutil.rmtree(dir_ / PULUMI_DIR, ignore_errors=True)
    (dir_ / "env").unlink(missing_ok=True)
    certs(dir_)
    ports = free_ports(len(names) + 2)
    mesh = Mesh(str(dir_), ports[0], ports[1], clusters=[Member(n, p) for n, p in zip(names, ports[2:], strict=False)],
                allow_privileged=allow_privileged)
    _start_etcd(mesh, bin_dir)
    mesh.save()
    try:
        for m in mesh.clusters:
            _start_apiserver(mesh, m, bin_dir)
            mesh.save()
        _wait_ready(mesh, mesh.clusters)
    except BaseException:
        down(dir_)
        raise
    _kubeconfig(mesh)
    return mesh


def down(dir_: Path) -> None:
    """Stop everything: the control plane's pods (``tools.controlplane``), then the API servers and etcd."""
    mesh = Mesh.load(dir_)
    controlplane.down(dir_)
    for m in mesh.clusters:
        stop(m.pid, "kube-apiserver")
    stop(mesh.etcd_pid, "etcd")
    (mesh.path / STATE).unlink()


def stop_member(dir_: Path, name: str) -> None:
    mesh = Mesh.load(dir_)
    stop(mesh.member(name).pid, "kube-apiserver")


def start_member(dir_: Path, name: str) -> None:
    mesh = Mesh.load(dir_)
    m = mesh.member(name)
    if alive(m.pid):
        return
    _start_apiserver(mesh, m, toolchain.require() / "bin")
    mesh.save()
    _wait_ready(mesh, [m])


def status(dir_: Path) -> list[tuple[str, str]]:
    mesh = Mesh.load(dir_)
    rows = [("etcd", f"127.0.0.1:{mesh.etcd_port} " + ("running" if alive(mesh.etcd_pid) else "stopped"))]
    for m in mesh.clusters:
        state = ("ready" if _ready(mesh, m) else "running, not ready") if alive(m.pid) else "stopped"
        rows.append((m.name, f"https://127.0.0.1:{m.port} {state}"))
    return rows


def wait_connected(dir_: Path, seconds: float) -> int:
    """Poll the control plane's status until every cluster's kvstoremesh is connected to and synced with every
    remote it knows (0), or ``seconds`` pass (1, with the status of the pairs that are not)."""
    started = time.monotonic()
    while True:
        status = meshstatus.mesh_status(dir_)
        pending = [f"{n} -> {r}" for n, e in sorted(status.items()) for r, x in sorted(e["remotes"].items())
                   if not (x["connected"] and x["ready"] and x["synced"])]
        pending += [f"{n}: {e['error']}" for n, e in sorted(status.items()) if e["error"]]
        if not pending:
            print(f"every pair connected and synced after {time.monotonic() - started:.1f} s")
            return 0
        if time.monotonic() - started > seconds:
            print("\n".join(meshstatus.status_lines(status)))
            print(f"not connected after {seconds:.0f} s: {', '.join(pending)}", file=sys.stderr)
            return 1
        time.sleep(1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.localmesh", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start etcd and one API server per cluster; write DIR/kubeconfig")
    p_up.add_argument("--clusters", required=True, help="comma-separated cluster names (the kubeconfig contexts)")
    helps = {"down": "stop everything (the control plane too)", "status": "what runs",
             "connect": "after `pulumi up`: run each release's clustermesh-apiserver pod (tools.controlplane), "
                        "then what mark-ready does",
             "mesh-status": "per cluster, each remote cluster its kvstoremesh knows: connected, synced, why not",
             "stop": "stop one API server",
             "start": "start one API server again", "assign-vips": "give each mesh Service its requested VIP",
             "mark-ready": "assign the VIPs, run certgen's Jobs, report every Deployment and DaemonSet ready",
             "stack": "write a ready stack file for the mesh (its CA key as a secret) and DIR/env"}
    for name in ("up", *helps):
        p = p_up if name == "up" else sub.add_parser(name, help=helps[name])
        p.add_argument("--dir", required=True, type=Path)
        if name in ("stop", "start"):
            p.add_argument("--cluster", required=True)
        if name == "mesh-status":
            p.add_argument("--json", action="store_true")
        if name == "connect":
            p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                           help="then wait up to SECONDS for every pair connected and synced (exit 1 if not)")
        if name == "mark-ready":
            p.add_argument("--nodes", type=int, default=1, help="the nodes each DaemonSet runs on (default 1)")
        if name == "stack":
            p.add_argument("--out", required=True, type=Path, help="the stack file, e.g. stacks/Pulumi.local.yaml")
            p.add_argument("--chart", type=Path, default=CHART,
                           help="a local Cilium chart, directory or .tgz (default: the suite's stand-in chart)")
            p.add_argument("--version", help="mesh:cilium.version (default: the chart's own)")
            p.add_argument("--clusters", help="comma-separated members of the stack (default: every cluster)")
    args = parser.parse_args(argv)
    if args.command == "up":
        names = [n.strip() for n in args.clusters.split(",") if n.strip()]
        if not names or len(set(names)) != len(names):
            parser.error("--clusters needs distinct, comma-separated names")
        started = time.monotonic()
        mesh = up(names, args.dir)
        print(f"local mesh of {len(names)} clusters ready in {time.monotonic() - started:.1f} s; "
              f"kubeconfig: {mesh.path / 'kubeconfig'}")
    elif args.command == "down":
        down(args.dir)
        print(f"local mesh in {args.dir} stopped (its control plane too)")
    elif args.command == "connect":
        started = time.monotonic()
        cp = controlplane.connect(args.dir)
        # Its pods run now: what their controllers would report (mark-ready), the VIPs too.
        for line in mark_ready(args.dir):
            print(line)
        print(f"control plane of {len(cp.clusters)} clusters started in {time.monotonic() - started:.1f} s: "
              f"{', '.join(f'{n} ({m.address})' for n, m in sorted(cp.clusters.items()))}")
        if args.wait > 0:
            return wait_connected(args.dir, args.wait)
    elif args.command == "mesh-status":
        remotes = meshstatus.mesh_status(args.dir)
        print(json.dumps(remotes, indent=2) if args.json else "\n".join(meshstatus.status_lines(remotes)))
    elif args.command == "stop":
        stop_member(args.dir, args.cluster)
    elif args.command == "start":
        start_member(args.dir, args.cluster)
    elif args.command in ("assign-vips", "mark-ready"):
        if args.command == "mark-ready" and args.nodes < 0:
            parser.error("--nodes cannot be negative")
        for line in (assign_vips(args.dir) if args.command == "assign-vips" else mark_ready(args.dir, args.nodes)):
            print(line)
    elif args.command == "stack":
        members = [n.strip() for n in args.clusters.split(",") if n.strip()] if args.clusters else None
        stack, env = write_stack(args.dir, args.out, args.chart, args.version, members)
        # pulumi reads a stack file from its project's stacks/: elsewhere, run it in DIR's copy of the project.
        home = args.out.resolve().parent.parent
        if args.out.resolve().parent.name != "stacks" or not (home / "Pulumi.yaml").is_file():
            home = args.dir.resolve() / PULUMI_DIR / "project"
        project = "" if home == Path.cwd().resolve() else f" -C {home}"
        print(f"wrote {args.out} (stack {stack}; mesh:caPrivateKey encrypted, passphrase in "
              f"{args.dir.resolve() / PULUMI_DIR / 'passphrase'})")
        print(f"next: . {env} && pulumi{project} up --stack {stack} --yes")
    else:
        for name, state in status(args.dir):
            print(f"{name:24} {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
