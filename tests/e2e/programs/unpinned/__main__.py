"""A program that breaks a policy of the pack: a Cilium release whose chart version is not pinned.
The end-to-end suite previews it with `--policy-pack policy` and expects the refusal."""

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
