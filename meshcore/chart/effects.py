"""What a change of one Helm value does to the running Cilium pods, as one declarative table.

The 1.18 chart (``../shared/docs/cilium-mesh.md`` §5; the comments of its ``values.yaml``):

- a value of a pod template (image, resources, env, volumes, probes, scheduling) **rolls that
  workload's pods now**, in this ``pulumi up`` (``ds/cilium`` one node at a time);
- a value the chart only writes into ``cilium-config`` **takes effect at the next restart**: the
  agents and the operator read it when they start, and with ``rollOutCiliumPods: false`` (owned by
  this program) and ``operator.rollOutPods: false`` (the chart's default) no checksum annotation
  rolls them, so the change waits, silently, until someone restarts them;
- Secret data (peer lists, certificates), the ip-masq-agent file (watched by the agent), the
  Service object, replica counts and object metadata are **live**: nothing restarts.

Values the 1.19 and 1.20 charts add (§7; their ``values.yaml`` comments) follow the same rule:
``clustermesh.cacheTTL`` is both ``cilium-config`` and a KVStoreMesh argument, MCS-API both
``cilium-config`` and a clustermesh-apiserver argument, and 1.20's ``clustermesh.apiserver.etcdQPS``
and ``clustermesh.apiserver.kvstoremesh.etcdQPS`` are arguments of the clustermesh-apiserver's
containers (the ``clustermesh.apiserver`` row).

``EFFECTS`` maps a value path prefix to its effect; the longest prefix that matches a path wins,
and a path no row names gets the ``""`` row: assumed to roll the agents, the loud answer (a false
alarm is cheaper than a silent restart). Pure data: no Pulumi import.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from meshcore.chart import versions

AGENT = "ds/cilium"
OPERATOR = "deploy/cilium-operator"
APISERVER = "deploy/clustermesh-apiserver"
RELAY = "deploy/hubble-relay"
UI = "deploy/hubble-ui"
ENVOY = "ds/cilium-envoy"
NODE_INIT = "ds/cilium-node-init"
NAMESPACE = "kube-system"
"""The namespace of the Cilium release (its workloads above) and of TKE's own DaemonSets."""
CONFIG_MAP = "cilium-config"
CA_SECRET = "cilium-ca"
SERVICE = "clustermesh-apiserver"
KVSTOREMESH_SECRET = "cilium-kvstoremesh"
CLUSTERMESH_SECRET = "cilium-clustermesh"
"""Objects the chart renders in ``NAMESPACE`` that the doctor and adoption read."""

ROLLS = "rolls"
NEXT_RESTART = "next-restart"
LIVE = "none"


@dataclass(frozen=True)
class Effect:
    prefix: str
    """The value path prefix of the row (dotted; ``""`` is every path no other row names)."""
    rolls: tuple[str, ...]
    """Workloads whose pods roll now (``ds/cilium``): their pod template changes."""
    next_restart: tuple[str, ...]
    """Workloads that read the value only when they start: it applies when they restart."""
    reason: str

    @property
    def kind(self) -> str:
        """``rolls``, ``next-restart`` or ``none`` (live data)."""
        return ROLLS if self.rolls else NEXT_RESTART if self.next_restart else LIVE


def _row(prefix: str, rolls: Sequence[str] = (), next_restart: Sequence[str] = (), reason: str = "") -> Effect:
    return Effect(prefix, tuple(rolls), tuple(next_restart), reason)


def _minors(method: versions.TlsMethod) -> str:
    """The chart minors the program sets the TLS ``method`` on (``meshcore.chart.versions``), e.g. ``1.19, 1.20``."""
    return ", ".join(m.minor for m in versions.MINORS.values() if m.tls_method == method)


_AGENT_POD = "the agent DaemonSet's pod template"
_MCS_API = ("an argument of the clustermesh-apiserver's pod template (enabling MCS-API adds one: cilium/cilium#35114), "
            "and cilium-config clustermesh-enable-mcs-api (mcsapi.installCRDs: clustermesh-mcs-api-install-crds), read "
            "by the agents and the operator when they start")
_CONFIG = "cilium-config only, read by the agents when they start"
_CONFIG_BOTH = "cilium-config only, read by the agents and the operator when they start"

EFFECTS: tuple[Effect, ...] = (
    _row("", rolls=[AGENT], reason="not in meshcore/chart/effects.py: assumed to change the agent pod template (if it "
                                   "only feeds cilium-config it waits for the next agent restart instead)"),
    # --- the mesh's own values (owned by the program; changed through mesh:* keys)
    _row("cluster.name", next_restart=[AGENT, OPERATOR, APISERVER],
         reason="cilium-config cluster-name, read at start by the agents, the operator and the clustermesh-apiserver "
                "(an env from cilium-config, not its pod template)"),
    _row("cluster.id", next_restart=[AGENT, OPERATOR, APISERVER],
         reason="cilium-config cluster-id, read at start by the agents, the operator and the clustermesh-apiserver "
                "(an env from cilium-config, not its pod template)"),
    _row("clustermesh.maxConnectedClusters", rolls=[APISERVER], next_restart=[AGENT, OPERATOR],
         reason="--max-connected-clusters of the clustermesh-apiserver's pod template, and cilium-config "
                "max-connected-clusters for the agents"),
    _row("clustermesh.config", reason="peer list: Secret data, read live by KVStoreMesh"),
    _row("clustermesh.enableEndpointSliceSynchronization", next_restart=[AGENT, OPERATOR], reason=_CONFIG_BOTH),
    *(_row(p, rolls=[APISERVER], next_restart=[AGENT, OPERATOR], reason=_MCS_API)
      for p in ("clustermesh.enableMCSAPISupport", "clustermesh.mcsapi")),
    _row("clustermesh.mcsapi.corednsAutoConfigure",
         reason="the coredns-mcsapi-autoconfig Job (clustermesh-apiserver coredns-mcsapi-auto-configure, which edits "
                "CoreDNS's configuration): no pod of the agents, the operator or the clustermesh-apiserver"),
    _row("clustermesh.cacheTTL", rolls=[APISERVER], next_restart=[AGENT, OPERATOR],
         reason="--clustermesh-cache-ttl of the KVStoreMesh container (the clustermesh-apiserver's pod template), and "
                "cilium-config clustermesh-cache-ttl, read by the agents and the operator when they start"),
    _row("clustermesh.defaultGlobalNamespace", next_restart=[AGENT, OPERATOR, APISERVER],
         reason="cilium-config clustermesh-default-global-namespace, read at start by the agents, the operator and the "
                "clustermesh-apiserver (which exports only global namespaces' endpoints, identities and services)"),
    _row("clustermesh.policyDefaultLocalCluster", next_restart=[AGENT], reason=_CONFIG),
    _row("clustermesh.apiserver", rolls=[APISERVER], reason="the clustermesh-apiserver Deployment's pod template"),
    _row("clustermesh.apiserver.service", reason="the clustermesh-apiserver Service object (CLB annotations): no pod"),
    _row("clustermesh.apiserver.tls",
         reason=f"clustermesh-apiserver certificates: Secret data (the helm method, chart {_minors('helm')}: the chart "
                f"re-mints them on every render; the cronJob method, chart {_minors('cronJob')}: the certgen "
                "Job/CronJob issues them, no render re-mints them)"),
    _row("clustermesh.apiserver.tls.authMode", rolls=[APISERVER],
         reason="the clustermesh-apiserver's arguments (and the remote-users ConfigMap)"),
    _row("clustermesh.apiserver.replicas", reason="the Deployment's replica count: pods are added or removed, none "
                                                  "restarts"),
    _row("clustermesh.apiserver.updateStrategy", reason="how the Deployment rolls, not its pod template"),
    _row("clustermesh.apiserver.podDisruptionBudget", reason="a PodDisruptionBudget object: no pod"),
    _row("tls.ca", reason="the cilium-ca Secret and the certificates the helm method issues from it: Secret data"),
    _row("tls.caBundle", rolls=[AGENT, APISERVER],
         reason="the agents and the clustermesh-apiserver mount the trust bundle: their pod templates change"),
    _row("ipMasqAgent.config", reason="the ip-masq-agent file: watched and reloaded live by the agent"),
    _row("ipMasqAgent.enabled", rolls=[AGENT], reason="mounts the ip-masq-agent ConfigMap into the agent pods"),
    # --- values of the agent's pod template
    *(_row(p, rolls=[AGENT], reason=_AGENT_POD) for p in (
        "image", "resources", "initResources", "securityContext", "podSecurityContext", "podAnnotations",
        "podLabels", "nodeSelector", "tolerations", "affinity", "priorityClassName", "dnsPolicy", "extraArgs",
        "extraEnv", "extraVolumes", "extraVolumeMounts", "extraHostPathMounts", "extraContainers",
        "extraInitContainers", "terminationGracePeriodSeconds", "startupProbe", "livenessProbe", "readinessProbe",
        "sleepAfterInit", "daemon", "cgroup", "sysctlfix", "cni", "bpf.autoMount", "bpf.root", "prometheus",
        "encryption", "healthPort")),
    _row("k8sServiceHost", rolls=[AGENT, OPERATOR, APISERVER],
         reason="KUBERNETES_SERVICE_HOST of the agent, operator and clustermesh-apiserver pod templates"),
    _row("k8sServicePort", rolls=[AGENT, OPERATOR, APISERVER],
         reason="KUBERNETES_SERVICE_PORT of the agent, operator and clustermesh-apiserver pod templates"),
    _row("annotations", reason="metadata of the agent's objects, not of its pods"),
    _row("updateStrategy", reason="how the DaemonSet rolls, not its pod template"),
    # --- values the chart writes into cilium-config only
    *(_row(p, next_restart=[AGENT], reason=_CONFIG) for p in (
        "devices", "routingMode", "tunnelProtocol", "tunnelPort", "autoDirectNodeRoutes", "ipv4NativeRoutingCIDR",
        "ipv6NativeRoutingCIDR", "enableIPv4Masquerade", "enableIPv6Masquerade", "enableIPv4BIGTCP",
        "enableIPv6BIGTCP", "bpf", "kubeProxyReplacement", "bandwidthManager", "policyEnforcementMode", "l7Proxy",
        "loadBalancer", "nodePort", "socketLB", "hostFirewall", "ipv4", "ipv6", "MTU", "endpointRoutes",
        "egressGateway", "installNoConntrackIptablesRules", "monitor", "policyCIDRMatchMode", "localRedirectPolicy",
        "l2announcements", "dnsProxy", "enableNonDefaultDenyPolicies", "extraConfig", "hubble.eventBufferCapacity")),
    *(_row(p, next_restart=[AGENT, OPERATOR], reason=_CONFIG_BOTH) for p in (
        "debug", "ipam", "identityAllocationMode", "k8sClientRateLimit", "upgradeCompatibility")),
    # --- the operator: its pod template rolls it; its cilium-config values wait for its next restart
    _row("operator", rolls=[OPERATOR], reason="the cilium-operator Deployment's pod template"),
    *(_row(f"operator.{p}", next_restart=[OPERATOR],
           reason="cilium-config only, read by the operator when it starts (operator.rollOutPods: false)") for p in (
        "endpointGCInterval", "nodeGCInterval", "identityGCInterval", "identityHeartbeatTimeout", "removeNodeTaints",
        "setNodeTaints", "setNodeNetworkStatus", "skipCRDCreation", "unmanagedPodWatcher")),
    _row("operator.replicas", reason="the Deployment's replica count: pods are added or removed, none restarts"),
    _row("operator.updateStrategy", reason="how the Deployment rolls, not its pod template"),
    _row("operator.podDisruptionBudget", reason="a PodDisruptionBudget object: no pod"),
    # --- other workloads of the chart
    _row("hubble.tls", reason="Hubble certificates: Secret data"),
    _row("hubble.relay", rolls=[RELAY], reason="the hubble-relay Deployment (its pod template, or its ConfigMap)"),
    _row("hubble.relay.replicas", reason="the Deployment's replica count: pods are added or removed, none restarts"),
    _row("hubble.ui", rolls=[UI], reason="the hubble-ui Deployment"),
    _row("hubble.ui.replicas", reason="the Deployment's replica count: pods are added or removed, none restarts"),
    _row("envoy", rolls=[ENVOY], reason="the cilium-envoy DaemonSet"),
    _row("nodeinit", rolls=[NODE_INIT], reason="the cilium-node-init DaemonSet"),
    _row("certgen", reason=f"the certgen Job and CronJob of the cronJob TLS method (chart {_minors('cronJob')}): no "
                           "pod of the agents"),
)

_BY_PREFIX = {tuple(e.prefix.split(".")) if e.prefix else (): e for e in EFFECTS}
assert len(_BY_PREFIX) == len(EFFECTS), "a prefix is listed twice in EFFECTS"


def effect(path: Sequence[object]) -> Effect:
    """The row of the longest prefix of ``path`` (a values path: keys and list indexes)."""
    parts = tuple(str(p) for p in path)
    for n in range(len(parts), -1, -1):
        row = _BY_PREFIX.get(parts[:n])
        if row is not None:
            return row
    raise AssertionError("EFFECTS has no default row")  # pragma: no cover - the "" row exists


def restart_command(workloads: Sequence[str], cluster: str, context: str | None) -> str:
    """``kubectl <how to reach cluster> -n kube-system rollout restart <workloads>`` in a fixed order.

    Never a bare ``kubectl``, which acts on whatever the current context is: a cluster reached
    through a kubeconfig context names it; one reached without (``kubeconfigFrom: tkeApi``, created)
    gets its kubeconfig from the stack's secret ``kubeconfigs`` output, read into a pipe (no file)."""
    order = [AGENT, OPERATOR, APISERVER, RELAY, UI, ENVOY, NODE_INIT]
    ws = sorted(set(workloads), key=lambda w: (order.index(w) if w in order else len(order), w))
    reach = (f"--context {context}" if context else
             f"--kubeconfig <(pulumi stack output kubeconfigs --show-secrets --json | jq -r '.[\"{cluster}\"]')")
    return f"kubectl {reach} -n {NAMESPACE} rollout restart {' '.join(ws)}"


__all__ = ["Effect", "EFFECTS", "effect", "restart_command", "ROLLS", "NEXT_RESTART", "LIVE",
           "AGENT", "OPERATOR", "APISERVER", "RELAY", "UI", "ENVOY", "NODE_INIT"]
