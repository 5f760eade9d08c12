"""Parsing the stack configuration: each section and each cluster entry validated on its own with the
models of ``meshcore.config``, then the checks across them (``meshcore.config_checks``) on whatever parsed.

One run reports *every* problem, each naming its key and how to fix it, as a ``MeshConfigError``.
No Pulumi import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError

from meshcore import config_checks as checks
from meshcore.config import (
    NS,
    AnyCluster,
    ApiserverSettings,
    ClusterEntry,
    ClusterName,
    ClusterSettings,
    ContextCluster,
    CreatedCluster,
    Settings,
    TkeApiCluster,
)
from meshcore.config_fields import Address, Bool, Cidr, HelmValues, Text, adapter_of, field_type, issues_of, type_name
from meshcore.errors import MeshConfigError, naming_clusters

_SECTIONS: dict[str, tuple[str, Any, TypeAdapter[Any]]] = {
    (f.alias or n): (n, t, adapter_of(t))
    for n, f in Settings.model_fields.items() if n not in ("clusters", "topology")
    for t in [field_type(Settings, n)]
}
ENTRY = adapter_of(ClusterEntry)


class Parsed(checks.Found):
    """What parsed of each section (None where it did not), and every issue found so far."""

    def section(self, raw: Mapping[str, Any], alias: str) -> Any:
        """The typed section ``alias`` (its default when unset), or None after reporting why not."""
        name, tp, adapter = _SECTIONS[alias]
        if alias not in raw:
            default = Settings.model_fields[name].get_default(call_default_factory=True)
            self.sections[name] = default
            return default
        try:
            value = adapter.validate_python(raw[alias])
        except ValidationError as err:
            self.issues += issues_of(err, tp, f"{NS}:{alias}")
            value = self._valid_part(adapter, raw[alias], err)
        self.sections[name] = value
        return value

    @staticmethod
    def _valid_part(adapter: TypeAdapter[Any], value: Any, err: ValidationError) -> Any:
        """A section with its invalid keys left at their defaults (for the checks across sections),
        or None when that is not valid either (its problems are reported already)."""
        failed = {e["loc"][0] for e in err.errors() if e["loc"]}
        if not isinstance(value, dict) or not failed:
            return None
        try:
            return adapter.validate_python({k: v for k, v in value.items() if k not in failed})
        except ValidationError:
            return None

    def entry(self, index: int, entry: Any, max_connected: int) -> AnyCluster | None:
        """One typed cluster entry, or None after reporting why not."""
        try:
            c: AnyCluster = ENTRY.validate_python(entry, context={"max_connected": max_connected})
        except ValidationError as err:
            self.issues += issues_of(err, ClusterEntry, f"{NS}:clusters[{index}]", max_connected=max_connected)
            return None
        c._index = index
        return c


# --------------------------------------------------------------------------- an invalid cluster entry


@dataclass(frozen=True)
class PartialEntry:
    """An invalid ``mesh:clusters`` entry as the checks across clusters read it (``config_checks.Entry``): the
    fields that are valid on their own, each validated as the entry validates it (None where invalid)."""

    index: int
    name: str | None = None
    id: int | None = None
    context: str | None = None
    pod_cidrs: tuple[IPv4Network, ...] = ()
    vip: IPv4Address | None = None
    apiserver: ApiserverSettings | None = None
    values: Mapping[str, Any] = field(default_factory=dict)
    reads_service_host: bool = False
    service_cidr: IPv4Network | None = None
    own_version: str | None = None

    @property
    def key(self) -> str:
        return f"{NS}:clusters[{self.index}]"

    @classmethod
    def of(cls, index: int, m: Mapping[str, Any], max_connected: int) -> PartialEntry:
        name = _valid(_NAME, m.get("name"))
        created = "create" in m
        context = None
        if not created and m.get("kubeconfigFrom", "context") == "context":
            context = _valid(_CONTEXT, m["context"]) if "context" in m else name
        cidrs = m.get("podCidrs")
        api = m.get("apiserver")
        api = api if isinstance(api, dict) else {}
        create = m.get("create")
        prepare = _valid(_BOOL, m.get("prepareVpcCni")) is True and not created
        return cls(
            index=index, name=name, id=_valid(_ID, m.get("id"), {"max_connected": max_connected}), context=context,
            pod_cidrs=tuple(n for n in (_valid(_CIDR, c) for c in cidrs) if n is not None)
            if isinstance(cidrs, list) else (),
            vip=_valid(_ADDRESS, api["vip"]) if api.get("vip") is not None else None,
            apiserver=_valid(_APISERVER, api),
            values=_valid(_VALUES, m.get("values")) or {}, reads_service_host=created or prepare,
            service_cidr=_valid(_CIDR, create.get("serviceCidr")) if isinstance(create, dict) else None,
        )


_NAME: TypeAdapter[str] = adapter_of(ClusterName)
_ID: TypeAdapter[int] = adapter_of(field_type(ClusterSettings, "id"))
_CONTEXT: TypeAdapter[str] = adapter_of(Annotated[str, Text("cls-abcd1234")])
_CIDR: TypeAdapter[IPv4Network] = adapter_of(Cidr)
_ADDRESS: TypeAdapter[IPv4Address] = adapter_of(Address)
_APISERVER: TypeAdapter[ApiserverSettings] = adapter_of(ApiserverSettings)
_VALUES: TypeAdapter[dict[str, Any]] = adapter_of(HelmValues)
_BOOL: TypeAdapter[bool] = adapter_of(Bool)


def _valid(adapter: TypeAdapter[Any], value: Any, context: dict[str, Any] | None = None) -> Any:
    try:
        return adapter.validate_python(value, context=context)
    except ValidationError:
        return None


# --------------------------------------------------------------------------- parsing


def parse_clusters(value: Any, max_connected: int, parsed: Parsed) -> list[checks.Entry]:
    """Every entry of ``mesh:clusters``: the typed entry where valid, else its valid part."""
    key = f"{NS}:clusters"
    if value is None:
        parsed.add(key, "is required: list the clusters of the mesh, each with name, id, region, podCidrs and "
                        "apiserver")
        return []
    if not isinstance(value, list) or not value:
        parsed.add(key, f"must be a non-empty list of clusters, got {type_name(value)}")
        return []
    if len(value) > max_connected:
        parsed.add(key, f"{len(value)} clusters is more than a Cilium mesh can hold with maxConnectedClusters "
                        f"{max_connected}; split the fleet into several meshes"
                   + (" or set mesh:maxConnectedClusters: 511 on new clusters"
                      if max_connected == 255 and len(value) <= 511 else ""))
        return []
    members: list[checks.Entry] = []
    for i, entry in enumerate(value):
        c = parsed.entry(i, entry, max_connected)
        members.append(c if c is not None
                       else PartialEntry.of(i, entry if isinstance(entry, dict) else {}, max_connected))
    return members


def parse_settings(raw: Mapping[str, Any], secret_keys: Sequence[str] = ()) -> Settings:
    """Validate the decoded ``mesh`` namespace (``meshcore.config.decode_config``) and return ``Settings``.

    ``secret_keys`` are the ``mesh`` keys the stack holds as secrets (without the
    namespace). Raises ``MeshConfigError`` with every problem found; the checks that
    relate several sections and clusters run on what parsed.
    """
    parsed = Parsed()
    checks.check_secrets_and_keys(raw, secret_keys, parsed)
    max_connected = parsed.section(raw, "maxConnectedClusters") or 255
    for alias in ("cilium", "masquerade", "hubbleRelay", "kubeconfig"):
        parsed.section(raw, alias)
    members = parse_clusters(raw.get("clusters"), max_connected, parsed)
    mesh = checks.check_mesh(raw, members, parsed)
    for alias in ("ca", "allowIdentityChange", "policyDefaultLocalCluster"):
        parsed.section(raw, alias)
    checks.check_provided_ca_key(raw, secret_keys, parsed)
    checks.check_identity_changes(raw, members, parsed)
    checks.check_versions(raw, members, parsed)
    if parsed.issues:
        raise MeshConfigError(naming_clusters(parsed.issues, {m.index: m.name for m in members if m.name}))
    settings = Settings.model_construct(
        **{k: v for k, v in parsed.sections.items() if k in Settings.model_fields},
        clusters=tuple(m for m in members if isinstance(m, ContextCluster | TkeApiCluster | CreatedCluster)),
        topology=mesh.topology,
    )
    settings._peers = mesh.peers
    return settings
