"""The stack configuration contract (``mesh:*`` keys): the mesh-wide sections and ``Settings``; the cluster
entries are ``meshcore.config.clusters``.

Each config section is one pydantic model (``meshcore.config.fields.Section``: camelCase
keys, unknown keys refused, strict types, frozen), and these models *are* the settings the
program uses. ``schema/stack.schema.json`` is generated from the same models (``tools.schema``).

``meshcore.config.parse.parse_settings`` validates each section and each cluster entry on its own
with these models, then runs the checks across sections and clusters (``meshcore.config.checks``)
on whatever parsed, so one run reports *every* problem, each naming its key and how to fix it.
Nothing here talks to Pulumi or a cluster: the kubeconfig is checked separately
(``meshcore.mesh.kubeconfig``) because it is only read on a real run.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from functools import cached_property
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PrivateAttr,
    model_validator,
)

from meshcore.chart import certs, versions
from meshcore.chart import values as helm_values
from meshcore.config import presets
from meshcore.config.clusters import (
    DEFAULT_CHART_VERSION,
    NS,
    ApiserverSettings,
    ChartVersion,
    ClusterEntry,
    ClusterSettings,
    chart_reference,
)
from meshcore.config.fields import (
    Bool,
    CidrList,
    HelmValues,
    Int,
    OneOf,
    Relations,
    Section,
    Text,
    quote,
    refuse,
    type_name,
)

DEFAULT_REPOSITORY = "https://helm.cilium.io/"
REPOSITORY_PATTERN = r"^(https?|oci)://[^\s]+$"
SECRET_KEYS = ("caPrivateKey",)
"""The only ``mesh`` keys that hold a secret (and must: ``pulumi config set --secret``)."""
UNREADABLE_SECRET = "[secret]"
"""What a secret's value reads as where it cannot be decrypted (the offline plan): not checked."""
MasqueradeMode = Literal["none", "ipMasqAgent"]
MASQUERADE_MODES: tuple[str, ...] = get_args(MasqueradeMode)
PEM_CERTIFICATE = "CERTIFICATE"
PEM_RSA_KEY = "RSA PRIVATE KEY"


# --------------------------------------------------------------------------- mesh-wide sections


PRESET_TEXT = ("{w} is not a preset of this program; the presets are: " + ", ".join(presets.PRESETS)
               + " (or leave it out and set mesh:cilium.values)")


def _known_preset(value: str) -> str:
    if value not in presets.PRESETS:
        raise refuse(PRESET_TEXT.format(w=quote(value)))
    return value


class CiliumSettings(Section):
    """The Cilium chart and the Helm values every cluster starts from."""

    EXAMPLE: ClassVar[str] = "{version: 1.18.3, values: {}}"

    version: ChartVersion = DEFAULT_CHART_VERSION
    """The Cilium chart version: a patch release of a supported minor (``meshcore/chart/versions.py``; a cluster may
    override it during an upgrade: ``mesh:clusters[i].cilium.version``)."""
    repository: Annotated[str, Text(DEFAULT_REPOSITORY, pattern=REPOSITORY_PATTERN,
                                    text="{q} is not a chart repository URL; e.g. " + DEFAULT_REPOSITORY)
                          ] = DEFAULT_REPOSITORY
    """The Helm repository of chart ``cilium``."""
    chart: Annotated[str | None, BeforeValidator(chart_reference, json_schema_input_type=str),
                     Field(examples=["./charts/cilium-1.18.3.tgz", "oci://registry.example.com/cilium/cilium"])] = None
    """Instead of ``repository``: a local chart directory or ``.tgz`` (relative to the project directory), or an
    ``oci://`` reference without a tag (air-gapped installs, mirrors)."""
    preset: Annotated[str, AfterValidator(_known_preset), Field(json_schema_extra={"enum": list(presets.PRESETS)}),
                      OneOf(PRESET_TEXT)] | None = None
    """A named preset (``meshcore/config/presets.py``) merged under ``values``."""
    values: HelmValues = Field(default_factory=dict)
    """Base Helm values for every cluster (paths checked against the chart; never program-owned keys)."""
    skip_await: Bool = False
    """True: releases do not wait for Cilium's pods to be ready (GitOps, large fleets, a local mesh)."""

    @classmethod
    def relations(cls, fields: dict[str, Any], given: set[str]) -> Relations:
        if "chart" in given and "repository" in given:
            return [("repository", "is not used with mesh:cilium.chart (a local chart or an oci:// reference): "
                                   "remove one of the two")]
        return []

    @cached_property
    def base_values(self) -> dict[str, Any]:
        """The preset's values with ``values`` merged over them: what every release starts from."""
        return helm_values.deep_merge(presets.preset_values(self.preset), self.values)


class MasqueradeSettings(Section):
    """Whether the program sets masquerading: ``ipMasqAgent`` keeps every cluster's pod CIDRs unmasqueraded."""

    EXAMPLE: ClassVar[str] = "{mode: none}"

    mode: Annotated[MasqueradeMode, OneOf(f"must be one of: {', '.join(MASQUERADE_MODES)}; got {{j}}")] = "none"
    """``none``: the program sets no masquerade value; ``ipMasqAgent``: eBPF masquerade with every
    cluster's pod CIDRs (plus extras) as non-masquerade CIDRs."""
    extra_non_masquerade_cidrs: CidrList = ()
    """More non-masquerade CIDRs (``ipMasqAgent`` only), e.g. the VPC CIDRs."""

    @classmethod
    def relations(cls, fields: dict[str, Any], given: set[str]) -> Relations:
        if fields.get("extra_non_masquerade_cidrs") and fields.get("mode", "ipMasqAgent") != "ipMasqAgent":
            return [("extraNonMasqueradeCidrs", "is only used with mode: ipMasqAgent; set mesh:masquerade.mode to "
                                                "ipMasqAgent or remove the list")]
        return []


def pem_blocks(text: str) -> list[tuple[str, bytes]]:
    """The (type, DER bytes) of every PEM block in ``text``; ValueError if one is malformed."""
    blocks: list[tuple[str, bytes]] = []
    for m in re.finditer(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END ([A-Z0-9 ]+)-----", text, re.S):
        if m.group(1) != m.group(3):
            raise ValueError(f"a PEM block begins as {m.group(1)} and ends as {m.group(3)}")
        body = "".join(m.group(2).split())
        try:
            blocks.append((m.group(1), base64.b64decode(body, validate=True)))
        except ValueError:
            raise ValueError(f"the {m.group(1)} block is not valid base64") from None
    return blocks


def _ca_certificate(value: Any) -> str:
    """``mesh:ca.certificate``: one PEM CERTIFICATE block (what the chart's buildCustomCert parses)."""
    if not isinstance(value, str) or not value.strip():
        raise refuse("must be the CA certificate as PEM text (-----BEGIN CERTIFICATE----- ...), got "
                     f"{type_name(value)}")
    try:
        blocks = pem_blocks(value)
    except ValueError as err:
        raise refuse(f"is not valid PEM: {err}") from None
    if [t for t, _ in blocks] != [PEM_CERTIFICATE]:
        raise refuse(f"must hold exactly one CERTIFICATE PEM block (the CA's own certificate), found "
                     f"{[t for t, _ in blocks] or 'none'}")
    try:
        certs.not_after(value)
    except ValueError as err:
        raise refuse(f"is not a readable X.509 certificate ({err}); give the CA certificate as "
                     "`openssl x509 -in ca.crt` prints it") from None
    return value.strip() + "\n"


def _also_trusted(value: Any) -> Any:
    if not isinstance(value, list):
        raise refuse(f"must be a list of CA certificates as PEM text (at most one: the CA being rotated in or out), "
                     f"got {type_name(value)}")
    return value


def _generations(value: Any) -> Any:
    if not isinstance(value, list) or not value:
        raise refuse(f"must be a non-empty list of CA generations (1, 2, ...), got {type_name(value)}")
    return value


class CaSettings(Section):
    """The mesh CAs: every generation listed is trusted; ``signing`` signs the certificates.

    One generation (the default, ``[1]``) is the normal state. A rotation lists two: add the
    new one (both trusted, the old still signing), switch ``signing``, then drop the old one.
    Or the stack brings its own CA (``certificate``, its key in the secret ``mesh:caPrivateKey``), rotated in the
    same three steps with ``alsoTrusted``: the new CA trusted next to the old one (which signs), then the new one
    signs with the old one still trusted, then the new one alone.
    """

    EXAMPLE: ClassVar[str] = "{generations: [1, 2], signing: 1}"

    generations: Annotated[tuple[Annotated[int, Int(1, 1000, "a CA generation")], ...],
                           BeforeValidator(_generations, json_schema_input_type=list[int]),
                           Field(strict=False, json_schema_extra={"minItems": 1, "maxItems": 2})] = (1,)
    """The trusted CA generations: one, or two during a rotation (the one being retired and its successor)."""
    signing: Annotated[int, Int(1, 1000, "the signing CA generation")] | None = None
    """The generation that signs (default: the only one)."""
    provided_certificate: Annotated[str | None, BeforeValidator(_ca_certificate, json_schema_input_type=str),
                                    Field(alias="certificate")] = None
    """The PEM of a CA the stack brings, instead of one the program generates (then one generation)."""
    also_trusted: Annotated[tuple[Annotated[str, BeforeValidator(_ca_certificate, json_schema_input_type=str)], ...],
                            BeforeValidator(_also_trusted, json_schema_input_type=list[str]),
                            Field(strict=False, json_schema_extra={"maxItems": 1})] = ()
    """During the rotation of a CA the stack brings: the other CA's certificate (PEM), trusted next to
    ``certificate``, which signs; at most one."""

    @classmethod
    def relations(cls, fields: dict[str, Any], given: set[str]) -> Relations:
        problems: Relations = []
        if "also_trusted" in given and "provided_certificate" not in given:
            return [("alsoTrusted", "trusts another CA next to a CA the stack brings: set mesh:ca.certificate (the "
                                    "signing CA) and the secret mesh:caPrivateKey, or remove this key (a CA the "
                                    "program generates rotates with mesh:ca.generations and signing)")]
        if "provided_certificate" in given:
            problems = [(k, "is for rotating a CA the program generates; a CA you bring (mesh:ca.certificate) rotates "
                            "with mesh:ca.alsoTrusted (README, Lifecycle): remove this key")
                        for k in ("generations", "signing") if k in given]
            also = fields.get("also_trusted") or ()
            if len(also) > 1:
                problems.append(("alsoTrusted", f"lists {len(also)} CAs: list at most one, the CA being rotated in "
                                                "(before it signs) or out (after it stopped signing)"))
            mine = fields.get("provided_certificate")
            for i, pem in enumerate(also):
                if mine is not None and pem_blocks(pem) == pem_blocks(mine):
                    problems.append((f"alsoTrusted[{i}]", "is mesh:ca.certificate itself: list the other CA (the "
                                                          "successor, or the one being retired), or remove the key"))
            return problems
        if "generations" not in fields:
            return []
        gens: list[int] = []
        for i, g in enumerate(fields["generations"]):
            if g in gens:
                problems.append((f"generations[{i}]", f"generation {g} is listed twice"))
            else:
                gens.append(g)
        if len(fields["generations"]) > 2:
            problems.append(("generations", "list at most two generations: the CA being retired and its successor"))
        signing = fields.get("signing")
        if "signing" in fields and signing is None and len(gens) != 1:
            problems.append(("signing", "is required while two CA generations are trusted: the one that signs"))
        elif signing is not None and signing not in gens:
            problems.append(("signing", f"{json.dumps(signing)} is not one of mesh:ca.generations {gens}"))
        return problems

    @property
    def brought_bundle(self) -> str | None:
        """The trust bundle of a brought CA's rotation (``certificate`` and ``alsoTrusted``; else None): the
        certificates oldest first (by notBefore), as the generated rotation lists its generations, so the bundle is
        the same whichever of the two signs."""
        if self.provided_certificate is None or not self.also_trusted:
            return None
        return "".join(sorted((self.provided_certificate, *self.also_trusted), key=lambda p: (certs.not_before(p), p)))

    @model_validator(mode="after")
    def _signing_defaults_to_the_one(self) -> CaSettings:
        if self.signing is None:
            object.__setattr__(self, "signing", self.generations[0])
        return self


def _names(value: Any) -> Any:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise refuse(f"must be a list of cluster names, got {type_name(value)}")
    return frozenset(value)


class TopologySettings(Section):
    """A partial mesh: who peers with whom (made symmetric)."""

    EXAMPLE: ClassVar[str] = "full, or {peers: {cls-a: [cls-b, cls-c]}}"

    peers: Annotated[dict[str, list[str]], Field(min_length=1, examples=[{"cls-a": ["cls-b", "cls-c"]}])]
    """Cluster name -> the names of its peers; every cluster has at least one."""


class Settings(Section):
    """The whole validated ``mesh:*`` configuration of a stack."""

    cilium: CiliumSettings = Field(default_factory=lambda: CiliumSettings())
    """The Cilium chart and the base Helm values of every cluster."""
    max_connected_clusters: Annotated[Literal[255, 511], OneOf(
        f"must be 255 or 511 (the only values the Cilium {versions.SPAN} charts accept), got {{j}}; it cannot be "
        "changed on running clusters, so leave 255 unless you need more than 255 clusters")] = 255
    """Cilium ``clustermesh.maxConnectedClusters``: 255 (default) or 511; never change it on running clusters."""
    masquerade: MasqueradeSettings = Field(default_factory=lambda: MasqueradeSettings())
    """Masquerading of pod traffic."""
    hubble_relay: Bool = True
    """Hubble Relay in every cluster (needs Hubble)."""
    topology: Literal["full"] | TopologySettings = "full"
    """``full`` (default): every cluster peers with every other; or ``{peers: {cls-a: [cls-b]}}``."""
    kubeconfig: Annotated[str, Text("~/.kube/mesh.yaml")] | None = None
    """The kubeconfig file of the context clusters (``$MESH_KUBECONFIG_FILE`` overrides it)."""
    clusters: Annotated[tuple[ClusterEntry, ...], Field(strict=False, min_length=1)]
    """The clusters of the mesh."""
    ca: CaSettings = Field(default_factory=lambda: CaSettings())
    """The mesh CA: generated by the program (and rotated by generations), or brought by the stack."""
    allow_identity_change: Annotated[frozenset[str], BeforeValidator(_names, json_schema_input_type=list[str]),
                                     Field(strict=False)] = frozenset()
    """Clusters whose Cilium name or id may change in this update (a disruptive, deliberate act)."""
    policy_default_local_cluster: Bool | None = None
    """Cilium ``clustermesh.policyDefaultLocalCluster`` in every cluster: required once any cluster runs 1.19+
    (the chart default flipped to true); check with ``cilium clustermesh inspect-policy-default-local-cluster``."""

    _peers: dict[str, tuple[str, ...]] = PrivateAttr(default_factory=dict)

    @property
    def full_mesh(self) -> bool:
        """True for ``mesh:topology: full``."""
        return self.topology == "full"

    @property
    def peers(self) -> Mapping[str, tuple[str, ...]]:
        """Cluster name -> its peers' names, symmetric, ordered by peer cluster id."""
        return self._peers

    @property
    def entry_names(self) -> dict[int, str]:
        """Position in ``mesh:clusters`` -> the cluster's name (``meshcore.errors.naming_clusters``)."""
        return {c.index: c.name for c in self.clusters}

    def version_of(self, c: ClusterSettings) -> str:
        """The chart version of cluster ``c``: its own (``mesh:clusters[i].cilium.version``) or the mesh's."""
        return c.cilium.version if c.cilium is not None else self.cilium.version

    def cilium_of(self, c: ClusterSettings) -> CiliumSettings:
        """``mesh:cilium`` as cluster ``c`` installs it: its own version (and local chart), else the mesh's."""
        if c.cilium is None:
            return self.cilium
        return self.cilium.model_copy(update={"version": c.cilium.version,
                                              "chart": c.cilium.chart or self.cilium.chart})

    def cluster(self, name: str) -> ClusterSettings:
        for c in self.clusters:
            if c.name == name:
                return c
        raise KeyError(name)


TOP_LEVEL_KEYS: tuple[str, ...] = (*Settings.keys(), *SECRET_KEYS)
APISERVER_KEYS = ApiserverSettings.keys()


# --------------------------------------------------------------------------- decoding


def decode_config(items: Mapping[str, str]) -> dict[str, Any]:
    """Decode the string values Pulumi hands a program (``namespace:key`` -> str).

    Structured values arrive JSON-encoded, booleans and numbers as their JSON text.
    Keys outside the ``mesh`` namespace are ignored; ``mesh:kubeconfig`` is a path and
    stays a string.
    """
    out: dict[str, Any] = {}
    prefix = f"{NS}:"
    for full_key, raw in items.items():
        if not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix):]
        if key == "kubeconfig" or not isinstance(raw, str):
            out[key] = raw
            continue
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out
