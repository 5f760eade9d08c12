"""tke-cilium-mesh: several TKE clusters as one Cilium Cluster Mesh, in one graph."""

import pulumi

from components.collector import tune_gc
from components.program import build_mesh, load_settings, read_kubeconfigs

tune_gc()
settings = load_settings()
mesh = build_mesh(settings, read_kubeconfigs(settings))

for name, value in mesh.outputs().items():
    pulumi.export(name, value)
