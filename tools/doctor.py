"""Mesh doctor: compare the live clusters with the stack, and say exactly what is wrong.

    python -m tools.doctor STACK_FILE [--kubeconfig PATH] [--outputs FILE] [--json]

Reads the stack file as the offline plan does (the same ``error:`` lines and exit 2 for an
invalid one), computes every cluster's desired state with the program's own core
(``meshcore.doctor.records.desired``: the values its releases receive), reads each cluster through the
program's kubeconfig resolution and contexts (``meshcore.mesh.kubeconfig``; ``--kubeconfig`` overrides
it for this run) with the official Kubernetes client, and compares (``meshcore.doctor.checks.examine``).
``--outputs FILE`` (``pulumi stack output --json > FILE``) adds the deployed CA
(``caCertificatePem``) and the addresses of CLBs the stack creates.

Prints one line per finding, most serious first, then a table (cluster x check) and a summary;
``--json`` prints the same as one JSON document. Exit 0: everything matches; 1: something
differs, is pending or expires within 30 days; 2: the stack file (or the kubeconfig, or the
outputs file) cannot be used.

Never printed, logged or written: the CA key (``cilium-ca``'s ``ca.key`` and the TLS Secrets'
``tls.key`` are never decoded; the Helm release's values, which hold the key, are dropped as soon
as the release is read), kubeconfig credentials, the peer Secrets' TLS files.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import concurrent.futures
import dataclasses
import datetime
import gzip
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from components.cilium import RELEASE_NAME
from meshcore.chart import effects
from meshcore.chart.effects import NAMESPACE
from meshcore.config.clusters import NS
from meshcore.config.model import Settings, decode_config
from meshcore.doctor import checks, records, report
from meshcore.errors import MeshConfigError
from meshcore.mesh import chartsource as charts
from meshcore.mesh import kubeconfig as kc
from tools import ROOT, meshstatus
from tools.plan import StackFileError, read_stack_file

REQUEST_TIMEOUT = (5.0, 20.0)
"""(connect, read) seconds per API request: an unreachable cluster is reported, not waited for."""
WORKERS = 8
"""Clusters read at once."""


class UsageError(Exception):
    """The doctor cannot run: ``lines`` are the ``error:`` lines (exit 2)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))


# -- the stack ------------------------------------------------------------------------------


def load_settings(stack_file: str) -> Settings:
    """The stack's validated settings, or ``UsageError`` with the lines ``tools.plan`` prints."""
    try:
        _, config, secret_keys = read_stack_file(stack_file)
    except StackFileError as err:
        raise UsageError([f"error: {err}"]) from None
    try:
        settings, _ = charts.validated_settings(
            decode_config(config), [k.split(":", 1)[1] for k in secret_keys if k.startswith(f"{NS}:")], ROOT)
    except MeshConfigError as err:
        raise UsageError(err.lines()) from None
    return settings


def load_outputs(path: str | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except OSError as err:
        raise UsageError([f"error: --outputs {path}: {err.strerror}; write it with "
                          "`pulumi stack output --json > FILE`"]) from None
    except ValueError as err:
        raise UsageError([f"error: --outputs {path}: not JSON ({err}); write it with "
                          "`pulumi stack output --json > FILE`"]) from None
    if not isinstance(doc, dict):
        raise UsageError([f"error: --outputs {path}: expected the JSON object of `pulumi stack output --json`"])
    return doc


def cert_facts(pem: bytes) -> dict[str, Any]:
    """The public facts of the first certificate of a PEM text (``meshcore.doctor.records``' CertFacts)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return {"error": "not a PEM certificate"}
    facts: dict[str, Any] = {
        "sha256": cert.fingerprint(hashes.SHA256()).hex(":").upper(),
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "ski": None, "aki": None, "ips": [], "dns": [],
    }
    for ext in cert.extensions:
        v = ext.value
        if isinstance(v, x509.SubjectKeyIdentifier):
            facts["ski"] = v.digest.hex()
        elif isinstance(v, x509.AuthorityKeyIdentifier) and v.key_identifier is not None:
            facts["aki"] = v.key_identifier.hex()
        elif isinstance(v, x509.SubjectAlternativeName):
            facts["ips"] = [str(ip) for ip in v.get_values_for_type(x509.IPAddress)]
            facts["dns"] = list(v.get_values_for_type(x509.DNSName))
    return facts


def ca_reference(settings: Settings, outputs: Mapping[str, Any] | None) -> tuple[str | None, str]:
    """The fingerprint of the CA the stack deploys, when known, and where it comes from: the CA the
    stack brings (``mesh:ca.certificate``), else the stack output ``caCertificatePem``."""
    if settings.ca.provided_certificate is not None:
        facts = cert_facts(settings.ca.provided_certificate.encode())
        return facts.get("sha256"), "the stack's CA (mesh:ca.certificate)"
    pem = (outputs or {}).get("caCertificatePem")
    if isinstance(pem, str) and pem:
        facts = cert_facts(pem.encode())
        if "error" in facts:
            raise UsageError([f"error: --outputs: caCertificatePem is {facts['error']}"])
        return facts["sha256"], "the stack output caCertificatePem"
    return None, ""


# -- the clusters ---------------------------------------------------------------------------


def kubeconfig_source(settings: Settings, override: str | None) -> kc.KubeconfigSource:
    """``--kubeconfig`` for this run, else the program's own resolution (``$MESH_KUBECONFIG_FILE``,
    ``mesh:kubeconfig``, ``$KUBECONFIG``, ``~/.kube/config``)."""
    if override:
        return kc.KubeconfigSource((os.path.expanduser(override),), "--kubeconfig", "from --kubeconfig",
                                   "pass another --kubeconfig, or leave it out to use the stack's")
    return kc.kubeconfig_files(settings.kubeconfig, os.environ)


def contexts(settings: Settings) -> list[tuple[str, str, str]]:
    """(cluster, config key, context) of every cluster: its context, or for a cluster the program
    reaches through the TKE API (or creates), a context named after it, if the kubeconfig has one."""
    return [(c.name, f"{c.key}.context", c.context or c.name) for c in settings.clusters]


def _decode_release(secret_data: Mapping[str, str]) -> dict[str, Any]:
    """One Helm 3 release record: Secret data ``release`` is base64 (the API's encoding of Secret
    data) of base64 (Helm's) of gzip of JSON."""
    raw = base64.b64decode(base64.b64decode(secret_data["release"]))
    record: dict[str, Any] = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    return record


def _manifest_objects(manifest: str) -> list[dict[str, str]]:
    """(kind, name, type) of every object of a rendered manifest, and nothing else of it."""
    out = []
    for doc in yaml.safe_load_all(manifest or ""):
        if isinstance(doc, dict):
            meta: dict[str, Any] = doc["metadata"] if isinstance(doc.get("metadata"), dict) else {}
            out.append({"kind": str(doc.get("kind")), "name": str(meta.get("name")), "type": str(doc.get("type", ""))})
    return out


def _status(err: Exception) -> int | None:
    return getattr(err, "status", None)


def _b64(data: Mapping[str, str], key: str) -> bytes | None:
    """A Secret's value, decoded (None: no such key; empty: not base64)."""
    value = (data or {}).get(key)
    if value is None:
        return None
    try:
        return base64.b64decode(value)
    except (binascii.Error, ValueError):
        return b""


def _helm_releases(core: Any, namespace: str, release: str) -> list[dict[str, Any]]:
    """The release's Helm records (revision, status); the deployed one read (chart, version, what it
    rendered), never its values (they hold the CA key)."""
    t = REQUEST_TIMEOUT
    secrets = core.list_namespaced_secret(namespace, label_selector=f"owner=helm,name={release}",
                                          _request_timeout=t).items
    releases = []
    for s in secrets:
        labels = s.metadata.labels or {}
        try:
            revision = int(labels.get("version", "0"))
        except ValueError:
            revision = 0
        releases.append({"revision": revision, "status": labels.get("status"), "_secret": s})
    live = records.deployed_release(releases)
    for r in releases:
        s = r.pop("_secret")
        if r is live:
            try:
                body = _decode_release(s.data or {})
            except (KeyError, ValueError, binascii.Error, OSError, EOFError) as err:  # gzip/JSON/base64
                r["unreadable"] = f"Secret {s.metadata.name} does not hold a Helm release record ({type(err).__name__})"
                continue
            body.pop("config", None)  # the release's values: they hold the CA key
            meta = (body.get("chart") or {}).get("metadata") or {}
            r.update(chart=meta.get("name"), version=meta.get("version"), status=(body.get("info") or {}).get("status"),
                     rendered=_manifest_objects(body.pop("manifest", "")))
    return releases


def _mesh_secrets(read: Callable[..., Any], core_read: Callable[..., Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The peer entries of the mesh Secrets, and the facts of the TLS certificates (never a key);
    ``read(core_read, name)`` reads one Secret (None when it is not there)."""
    secrets: dict[str, Any] = {}
    for name in records.PEER_SECRETS:
        s = read(core_read, name)
        # Only the peer entries: a key that is not a cluster name is a peer's TLS file (a key).
        secrets[name] = None if s is None else {
            k: (_b64(s.data, k) or b"").decode("utf-8", "replace") for k in (s.data or {}) if checks.is_peer_key(k)}
    tls: dict[str, Any] = {}
    for name in records.MESH_TLS_SECRETS:
        s = read(core_read, name)
        if s is not None:
            crt, bundled = _b64(s.data, "tls.crt"), _b64(s.data, "ca.crt")  # never tls.key
            tls[name] = {"crt": cert_facts(crt) if crt else {"error": "no tls.crt"},
                         "ca": cert_facts(bundled) if bundled else None}
    return secrets, tls


def observe(api_client: Any, namespace: str, release: str) -> records.Observation:
    """What one cluster holds (``meshcore.doctor.records.Observation``). Raises on a failed request
    but a 404 (an object that is not there)."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    apps = client.AppsV1Api(api_client)
    t = REQUEST_TIMEOUT

    def read(fn: Callable[..., Any], name: str) -> Any:
        try:
            return fn(name, namespace, _request_timeout=t)
        except client.ApiException as err:
            if err.status == 404:
                return None
            raise

    b64 = _b64

    releases = _helm_releases(core, namespace, release)
    cm = read(core.read_namespaced_config_map, effects.CONFIG_MAP)
    ca = read(core.read_namespaced_secret, effects.CA_SECRET)
    crt = b64(ca.data, "ca.crt") if ca is not None else None  # only ca.crt: ca.key is never decoded
    svc = read(core.read_namespaced_service, effects.SERVICE)
    service = None
    if svc is not None:
        lb = (svc.status.load_balancer if svc.status else None)
        ingress = [i.ip or i.hostname for i in (lb.ingress or [])] if lb is not None else []
        service = {"type": svc.spec.type, "annotations": dict(svc.metadata.annotations or {}),
                   "ingress": [i for i in ingress if i]}
    secrets, tls = _mesh_secrets(read, core.read_namespaced_secret)
    ds = read(apps.read_namespaced_daemon_set, "cilium")
    dep = read(apps.read_namespaced_deployment, effects.SERVICE)
    workloads = {
        "DaemonSet/cilium": None if ds is None else {
            "desired": (ds.status.desired_number_scheduled if ds.status else 0) or 0,
            "ready": (ds.status.number_ready if ds.status else 0) or 0},
        f"Deployment/{effects.SERVICE}": None if dep is None else {
            "desired": dep.spec.replicas if dep.spec and dep.spec.replicas is not None else 1,
            "ready": (dep.status.ready_replicas if dep.status else 0) or 0},
    }
    return records.Observation(
        reachable=True, releases=releases,
        config=dict(cm.data or {}) if cm is not None else None,
        ca=None if ca is None else (cert_facts(crt) if crt else {"error": "no ca.crt"}),
        service=service, secrets=secrets, tls=tls, workloads=workloads)


def _describe_failure(err: Exception, server: str) -> str:
    status = _status(err)
    if status is not None:
        return f"{server} answered {status} {getattr(err, 'reason', '')}".rstrip()
    reason = getattr(err, "reason", None) or err
    text = str(reason)
    for marker in ("Connection refused", "timed out", "Name or service not known", "certificate verify failed"):
        if marker in text:
            return f"cannot reach {server}: {marker.lower()}"
    return f"cannot reach {server}: {text.splitlines()[0][:200] if text else type(err).__name__}"


def observe_cluster(kubeconfig_text: str, namespace: str, release: str) -> records.Observation:
    """One cluster's observation through its minimal kubeconfig; an API server that does not
    answer is an observation (``reachable: False``), not an exception."""
    from kubernetes import client, config

    doc = yaml.safe_load(kubeconfig_text)
    server = str(((doc.get("clusters") or [{}])[0].get("cluster") or {}).get("server", "?"))
    # The client writes a kubeconfig's inline certificates and keys to files of its own (mode 0600,
    # cached by content for the whole process, removed when it exits): urllib3 takes only paths.
    cfg = client.Configuration()
    try:
        config.load_kube_config_from_dict(doc, client_configuration=cfg, persist_config=False)
    except Exception as err:
        return records.Observation(False, f"its kubeconfig context cannot be used: {type(err).__name__}")
    cfg.retries = 1  # read when the client builds its connection pool: one retry, not urllib3's three
    try:
        with client.ApiClient(cfg) as api_client:
            return observe(api_client, namespace, release)
    except Exception as err:
        return records.Observation(False, _describe_failure(err, server))


def observe_fleet(settings: Settings, source: kc.KubeconfigSource, namespace: str,
                  release: str) -> dict[str, records.Observation]:
    read = kc.minimal_kubeconfigs(source, contexts(settings))
    if read.issues and not read.by_cluster:  # the file itself: nothing can be checked
        raise UsageError([f"error: {i.line()}" for i in read.issues])
    observed: dict[str, records.Observation] = {}
    for c in settings.clusters:
        problems = read.by_cluster.get(c.name)
        if problems and c.kubeconfig_from == "context":
            observed[c.name] = records.Observation(False, "; ".join(p.line() for p in problems))
        elif problems:
            how = "the stack creates it" if c.create is not None else f"kubeconfigFrom: {c.kubeconfig_from}"
            observed[c.name] = records.Observation(False, (
                f"the program reaches it through the TKE API ({how}); the doctor reads it through a kubeconfig "
                f"context named {c.name}, which is missing or incomplete in the kubeconfig {source.describe()}: merge "
                "the cluster's kubeconfig under that name, or pass --kubeconfig"))
    todo = {name: text for name, text in read.configs.items() if name not in observed}
    with concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = {name: pool.submit(observe_cluster, text, namespace, release) for name, text in todo.items()}
        for name, fut in futures.items():
            observed[name] = fut.result()
    return observed


# -- output ---------------------------------------------------------------------------------


def render_text(stack_file: str, want: records.Desired, findings: list[records.Finding]) -> str:
    lines = [f"mesh doctor: {stack_file}: {len(want.clusters)} cluster(s), Helm release "
             f"{want.namespace}/{want.release}", ""]
    shown = [f for f in findings if f.severity != records.OK]
    width = max([12] + [len(c.name) for c in want.clusters])
    lines += [f.line(width) for f in shown] or ["no finding: every check matches the stack"]
    lines.append("")
    grid = report.table(want, findings)
    width = max([len("cluster")] + [len(c.name) for c in want.clusters])
    cols = ["cluster".ljust(width)] + list(checks.CHECKS)
    lines.append("  ".join(cols))
    for name, row in grid.items():
        cells = [name.ljust(width)] + [_cell(row[c]).ljust(len(c)) for c in checks.CHECKS]
        lines.append("  ".join(cells).rstrip())
    lines.append("")
    lines.append(_summary(findings))
    return "\n".join(lines) + "\n"


def _cell(severity: str) -> str:
    return severity.upper() if severity == records.ERROR else severity


def _counts(findings: list[records.Finding]) -> dict[str, int]:
    return {s: sum(1 for f in findings if f.severity == s) for s in records.SEVERITIES}


def _summary(findings: list[records.Finding]) -> str:
    n = _counts(findings)
    parts = f"{n[records.ERROR]} error(s), {n[records.PENDING]} pending, {n[records.WARNING]} warning(s), " \
            f"{n[records.INFO]} info"
    if report.exit_code(findings):
        return f"{parts}: the fleet differs from the stack (exit 1)"
    return f"{parts}: the fleet matches the stack (exit 0)"


def render_json(stack_file: str, want: records.Desired, findings: list[records.Finding]) -> str:
    doc = {
        "stack": stack_file,
        "namespace": want.namespace,
        "release": want.release,
        "exitCode": report.exit_code(findings),
        "counts": _counts(findings),
        "findings": [f.as_dict() for f in findings],
        "table": report.table(want, findings),
    }
    return json.dumps(doc, indent=2) + "\n"


def with_mesh_status(observed: Mapping[str, records.Observation],
                     local_mesh: str) -> dict[str, records.Observation]:
    """Each reachable cluster's observation with what its kvstoremesh reports in the local mesh ``local_mesh``
    (``tools.meshstatus.mesh_status``, the same as ``python -m tools.localmesh mesh-status --json``)."""
    status = meshstatus.mesh_status(Path(local_mesh))
    if not status:
        raise UsageError([f"error: --local-mesh {local_mesh}: no control plane runs there; start it with "
                          f"python -m tools.localmesh connect --dir {local_mesh}"])
    absent: dict[str, Any] = {"error": f"no control plane runs for it in {local_mesh} (python -m tools.localmesh "
                                       f"connect --dir {local_mesh})", "reason": None, "remotes": {}}
    return {name: dataclasses.replace(o, mesh_status=status.get(name, absent)) if o.reachable else o
            for name, o in observed.items()}


def run(stack_file: str, kubeconfig: str | None, outputs_file: str | None,
        local_mesh: str | None = None) -> tuple[records.Desired, list[records.Finding]]:
    settings = load_settings(stack_file)
    outputs = load_outputs(outputs_file)
    fingerprint, source = ca_reference(settings, outputs)
    want = records.desired(settings, namespace=NAMESPACE, release=RELEASE_NAME, outputs=outputs,
                          ca_fingerprint=fingerprint, ca_source=source)
    observed = observe_fleet(settings, kubeconfig_source(settings, kubeconfig), NAMESPACE, RELEASE_NAME)
    if local_mesh is not None:
        observed = with_mesh_status(observed, local_mesh)
    return want, checks.examine(want, observed, datetime.datetime.now(datetime.UTC))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.doctor", description=__doc__.split("\n\n")[0])
    parser.add_argument("stack_file", help="a stack file, e.g. stacks/Pulumi.dev.yaml")
    parser.add_argument("--kubeconfig", help="the kubeconfig to read the clusters with, for this run (default: the "
                                             "program's: $MESH_KUBECONFIG_FILE, mesh:kubeconfig, $KUBECONFIG, "
                                             "~/.kube/config)")
    parser.add_argument("--outputs", help="the stack outputs (`pulumi stack output --json > FILE`): the deployed CA "
                                          "and created CLBs' addresses")
    parser.add_argument("--local-mesh", metavar="DIR", help="a local mesh (python -m tools.localmesh) whose control "
                                                            "plane runs: the connected check reads each cluster's "
                                                            "kvstoremesh status there")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    args = parser.parse_args(argv)
    try:
        want, findings = run(args.stack_file, args.kubeconfig, args.outputs, args.local_mesh)
    except UsageError as err:
        print("\n".join(err.lines), file=sys.stderr)
        return 2
    render = render_json if args.json else render_text
    sys.stdout.write(render(args.stack_file, want, findings))
    return report.exit_code(findings)


if __name__ == "__main__":
    sys.exit(main())
