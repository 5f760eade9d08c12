"""What `pulumi preview` prints when the program refuses to run, on the real engine: each problem once, and
the choice a generated CA needs without the tls plugin (the toolchain has none: tools.toolchain status) before
the engine fails on it. Neither needs an API server: the program stops before it reaches one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.ca import TLS_PLUGIN_VERSION
from tests.e2e.conftest import Ca, cluster
from tests.e2e.harness import CHART, Workspace, diagnostics


def _config(kubeconfig: Path, **top: Any) -> dict[str, Any]:
    return {
        "mesh:cilium": {"version": "1.18.3", "chart": str(CHART), "skipAwait": True},
        "mesh:kubeconfig": str(kubeconfig),
        "mesh:clusters": [cluster(1, "cls-a"), cluster(2, "cls-b")],
        **top,
    }


@pytest.fixture()
def kubeconfig(tmp_path: Path) -> Path:
    from tests.mockcloud import kubeconfig_for

    path = tmp_path / "kubeconfig"
    path.write_text(kubeconfig_for(["cls-a", "cls-b"]))
    return path


def test_a_generated_ca_without_the_tls_plugin_says_both_ways_before_the_engine(
        tmp_path: Path, kubeconfig: Path) -> None:
    """No mesh:ca.certificate, no tls plugin, no downloads (the suite's engine): the preview fails on mesh:ca with
    the exact install command and the provided-CA keys, once, and the engine never gets to look for the plugin."""
    ws = Workspace(tmp_path / "ws")
    assert ws.env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] == "true"
    ws.init_stack(_config(kubeconfig))
    result = ws.pulumi("preview", check=False)
    assert result.returncode != 0
    lines = diagnostics(result.output)
    ours = [line for line in lines if line.startswith("error: mesh:ca: ")]
    assert len(ours) == 1, lines
    assert f"pulumi plugin install resource tls v{TLS_PLUGIN_VERSION}" in ours[0]
    assert "mesh:ca.certificate" in ours[0] and "secret mesh:caPrivateKey" in ours[0]
    assert "no resource plugin" not in result.output and "pulumi-resource-tls' found" not in result.output
    assert sum("pulumi plugin install resource tls" in line for line in lines) == 1


def test_a_kubeconfig_error_is_printed_once(tmp_path: Path, mesh_ca: Ca) -> None:
    """mesh:kubeconfig names a missing file: its error is one line of the preview's diagnostics (the program
    logs each problem; the exception it ends with only counts them)."""
    ws = Workspace(tmp_path / "ws")
    missing = tmp_path / "no-such-kubeconfig"
    ws.init_stack(_config(missing, **{"mesh:ca": {"certificate": mesh_ca.cert_pem}}),
                  secrets={"mesh:caPrivateKey": mesh_ca.key_pem})
    result = ws.pulumi("preview", check=False)
    assert result.returncode != 0
    lines = diagnostics(result.output)
    named = [line for line in lines if f"cannot read kubeconfig {missing}" in line]
    assert len(named) == 1, lines
    assert named[0].startswith("error: mesh:kubeconfig: ") and "pulumi config set mesh:kubeconfig PATH" in named[0]
    assert "error: the stack configuration has 1 problem, reported above" in lines
