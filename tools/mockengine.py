"""Run the real ``__main__.py`` on Pulumi's mock engine and record what it registers.

This is a test double for the *engine and the cloud* only: the program, its config
and its components are exactly those ``pulumi up`` runs. The program is started the
way Pulumi's Python language host starts it (``run_in_stack``), so stack exports are
registered as the real engine would see them. The recording monitor keeps every
``RegisterResource`` (and ``ReadResource``) request as sent (inputs with their secret and unknown markers,
parent, provider, dependencies, protect) and the stack's outputs.

Two behaviours of the plain ``MockMonitor`` are corrected to match the engine:
URNs of top-level resources carry no ``pulumi:pulumi:Stack$`` prefix, and a second
resource with the same URN is an error.

What the SDK does per resource for an engine that is not there is skipped or shortened while the
program runs, each giving what the SDK's own way gives (issue #19: a 511-cluster plan in under 5 s):
RPCs are answered in the loop's thread (``InlineExecutor``), the SDK's debug messages are dropped
where they are sent, and ``components.sdk_internals.mock_engine_shortcuts`` (no stack trace per
registration; strings serialised, massaged and put into a ``Struct`` at once). The program's own code
runs unchanged; so does everything under the real engine, which never imports this module.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import runpy
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import set_all_config

from components import sdk_internals as sdk

STACK_TYPE = "pulumi:pulumi:Stack"

sdk.install_string_shortcut()


@dataclass
class Registration:
    """One registered resource, as the engine received it."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    provider: str
    """The provider's URN ('' for components and providers)."""
    dependencies: list[str]
    protect: bool
    inputs: dict[str, Any]
    """Inputs as sent: JSON, with secret and unknown markers kept (see ``scrub``)."""
    additional_secret_outputs: list[str]
    aliases: list[dict[str, Any]] = field(default_factory=list)
    """Aliases as sent (the SDK sends specs, as to the real engine): ``{"name": ...}`` (and ``type``, ``parent``
    when given), or ``{"urn": ...}``."""
    ignore_changes: list[str] = field(default_factory=list)


@dataclass
class Recording:
    project: str
    stack: str
    resources: dict[str, Registration] = field(default_factory=dict)
    """URN -> registration, in registration order."""
    outputs: dict[str, Any] = field(default_factory=dict)
    """The stack outputs as sent (JSON with markers)."""
    logs: list[tuple[str, str]] = field(default_factory=list)
    """(level, message) of every info, warning and error the program logged. Not the SDK's debug
    messages (a few per resource, kept by the real engine only with ``-v``): a 511-cluster plan
    spent a tenth of a second of every second formatting them."""
    annotations: dict[str, Any] = field(default_factory=dict)
    """Facts of the run that no registration shows, added by the caller (the offline plan
    adds ``allowIdentityChange``); written as top-level entries of the plan's graph.json."""


def _value(v: Any) -> Any:
    kind = v.WhichOneof("kind")
    if kind == "string_value":
        return v.string_value
    # Items that are strings (most of a mesh: peer names and addresses) are read without a call of their own.
    if kind == "struct_value":
        return {k: x.string_value if x.WhichOneof("kind") == "string_value" else _value(x)
                for k, x in v.struct_value.fields.items()}
    if kind == "list_value":
        return [x.string_value if x.WhichOneof("kind") == "string_value" else _value(x) for x in v.list_value.values]
    if kind == "number_value":
        return v.number_value
    if kind == "bool_value":
        return v.bool_value
    return None


def _alias(alias: Any) -> dict[str, Any]:
    if alias.WhichOneof("alias") == "urn":
        return {"urn": alias.urn}
    spec = alias.spec
    out = {k: getattr(spec, k) for k in ("name", "type", "stack", "project") if getattr(spec, k)}
    if spec.WhichOneof("parent") == "parentUrn":
        out["parent"] = spec.parentUrn
    elif spec.WhichOneof("parent") == "noParent":
        out["noParent"] = True
    return out


def struct_to_dict(struct: Any) -> dict[str, Any]:
    """A protobuf Struct as plain JSON data (what ``json_format.MessageToDict`` gives, faster)."""
    return {k: _value(v) for k, v in struct.fields.items()}


_PLAIN_TYPES = (str, bool, int, float, type(None))


def _plain(value: Any) -> bool:
    """JSON data only (a secret marker is a mapping too): nothing the SDK waits for when it serialises it."""
    if isinstance(value, dict):
        return all(type(k) is str and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return type(value) in _PLAIN_TYPES


def serialize_now(props: dict[str, Any]) -> Any:
    """``serialize_properties(props)``: of plain data (what mocks compute), run to its end here, without the event
    loop, as it never waits for anything; of anything else (an Output a mock computed), on the loop."""
    coro = sdk.serialize_properties(props, {})
    if not _plain(props):
        return sdk.sync_await(coro)
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError(f"serialising plain data waited for something: {sorted(props)}")


class InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """The default executor of the thread's event loop (the SDK's) while a program runs on the mock engine: the SDK
    sends every RPC to it (``run_in_executor``) so as not to block the loop on the engine; the mock monitor answers
    at once, so each call is run here, in the loop's thread, and its result handed back as a finished future of the
    loop. Saves a thread switch and a wake-up of the loop per RPC."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.private_loop: asyncio.AbstractEventLoop | None = None

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        # The monitor's methods run coroutines to their end (sync_await), as on a pool thread: on a loop of
        # their own, not on the running one (which would run the program's other tasks inside this call).
        if self.private_loop is None:
            self.private_loop = asyncio.new_event_loop()
        asyncio.events._set_running_loop(None)
        asyncio.set_event_loop(self.private_loop)
        try:
            result = fn(*args, **kwargs)
        except Exception as err:  # handed to the awaiting task, as from a pool thread
            fut.set_exception(err)
        else:
            fut.set_result(result)
        finally:
            asyncio.set_event_loop(loop)
            asyncio.events._set_running_loop(loop)
        return fut


class RecordingMonitor(sdk.MockMonitor):
    def __init__(self, mocks: pulumi.runtime.Mocks, recording: Recording) -> None:
        super().__init__(mocks)
        self.recording = recording

    def _record(self, urn: str, request: Any, inputs: dict[str, Any], custom: bool, protect: bool) -> None:
        self.recording.resources[urn] = Registration(
            urn=urn,
            type=request.type,
            name=request.name,
            custom=custom,
            parent=request.parent,
            provider=request.provider.rsplit("::", 1)[0] if request.provider else "",
            dependencies=sorted(set(request.dependencies)),
            protect=protect,
            inputs=inputs,
            additional_secret_outputs=list(request.additionalSecretOutputs),
            aliases=[_alias(a) for a in getattr(request, "aliases", [])],
            ignore_changes=list(getattr(request, "ignoreChanges", [])),
        )

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        qualified = type_
        if parent:
            parent_type = parent.split("::")[2]
            if parent_type != STACK_TYPE:
                qualified = f"{parent_type}${type_}"
        return "urn:pulumi:" + "::".join([self.recording.stack, self.recording.project, qualified, name])

    def RegisterResource(self, request: Any) -> Any:
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == STACK_TYPE:
            return sdk.RegisterResourceResponse(urn=urn)
        if urn in self.recording.resources:
            raise ValueError(f"duplicate resource URN {urn}: two resources have the same type and name")
        inputs = struct_to_dict(request.object)
        self._record(urn, request, inputs, custom=bool(request.custom), protect=bool(request.protect))
        # A resource's outputs are what the mocks compute for it. Unlike the engine, the
        # inputs are not echoed back: the program reads no input back from a resource,
        # and decoding every Helm value again would dominate the cost of a large mesh.
        # (An input read back would show up as [unknown] in a plan and None in a test.)
        id_, computed = self.mocks.new_resource(pulumi.runtime.MockResourceArgs(
            typ=request.type, name=request.name, inputs=inputs, provider=request.provider,
            resource_id=request.importId, custom=bool(request.custom),
        ))
        extra = dict(computed or {})
        for k in request.additionalSecretOutputs:
            # The engine marks these outputs secret; the plain mock monitor does not.
            if k in extra:
                extra[k] = sdk.wrap_rpc_secret(extra[k])
        state = serialize_now(extra)
        self.resources[urn] = sdk.ResourceRegistration(urn, id_ or "", {})
        return sdk.RegisterResourceResponse(urn=urn, id=id_ or "", object=state)

    def ReadResource(self, request: Any) -> Any:
        # A read (e.g. a StackReference): recorded like a registration, as a preview lists it.
        resp = sdk.read_resource(self, request)
        self._record(resp.urn, request, struct_to_dict(request.properties), custom=True, protect=False)
        return resp

    def RegisterResourceOutputs(self, request: Any) -> Any:
        if request.urn.split("::")[2] == STACK_TYPE:
            self.recording.outputs = struct_to_dict(request.outputs)
        return sdk.register_resource_outputs(self, request)


@contextmanager
def _debug_messages_dropped() -> Iterator[None]:
    """While the program runs: ``pulumi.log.debug`` (the SDK sends a few debug messages per resource, 18,000 at 511
    clusters: a LogRequest each, the mock engine's Log, the logger's level check) does nothing, as the recording's
    logger (INFO: ``Recording.logs``) would drop the message anyway."""
    debug = pulumi.log.debug
    pulumi.log.debug = _dropped
    try:
        yield
    finally:
        pulumi.log.debug = debug


def _dropped(msg: str, resource: Any = None, stream_id: Any = None, ephemeral: Any = None) -> None:
    return None


class _ListHandler(logging.Handler):
    def __init__(self, sink: list[tuple[str, str]]) -> None:
        super().__init__(logging.INFO)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append((record.levelname.lower(), record.getMessage()))


def run_program(
    program: str,
    *,
    project: str,
    stack: str,
    config: Mapping[str, str],
    secret_keys: list[str],
    mocks: pulumi.runtime.Mocks,
    preview: bool,
    recording: Recording | None = None,
    organization: str = "organization",
) -> Recording:
    """Run ``program`` (a ``__main__.py``) once on the mock engine and return what it registered.

    ``config`` maps ``namespace:key`` to the string Pulumi would pass; ``secret_keys``
    are the keys Pulumi marks secret. Exceptions of the program propagate (after the
    engine has settled), like a failed ``pulumi up``; pass ``recording`` to see what was
    registered before that.
    """
    recording = recording if recording is not None else Recording(project=project, stack=stack)
    logger = logging.Logger(f"mock-engine-{project}-{stack}", logging.INFO)
    logger.addHandler(_ListHandler(recording.logs))
    monitor = RecordingMonitor(mocks, recording)
    set_all_config(dict(config), list(secret_keys))
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=preview, logger=logger, monitor=monitor,
                             organization=organization)
    # The language host runs the program inside a fresh root Stack and registers its
    # outputs at the end; set_mocks made (and finished) a root of its own.
    # Output tasks of an earlier (failed) run in this process must not be awaited here.
    sdk.reset_root_and_outputs()
    # The program tunes the collector of its process (components.collector); a run in this
    # process leaves the caller's settings as they were.
    thresholds = gc.get_threshold()
    def program_main() -> None:
        runpy.run_path(program, run_name="__main__")

    loop = asyncio.get_event_loop()
    inline = InlineExecutor()
    loop.set_default_executor(inline)
    try:
        with sdk.mock_engine_shortcuts(), _debug_messages_dropped():
            sdk.sync_await(sdk.run_program_in_stack(program_main))
    except BaseException as err:
        _raised_to_the_caller(err)
        raise
    finally:
        gc.set_threshold(*thresholds)
        loop.set_default_executor(concurrent.futures.ThreadPoolExecutor())
        if inline.private_loop is not None:
            inline.private_loop.close()
    return recording


_RAISED = "_mock_engine_raised_to_caller"


def _raised_to_the_caller(err: BaseException) -> None:
    """A failed run raises the program's failure once, to the caller. The SDK leaves every
    Output that failed with it (the same exception object) to a process about to exit; in
    this process asyncio would report each one as "exception was never retrieved" whenever
    the collector frees it, long after the failure was handled. Mark the failure, and have
    the event loop not report futures that hold a marked one; anything else is reported."""
    try:
        setattr(err, _RAISED, True)
    except AttributeError:  # an exception type without attributes: reported as before
        return
    loop = asyncio.get_event_loop()
    previous = loop.get_exception_handler()
    if getattr(previous, _RAISED, False):
        return

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if getattr(context.get("exception"), _RAISED, False) and \
                "exception was never retrieved" in context.get("message", ""):
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    setattr(handler, _RAISED, True)
    loop.set_exception_handler(handler)
