"""When the mesh's certificates expire, from the stack and the chart's rules (pure).

Nothing renews these by itself with the TLS method the program sets on 1.18 (``helm``, see
``meshcore/chart/versions.py``), and nothing warns before they expire; from 1.19 the program sets
``cronJob``, whose certgen CronJob renews the leaves by itself (their dates are then the live
certificates', which ``tools/doctor`` reads):

- **The CA** (``tls.ca.*``): generated with 1095 days (``components/ca.py``) or brought by the
  stack; replaced only by the rotation steps (README, Lifecycle).
- **clustermesh-apiserver leaves** (server, admin, remote, local): a fresh ``genSignedCert`` on
  every render of the chart, i.e. on every upgrade of the release, valid
  ``clustermesh.apiserver.tls.auto.certValidityDuration`` days (the chart version's default:
  1095 in 1.18 and 1.19, 365 from 1.20).
- **Hubble leaves**: ``hubble-server-certs`` and ``hubble-relay-client-certs`` are *kept* by
  the chart's ``lookup`` across upgrades (``../shared/docs/cilium-mesh.md`` 1.5): they expire
  ``hubble.tls.auto.certValidityDuration`` days (365) after the first install, whatever the
  upgrades since, unless the Secrets are deleted before an upgrade. The other Hubble leaves
  (relay server, UI client, metrics server, when enabled) are re-minted on every render.

What the program cannot see, it records: the release's Helm revision and when it last
changed (``track_renders``), kept in the stack's own outputs from one run to the next (read
back from the stack's last outputs, as the identity guard does). A release deployed
before the program recorded it has unknown dates until its next upgrade; ``tools/doctor``
reads the live certificates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from meshcore.chart import versions
from meshcore.keypaths import Path

WARN_DAYS = 90
"""Warn when a certificate expires within this many days."""
CA_VALIDITY_DAYS = 1095
"""The validity of a CA the program generates: Cilium's own ``genCA`` default."""


@dataclass(frozen=True)
class LeafGroup:
    """Leaf certificates of one release that share a validity and a renewal rule."""

    key: str
    """The key in the ``certificates`` stack output."""
    validity: Path
    """The value path of their validity in days."""
    default_days: Callable[[versions.Minor], int]
    """The chart's default for ``validity``, by chart version (``meshcore.chart.versions``)."""
    kept: bool
    """True: the chart's ``lookup`` keeps them across upgrades (issued at the first install);
    False: re-minted on every render (every upgrade of the release)."""
    secrets: Callable[[Mapping[str, Any]], tuple[str, ...]]
    """The Secrets that hold them, for the release's merged values."""
    method: Path
    """The value path of their TLS method (``helm``: rendered by Helm; ``cronJob``: issued and renewed by the
    chart's certgen)."""
    default_schedule: Callable[[versions.Minor], str | None]
    """The chart's default certgen schedule for them with ``cronJob`` (None: issued once, never renewed)."""


def _get(values: Mapping[str, Any], *path: object) -> Any:
    node: Any = values
    for part in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _hubble_tls_helm(values: Mapping[str, Any]) -> bool:
    """Hubble's certificates come from the chart's ``helm`` or ``cronJob`` method (chart defaults: on, helm)."""
    return (_get(values, "hubble", "enabled") is not False and _get(values, "hubble", "tls", "enabled") is not False
            and _get(values, "hubble", "tls", "auto", "enabled") is not False
            and _get(values, "hubble", "tls", "auto", "method") in (None, "helm", "cronJob"))


CLUSTERMESH_SECRETS = tuple(f"clustermesh-apiserver-{n}-cert" for n in ("server", "admin", "remote", "local"))
HUBBLE_KEPT_SECRETS = ("hubble-server-certs", "hubble-relay-client-certs")
HUBBLE_MINTED_SECRETS = ("hubble-relay-server-certs", "hubble-ui-client-certs", "hubble-metrics-server-certs")
LEAF_SECRETS = CLUSTERMESH_SECRETS + HUBBLE_KEPT_SECRETS + HUBBLE_MINTED_SECRETS
"""Every TLS Secret of the chart's ``helm`` method that a mesh member may hold (``kube-system``)."""


def _clustermesh_secrets(values: Mapping[str, Any]) -> tuple[str, ...]:
    local = _get(values, "clustermesh", "apiserver", "kvstoremesh", "enabled") is not False
    return CLUSTERMESH_SECRETS if local else CLUSTERMESH_SECRETS[:3]


def _hubble_kept_secrets(values: Mapping[str, Any]) -> tuple[str, ...]:
    if not _hubble_tls_helm(values):
        return ()
    relay = _get(values, "hubble", "relay", "enabled") is True
    return HUBBLE_KEPT_SECRETS if relay else HUBBLE_KEPT_SECRETS[:1]


def _hubble_minted_secrets(values: Mapping[str, Any]) -> tuple[str, ...]:
    if not _hubble_tls_helm(values):
        return ()
    relay_server = (_get(values, "hubble", "relay", "enabled") is True
                    and _get(values, "hubble", "relay", "tls", "server", "enabled") is True)
    present = (relay_server, _get(values, "hubble", "ui", "enabled") is True,
               _get(values, "hubble", "metrics", "tls", "enabled") is True)
    return tuple(name for name, on in zip(HUBBLE_MINTED_SECRETS, present, strict=False) if on)


_CM_TLS: Path = ("clustermesh", "apiserver", "tls", "auto")
_HUBBLE_TLS: Path = ("hubble", "tls", "auto")
LEAF_GROUPS: tuple[LeafGroup, ...] = (
    LeafGroup("clustermeshApiserver", (*_CM_TLS, "certValidityDuration"), lambda m: m.clustermesh_cert_days,
              kept=False, secrets=_clustermesh_secrets, method=(*_CM_TLS, "method"),
              default_schedule=lambda m: m.clustermesh_schedule),
    LeafGroup("hubble", (*_HUBBLE_TLS, "certValidityDuration"), lambda m: m.hubble_cert_days, kept=True,
              secrets=_hubble_kept_secrets, method=(*_HUBBLE_TLS, "method"),
              default_schedule=lambda _: versions.CERTGEN_SCHEDULE),
    LeafGroup("hubbleRenderedEachUpgrade", (*_HUBBLE_TLS, "certValidityDuration"), lambda m: m.hubble_cert_days,
              kept=False, secrets=_hubble_minted_secrets, method=(*_HUBBLE_TLS, "method"),
              default_schedule=lambda _: versions.CERTGEN_SCHEDULE),
)
"""The chart's leaves, grouped by validity and renewal rule (the ``helm`` method's rules; with ``cronJob`` the
certgen CronJob renews each group)."""
GROUPS: Mapping[str, LeafGroup] = {g.key: g for g in LEAF_GROUPS}


_UPGRADE = ("any upgrade of the release re-issues them (a chart patch upgrade or a values change); without one, "
            "`helm upgrade cilium <the chart> --version <the same version> -n kube-system --reuse-values` re-renders "
            "it, then `pulumi up --refresh` records the new dates")
RENEWAL: Mapping[str, str] = {
    "clustermeshApiserver": _UPGRADE,
    "hubbleRenderedEachUpgrade": _UPGRADE,
    "hubble": ("the chart keeps them across upgrades: delete them (`kubectl -n kube-system delete secret "
               "hubble-server-certs hubble-relay-client-certs`) and upgrade the release right after, which issues "
               "new ones (Hubble is down in between), then `pulumi up --refresh`"),
    "ca": ("rotate the CA (README, Lifecycle: mesh:ca generations and signing; for a CA the stack brings, "
           "mesh:ca.alsoTrusted), or for a CA the stack brings, set its renewed certificate (same key) in "
           "mesh:ca.certificate"),
}
"""How to renew each leaf group (and the CA), for warnings and the README."""


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """An RFC 3339 time as the stack outputs and the tls provider write it."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def not_after(cert_pem: str) -> str:
    """The expiry of the first certificate of a PEM text, RFC 3339 in UTC."""
    from cryptography import x509  # the runtime's only use of it; imported here to keep the core light

    return _iso(x509.load_pem_x509_certificate(cert_pem.encode()).not_valid_after_utc)


def not_before(cert_pem: str) -> str:
    """The start of validity of the first certificate of a PEM text, RFC 3339 in UTC."""
    from cryptography import x509

    return _iso(x509.load_pem_x509_certificate(cert_pem.encode()).not_valid_before_utc)


def track_renders(previous: Mapping[str, Any] | None, revision: int | None, now: datetime) -> dict[str, Any]:
    """The render record of one release after this run: ``{revision, renderedAt, firstRenderedAt}``.

    ``previous`` is what the last run recorded (None on a new stack or a release deployed before
    the program recorded it), ``revision`` the release's Helm revision now. A new revision means
    the chart was rendered in this run (an install or an upgrade): now. The same revision keeps
    the recorded times. Revision 1 is the install, so it is also the first render; without a
    record for a later revision, when it was rendered is unknown (None) until the next upgrade.
    """
    prev = previous if isinstance(previous, Mapping) else {}
    if revision is None:
        return {"revision": None, "renderedAt": prev.get("renderedAt"), "firstRenderedAt": prev.get("firstRenderedAt")}
    if prev.get("revision") == revision:
        return {"revision": revision, "renderedAt": prev.get("renderedAt"),
                "firstRenderedAt": prev.get("firstRenderedAt")}
    first = _iso(now) if revision == 1 else prev.get("firstRenderedAt")
    rendered = _iso(now) if prev.get("revision") is not None or revision == 1 else None
    return {"revision": revision, "renderedAt": rendered, "firstRenderedAt": first}


def leaf_expiries(values: Mapping[str, Any], renders: Mapping[str, Any],
                  version: str = versions.DEFAULT) -> dict[str, dict[str, Any]]:
    """Each leaf group present for these values of a chart version: its Secrets, validity, renewal rule and
    expiry (RFC 3339, or None when the render it dates from is unknown, or the certgen CronJob renews it)."""
    out: dict[str, dict[str, Any]] = {}
    for g in LEAF_GROUPS:
        secrets = g.secrets(values)
        if not secrets:
            continue
        days = _get(values, *g.validity)
        days = days if isinstance(days, int) and not isinstance(days, bool) else g.default_days(versions.row(version))
        if _get(values, *g.method) == "cronJob":
            schedule = _get(values, *g.method[:-1], "schedule") or g.default_schedule(versions.row(version))
            renewal = (f"renewed by the chart's certgen CronJob ({schedule})" if schedule else
                       "issued once by the chart's certgen Job, never renewed (no schedule; python -m tools.doctor "
                       "reads the live dates)")
            out[g.key] = {"secrets": list(secrets), "validityDays": days, "renewal": renewal, "expiresAt": None}
            continue
        since = renders.get("firstRenderedAt" if g.kept else "renderedAt")
        out[g.key] = {
            "secrets": list(secrets),
            "validityDays": days,
            "renewal": "kept from the first install (the chart's lookup)" if g.kept else "re-issued on every upgrade",
            "expiresAt": _iso(parse_time(since) + timedelta(days=days)) if since else None,
        }
    return out


def expiring(dates: Mapping[str, str | None], now: datetime,
             within_days: int = WARN_DAYS) -> list[tuple[str, str, int]]:
    """``(what, expiresAt, days left)`` for each known date within ``within_days`` of ``now`` (or past)."""
    out = []
    for what, date in dates.items():
        if date is None:
            continue
        left = (parse_time(date) - now) // timedelta(days=1)
        if left < within_days:
            out.append((what, date, int(left)))
    return out
