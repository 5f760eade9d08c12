"""The program reads its own last outputs with the engine's built-in `pulumi:pulumi:readStackOutputs`, not a
StackReference: no resource, so `pulumi preview --diff` after an `up` shows no change of one (on the real engine:
tests/e2e/test_mesh_lifecycle.py, test_3). A read that meets the file backend writing the checkpoint is read again."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components.program import READ_ATTEMPTS, READ_STACK_OUTPUTS
from tests.conftest import mesh_config
from tests.mockcloud import ComputingMocks, run
from tests.test_lifecycle import _issue_keys, deployed
from tools.mockengine import Recording


class ReadingMocks(ComputingMocks):
    """The stack's last outputs, after ``failures`` failed reads with ``reason``; secret names as given."""

    def __init__(self, previous: dict | None, failures: int = 0, reason: str = "failed to load checkpoint: EOF",
                 secret_names: tuple[str, ...] = ()) -> None:
        super().__init__(previous)
        self.failures, self.reason, self.secret_names = failures, reason, list(secret_names)

    def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
        if args.token == READ_STACK_OUTPUTS and len(self.reads) < self.failures:
            self.calls.append(args)
            return {}, [("", self.reason)]  # what the engine answers: the call failed
        answer = super().call(args)  # records the call
        if args.token == READ_STACK_OUTPUTS:
            return {**answer, "secretOutputNames": self.secret_names}
        return answer

    @property
    def reads(self) -> list[pulumi.runtime.MockCallArgs]:
        return [c for c in self.calls if c.token == READ_STACK_OUTPUTS]


def _changed_id(raw: dict) -> dict:
    changed = copy.deepcopy(raw)
    changed["clusters"][1]["id"] = 9
    return changed


def test_no_resource_reads_the_stack_one_call_does(tmp_path: Path) -> None:
    """Nothing is registered or read as a resource for it; one call, naming this very stack."""
    mocks = ReadingMocks(None)
    rec = run(mesh_config(2), tmp_path, mocks=mocks)
    assert not [r for r in rec.resources.values() if r.type == "pulumi:pulumi:StackReference"]
    assert [c.args for c in mocks.reads] == [{"name": "organization/tke-cilium-mesh/test"}]


def test_a_read_that_meets_the_checkpoint_mid_write_is_read_again(tmp_path: Path) -> None:
    """Two failed reads, then the last outputs: the guard compares with them (an id change is refused)."""
    raw = mesh_config(2)
    previous = deployed(raw, tmp_path)
    mocks = ReadingMocks(previous, failures=2)
    with pytest.raises(Exception) as exc:
        run(_changed_id(raw), tmp_path, mocks=mocks)
    assert _issue_keys(exc.value) == ["mesh:clusters[1].id"]
    assert len(mocks.reads) == 3


def test_a_read_that_keeps_failing_or_fails_otherwise_fails_the_run(tmp_path: Path) -> None:
    """The backend's error, after READ_ATTEMPTS reads; any other error at once (it is not a write in progress)."""
    for failures, reason, reads in ((READ_ATTEMPTS, "failed to load checkpoint: EOF", READ_ATTEMPTS),
                                    (1, "no backend client is available", 1)):
        mocks = ReadingMocks(None, failures=failures, reason=reason)
        recording = Recording(project="tke-cilium-mesh", stack="test")
        with pytest.raises(Exception, match=reason):
            run(mesh_config(2), tmp_path, mocks=mocks, recording=recording)
        assert len(mocks.reads) == reads, reason
        assert "clusters" not in recording.outputs


def test_an_output_the_stack_holds_as_a_secret_stays_one(tmp_path: Path) -> None:
    """secretOutputNames: a previous `clusters` held as a secret makes what is derived from it secret (the
    recorded identities), as StackReference.get_output would; the plain one keeps them plain."""
    raw = mesh_config(2)
    previous = deployed(raw, tmp_path)
    plain = run(raw, tmp_path, mocks=ReadingMocks(previous)).outputs["clusters"]
    secret = run(raw, tmp_path, mocks=ReadingMocks(previous, secret_names=("clusters",))).outputs["clusters"]
    assert plain["cls-00000001"]["id"] == 1
    assert isinstance(secret["cls-00000001"]["id"], dict), secret["cls-00000001"]["id"]  # a secret wrapper
