"""What the real Cilium 1.18.3 chart asks of an API server, written down for the stand-in chart
(``tools/stand-in-chart/cilium``) to be checked against: the objects it renders and the shape of the agent
DaemonSet that admission judges.

The real chart's templates cannot be shipped here. Each fact below names where it comes from:

- ``values.yaml KEY``: ``../shared/cilium-1.18.3/values.yaml``, the real chart's documented defaults
  (``tests/test_stand_in_chart.py`` reads the file and checks what it can: the capabilities lists, the
  default of every value the stand-in reads);
- ``templates/PATH``: the 1.18 chart's template of that name (cilium/cilium ``install/kubernetes/cilium/templates/``);
  where ``../shared/docs/cilium-mesh.md`` (notes written from reading the chart's templates) names the template,
  ``tests/test_stand_in_chart.py`` checks the path and what it renders against them (``DOCUMENTED``), the rest is
  from knowledge of the chart;
- ``observed``: what ``pulumi up`` of the real 1.18.3 chart into ``tools.localmesh`` reported (issue #19,
  part 2): ``DaemonSet.apps "cilium" is invalid: spec.template.spec.initContainers[3].securityContext.privileged:
  Forbidden: disallowed by cluster policy``.

For the values the suite's stacks give the chart (``localstack.stack_config``: ``clustermesh.useAPIServer``,
KVStoreMesh on, the ``helm`` TLS method, Hubble Relay on, ``upgradeCompatibility: "1.18"``, a LoadBalancer
Service) and otherwise the chart's defaults. Left out, being off by default or not certain for these values:
PodDisruptionBudgets (``*.podDisruptionBudget.enabled: false``), ResourceQuotas (``resourceQuotas.enabled:
false``), the ``cilium-secrets`` Namespace and its Roles (``tls.secretsNamespace``, rendered for Ingress, Gateway
API or secret sync, none on), the metrics Services of the clustermesh-apiserver and Envoy (scraping
configuration), Hubble UI (``hubble.ui.enabled: false``), node-init and preflight (off), certgen's Job and
CronJob (the ``cronJob`` TLS method only), the ``clustermesh-remote-users`` ConfigMap (authMode other than
``legacy``; the program sets none at 1.18) (the stand-in renders both for the program's 1.19 values, run in
``tests/e2e/test_mixed_mesh.py``; docs/clustermesh-apiserver.md names their sources), the CA bundle (``tls.caBundle.enabled: false``), the Hubble Secrets
``hubble-relay-server-certs`` (``hubble.relay.tls.server.enabled: false``), ``hubble-ui-client-certs`` (Hubble UI)
and ``hubble-metrics-server-certs`` (``hubble.metrics.tls.enabled: false``).
"""

from __future__ import annotations

OBJECTS: tuple[tuple[str, str, str], ...] = (
    # The agent: templates/cilium-agent/
    ("ServiceAccount", "cilium", "values.yaml serviceAccounts.cilium {create: true, name: cilium}"),
    ("ClusterRole", "cilium", "templates/cilium-agent/clusterrole.yaml"),
    ("ClusterRoleBinding", "cilium", "templates/cilium-agent/clusterrolebinding.yaml"),
    ("Role", "cilium-config-agent", "templates/cilium-agent/role.yaml (configmaps in the release namespace)"),
    ("RoleBinding", "cilium-config-agent", "templates/cilium-agent/rolebinding.yaml"),
    ("DaemonSet", "cilium", "templates/cilium-agent/daemonset.yaml; observed"),
    ("ConfigMap", "cilium-config", "templates/cilium-configmap.yaml"),
    # Envoy, standalone: on for new installations (values.yaml envoy.enabled: ~, "true for new installation")
    ("ServiceAccount", "cilium-envoy", "values.yaml serviceAccounts.envoy {create: true, name: cilium-envoy}"),
    ("ConfigMap", "cilium-envoy-config", "templates/cilium-envoy/configmap.yaml"),
    ("DaemonSet", "cilium-envoy", "templates/cilium-envoy/daemonset.yaml; values.yaml envoy.enabled"),
    # The operator: templates/cilium-operator/
    ("ServiceAccount", "cilium-operator", "values.yaml serviceAccounts.operator {create: true, name: cilium-operator}"),
    ("ClusterRole", "cilium-operator", "templates/cilium-operator/clusterrole.yaml"),
    ("ClusterRoleBinding", "cilium-operator", "templates/cilium-operator/clusterrolebinding.yaml"),
    ("Deployment", "cilium-operator", "templates/cilium-operator/deployment.yaml; values.yaml operator.replicas: 2, "
                                      "operator.hostNetwork: true"),
    # The clustermesh-apiserver: templates/clustermesh-apiserver/
    ("ServiceAccount", "clustermesh-apiserver",
     "values.yaml serviceAccounts.clustermeshApiserver {create: true, name: clustermesh-apiserver}"),
    ("ClusterRole", "clustermesh-apiserver", "templates/clustermesh-apiserver/clusterrole.yaml"),
    ("ClusterRoleBinding", "clustermesh-apiserver", "templates/clustermesh-apiserver/clusterrolebinding.yaml"),
    ("Deployment", "clustermesh-apiserver", "templates/clustermesh-apiserver/deployment.yaml; values.yaml "
                                            "clustermesh.apiserver.replicas: 1"),
    ("Service", "clustermesh-apiserver", "templates/clustermesh-apiserver/service.yaml"),
    ("Secret", "cilium-clustermesh", "templates/clustermesh-config/clustermesh-secret.yaml (clustermesh.config)"),
    ("Secret", "cilium-kvstoremesh", "templates/clustermesh-config/kvstoremesh-secret.yaml"),
    ("Secret", "clustermesh-apiserver-server-cert", "templates/clustermesh-apiserver/tls-helm/server-secret.yaml"),
    ("Secret", "clustermesh-apiserver-admin-cert", "templates/clustermesh-apiserver/tls-helm/admin-secret.yaml"),
    ("Secret", "clustermesh-apiserver-remote-cert", "templates/clustermesh-apiserver/tls-helm/remote-secret.yaml"),
    ("Secret", "clustermesh-apiserver-local-cert", "templates/clustermesh-apiserver/tls-helm/local-secret.yaml "
                                                   "(KVStoreMesh)"),
    # The CA: templates/cilium-ca-secret.yaml, from tls.ca.cert/key (values.yaml tls.ca)
    ("Secret", "cilium-ca", "templates/cilium-ca-secret.yaml; values.yaml tls.ca"),
    # Hubble: templates/hubble/, templates/hubble-relay/
    ("Service", "hubble-peer", "templates/hubble/peer-service.yaml; values.yaml hubble.peerService"),
    ("Secret", "hubble-server-certs", "templates/hubble/tls-helm/server-secret.yaml"),
    ("ServiceAccount", "hubble-relay", "values.yaml serviceAccounts.relay {create: true, name: hubble-relay}"),
    ("ConfigMap", "hubble-relay-config", "templates/hubble-relay/configmap.yaml"),
    ("Deployment", "hubble-relay", "templates/hubble-relay/deployment.yaml; values.yaml hubble.relay.replicas: 1"),
    ("Service", "hubble-relay", "templates/hubble-relay/service.yaml"),
    ("Secret", "hubble-relay-client-certs", "templates/hubble/tls-helm/relay-client-secret.yaml"),
)
"""(kind, name, where the fact comes from) of every object the real chart renders for the suite's values."""

KINDS = frozenset(kind for kind, _, _ in OBJECTS)

AGENT_INIT_CONTAINERS: tuple[tuple[str, str], ...] = (
    ("config", "templates/cilium-agent/daemonset.yaml (cilium-dbg build-config), always"),
    ("mount-cgroup", "values.yaml cgroup.autoMount.enabled: true; securityContext.capabilities.mountCgroup"),
    ("apply-sysctl-overwrites", "values.yaml sysctlfix.enabled: true; securityContext.capabilities.applySysctlOverwrites"),
    ("mount-bpf-fs", "values.yaml bpf.autoMount.enabled: true; observed: initContainers[3] is privileged"),
    ("clean-cilium-state", "values.yaml securityContext.capabilities.cleanCiliumState"),
    ("install-cni-binaries", "values.yaml cni.install: true"),
)
"""The agent's init containers in the real chart's order (index 3, mount-bpf-fs, is the one the API server refused)."""

AGENT_CONTAINERS = ("cilium-agent",)
"""values.yaml securityContext.capabilities.ciliumAgent ("Capabilities for the `cilium-agent` container");
``cilium-monitor`` only with monitor.enabled (false)."""

AGENT_CAPABILITIES: dict[str, str] = {
    "cilium-agent": "ciliumAgent",
    "mount-cgroup": "mountCgroup",
    "apply-sysctl-overwrites": "applySysctlOverwrites",
    "clean-cilium-state": "cleanCiliumState",
}
"""Container -> the ``values.yaml securityContext.capabilities`` list it adds (each drops ALL; values.yaml
securityContext.privileged: false)."""

PRIVILEGED = ("mount-bpf-fs",)
"""Privileged whatever ``securityContext.privileged`` says: it mounts the BPF filesystem on the host with
``mountPropagation: Bidirectional``, which the API server allows privileged containers only
(templates/cilium-agent/daemonset.yaml; observed)."""

HOST_NETWORK = ("DaemonSet/cilium", "DaemonSet/cilium-envoy", "Deployment/cilium-operator")
"""Pods on the host's network: the agent and Envoy (templates), the operator (values.yaml operator.hostNetwork: true)."""

PRIORITY_CLASSES = {
    "DaemonSet/cilium": "system-node-critical",
    "DaemonSet/cilium-envoy": "system-node-critical",
    "Deployment/cilium-operator": "system-cluster-critical",
    "Deployment/clustermesh-apiserver": "system-cluster-critical",
}
"""templates (``cilium.priorityClass`` with these defaults; values.yaml priorityClassName: "" and
operator/clustermesh.apiserver.priorityClassName: ""). Both classes exist in every API server (its
bootstrap-system-priority-classes post-start hook); the Priority admission plugin checks them on pods only."""
