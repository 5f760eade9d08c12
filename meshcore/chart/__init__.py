"""Cilium chart facts: the version table, the owned values, the key tree and its indexes, Helm values,
effects, certificates."""
