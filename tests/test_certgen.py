"""The stand-in chart's ``cronJob`` TLS method and ``authMode`` (what the real 1.19 chart renders: certgen's Job, the
``clustermesh-remote-users`` ConfigMap, clustermesh's ``--cluster-users-*`` flags), rendered by the toolchain's
helm, and ``tools.certgen`` running that Job against an API of Secrets in memory: the Secrets certgen issues.
The same under the real engine: tests/e2e/test_mixed_mesh.py."""

from __future__ import annotations

import base64
import datetime
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from tools import certgen, localpki, toolchain, workspace


class _Secrets:
    """The part of CoreV1Api certgen uses, over a dict."""

    def __init__(self, secrets: dict[str, dict[str, Any]]) -> None:
        self.secrets = secrets

    def read_namespaced_secret(self, name: str, namespace: str) -> Any:
        from kubernetes.client.exceptions import ApiException

        if name not in self.secrets:
            raise ApiException(status=404)
        return SimpleNamespace(data=self.secrets[name]["data"])

    def create_namespaced_secret(self, namespace: str, body: dict[str, Any]) -> None:
        self.secrets[body["metadata"]["name"]] = body


def _render(tmp_path: Path, auth_mode: str, ca: tuple[str, str]) -> list[dict[str, Any]]:
    try:
        helm = toolchain.require() / "bin" / "helm"
    except toolchain.ToolchainError as err:
        pytest.skip(str(err))
    values = {"cluster": {"name": "cls-a", "id": 1},
              "tls": {"ca": {"cert": base64.b64encode(ca[0].encode()).decode(),
                             "key": base64.b64encode(ca[1].encode()).decode()}},
              "clustermesh": {"useAPIServer": True,
                              "config": {"enabled": True, "clusters": {"cls-b": {"address": "127.0.10.2", "port": 2379}}},
                              "apiserver": {"tls": {"authMode": auth_mode,
                                                    "auto": {"method": "cronJob", "schedule": "0 0 1 */4 *"},
                                                    "server": {"extraIpAddresses": ["127.0.10.1"]}}}}}
    (tmp_path / "values.yaml").write_text(yaml.safe_dump(values), encoding="utf-8")
    out = subprocess.run([str(helm), "template", "cilium", str(workspace.CHART), "-n", "kube-system", "-f",
                          str(tmp_path / "values.yaml")], capture_output=True, text=True, check=True, timeout=60)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def _job_container(docs: list[dict[str, Any]]) -> tuple[Any, Any]:
    job = next(d for d in docs if d["kind"] == "Job")
    c = job["spec"]["template"]["spec"]["containers"][0]
    container = SimpleNamespace(command=c["command"], args=c["args"],
                                env=[SimpleNamespace(name=e["name"], value=e["value"]) for e in c["env"]])
    return SimpleNamespace(metadata=SimpleNamespace(name=job["metadata"]["name"], namespace="kube-system")), container


@pytest.mark.parametrize(("auth_mode", "remote_cn"), [("migration", "remote"), ("cluster", "remote-cls-a")])
def test_certgen_issues_what_the_cronjob_method_asks(tmp_path: Path, auth_mode: str, remote_cn: str) -> None:
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca = localpki.new_mesh_ca()
    docs = _render(tmp_path, auth_mode, ca)
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert not {n for k, n in kinds if k == "Secret" and n.startswith("clustermesh-apiserver-")}, kinds
    assert {("CronJob", "clustermesh-apiserver-generate-certs"), ("Role", "clustermesh-apiserver-generate-certs"),
            ("ServiceAccount", "clustermesh-apiserver-generate-certs"), ("ConfigMap", "clustermesh-remote-users")} <= kinds
    users = next(d for d in docs if d["metadata"]["name"] == "clustermesh-remote-users")
    assert yaml.safe_load(users["data"]["users.yaml"]) == {"users": [{"name": "remote-cls-b", "role": "remote"}]}
    deployment = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "clustermesh-apiserver")
    apiserver = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "apiserver")
    assert apiserver["args"][-2:] == ["--cluster-users-enabled",
                                      "--cluster-users-config-path=/var/lib/cilium/etcd-config/users.yaml"]

    job, container = _job_container(docs)
    assert container.command == [certgen.CERTGEN] and "--ca-reuse-secret" in container.args
    ca_data = {"ca.crt": base64.b64encode(ca[0].encode()).decode(), "ca.key": base64.b64encode(ca[1].encode()).decode()}
    api = _Secrets({"cilium-ca": {"data": ca_data}})
    written = certgen.run_job(api, job, container, datetime.datetime.now(datetime.UTC))
    assert len(written) == 4
    ca_cert = x509.load_pem_x509_certificate(ca[0].encode())
    cns = {}
    for name in ("server", "admin", "remote", "local"):
        secret = api.secrets[f"clustermesh-apiserver-{name}-cert"]
        assert secret["type"] == "kubernetes.io/tls", name
        data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
        assert data["ca.crt"] == ca[0].encode()
        cert = x509.load_pem_x509_certificate(data["tls.crt"])
        cert.verify_directly_issued_by(ca_cert)
        cns[name] = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH if name == "server" else ExtendedKeyUsageOID.CLIENT_AUTH]
        if name == "server":
            sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1", "127.0.10.1"}
            assert "*.mesh.cilium.io" in sans.get_values_for_type(x509.DNSName)
    assert cns == {"server": "clustermesh-apiserver.cilium.io", "admin": "admin-cls-a", "remote": remote_cn,
                   "local": "local-cls-a"}


def test_legacy_renders_no_users(tmp_path: Path) -> None:
    docs = _render(tmp_path, "legacy", localpki.new_mesh_ca())
    assert "clustermesh-remote-users" not in {d["metadata"]["name"] for d in docs}
    deployment = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "clustermesh-apiserver")
    assert not [a for c in deployment["spec"]["template"]["spec"]["containers"] for a in c.get("args", [])
                if a.startswith("--cluster-users")]
