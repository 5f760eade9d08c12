"""examples/consumer: a program that reads our stack outputs, tested with real outputs of ours: those of a
mesh program run, and the offline plan's outputs of every stack in stacks/ (secret and unknown markers kept,
as a StackReference receives them)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pulumi
import pytest
import yaml

from components import sdk_internals as sdk
from tests.conftest import ROOT, committed_stacks, mesh_config
from tests.mockcloud import by_type, run
from tests.test_graph import _documented_outputs, _output_paths, output_placeholders
from tools.mockengine import run_program
from tools.plan import plan
from tools.render import scrub

CONSUMER = ROOT / "examples" / "consumer"
STACKS = [p.name[len("Pulumi."):-len(".yaml")] for p in committed_stacks()]
PROVIDER = "pulumi:providers:kubernetes"


class MeshStackMocks(pulumi.runtime.Mocks):
    """Answers the StackReference with the outputs a run of the mesh program exported (wire form: secrets
    and unknowns marked, as the engine hands a StackReference a stack's outputs)."""

    def __init__(self, outputs: dict) -> None:
        self.outputs = outputs

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        if args.typ == "pulumi:pulumi:StackReference":
            # As the engine reads a stack: its outputs, and the names of those holding a secret.
            secret = sorted(k for k, v in self.outputs.items() if sdk.SECRET_SIG in json.dumps(v))
            return args.name, {"name": args.name, "outputs": self.outputs, "secretOutputNames": secret}
        return f"{args.name}-id", {}

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        return {}


def is_secret(value: object) -> bool:
    return isinstance(value, dict) and value.get(sdk.SIG_KEY) == sdk.SECRET_SIG


@pytest.fixture
def mesh_outputs(tmp_path: Path) -> dict:
    return run(mesh_config(3), tmp_path).outputs


def deployed(outputs: object, path: str = "") -> object:
    """The offline plan's outputs (a preview of a new stack) as the deployed stack's would be, which a
    StackReference reads: each value only the cloud knows (a created cluster's kubeconfig, the CA's dates)
    becomes a distinct stand-in string; secret markers are kept."""
    if outputs == sdk.UNKNOWN:
        return f"deployed value of {path}"
    if isinstance(outputs, dict):
        return {k: deployed(v, f"{path}.{k}" if path and k != "value" else (path or k)) for k, v in outputs.items()}
    if isinstance(outputs, list):
        return [deployed(v, f"{path}[{i}]") for i, v in enumerate(outputs)]
    return outputs


def run_consumer(outputs: dict, clusters: list[str], monkeypatch):
    monkeypatch.syspath_prepend(str(CONSUMER))
    config = {
        "consumer:meshStack": "acme/tke-cilium-mesh/dev",
        "consumer:clusters": json.dumps(clusters),
        "consumer:service": json.dumps({"name": "echo", "namespace": "apps", "port": 8080, "selector": {"app": "echo"}}),
    }
    return run_program(str(CONSUMER / "__main__.py"), project="tke-cilium-mesh-consumer", stack="dev", config=config,
                       secret_keys=[], mocks=MeshStackMocks(outputs), preview=False)


def _reaches_each_cluster_with_its_own_kubeconfig(rec, outputs: dict) -> None:
    """One provider per meshed cluster, given that cluster's kubeconfig from the mesh, as a secret, and no
    context (an empty one would mean the machine's current context); each cluster's Service on its provider."""
    names = sorted(outputs["clusters"])
    providers = {r.name: r for r in by_type(rec, PROVIDER)}
    assert sorted(providers) == [f"{n}-k8s" for n in names]
    for n in names:
        inputs = providers[f"{n}-k8s"].inputs
        assert "context" not in inputs
        assert inputs["clusterIdentifier"] == n, "a renewed kubeconfig must not replace the provider"
        assert is_secret(inputs["kubeconfig"]), f"{n}: the kubeconfig must stay a secret"
        assert inputs["kubeconfig"]["value"] == outputs["kubeconfigs"][n]["value"], n
    kubeconfigs = [json.dumps(p.inputs["kubeconfig"]["value"]) for p in providers.values()]
    known = [k for k in kubeconfigs if sdk.UNKNOWN not in k]
    assert len(set(known)) == len(known), "two clusters reached through the same kubeconfig"
    services = {s.name: s for s in by_type(rec, "kubernetes:core/v1:Service")}
    assert sorted(services) == [f"{n}-echo" for n in names]
    for n in names:
        s = services[f"{n}-echo"]
        assert s.provider == providers[f"{n}-k8s"].urn
        assert s.inputs["metadata"]["annotations"] == {"service.cilium.io/global": "true",
                                                       "service.cilium.io/shared": "true"}
        assert s.inputs["metadata"]["namespace"] == "apps"


def test_consumer_marks_the_service_global_in_every_cluster(mesh_outputs: dict, monkeypatch) -> None:
    """A mesh program run's outputs: one provider per cluster with its own kubeconfig, each with the Service."""
    rec = run_consumer(mesh_outputs, sorted(mesh_outputs["clusters"]), monkeypatch)
    _reaches_each_cluster_with_its_own_kubeconfig(rec, mesh_outputs)
    assert scrub(rec.outputs)["globalService"]["cls-00000002"] == {"cluster_id": 2, "service": "apps/echo"}
    assert "TEST-TOKEN" not in json.dumps(rec.outputs), "the consumer exports no credential"


@pytest.mark.parametrize("stack", STACKS)
def test_consumer_reaches_every_cluster_of_each_example_stack(stack: str, monkeypatch) -> None:
    """The offline plan's outputs of stacks/Pulumi.<stack>.yaml: clusters reached through a context (dev, prod),
    adopted through the TKE API and created by the program (mixed) alike, each through its own kubeconfig;
    the `context` output, "" for the latter two, is not what the consumer uses."""
    planned = plan(str(ROOT / "stacks" / f"Pulumi.{stack}.yaml")).outputs
    assert set(planned["kubeconfigs"]) == set(planned["clusters"])
    assert all(is_secret(v) for v in planned["kubeconfigs"].values()), "each kubeconfig output is a secret"
    outputs = deployed(planned)
    rec = run_consumer(outputs, sorted(outputs["clusters"]), monkeypatch)
    _reaches_each_cluster_with_its_own_kubeconfig(rec, outputs)
    if stack == "mixed":
        assert {n: o["context"] for n, o in outputs["clusters"].items()} == {"cls-mixold01": "", "mesh-gz-new1": ""}


def test_the_docstring_example_is_accepted_by_its_own_check(monkeypatch) -> None:
    """The config the consumer's docstring shows, against the prod stack it names: accepted, every cluster
    reached."""
    doc = (CONSUMER / "__main__.py").read_text().split('"""')[1]
    example = yaml.safe_load("\n".join(line.strip() for line in doc.splitlines() if line.strip().startswith("consumer:")))
    assert example["consumer:meshStack"].endswith("/tke-cilium-mesh/prod")
    outputs = deployed(plan(str(ROOT / "stacks" / "Pulumi.prod.yaml")).outputs)
    rec = run_consumer(outputs, example["consumer:clusters"], monkeypatch)
    _reaches_each_cluster_with_its_own_kubeconfig(rec, outputs)


def test_consumer_refuses_a_cluster_list_that_drifted(mesh_outputs: dict, monkeypatch) -> None:
    """A mesh cluster missing from consumer:clusters fails the run with a message naming it; no provider."""
    with pytest.raises(Exception, match="in the mesh but not in consumer:clusters: cls-00000003"):
        run_consumer(mesh_outputs, ["cls-00000001", "cls-00000002"], monkeypatch)


@pytest.mark.parametrize("what, message", [
    ("absent", r"mesh output kubeconfigs has no kubeconfig for cls-00000002 \(a mesh stack deployed before"),
    ("empty", r"mesh output kubeconfigs.cls-00000002 is empty: the consumer would reach the machine's current "
              r"context"),
])
def test_consumer_refuses_a_cluster_it_cannot_reach(mesh_outputs: dict, monkeypatch, what: str, message: str) -> None:
    """A mesh stack without a kubeconfig for a cluster (deployed before that output), or an empty one: refused,
    naming the cluster, rather than a provider that falls back to the machine's current context."""
    outputs = json.loads(json.dumps(mesh_outputs))
    if what == "absent":
        del outputs["kubeconfigs"]["cls-00000002"]
    else:
        outputs["kubeconfigs"]["cls-00000002"]["value"] = ""
    with pytest.raises(Exception, match=message):
        run_consumer(outputs, sorted(outputs["clusters"]), monkeypatch)


def test_consumer_reads_only_documented_outputs(mesh_outputs: dict, monkeypatch) -> None:
    """The outputs the consumer needs are in the README contract and in what the program exports."""
    monkeypatch.syspath_prepend(str(CONSUMER))
    import mesh_outputs as contract

    documented = _documented_outputs()
    scrubbed = scrub(mesh_outputs)
    exported = _output_paths(scrubbed, "", output_placeholders(scrubbed["clusters"]))
    for path in contract.REQUIRED:
        assert path in documented, f"the consumer reads {path}, which the README does not document"
        assert path in exported, f"the consumer reads {path}, which the program does not export"
    assert re.search(r"\| `kubeconfigs\.<name>` \| string \| [^|]*secret", (ROOT / "README.md").read_text())
