"""The mock engine's shortcuts (tools/mockengine.py): each gives what the SDK's own way gives."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pulumi
from google.protobuf import json_format

from components import sdk_internals as sdk
from tests.mockcloud import ComputingMocks
from tools.mockengine import InlineExecutor, serialize_now, struct_to_dict


def _slow(props: dict[str, Any]) -> dict[str, Any]:
    return json_format.MessageToDict(sdk.sync_await(sdk.serialize_properties(props, {})))


def test_serialising_computed_outputs_without_the_loop_gives_what_the_loop_gives() -> None:
    """What mocks compute (ComputingMocks' outputs: strings, numbers, lists, mappings, a secret kubeconfig)."""
    computed = {
        "status": {"name": "cilium", "namespace": "kube-system", "revision": 1, "status": "deployed"},
        "clbVips": ["10.0.0.7"], "kubeConfig": sdk.wrap_rpc_secret("apiVersion: v1\n"), "ratio": 0.5,
        "on": True, "none": None, "empty": {}, "nested": [[1, {"a": [None, "x"]}]],
    }
    assert json_format.MessageToDict(serialize_now(computed)) == _slow(computed)
    assert json_format.MessageToDict(serialize_now({})) == _slow({}) == {}


def test_a_computed_output_that_waits_is_serialised_on_the_loop() -> None:
    """A Mocks subclass may compute an Output: serialising it waits for its value, which the loop gives."""
    pulumi.runtime.set_mocks(ComputingMocks(), preview=False)

    async def later() -> str:
        await asyncio.sleep(0)
        return "v"

    computed = {"k": pulumi.Output.from_input(later()), "plain": "p"}
    assert json_format.MessageToDict(serialize_now(computed)) == {"k": "v", "plain": "p"}


def test_the_inline_executor_runs_a_call_in_the_loops_thread_on_a_loop_of_its_own() -> None:
    """As on a pool thread, a call may run a coroutine to its end (the SDK's mock monitor does, with sync_await):
    here on a loop that is not the running one, which is the caller's again afterwards. Installed, as
    ``run_program`` does, on the thread's event loop (the SDK's)."""
    loop = asyncio.get_event_loop()
    executor = InlineExecutor()
    loop.set_default_executor(executor)
    seen: dict[str, Any] = {}

    async def three() -> int:
        return 3

    def call(x: int) -> int:
        seen["thread"] = threading.current_thread()
        seen["loop"] = asyncio.get_event_loop()
        return x + sdk.sync_await(three())

    def fails() -> None:
        raise ValueError("the engine refused it")

    async def main() -> tuple[int, str, asyncio.AbstractEventLoop]:
        result = await asyncio.get_running_loop().run_in_executor(None, call, 1)
        try:
            await asyncio.get_running_loop().run_in_executor(None, fails)
        except ValueError as err:
            return result, str(err), asyncio.get_event_loop()
        raise AssertionError("the call's exception reaches its caller")

    try:
        assert loop.run_until_complete(main()) == (4, "the engine refused it", loop)
        assert seen["thread"] is threading.current_thread()
        assert seen["loop"] is executor.private_loop and seen["loop"] is not loop
    finally:
        loop.set_default_executor(ThreadPoolExecutor())
        if executor.private_loop is not None:
            executor.private_loop.close()


def test_a_struct_is_read_as_json_format_reads_it() -> None:
    """struct_to_dict reads string items of mappings and lists inline: the same data as protobuf's own reader."""
    from google.protobuf import struct_pb2

    struct = struct_pb2.Struct()
    struct.update({
        "cluster": "cls-a", "peers": {"cls-b": "10.0.0.2", "cls-c": ""}, "n": 3, "ratio": 0.5, "on": False,
        "none": None, "list": ["a", 1, True, None, {"k": "v"}, ["x", {}]], "empty": {}, "nothing": [],
        "secret": {sdk.SIG_KEY: sdk.SECRET_SIG, "value": "s"},
    })
    assert struct_to_dict(struct) == json_format.MessageToDict(struct)
    assert struct_to_dict(struct)["list"][0] == "a" and struct_to_dict(struct)["none"] is None


def test_the_recording_keeps_the_program_s_info_warnings_and_errors_and_no_debug_message(tmp_path) -> None:
    """Debug messages (the SDK's, a few per resource) are dropped where they are sent while the program runs;
    pulumi.log.debug is the SDK's again afterwards."""
    from tools.mockengine import run_program

    program = tmp_path / "__main__.py"
    program.write_text("import pulumi\npulumi.log.debug('d')\npulumi.log.info('i')\npulumi.log.warn('w')\n"
                       "pulumi.log.error('e')\npulumi.export('x', 1)\n")
    debug = pulumi.log.debug
    rec = run_program(str(program), project="p", stack="s", config={}, secret_keys=[], mocks=ComputingMocks(),
                      preview=True)
    assert rec.logs == [("info", "i"), ("warning", "w"), ("error", "e")]
    assert rec.outputs == {"x": 1}
    assert pulumi.log.debug is debug
