"""Shared test helpers: valid configs to mutate, stack files, the chart schema, plans."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, settings

from tools import ROOT, SHARED

# Hypothesis: the default profile (every `make test`) is deterministic, so CI runs the same examples
# every time; `make fuzz` runs the long profile: FUZZ_SCALE times the examples, random, and prints
# the reproduction blob of a failure.
FUZZ_SCALE = {"default": 1, "long": 20}
for _name, _scale in FUZZ_SCALE.items():
    settings.register_profile(
        _name, max_examples=100 * _scale, derandomize=_name == "default", database=None, deadline=None,
        print_blob=_name != "default",
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "default")
settings.load_profile(PROFILE)


def examples(n: int) -> int:
    """``n`` examples in the default profile, scaled in the long one (``make fuzz``)."""
    return n * FUZZ_SCALE[PROFILE]

CHART_DIR = SHARED / "cilium-1.18.3"


def committed_stacks() -> list[Path]:
    """``stacks/Pulumi.*.yaml``, but a stack file ``python -m tools.localmesh stack`` wrote there for a local mesh
    (git-ignored: it names paths of one machine)."""
    from tools.localstack import GENERATED

    return sorted(p for p in (ROOT / "stacks").glob("Pulumi.*.yaml")
                  if GENERATED not in p.read_text(encoding="utf-8").splitlines()[:2])


def cluster_entry(i: int, *, create_clb: bool = False, region: str = "ap-guangzhou") -> dict[str, Any]:
    """A valid ``mesh:clusters`` entry number ``i`` (1-based): unique name, id, CIDR and VIP."""
    entry: dict[str, Any] = {
        "name": f"cls-{i:08d}",
        "id": i,
        "region": region,
        "podCidrs": [f"172.{16 + i // 256}.{i % 256}.0/24"],
        "apiserver": {"subnetId": f"subnet-{i:08d}"},
    }
    if create_clb:
        entry["apiserver"].update(createClb=True, vpcId=f"vpc-{i:08d}")
    else:
        entry["apiserver"]["vip"] = f"10.{i // 256}.{i % 256}.100"
    return entry


def mesh_config(n: int = 2, **top: Any) -> dict[str, Any]:
    """A valid decoded ``mesh`` namespace with ``n`` clusters (keys without ``mesh:``)."""
    raw: dict[str, Any] = {"clusters": [cluster_entry(i) for i in range(1, n + 1)]}
    raw.update(copy.deepcopy(top))
    return raw


def to_pulumi_config(raw: dict[str, Any]) -> dict[str, str]:
    """The decoded namespace back as Pulumi hands it to a program."""
    return {f"mesh:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}


def write_stack(dir_: Path, raw: dict[str, Any], stack: str = "test", extra: dict | None = None) -> Path:
    """Write ``raw`` (and any other namespaces in ``extra``) as ``Pulumi.<stack>.yaml``."""
    config = {f"mesh:{k}": v for k, v in raw.items()}
    config.update(extra or {})
    path = dir_ / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump({"config": config}, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def chart_schema() -> Callable[[dict], list[str]]:
    """Validate a values document against the real chart's values.schema.json; returns error texts."""
    import jsonschema

    schema_path = CHART_DIR / "values.schema.json"
    assert schema_path.is_file(), (
        f"the Cilium 1.18.3 chart schema is missing at {schema_path}: put the chart's values.yaml and "
        "values.schema.json there (helm pull cilium/cilium --version 1.18.3 --untar), or set MESH_SHARED_DIR "
        "to the directory holding cilium-1.18.3/")
    schema = json.loads(schema_path.read_text())
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    validator = validator_cls(schema)

    def errors(values: dict) -> list[str]:
        return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(values)]

    return errors


@pytest.fixture(scope="session")
def chart_values() -> dict:
    """The chart's own values.yaml."""
    return yaml.safe_load((CHART_DIR / "values.yaml").read_text())
