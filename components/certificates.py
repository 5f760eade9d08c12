"""Certificate expiry as stack outputs, and warnings when one is near (rules: ``meshcore/certs.py``).

Per cluster, the release's Helm revision is compared with what the last run recorded in the
stack's own ``clusters.<name>.certificates`` output (read back as the identity guard reads
its outputs, ``components.program.previous_outputs``): a new revision means the chart was rendered in this run, so its
re-issued leaves date from now. Nothing here is a resource: only Outputs and log lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pulumi

from components.ca import ProvidedCa, SharedCa
from components.cilium import CiliumRelease
from components.outputs import apply_all
from meshcore import certs, stackoutputs
from meshcore.config import Settings


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _revision(status: Any) -> int | None:
    revision = status.get("revision") if isinstance(status, Mapping) else getattr(status, "revision", None)
    return revision if isinstance(revision, int) else None


def _warn(what: str, date: str, days: int, fix: str) -> None:
    when = f"expired {-days} day(s) ago" if days < 0 else f"expires in {days} day(s)"
    pulumi.log.warn(f"{what} {when} ({date}); {fix}")


def cluster_certificates(settings: Settings, releases: Mapping[str, CiliumRelease],
                         previous_clusters: pulumi.Output[Any],
                         renames: pulumi.Output[Mapping[str, str]]) -> dict[str, pulumi.Output[Any]]:
    """Cluster name -> its ``certificates`` output: the render record and each leaf group's expiry.
    A cluster renamed in this update (``renames``: new name -> deployed name) keeps its record."""
    out: dict[str, pulumi.Output[Any]] = {}
    for c in settings.clusters:
        values = releases[c.name].values  # what the release is given: the chart renders the certificates from it

        def record(args: list[Any], name: str = c.name, values: Mapping[str, Any] = values,
                   version: str = settings.version_of(c)) -> dict[str, Any]:
            status, previous, renamed = args
            deployed = stackoutputs.read_cluster(name, previous.get(renamed.get(name, name))) \
                if isinstance(previous, Mapping) else None
            before = deployed.certificates if deployed is not None else None
            now = _utcnow()
            renders = certs.track_renders(before, _revision(status), now)
            leaves = certs.leaf_expiries(values, renders, version)
            for what, date, days in certs.expiring({k: g["expiresAt"] for k, g in leaves.items()}, now):
                _warn(f"{name}: the {what} certificates ({', '.join(leaves[what]['secrets'])})", date, days,
                      certs.RENEWAL[what])
            return {**renders, "leaves": leaves}

        # apply_all, not Output.all, which would walk the whole previous clusters output for each cluster.
        out[c.name] = apply_all([releases[c.name].release.status, previous_clusters, renames], record)
    return out


def ca_expiry(cas: Mapping[int, SharedCa | ProvidedCa]) -> pulumi.Output[dict[str, str]]:
    """Generation -> the CA certificate's expiry, warning for any within the window."""
    generations = sorted(cas)

    def check(dates: list[str]) -> dict[str, str]:
        by_generation = {str(g): d for g, d in zip(generations, dates, strict=False)}
        for what, date, days in certs.expiring(by_generation, _utcnow()):
            _warn(f"the mesh CA (generation {what})", date, days, certs.RENEWAL["ca"])
        return by_generation

    return pulumi.Output.all(*[cas[g].expires_at for g in generations]).apply(check)
