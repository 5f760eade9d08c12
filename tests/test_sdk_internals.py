"""The private Pulumi SDK internals of components/sdk_internals.py: each is where it was, and does what the
program and the tools rely on. An SDK upgrade that moves one fails here first."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json

import pulumi
import pulumi.runtime

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


class _StackOutputs(pulumi.runtime.Mocks):
    def new_resource(self, args):  # type: ignore[no-untyped-def]
        outputs = {"clusters": {"a": {"peers": ["b", "c"]}}, "kubeconfigs": "k"}
        return args.name, {"name": args.name, "outputs": outputs, "secretOutputNames": ["kubeconfigs"]}

    def call(self, args):  # type: ignore[no-untyped-def]
        return {}


def test_stack_output_is_get_output_without_its_walk() -> None:
    """The value, secret mark and dependency of StackReference.get_output, for a named and a missing output."""
    pulumi.runtime.set_mocks(_StackOutputs(), project="p", stack="s", preview=False)
    ref = pulumi.StackReference("org/p/s")
    ours = [sdk.stack_output(ref, n) for n in ("clusters", "kubeconfigs", "missing")]
    theirs = [ref.get_output(n) for n in ("clusters", "kubeconfigs", "missing")]

    async def details(o: pulumi.Output) -> tuple:
        return await o.future(), await o.is_secret(), await o.is_known(), {r.urn for r in await o.resources()}

    async def both() -> tuple:
        return [await details(o) for o in ours], [await details(o) for o in theirs]

    mine, sdks = sdk.sync_await(both())
    assert mine == sdks
    assert [(v, s) for v, s, _, _ in mine] == [({"a": {"peers": ["b", "c"]}}, False), ("k", True), (None, False)]
