"""The mesh doctor's checks: each compares a cluster's ``Observation`` (or the fleet's) with the ``Desired``
state of ``meshcore.doctor.records`` and returns ``Finding``\\ s; each is registered once (``REGISTERED``).
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from meshcore.chart.effects import CA_SECRET, CONFIG_MAP, KVSTOREMESH_SECRET, SERVICE
from meshcore.config.clusters import CLUSTER_NAME_RE
from meshcore.doctor.records import (
    ERROR,
    EXPIRY_WARNING_DAYS,
    INFO,
    MESH_TLS_SECRETS,
    NOT_EXAMINED,
    OK,
    OWNED_ANNOTATIONS,
    PENDING,
    SERVER_CERT,
    SEVERITIES,
    UNKNOWN,
    WARNING,
    WORKLOADS,
    Desired,
    Finding,
    Observation,
    Subject,
    deployed_release,
)


def examine(want: Desired, observed: Mapping[str, Observation], now: datetime.datetime) -> list[Finding]:
    """Every finding, most serious first (then by cluster, in the stack's order, and check).

    ``observed`` maps every cluster of ``want`` to its observation (``meshcore.doctor.records``);
    ``now`` is an aware datetime (certificate expiry)."""
    findings: list[Finding] = []
    for c in want.clusters:
        o = observed.get(c.name) or NOT_EXAMINED
        findings += _check_cluster(Subject(want, c, o, now))
    for check in REGISTERED:
        if check.fleet is not None:
            findings += check.fleet(want, observed)
    order = {c.name: i for i, c in enumerate(want.clusters)}
    return sorted(findings, key=lambda f: (SEVERITIES.index(f.severity), order.get(f.cluster, -1),
                                            CHECKS.index(f.check)))


def _check_cluster(x: Subject) -> list[Finding]:
    c, o = x.cluster, x.observed
    if not o.reachable:
        return [Finding(c.name, "reachable", ERROR, f"{o.error or 'no answer'}; nothing else of this "
                                                    "cluster was checked")]
    out = [Finding(c.name, "reachable", OK, "the API server answers")]
    for check in REGISTERED:
        if check.cluster is not None:
            out += check.cluster(x)
    return out


def _ok_unless(findings: list[Finding], cluster: str, check: str, message: str) -> list[Finding]:
    return findings or [Finding(cluster, check, OK, message)]


def check_release(x: Subject) -> list[Finding]:
    want, c = x.want, x.cluster
    name = f"Helm release {want.namespace}/{want.release}"
    releases = x.observed.releases

    def f(severity: str, message: str) -> Finding:
        return Finding(c.name, "release", severity, message)

    if not releases:
        return [f(ERROR, f"{name} not found (no {_release_secret_prefix(want)}* Secret); run pulumi up")]
    latest = max(releases, key=lambda r: int(r.get("revision") or 0))
    live = deployed_release(releases)
    out = []
    if live is None:
        return [f(ERROR, f"{name} has no deployed revision (revision {latest.get('revision')} is "
                         f"{latest.get('status')}); run pulumi up")]
    if live.get("unreadable"):
        return [f(ERROR, f"{name}: {live['unreadable']}; Helm cannot upgrade it either: inspect it with "
                         f"`helm -n {want.namespace} history {want.release}`")]
    if latest is not live:
        status = str(latest.get("status"))
        blocking = status.startswith("pending-")
        out.append(f(ERROR if blocking else WARNING,
                     f"{name}: revision {latest.get('revision')} is {status}, revision {live.get('revision')} is the "
                     "deployed one" + ("; Helm refuses the next upgrade until it is rolled back" if blocking
                                        else "; the last update did not complete: run pulumi up")))
    if live.get("chart") != "cilium":
        out.append(f(ERROR, f"{name} (revision {live.get('revision')}) is chart {live.get('chart')!r}, not cilium"))
    if str(live.get("version")) != c.chart_version:
        out.append(f(ERROR, f"{name} (revision {live.get('revision')}) is chart version {live.get('version')}, "
                            f"planned {c.chart_version}"))
    return _ok_unless(out, c.name, "release",
                      f"{name} revision {live.get('revision')} deployed, chart cilium {live.get('version')}")


def _release_secret_prefix(want: Desired) -> str:
    return f"{want.namespace}/sh.helm.release.v1.{want.release}.v"


def check_config(x: Subject) -> list[Finding]:
    c, data = x.cluster, x.observed.config
    if data is None:
        return [Finding(c.name, "cilium-config", ERROR, f"ConfigMap {CONFIG_MAP} not found")]
    out = []
    for key, planned in (("cluster-name", c.name), ("cluster-id", c.cluster_id),
                         ("max-connected-clusters", c.max_connected_clusters)):
        have = data.get(key)
        if have is None:
            out.append(Finding(c.name, "cilium-config", ERROR, f"{CONFIG_MAP} has no {key}, planned {planned}"))
        elif str(have) != str(planned):
            out.append(Finding(c.name, "cilium-config", ERROR, f"{CONFIG_MAP} {key} is {have}, planned {planned}"))
    return _ok_unless(out, c.name, "cilium-config",
                      f"cluster-name {c.name}, cluster-id {c.cluster_id}, max-connected-clusters "
                      f"{c.max_connected_clusters}")


def check_service(x: Subject) -> list[Finding]:
    c, svc = x.cluster, x.observed.service

    def f(severity: str, message: str) -> Finding:
        return Finding(c.name, "service", severity, message)

    if svc is None:
        return [f(ERROR, f"Service {SERVICE} not found")]
    out = []
    if svc.get("type") != c.service_type:
        out.append(f(ERROR, f"Service {SERVICE} is type {svc.get('type')}, planned {c.service_type}"))
    have = svc.get("annotations") or {}
    for key in OWNED_ANNOTATIONS:
        planned = c.annotations.get(key)
        if key not in c.annotations:
            if key in have:
                out.append(f(ERROR, f"Service {SERVICE} has annotation {key}: {have[key]}, which the stack does "
                                    "not set"))
        elif key not in have:
            shown = "the created CLB's id" if planned is UNKNOWN else planned
            out.append(f(ERROR, f"Service {SERVICE} has no annotation {key}, planned {shown}"))
        elif planned is not UNKNOWN and have[key] != planned:
            out.append(f(ERROR, f"Service {SERVICE} annotation {key} is {have[key]}, planned {planned}"))
    ingress = [str(i) for i in svc.get("ingress") or []]
    if c.mesh_address is None:
        out.append(f(INFO, "the planned address is unknown: the stack creates this cluster's CLB (createClb); "
                           "give --outputs (pulumi stack output --json) to check it"))
        if not ingress:
            out.append(f(PENDING, f"Service {SERVICE} has no load balancer address yet (pending)"))
    elif not ingress:
        out.append(f(PENDING, f"Service {SERVICE} has no load balancer address yet (pending), planned "
                              f"{c.mesh_address}"))
    elif c.mesh_address not in ingress:
        out.append(f(ERROR, f"Service {SERVICE} load balancer address is {', '.join(ingress)}, planned "
                            f"{c.mesh_address}"))
    return _ok_unless(out, c.name, "service", f"Service {SERVICE}: {c.service_type}, address "
                                              f"{', '.join(ingress) or '-'}")


def peer_endpoints(text: str) -> list[str] | None:
    """The ``endpoints`` of one peer entry of a peer Secret (an etcd client config), None if unreadable."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    endpoints = doc.get("endpoints") if isinstance(doc, dict) else None
    if not isinstance(endpoints, list) or not all(isinstance(e, str) for e in endpoints):
        return None
    return endpoints


def is_peer_key(key: str) -> bool:
    """A peer Secret key that is a peer entry (a cluster name), not one of the per-peer TLS files
    (``<name>.etcd-client.key`` ...), which are never read."""
    return bool(CLUSTER_NAME_RE.match(key))


def check_peers(x: Subject) -> list[Finding]:
    c, secrets = x.cluster, x.observed.secrets
    out = []

    def f(severity: str, message: str) -> Finding:
        return Finding(c.name, "peers", severity, message)

    for name, planned in c.peer_secrets.items():
        data = secrets.get(name)
        if data is None:
            out.append(f(ERROR, f"Secret {name} not found; planned peers: "
                                f"{', '.join(p.name for p in planned) or '(none)'}"))
            continue
        want = {p.name: p.endpoint for p in planned}
        for peer, endpoint in want.items():
            if peer not in data:
                shown = endpoint or "its address is unknown"
                out.append(f(ERROR, f"{name}: peer {peer} is missing (planned {shown})"))
                continue
            have = peer_endpoints(data[peer])
            if have is None:
                out.append(f(ERROR, f"{name}: the entry of peer {peer} is not an etcd config with endpoints"))
            elif endpoint is not None and have != [endpoint]:
                at = ", ".join(have) or "(no endpoint)"
                out.append(f(ERROR, f"{name}: peer {peer} is at {at}, planned {endpoint}"))
        for peer in sorted(set(data) - set(want)):
            have = peer_endpoints(data[peer])
            at = f" (at {', '.join(have)})" if have else ""
            out.append(f(ERROR, f"{name}: peer {peer}{at} is not planned"))
    names = sorted({p.name for planned in c.peer_secrets.values() for p in planned})
    return _ok_unless(out, c.name, "peers", f"{' and '.join(c.peer_secrets) or 'no peer Secret'}: "
                                            f"{len(names)} planned peer(s), each at its planned address")


def _days_left(facts: Mapping[str, Any], now: datetime.datetime) -> int | None:
    try:
        not_after = datetime.datetime.fromisoformat(str(facts["not_after"]))
    except (KeyError, ValueError):
        return None
    if not_after.tzinfo is None:
        not_after = not_after.replace(tzinfo=datetime.UTC)
    return math.floor((not_after - now).total_seconds() / 86400)


def _expiry(cluster: str, what: str, facts: Mapping[str, Any], now: datetime.datetime) -> Finding | None:
    days = _days_left(facts, now)
    if days is None:
        return Finding(cluster, "certificates", ERROR, f"{what}: no readable expiry date")
    if days < 0:
        return Finding(cluster, "certificates", ERROR, f"{what} expired {-days} day(s) ago ({facts['not_after']})")
    if days < EXPIRY_WARNING_DAYS:
        return Finding(cluster, "certificates", WARNING, f"{what} expires in {days} day(s) ({facts['not_after']})")
    return None


def _issued_by(leaf: Mapping[str, Any], ca: Mapping[str, Any]) -> bool:
    if leaf.get("aki") and ca.get("ski"):
        return bool(leaf["aki"] == ca["ski"])
    return bool(leaf.get("issuer") == ca.get("subject"))


def check_certificates(x: Subject) -> list[Finding]:
    """Expiry of the CA and of every mesh TLS Secret; each TLS Secret chains to ``cilium-ca``; the
    server certificate covers the mesh address; TLS Secrets the release rendered exist."""
    out: list[Finding] = []

    def f(severity: str, message: str) -> Finding:
        return Finding(c.name, "certificates", severity, message)

    c, now, rendered = x.cluster, x.now, x.observed.rendered
    ca = x.observed.ca
    days: list[int] = []
    if ca and "error" not in ca:
        e = _expiry(c.name, f"CA {CA_SECRET}", ca, now)
        out += [e] if e else []
        d = _days_left(ca, now)
        days += [d] if d is not None else []
    tls = x.observed.tls
    for name in MESH_TLS_SECRETS:
        entry = tls.get(name)
        if entry is None:
            if rendered is not None and ("Secret", name) in rendered:
                out.append(f(ERROR, f"Secret {name} is in the release but not in the cluster"))
            continue
        crt = entry.get("crt") or {"error": "no tls.crt"}
        if "error" in crt:
            out.append(f(ERROR, f"Secret {name}: tls.crt is not a certificate ({crt['error']})"))
            continue
        e = _expiry(c.name, f"Secret {name}", crt, now)
        out += [e] if e else []
        d = _days_left(crt, now)
        days += [d] if d is not None else []
        if ca and "error" not in ca:
            if not _issued_by(crt, ca):
                by = (f"its issuer's key id {crt['aki'][:16]}…, {CA_SECRET}'s {ca['ski'][:16]}…"
                      if crt.get("aki") and ca.get("ski") else f"issuer {crt.get('issuer')}")
                out.append(f(ERROR, f"Secret {name}: its certificate is not issued by {CA_SECRET} ({by}); "
                                    "run pulumi up to re-issue it"))
            bundled = entry.get("ca")
            if bundled and "error" not in bundled and bundled.get("sha256") != ca.get("sha256"):
                out.append(f(ERROR, f"Secret {name}: its ca.crt (sha256 {short(bundled.get('sha256'))}) is not "
                                    f"{CA_SECRET} (sha256 {short(ca.get('sha256'))})"))
        if name == SERVER_CERT:
            missing = [ip for ip in c.server_ips if ip not in (crt.get("ips") or [])]
            if missing:
                out.append(f(ERROR, f"Secret {name}: the server certificate does not cover {', '.join(missing)} "
                                    "(peers connecting to that address fail with an x509 error)"))
    if SERVER_CERT not in tls and (rendered is None or ("Secret", SERVER_CERT) not in rendered):
        out.append(f(INFO, f"Secret {SERVER_CERT} not present (the release does not render it); not checked"))
    return _ok_unless(out, c.name, "certificates",
                      f"{len(days)} certificate(s), the first to expire in {min(days)} day(s)" if days
                      else "no certificate to check")


def check_workloads(x: Subject) -> list[Finding]:
    """The agents and the clustermesh-apiserver ready, where they exist. A workload the deployed
    release did not render and the cluster does not have is reported as not present (``info``):
    a chart or a cluster without them (the local mesh has no kubelet) is not a broken mesh."""
    want, cluster, rendered = x.want, x.cluster.name, x.observed.rendered
    workloads = x.observed.workloads
    out = []
    absent = []
    for key in WORKLOADS:
        kind, name = key.split("/", 1)
        w = workloads.get(key)
        what = f"{kind} {want.namespace}/{name}"
        if w is None:
            if rendered is not None and (kind, name) in rendered:
                out.append(Finding(cluster, "workloads", ERROR, f"{what} is in the release but not in the cluster"))
            else:
                absent.append(what)
            continue
        desired_n, ready = int(w.get("desired") or 0), int(w.get("ready") or 0)
        if desired_n == 0:
            out.append(Finding(cluster, "workloads", INFO, f"{what}: no pod scheduled (0 desired)"))
        elif ready < desired_n:
            out.append(Finding(cluster, "workloads", ERROR, f"{what}: {ready}/{desired_n} ready"))
        else:
            out.append(Finding(cluster, "workloads", OK, f"{what}: {ready}/{desired_n} ready"))
    if absent:
        them = "them" if len(absent) > 1 else "it"
        out.append(Finding(cluster, "workloads", INFO, f"{' and '.join(absent)} not present (the release does not "
                                                       f"create {them}); not checked"))
    return out


MESH_STATUS_SOURCE = ("read only from a local mesh's control plane (--local-mesh DIR); on TKE: kubectl -n "
                      "kube-system exec deploy/clustermesh-apiserver -c kvstoremesh -- clustermesh-apiserver "
                      "kvstoremesh-dbg status")


def check_connected(x: Subject) -> list[Finding]:
    """Each planned peer connected, ready and synced in this cluster's kvstoremesh (its own status, where the doctor
    can read it), with Cilium's reason when not; a remote the stack does not plan is named."""
    c, status = x.cluster, x.observed.mesh_status

    def f(severity: str, message: str) -> Finding:
        return Finding(c.name, "connected", severity, message)

    if status is None:
        return [f(INFO, f"kvstoremesh status not read: {MESH_STATUS_SOURCE}; not checked")]
    if status.get("error"):
        why = f"; {status['reason']}" if status.get("reason") else ""
        return [f(ERROR, f"kvstoremesh: {status['error']}{why}")]
    remotes: Mapping[str, Mapping[str, Any]] = status.get("remotes") or {}
    planned = [p.name for p in c.peer_secrets.get(KVSTOREMESH_SECRET, ())]
    out = []
    for peer in planned:
        r = remotes.get(peer)
        if r is None:
            out.append(f(ERROR, f"kvstoremesh does not know {peer}, which the stack peers it with (Secret "
                                f"{KVSTOREMESH_SECRET} not reloaded yet, or another one)"))
        elif r.get("connected") and r.get("ready") and r.get("synced"):
            out.append(f(OK, f"{peer}: connected and synced"))
        else:
            state = "connected, not synced" if r.get("connected") and r.get("ready") else "not connected"
            why = r.get("reason") or r.get("lastError") or "no error reported"
            out.append(f(ERROR, f"{peer}: {state} ({int(r.get('failures') or 0)} failure(s)): {why}"))
    for extra in sorted(set(remotes) - set(planned)):
        out.append(f(WARNING, f"kvstoremesh knows {extra}, which the stack does not peer it with"))
    return out


def check_ca(want: Desired, observed: Mapping[str, Observation]) -> list[Finding]:
    """``cilium-ca`` the same certificate in every reachable cluster, and the stack's CA when known.

    With the stack's CA known, every cluster holding another one is named; without it, the
    clusters that differ from the certificate most clusters hold (with no majority, every one)."""
    prints: dict[str, str] = {}
    out: list[Finding] = []
    for c in want.clusters:
        o = observed.get(c.name) or NOT_EXAMINED
        if not o.reachable:
            continue
        ca = o.ca
        if ca is None:
            out.append(Finding(c.name, "cilium-ca", ERROR, f"Secret {CA_SECRET} not found"))
        elif "error" in ca:
            out.append(Finding(c.name, "cilium-ca", ERROR, f"Secret {CA_SECRET}: ca.crt is not a certificate "
                                                           f"({ca['error']})"))
        else:
            prints[c.name] = str(ca.get("sha256"))
    counts: dict[str, int] = {}
    for fp in prints.values():
        counts[fp] = counts.get(fp, 0) + 1
    reference, source = want.ca_fingerprint, want.ca_source
    if reference is None and counts:
        top = max(counts.values())
        leaders = [fp for fp, n in counts.items() if n == top]
        if len(leaders) == 1 and (len(counts) == 1 or top > 1):
            reference, source = leaders[0], f"the other clusters' ({top})"
    for name, fp in prints.items():
        if reference is None:
            out.append(Finding(name, "cilium-ca", ERROR, f"Secret {CA_SECRET} (sha256 {short(fp)}) differs between "
                                                         "clusters, with no majority: every cluster must hold the "
                                                         "same CA"))
        elif fp != reference:
            others = [n for n, p in prints.items() if p == reference]
            also = f" (the stack's CA is in {', '.join(others)})" if others and want.ca_fingerprint else ""
            out.append(Finding(name, "cilium-ca", ERROR, f"Secret {CA_SECRET} is another CA (sha256 {short(fp)}) "
                                                         f"than {source} (sha256 {short(reference)}){also}; "
                                                         "run pulumi up --refresh to put the mesh CA back, then "
                                                         "restart its clustermesh-apiserver (etcd reads its "
                                                         "trusted CA at start)"))
        else:
            out.append(Finding(name, "cilium-ca", OK, f"Secret {CA_SECRET} sha256 {short(fp)}"
                                                      + (f", {source}" if want.ca_fingerprint else "")))
    return out


def short(fingerprint: str | None) -> str:
    """The first 8 bytes of a colon-separated fingerprint, for one-line messages."""
    return ":".join(str(fingerprint).split(":")[:8]) + "…" if fingerprint else "?"


# -- the registry ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One check: of each reachable cluster (``cluster``), or of the fleet at once (``fleet``); ``reachable``,
    which gates the others, is neither."""

    name: str
    cluster: Callable[[Subject], list[Finding]] | None = None
    fleet: Callable[[Desired, Mapping[str, Observation]], list[Finding]] | None = None


REGISTERED: tuple[Check, ...] = (
    Check("reachable"),
    Check("release", cluster=check_release),
    Check("cilium-config", cluster=check_config),
    Check("cilium-ca", fleet=check_ca),
    Check("service", cluster=check_service),
    Check("peers", cluster=check_peers),
    Check("certificates", cluster=check_certificates),
    Check("workloads", cluster=check_workloads),
    Check("connected", cluster=check_connected),
)
"""Every check, in the order the summary table shows them: adding one is its function and its row here."""
CHECKS = tuple(c.name for c in REGISTERED)
