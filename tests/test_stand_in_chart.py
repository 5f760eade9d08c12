"""The end-to-end suite's stand-in chart against the real 1.18.3 chart, where the real chart's own file
(``../shared/cilium-1.18.3/values.yaml``) can tell: the stand-in's defaults are the real ones, and the facts
``tests/e2e/real_chart.py`` takes from values.yaml are in it. What the stand-in renders is checked under the real
engine (``tests/e2e/test_mesh_lifecycle.py``: it covers ``real_chart.OBJECTS``; the API server admits it)."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from typing import Any

import yaml

from tests.conftest import SHARED
from tests.e2e import real_chart
from tools import workspace

STAND_IN = workspace.CHART
_MISSING = object()


def _leaves(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(node, dict) and node:
        for k, v in node.items():
            yield from _leaves(v, (*path, k))
    else:
        yield path, node


def _get(node: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return _MISSING
        node = node[key]
    return node


def test_every_default_of_the_stand_in_is_the_real_charts(chart_values: dict) -> None:
    """Each value the stand-in reads is a key of the real chart, with the real default (the capabilities lists,
    the security contexts, the replicas, the tolerations, ...)."""
    stand_in = yaml.safe_load((STAND_IN / "values.yaml").read_text(encoding="utf-8"))
    differ = {".".join(p): (v, _get(chart_values, p)) for p, v in _leaves(stand_in) if _get(chart_values, p) != v}
    assert differ == {}


def test_the_stand_in_states_the_real_version(chart_values: dict) -> None:
    meta = yaml.safe_load((STAND_IN / "Chart.yaml").read_text(encoding="utf-8"))
    assert meta["version"] == "1.18.3" and chart_values["image"]["tag"] == f"v{meta['version']}"


def test_the_real_facts_taken_from_values_yaml_are_in_it(chart_values: dict) -> None:
    """real_chart's ServiceAccounts are created by the real chart under those names; each container with
    capabilities has its documented list; the init containers' switches are on by default."""
    accounts = {a["name"]: a["create"] for a in chart_values["serviceAccounts"].values()}
    for kind, name, source in real_chart.OBJECTS:
        if kind == "ServiceAccount":
            assert accounts.get(name) is True, (name, source)
            key = re.match(r"values\.yaml serviceAccounts\.(\w+)", source)
            assert key and chart_values["serviceAccounts"][key[1]]["name"] == name, source
    capabilities = chart_values["securityContext"]["capabilities"]
    for container, key in real_chart.AGENT_CAPABILITIES.items():
        assert capabilities[key], (container, key)
        assert container in dict(real_chart.AGENT_INIT_CONTAINERS) or container in real_chart.AGENT_CONTAINERS
    assert chart_values["securityContext"]["privileged"] is False
    assert (chart_values["cgroup"]["autoMount"]["enabled"], chart_values["sysctlfix"]["enabled"],
            chart_values["bpf"]["autoMount"]["enabled"], chart_values["cni"]["install"]) == (True,) * 4
    assert chart_values["envoy"]["enabled"] is None and chart_values["operator"]["hostNetwork"] is True
    assert chart_values["hubble"]["enabled"] is True
    assert chart_values["operator"]["replicas"] == 2


CHART_NOTES = SHARED / "docs" / "cilium-mesh.md"
"""Notes on the real chart written from reading its templates (``../shared``): the templates of the CA, the TLS
Secrets, the peer Secrets, the config, the workloads and the clustermesh-apiserver Service."""

DOCUMENTED: dict[tuple[str, str], str] = {
    ("Secret", "cilium-ca"): "templates/cilium-ca-secret.yaml",
    ("ConfigMap", "cilium-config"): "templates/cilium-configmap.yaml",
    ("DaemonSet", "cilium"): "templates/cilium-agent/daemonset.yaml",
    ("Deployment", "cilium-operator"): "templates/cilium-operator/deployment.yaml",
    ("Deployment", "clustermesh-apiserver"): "templates/clustermesh-apiserver/deployment.yaml",
    ("Service", "clustermesh-apiserver"): "templates/clustermesh-apiserver/service.yaml",
    ("Secret", "cilium-clustermesh"): "templates/clustermesh-config/clustermesh-secret.yaml",
    ("Secret", "cilium-kvstoremesh"): "templates/clustermesh-config/kvstoremesh-secret.yaml",
    ("Secret", "clustermesh-apiserver-server-cert"): "templates/clustermesh-apiserver/tls-helm/*.yaml",
    ("Secret", "clustermesh-apiserver-admin-cert"): "templates/clustermesh-apiserver/tls-helm/*.yaml",
    ("Secret", "clustermesh-apiserver-remote-cert"): "templates/clustermesh-apiserver/tls-helm/*.yaml",
    ("Secret", "clustermesh-apiserver-local-cert"): "templates/clustermesh-apiserver/tls-helm/*.yaml",
    ("Secret", "hubble-server-certs"): "templates/hubble/tls-helm/*",
    ("Secret", "hubble-relay-client-certs"): "templates/hubble/tls-helm/*",
}
"""(kind, name) -> the template the notes say renders it, for the suite's values (helm TLS methods, KVStoreMesh,
Relay on)."""


def test_real_chart_cites_the_templates_the_chart_notes_name() -> None:
    """Each object the notes on the real chart (../shared) say it renders for these values is in
    ``real_chart.OBJECTS``, citing the template the notes name (a glob there: a file it matches), and every kind of
    the notes' objects is among ``real_chart.KINDS``: the stand-in is checked against a list that agrees with the
    chart's documentation where it has any."""
    notes = CHART_NOTES.read_text(encoding="utf-8")
    named = set(re.findall(r"templates/[\w./*-]+", notes))
    cited = {(kind, name): source for kind, name, source in real_chart.OBJECTS}
    wrong = {}
    for (kind, name), template in DOCUMENTED.items():
        assert template in named, f"{CHART_NOTES} does not name {template}"
        # The notes name each Secret and ConfigMap; the workloads by their templates only (the operator's).
        assert kind not in ("Secret", "ConfigMap") or f"`{name}`" in notes, f"{CHART_NOTES} does not name {name}"
        paths = re.findall(r"templates/[\w./-]+", cited.get((kind, name), ""))
        if not any(fnmatch.fnmatch(p, template) for p in paths):
            wrong[f"{kind}/{name}"] = (cited.get((kind, name)), template)
    assert wrong == {}
    assert {kind for kind, _ in DOCUMENTED} <= real_chart.KINDS
