"""examples/consumer: a program that reads our stack outputs, tested with real outputs of ours."""

from __future__ import annotations

import json
from pathlib import Path

import pulumi
import pytest

from tests.conftest import ROOT, mesh_config
from tests.mockcloud import by_type, run
from tests.test_graph import _documented_outputs, _output_paths, output_placeholders
from tools.engine import run_program
from tools.render import scrub

CONSUMER = ROOT / "examples" / "consumer"


class MeshStackMocks(pulumi.runtime.Mocks):
    """Answers the StackReference with the outputs a real run of the mesh program exported."""

    def __init__(self, outputs: dict) -> None:
        self.outputs = outputs

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        if args.typ == "pulumi:pulumi:StackReference":
            return args.name, {"name": args.name, "outputs": self.outputs}
        return f"{args.name}-id", {}

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        return {}


@pytest.fixture
def mesh_outputs(tmp_path: Path) -> dict:
    return scrub(run(mesh_config(3), tmp_path).outputs)


def run_consumer(outputs: dict, clusters: list[str], monkeypatch):
    monkeypatch.syspath_prepend(str(CONSUMER))
    config = {
        "consumer:meshStack": "acme/tke-cilium-mesh/dev",
        "consumer:clusters": json.dumps(clusters),
        "consumer:service": json.dumps({"name": "echo", "namespace": "apps", "port": 8080, "selector": {"app": "echo"}}),
    }
    return run_program(str(CONSUMER / "__main__.py"), project="tke-cilium-mesh-consumer", stack="dev", config=config,
                       secret_keys=[], mocks=MeshStackMocks(outputs), preview=False)


def test_consumer_marks_the_service_global_in_every_cluster(mesh_outputs: dict, monkeypatch) -> None:
    """One provider per meshed cluster, on the context our outputs name, each with the global Service."""
    names = sorted(mesh_outputs["clusters"])
    rec = run_consumer(mesh_outputs, names, monkeypatch)
    providers = {r.name: r for r in by_type(rec, "pulumi:providers:kubernetes")}
    services = by_type(rec, "kubernetes:core/v1:Service")
    assert sorted(providers) == [f"{n}-k8s" for n in names]
    assert all(providers[f"{n}-k8s"].inputs["context"] == mesh_outputs["clusters"][n]["context"] for n in names)
    assert len(services) == 3
    for s in services:
        assert s.inputs["metadata"]["annotations"] == {"service.cilium.io/global": "true",
                                                       "service.cilium.io/shared": "true"}
        assert s.inputs["metadata"]["namespace"] == "apps"
        assert s.provider in {p.urn for p in providers.values()}
    assert scrub(rec.outputs)["globalService"]["cls-00000002"] == {"cluster_id": 2, "service": "apps/echo"}


def test_consumer_refuses_a_cluster_list_that_drifted(mesh_outputs: dict, monkeypatch) -> None:
    """A mesh cluster missing from consumer:clusters fails the run with a message naming it."""
    with pytest.raises(Exception, match="in the mesh but not in consumer:clusters: cls-00000003"):
        run_consumer(mesh_outputs, ["cls-00000001", "cls-00000002"], monkeypatch)


def test_consumer_reads_only_documented_outputs(mesh_outputs: dict, monkeypatch) -> None:
    """The outputs the consumer needs are in the README contract and in what the program exports."""
    monkeypatch.syspath_prepend(str(CONSUMER))
    import mesh_outputs as contract

    documented = _documented_outputs()
    exported = _output_paths(mesh_outputs, "", output_placeholders(mesh_outputs["clusters"]))
    for path in contract.REQUIRED:
        assert path in documented, f"the consumer reads {path}, which the README does not document"
        assert path in exported, f"the consumer reads {path}, which the program does not export"
