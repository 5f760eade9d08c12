"""The end-to-end suite's fixtures: one local mesh of API servers for the whole run, a CA the
stacks bring, and stack configs for it."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.e2e.harness import CHART
from tools import localmesh

CLUSTERS = ("cls-a", "cls-b", "cls-c", "cls-d")
"""API servers of the local mesh; the stacks start with the first three."""


@dataclass(frozen=True)
class LocalMesh:
    dir: Path

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"


@pytest.fixture(scope="session")
def local_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    d = tmp_path_factory.mktemp("localmesh")
    localmesh.up(list(CLUSTERS), d)
    try:
        yield LocalMesh(d)
    finally:
        localmesh.down(d)


@dataclass(frozen=True)
class Ca:
    cert_pem: str
    key_pem: str


@pytest.fixture(scope="session")
def mesh_ca() -> Ca:
    """A CA as a platform team brings it: RSA 2048, PKCS#1 key, CA:true, with a SubjectKeyId."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Cilium CA"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "e2e")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1095))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return Ca(cert.public_bytes(serialization.Encoding.PEM).decode(),
              key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode())


def cluster(i: int, name: str) -> dict[str, Any]:
    """A VIP-mode mesh member reached through the local mesh's context of the same name."""
    return {
        "name": name,
        "id": i,
        "region": "ap-guangzhou",
        "podCidrs": [f"172.{16 + i}.0.0/16"],
        "apiserver": {"subnetId": f"subnet-e2e0000{i}", "vip": f"10.0.{i}.100"},
    }


def stack_config(mesh: LocalMesh, ca: Ca, names: tuple[str, ...] = CLUSTERS[:3]) -> dict[str, Any]:
    return {
        "mesh:cilium": {"version": "1.18.3", "chart": str(CHART), "skipAwait": True},
        "mesh:kubeconfig": str(mesh.kubeconfig),
        "mesh:ca": {"certificate": ca.cert_pem},
        "mesh:clusters": [cluster(CLUSTERS.index(n) + 1, n) for n in names],
    }
