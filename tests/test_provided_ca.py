"""A CA the stack brings (mesh:ca.certificate + the secret mesh:caPrivateKey), instead of one the
program generates: for a corporate PKI, an air-gapped install without the tls provider, or a mesh
built by hand whose cilium-ca must be kept."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from meshcore.config.model import PEM_RSA_KEY
from meshcore.config.parse import parse_settings
from meshcore.errors import MeshConfigError
from tests.conftest import mesh_config
from tests.mockcloud import by_type, run, text
from tests.test_config import issues_of
from tests.test_graph import RELEASE, is_secret
from tools import localpki
from tools.render import scrub

# A real certificate (the program reads its expiry); the key is a shape only: a PEM block with a
# valid base64 body (the chart's buildCustomCert parses the real one; the end-to-end suite deploys one).
CERT, _ = localpki.new_mesh_ca(days=400)


def _pem(kind: str, body: str) -> str:
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n"


KEY = _pem(PEM_RSA_KEY, "TUlJRWZha2VLZXk=")  # base64 of a word, not a key


def _provided(**ca: object) -> dict:
    return mesh_config(2, ca={"certificate": CERT, **ca}, caPrivateKey=KEY)


def test_a_provided_ca_is_one_generation_with_its_certificate() -> None:
    s = parse_settings(_provided(), secret_keys=["caPrivateKey"])
    assert s.ca.provided_certificate == CERT and s.ca.generations == (1,) and s.ca.signing == 1


def test_the_key_must_be_there_and_a_secret() -> None:
    raw = mesh_config(2, ca={"certificate": CERT})
    assert "is required with mesh:ca.certificate" in issues_of(raw)["mesh:caPrivateKey"]
    message = issues_of(_provided())["mesh:caPrivateKey"]
    assert "must be a secret" in message and "pulumi config set --secret mesh:caPrivateKey" in message


def test_messages_about_the_key_never_show_it() -> None:
    raw = _provided()
    raw["caPrivateKey"] = _pem("PRIVATE KEY", "U0VDUkVULUtFWS1CT0RZ")  # a PKCS#8 block
    from meshcore.errors import MeshConfigError
    try:
        parse_settings(raw, secret_keys=["caPrivateKey"])
    except MeshConfigError as err:
        assert "U0VDUkVULUtFWS1CT0RZ" not in str(err)
        assert [i.key for i in err.issues] == ["mesh:caPrivateKey"]
        assert "PKCS#1" in err.issues[0].message and "openssl rsa" in err.issues[0].message
    else:
        raise AssertionError("a PKCS#8 key was accepted")


def test_a_certificate_that_is_not_one_pem_certificate_is_refused() -> None:
    for cert, says in (("not pem", "found none"), (CERT + CERT, "exactly one CERTIFICATE"),
                       ("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----", "not valid base64"),
                       ("-----BEGIN CERTIFICATE-----\nTUlJQ2FrZUNlcnQ=\n-----END CERTIFICATE-----",
                        "not a readable X.509 certificate"),
                       (42, "must be the CA certificate as PEM text")):
        raw = mesh_config(2, ca={"certificate": cert}, caPrivateKey=KEY)
        with pytest.raises(MeshConfigError) as exc:
            parse_settings(raw, secret_keys=["caPrivateKey"])
        issues = {i.key: i.message for i in exc.value.issues}
        assert says in issues["mesh:ca.certificate"], cert
        assert "mesh:caPrivateKey" not in issues, "the key goes with the (invalid) certificate: not a second problem"


def test_generations_do_not_go_with_a_provided_ca() -> None:
    issues = issues_of(_provided(generations=[1, 2], signing=2))
    assert set(issues) >= {"mesh:ca.generations", "mesh:ca.signing"}


def test_a_key_without_a_certificate_is_refused() -> None:
    raw = mesh_config(2, caPrivateKey=KEY)
    assert "only used with mesh:ca.certificate" in issues_of(raw)["mesh:caPrivateKey"]


def test_other_mesh_keys_still_cannot_be_secrets() -> None:
    raw = _provided()
    from meshcore.errors import MeshConfigError
    try:
        parse_settings(raw, secret_keys=["caPrivateKey", "clusters"])
    except MeshConfigError as err:
        assert [i.key for i in err.issues] == ["mesh:clusters"]
    else:
        raise AssertionError("a secret mesh:clusters was accepted")


def test_the_program_sends_the_provided_ca_and_creates_no_tls_resource(tmp_path: Path) -> None:
    """Every release gets the provided certificate and the key as a secret leaf; nothing of tls is registered."""
    rec = run(_provided(), tmp_path, secret_keys=["mesh:caPrivateKey"])
    assert not [r for r in rec.resources.values() if r.type.startswith("tls:")]
    releases = by_type(rec, RELEASE)
    assert len(releases) == 2
    for r in releases:
        ca = r.inputs["values"]["tls"]["ca"]
        assert ca["cert"] == base64.b64encode(CERT.encode()).decode()
        assert is_secret(ca["key"]) and base64.b64decode(ca["key"]["value"]).decode() == KEY
    assert rec.outputs["caCertificatePem"] == CERT
    assert "TUlJRWZha2VLZXk" not in text(scrub(rec.outputs))
