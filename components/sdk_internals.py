"""Every private Pulumi SDK internal the program and the tools rely on, in one place.

The program and the tools use the public SDK wherever it has what they need. What it does not
have is here, so that an SDK upgrade that moves one of them breaks this module (and
``tests/test_sdk_internals.py``, which checks each name and what it does) first, instead of a
plan or a run in the middle of something else:

- the program: the keys of the stack's config (``raw_mesh_config`` reads every ``mesh:*`` key so
  that typos are reported; the public ``pulumi.Config`` reads one key at a time and cannot list
  them). Values and secret-ness are read through the public ``pulumi.runtime.get_config`` and
  ``is_config_secret``;
- the program: whether Pulumi's mock engine runs it (the offline plan, the tests), which loads no
  provider plugin (``mock_engine``; the SDK has no public way to ask);
- the plan's mock engine (``tools.mockengine``): running a program the way the language host does
  (``run_in_stack``, the root stack and the output tasks of a previous run, ``_sync_await``),
  serialising a resource's outputs as the engine would (``serialize_properties``,
  ``wrap_rpc_secret``) and the mock monitor it extends; and the costs of the SDK it spares the program
  (``mock_engine_shortcuts``, ``install_string_shortcut``);
- the plan's renderer (``tools.render``): the signatures of secrets, resource references,
  assets and unknowns on the wire.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pulumi
import pulumi.runtime
from google.protobuf.internal import well_known_types as _wkt  # type: ignore[import-untyped]
from pulumi import _types
from pulumi import output as _output
from pulumi.runtime import config as _config
from pulumi.runtime import mocks as _mocks
from pulumi.runtime import resource as _resource
from pulumi.runtime import rpc as _rpc
from pulumi.runtime import settings as _settings
from pulumi.runtime import stack as _stack
from pulumi.runtime.proto import resource_pb2 as _resource_pb2
from pulumi.runtime.proto import source_pb2 as _source_pb2
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

# --------------------------------------------------------------------------- the program: config keys


def config_keys() -> list[str]:
    """Every config key of the stack (``namespace:key``): those the language host passes in the
    environment (``PULUMI_CONFIG``) and those set in this process (mocks, automation)."""
    keys = dict.fromkeys(pulumi.runtime.get_config_env())
    keys.update(dict.fromkeys(_config.CONFIG.get()))
    return [k for k in keys if isinstance(k, str)]


def mock_engine() -> bool:
    """True when the program runs on Pulumi's mock engine (``set_mocks``), false under the real engine."""
    return isinstance(_settings.get_monitor(), _mocks.MockMonitor)


# --------------------------------------------------------------------------- the mock engine

MockMonitor = _mocks.MockMonitor
"""The SDK's mock resource monitor, which ``tools.mockengine.RecordingMonitor`` extends."""
ResourceRegistration = _mocks.MockMonitor.ResourceRegistration
RegisterResourceResponse = _resource_pb2.RegisterResourceResponse
serialize_properties = _rpc.serialize_properties
wrap_rpc_secret = _rpc.wrap_rpc_secret
sync_await = _sync_await
"""Run a coroutine to completion on the SDK's event loop (the language host's way)."""
run_program_in_stack = run_in_stack


def read_resource(monitor: Any, request: Any) -> Any:
    """The SDK mock monitor's own ``ReadResource`` (the recording monitor extends it)."""
    return _mocks.MockMonitor.ReadResource(monitor, request)


def register_resource_outputs(monitor: Any, request: Any) -> Any:
    """The SDK mock monitor's own ``RegisterResourceOutputs``."""
    return _mocks.MockMonitor.RegisterResourceOutputs(monitor, request)


def reset_root_and_outputs() -> None:
    """Before running a program in this process: no root stack yet (``set_mocks`` made and finished one),
    and no output task of an earlier (failed) run left to await."""
    _settings.ROOT.set(None)
    _settings.SETTINGS.outputs.clear()


class _Shortcuts:
    active = False
    """True while a program runs on the mock engine (``mock_engine_shortcuts``)."""
    string_shortcut = False
    """True once ``install_string_shortcut`` has run."""


@contextmanager
def mock_engine_shortcuts() -> Iterator[None]:
    """While a program runs on the mock engine, seven per-registration costs of the SDK that it does not need:

    - the stack trace of every resource's constructor (``_get_stack_trace``: ``traceback.extract_stack`` and a
      source position per frame), which the real engine shows next to a failed resource; the mock engine's
      recording keeps neither it nor the source position taken from it;
    - the types of a resource class (``_types.resource_types``, read from its annotations with
      ``typing.get_type_hints``) computed again for every resource of the class when its outputs are resolved: here
      once a class. They are what the class's annotations say, which do not change while the program runs;
    - the walk of ``rpc.serialize_property`` over every string without type information (most of what a mesh
      serialises: peer names and addresses), which it returns as it is: see ``install_string_shortcut``;
    - the same for the stack's outputs, which the SDK converts value by value (``stack.massage``, through the
      module's name) before it serialises them: a ``str`` is returned as it is (``is_primitive``), here at once;
    - protobuf's filling of a ``Struct`` (``Struct.update``, ``ListValue.extend``: Python code, a call and four type
      checks per value): a ``str`` item is set at once, as ``_SetStructValue`` sets it (``string_value``);
    - an Output per property of every resource as a task awaiting four futures (``rpc.transfer_properties``,
      about 36 for a Helm release): here one future of the same data, set when the engine answers (see
      ``transfer_properties_at_once``);
    - the URN the SDK computes of every registration with Outputs (``resource.create_urn``: ``from_input``,
      ``apply``, ``Output.all``) for a response it would fake without an engine, which the mock engine never reads:
      of plain strings, the same URN at once, already resolved (half of what a bare component's registration cost,
      measured on 1,000 of them).
    """
    stack_trace, resource_types = _resource._get_stack_trace, _types.resource_types
    types: dict[type, dict[str, type]] = {}

    def once_a_class(resource_cls: type) -> dict[str, type]:
        if resource_cls not in types:
            types[resource_cls] = resource_types(resource_cls)
        return types[resource_cls]

    massage = _stack.massage

    def massage_strings_at_once(attr: Any, seen: list[Any]) -> Any:
        return attr if type(attr) is str else massage(attr, seen)

    update, extend, set_value = _wkt.Struct.update, _wkt.ListValue.extend, _wkt._SetStructValue

    def update_strings_at_once(self: Any, dictionary: Any) -> None:
        fields = self.fields
        for key, value in dictionary.items():
            if type(value) is str:
                fields[key].string_value = value
            else:
                set_value(fields[key], value)

    def extend_strings_at_once(self: Any, elem_seq: Any) -> None:
        values = self.values
        for value in elem_seq:
            if type(value) is str:
                values.add().string_value = value
            else:
                set_value(values.add(), value)

    transfer, create_urn = _rpc.transfer_properties, _resource.create_urn

    def urn_at_once(name: Any, type_: Any, parent: Any = None, project: Any = None, stack: Any = None) -> Any:
        # What the SDK's Output computation gives of plain strings (a resource's name and type, its parent's URN
        # when the resource is registered): the same string, as an Output that is already resolved.
        if type(name) is not str or type(type_) is not str or not (parent is None or type(parent) is str):
            return create_urn(name, type_, parent, project, stack)
        if parent is not None:
            prefix = parent[0:parent.rfind("::")] + "$"
        else:
            prefix = ("urn:pulumi:" + (stack if stack is not None else _settings.get_stack()) + "::"
                      + (project if project is not None else _settings.get_project()) + "::")
        return _resolved(prefix + type_ + "::" + name)

    _resource._get_stack_trace = _source_pb2.StackTrace
    _rpc.transfer_properties = transfer_properties_at_once
    _resource.create_urn = urn_at_once
    _types.resource_types = once_a_class
    _stack.massage = massage_strings_at_once
    _wkt.Struct.update, _wkt.ListValue.extend = update_strings_at_once, extend_strings_at_once
    active, _Shortcuts.active = _Shortcuts.active, True
    try:
        yield
    finally:
        _resource._get_stack_trace, _types.resource_types, _stack.massage = stack_trace, resource_types, massage
        _rpc.transfer_properties, _resource.create_urn = transfer, create_urn
        _wkt.Struct.update, _wkt.ListValue.extend = update, extend
        _Shortcuts.active = active


def transfer_properties_at_once(res: Any, props: Any, custom: bool) -> dict[str, Any]:
    """``rpc.transfer_properties``: an Output per property of a resource, and the resolver the SDK calls with its
    value once the engine has answered. The SDK's Output is a task awaiting four futures (resources, value, known,
    secret), set by the resolver; here the resolver sets the one future of the data those four make
    (``Output._from_data``, the SDK's own factory), as the task would have: resources with the resource itself, a
    value with an unknown not known, a failure raised by every await."""
    resolvers: dict[str, Any] = {}
    for name in props:
        if name == "urn" or (name == "id" and custom):
            continue
        data: asyncio.Future[Any] = asyncio.Future()
        resolvers[name] = functools.partial(_resolve_data, res, data)
        res.__dict__[name] = pulumi.Output._from_data(data)
    return resolvers


def _resolved(value: str) -> Any:
    """A known, not secret Output of ``value`` that depends on no resource (``Output.from_input(value)``)."""
    data: asyncio.Future[Any] = asyncio.Future()
    data.set_result(_output._OutputData(resources=set(), value=value, is_known=True, is_secret=False))
    return pulumi.Output._from_data(data)


def _resolve_data(res: Any, data: asyncio.Future[Any], value: Any, is_known: bool, is_secret: bool,
                  deps: Any, failed: Exception | None) -> None:
    if failed is not None:
        data.set_exception(failed)
        return
    resources = set(deps) if deps else set()
    resources.add(res)
    data.set_result(_output._OutputData(resources=resources, value=value, is_known=is_known, is_secret=is_secret))


def install_string_shortcut() -> None:
    """Wrap ``rpc.serialize_property`` (the SDK calls it once for every value it sends, nested ones too, through
    the module's name): while ``mock_engine_shortcuts`` is active, a ``str`` without type information is returned
    at once, as the SDK's own function returns it after a dozen type checks (none of which a ``str`` passes: not a
    sequence to walk, an unknown, a resource, an asset or archive, an awaitable, an Output, an input type or a
    mapping); anything else, and everything outside a mock engine run, goes to the SDK's function.

    Installed once, when the mock engine is imported (``tools.mockengine``; the program never imports it), and
    underneath anything that wraps the function later: a wrapper still sees every call (tests/test_growth.py counts
    them)."""
    if _Shortcuts.string_shortcut:
        return
    sdk_function = _rpc.serialize_property

    async def serialize_property(value: Any, deps: Any, property_key: Any, resource_obj: Any = None,
                                 input_transformer: Any = None, typ: Any = None, keep_output_values: bool = False,
                                 exclude_resource_refs_from_deps: bool = False,
                                 return_protobuf_value: bool = False) -> Any:
        if type(value) is str and typ is None and not return_protobuf_value and _Shortcuts.active:
            return value
        return await sdk_function(value, deps, property_key, resource_obj, input_transformer, typ,
                                  keep_output_values, exclude_resource_refs_from_deps, return_protobuf_value)

    _rpc.serialize_property = serialize_property
    _Shortcuts.string_shortcut = True


# --------------------------------------------------------------------------- the wire signatures

SIG_KEY: str = _rpc._special_sig_key
SECRET_SIG: str = _rpc._special_secret_sig
RESOURCE_SIG: str = _rpc._special_resource_sig
ASSET_SIG: str = _rpc._special_asset_sig
ARCHIVE_SIG: str = _rpc._special_archive_sig
UNKNOWN: str = _rpc.UNKNOWN
"""The wire value of an unknown (a value only known after an update)."""

READ_FROM = "3.272.0"
"""The pulumi SDK these were read from (requirements.txt pins it)."""

__all__: list[str] = [
    "config_keys", "mock_engine", "MockMonitor", "read_resource", "register_resource_outputs", "ResourceRegistration",
    "RegisterResourceResponse", "serialize_properties", "wrap_rpc_secret", "sync_await", "run_program_in_stack",
    "reset_root_and_outputs", "mock_engine_shortcuts", "install_string_shortcut", "SIG_KEY", "SECRET_SIG",
    "RESOURCE_SIG", "ASSET_SIG", "ARCHIVE_SIG", "UNKNOWN", "READ_FROM",
]
