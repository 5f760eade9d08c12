"""The local mesh's certificates: the API servers' PKI of a local mesh directory (``certs``, made once per DIR)
and a mesh CA as a stack brings it (``new_mesh_ca``). Used by ``tools.localmesh`` and ``tools.localstack``."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any


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


def certs(dir_: Path) -> None:
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
