"""A consumer of tke-cilium-mesh: one Service, global across every meshed cluster.

Reads the mesh stack's outputs through a StackReference and creates, in each cluster,
the same Service annotated ``service.cilium.io/global: "true"``, so Cilium load-balances
it across the clusters of the mesh. The clusters are listed in this stack's config
(resources must be known before outputs resolve, or previews could not show them); the
program refuses to run when that list and the mesh disagree.

Config (``Pulumi.<stack>.yaml``), for the mesh stack ``stacks/Pulumi.prod.yaml``:
    consumer:meshStack: acme/tke-cilium-mesh/prod
    consumer:clusters: [cls-gz01prod, cls-gz02prod, cls-sh01prod]
    consumer:service: {name: echo, namespace: default, port: 8080, selector: {app: echo}}
Each cluster is reached with the kubeconfig the mesh stack exports for it (its secret output
``kubeconfigs``, read through the StackReference and kept secret): no kubeconfig file or context
of this machine is used, so clusters the mesh adopted through the TKE API or created are reached
too. Reading a secret output needs access to the mesh stack's secrets (the same passphrase or
secrets provider; see the mesh's docs/team-state.md).
"""

import pulumi
import pulumi_kubernetes as k8s
from mesh_outputs import check_clusters, global_service_annotations, kubeconfig_of

config = pulumi.Config("consumer")
wanted: list[str] = config.require_object("clusters")
service = config.require_object("service")
mesh = pulumi.StackReference(config.require("meshStack"))
kubeconfigs = mesh.require_output("kubeconfigs")  # a secret: stays one in every Output derived from it
# Only the cluster names, which `clusters` shows anyway, are taken out of the secret.
reachable = pulumi.Output.unsecret(kubeconfigs.apply(lambda k: sorted(k or {})))
clusters = pulumi.Output.all(mesh.require_output("clusters"), reachable).apply(
    lambda a: check_clusters(a[0], wanted, a[1]))

services = {}
for name in wanted:
    provider = k8s.Provider(
        f"{name}-k8s",
        # The kubeconfig's own current context; waits for the check, so a drift registers nothing.
        kubeconfig=pulumi.Output.all(clusters, kubeconfigs).apply(lambda a, n=name: kubeconfig_of(a[1], n)),
        # The cluster, not its kubeconfig (which the mesh stack may renew), identifies the provider:
        # a new kubeconfig is an update, never a replacement of everything it manages.
        cluster_identifier=name,
    )
    services[name] = k8s.core.v1.Service(
        f"{name}-{service['name']}",
        metadata={
            "name": service["name"],
            "namespace": service.get("namespace", "default"),
            "annotations": global_service_annotations(service.get("shared", True)),
        },
        spec={
            "selector": service["selector"],
            "ports": [{"port": service["port"], "targetPort": service.get("targetPort", service["port"])}],
        },
        opts=pulumi.ResourceOptions(provider=provider),
    )

pulumi.export("globalService", {
    name: {"cluster_id": clusters.apply(lambda c, n=name: c[n]["id"]),
           "service": f"{service.get('namespace', 'default')}/{service['name']}"}
    for name in services
})
