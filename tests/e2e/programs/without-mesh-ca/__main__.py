"""A program that breaks a policy of the pack: a Cilium release without the mesh CA (the chart would
make a CA of its own). The end-to-end suite previews it with `--policy-pack policy` and expects the
refusal. (It gives no chart version either: with a local chart the provider's Check fills it in from
the chart, so `cilium-chart-version-pinned` does not see it missing.)"""

import pulumi
import pulumi_kubernetes as k8s

cfg = pulumi.Config("e2e")
provider = k8s.Provider("k8s", kubeconfig=cfg.require("kubeconfig"), context=cfg.require("context"))
k8s.helm.v3.Release(
    "cls-x-cilium",
    name="cilium",
    namespace="kube-system",
    chart=cfg.require("chart"),
    skip_await=True,
    opts=pulumi.ResourceOptions(provider=provider),
)
