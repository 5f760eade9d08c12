"""Whether the Pulumi engine will find a resource plugin, looked up where it looks.

The generated CA (``components/ca.py``) is made by the tls provider. A ``pulumi preview`` on a
machine without its plugin, where the engine does not download plugins, fails with the engine's
``no resource plugin 'pulumi-resource-tls' found`` and no word of the other way, a CA the stack
brings. ``tls_plugin_issue`` says both first.

The places and their order are the engine's (pulumi ``sdk/go/common/workspace/plugins.go``,
``getPluginInfoAndPath``): the project's ``plugins.providers`` in ``Pulumi.yaml``, then
``$PATH`` (unless ``PULUMI_IGNORE_AMBIENT_PLUGINS``), then the plugin cache
``$PULUMI_HOME/plugins`` (default ``~/.pulumi/plugins``), where the version must be the one asked
for (``SelectCompatiblePlugin``) and a directory with a ``.partial`` file beside it is an
unfinished install. A missing plugin is downloaded by the engine unless
``PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION`` is set (``pkg/resource/deploy/providers/registry.go``).
No Pulumi import here.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshcore.config.clusters import NS
from meshcore.errors import ConfigIssue


def _truthy(environ: Mapping[str, str], name: str) -> bool:
    """A boolean of the engine's environment, read as the engine reads it (``1`` or ``true``)."""
    return environ.get(name, "").strip().lower() in ("1", "true")


@dataclass(frozen=True)
class PluginLookup:
    """Where the engine would find a resource plugin, or where it looked."""

    name: str
    version: str
    found: str | None
    """The plugin's directory or executable; None when the engine would not find it."""
    looked: tuple[str, ...]
    """Where it looked, in its order (for the message)."""
    acquires: bool
    """True when the engine downloads a missing plugin itself."""

    @property
    def install_command(self) -> str:
        return f"pulumi plugin install resource {self.name} v{self.version}"


def find_resource_plugin(name: str, version: str, environ: Mapping[str, str], home: Path,
                         project: Mapping[str, Any] | None = None) -> PluginLookup:
    """Where the engine finds resource plugin ``name`` at ``version``: ``environ`` is the engine's
    environment (the program inherits it), ``home`` the user's home directory, ``project`` the
    parsed ``Pulumi.yaml``."""
    looked: list[str] = []
    acquires = not _truthy(environ, "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION")

    def lookup(found: str | None) -> PluginLookup:
        return PluginLookup(name, version, found, tuple(looked), acquires)

    plugins = (project or {}).get("plugins")
    providers = plugins.get("providers") if isinstance(plugins, dict) else None
    for p in providers if isinstance(providers, list) else []:
        if isinstance(p, dict) and p.get("name") == name and str(p.get("version", version)).lstrip("v") == version:
            return lookup(str(p.get("path")))
    looked.append("Pulumi.yaml plugins.providers")
    if not _truthy(environ, "PULUMI_IGNORE_AMBIENT_PLUGINS"):
        ambient = shutil.which(f"pulumi-resource-{name}", path=environ.get("PATH", ""))
        if ambient is not None:
            return lookup(ambient)
        looked.append("$PATH")
    cache = Path(environ["PULUMI_HOME"]) / "plugins" if environ.get("PULUMI_HOME") else home / ".pulumi" / "plugins"
    installed = cache / f"resource-{name}-v{version}"
    if installed.is_dir() and not installed.with_name(installed.name + ".partial").exists():
        return lookup(str(installed))
    looked.append(str(cache))
    return lookup(None)


_BRING_A_CA = ("bring a CA: set mesh:ca.certificate to its PEM and its key as the secret mesh:caPrivateKey "
               "(pulumi config set --secret mesh:caPrivateKey < ca.key; README, Your own CA)")


def tls_plugin_issue(lookup: PluginLookup) -> ConfigIssue | None:
    """The problem of a generated CA without the tls plugin the engine needs for it, which it
    would not download: None when it finds the plugin or downloads it itself."""
    if lookup.found is not None or lookup.acquires:
        return None
    return ConfigIssue(
        f"{NS}:ca",
        f"the program generates the mesh CA with the tls provider (mesh:ca.certificate is not set), but its plugin "
        f"pulumi-resource-{lookup.name} v{lookup.version} is not installed (looked in {', '.join(lookup.looked)}) "
        f"and this engine does not download plugins (PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION). Either install "
        f"it: {lookup.install_command}; or {_BRING_A_CA}")


def tls_plugin_note(lookup: PluginLookup) -> str | None:
    """A warning for a generated CA whose tls plugin is not installed yet, which the engine will try to
    download: the same two ways, for when it cannot (no network)."""
    if lookup.found is not None or not lookup.acquires:
        return None
    return (f"{NS}:ca: the mesh CA is generated with the tls provider, whose plugin pulumi-resource-{lookup.name} "
            f"v{lookup.version} is not installed (looked in {', '.join(lookup.looked)}); the engine downloads it "
            f"now. Where it cannot, install it ({lookup.install_command}) or {_BRING_A_CA}")
