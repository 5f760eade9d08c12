"""The type tokens of the components that the plan tools look up (``tools.render``, ``tools.diff``): here, so that
reading a plan needs no provider SDK import."""

CLUSTER = "mesh:tke:Cluster"
"""``components.cluster.TkeCluster``."""
MESH_PEERS = "mesh:mesh:MeshPeers"
"""``components.peering.MeshPeers``."""
