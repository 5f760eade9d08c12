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


# -- the rotation of a brought CA: mesh:ca.alsoTrusted -------------------------------------

NEW, _ = localpki.new_mesh_ca(days=800)
NEW_KEY = _pem(PEM_RSA_KEY, "TUlJRW5ld0tleQ==")  # a shape only, as KEY


def _rotation_step(step: int) -> dict:
    """The three steps of README's runbook: the new CA trusted, then signing with the old one trusted, then alone."""
    ca = ({"certificate": CERT, "alsoTrusted": [NEW]}, {"certificate": NEW, "alsoTrusted": [CERT]},
          {"certificate": NEW})[step - 1]
    return mesh_config(2, ca=ca, caPrivateKey=KEY if step == 1 else NEW_KEY)


def test_each_step_of_a_brought_rotation_sends_the_bundle_and_the_signing_ca(tmp_path: Path) -> None:
    """Steps 1 and 2 trust both CAs through the same tls.caBundle a generated rotation sends ({enabled, content},
    the same content at both steps: only tls.ca changes in between); step 3 sends no bundle."""
    bundles = []
    for step, signer, key in ((1, CERT, KEY), (2, NEW, NEW_KEY), (3, NEW, NEW_KEY)):
        (tmp_path / str(step)).mkdir()
        rec = run(_rotation_step(step), tmp_path / str(step), secret_keys=["mesh:caPrivateKey"])
        assert not [r for r in rec.resources.values() if r.type.startswith("tls:")]
        releases = by_type(rec, RELEASE)
        assert len(releases) == 2
        for r in releases:
            tls = r.inputs["values"]["tls"]
            assert base64.b64decode(tls["ca"]["cert"]).decode() == signer
            assert base64.b64decode(tls["ca"]["key"]["value"]).decode() == key
            if step == 3:
                assert "caBundle" not in tls
            else:
                assert tls["caBundle"]["enabled"] is True and set(tls["caBundle"]) == {"enabled", "content"}
                assert sorted(tls["caBundle"]["content"].split("-----END CERTIFICATE-----\n")) == sorted(
                    ["", CERT.split("-----END CERTIFICATE-----\n")[0], NEW.split("-----END CERTIFICATE-----\n")[0]])
                bundles.append(tls["caBundle"]["content"])
        assert rec.outputs["caCertificatePem"] == signer
    assert len(bundles) == 4 and len(set(bundles)) == 1


def _ca_issued_days_ago(days: int) -> str:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Cilium CA")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=days))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_the_bundle_lists_the_older_ca_first() -> None:
    """By notBefore, as a generated rotation lists generation 1 first: whichever of the two signs."""
    old, new = _ca_issued_days_ago(300), _ca_issued_days_ago(1)
    for cert, also in ((old, new), (new, old)):
        s = parse_settings(mesh_config(2, ca={"certificate": cert, "alsoTrusted": [also]}, caPrivateKey=KEY),
                           secret_keys=["caPrivateKey"])
        assert s.ca.brought_bundle == old + new


@pytest.mark.parametrize("ca, key, says", [
    ({"alsoTrusted": [NEW]}, "mesh:ca.alsoTrusted", "set mesh:ca.certificate"),
    ({"certificate": CERT, "alsoTrusted": [CERT]}, "mesh:ca.alsoTrusted[0]", "is mesh:ca.certificate itself"),
    ({"certificate": CERT, "alsoTrusted": [NEW, NEW]}, "mesh:ca.alsoTrusted", "list at most one"),
    ({"certificate": CERT, "alsoTrusted": ["not pem"]}, "mesh:ca.alsoTrusted[0]", "found none"),
    ({"certificate": CERT, "alsoTrusted": NEW}, "mesh:ca.alsoTrusted", "must be a list of CA certificates"),
    ({"certificate": CERT, "alsoTrusted": [NEW], "generations": [1, 2], "signing": 1}, "mesh:ca.generations",
     "rotates with mesh:ca.alsoTrusted"),
])
def test_also_trusted_is_validated(ca: dict, key: str, says: str) -> None:
    """Each refusal names its key and the fix."""
    issues = issues_of(mesh_config(2, ca=ca, caPrivateKey=KEY))
    assert says in issues[key], issues
