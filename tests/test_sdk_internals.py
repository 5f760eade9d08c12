"""The private Pulumi SDK internals of components/sdk_internals.py: each is where it was, and does what the
program and the tools rely on. An SDK upgrade that moves one fails here first."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
from typing import Any

import pulumi
import pulumi.runtime
from google.protobuf import json_format

from components import sdk_internals as sdk


def test_they_were_read_from_the_pinned_sdk() -> None:
    """A new SDK version: read each of them again in its source, run make test and make e2e, then update READ_FROM."""
    assert importlib.metadata.version("pulumi") == sdk.READ_FROM


def test_config_keys_lists_what_the_host_passes_and_what_is_set_here(monkeypatch) -> None:
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"mesh:clusters": "[]", "tencentcloud:region": "ap-guangzhou"}))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(["mesh:caPrivateKey"]))
    pulumi.runtime.set_all_config({"mesh:caPrivateKey": "k", "mesh:topology": "full"}, ["mesh:caPrivateKey"])
    try:
        keys = sdk.config_keys()
        assert set(keys) >= {"mesh:clusters", "tencentcloud:region", "mesh:caPrivateKey", "mesh:topology"}
        # ... and the public API reads each of them
        assert pulumi.runtime.get_config("mesh:topology") == "full"
        assert pulumi.runtime.get_config("mesh:clusters") == "[]"
        assert pulumi.runtime.is_config_secret("mesh:caPrivateKey")
        assert not pulumi.runtime.is_config_secret("mesh:topology")
    finally:
        pulumi.runtime.set_all_config({}, [])


def test_the_wire_signatures_are_the_protocol_constants() -> None:
    """The signatures are part of Pulumi's wire protocol (sdk/go/common/resource/properties.go): fixed strings."""
    assert sdk.SIG_KEY == "4dabf18193072939515e22adb298388d"
    assert sdk.SECRET_SIG == "1b47061264138c4ac30d75fd1eb44270"
    assert sdk.RESOURCE_SIG == "5cf8f73096256a8f31e491e813e4eb8e"
    assert sdk.ASSET_SIG == "c44067f5952c0a294b673a41bacd8c17"
    assert sdk.ARCHIVE_SIG == "0def7320c3a5731c473e5ecbe6d01bc7"
    assert sdk.UNKNOWN == "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def test_serialising_outputs_as_the_engine_does() -> None:
    """A secret output is a signed wrapper; sync_await runs a coroutine to its end on the SDK's loop."""
    state = sdk.sync_await(sdk.serialize_properties({"a": 1, "k": sdk.wrap_rpc_secret("v")}, {}))
    as_dict = {k: state.fields[k] for k in state.fields}
    assert as_dict["a"].number_value == 1
    secret = as_dict["k"].struct_value.fields
    assert secret[sdk.SIG_KEY].string_value == sdk.SECRET_SIG and secret["value"].string_value == "v"

    async def three() -> int:
        return 3

    assert sdk.sync_await(three()) == 3
    assert asyncio.iscoroutinefunction(sdk.run_program_in_stack)


def test_the_mock_monitor_and_the_run_state_are_where_the_engine_uses_them() -> None:
    assert callable(sdk.MockMonitor.RegisterResource) and callable(sdk.MockMonitor.ReadResource)
    assert sdk.ResourceRegistration("urn", "id", {}).urn == "urn"
    assert sdk.RegisterResourceResponse(urn="u", id="i").urn == "u"
    sdk.reset_root_and_outputs()
    from pulumi.runtime import settings

    assert settings.ROOT.get() is None and len(settings.SETTINGS.outputs) == 0


def test_mock_engine_tells_the_mock_monitor_from_the_engines(monkeypatch) -> None:
    """set_mocks installs the SDK's MockMonitor (the offline plan extends it); under the real engine the
    monitor is the engine's gRPC client."""
    import grpc
    from pulumi.runtime import settings
    from pulumi.runtime.proto import resource_pb2_grpc

    from tests.mockcloud import ComputingMocks

    pulumi.runtime.set_mocks(ComputingMocks(), preview=False)
    assert sdk.mock_engine()
    channel = grpc.insecure_channel("127.0.0.1:1")  # never connects: no call is made
    try:
        monkeypatch.setattr(settings.SETTINGS, "monitor", resource_pb2_grpc.ResourceMonitorStub(channel))
        assert not sdk.mock_engine()
    finally:
        channel.close()


def test_the_mock_engine_shortcuts_leave_out_stack_traces_read_a_class_s_types_once_and_keep_outputs() -> None:
    from pulumi import _types
    from pulumi.runtime import resource, stack
    from pulumi_kubernetes.helm.v3 import Release

    stack_trace, resource_types, massage = resource._get_stack_trace, _types.resource_types, stack.massage
    assert isinstance(stack_trace(), type(resource._get_stack_trace()))
    expected = resource_types(Release)
    assert "status" in expected
    outputs = {"clusters": {"cls-a": {"peers": ["cls-b", "cls-c"], "region": "ap-guangzhou", "id": 1,
                                      "on": True, "none": None, "nested": [["x"], {"y": "z"}]}}, "ca": "pem"}
    massaged = massage(outputs, [])
    with sdk.mock_engine_shortcuts():
        assert len(resource._get_stack_trace().frames) == 0
        assert _types.resource_types(Release) == expected
        assert _types.resource_types(Release) is _types.resource_types(Release)
        assert stack.massage(outputs, []) == massaged == outputs
    assert (resource._get_stack_trace, _types.resource_types, stack.massage) == (stack_trace, resource_types, massage)


def test_the_string_shortcut_returns_what_the_sdk_returns_and_every_call_is_still_seen(monkeypatch) -> None:
    """The mock engine installs it (tools.mockengine imports, this module too); it answers only within
    mock_engine_shortcuts, for strings without type information; a wrapper installed after it sees every call."""
    from pulumi.runtime import rpc

    import tools.mockengine  # noqa: F401 - installs the shortcut

    calls: list[Any] = []
    shortcut = rpc.serialize_property

    async def seen(value: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(value)
        return await shortcut(value, *args, **kwargs)

    monkeypatch.setattr(rpc, "serialize_property", seen)
    props = {"peers": {"cls-b": "10.0.0.2", "cls-c": ""}, "names": ["a", "\u00e9\U0001f600", sdk.UNKNOWN],
             "n": 1, "on": True, "none": None, "k": sdk.wrap_rpc_secret("v")}

    def serialized() -> dict[str, Any]:
        return json_format.MessageToDict(sdk.sync_await(sdk.serialize_properties(props, {})))

    slow, slow_calls = serialized(), list(calls)
    calls.clear()
    with sdk.mock_engine_shortcuts():
        assert serialized() == slow
        assert calls == slow_calls and "10.0.0.2" in calls
        typed = sdk.sync_await(rpc.serialize_property("x", [], "k", return_protobuf_value=True))
        assert typed.string_value == "x"


def test_a_struct_filled_within_the_shortcuts_is_the_struct_protobuf_fills() -> None:
    from google.protobuf import struct_pb2

    class Text(str):
        pass

    data = {"peers": {"cls-b": "10.0.0.2", "cls-c": ""}, "names": ["a", "\u00e9", Text("t"), 1, None, True,
                                                                  {"k": ["x", {"y": "z"}]}, []],
            "n": 2.5, "on": False, "none": None, "empty": {}, "s": "v"}

    def filled() -> bytes:
        struct = struct_pb2.Struct()
        for k, v in data.items():
            struct[k] = v
        struct.get_or_create_list("more").extend(["p", 3])
        return struct.SerializeToString(deterministic=True)

    expected = filled()
    with sdk.mock_engine_shortcuts():
        assert filled() == expected
    assert filled() == expected


def test_an_output_resolved_within_the_shortcuts_resolves_as_the_sdk_s() -> None:
    """``transfer_properties_at_once``: the same properties get Outputs (not ``urn``, nor a custom resource's
    ``id``), and each resolver gives its Output the value, knownness, secretness and resources (the resource
    itself added) the SDK's task gives, or the failure every await raises."""
    from pulumi.runtime import rpc

    class Res:
        pass

    sdk_transfer = rpc.transfer_properties
    props = {"urn": None, "id": None, "status": None, "values": None, "name": None}
    other = pulumi.CustomResource.__new__(pulumi.CustomResource)
    failure = ValueError("the engine failed")
    answers = {"status": ({"ok": "yes"}, True, False, {other}, None), "values": ({"a": pulumi.output.UNKNOWN}, True, True,
               set(), None), "name": (None, False, False, None, failure)}

    async def seen(resolvers: dict[str, Any], res: Res) -> dict[str, Any]:
        for key, answer in answers.items():
            resolvers[key](*answer)
        out: dict[str, Any] = {}
        for key in answers:
            output = res.__dict__[key]
            try:
                resources = await output.resources()
                assert res in resources
                out[key] = (await output.future(with_unknowns=True), await output.is_known(),
                            await output.is_secret(), resources - {res})
            except ValueError as err:
                out[key] = err
        return out

    def run(transfer: Any, custom: bool) -> tuple[list[str], dict[str, Any]]:
        res = Res()
        resolvers = transfer(res, props, custom)
        return sorted(resolvers), sdk.sync_await(seen(resolvers, res))

    for custom in (True, False):
        expected = run(sdk_transfer, custom)
        with sdk.mock_engine_shortcuts():
            assert rpc.transfer_properties is not sdk_transfer
            assert run(rpc.transfer_properties, custom) == expected
        assert rpc.transfer_properties is sdk_transfer
    assert expected[1]["status"] == ({"ok": "yes"}, True, False, {other})
    assert expected[1]["values"][1] is False  # an unknown inside: not known
    assert expected[1]["name"] is failure


def test_a_urn_computed_within_the_shortcuts_is_the_sdk_s() -> None:
    """``create_urn`` of plain strings (what the SDK computes for each registration) is the same string, already
    resolved; of Outputs, the SDK's own computation."""
    from pulumi.runtime import resource

    from tests.mockcloud import ComputingMocks

    pulumi.runtime.set_mocks(ComputingMocks(), project="proj", stack="st", preview=True)
    sdk_create_urn = resource.create_urn
    parent = "urn:pulumi:st::proj::mesh:tke:Cluster::cls-a"
    cases: list[tuple[Any, ...]] = [("cls-a", "mesh:tke:Cluster", None), ("rel", "kubernetes:helm.sh/v3:Release",
                                    parent), ("x", "t", None, "other-project", "other-stack"), ("y", "t", "")]

    def urns(create_urn: Any) -> list[Any]:
        out = []
        for args in cases + [(pulumi.Output.from_input("z"), "t", parent)]:
            output = create_urn(*args)
            out.append((sdk.sync_await(output.future()), sdk.sync_await(output.is_known()),
                        sdk.sync_await(output.is_secret()), sdk.sync_await(output.resources())))
        return out

    expected = urns(sdk_create_urn)
    assert expected[0][0] == "urn:pulumi:st::proj::mesh:tke:Cluster::cls-a"
    assert expected[1][0] == "urn:pulumi:st::proj::mesh:tke:Cluster$kubernetes:helm.sh/v3:Release::rel"
    with sdk.mock_engine_shortcuts():
        assert resource.create_urn is not sdk_create_urn
        assert urns(resource.create_urn) == expected
    assert resource.create_urn is sdk_create_urn
