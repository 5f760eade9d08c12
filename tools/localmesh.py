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

``mark-ready`` plays the other missing controllers' part: every Deployment and DaemonSet reports
its pods ready (``--nodes N``: the DaemonSets' node count, 1 by default), as the Deployment and
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
import datetime
import json
import secrets
import shutil
import ssl
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from tools import controlplane, toolchain
from tools.localstate import STATE, Member, Mesh, alive, free_ports, spawn, stop
from tools.workspace import CHART, Workspace

READY_TIMEOUT = 90.0
SERVICE_CIDR = "10.96.0.0/16"


# -- certificates ---------------------------------------------------------------------------


def _x509_name(cn: str, org: str | None = None) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _write_key(path: Path, k: Any) -> None:
    """A private key as PKCS#1 PEM, readable by its owner only."""
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                     serialization.NoEncryption()))
    path.chmod(0o600)


def _certs(dir_: Path) -> None:
    """A CA, the API servers' serving certificate (127.0.0.1, localhost), an admin client
    certificate, the service-account key pair. Made once per DIR."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID

    pki = dir_ / "pki"
    if (pki / "admin.crt").is_file():
        return
    pki.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def key() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def write_key(name: str, k: rsa.RSAPrivateKey) -> None:
        _write_key(pki / name, k)

    name = _x509_name
    ca_key = key()
    ca = (x509.CertificateBuilder().subject_name(name("localmesh-ca")).issuer_name(name("localmesh-ca"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))

    def leaf(subject: x509.Name, usage: Any, sans: list[Any] | None = None) -> tuple[x509.Certificate, Any]:
        k = key()
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca.subject).public_key(k.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
             .not_valid_after(now + datetime.timedelta(days=30))
             .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return b.sign(ca_key, hashes.SHA256()), k

    import ipaddress

    serving, serving_key = leaf(name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH,
                                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                 x509.IPAddress(ipaddress.ip_address("10.96.0.1"))])
    admin, admin_key = leaf(name("localmesh-admin", "system:masters"), ExtendedKeyUsageOID.CLIENT_AUTH)
    for fname, cert in (("ca.crt", ca), ("serving.crt", serving), ("admin.crt", admin)):
        (pki / fname).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    write_key("ca.key", ca_key)
    write_key("serving.key", serving_key)
    write_key("admin.key", admin_key)
    write_key("sa.key", key())
    sa = serialization.load_pem_private_key((pki / "sa.key").read_bytes(), None)
    (pki / "sa.pub").write_bytes(sa.public_key().public_bytes(serialization.Encoding.PEM,
                                                               serialization.PublicFormat.SubjectPublicKeyInfo))


def new_mesh_ca(days: int = 1095) -> tuple[str, str]:
    """(certificate PEM, key PEM) of a new mesh CA as a stack brings it (``mesh:ca.certificate``,
    ``mesh:caPrivateKey``): RSA 2048 with a PKCS#1 key, CA:true, with a SubjectKeyId."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Cilium CA"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tke-cilium-mesh local")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption()).decode())


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
    _certs(dir_)
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


# -- stacks for the mesh ----------------------------------------------------------------------

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


def _dump_stack(doc: Any) -> str:
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
    text = SCHEMA_LINE + GENERATED + "\n" + _dump_stack(yaml.safe_load(ws.stack_file.read_text(encoding="utf-8")))
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


# -- the controllers that are not there ------------------------------------------------------


def mark_workloads_ready(dir_: Path, nodes: int = 1) -> list[str]:
    """Report every Deployment and DaemonSet of every API server ready, through their status subresource, as
    their controllers would once the kubelets ran the pods: a Deployment's ``spec.replicas`` (default 1) pods
    ready, available and up to date (condition ``Available``); a DaemonSet's pod on each of ``nodes`` nodes."""
    from kubernetes import client, config

    mesh = Mesh.load(dir_)
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    done = []
    for m in mesh.clusters:
        apps = client.AppsV1Api(config.new_client_from_config(str(mesh.path / "kubeconfig"), context=m.name))
        for d in apps.list_deployment_for_all_namespaces().items:
            n = d.spec.replicas if d.spec.replicas is not None else 1
            reason = {"Available": ("MinimumReplicasAvailable", "Deployment has minimum availability."),
                      "Progressing": ("NewReplicaSetAvailable", f'ReplicaSet "{d.metadata.name}" has successfully '
                                                                 "progressed.")}
            apps.patch_namespaced_deployment_status(d.metadata.name, d.metadata.namespace, {"status": {
                "observedGeneration": d.metadata.generation, "replicas": n, "updatedReplicas": n,
                "readyReplicas": n, "availableReplicas": n, "unavailableReplicas": None,
                "conditions": [{"type": t, "status": "True", "reason": r, "message": msg, "lastUpdateTime": now,
                                "lastTransitionTime": now} for t, (r, msg) in reason.items()]}})
            done.append(f"{m.name}: Deployment {d.metadata.namespace}/{d.metadata.name} {n}/{n} ready")
        for ds in apps.list_daemon_set_for_all_namespaces().items:
            apps.patch_namespaced_daemon_set_status(ds.metadata.name, ds.metadata.namespace, {"status": {
                "observedGeneration": ds.metadata.generation, "desiredNumberScheduled": nodes,
                "currentNumberScheduled": nodes, "updatedNumberScheduled": nodes, "numberReady": nodes,
                "numberAvailable": nodes, "numberMisscheduled": 0, "numberUnavailable": None}})
            done.append(f"{m.name}: DaemonSet {ds.metadata.namespace}/{ds.metadata.name} {nodes}/{nodes} ready")
    return done


def mark_ready(dir_: Path, nodes: int = 1) -> list[str]:
    """What the missing controllers would have done by now: the VIPs assigned (``assign_vips``) and every
    Deployment and DaemonSet ready (``mark_workloads_ready``)."""
    return assign_vips(dir_) + mark_workloads_ready(dir_, nodes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.localmesh", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start etcd and one API server per cluster; write DIR/kubeconfig")
    p_up.add_argument("--clusters", required=True, help="comma-separated cluster names (the kubeconfig contexts)")
    helps = {"down": "stop everything (the control plane too)", "status": "what runs",
             "connect": "after `pulumi up`: run each release's clustermesh-apiserver pod (tools.controlplane)",
             "mesh-status": "per cluster, each remote cluster its kvstoremesh knows: connected, synced, why not",
             "stop": "stop one API server",
             "start": "start one API server again", "assign-vips": "give each mesh Service its requested VIP",
             "mark-ready": "assign the VIPs and report every Deployment and DaemonSet ready",
             "stack": "write a ready stack file for the mesh (its CA key as a secret) and DIR/env"}
    for name in ("up", *helps):
        p = p_up if name == "up" else sub.add_parser(name, help=helps[name])
        p.add_argument("--dir", required=True, type=Path)
        if name in ("stop", "start"):
            p.add_argument("--cluster", required=True)
        if name == "mesh-status":
            p.add_argument("--json", action="store_true")
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
        print(f"control plane of {len(cp.clusters)} clusters started in {time.monotonic() - started:.1f} s: "
              f"{', '.join(f'{n} ({m.address})' for n, m in sorted(cp.clusters.items()))}")
    elif args.command == "mesh-status":
        remotes = controlplane.mesh_status(args.dir)
        print(json.dumps(remotes, indent=2) if args.json else "\n".join(controlplane.status_lines(remotes)))
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


def assign_vips(dir_: Path) -> list[str]:
    """Do what TKE's load balancer controller does for the mesh's Services: give every
    LoadBalancer Service that requests a VIP (service.extensiveParameters {"Vip": ...}) that
    address in ``status.loadBalancer.ingress``."""
    from kubernetes import client, config

    from meshcore.chart.values import EXTENSIVE_PARAMETERS_ANNOTATION

    mesh = Mesh.load(dir_)
    done = []
    for m in mesh.clusters:
        api = client.CoreV1Api(config.new_client_from_config(str(mesh.path / "kubeconfig"), context=m.name))
        for svc in api.list_service_for_all_namespaces().items:
            if svc.spec.type != "LoadBalancer":
                continue
            params = (svc.metadata.annotations or {}).get(EXTENSIVE_PARAMETERS_ANNOTATION)
            try:
                vip = json.loads(params)["Vip"] if params else None
            except (ValueError, KeyError, TypeError):
                vip = None
            if not vip:
                continue
            api.patch_namespaced_service_status(svc.metadata.name, svc.metadata.namespace,
                                                {"status": {"loadBalancer": {"ingress": [{"ip": vip}]}}})
            done.append(f"{m.name}: {svc.metadata.namespace}/{svc.metadata.name} -> {vip}")
    return done


if __name__ == "__main__":
    sys.exit(main())
