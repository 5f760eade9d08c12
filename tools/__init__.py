"""Tools around the program: offline plan, mock engine."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The project directory (where Pulumi.yaml is)."""
SHARED = Path(os.environ.get("MESH_SHARED_DIR", ROOT.parent / "shared"))
"""Where the charts' files are: ``cilium-<version>/values.yaml`` and ``values.schema.json``."""
