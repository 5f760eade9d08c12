"""A cloud for the mock engine that computes outputs, and a way to run the program on it."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import pulumi
import yaml

from components.program import READ_STACK_OUTPUTS
from tests.conftest import ROOT, to_pulumi_config
from tools.mockengine import Recording, Registration, run_program
from tools.render import RELEASE_TYPE, checked_release_inputs, scrub

# Unmistakable stand-ins for what providers compute; tests search artefacts for them.
CA_KEY_PEM = "TEST-ONLY-CA-PRIVATE-KEY-5f0e2c"
CA_CERT_PEM = "TEST-ONLY-CA-CERTIFICATE-9a1b7d"
CLB_VIP_PREFIX = "10.250.0."
TKE_KUBECONFIG_INTRANET = "TEST-ONLY-TKE-KUBECONFIG-INTRANET-{}"
TKE_KUBECONFIG_INTERNET = "TEST-ONLY-TKE-KUBECONFIG-INTERNET-{}"
ENDPOINT_KUBECONFIG_INTRANET = "TEST-ONLY-ENDPOINT-KUBECONFIG-INTRANET-{}"
ENDPOINT_KUBECONFIG_INTERNET = "TEST-ONLY-ENDPOINT-KUBECONFIG-INTERNET-{}"
APISERVER_ENDPOINT_IP = "169.254.128.77"
CA_VALID_UNTIL = "2029-12-03T12:00:00Z"
GET_CLUSTERS = "tencentcloud:Kubernetes/getClusters:getClusters"


class ComputingMocks(pulumi.runtime.Mocks):
    """The outputs a provider would compute (the recording monitor echoes no inputs).

    ``previous`` is what the stack last deployed: its ``clusters`` output, answered to the
    program's read of its own last outputs (``pulumi:pulumi:readStackOutputs``).
    """

    def __init__(self, previous: dict | None = None, missing_clusters: tuple[str, ...] = (), previous_max: int | None = None) -> None:
        self.previous_max = previous_max
        self.previous = previous
        self.missing_clusters = set(missing_clusters)
        """Cluster IDs the TKE lookup does not find."""
        self.calls: list[pulumi.runtime.MockCallArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        state: dict = {}
        if args.typ == "tls:index/privateKey:PrivateKey":
            state["privateKeyPem"] = CA_KEY_PEM
        elif args.typ == "tls:index/selfSignedCert:SelfSignedCert":
            state["certPem"] = CA_CERT_PEM
            state["validityEndTime"] = CA_VALID_UNTIL
        elif args.typ == RELEASE_TYPE:
            # A first install: Helm's revision 1 (the provider reports the release's status).
            state["status"] = {"name": args.inputs.get("name"), "namespace": args.inputs.get("namespace"),
                               "revision": 1, "status": "deployed"}
        elif args.typ == "tencentcloud:Clb/instance:Instance":
            # Stable per CLB, as a real CLB's VIP is (registration order is not).
            n = zlib.crc32(args.name.encode()) % 250 + 1
            state["clbVips"] = [f"{CLB_VIP_PREFIX}{n}"]
            return f"lb-test{n:04d}", state
        elif args.typ == "tencentcloud:Kubernetes/cluster:Cluster":
            # Wire names are camelCase; the SDK marks both kubeconfigs additional secret outputs.
            cid = f"cls-t{zlib.crc32(args.name.encode()) % 10**7:07d}"
            state.update(kubeConfig=TKE_KUBECONFIG_INTERNET.format(cid),
                         kubeConfigIntranet=TKE_KUBECONFIG_INTRANET.format(cid))
            return cid, state
        elif args.typ == "tencentcloud:Kubernetes/clusterEndpoint:ClusterEndpoint":
            state.update(kubeConfig=ENDPOINT_KUBECONFIG_INTERNET.format(args.name),
                         kubeConfigIntranet=ENDPOINT_KUBECONFIG_INTRANET.format(args.name))
        elif args.typ == "kubernetes:core/v1:Endpoints":
            # A read of default/kubernetes: TKE's apiserver endpoint address.
            state["subsets"] = [{"addresses": [{"ip": APISERVER_ENDPOINT_IP}], "ports": [{"port": 60002}]}]
            return args.resource_id or f"{args.name}-id", state
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        self.calls.append(args)
        if args.token == READ_STACK_OUTPUTS:
            outputs: dict = {}
            if self.previous is not None:
                outputs["clusters"] = self.previous
            if self.previous_max is not None:
                outputs["maxConnectedClusters"] = self.previous_max
            return {"name": args.args["name"], "outputs": outputs, "secretOutputNames": []}
        if args.token == GET_CLUSTERS:
            cid = args.args.get("clusterId")
            if cid in self.missing_clusters:
                return {"lists": []}
            return {"lists": [{"clusterId": cid, "kubeConfig": TKE_KUBECONFIG_INTERNET.format(cid),
                               "kubeConfigIntranet": TKE_KUBECONFIG_INTRANET.format(cid)}]}
        return {}


def kubeconfig_for(contexts: list[str]) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "contexts": [{"name": c, "context": {"cluster": c, "user": c}} for c in contexts],
        "clusters": [{"name": c, "cluster": {"server": f"https://{c}.example"}} for c in contexts],
        "users": [{"name": c, "user": {"token": f"TEST-TOKEN-{c}"}} for c in contexts],
    })


def run(
    raw: dict[str, Any],
    tmp_path: Path,
    *,
    contexts: list[str] | None = None,
    extra_config: dict[str, str] | None = None,
    secret_keys: list[str] | None = None,
    preview: bool = False,
    mocks: pulumi.runtime.Mocks | None = None,
    recording: Recording | None = None,
) -> Recording:
    """Run the real ``__main__.py`` with ``raw`` as its ``mesh`` config and a kubeconfig file
    holding ``contexts`` (default: every cluster's context)."""
    if contexts is None:
        contexts = [c.get("context", c.get("name")) for c in raw.get("clusters", []) if isinstance(c, dict)]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(kubeconfig_for([c for c in contexts if isinstance(c, str)]))
    config = to_pulumi_config({**raw, "kubeconfig": str(kubeconfig)})
    config.update(extra_config or {})
    return run_program(
        str(ROOT / "__main__.py"), project="tke-cilium-mesh", stack="test", config=config,
        secret_keys=secret_keys or [], mocks=mocks or ComputingMocks(), preview=preview, recording=recording,
    )


def by_type(rec: Recording, typ: str) -> list:
    return [r for r in rec.resources.values() if r.type == typ]


def one(rec: Recording, typ: str, name: str):
    hits = [r for r in rec.resources.values() if r.type == typ and r.name == name]
    assert len(hits) == 1, (typ, name, hits)
    return hits[0]


def text(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)


def engine_inputs(reg: Registration, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """A resource's inputs (``inputs``, else its recorded ones) as the engine holds them after
    the provider's ``Check`` (wire form): for a Helm release, its values files merged into
    ``values``. What a preview diffs and what policies see."""
    inputs = reg.inputs if inputs is None else inputs
    return checked_release_inputs(inputs) if reg.type == RELEASE_TYPE else inputs


def release_values(reg: Registration) -> dict[str, Any]:
    """The Helm values a release gets (plan form: secrets and unknowns marked)."""
    return scrub(engine_inputs(reg))["values"]
