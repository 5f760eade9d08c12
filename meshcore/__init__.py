"""The pure core of tke-cilium-mesh: config model, validation, topology, Helm values.

Nothing in this package imports Pulumi; it is tested directly.
"""
