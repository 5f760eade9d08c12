"""The clustermesh-apiserver pods of a local mesh, run for real: the mesh connects.

    python -m tools.localmesh connect --dir DIR            # after `pulumi up` created the releases
    python -m tools.localmesh mesh-status --dir DIR [--json]
    python -m tools.localmesh down --dir DIR               # the control plane, then the API servers

``DIR`` is a ``tools.localmesh`` directory, whose CLI runs these (this module's own is the ``kubelet`` it
starts). ``connect`` starts, per cluster whose API server holds a
deployed release ``cilium``, what the chart's clustermesh-apiserver pod runs, from the toolchain's
``clustermesh-apiserver-<chart version>``:

- its etcd (the toolchain's), initialised by ``etcdinit`` once, listening on the cluster's mesh
  address (the VIP the program requests for the Service, e.g. 127.0.10.N) with the TLS material of the
  ``clustermesh-apiserver-server-cert`` Secret;
- ``clustermesh`` against the cluster's API server (Cilium's CRDs registered first), writing with the
  ``clustermesh-apiserver-admin-cert`` certificate; with the Deployment's ``--cluster-users-*`` arguments (chart
  1.19+, authMode migration) it manages the etcd users of the ``clustermesh-remote-users`` ConfigMap, projected
  at ``/var/lib/cilium/etcd-config``;
- ``kvstoremesh``, reading its peers from the ``cilium-kvstoremesh`` Secret and the
  ``clustermesh-apiserver-remote-cert`` Secret at ``/var/lib/cilium/clustermesh``, the paths the
  Secret's peer files name.

The Secrets reach the processes as files the way a kubelet's projected volumes do (a timestamped
directory, an atomic ``..data`` symlink swap, one symlink per key): a ``kubelet`` process of ours
polls the API servers every second and rewrites a volume when its Secrets change, so ``pulumi up``
adding or removing a peer reloads kvstoremesh (it watches the directory) and restarts nothing.
A 1.19+ release's certificates come from its certgen Job, which ``connect`` runs first (``tools.certgen``).
``connect`` is idempotent: it starts what is missing (a cluster added by ``pulumi up``), stops the
processes of a cluster whose release is gone, and leaves every other process alone.

Isolation, and why: every listener binds an explicit loopback address (etcd and the kvstoremesh API on
the mesh address) except the health ports of ``clustermesh`` and ``kvstoremesh``, which Cilium binds on
every address (no flag takes one): they get free ports. Each cilium process runs in a private mount
namespace (``unshare -m``) where ``/run`` and ``/var/lib`` are directories of ours, so the pod's paths
(``/var/lib/cilium/clustermesh``, ``/var/run/cilium/shell.sock``) are per cluster and nothing lands on
the host; ``etcdinit``, which starts ``/usr/bin/etcd``, sees a ``/usr/bin`` that holds the toolchain's
etcd. Needs root (we run as root) and util-linux ``unshare``. Everything lives in ``DIR/controlplane``.

Its parts: ``tools.cpstate`` (the state file, the pod's names and mount namespace), ``tools.kubelet`` (the projected
volumes and their poller), ``tools.podetcd`` (the pod's etcd); ``mesh-status`` is ``tools.meshstatus``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import gzip
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from meshcore.chart.effects import NAMESPACE
from tools import toolchain
from tools.certgen import run_certgen_jobs
from tools.cpstate import API_PORT, STATE, ControlPlane, Member, cilium_build, in_pod, launch
from tools.kubelet import (
    core,
    kubelet,
    pod_template,
    read_bundle,
    read_secrets,
    read_users,
    template_digest,
    volumes,
)
from tools.localstate import Mesh, alive, exe_name, free_ports, stop, stop_all
from tools.podetcd import etcd_config, etcdinit, start_etcd


@dataclass(frozen=True)
class Release:
    """What the deployed release left in one API server that the pod needs."""

    name: str
    cluster_id: int
    version: str
    address: str
    port: int
    secrets: dict[str, dict[str, bytes]]
    template: str
    """The digest of the clustermesh-apiserver Deployment's pod template (``tools.kubelet.template_digest``)."""
    bundle: bytes | None
    """The CA trust bundle that template mounts (``tools.kubelet.read_bundle``), or None."""
    users: dict[str, bytes] | None
    """The ``clustermesh-remote-users`` ConfigMap's files, when the release has it."""
    users_args: tuple[str, ...]
    """The Deployment's ``--cluster-users-*`` arguments of its ``apiserver`` container (``clustermesh``)."""


def _users_args(kubeconfig: Path, context: str) -> tuple[str, ...]:
    from kubernetes import client, config

    apps = client.AppsV1Api(config.new_client_from_config(str(kubeconfig), context=context))
    deployment = apps.read_namespaced_deployment("clustermesh-apiserver", NAMESPACE)
    return tuple(a for c in deployment.spec.template.spec.containers if c.name == "apiserver"
                 for a in c.args or [] if a.startswith("--cluster-users-"))


def _deployed_version(secrets: dict[str, dict[str, bytes]]) -> str | None:
    best: tuple[int, str] | None = None
    for name, data in secrets.items():
        if not name.startswith("sh.helm.release.v1.cilium.v") or "release" not in data:
            continue
        raw = base64.b64decode(data["release"])
        rel = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
        if rel["info"]["status"] == "deployed" and (best is None or rel["version"] > best[0]):
            best = (rel["version"], rel["chart"]["metadata"]["version"])
    return best[1] if best else None


def read_release(kubeconfig: Path, context: str) -> Release | None:
    """The cluster's release, or None when no release ``cilium`` is deployed there."""
    from kubernetes.client.exceptions import ApiException

    api = core(kubeconfig, context)
    secrets = read_secrets(api)
    version = _deployed_version(secrets)
    if version is None:
        return None
    try:
        cfg = api.read_namespaced_config_map("cilium-config", NAMESPACE).data or {}
        svc = api.read_namespaced_service("clustermesh-apiserver", NAMESPACE)
    except ApiException as err:
        if err.status == 404:
            return None
        raise
    from meshcore.chart.values import EXTENSIVE_PARAMETERS_ANNOTATION

    ingress = (svc.status.load_balancer.ingress or []) if svc.status and svc.status.load_balancer else []
    params = (svc.metadata.annotations or {}).get(EXTENSIVE_PARAMETERS_ANNOTATION)
    address = ingress[0].ip if ingress else (json.loads(params).get("Vip") if params else None)
    if not address:
        raise SystemExit(f"error: {context}: the clustermesh-apiserver Service has no address (no VIP requested, "
                         f"no load balancer ingress)")
    if not address.startswith("127."):
        raise SystemExit(f"error: {context}: mesh address {address} is not on loopback (127.0.0.0/8); the local "
                         f"control plane keeps all traffic on loopback: give the stack a VIP like 127.0.10.N")
    template = pod_template(kubeconfig, context)
    return Release(cfg.get("cluster-name", context), int(cfg.get("cluster-id", "0")), version, address,
                   int(svc.spec.ports[0].port), secrets, template_digest(template), read_bundle(api, template),
                   read_users(api), _users_args(kubeconfig, context))


# -- processes ------------------------------------------------------------------------------


def _kubeconfig(dir_: Path, name: str, root: Path) -> Path:
    """A kubeconfig whose current context is the cluster's (``--k8s-kubeconfig-path`` takes no context)."""
    doc = yaml.safe_load((dir_ / "kubeconfig").read_text(encoding="utf-8"))
    doc["current-context"] = name
    path = root / "varlib" / "cilium" / "kubeconfig"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    path.chmod(0o600)
    return path


def _common(m: Member) -> list[str]:
    return ["--cluster-name", m.name, "--cluster-id", str(m.cluster_id),
            "--kvstore-opt", "etcd.config=/var/lib/cilium/etcd-config.yaml", "--enable-gops=false"]


def _start_cilium(bin_dir: Path, m: Member, root: Path, users_args: tuple[str, ...]) -> None:
    binary = str(bin_dir / m.binary)
    if not alive(m.clustermesh_pid):
        m.clustermesh_pid = launch(in_pod(root, [
            binary, "clustermesh", *_common(m), *users_args, "--k8s-kubeconfig-path", "/var/lib/cilium/kubeconfig",
            "--health-port", str(m.health_ports[0])]), root / "logs" / "clustermesh.log")
    if not alive(m.kvstoremesh_pid):
        m.kvstoremesh_pid = launch(in_pod(root, [
            binary, "kvstoremesh", *_common(m), "--clustermesh-config", "/var/lib/cilium/clustermesh",
            "--health-port", str(m.health_ports[1]), "--api-serve-addr", f"{m.address}:{API_PORT}"]),
            root / "logs" / "kvstoremesh.log")


_Crds = dict[str, tuple[subprocess.Popen[bytes], Path]]


def _start_crds(bin_dir: Path, dir_: Path, wanted: dict[str, str], root: Path) -> _Crds:
    """Start registering Cilium's CRDs of each cluster's build, all clusters at once (about 20 s the first time).
    The pods start meanwhile, as the clustermesh-apiserver's pod rolls while the operator registers them:
    ``clustermesh`` waits for the CRDs it reads (``--crd-wait-timeout``)."""
    procs = {}
    for name, version in wanted.items():
        log = root / name / "logs" / "crds.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            procs[name] = (subprocess.Popen([str(bin_dir / f"cilium-crds-{version}"), "--kubeconfig",
                                             str(dir_ / "kubeconfig"), "--context", name],
                                            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL), log)
    return procs


def _wait_crds(procs: _Crds, wanted: dict[str, str], root: Path) -> None:
    for name, (proc, log) in procs.items():
        if proc.wait(timeout=300) != 0:
            raise SystemExit(f"error: {name}: registering Cilium's CRDs failed; see {log}")
        (root / name / f"crds-{wanted[name]}").touch()


def stop_member(m: Member) -> None:
    """Stop the pod's processes (etcd's data stays)."""
    stop_members([m])


def stop_members(members: list[Member]) -> None:
    """Stop the pods' processes together: the cilium ones first, then the etcds (an etcd stops at once when no
    client holds a stream open; one by one, each waited seconds for its peers' kvstoremesh)."""
    stop_all([(p, m.binary) for m in members for p in (m.kvstoremesh_pid, m.clustermesh_pid)])
    stop_all([(m.etcd_pid, "etcd") for m in members])


def connect(dir_: Path) -> ControlPlane:
    """Start the pods of the clusters with a release; stop those whose release is gone; replace those whose pod
    template changed (a Deployment controller's rollout: the kubelet poller calls this when it sees one). One
    ``connect`` at a time (a lock in ``DIR/controlplane``)."""
    dir_ = dir_.resolve()
    lock = dir_ / "controlplane" / "connect.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        return _connect(dir_)


def _connect(dir_: Path) -> ControlPlane:
    mesh = Mesh.load(dir_)
    bin_dir = toolchain.require() / "bin"
    cp = ControlPlane.load(dir_)
    kubeconfig = dir_ / "kubeconfig"
    run_certgen_jobs(dir_)  # a 1.19+ release's certificates: its certgen Job, run before the pod starts
    releases = {m.name: read_release(kubeconfig, m.name) for m in mesh.clusters}
    for name, rel in releases.items():
        if rel is None and name in cp.clusters:
            stop_member(cp.clusters.pop(name))
            cp.save()
    live = {n: r for n, r in releases.items() if r is not None}
    # The CRDs are the build's: a patch upgrade within a minor (the same build) registers nothing again.
    builds = {n: cilium_build(r.version) for n, r in live.items()}
    crds = {n: b for n, b in builds.items() if not (cp.root / n / f"crds-{b}").exists()}
    registering = _start_crds(bin_dir, dir_, crds, cp.root)
    # A new pod template (an upgrade's new binary, a trust bundle mounted or gone) replaces the pod: the same etcd
    # data, every process started again with the files of the new template. The pods replaced are stopped
    # together (as the releases of one `pulumi up` roll them together; one by one, each etcd waits seconds for
    # the kvstoremesh streams of the others).
    replaced = [m for n, rel in live.items() if (m := cp.clusters.get(n)) is not None
                and (m.version != rel.version or (m.template and m.template != rel.template))]
    stop_members(replaced)
    for m in replaced:
        rel = live[m.name]
        m.version, m.build = rel.version, cilium_build(rel.version)
        m.etcd_pid, m.clustermesh_pid, m.kvstoremesh_pid = 0, 0, 0
    for name, rel in live.items():
        root = cp.root / name
        m = cp.clusters.get(name)
        if m is None:
            m = Member(name, rel.cluster_id, rel.version, rel.address, rel.port, free_ports(2),
                       build=cilium_build(rel.version))
            cp.clusters[name] = m
        m.template = rel.template
        volumes(cp, name, rel.secrets, rel.bundle, rel.users)
        etcd_config(m, root)
        _kubeconfig(dir_, name, root)
        if not alive(m.etcd_pid):
            if not (root / "etcd-data" / "member").is_dir():
                etcdinit(bin_dir, m, root)
            start_etcd(bin_dir, m, root)
        _start_cilium(bin_dir, m, root, rel.users_args)
        cp.save()
    _wait_crds(registering, crds, cp.root)
    if not alive(cp.kubelet_pid):
        cp.kubelet_pid = launch([sys.executable, "-m", "tools.controlplane", "kubelet", "--dir", str(dir_)],
                                cp.root / "kubelet.log")
        cp.save()
    return cp


def down(dir_: Path) -> None:
    cp = ControlPlane.load(dir_)
    exe = exe_name(cp.kubelet_pid)
    if "python" in exe:
        stop(cp.kubelet_pid, exe)
    stop_members(list(cp.clusters.values()))
    with contextlib.suppress(FileNotFoundError):
        (cp.root / STATE).unlink()


def main(argv: list[str] | None = None) -> int:
    """``kubelet --dir DIR``: the poller ``connect`` starts (the commands are ``tools.localmesh``'s)."""
    parser = argparse.ArgumentParser(prog="python -m tools.controlplane", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("kubelet", help="keep the pods' Secret volumes in step (started by connect)").add_argument(
        "--dir", required=True, type=Path)
    args = parser.parse_args(argv)
    kubelet(args.dir, connect)
    return 0


if __name__ == "__main__":
    sys.exit(main())
