"""The CrossGuard policy pack (``policy/``), called directly on the resources of real plans.

Every policy runs on what the program registers for the committed stacks and a generated
one (``tools.plan.plan`` on the mock engine), turned into exactly what the policy SDK hands
a policy: the engine sends inputs with secret markers and unknown sentinels kept
(``KeepSecrets``/``KeepUnknowns``) and numbers as doubles; ``pulumi_policy`` deserialises them
with secrets unwrapped for ``Analyze``/``AnalyzeStack`` and wrapped in ``Secret`` for
``Remediate``. The adapter below does the same with the SDK's own functions, so a policy
that passes here passes in ``pulumi preview --policy-pack policy``. Each policy also gets
the real props broken on purpose and must report it, naming the resource.

``PolicyPack`` is never constructed (it starts a gRPC server and blocks); ``__main__.py``
is only parsed.
"""

from __future__ import annotations

import ast
import copy
from typing import Any

import pytest
from google.protobuf import json_format, struct_pb2
from hypothesis import given, settings
from hypothesis import strategies as st
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import SPECIAL_SECRET_SIG, SPECIAL_SIG_KEY, deserialize_properties, serialize_properties
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from policy import mesh_policies as mp
from tests.conftest import ROOT, cluster_entry, mesh_config, write_stack
from tests.mockcloud import ComputingMocks, engine_inputs
from tools.mockengine import Recording, Registration
from tools.plan import plan

RELEASE = mp.RELEASE_TYPE
DELETE = object()
"""``mutate`` value: remove the key."""


# --- the adapter: a Registration as the policy SDK presents it --------------------------


def wire(inputs: dict[str, Any]) -> dict[str, Any]:
    """Inputs as a policy pack receives them: through a protobuf Struct (numbers become doubles)."""
    struct = struct_pb2.Struct()
    struct.update(inputs)
    return json_format.MessageToDict(struct)


def _skip_internal_keys(value: Any) -> Any:
    """The engine marshals Analyze/AnalyzeStack properties with ``SkipInternalKeys`` ("__" keys)."""
    if isinstance(value, dict):
        return {k: _skip_internal_keys(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [_skip_internal_keys(v) for v in value]
    return value


def analyze_props(inputs: dict[str, Any]) -> Any:
    """What ``Analyze``/``AnalyzeStack`` pass a validation: secrets unwrapped, unknowns guarded."""
    return unknown_checking_proxy(deserialize_properties(_skip_internal_keys(wire(inputs))))


def remediate_props(inputs: dict[str, Any]) -> Any:
    """What ``Remediate`` passes a remediation: secrets wrapped in ``pulumi_policy.Secret``."""
    return unknown_checking_proxy(deserialize_properties(wire(inputs), True))


def options(reg: Registration, protect: bool | None = None) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=reg.protect if protect is None else protect,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=list(reg.additional_secret_outputs),
        parent=reg.parent or None,
    )


def resource_args(reg: Registration, props: Any, protect: bool | None = None) -> ResourceValidationArgs:
    return ResourceValidationArgs(reg.type, props, reg.urn, reg.name, options(reg, protect), None)


def run_resource_policy(
    policy: ResourceValidationPolicy,
    reg: Registration,
    inputs: dict[str, Any] | None = None,
    *,
    protect: bool | None = None,
    remediation_pass: bool = True,
) -> list[str]:
    """The engine's two passes over one resource: remediations (the SDK calls ``remediate``
    only at level ``remediate``), then the validation. Returns the violation messages."""
    inputs = engine_inputs(reg, inputs)  # policies see the inputs after the provider's Check
    if remediation_pass and policy.enforcement_level == EnforcementLevel.REMEDIATE and policy.has_remediation():
        assert policy.remediate(resource_args(reg, remediate_props(inputs), protect)) is None, \
            "the pack's remediations never rewrite a resource"
    found: list[str] = []
    policy.validate(resource_args(reg, analyze_props(inputs), protect), lambda msg, urn=None: found.append(msg))
    return found


def run_stack_policy(
    policy: StackValidationPolicy, regs: list[Registration], inputs: dict[str, dict[str, Any]] | None = None,
) -> list[tuple[str, str | None]]:
    """``AnalyzeStack`` over ``regs`` (``inputs`` replaces some resources' inputs, by URN)."""
    inputs = inputs or {}
    resources = [
        PolicyResource(r.type, analyze_props(engine_inputs(r, inputs.get(r.urn))), r.urn, r.name, options(r),
                       None, None, [], {})
        for r in regs
    ]
    found: list[tuple[str, str | None]] = []
    policy.validate(StackValidationArgs(resources), lambda msg, urn=None: found.append((msg, urn)))
    return found


def mutate(inputs: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A deep copy of wire-form ``inputs`` with ``path`` set to ``value`` (or removed: ``DELETE``)."""
    out = copy.deepcopy(inputs)
    node = out
    for key in path[:-1]:
        node = node.setdefault(key, {})
    if value is DELETE:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return out


def secret(value: Any) -> dict[str, Any]:
    return {SPECIAL_SIG_KEY: SPECIAL_SECRET_SIG, "value": value}


# --- real plans -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Recording]:
    """The committed stacks with computed outputs, prod as a first preview (CA and CLB
    unknown), and a generated 4-cluster stack with a created CLB."""
    raw = mesh_config(3)
    raw["clusters"].append(cluster_entry(4, create_clb=True, region="ap-shanghai"))
    generated = write_stack(tmp_path_factory.mktemp("policy-stack"), raw, stack="policy")
    return {
        "dev": plan(str(ROOT / "stacks/Pulumi.dev.yaml"), mocks=ComputingMocks()),
        "prod": plan(str(ROOT / "stacks/Pulumi.prod.yaml"), mocks=ComputingMocks()),
        "prod-preview": plan(str(ROOT / "stacks/Pulumi.prod.yaml")),
        "generated": plan(str(generated), mocks=ComputingMocks()),
    }


def releases(rec: Recording) -> list[Registration]:
    return [r for r in rec.resources.values() if r.type == RELEASE]


def of_type(rec: Recording, typ: str) -> Registration:
    hits = [r for r in rec.resources.values() if r.type == typ]
    assert len(hits) == 1, hits
    return hits[0]


RESOURCE_POLICIES = [p for p in mp.POLICIES if isinstance(p, ResourceValidationPolicy)]
STACK_POLICIES = [p for p in mp.POLICIES if isinstance(p, StackValidationPolicy)]


def test_the_pack_lists_each_policy_once() -> None:
    names = [p.name for p in mp.POLICIES]
    assert len(names) == len(set(names)) == 5
    assert {p.name for p in STACK_POLICIES} == {"cilium-cluster-identity-unique"}
    # Pack-level mandatory everywhere, except the one that needs the remediation pass.
    assert {p.name: p.enforcement_level for p in mp.POLICIES if p.enforcement_level is not None} == {
        "cilium-ca-key-secret": EnforcementLevel.REMEDIATE}


def test_main_builds_the_mandatory_pack_from_the_module() -> None:
    """Parsed, not run: running it would start the analyzer's server."""
    tree = ast.parse((ROOT / "policy" / "__main__.py").read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "PolicyPack"]
    assert len(calls) == 1
    kw = {k.arg: ast.unparse(k.value) for k in calls[0].keywords}
    assert kw == {"name": "'tke-cilium-mesh'", "enforcement_level": "EnforcementLevel.MANDATORY",
                  "policies": "POLICIES"}
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "mesh_policies"]
    assert [a.name for n in imports for a in n.names] == ["POLICIES"]


@pytest.mark.parametrize("name", ["dev", "prod", "prod-preview", "generated"])
def test_every_policy_passes_on_the_real_plans(plans: dict[str, Recording], name: str) -> None:
    rec = plans[name]
    assert len(releases(rec)) >= 2 and of_type(rec, mp.PRIVATE_KEY_TYPE) and of_type(rec, mp.SELF_SIGNED_CERT_TYPE)
    for policy in RESOURCE_POLICIES:
        for reg in rec.resources.values():
            assert run_resource_policy(policy, reg) == [], (policy.name, reg.urn)
    for stack_policy in STACK_POLICIES:
        assert run_stack_policy(stack_policy, list(rec.resources.values())) == []


# --- a. chart version pinned ------------------------------------------------------------


@pytest.mark.parametrize("version", [
    DELETE, "", "  ", "1.18", "1.18.x", "1.18.*", "~1.18.3", "^1.18.0", ">=1.18.0 <1.19.0", "*", "latest",
    " 1.18.3", "1.18.3 ", 1.18,
])
def test_chart_version_must_be_one_exact_version(plans: dict[str, Recording], version: Any) -> None:
    for reg in releases(plans["prod"]):
        found = run_resource_policy(mp.chart_version_pinned, reg, mutate(reg.inputs, ("version",), version))
        assert len(found) == 1, found
        assert found[0].startswith(f"{reg.name}: ") and "version 1.18.3" in found[0]


@pytest.mark.parametrize("version", ["1.18.3", "v1.18.3", "1.18.4-rc.1", "1.18.3+tke.1"])
def test_exact_versions_pass(plans: dict[str, Recording], version: str) -> None:
    reg = releases(plans["dev"])[0]
    assert run_resource_policy(mp.chart_version_pinned, reg, mutate(reg.inputs, ("version",), version)) == []


def test_version_rule_covers_cilium_charts_only(plans: dict[str, Recording]) -> None:
    reg = releases(plans["dev"])[0]
    unpinned = mutate(reg.inputs, ("version",), DELETE)
    assert run_resource_policy(mp.chart_version_pinned, reg, mutate(unpinned, ("chart",), "ingress-nginx")) == []
    for chart in ("cilium/cilium", "oci://registry.example/charts/cilium"):
        assert len(run_resource_policy(mp.chart_version_pinned, reg, mutate(unpinned, ("chart",), chart))) == 1


# --- b. clustermesh-apiserver on an internal CLB --------------------------------------

SERVICE = ("values", *mp.SERVICE)
SUBNET = (*SERVICE, "annotations", mp.INTERNAL_SUBNET_ANNOTATION)


@pytest.mark.parametrize("plan_name", ["prod", "prod-preview"])
@pytest.mark.parametrize("subnet", [DELETE, "", None])
def test_apiserver_needs_the_internal_subnet_annotation(plans: dict[str, Recording], plan_name: str,
                                                        subnet: Any) -> None:
    for reg in releases(plans[plan_name]):
        found = run_resource_policy(mp.clustermesh_apiserver_internal, reg, mutate(reg.inputs, SUBNET, subnet))
        cluster = reg.inputs["values"]["cluster"]["name"]
        assert len(found) == 1, found
        assert found[0].startswith(f"{reg.name} (cluster {cluster}): ")
        assert mp.INTERNAL_SUBNET_ANNOTATION in found[0] and "subnetId" in found[0]


@pytest.mark.parametrize("service_type", ["NodePort", "ClusterIP", DELETE])
def test_apiserver_service_must_be_a_load_balancer(plans: dict[str, Recording], service_type: Any) -> None:
    """Unset means the chart's default, NodePort."""
    for reg in releases(plans["dev"]):
        inputs = mutate(reg.inputs, (*SERVICE, "type"), service_type)
        found = run_resource_policy(mp.clustermesh_apiserver_internal, reg, inputs)
        assert len(found) == 1 and found[0].startswith(reg.name) and "set it to LoadBalancer" in found[0], found


def test_no_apiserver_no_clb_rule(plans: dict[str, Recording]) -> None:
    reg = releases(plans["dev"])[0]
    exposed = mutate(mutate(reg.inputs, SUBNET, DELETE), (*SERVICE, "type"), "NodePort")
    off = mutate(exposed, ("values", *mp.USE_APISERVER), False)
    assert run_resource_policy(mp.clustermesh_apiserver_internal, reg, off) == []
    as_string = mutate(exposed, ("values", *mp.USE_APISERVER), "true")
    assert len(run_resource_policy(mp.clustermesh_apiserver_internal, reg, as_string)) == 2


# --- c. unique cluster ids and names (stack) ------------------------------------------

ID = ("values", *mp.CLUSTER_ID)
NAME = ("values", *mp.CLUSTER_NAME)


@pytest.mark.parametrize("plan_name", ["dev", "prod", "generated"])
def test_duplicate_cluster_id_is_reported_on_the_second_release(plans: dict[str, Recording], plan_name: str) -> None:
    rec = plans[plan_name]
    first, second = releases(rec)[:2]
    first_id = first.inputs["values"]["cluster"]["id"]
    assert isinstance(first_id, float)  # as the engine sends numbers
    # An int in the program arrives as a double: compared numerically either way.
    found = run_stack_policy(mp.cluster_identity_unique, list(rec.resources.values()),
                             {second.urn: mutate(second.inputs, ID, int(first_id))})
    first_cluster = first.inputs["values"]["cluster"]["name"]
    assert found == [(
        f"{second.name} (cluster {second.inputs['values']['cluster']['name']}): cluster.id {int(first_id)} is already "
        f"used by {first.name} (cluster {first_cluster}); give every cluster its own id "
        f"(mesh:clusters[].id, 1..maxConnectedClusters).", second.urn)]


def test_duplicate_cluster_name_is_reported(plans: dict[str, Recording]) -> None:
    rec = plans["prod"]
    first, second = releases(rec)[:2]
    found = run_stack_policy(mp.cluster_identity_unique, list(rec.resources.values()),
                             {second.urn: mutate(second.inputs, NAME, first.inputs["values"]["cluster"]["name"])})
    assert len(found) == 1
    message, urn = found[0]
    assert urn == second.urn and "cluster.name" in message and f"already used by {first.name}" in message


def test_unset_ids_collide_on_the_chart_default(plans: dict[str, Recording]) -> None:
    rec = plans["dev"]
    a, b = releases(rec)
    found = run_stack_policy(mp.cluster_identity_unique, list(rec.resources.values()),
                             {a.urn: mutate(a.inputs, ID, DELETE), b.urn: mutate(b.inputs, ID, DELETE)})
    assert [(m.split(":")[0], urn) for m, urn in found] == [(b.name + " (cluster cls-dev3c4d5)", b.urn)]
    assert "cluster.id 0 is already used" in found[0][0]


def test_non_numeric_and_unknown_ids(plans: dict[str, Recording]) -> None:
    rec = plans["dev"]
    a, b = releases(rec)
    found = run_stack_policy(mp.cluster_identity_unique, list(rec.resources.values()),
                             {a.urn: mutate(a.inputs, ID, "one"), b.urn: mutate(b.inputs, ID, UNKNOWN_STRING_VALUE)})
    assert len(found) == 1 and found[0][1] == a.urn and "'one' is not a number" in found[0][0]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.booleans()), min_size=3, max_size=3))
def test_ids_are_unique_iff_no_violation(plans: dict[str, Recording], drawn: list[tuple[int, bool]]) -> None:
    """Any ids for prod's three releases, each sent as an int or a double: one violation per
    release whose id an earlier release already has."""
    rec = plans["prod"]
    regs = releases(rec)
    inputs = {r.urn: mutate(r.inputs, ID, float(i) if as_float else i) for r, (i, as_float) in zip(regs, drawn, strict=False)}
    found = run_stack_policy(mp.cluster_identity_unique, list(rec.resources.values()), inputs)
    ids = [i for i, _ in drawn]
    assert len(found) == len(ids) - len(set(ids))
    assert all("cluster.id" in m for m, _ in found)


# --- d. the CA is protected -----------------------------------------------------------


@pytest.mark.parametrize("typ", [mp.PRIVATE_KEY_TYPE, mp.SELF_SIGNED_CERT_TYPE])
def test_unprotected_ca_is_reported(plans: dict[str, Recording], typ: str) -> None:
    reg = of_type(plans["prod"], typ)
    assert reg.protect is True
    found = run_resource_policy(mp.ca_protected, reg, protect=False)
    assert len(found) == 1 and found[0].startswith(f"{reg.name}: the mesh CA ") and "protect=True" in found[0]


def test_protect_rule_covers_the_ca_only(plans: dict[str, Recording]) -> None:
    for reg in plans["prod"].resources.values():
        if reg.type not in mp.CA_TYPES:
            assert run_resource_policy(mp.ca_protected, reg, protect=False) == []


# --- e. the CA key only as a secret ----------------------------------------------------

KEY = ("values", *mp.CA_KEY)


def plain_key(reg: Registration) -> dict[str, Any]:
    """The release's inputs with ``tls.ca.key`` sent without its secret marker."""
    key = reg.inputs["values"]["tls"]["ca"]["key"]
    assert key[SPECIAL_SIG_KEY] == SPECIAL_SECRET_SIG
    return mutate(reg.inputs, KEY, key["value"])


def test_what_a_validation_sees_of_a_secret(plans: dict[str, Recording]) -> None:
    """The evidence the policy is built on: Analyze's props are the same for a secret and a
    plain key; Remediate's still carry the marker."""
    reg = releases(plans["prod"])[0]
    assert serialize_properties(analyze_props(reg.inputs)) == serialize_properties(analyze_props(plain_key(reg)))
    assert mp.secret_state(serialize_properties(remediate_props(reg.inputs)), KEY) is mp.KeyState.SECRET
    assert mp.secret_state(serialize_properties(remediate_props(plain_key(reg))), KEY) is mp.KeyState.PLAIN


@pytest.mark.parametrize("plan_name", ["dev", "prod", "generated"])
def test_plain_ca_key_is_reported(plans: dict[str, Recording], plan_name: str) -> None:
    for reg in releases(plans[plan_name]):
        found = run_resource_policy(mp.ca_key_secret, reg, plain_key(reg))
        assert len(found) == 1, found
        assert found[0].startswith(f"{reg.name} (cluster ") and "as a plain value" in found[0]
        assert "pulumi.Output.secret" in found[0]


def test_plain_key_finding_does_not_outlive_its_resource(plans: dict[str, Recording]) -> None:
    reg = releases(plans["dev"])[0]
    assert len(run_resource_policy(mp.ca_key_secret, reg, plain_key(reg))) == 1
    assert run_resource_policy(mp.ca_key_secret, reg) == []


def test_without_the_remediation_pass_secretness_is_not_checked(plans: dict[str, Recording]) -> None:
    """The limitation: at level mandatory the SDK never calls `remediate`, and the
    validation alone cannot tell a plain key from a secret one."""
    reg = releases(plans["dev"])[0]
    assert run_resource_policy(mp.ca_key_secret, reg, plain_key(reg), remediation_pass=False) == []


def test_secret_enclosing_object_and_unknown_keys_pass(plans: dict[str, Recording]) -> None:
    reg = releases(plans["prod"])[0]
    plain = plain_key(reg)
    whole_values_secret = dict(plain, values=secret(plain["values"]))
    tls_secret = mutate(plain, ("values", "tls"), secret(plain["values"]["tls"]))
    unknown_unmarked = mutate(reg.inputs, KEY, UNKNOWN_STRING_VALUE)
    for inputs, state in ((whole_values_secret, mp.KeyState.SECRET), (tls_secret, mp.KeyState.SECRET),
                          (unknown_unmarked, mp.KeyState.UNKNOWN)):
        assert mp.secret_state(serialize_properties(remediate_props(inputs)), KEY) is state
        assert run_resource_policy(mp.ca_key_secret, reg, inputs) == []


@pytest.mark.parametrize("key,word", [(DELETE, "not set"), (secret(""), "empty"), ("", "empty")])
def test_missing_or_empty_ca_key_is_reported(plans: dict[str, Recording], key: Any, word: str) -> None:
    reg = releases(plans["prod"])[1]
    found = run_resource_policy(mp.ca_key_secret, reg, mutate(reg.inputs, KEY, key))
    assert any(m.startswith(reg.name) and f"values.tls.ca.key is {word}" in m for m in found), found


def test_ca_key_rule_covers_cilium_releases_only(plans: dict[str, Recording]) -> None:
    reg = releases(plans["dev"])[0]
    other = mutate(plain_key(reg), ("chart",), "hubble-ui")
    assert run_resource_policy(mp.ca_key_secret, reg, other) == []


# --- the SDK's own entry points -------------------------------------------------------


def test_the_sdk_servicer_agrees_with_the_adapter(plans: dict[str, Recording]) -> None:
    """The pack's gRPC servicer, called in-process (its server is never started): the
    engine's order (Remediate, then Analyze, per resource; AnalyzeStack at the end) gives
    no diagnostic on the real plan, and a plain CA key a *mandatory* one."""
    from pulumi.runtime.proto import analyzer_pb2
    from pulumi_policy.policy import _PolicyAnalyzerServicer  # what PolicyPack serves; private but pinned

    servicer = _PolicyAnalyzerServicer("tke-cilium-mesh", "0.0.1", mp.POLICIES, EnforcementLevel.MANDATORY)

    def request(reg: Registration, inputs: dict[str, Any] | None = None) -> Any:
        props = struct_pb2.Struct()
        props.update(reg.inputs if inputs is None else inputs)
        return analyzer_pb2.AnalyzeRequest(
            type=reg.type, name=reg.name, urn=reg.urn, properties=props,
            options=analyzer_pb2.AnalyzerResourceOptions(protect=reg.protect, parent=reg.parent))

    rec = plans["prod"]
    for reg in rec.resources.values():
        assert not servicer.Remediate(request(reg), None).remediations
        assert not servicer.Analyze(request(reg), None).diagnostics, reg.urn
    stack = analyzer_pb2.AnalyzeStackRequest(resources=[
        analyzer_pb2.AnalyzerResource(type=r.type, name=r.name, urn=r.urn, properties=request(r).properties,
                                      options=request(r).options) for r in rec.resources.values()])
    assert not servicer.AnalyzeStack(stack, None).diagnostics

    reg = releases(rec)[0]
    assert not servicer.Remediate(request(reg, plain_key(reg)), None).remediations
    diagnostics = servicer.Analyze(request(reg, plain_key(reg)), None).diagnostics
    assert [(d.policyName, d.enforcementLevel, d.urn) for d in diagnostics] == [
        ("cilium-ca-key-secret", analyzer_pb2.MANDATORY, reg.urn)]
    assert f"{reg.name} (cluster " in diagnostics[0].message


# --- helpers of the module --------------------------------------------------------------


def test_lookup_never_raises_on_unknowns(plans: dict[str, Recording]) -> None:
    reg = releases(plans["prod-preview"])[0]
    props = analyze_props(reg.inputs)
    assert mp.lookup(props, ("values", "tls", "ca", "cert")) is mp.UNKNOWN
    assert mp.lookup(props, ("values", "tls", "ca", "cert", "deeper")) is mp.UNKNOWN
    assert mp.lookup(props, ("values", "no", "such")) is mp.MISSING
    assert mp.lookup(props, ("values", "cluster", "id")) == 11.0

