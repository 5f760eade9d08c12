"""Pulumi components of the mesh: they only wire resources; decisions live in ``meshcore``."""
