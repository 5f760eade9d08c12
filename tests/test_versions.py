"""The version table is the one place a chart minor is named: adding one is one row of meshcore/versions.py
(plus its ../shared data), and the version pattern, the stack schema, the owned rows and the messages follow."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from meshcore import owned, versions
from meshcore.config_parse import parse_settings
from meshcore.errors import MeshConfigError
from tests.conftest import ROOT, SHARED, mesh_config
from tools import schema

ROW_1_21 = '''    "1.21": Minor(
        "1.21", "1.21.1", peer_form="map", tls_method="cronJob", auth_mode="migration",
        chart_policy_default_local_cluster=True, clustermesh_cert_days=365, hubble_cert_days=365,
        server_ips=_AUTO_SERVER_IPS, clustermesh_schedule=CERTGEN_SCHEDULE),
'''
"""A fake next minor: a row like 1.20's."""

SERVER_IPS_PATHS = {r.server_ips for r in versions.MINORS.values()}
ROWS = {"authMode": ("clustermesh", "apiserver", "tls", "authMode"),
        "schedule": ("clustermesh", "apiserver", "tls", "auto", "schedule"),
        "hubbleTls": ("hubble", "tls", "auto", "method")}

PROBE = '''
import json, sys
from meshcore import owned, versions
from meshcore.config_parse import parse_settings
from meshcore.errors import MeshConfigError
from tools import schema

raw = json.loads(sys.argv[1])

def messages(**top):
    try:
        parse_settings({**raw, **top})
    except MeshConfigError as err:
        return {i.key: i.message for i in err.issues}
    return {}

mesh = schema.stack_schema()["properties"]["config"]["properties"]
cilium = mesh["mesh:cilium"]
print(json.dumps({
    "pattern": versions.VERSION_PATTERN,
    "supported": [versions.is_supported(v) for v in ("1.21.0", "1.21.7", "1.22.0")],
    "indexed": versions.INDEXED,
    "schema_pattern": schema.stack_schema()["$defs"]["CiliumSettings"]["properties"]["version"]["pattern"],
    "charts": {"/".join(k.path): list(k.charts) for k in owned.OWNED},
    "chart_version": messages(cilium={"version": "1.17.0"}),
    "max_connected": messages(maxConnectedClusters=300),
    "port": messages(clusters=[{**raw["clusters"][0], "apiserver": {**raw["clusters"][0]["apiserver"], "port": 2380}},
                               raw["clusters"][1]]),
    "path": versions.path_between("1.19.6", "1.21.1"),
    "skip": versions.upgrade_problem("1.19.6", "1.21.1"),
}))
'''


def probe(root: Path) -> dict[str, Any]:
    """What the program under ``root`` derives from its version table."""
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(mesh_config(2))], cwd=root, check=True,
                         capture_output=True, text=True, env={"PYTHONPATH": str(root), "PATH": ""})
    return dict(json.loads(out.stdout))


@pytest.fixture(scope="module")
def with_1_21(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A copy of the program whose only change is one more row in the version table."""
    root = tmp_path_factory.mktemp("program")
    shutil.copytree(ROOT / "meshcore", root / "meshcore", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "tools").mkdir()
    for name in ("__init__.py", "schema.py"):
        shutil.copy(ROOT / "tools" / name, root / "tools" / name)
    table = (root / "meshcore" / "versions.py").read_text()
    end = table.index("\n}\nORDER")
    assert table.count("\n}\nORDER") == 1 and "1.21" not in table
    (root / "meshcore" / "versions.py").write_text(table[:end + 1] + ROW_1_21 + table[end + 1:])
    return probe(root)


def test_a_new_minor_is_one_row_and_the_version_pattern_and_schema_follow(with_1_21: dict[str, Any]) -> None:
    assert versions.VERSION_PATTERN == r"^v?1\.(18|19|20)\.(0|[1-9][0-9]*)$"
    assert with_1_21["pattern"] == r"^v?1\.(18|19|20|21)\.(0|[1-9][0-9]*)$"
    assert with_1_21["schema_pattern"] == with_1_21["pattern"]
    assert schema.stack_schema()["$defs"]["CiliumSettings"]["properties"]["version"]["pattern"] \
        == versions.VERSION_PATTERN
    assert with_1_21["supported"] == [True, True, False]
    assert with_1_21["indexed"] == [*versions.INDEXED, "1.21.1"]


def test_a_new_minor_is_one_row_and_the_owned_rows_follow(with_1_21: dict[str, Any]) -> None:
    now = {"/".join(k.path): list(k.charts) for k in owned.OWNED}
    assert set(with_1_21["charts"]) == set(now), "the same owned keys"
    changed = {k: v for k, v in with_1_21["charts"].items() if v != now[k]}
    # Every row of 1.20 (which the fake row copies) is the fake minor's too.
    assert changed == {k: [*v, "1.21"] for k, v in now.items() if "1.20" in v}
    for name in ("authMode", "schedule", "hubbleTls"):
        assert "1.21" in with_1_21["charts"]["/".join(ROWS[name])], name
    old_ips, new_ips = ("/".join(p) for p in sorted(SERVER_IPS_PATHS, key=len))
    assert with_1_21["charts"][old_ips] == ["1.18", "1.19"] and with_1_21["charts"][new_ips] == ["1.20", "1.21"]


def test_a_new_minor_is_one_row_and_the_messages_follow(with_1_21: dict[str, Any]) -> None:
    def one(issues: dict[str, str], key: str) -> str:
        assert list(issues) == [key], issues
        return issues[key]

    version = one(with_1_21["chart_version"], "mesh:cilium.version")
    assert "the Cilium 1.18.x, 1.19.x, 1.20.x, 1.21.x charts" in version and "1.21.1" in version
    assert "Cilium 1.18 to 1.21 charts accept" in one(with_1_21["max_connected"], "mesh:maxConnectedClusters")
    assert "the Cilium 1.18 to 1.21 charts expose clustermesh-apiserver on port 2379 only" in one(
        with_1_21["port"], "mesh:clusters[0].apiserver.port")
    assert with_1_21["path"] == ["1.19.6", "1.20.0", "1.21.1"]
    assert "skips a minor" in with_1_21["skip"]
    # ... and the program as it is says what its own table says.
    with pytest.raises(MeshConfigError) as err:
        parse_settings(mesh_config(2, maxConnectedClusters=300))
    assert "Cilium 1.18 to 1.20 charts accept" in err.value.issues[0].message


@pytest.mark.parametrize("minor", versions.ORDER)
def test_no_supported_chart_lets_the_clustermesh_apiserver_port_change(minor: str) -> None:
    """What the apiserver port message says (``meshcore.config._only_2379``), read from each minor's latest chart."""
    path = SHARED / f"cilium-{versions.LATEST[minor]}" / "values.schema.json"
    assert path.is_file(), f"the chart schema of {versions.LATEST[minor]} is missing at {path}"
    service = json.loads(path.read_text())["properties"]["clustermesh"]["properties"]["apiserver"]["properties"][
        "service"]["properties"]
    assert "type" in service and "port" not in service
