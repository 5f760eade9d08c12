"""A consumer of tke-cilium-mesh: one Service, global across every meshed cluster.

Reads the mesh stack's outputs through a StackReference and creates, in each cluster,
the same Service annotated ``service.cilium.io/global: "true"``, so Cilium load-balances
it across the clusters of the mesh. The clusters are listed in this stack's config
(resources must be known before outputs resolve, or previews could not show them); the
program refuses to run when that list and the mesh disagree.

Config (``Pulumi.<stack>.yaml``):
    consumer:meshStack: acme/tke-cilium-mesh/prod
    consumer:clusters: [cls-gz01prod, cls-gz02prod]
    consumer:service: {name: echo, namespace: default, port: 8080, selector: {app: echo}}
Kubeconfig contexts come from the mesh outputs; the kubeconfig itself is the usual
``$KUBECONFIG`` / ``~/.kube/config`` of the machine running ``pulumi up``.
"""

import pulumi
import pulumi_kubernetes as k8s

from mesh_outputs import check_clusters, global_service_annotations

config = pulumi.Config("consumer")
wanted: list[str] = config.require_object("clusters")
service = config.require_object("service")
mesh = pulumi.StackReference(config.require("meshStack"))
clusters = mesh.require_output("clusters").apply(lambda c: check_clusters(c, wanted))

services = {}
for name in wanted:
    provider = k8s.Provider(f"{name}-k8s", context=clusters.apply(lambda c, n=name: c[n]["context"]))
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
