"""The real program on the mock engine: resources, parents, providers, dependencies, values."""

from __future__ import annotations

import base64
import gc
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import sdk_internals as sdk
from components import tokens
from components.collector import GC_THRESHOLDS
from components.program import InvalidConfig
from meshcore import certs
from tests.conftest import cluster_entry, mesh_config
from tests.mockcloud import (
    CA_CERT_PEM,
    CA_KEY_PEM,
    CA_VALID_UNTIL,
    CLB_VIP_PREFIX,
    ComputingMocks,
    by_type,
    one,
    release_values,
    run,
    text,
)
from tools.mockengine import Recording
from tools.render import scrub

RELEASE = "kubernetes:helm.sh/v3:Release"
K8S_PROVIDER = "pulumi:providers:kubernetes"
TC_PROVIDER = "pulumi:providers:tencentcloud"
CLB = "tencentcloud:Clb/instance:Instance"
CLUSTER = tokens.CLUSTER
SECRET_SIG = {sdk.SIG_KEY: sdk.SECRET_SIG}


def is_secret(value: object) -> bool:
    return isinstance(value, dict) and value.get(sdk.SIG_KEY) == sdk.SECRET_SIG


def release_of(rec: Recording, name: str):
    return one(rec, RELEASE, f"{name}-cilium")


def test_resource_types_and_counts(tmp_path: Path) -> None:
    """A 3-cluster full mesh: one CA, per cluster a provider, endpoint and release, 3 connections."""
    rec = run(mesh_config(3), tmp_path)
    counts = Counter(r.type for r in rec.resources.values())
    assert counts == {
        "mesh:pki:SharedCa": 1,
        "tls:index/privateKey:PrivateKey": 1,
        "tls:index/selfSignedCert:SelfSignedCert": 1,
        CLUSTER: 3,
        K8S_PROVIDER: 3,
        "mesh:cilium:ApiserverEndpoint": 3,
        "mesh:cilium:CiliumRelease": 3,
        RELEASE: 3,
        "mesh:mesh:MeshPeers": 3,
    }
    peers = {r.inputs["cluster"]: r.inputs["peers"] for r in by_type(rec, "mesh:mesh:MeshPeers")}
    assert peers == {
        "cls-00000001": {"cls-00000002": "10.0.2.100:2379", "cls-00000003": "10.0.3.100:2379"},
        "cls-00000002": {"cls-00000001": "10.0.1.100:2379", "cls-00000003": "10.0.3.100:2379"},
        "cls-00000003": {"cls-00000001": "10.0.1.100:2379", "cls-00000002": "10.0.2.100:2379"},
    }


def test_parents_and_explicit_providers(tmp_path: Path) -> None:
    """Children hang under their component; every release uses its own cluster's provider."""
    rec = run(mesh_config(3), tmp_path)
    ca = one(rec, "mesh:pki:SharedCa", "mesh-ca")
    assert one(rec, "tls:index/privateKey:PrivateKey", "mesh-ca-key").parent == ca.urn
    assert one(rec, "tls:index/selfSignedCert:SelfSignedCert", "mesh-ca-cert").parent == ca.urn
    for i in (1, 2, 3):
        name = f"cls-{i:08d}"
        cluster = one(rec, CLUSTER, name)
        provider = one(rec, K8S_PROVIDER, f"{name}-k8s")
        component = one(rec, "mesh:cilium:CiliumRelease", f"{name}-cilium")
        release = release_of(rec, name)
        assert provider.parent == cluster.urn
        assert one(rec, "mesh:cilium:ApiserverEndpoint", f"{name}-apiserver").parent == cluster.urn
        assert one(rec, "mesh:mesh:MeshPeers", f"{name}-peers").parent == cluster.urn
        assert component.parent == cluster.urn and release.parent == component.urn
        assert release.provider == provider.urn, f"{release.urn} must use {provider.urn}"
        assert provider.inputs["context"] == name
    for r in rec.resources.values():
        if r.custom and r.type.startswith(("kubernetes:", "tencentcloud:")):
            assert r.provider, f"{r.urn} would use a default provider"


def test_release_chart_and_ca_dependency(tmp_path: Path) -> None:
    """Each release installs cilium 1.18.3 into kube-system and waits for the protected CA."""
    rec = run(mesh_config(2), tmp_path)
    key = one(rec, "tls:index/privateKey:PrivateKey", "mesh-ca-key")
    cert = one(rec, "tls:index/selfSignedCert:SelfSignedCert", "mesh-ca-cert")
    assert key.protect and cert.protect
    assert cert.inputs["isCaCertificate"] is True and cert.inputs["setSubjectKeyId"] is True
    for r in by_type(rec, RELEASE):
        assert {key.urn, cert.urn} <= set(r.dependencies), r.urn
        assert r.inputs["name"] == "cilium" and r.inputs["namespace"] == "kube-system"
        assert r.inputs["chart"] == "cilium" and r.inputs["version"] == "1.18.3"
        assert r.inputs["repositoryOpts"] == {"repo": "https://helm.cilium.io/"}


def test_every_cluster_gets_the_same_ca_and_the_key_stays_secret(tmp_path: Path) -> None:
    """tls.ca.cert is the shared certificate (base64); tls.ca.key is a secret leaf, never plain."""
    import base64

    rec = run(mesh_config(3), tmp_path)
    certs = set()
    for r in by_type(rec, RELEASE):
        ca = r.inputs["values"]["tls"]["ca"]
        assert not is_secret(ca["cert"])
        certs.add(ca["cert"])
        assert is_secret(ca["key"]), f"{r.urn}: tls.ca.key must be sent as a secret"
        assert base64.b64decode(ca["key"]["value"]).decode() == CA_KEY_PEM
        assert not is_secret(r.inputs["values"]["cluster"]), "only the key leaf is secret"
    assert certs == {base64.b64encode(CA_CERT_PEM.encode()).decode()}
    for p in by_type(rec, K8S_PROVIDER):
        assert is_secret(p.inputs["kubeconfig"]), f"{p.urn}: kubeconfig must be secret"


def test_peer_entries_carry_each_peers_address(tmp_path: Path) -> None:
    """Each release lists exactly its peers, with the peer's VIP and port, and its own VIP as SAN."""
    raw = mesh_config(3)
    raw["clusters"][2]["apiserver"]["port"] = 2379
    rec = run(raw, tmp_path)
    vip = {c["name"]: c["apiserver"]["vip"] for c in raw["clusters"]}
    port = {c["name"]: c["apiserver"].get("port", 2379) for c in raw["clusters"]}
    for name in vip:
        values = release_values(release_of(rec, name))
        entries = values["clustermesh"]["config"]["clusters"]
        assert [e["name"] for e in entries] == [n for n in sorted(vip) if n != name]
        for e in entries:
            assert e == {"name": e["name"], "address": vip[e["name"]], "port": port[e["name"]]}
        assert values["clustermesh"]["apiserver"]["tls"]["server"]["extraIpAddresses"] == [vip[name]]
        assert values["cluster"]["name"] == name


def value_files(reg: Any) -> list[dict[str, Any]]:
    """The values files a release sends: each a text asset, read as YAML."""
    files = reg.inputs.get("valueYamlFiles", [])
    assert all(f.get(sdk.SIG_KEY) == sdk.ASSET_SIG and set(f) == {sdk.SIG_KEY, "text"}
               for f in files), "values files are text assets"
    return [yaml.safe_load(f["text"]) for f in files]


def test_mesh_lists_are_sent_as_a_values_file(tmp_path: Path) -> None:
    """With known addresses, the peer list and the non-masquerade CIDRs go in one values file
    (one string for the SDK to serialise), not in values; the provider merges them back."""
    raw = mesh_config(3, masquerade={"mode": "ipMasqAgent"})
    rec = run(raw, tmp_path)
    for name in [c["name"] for c in raw["clusters"]]:
        r = release_of(rec, name)
        sent = r.inputs["values"]
        assert "clusters" not in sent["clustermesh"]["config"] and sent["clustermesh"]["config"]["enabled"] is True
        assert sent["ipMasqAgent"] == {"enabled": True, "config": {"masqLinkLocal": True}}, "only the CIDRs move"
        [doc] = value_files(r)
        assert set(doc) == {"clustermesh", "ipMasqAgent"}
        merged = release_values(r)
        assert doc["clustermesh"]["config"]["clusters"] == merged["clustermesh"]["config"]["clusters"]
        assert [e["name"] for e in merged["clustermesh"]["config"]["clusters"]] == [
            c["name"] for c in raw["clusters"] if c["name"] != name]
        assert doc["ipMasqAgent"]["config"]["nonMasqueradeCIDRs"] == merged["ipMasqAgent"]["config"]["nonMasqueradeCIDRs"]
        assert merged["ipMasqAgent"]["enabled"] is True and merged["clustermesh"]["config"]["enabled"] is True
        assert merged["tls"]["ca"]["key"] == "[secret]", "the secret stays in values, as a secret"
        key_b64 = r.inputs["values"]["tls"]["ca"]["key"]["value"]
        assert is_secret(r.inputs["values"]["tls"]["ca"]["key"]) and base64.b64decode(key_b64).decode() == CA_KEY_PEM
        files_text = "".join(f["text"] for f in r.inputs["valueYamlFiles"])
        assert key_b64 not in files_text and CA_KEY_PEM not in files_text, "no key material in a values file"


def test_program_tunes_the_collector_and_an_in_process_run_restores_it(tmp_path: Path) -> None:
    """The program sets its process's collector thresholds; the mock engine puts the caller's back."""
    seen: list[tuple[int, ...]] = []

    class Spy(ComputingMocks):
        def new_resource(self, args: Any) -> Any:
            seen.append(gc.get_threshold())
            return super().new_resource(args)

    before = gc.get_threshold()
    assert before != GC_THRESHOLDS
    run(mesh_config(2), tmp_path, mocks=Spy())
    assert seen and set(seen) == {GC_THRESHOLDS}
    assert gc.get_threshold() == before


def test_peers_behind_a_clb_created_in_the_run_stay_in_values(tmp_path: Path) -> None:
    """A peer list with a created CLB's VIP (an Output: unknown in the first preview) stays in
    values, where an unknown VIP is one unknown leaf; a list of plain addresses still goes to a file."""
    raw = mesh_config(2)
    raw["clusters"].append(cluster_entry(3, create_clb=True, region="ap-shanghai"))
    rec = run(raw, tmp_path)
    for name in ("cls-00000001", "cls-00000002"):  # both list cls-00000003
        r = release_of(rec, name)
        assert not value_files(r)
        entries = {e["name"]: e for e in scrub(r.inputs["values"])["clustermesh"]["config"]["clusters"]}
        assert entries["cls-00000003"]["address"].startswith(CLB_VIP_PREFIX)
        other = raw["clusters"][1 if name == "cls-00000001" else 0]
        assert entries[other["name"]]["address"] == other["apiserver"]["vip"]
    created = release_of(rec, "cls-00000003")  # its peers both have a VIP from config
    [doc] = value_files(created)
    assert [e["address"] for e in doc["clustermesh"]["config"]["clusters"]] == [
        c["apiserver"]["vip"] for c in raw["clusters"][:2]]


def test_create_clb_mode_wires_the_clb_into_peers(tmp_path: Path) -> None:
    """createClb: an INTERNAL CLB per cluster, attached by id; peers use its VIP; releases wait for it."""
    raw = mesh_config(2)
    raw["clusters"].append(cluster_entry(3, create_clb=True, region="ap-shanghai"))
    raw["clusters"].append(cluster_entry(4, create_clb=True, region="ap-shanghai"))
    rec = run(raw, tmp_path)
    providers = by_type(rec, TC_PROVIDER)
    assert [p.name for p in providers] == ["tencentcloud-ap-shanghai"]
    assert providers[0].inputs["region"] == "ap-shanghai"
    clbs = {r.name: r for r in by_type(rec, CLB)}
    assert set(clbs) == {"cls-00000003-apiserver-clb", "cls-00000004-apiserver-clb"}
    for i in (3, 4):
        name = f"cls-{i:08d}"
        lb = clbs[f"{name}-apiserver-clb"]
        assert lb.provider == providers[0].urn
        assert lb.inputs["networkType"] == "INTERNAL"
        assert lb.inputs["subnetId"] == f"subnet-{i:08d}" and lb.inputs["vpcId"] == f"vpc-{i:08d}"
        values = release_values(release_of(rec, name))
        ann = values["clustermesh"]["apiserver"]["service"]["annotations"]
        assert ann["service.kubernetes.io/tke-existed-lbid"].startswith("lb-test")
        assert "service.kubernetes.io/service.extensiveParameters" not in ann
        assert ann["service.kubernetes.io/qcloud-loadbalancer-internal-subnetid"] == f"subnet-{i:08d}"
    # cls-1 lists the created CLBs' VIPs and its release waits for both CLBs
    r1 = release_of(rec, "cls-00000001")
    addresses = {e["name"]: e["address"] for e in release_values(r1)["clustermesh"]["config"]["clusters"]}
    assert addresses["cls-00000003"].startswith(CLB_VIP_PREFIX) and addresses["cls-00000004"].startswith(CLB_VIP_PREFIX)
    assert addresses["cls-00000003"] != addresses["cls-00000004"]
    assert {c.urn for c in clbs.values()} <= set(r1.dependencies)
    # the connection node of a peer of a created CLB depends on it
    peers1 = one(rec, "mesh:mesh:MeshPeers", "cls-00000001-peers")
    assert {c.urn for c in clbs.values()} <= set(peers1.dependencies)
    assert scrub(peers1.inputs)["peers"]["cls-00000003"] == addresses["cls-00000003"] + ":2379"


def test_one_tencent_provider_per_region_with_config_credentials(tmp_path: Path) -> None:
    """Two regions with created CLBs get two explicit providers, fed the stack's secret credentials."""
    raw = mesh_config(1)
    raw["clusters"] += [cluster_entry(2, create_clb=True, region="ap-shanghai"),
                        cluster_entry(3, create_clb=True, region="ap-beijing")]
    rec = run(raw, tmp_path, extra_config={"tencentcloud:secretId": "AKID-TEST", "tencentcloud:secretKey": "SK-TEST"},
              secret_keys=["tencentcloud:secretKey"])
    providers = {p.name: p for p in by_type(rec, TC_PROVIDER)}
    assert set(providers) == {"tencentcloud-ap-beijing", "tencentcloud-ap-shanghai"}
    for p in providers.values():
        assert is_secret(p.inputs["secretKey"]) and is_secret(p.inputs["secretId"])
    assert "SK-TEST" not in text(scrub(rec.outputs))


def test_invalid_config_registers_nothing(tmp_path: Path) -> None:
    """An invalid stack is refused before any resource exists, with every problem listed."""
    raw = mesh_config(2)
    raw["clusters"][1]["id"] = 1
    raw["clusters"][0]["apiserver"]["subnetId"] = "nope"
    recording = Recording(project="tke-cilium-mesh", stack="test")
    with pytest.raises(InvalidConfig) as exc:
        run(raw, tmp_path, recording=recording)
    assert {i.key for i in exc.value.issues} == {"mesh:clusters[1].id", "mesh:clusters[0].apiserver.subnetId"}
    assert recording.resources == {}
    errors = [msg for lvl, msg in recording.logs if lvl == "error"]
    assert sorted(errors) == sorted(i.line() for i in exc.value.issues)


def test_missing_kubeconfig_context_is_a_config_error(tmp_path: Path) -> None:
    """On a real run the kubeconfig is read: a missing context names the cluster's key; nothing registered."""
    raw = mesh_config(3)
    raw["clusters"][2]["context"] = "gz-prod-3"
    recording = Recording(project="tke-cilium-mesh", stack="test")
    with pytest.raises(InvalidConfig) as exc:
        run(raw, tmp_path, contexts=["cls-00000001", "cls-00000002"], recording=recording)
    assert [i.key for i in exc.value.issues] == ["mesh:clusters[2].context"]
    assert "'gz-prod-3' is not in the kubeconfig" in exc.value.issues[0].message
    assert recording.resources == {}


def test_unreadable_kubeconfig_is_a_config_error(tmp_path: Path) -> None:
    """A kubeconfig path that does not exist is reported against mesh:kubeconfig."""
    from tests.conftest import to_pulumi_config
    from tests.mockcloud import ROOT, ComputingMocks
    from tools.mockengine import run_program

    config = to_pulumi_config({**mesh_config(2), "kubeconfig": str(tmp_path / "absent.yaml")})
    with pytest.raises(InvalidConfig) as exc:
        run_program(str(ROOT / "__main__.py"), project="tke-cilium-mesh", stack="test", config=config,
                    secret_keys=[], mocks=ComputingMocks(), preview=False)
    assert [i.key for i in exc.value.issues] == ["mesh:kubeconfig"]
    assert f"{tmp_path / 'absent.yaml'} (from the stack's mesh:kubeconfig): No such file" in exc.value.issues[0].message


def test_each_provider_gets_only_its_own_credentials(tmp_path: Path) -> None:
    """The provider kubeconfig never holds other clusters' tokens (minimal kubeconfig per cluster)."""
    rec = run(mesh_config(2), tmp_path)
    p1 = one(rec, K8S_PROVIDER, "cls-00000001-k8s")
    kubeconfig = p1.inputs["kubeconfig"]["value"]
    assert "TEST-TOKEN-cls-00000001" in kubeconfig and "TEST-TOKEN-cls-00000002" not in kubeconfig


def test_stack_outputs_contract(tmp_path: Path) -> None:
    """Per cluster: id, region, context, mesh address and peers; the CA certificate; each cluster's kubeconfig (the
    one its provider gets) as a secret, in `kubeconfigs`; nothing else secret."""
    raw = mesh_config(2)
    raw["clusters"].append(cluster_entry(3, create_clb=True, region="ap-shanghai"))
    rec = run(raw, tmp_path)
    kubeconfigs = rec.outputs.pop("kubeconfigs")
    assert sorted(kubeconfigs) == ["cls-00000001", "cls-00000002", "cls-00000003"]
    for name, value in kubeconfigs.items():
        assert is_secret(value), name
        assert value == one(rec, K8S_PROVIDER, f"{name}-k8s").inputs["kubeconfig"], name
    assert "TEST-TOKEN-cls-00000001" in kubeconfigs["cls-00000001"]["value"]
    out = scrub(rec.outputs)
    assert set(out) == {"clusters", "caCertificatePem", "maxConnectedClusters", "caExpiresAt"}
    assert out["caCertificatePem"] == CA_CERT_PEM and out["maxConnectedClusters"] == 255
    assert out["caExpiresAt"] == {"1": CA_VALID_UNTIL}, "the generated CA's validity end, by generation"
    first = out["clusters"]["cls-00000001"]
    certificates = first.pop("certificates")
    assert first == {
        "id": 1, "region": "ap-guangzhou", "context": "cls-00000001", "meshAddress": "10.0.1.100:2379",
        "peers": ["cls-00000002", "cls-00000003"],
        "cilium": {"version": "1.18.3", "firstInstalled": "1.18"},
    }
    # A first install (revision 1) is rendered now: its leaves date from this run.
    rendered = certs.parse_time(certificates["renderedAt"])
    assert abs(rendered - datetime.now(UTC)) < timedelta(minutes=5)
    assert certificates["revision"] == 1 and certificates["firstRenderedAt"] == certificates["renderedAt"]
    assert certificates["leaves"] == certs.leaf_expiries({"hubble": {"relay": {"enabled": True}}}, certificates)
    assert out["clusters"]["cls-00000003"]["meshAddress"].startswith(CLB_VIP_PREFIX)
    assert "[secret]" not in text(out) and CA_KEY_PEM not in text(rec.outputs)


def _documented_outputs() -> dict[str, str]:
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    table = readme.split("<!-- outputs:begin -->")[1].split("<!-- outputs:end -->")[0]
    rows = [line.split("|") for line in table.strip().splitlines()[2:]]
    return {cells[1].strip().strip("`"): cells[2].strip() for cells in rows}


def _output_paths(value: object, prefix: str, placeholders: dict[str, str]) -> dict[str, str]:
    """Every path of the outputs with its type; keys that vary (cluster names, CA generations,
    certificate groups) written as the README's placeholders."""
    kinds = {bool: "bool", int: "int", str: "string", list: "list", dict: "map"}
    out = {prefix: kinds[type(value)]} if prefix else {}
    if isinstance(value, dict):
        for k, v in value.items():
            part = placeholders.get(k, k)
            out.update(_output_paths(v, f"{prefix}.{part}" if prefix else part, placeholders))
    return out


def output_placeholders(cluster_names: object) -> dict[str, str]:
    """The README table's placeholders for the output keys that vary."""
    placeholders = {name: "<name>" for name in cluster_names}  # type: ignore[attr-defined]
    placeholders.update({g.key: "<group>" for g in certs.LEAF_GROUPS}, **{"1": "<generation>"})
    return placeholders


def test_outputs_match_the_documented_contract(tmp_path: Path) -> None:
    """The README's outputs table and the program's exports name the same keys and types."""
    raw = mesh_config(2)
    raw["clusters"].append(cluster_entry(3, create_clb=True))
    rec = run(raw, tmp_path)
    placeholders = output_placeholders(c["name"] for c in raw["clusters"])
    assert _output_paths(scrub(rec.outputs), "", placeholders) == _documented_outputs()
