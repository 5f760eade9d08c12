"""The one CA shared by every cluster of the mesh: generated here, or brought by the stack.

Owns a private key and a self-signed CA certificate (with a SubjectKeyId, which is
what ``cilium clustermesh`` compares). Both are protected: deleting or replacing the
CA would re-key every cluster at once. The key is a Pulumi secret from creation on.
Deliberately *not* here: a ``cilium-ca`` Secret. The chart renders it from
``tls.ca.*``; a copy made outside Helm breaks ``helm install`` in 1.18.
"""

from __future__ import annotations

import base64
import importlib.resources
import json

import pulumi
import pulumi_tls as tls

from meshcore.chart.certs import CA_VALIDITY_DAYS, not_after

TYPE_TOKEN = "mesh:pki:SharedCa"
PROVIDED_TYPE_TOKEN = "mesh:pki:ProvidedCa"

CA_VALIDITY_HOURS = CA_VALIDITY_DAYS * 24

TLS_PLUGIN_VERSION: str = json.loads(
    importlib.resources.files(tls.__name__).joinpath("pulumi-plugin.json").read_text(encoding="utf-8"))["version"]
"""The tls plugin version the pinned pulumi_tls SDK asks the engine for (its ``pulumi-plugin.json``, which the
language host reports to the engine)."""


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class SharedCa(pulumi.ComponentResource):
    """The mesh CA, as the values the chart takes."""

    cert_pem: pulumi.Output[str]
    """The CA certificate (public)."""
    cert_b64: pulumi.Output[str]
    """Base64 of the certificate PEM, for ``tls.ca.cert``."""
    key_b64: pulumi.Output[str]
    """Base64 of the private key PEM, for ``tls.ca.key``; secret."""
    expires_at: pulumi.Output[str]
    """The certificate's end of validity (RFC 3339)."""

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        # RSA 2048 with a PKCS#1 PEM is what the chart's own genCA makes and what sprig's
        # buildCustomCert/genSignedCert are known to accept.
        key = tls.PrivateKey(
            f"{name}-key",
            algorithm="RSA",
            rsa_bits=2048,
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        cert = tls.SelfSignedCert(
            f"{name}-cert",
            private_key_pem=key.private_key_pem,
            is_ca_certificate=True,
            set_subject_key_id=True,
            validity_period_hours=CA_VALIDITY_HOURS,
            allowed_uses=["cert_signing", "crl_signing", "digital_signature", "key_encipherment"],
            subject=tls.SelfSignedCertSubjectArgs(common_name="Cilium CA", organization="tke-cilium-mesh"),
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        self.cert_pem = cert.cert_pem
        self.expires_at = cert.validity_end_time
        self.cert_b64 = cert.cert_pem.apply(_b64)
        self.key_b64 = pulumi.Output.secret(key.private_key_pem.apply(_b64))
        self.register_outputs({"cert_pem": self.cert_pem})


class ProvidedCa(pulumi.ComponentResource):
    """A CA the stack brings (``mesh:ca.certificate`` and the secret ``mesh:caPrivateKey``): a
    corporate PKI's intermediate, or the ``cilium-ca`` of a mesh built by hand that this stack
    adopts (its connections keep working). Same values as ``SharedCa``; nothing is created.
    The key stays a secret: it arrives as a secret config value and leaves only as a secret leaf."""

    cert_pem: pulumi.Output[str]
    cert_b64: pulumi.Output[str]
    key_b64: pulumi.Output[str]
    expires_at: pulumi.Output[str]

    def __init__(self, name: str, cert_pem: str, key_pem: pulumi.Output[str],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(PROVIDED_TYPE_TOKEN, name, None, opts)
        self.cert_pem = pulumi.Output.from_input(cert_pem)
        self.expires_at = pulumi.Output.from_input(not_after(cert_pem))
        self.cert_b64 = pulumi.Output.from_input(_b64(cert_pem))
        # `pulumi config set --secret mesh:caPrivateKey < ca.key` drops the file's last newline;
        # the PEM the chart gets ends with one either way (as the certificate does).
        self.key_b64 = pulumi.Output.secret(key_pem.apply(lambda pem: _b64(pem.strip() + "\n")))
        self.register_outputs({"cert_pem": self.cert_pem})
