"""The CrossGuard policies of the mesh, as module-level objects (``__main__.py`` packs them).

Kept apart from ``__main__.py`` because constructing a ``PolicyPack`` starts the
analyzer's gRPC server and blocks: tests import this module and call each policy's
``validate`` (and ``remediate``) directly. Only ``pulumi_policy`` is imported, so the pack
runs in its own virtualenv (``requirements.txt``), without the program's code.

What the policies guard, and why:

- ``cilium-chart-version-pinned``: every Cilium release names one exact chart version;
  with none (or a range) Helm installs whatever the repository has newest, not the
  version the values were generated and reviewed for.
- ``clustermesh-apiserver-internal-clb``: a release that runs the clustermesh-apiserver
  exposes it as a ``LoadBalancer`` Service with TKE's internal-CLB subnet annotation;
  without it TKE creates a *public* CLB for the mesh's etcd.
- ``cilium-cluster-identity-unique`` (stack): no two releases share ``cluster.id`` or
  ``cluster.name``; Cilium identities and the mesh's peer list are keyed by them.
- ``mesh-ca-protected``: the CA key and certificate are ``protect``ed; deleting or
  replacing them re-keys every cluster at once.
- ``cilium-ca-key-secret``: every release gets ``tls.ca.key``, and only as a Pulumi secret.

How values reach a policy (what the engine sends, and what the SDK makes of it):

- The engine marshals a resource's (provider-checked) inputs for ``Analyze``,
  ``AnalyzeStack`` and ``Remediate`` with ``KeepSecrets: true`` and ``KeepUnknowns: true``
  (pulumi/pulumi ``sdk/go/common/resource/plugin/analyzer_plugin.go``): a secret arrives as
  ``{"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": v}``,
  leaf by leaf inside Helm values; an unknown as a sentinel string. Numbers are doubles
  (``cluster.id`` 5 arrives as 5.0), so ids are compared numerically.
- ``pulumi_policy`` 1.21.0 unwraps every secret *before a validation sees it*: ``Analyze``
  and ``AnalyzeStack`` call ``deserialize_properties(...)`` without ``proxy_secrets``, and
  ``_deserialize_property`` returns the bare value (``deserialize.py``). A validation gets
  the plaintext and no trace of its secretness (pulumi/pulumi-policy#241, open: "It's not
  currently possible to check if a ... property is a secret from policies").
- ``Remediate`` is the exception: it deserializes with ``proxy_secrets=True``, so each
  secret is a ``pulumi_policy.Secret`` and ``serialize_properties(args.props)`` gives the
  wire form back, markers included. The engine runs every analyzer's remediations for a
  resource first and its validations second (``pkg/resource/deploy/step_generator.go``:
  "We do two passes: first we perform remediations, and *then* we do analysis").

``cilium-ca-key-secret`` is built on that: it runs at enforcement level ``remediate``; its
remediation changes nothing, it only looks at the marker and notes a release whose key is
plain; its validation (which Analyze reports as ``mandatory``) reports the release. The
validation alone still checks what it can see: that the key is there and not empty. If the
stack's policy config sets this policy to ``mandatory``, no remediation runs and the
secretness part is not checked.
"""

from __future__ import annotations

import enum
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import SPECIAL_SECRET_SIG, SPECIAL_SIG_KEY, serialize_properties
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)

RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
PRIVATE_KEY_TYPE = "tls:index/privateKey:PrivateKey"
SELF_SIGNED_CERT_TYPE = "tls:index/selfSignedCert:SelfSignedCert"
CA_TYPES = (PRIVATE_KEY_TYPE, SELF_SIGNED_CERT_TYPE)
CILIUM_CHART = "cilium"
INTERNAL_SUBNET_ANNOTATION = "service.kubernetes.io/qcloud-loadbalancer-internal-subnetid"

Path = tuple[str, ...]
CLUSTER_ID: Path = ("cluster", "id")
CLUSTER_NAME: Path = ("cluster", "name")
USE_APISERVER: Path = ("clustermesh", "useAPIServer")
SERVICE: Path = ("clustermesh", "apiserver", "service")
CA_KEY: Path = ("tls", "ca", "key")

# What the chart uses when a value is not set (cilium 1.18 values.yaml).
CHART_DEFAULT_CLUSTER_ID = 0
CHART_DEFAULT_CLUSTER_NAME = "default"
CHART_DEFAULT_SERVICE_TYPE = "NodePort"

# One SemVer 2 version (Helm's chart versions), optionally written with a leading "v".
_EXACT_VERSION = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
_UNKNOWNS = frozenset({
    UNKNOWN_BOOLEAN_VALUE, UNKNOWN_NUMBER_VALUE, UNKNOWN_STRING_VALUE, UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE, UNKNOWN_ARCHIVE_VALUE, UNKNOWN_OBJECT_VALUE,
})


class Absent(enum.Enum):
    """Why ``lookup`` found no value."""

    MISSING = "missing"
    """Not set: the chart's default applies."""
    UNKNOWN = "unknown"
    """Known only after apply (a preview): nothing to judge yet."""


MISSING = Absent.MISSING
UNKNOWN = Absent.UNKNOWN


def is_unknown(value: Any) -> bool:
    """Whether ``value`` is one of the engine's "known after apply" sentinels."""
    return isinstance(value, str) and value in _UNKNOWNS


def lookup(node: Any, path: Sequence[str]) -> Any:
    """The value at ``path`` in props (plain or the SDK's unknown-checking proxies),
    ``MISSING`` or ``UNKNOWN``. Never raises ``UnknownValueError``."""
    for key in path:
        if is_unknown(node):
            return UNKNOWN
        if not isinstance(node, Mapping):
            return MISSING
        try:
            node = node[key]
        except KeyError:
            return MISSING
        except UnknownValueError:
            return UNKNOWN
    return UNKNOWN if is_unknown(node) else node


def cilium_values(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The Helm values of a Cilium release (``{}`` when it sets none); None for anything else.

    A Cilium release is a ``helm.v3.Release`` whose chart is ``cilium``, also written
    ``<repo>/cilium`` or as an ``oci://…/cilium`` reference."""
    if resource_type != RELEASE_TYPE:
        return None
    chart = lookup(props, ("chart",))
    if not isinstance(chart, str) or chart.rstrip("/").rsplit("/", 1)[-1] != CILIUM_CHART:
        return None
    values = lookup(props, ("values",))
    return values if isinstance(values, Mapping) else {}


def describe(name: str, values: Mapping[str, Any]) -> str:
    """``<resource name>`` plus its Cilium cluster name when the values set one."""
    cluster = lookup(values, CLUSTER_NAME)
    return f"{name} (cluster {cluster})" if isinstance(cluster, str) and cluster else name


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, str) else str(value)


# --- a. chart version pinned ------------------------------------------------------------


def validate_chart_version(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Every Cilium release pins one exact chart version."""
    if cilium_values(args.resource_type, args.props) is None:
        return
    version = lookup(args.props, ("version",))
    fix = ("pin the chart to one release, e.g. version 1.18.3 (mesh:cilium.version in the stack config); "
           "Helm installs the newest chart that matches otherwise, not the one the values were made for")
    if version is UNKNOWN:
        return
    if version is MISSING or version is None or (isinstance(version, str) and not version.strip()):
        report_violation(f"{args.name}: the cilium chart has no version; {fix}.", args.urn)
    elif not isinstance(version, str) or not _EXACT_VERSION.match(version):
        report_violation(f"{args.name}: chart version {_show(version)} is not one exact version "
                         f"(no ranges, wildcards or partial versions); {fix}.", args.urn)


chart_version_pinned = ResourceValidationPolicy(
    name="cilium-chart-version-pinned",
    description="Every Cilium Helm release pins its chart to one exact version (e.g. 1.18.3).",
    validate=validate_chart_version,
)


# --- b. clustermesh-apiserver on an internal CLB --------------------------------------


def _enabled(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def validate_internal_clb(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """A release running the clustermesh-apiserver exposes it on an internal CLB only."""
    values = cilium_values(args.resource_type, args.props)
    if values is None or not _enabled(lookup(values, USE_APISERVER)):
        return
    who = describe(args.name, values)
    service_type = lookup(values, (*SERVICE, "type"))
    if service_type is MISSING:
        service_type = CHART_DEFAULT_SERVICE_TYPE
    if service_type is not UNKNOWN and service_type != "LoadBalancer":
        report_violation(
            f"{who}: clustermesh.apiserver.service.type is {_show(service_type)}; peers reach the "
            f"clustermesh-apiserver through an internal CLB, so set it to LoadBalancer "
            f"(the program does, from mesh:clusters[].apiserver).", args.urn)
    subnet = lookup(values, (*SERVICE, "annotations", INTERNAL_SUBNET_ANNOTATION))
    if subnet is UNKNOWN:
        return
    if not isinstance(subnet, str) or not subnet.strip():
        report_violation(
            f"{who}: the clustermesh-apiserver Service has no "
            f"clustermesh.apiserver.service.annotations[\"{INTERNAL_SUBNET_ANNOTATION}\"], so TKE would "
            f"expose the mesh's etcd on a public CLB; set it to the CLB's subnet ID "
            f"(mesh:clusters[].apiserver.subnetId, e.g. subnet-abcd1234).", args.urn)


clustermesh_apiserver_internal = ResourceValidationPolicy(
    name="clustermesh-apiserver-internal-clb",
    description="The clustermesh-apiserver is only exposed as a LoadBalancer Service on an internal CLB "
                "(qcloud-loadbalancer-internal-subnetid annotation).",
    validate=validate_internal_clb,
)


# --- c. unique cluster ids and names (stack) ------------------------------------------


def _cluster_id(value: Any) -> float | None:
    """A cluster id as a number (5, 5.0 and "5" are the same id), or None if it is none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(int(value.strip()))
        except ValueError:
            return None
    return None


def validate_unique_identities(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """No two Cilium releases of the stack share ``cluster.id`` or ``cluster.name``.

    An unset value counts as the chart's default (id 0, name "default"): two releases
    that both leave it out collide just the same. Unknown values are skipped."""
    ids: dict[float, str] = {}
    names: dict[str, str] = {}
    for r in args.resources:
        values = cilium_values(r.resource_type, r.props)
        if values is None:
            continue
        who = describe(r.name, values)
        raw_id = lookup(values, CLUSTER_ID)
        if raw_id is MISSING:
            raw_id = CHART_DEFAULT_CLUSTER_ID
        if raw_id is not UNKNOWN:
            cid = _cluster_id(raw_id)
            if cid is None:
                report_violation(f"{who}: cluster.id {_show(raw_id)} is not a number; give every cluster its own "
                                 f"integer id (mesh:clusters[].id).", r.urn)
            elif cid in ids:
                report_violation(f"{who}: cluster.id {_show(cid)} is already used by {ids[cid]}; give every cluster "
                                 f"its own id (mesh:clusters[].id, 1..maxConnectedClusters).", r.urn)
            else:
                ids[cid] = who
        name = lookup(values, CLUSTER_NAME)
        if name is MISSING:
            name = CHART_DEFAULT_CLUSTER_NAME
        if name is not UNKNOWN:
            key = str(name)
            if key in names:
                report_violation(f"{who}: cluster.name {_show(name)} is already used by {names[key]}; every cluster "
                                 f"needs its own name (mesh:clusters[].name, the TKE cluster ID).", r.urn)
            else:
                names[key] = who


cluster_identity_unique = StackValidationPolicy(
    name="cilium-cluster-identity-unique",
    description="Every Cilium release of the stack has its own cluster.id and cluster.name.",
    validate=validate_unique_identities,
)


# --- d. the CA is protected -----------------------------------------------------------


def validate_ca_protected(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """The CA's private key and self-signed certificate carry ``protect``."""
    if args.resource_type not in CA_TYPES:
        return
    if not args.opts.protect:
        kind = "private key" if args.resource_type == PRIVATE_KEY_TYPE else "certificate"
        report_violation(
            f"{args.name}: the mesh CA {kind} ({args.resource_type}) is not protected; deleting or replacing it "
            f"re-keys every cluster at once. Register it with pulumi.ResourceOptions(protect=True), as "
            f"components/ca.py does.", args.urn)


ca_protected = ResourceValidationPolicy(
    name="mesh-ca-protected",
    description="The mesh CA (tls PrivateKey and SelfSignedCert) is protected against deletion and replacement.",
    validate=validate_ca_protected,
)


# --- e. the CA key only as a secret ----------------------------------------------------


class KeyState(enum.Enum):
    """What the engine sent for a value, as only the remediation pass can see it."""

    SECRET = "secret"
    """Marked secret (itself or an enclosing object)."""
    PLAIN = "plain"
    """A known value without a secret marker."""
    UNKNOWN = "unknown"
    """Known only after apply, unmarked (nothing to judge)."""
    MISSING = "missing"


def is_secret_marker(value: Any) -> bool:
    """Whether ``value`` is the wire form of a secret (``{<sig key>: <secret sig>, "value": …}``)."""
    return isinstance(value, Mapping) and value.get(SPECIAL_SIG_KEY) == SPECIAL_SECRET_SIG


def secret_state(wire: Any, path: Sequence[str]) -> KeyState:
    """How the value at ``path`` of wire-form properties was sent: a secret marker on it or
    on any object that encloses it makes it ``SECRET``."""
    node = wire
    for key in path:
        if is_secret_marker(node):
            return KeyState.SECRET
        if is_unknown(node):
            return KeyState.UNKNOWN
        if not isinstance(node, Mapping) or key not in node:
            return KeyState.MISSING
        node = node[key]
    if is_secret_marker(node):
        return KeyState.SECRET
    return KeyState.UNKNOWN if is_unknown(node) else KeyState.PLAIN


class PlainKeyLedger:
    """URNs whose ``tls.ca.key`` the remediation pass saw plain, for the validation pass.

    The engine runs both passes of one resource in the same policy pack process,
    remediation first; the gRPC server serves calls on several threads, hence the lock.
    ``take`` forgets the entry, so nothing outlives the resource's analysis."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plain: set[str] = set()

    def note(self, urn: str) -> None:
        with self._lock:
            self._plain.add(urn)

    def take(self, urn: str) -> bool:
        with self._lock:
            if urn in self._plain:
                self._plain.discard(urn)
                return True
            return False


PLAIN_CA_KEYS = PlainKeyLedger()


def inspect_ca_key(args: ResourceValidationArgs) -> None:
    """Remediation pass: note a Cilium release whose ``tls.ca.key`` came without a secret
    marker. Changes nothing (returns None): a plain key is a bug of the program to fix,
    not something to paper over in the policy pack."""
    if cilium_values(args.resource_type, args.props) is None:
        return None
    # The SDK's own inverse of its remediation deserialisation: the markers come back.
    wire = serialize_properties(args.props)
    if secret_state(wire, ("values", *CA_KEY)) is KeyState.PLAIN:
        PLAIN_CA_KEYS.note(args.urn)
    return None


def validate_ca_key(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Validation pass: the release has a non-empty ``tls.ca.key``, and the remediation
    pass did not see it plain."""
    values = cilium_values(args.resource_type, args.props)
    if values is None:
        return
    who = describe(args.name, values)
    if PLAIN_CA_KEYS.take(args.urn):
        report_violation(
            f"{who}: values.tls.ca.key reaches the engine as a plain value, so the mesh CA's private key would be "
            f"stored unencrypted in the state and shown in diffs; pass it as a Pulumi secret "
            f"(pulumi.Output.secret(...), as SharedCa.key_b64 in components/ca.py is).", args.urn)
    key = lookup(values, CA_KEY)
    if key is UNKNOWN:
        return
    if not isinstance(key, str) or not key.strip():
        report_violation(
            f"{who}: values.tls.ca.key is {'not set' if key is MISSING else 'empty'}, so the chart would make a CA "
            f"of its own in this cluster and its peers would not trust it; give every release the shared mesh CA "
            f"(tls.ca.cert and tls.ca.key from SharedCa, as a secret).", args.urn)


ca_key_secret = ResourceValidationPolicy(
    name="cilium-ca-key-secret",
    description="Every Cilium release gets the mesh CA key (tls.ca.key), and only as a Pulumi secret.",
    validate=validate_ca_key,
    remediate=inspect_ca_key,
    # The only level at which the SDK calls `remediate`, the one place a policy sees secret
    # markers; Analyze reports this policy's violations as mandatory.
    enforcement_level=EnforcementLevel.REMEDIATE,
)


POLICIES: list[Policy] = [
    chart_version_pinned,
    clustermesh_apiserver_internal,
    cluster_identity_unique,
    ca_protected,
    ca_key_secret,
]
"""Every policy of the pack, in the order ``__main__.py`` registers them."""

