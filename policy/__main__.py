"""The tke-cilium-mesh policy pack: ``pulumi preview --policy-pack policy`` (or ``up``).

Constructing ``PolicyPack`` starts the analyzer's gRPC server and blocks until the engine
is done, which is why it happens here only: the policies live in ``mesh_policies.py``, the
module tests import. The engine runs this file with the pack's directory on ``sys.path``
(``python -m pulumi.policy <engine> .`` runs it with ``runpy.run_path``), hence the
sibling import.
"""

from mesh_policies import POLICIES
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(
    name="tke-cilium-mesh",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=POLICIES,
)
