"""The Cilium chart versions this program renders values for: one table, one row per minor.

Everything that differs between the minors is a field of a row here (read from the
charts' ``values.yaml``/``values.schema.json`` and ``../shared/docs/cilium-mesh.md`` section 7);
the values builder (``meshcore.owned``), the config checks, the lifecycle guard
(``meshcore.lifecycle``), the certificate dates (``meshcore.certs``), the plan diff and the
README read it, so no version conditional is written anywhere else.

Upgrades follow Cilium's rule (Documentation/operations/upgrade.rst): one minor at a time, each
from the latest patch of the minor it leaves (``LATEST``); a mesh is never more than one minor
apart (Cilium's CI runs N-1/N meshes, never N-2). No Pulumi import.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from meshcore.keypaths import Path, dotted

CERTGEN_SCHEDULE = "0 0 1 */4 *"
"""The certgen CronJob's schedule (the charts' default for Hubble, and for the clustermesh-apiserver from 1.20;
1.19's commented example): midnight of the first day of every fourth month."""
DEFAULT = "1.18.3"
"""``mesh:cilium.version`` when the stack does not set it (stays until a user chooses another)."""

PeerForm = Literal["list", "map"]
TlsMethod = Literal["helm", "cronJob"]

_CERTS_AS_VALUES = tuple(("clustermesh", "apiserver", "tls", who, part)
                         for who in ("server", "admin", "remote", "client") for part in ("cert", "key"))
_CERTS_INSTEAD = ("the program issues them from the shared mesh CA (clustermesh.apiserver.tls.auto); to bring your "
                  "own CA set mesh:ca.certificate and mesh:caPrivateKey")


@dataclass(frozen=True)
class Minor:
    """What the program does differently for one chart minor."""

    minor: str
    latest: str
    """The latest patch release: an upgrade to the next minor starts from it."""
    peer_form: PeerForm
    """``clustermesh.config.clusters``: ``list`` (``[{name, address, port}]``) or ``map`` (by name)."""
    tls_method: TlsMethod
    """``clustermesh.apiserver.tls.auto.method`` and ``hubble.tls.auto.method`` the program sets."""
    auth_mode: str | None
    """``clustermesh.apiserver.tls.authMode`` the program sets (None: not set, the chart's ``legacy``)."""
    chart_policy_default_local_cluster: bool
    """The chart's default of ``clustermesh.policyDefaultLocalCluster``."""
    clustermesh_cert_days: int
    """The chart's default ``clustermesh.apiserver.tls.auto.certValidityDuration``."""
    hubble_cert_days: int
    """The chart's default ``hubble.tls.auto.certValidityDuration``."""
    server_ips: Path
    """Where the clustermesh-apiserver server certificate's extra IP addresses go."""
    clustermesh_schedule: str | None
    """The chart's default ``clustermesh.apiserver.tls.auto.schedule`` (None: with ``cronJob`` the chart creates
    no CronJob for the clustermesh-apiserver leaves, only a one-shot Job: they are never renewed). The program
    sets ``CERTGEN_SCHEDULE`` whenever the method is ``cronJob`` (``meshcore.owned``)."""
    refused: Mapping[Path, str] = field(default_factory=dict)
    """Value paths refused in ``values`` on this minor (deprecated or removed; added by a later one) -> why, and
    what to set instead."""


_SERVER_IPS: Path = ("clustermesh", "apiserver", "tls", "server", "extraIpAddresses")
_AUTO_SERVER_IPS: Path = ("clustermesh", "apiserver", "tls", "auto", "server", "extraIpAddresses")
_MCS = ("clustermesh", "enableMCSAPISupport")
_LATER_1_19 = "only exists from chart 1.19: set it in mesh:clusters[i].values once that cluster runs 1.19"
_LATER_1_20 = "only exists from chart 1.20: set it in mesh:clusters[i].values once that cluster runs 1.20"
_FROM_1_20: tuple[Path, ...] = (
    ("clustermesh", "defaultGlobalNamespace"), ("clustermesh", "apiserver", "etcdQPS"),
    ("clustermesh", "apiserver", "kvstoremesh", "etcdQPS"), ("clustermesh", "apiserver", "tls", "auto", "subject"),
    ("clustermesh", "apiserver", "tls", "auto", "privateKey"))
"""Clustermesh values added by chart 1.20 (the older charts ignore them)."""

MINORS: Mapping[str, Minor] = {
    "1.18": Minor(
        "1.18", "1.18.12", peer_form="list", tls_method="helm", auth_mode=None,
        chart_policy_default_local_cluster=False, clustermesh_cert_days=1095, hubble_cert_days=365,
        server_ips=_SERVER_IPS, clustermesh_schedule=None,
        refused={("clustermesh", "cacheTTL"): _LATER_1_19, ("clustermesh", "mcsapi"): _LATER_1_19,
                 ("clustermesh", "apiserver", "service", "externallyCreated"): _LATER_1_19,
                 **{p: _LATER_1_20 for p in _FROM_1_20}}),
    "1.19": Minor(
        "1.19", "1.19.6", peer_form="map", tls_method="cronJob", auth_mode="migration",
        chart_policy_default_local_cluster=True, clustermesh_cert_days=1095, hubble_cert_days=365,
        server_ips=_SERVER_IPS, clustermesh_schedule=None,
        refused={
            **{p: _LATER_1_20 for p in _FROM_1_20},
            _MCS: "is deprecated in chart 1.19 and removed in 1.20: set clustermesh.mcsapi.enabled instead",
            **{p: f"as values is deprecated in chart 1.19 and removed in 1.20: remove it; {_CERTS_INSTEAD}"
               for p in _CERTS_AS_VALUES},
        }),
    "1.20": Minor(
        "1.20", "1.20.0", peer_form="map", tls_method="cronJob", auth_mode="migration",
        chart_policy_default_local_cluster=True, clustermesh_cert_days=365, hubble_cert_days=365,
        server_ips=_AUTO_SERVER_IPS, clustermesh_schedule=CERTGEN_SCHEDULE,
        refused={
            _MCS: "is removed in chart 1.20 (ignored): set clustermesh.mcsapi.enabled instead",
            **{p[:-1]: f"as values is removed in chart 1.20 (its validate.yaml fails): remove it; {_CERTS_INSTEAD}"
               for p in _CERTS_AS_VALUES if p[3] != "server"},
            ("clustermesh", "apiserver", "tls", "server"):
                "moved in chart 1.20 to clustermesh.apiserver.tls.auto.server (extraDnsNames; extraIpAddresses is the "
                "program's), and its cert/key values are removed: set clustermesh.apiserver.tls.auto.server."
                f"extraDnsNames instead; {_CERTS_INSTEAD}",
            ("clustermesh", "apiserver", "tls", "enableSecrets"): "is removed in chart 1.20: remove it",
        }),
}
ORDER: tuple[str, ...] = tuple(MINORS)
"""The supported minors, oldest first."""
assert all(m == row.minor for m, row in MINORS.items()), "each row is keyed by its own minor"
LATEST: Mapping[str, str] = {m: row.latest for m, row in MINORS.items()}
SPAN = f"{ORDER[0]} to {ORDER[-1]}" if len(ORDER) > 1 else ORDER[0]
"""The supported minors as messages name them (``1.18 to 1.20``)."""


def _version_pattern(minors: Sequence[str]) -> str:
    """The regex of a patch release of ``minors`` (``1\\.(18|19|20)\\.(0|[1-9][0-9]*)``), without anchors."""
    by_major: dict[str, list[str]] = {}
    for m in minors:
        major, minor = m.split(".")
        by_major.setdefault(major, []).append(minor)
    alternatives = [f"{major}\\.({'|'.join(ms)})" for major, ms in by_major.items()]
    head = alternatives[0] if len(alternatives) == 1 else f"({'|'.join(alternatives)})"
    return f"{head}\\.(0|[1-9][0-9]*)"


VERSION_PATTERN = f"^v?{_version_pattern(ORDER)}$"
"""A chart version this program accepts (a JSON Schema pattern; Python checks use ``fullmatch``)."""
_VERSION = re.compile(f"v?{_version_pattern(ORDER)}")
INDEXED: tuple[str, ...] = tuple(sorted({DEFAULT, *LATEST.values()}, key=lambda v: tuple(map(int, v.split(".")))))
"""The chart versions whose key index ships with the program (``meshcore/keyindex/``, written by ``python -m
tools.schema`` from ``../shared/cilium-<version>/``): the default and each minor's latest patch. Another
patch is checked against the indexes of its minor (``meshcore.chart.index_keys``)."""


def is_supported(version: str) -> bool:
    return _VERSION.fullmatch(version) is not None


def parse(version: str) -> tuple[int, int, int]:
    """``1.19.6`` -> (1, 19, 6)."""
    major, minor, patch = version.lstrip("v").split(".")
    return int(major), int(minor), int(patch)


def minor_of(version: str) -> str:
    """``1.19.6`` -> ``1.19``."""
    major, minor, _ = parse(version)
    return f"{major}.{minor}"


def row(version: str) -> Minor:
    """The table row of a chart version (a supported one)."""
    return MINORS[minor_of(version)]


def peers_value(entries: Sequence[Mapping[str, object]], version: str) -> object:
    """``clustermesh.config.clusters`` in the form this version's chart reads best: the 1.18 list of
    ``{name, address, port}``, or from 1.19 the map ``{<name>: {address, port}}`` (keyed by name: a peer is
    one key, so values files can add or drop one without rewriting a list)."""
    if row(version).peer_form == "list":
        return list(entries)
    return {str(e["name"]): {k: v for k, v in e.items() if k != "name"} for e in entries}


def path_between(start: str, target: str) -> list[str]:
    """The versions an upgrade goes through, ``start`` and ``target`` included: the latest patch of every
    minor on the way, e.g. 1.18.3 -> 1.20.0 is [1.18.3, 1.18.12, 1.19.6, 1.20.0]."""
    steps = [start]
    i, j = ORDER.index(minor_of(start)), ORDER.index(minor_of(target))
    for k in range(i, j):
        latest = LATEST[ORDER[k]]
        if parse(steps[-1]) < parse(latest):  # a patch newer than the table's latest is already past it
            steps.append(latest)
    if steps[-1] != target:
        steps.append(target)
    return steps


def upgrade_problem(deployed: str | None, target: str) -> str | None:
    """Why one cluster may not go from ``deployed`` (what the stack last deployed; None: a 1.18 patch the
    program did not record) to ``target`` in one update, with the path to take; None when it may."""
    if deployed is None:
        if minor_of(target) == ORDER[0]:
            return None
        return (f"the cluster runs a {ORDER[0]} chart this stack has not recorded the patch of: first deploy "
                f"{LATEST[ORDER[0]]} (which records it), then upgrade one minor at a time: "
                f"{' -> '.join(path_between(LATEST[ORDER[0]], target))}")
    if deployed == target or minor_of(deployed) == minor_of(target):
        return None
    a, b = ORDER.index(minor_of(deployed)), ORDER.index(minor_of(target))
    if b < a:
        return (f"a minor downgrade ({deployed} -> {target}) is not done by this program: Cilium downgrades need "
                f"the previous minor's upgradeCompatibility and a manual rollback of CRDs; keep {deployed}")
    if b > a + 1:
        return (f"{deployed} -> {target} skips a minor: Cilium upgrades one minor at a time; take the path "
                f"{' -> '.join(path_between(deployed, target))}, one update per step")
    if parse(deployed) < parse(LATEST[minor_of(deployed)]):
        return (f"{deployed} -> {target} does not start from the latest {minor_of(deployed)} patch: take the path "
                f"{' -> '.join(path_between(deployed, target))}, one update per step")
    return None


def update_skew_problem(deployed: Mapping[str, str], targets: Mapping[str, str]) -> tuple[str, str] | None:
    """Why one update may not move these clusters together although the versions it ends with may run together:
    while it runs, a cluster not yet upgraded still runs its ``deployed`` version next to the ``targets`` of the
    others, and stays so if its release fails. (the cluster that moves up furthest, why) when the lowest deployed
    version and the highest target of a moving cluster are more than one minor apart; None otherwise."""
    moving = {n: v for n, v in targets.items() if n in deployed and deployed[n] != v}
    if not moving or skew_problem(targets) is not None:
        return None
    top = max(sorted(moving), key=lambda n: parse(moving[n]))
    low = min(sorted(deployed), key=lambda n: parse(deployed[n]))
    lo = ORDER.index(minor_of(deployed[low]))
    if ORDER.index(minor_of(moving[top])) - lo <= 1:
        return None
    # ``low`` moves in this update too: were it staying, the targets alone would be more than one minor apart.
    return top, (f"{top} would run {moving[top]} while {low} still runs {deployed[low]} until its own release is "
                 f"upgraded in this same update (and stays so if that fails): a mesh is at most one minor apart "
                 f"(N-1/N) during an update too; first upgrade every cluster to {LATEST[ORDER[lo + 1]]}, then {top}, "
                 "in separate updates")


def skew_problem(versions: Mapping[str, str]) -> str | None:
    """Why the versions of one mesh (cluster -> version) may not run together: more than one minor apart
    (Cilium tests N-1/N meshes, never N-2); None when they may."""
    if not versions:
        return None
    by_minor = sorted(versions.items(), key=lambda kv: (ORDER.index(minor_of(kv[1])), kv[0]))
    (lo_name, lo), (hi_name, hi) = by_minor[0], by_minor[-1]
    if ORDER.index(minor_of(hi)) - ORDER.index(minor_of(lo)) <= 1:
        return None
    return (f"{hi_name} would run {hi} while {lo_name} runs {lo}: a mesh is at most one minor apart (N-1/N); "
            f"upgrade every cluster to {LATEST[ORDER[ORDER.index(minor_of(lo)) + 1]]} first")


def _brief(refused: Mapping[Path, str]) -> list[str]:
    """The refused paths, the certificates-as-values ones folded into one brace form."""
    certs = {p for p in refused if p in _CERTS_AS_VALUES or p in {c[:-1] for c in _CERTS_AS_VALUES}}
    out = sorted(f"`{dotted(p)}`" for p in refused if p not in certs)
    if certs:
        whos = sorted({str(p[3]) for p in certs})
        tail = ".{cert,key}" if all(len(p) == 5 for p in certs) else ""
        out.append(f"`clustermesh.apiserver.tls.{{{','.join(whos)}}}{tail}`")
    return out


def markdown_table() -> str:
    """The README's version table (between the ``versions`` markers)."""
    lines = ["| chart | latest patch | peer list (`clustermesh.config.clusters`) | TLS method (clustermesh-apiserver, "
             "Hubble) | `tls.authMode` set | `policyDefaultLocalCluster` chart default | leaf validity (days: "
             "clustermesh, Hubble) | server certificate IPs | refused in values |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for m in MINORS.values():
        form = "list `[{name, address, port}]`" if m.peer_form == "list" else "map `{<name>: {address, port}}`"
        refused = ", ".join(_brief(m.refused)) or "—"
        lines.append(f"| {m.minor}.x | {m.latest} | {form} | `{m.tls_method}` | "
                     f"{'`' + m.auth_mode + '`' if m.auth_mode else '— (chart: `legacy`)'} | "
                     f"{str(m.chart_policy_default_local_cluster).lower()} | {m.clustermesh_cert_days}, "
                     f"{m.hubble_cert_days} | `{dotted(m.server_ips)}` | {refused} |")
    return "\n".join(lines) + "\n"
