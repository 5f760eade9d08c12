"""The generated CA needs the tls plugin: the program says so, with both ways out, before the engine fails
on it (`no resource plugin 'pulumi-resource-tls' found`). On the real engine: tests/e2e/test_engine_messages.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components import program
from components.ca import TLS_PLUGIN_VERSION
from components.program import InvalidConfig
from meshcore.mesh.plugins import find_resource_plugin, tls_plugin_issue, tls_plugin_note
from tests.conftest import mesh_config
from tests.mockcloud import run
from tests.test_provided_ca import _provided

NO_DOWNLOADS = {"PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true", "PATH": ""}


def _install(plugins: Path, name: str = "tls", version: str = TLS_PLUGIN_VERSION) -> Path:
    d = plugins / f"resource-{name}-v{version}"
    d.mkdir(parents=True)
    (d / f"pulumi-resource-{name}").write_text("")
    return d


def test_the_version_is_the_one_the_sdk_asks_for() -> None:
    """The pinned SDK's pulumi-plugin.json, what the language host reports to the engine."""
    import pulumi_tls

    meta = json.loads((Path(pulumi_tls.__file__).parent / "pulumi-plugin.json").read_text())
    assert (meta["name"], TLS_PLUGIN_VERSION) == ("tls", meta["version"])
    assert TLS_PLUGIN_VERSION.count(".") == 2


class TestWhereTheEngineLooks:
    """The engine's places, in its order: Pulumi.yaml plugins.providers, $PATH, $PULUMI_HOME/plugins."""

    def test_the_plugin_cache_under_pulumi_home_or_the_home_directory(self, tmp_path: Path) -> None:
        home = tmp_path / "user"
        assert find_resource_plugin("tls", "5.6.2", NO_DOWNLOADS, home).found is None
        installed = _install(home / ".pulumi" / "plugins", version="5.6.2")
        assert find_resource_plugin("tls", "5.6.2", NO_DOWNLOADS, home).found == str(installed)
        # $PULUMI_HOME replaces ~/.pulumi
        lookup = find_resource_plugin("tls", "5.6.2", {**NO_DOWNLOADS, "PULUMI_HOME": str(tmp_path / "ph")}, home)
        assert lookup.found is None and lookup.looked[-1] == str(tmp_path / "ph" / "plugins")

    def test_only_the_version_asked_for_and_a_finished_install(self, tmp_path: Path) -> None:
        plugins = tmp_path / ".pulumi" / "plugins"
        _install(plugins, version="5.6.1")
        _install(plugins, name="kubernetes", version="5.6.2")
        assert find_resource_plugin("tls", "5.6.2", NO_DOWNLOADS, tmp_path).found is None
        installed = _install(plugins, version="5.6.2")
        (plugins / f"{installed.name}.partial").write_text("")
        assert find_resource_plugin("tls", "5.6.2", NO_DOWNLOADS, tmp_path).found is None

    def test_on_path_unless_ambient_plugins_are_ignored(self, tmp_path: Path) -> None:
        exe = tmp_path / "bin" / "pulumi-resource-tls"
        exe.parent.mkdir()
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
        env = {**NO_DOWNLOADS, "PATH": str(exe.parent)}
        assert find_resource_plugin("tls", "5.6.2", env, tmp_path).found == str(exe)
        ignored = find_resource_plugin("tls", "5.6.2", {**env, "PULUMI_IGNORE_AMBIENT_PLUGINS": "1"}, tmp_path)
        assert ignored.found is None and "$PATH" not in ignored.looked

    def test_a_project_plugin_of_pulumi_yaml(self, tmp_path: Path) -> None:
        project = {"plugins": {"providers": [{"name": "tls", "path": "/opt/tls"}]}}
        assert find_resource_plugin("tls", "5.6.2", NO_DOWNLOADS, tmp_path, project).found == "/opt/tls"
        other = {"plugins": {"providers": [{"name": "tls", "version": "5.0.0", "path": "/opt/tls"}]}}
        assert find_resource_plugin("tls", "5.6.2", NO_DOWNLOADS, tmp_path, other).found is None


def test_the_error_names_mesh_ca_and_both_ways_out(tmp_path: Path) -> None:
    """Without the plugin and without downloads: one issue on mesh:ca with the exact install command and the
    provided-CA keys; the engine would download it otherwise (a warning with the same two ways, no error)."""
    lookup = find_resource_plugin("tls", "5.6.2", NO_DOWNLOADS, tmp_path)
    issue = tls_plugin_issue(lookup)
    assert issue is not None and issue.key == "mesh:ca"
    assert "pulumi plugin install resource tls v5.6.2" in issue.message
    assert "mesh:ca.certificate" in issue.message and "secret mesh:caPrivateKey" in issue.message
    assert str(tmp_path / ".pulumi" / "plugins") in issue.message and "\n" not in issue.message
    assert tls_plugin_note(lookup) is None
    downloads = find_resource_plugin("tls", "5.6.2", {"PATH": ""}, tmp_path)
    note = tls_plugin_note(downloads)
    assert tls_plugin_issue(downloads) is None and note is not None
    assert "pulumi plugin install resource tls v5.6.2" in note and "mesh:ca.certificate" in note
    _install(tmp_path / ".pulumi" / "plugins", version="5.6.2")
    for env in (NO_DOWNLOADS, {"PATH": ""}):
        found = find_resource_plugin("tls", "5.6.2", env, tmp_path)
        assert tls_plugin_issue(found) is None and tls_plugin_note(found) is None


def test_the_program_checks_under_the_real_engine_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The mock engine (offline plan, tests) loads no plugin: a generated CA plans without one. Where the engine is
    not a mock, the program refuses a generated CA before registering anything, and a provided CA is not checked."""
    monkeypatch.setenv("PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION", "true")
    monkeypatch.setenv("PULUMI_HOME", str(tmp_path / "pulumi-home"))
    monkeypatch.setenv("PATH", "")
    assert run(mesh_config(2), tmp_path).resources  # the mock engine: no check

    monkeypatch.setattr(program.sdk, "mock_engine", lambda: False)
    rec = run(_provided(), tmp_path, secret_keys=["mesh:caPrivateKey"])
    assert rec.resources and not [r for r in rec.resources.values() if r.type.startswith("tls:")]
    with pytest.raises(InvalidConfig) as exc:
        run(mesh_config(2), tmp_path, recording=(rec := type(rec)(project=rec.project, stack=rec.stack)))
    assert [i.key for i in exc.value.issues] == ["mesh:ca"]
    assert f"pulumi plugin install resource tls v{TLS_PLUGIN_VERSION}" in exc.value.issues[0].message
    assert rec.resources == {}, "refused before anything is registered"
    _install(tmp_path / "pulumi-home" / "plugins")
    assert run(mesh_config(2), tmp_path).resources
