"""The kubelet's part for a local mesh's clustermesh-apiserver pods: their Secrets as projected volumes (a
timestamped directory, an atomic ``..data`` symlink swap, one symlink per key, as kubelet's AtomicWriter writes
them), kept in step with the API servers by ``kubelet``, the poller ``tools.controlplane``'s ``kubelet``
subcommand runs. The pod's spec is the clustermesh-apiserver Deployment's pod template (``pod_template``): while it
mounts the CA trust bundle (``tls.caBundle``), the pod's ca.crt files are the bundle's; when it changes, the poller
has the pod replaced, as a Deployment controller would."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from meshcore.chart.effects import NAMESPACE
from tools.cpstate import ADMIN_CERT, KVSTOREMESH, REMOTE_CERT, SERVER_CERT, USERS, ControlPlane

SYNC_PERIOD = 1.0


def core(kubeconfig: Path, context: str) -> Any:
    from kubernetes import client, config

    return client.CoreV1Api(config.new_client_from_config(str(kubeconfig), context=context))


DEPLOYMENT = "clustermesh-apiserver"


def pod_template(kubeconfig: Path, context: str) -> dict[str, Any] | None:
    """The clustermesh-apiserver Deployment's pod template (None: no Deployment)."""
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    api = config.new_client_from_config(str(kubeconfig), context=context)
    try:
        deployment = client.AppsV1Api(api).read_namespaced_deployment(DEPLOYMENT, NAMESPACE)
    except ApiException as err:
        if err.status == 404:
            return None
        raise
    template: dict[str, Any] = api.sanitize_for_serialization(deployment.spec.template)
    return template


def template_digest(template: dict[str, Any] | None) -> str:
    """What identifies a pod template ("" for none): a change of it replaces the pod."""
    if template is None:
        return ""
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()


def read_bundle(api: Any, template: dict[str, Any] | None) -> bytes | None:
    """The CA trust bundle the pod template mounts (a ConfigMap source of its projected volumes), or None."""
    for volume in (template or {}).get("spec", {}).get("volumes", []):
        for source in volume.get("projected", {}).get("sources", []):
            ref = source.get("configMap")
            if ref:
                data = api.read_namespaced_config_map(ref["name"], NAMESPACE).data or {}
                return str(data[ref["items"][0]["key"]]).encode()
    return None


def _decode(data: dict[str, str] | None) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (data or {}).items()}


def read_secrets(api: Any) -> dict[str, dict[str, bytes]]:
    return {s.metadata.name: _decode(s.data) for s in api.list_namespaced_secret(NAMESPACE).items}


def read_users(api: Any) -> dict[str, bytes] | None:
    """The ``clustermesh-remote-users`` ConfigMap's files (the chart renders it with authMode other than legacy)."""
    from kubernetes.client.exceptions import ApiException

    try:
        cm = api.read_namespaced_config_map(USERS, NAMESPACE)
    except ApiException as err:
        if err.status == 404:
            return None
        raise
    return {k: v.encode() for k, v in (cm.data or {}).items()}


def project(volume: Path, files: dict[str, bytes]) -> bool:
    """Write ``files`` into ``volume`` as kubelet's AtomicWriter does; False when nothing changed."""
    volume.mkdir(parents=True, exist_ok=True)
    data = volume / "..data"
    if data.is_dir():
        current = {p.name: p.read_bytes() for p in data.iterdir() if p.is_file()}
        if current == files:
            return False
    stamp = volume / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.monotonic_ns()}"
    stamp.mkdir()
    for name, content in files.items():
        (stamp / name).write_bytes(content)
        (stamp / name).chmod(0o600)
    old = os.readlink(data) if data.is_symlink() else None
    tmp = volume / "..data_tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(stamp.name)
    tmp.replace(data)
    for name in files:
        link = volume / name
        if not link.is_symlink():
            link.symlink_to(f"..data/{name}")
    for link in volume.iterdir():
        if not link.name.startswith("..") and link.name not in files:
            link.unlink()
    if old:
        shutil.rmtree(volume / old, ignore_errors=True)
    return True


def _tls(secret: dict[str, bytes]) -> dict[str, bytes]:
    return {k: secret[k] for k in ("ca.crt", "tls.crt", "tls.key") if k in secret}


def volumes(cp: ControlPlane, name: str, secrets: dict[str, dict[str, bytes]],
            bundle: bytes | None = None, users: dict[str, bytes] | None = None) -> list[str]:
    """Project the pod's Secret volumes of cluster ``name`` (and with ``users``, the ``clustermesh-remote-users``
    ConfigMap at ``/var/lib/cilium/etcd-config``, which ``clustermesh`` watches); the names of the volumes that
    changed. A Secret that is gone leaves its volume as it was (the pod would not start without it). ``bundle``: the
    CA trust bundle the pod mounts (``read_bundle``), every ca.crt of the pod then."""
    root = cp.root / name
    changed = []
    ca = {} if bundle is None else {"ca.crt": bundle}
    wanted: dict[Path, dict[str, bytes] | None] = {
        root / "etcd-secrets": {**_tls(secrets[SERVER_CERT]), **ca} if SERVER_CERT in secrets else None,
        root / "varlib" / "cilium" / "etcd-secrets": {**_tls(secrets[ADMIN_CERT]), **ca} if ADMIN_CERT in secrets
        else None,
    }
    if REMOTE_CERT in secrets:
        remote = secrets[REMOTE_CERT]
        # The chart's kvstoremesh volume: the peers' configs and the remote client certificate. The chart mounts
        # cilium-kvstoremesh with `optional: true` (../shared/docs/cilium-mesh.md §2): without it (a release whose
        # values list no peer) the volume holds the certificate alone, and kvstoremesh runs with no peer until the
        # Secret appears (a peer list added later reloads it, no restart).
        wanted[root / "varlib" / "cilium" / "clustermesh"] = {
            **secrets.get(KVSTOREMESH, {}), "common-etcd-client.crt": remote.get("tls.crt", b""),
            "common-etcd-client.key": remote.get("tls.key", b""),
            "common-etcd-client-ca.crt": remote.get("ca.crt", b"") if bundle is None else bundle}
    wanted[root / "varlib" / "cilium" / "etcd-config"] = users
    for volume, files in wanted.items():
        if files is not None and project(volume, files):
            changed.append(volume.name)
    return changed


def kubelet(dir_: Path, replace: Callable[[Path], Any]) -> None:
    """Keep every running cluster's volumes in step with its Secrets (the ``kubelet`` subcommand); when a
    cluster's pod template is not its pod's any more, ``replace(dir_)`` (``tools.controlplane.connect``)."""
    kubeconfig = dir_.resolve() / "kubeconfig"
    stop = False

    def on_term(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    while not stop:
        cp = ControlPlane.load(dir_)
        for name, m in list(cp.clusters.items()):
            try:
                template = pod_template(kubeconfig, name)
                if m.template and template is not None and template_digest(template) != m.template:
                    print(f"{time.strftime('%H:%M:%S')} {name}: the pod template changed: replacing the pod",
                          flush=True)
                    replace(dir_)
                    break
                api = core(kubeconfig, name)
                changed = volumes(cp, name, read_secrets(api), read_bundle(api, template), read_users(api))
            except (Exception, SystemExit) as err:  # an API server down for a while: try again next period
                print(f"{time.strftime('%H:%M:%S')} {name}: {err}", flush=True)
                continue
            if changed:
                print(f"{time.strftime('%H:%M:%S')} {name}: updated {', '.join(changed)}", flush=True)
        time.sleep(SYNC_PERIOD)
