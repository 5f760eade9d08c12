"""The Job controller and certgen for a local mesh, as ``tools.markready`` stands in for the other controllers: each
certgen Job a release rendered (the chart's ``cronJob`` TLS method, chart 1.19+) runs once, here, in Python.

What it does is what ``quay.io/cilium/certgen`` does with the arguments the chart passes
(``templates/clustermesh-apiserver/tls-cronjob/_job-spec.tpl``): ``--ca-reuse-secret --ca-secret-name=cilium-ca``
loads the CA from that Secret (``--ca-generate=true``: when it is missing, a new CA named ``--ca-common-name`` is
stored there); then each entry of ``CILIUM_CERTGEN_CONFIG`` (``certs: [{name, namespace, commonName, hosts, usage,
validity}]``) becomes a Secret of type ``kubernetes.io/tls`` (``ca.crt``, ``tls.crt``, ``tls.key``) signed by the CA,
created or replaced; ``hosts`` are IP or DNS SANs. Then the Job is reported complete through its status, as the
Job controller would once its pod succeeded. certgen itself cannot be built here (``github.com/cilium/certgen`` is
refused by the module proxy, docs/clustermesh-apiserver.md); its key type here is ECDSA P-256 (not verified against
certgen's). Run by ``tools.localmesh mark-ready`` and ``connect``."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import re
from pathlib import Path
from typing import Any

import yaml

from meshcore.chart.effects import NAMESPACE
from tools.localstate import Mesh

CERTGEN = "/usr/bin/cilium-certgen"
_USAGES = {"signing": "digital_signature", "digital signature": "digital_signature",
           "key encipherment": "key_encipherment"}


def _args(container: Any) -> dict[str, str]:
    out = {}
    for arg in container.args or []:
        key, _, value = arg.removeprefix("--").partition("=")
        out[key] = value if value else "true"
    return out


def _key_pem(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))


def _issue(ca_cert: Any, ca_key: Any, spec: dict[str, Any], now: datetime.datetime) -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    hours = re.fullmatch(r"(\d+)h", str(spec["validity"]))
    if not hours:
        raise SystemExit(f"error: certgen: {spec['name']}: validity {spec['validity']!r} is not <hours>h")
    key = ec.generate_private_key(ec.SECP256R1())
    usage = spec.get("usage") or []
    flags = {v: False for v in ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                                "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")}
    flags.update({_USAGES[u]: True for u in usage if u in _USAGES})
    ekus = [oid for u, oid in (("server auth", ExtendedKeyUsageOID.SERVER_AUTH),
                               ("client auth", ExtendedKeyUsageOID.CLIENT_AUTH)) if u in usage]
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, spec["commonName"])]))
               .issuer_name(ca_cert.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(hours=int(hours[1])))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(**flags), critical=True))
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
    sans: list[x509.GeneralName] = []
    for host in spec.get("hosts") or []:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _new_ca(common_name: str, now: datetime.datetime) -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=3 * 365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _secret(name: str, namespace: str, data: dict[str, bytes], kind: str = "kubernetes.io/tls") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace}, "type": kind,
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()}}


def _put(api: Any, body: dict[str, Any]) -> None:
    from kubernetes.client.exceptions import ApiException

    meta = body["metadata"]
    try:
        api.create_namespaced_secret(meta["namespace"], body)
    except ApiException as err:
        if err.status != 409:
            raise
        api.replace_namespaced_secret(meta["name"], meta["namespace"], body)


def run_job(api: Any, job: Any, container: Any, now: datetime.datetime) -> list[str]:
    """Do what certgen does in ``job``'s ``container``; the Secrets it wrote."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from kubernetes.client.exceptions import ApiException

    args = _args(container)
    env = {e.name: e.value for e in container.env or []}
    ca_ns = args.get("ca-secret-namespace", job.metadata.namespace)
    ca_name = args.get("ca-secret-name", "cilium-ca")
    try:
        data = api.read_namespaced_secret(ca_name, ca_ns).data or {}
        ca_pem, key_pem = (base64.b64decode(data[k]) for k in ("ca.crt", "ca.key"))
    except ApiException as err:
        if err.status != 404 or args.get("ca-generate") != "true":
            raise
        ca_pem, key_pem = _new_ca(args.get("ca-common-name", "Cilium CA"), now)
        _put(api, _secret(ca_name, ca_ns, {"ca.crt": ca_pem, "ca.key": key_pem}, "Opaque"))
    ca_cert = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key(key_pem, password=None)
    written = []
    for spec in (yaml.safe_load(env.get("CILIUM_CERTGEN_CONFIG") or "{}") or {}).get("certs") or []:
        crt, key = _issue(ca_cert, ca_key, spec, now)
        namespace = spec.get("namespace") or job.metadata.namespace
        _put(api, _secret(spec["name"], namespace, {"ca.crt": ca_pem, "tls.crt": crt, "tls.key": key}))
        written.append(f"{namespace}/{spec['name']} (CN={spec['commonName']})")
    return written


def _complete(job: Any) -> bool:
    return any(c.type == "Complete" and c.status == "True" for c in (job.status.conditions or []))


def run_certgen_jobs(dir_: Path) -> list[str]:
    """Run every certgen Job of every API server not yet complete, and report it complete."""
    from kubernetes import client, config

    mesh = Mesh.load(dir_)
    done = []
    for m in mesh.clusters:
        api_client = config.new_client_from_config(str(mesh.path / "kubeconfig"), context=m.name)
        core, batch = client.CoreV1Api(api_client), client.BatchV1Api(api_client)
        for job in batch.list_namespaced_job(NAMESPACE).items:
            certgen = [c for c in job.spec.template.spec.containers if (c.command or [None])[0] == CERTGEN]
            if not certgen or _complete(job):
                continue
            started = datetime.datetime.now(datetime.UTC)
            written = run_job(core, job, certgen[0], started)
            stamp = {"lastProbeTime": _ts(started), "lastTransitionTime": _ts(started)}
            batch.patch_namespaced_job_status(job.metadata.name, job.metadata.namespace, {"status": {
                "startTime": _ts(started), "completionTime": _ts(datetime.datetime.now(datetime.UTC)),
                "succeeded": 1, "active": 0, "ready": 0, "terminating": 0,
                "uncountedTerminatedPods": {},
                "conditions": [{"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
                                "message": "Reached expected number of succeeded pods", **stamp},
                               {"type": "Complete", "status": "True", "reason": "CompletionsReached",
                                "message": "Reached expected number of succeeded pods", **stamp}]}})
            done.append(f"{m.name}: Job {job.metadata.namespace}/{job.metadata.name} complete: {', '.join(written)}")
    return done


def _ts(t: datetime.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")
