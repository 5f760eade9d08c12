"""The pure core of tke-cilium-mesh, in floors (README "Layout"): the shared leaves here (keypaths, yamlio,
errors), then chart/, config/, mesh/ and doctor/, each importing only the ones before it.

Nothing in this package imports Pulumi; it is tested directly.
"""
