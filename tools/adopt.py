"""Adopt a running mesh: read the clusters, write the stack that takes them over.

    python -m tools.adopt --kubeconfig KC --contexts a,b,c --out stacks/Pulumi.<stack>.yaml [--region R]
        [--chart PATH] [--skip-await] [--pod-cidrs NAME=CIDR[,CIDR]]... [--take-over] [--no-plan]

Reads each context's cluster with the Kubernetes client (as ``tools.doctor`` does): the Helm release
``kube-system/cilium`` (Helm 3's storage, its latest deployed revision: chart, version, user values, history),
the clustermesh-apiserver Service (annotations, VIP), ``cilium-config``, the nodes (pod CIDRs, region),
``cilium-ca``, and who owns the Secrets the release renders. ``meshcore.mesh.adoption`` turns that into the stack's
config or the refusals; refused, nothing is written (exit 2). Else it writes ``--out`` (validated by the
program's own config model first), with the live CA as a brought CA: ``mesh:ca.certificate`` plain and its key
set with ``pulumi config set --secret mesh:caPrivateKey`` (stdin), encrypted by the stack's secrets provider
(``pulumi stack init`` first for a new stack: ``--secrets-provider`` passes one), so no key is ever plain text in
a file or the output. It prints what the program will change: the offline plan's values
(``python -m tools.plan``) against what each cluster runs, classified as the plan diff classifies them.

``--take-over`` gives each Secret the release renders that exists outside Helm (a ``cilium-clustermesh`` of an
older CLI, a ``cilium-ca`` copied by hand) Helm's ownership metadata, so that ``pulumi up`` takes it over in
place (no delete, no window without peers). Run ``pulumi`` from PATH (``--pulumi`` another) with the
environment of the stack's backend (login, ``PULUMI_CONFIG_PASSPHRASE``...).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from meshcore.config.clusters import REGION_PATTERN
from meshcore.mesh import adoption
from meshcore.mesh.adoption import Adoption, Observed, Options, Refused, Revision, Sensitive
from tools import ROOT, localstack

REQUEST_TIMEOUT = (5.0, 20.0)
REGION_LABEL = "topology.kubernetes.io/region"


# -- reading one cluster --------------------------------------------------------------------


def _decode_release(data: Mapping[str, str]) -> dict[str, Any]:
    from tools.doctor import _decode_release as decode

    return decode(data)


def _ca(secret: Any) -> adoption.Ca | None:
    """The CA of Secret cilium-ca: its certificate, its key as PKCS#1 (converted from PKCS#8 when needed)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    data = secret.data or {}
    try:
        crt = base64.b64decode(data["ca.crt"])
        key = base64.b64decode(data["ca.key"])
    except (KeyError, binascii.Error, ValueError):
        return None
    try:
        cert = x509.load_pem_x509_certificate(crt)
    except ValueError:
        return None
    fingerprint = cert.fingerprint(hashes.SHA256()).hex(":").upper()
    problem = None
    pem = Sensitive("")
    try:
        k = serialization.load_pem_private_key(key, None)
    except (ValueError, TypeError):
        problem = "its ca.key is not a readable unencrypted PEM private key"
    else:
        if not isinstance(k, rsa.RSAPrivateKey):
            problem = (f"its ca.key is a {type(k).__name__.removeprefix('_')} key: the program brings an RSA CA "
                       "(what the chart's buildCustomCert parses); rotate the mesh to an RSA CA first")
        else:
            pem = Sensitive(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                            serialization.NoEncryption()).decode())
    return adoption.Ca(cert.public_bytes(serialization.Encoding.PEM).decode(), pem, fingerprint, problem)


def observe(api_client: Any, context: str) -> Observed:
    """What one cluster runs (``meshcore.mesh.adoption.Observed``)."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    ns, t = adoption.NAMESPACE, REQUEST_TIMEOUT

    def read(fn: Any, name: str) -> Any:
        try:
            return fn(name, ns, _request_timeout=t)
        except client.ApiException as err:
            if err.status == 404:
                return None
            raise

    stored = core.list_namespaced_secret(ns, label_selector=f"owner=helm,name={adoption.RELEASE}",
                                         _request_timeout=t).items
    history, bodies = [], {}
    for s in stored:
        try:
            body = _decode_release(s.data or {})
        except (KeyError, ValueError, binascii.Error, OSError, EOFError):
            continue
        meta = (body.get("chart") or {}).get("metadata") or {}
        r = Revision(int(body.get("version") or 0), str((body.get("info") or {}).get("status")),
                     str(meta.get("name")), str(meta.get("version")))
        history.append(r)
        bodies[r.revision] = body
    history.sort(key=lambda r: r.revision)
    live = [r for r in history if r.status == "deployed"]
    body = bodies[max(live, key=lambda r: r.revision).revision] if live else {}
    values = dict(body.get("config") or {})
    defaults = dict((body.get("chart") or {}).get("values") or {})
    svc = read(core.read_namespaced_service, adoption.SERVICE)
    service = None
    if svc is not None:
        lb = svc.status.load_balancer if svc.status else None
        service = {"type": svc.spec.type, "annotations": dict(svc.metadata.annotations or {}),
                   "ingress": [i.ip or i.hostname for i in (lb.ingress or [])] if lb is not None else []}
    cm = read(core.read_namespaced_config_map, "cilium-config")
    ca_secret = read(core.read_namespaced_secret, adoption.CA_SECRET)
    owners: dict[str, str | None] = {}
    for name in adoption.RENDERED_SECRETS:
        s = ca_secret if name == adoption.CA_SECRET else read(core.read_namespaced_secret, name)
        if s is not None:
            a = s.metadata.annotations or {}
            same_ns = a.get(adoption.RELEASE_NAMESPACE_ANNOTATION) == ns
            owners[name] = a.get(adoption.RELEASE_NAME_ANNOTATION) if same_ns else None
    nodes = core.list_node(_request_timeout=t).items
    cidrs = tuple(c for n in nodes for c in ((n.spec.pod_cid_rs or []) if n.spec else []))
    import re

    regions = {(n.metadata.labels or {}).get(REGION_LABEL) for n in nodes}
    region = regions.pop() if len(regions) == 1 else None
    return Observed(context, None, tuple(history), values, service, dict(cm.data or {}) if cm is not None else None,
                    _ca(ca_secret) if ca_secret is not None else None, owners, cidrs,
                    region if isinstance(region, str) and re.match(REGION_PATTERN, region) else None, defaults)


def observe_fleet(kubeconfig: str, contexts: Sequence[str]) -> list[Observed]:
    from kubernetes import config

    out = []
    for ctx in contexts:
        try:
            api = config.new_client_from_config(kubeconfig, context=ctx)
        except Exception as err:  # a missing context or file: named, not a traceback
            out.append(Observed(ctx, f"{kubeconfig}: {str(err).splitlines()[0][:200]}"))
            continue
        api.configuration.retries = 1
        try:
            out.append(observe(api, ctx))
        except Exception as err:
            reason = getattr(err, "reason", None) or err
            out.append(Observed(ctx, f"the API server did not answer: {str(reason).splitlines()[0][:200]}"))
        finally:
            api.close()
    return out


# -- writing the stack ----------------------------------------------------------------------


def validate(config: Mapping[str, Any], stack: str) -> list[str]:
    """The program's own verdict on the config (with the CA key as a secret): its ``error:`` lines, or []."""
    from tools import doctor

    with tempfile.TemporaryDirectory(prefix="mesh-adopt-") as tmp:
        path = Path(tmp) / f"Pulumi.{stack}.yaml"
        doc = {"config": {**config, "mesh:caPrivateKey": {"secure": "AAABAA=="}}}
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        try:
            doctor.load_settings(str(path))
        except doctor.UsageError as err:
            return err.lines
    return []


def project_of(out: Path) -> Path:
    """The Pulumi project whose stack file ``out`` is (``<project>/<stackConfigDir>/Pulumi.<stack>.yaml``)."""
    project = out.resolve().parent.parent
    meta = project / "Pulumi.yaml"
    if not meta.is_file():
        raise SystemExit(f"error: --out {out}: not in a Pulumi project's stacks directory (no {meta}); write it as "
                         "<project>/stacks/Pulumi.<stack>.yaml")
    config_dir = (yaml.safe_load(meta.read_text(encoding="utf-8")) or {}).get("stackConfigDir", ".")
    if (project / config_dir).resolve() != out.resolve().parent:
        raise SystemExit(f"error: --out {out}: the project {project} keeps its stack files in {config_dir}/")
    return project


def _pulumi(pulumi: str, project: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([pulumi, "--non-interactive", *args], cwd=project, input=stdin, capture_output=True,
                          text=True, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"error: `pulumi {' '.join(args)}` (in {project}) exited {proc.returncode}: "
                         f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
    return proc


GENERATED = ("# Written by `python -m tools.adopt` from the running clusters; review it (README, Adopting a running "
             "mesh).")


def write_stack(adopted: Adoption, out: Path, pulumi: str, secrets_provider: str | None) -> str:
    """Write ``out`` with the stack's plain config and the CA key as the secret ``mesh:caPrivateKey``; the stack."""
    project = project_of(out)
    stack = localstack.stack_name(out)
    listed = json.loads(_pulumi(pulumi, project, "stack", "ls", "--json").stdout or "[]")
    if stack not in {s.get("name") for s in listed}:
        _pulumi(pulumi, project, "stack", "init", stack,
                *(["--secrets-provider", secrets_provider] if secrets_provider else []))
    # From stdin, not argv: a secret does not belong in the process list.
    _pulumi(pulumi, project, "config", "set", "--secret", "--stack", stack, "mesh:caPrivateKey", stdin=adopted.ca_key)
    doc = yaml.safe_load(out.read_text(encoding="utf-8")) or {}
    secure = {k: v for k, v in (doc.get("config") or {}).items() if isinstance(v, dict) and set(v) == {"secure"}}
    doc["config"] = {**adopted.config, **secure}
    out.write_text(localstack.SCHEMA_LINE + GENERATED + "\n" + localstack.dump_stack(doc), encoding="utf-8")
    return stack


def take_over(kubeconfig: str, leftovers: Mapping[str, Sequence[str]]) -> list[str]:
    """Give each leftover Secret Helm's ownership metadata of release kube-system/cilium (metadata only)."""
    from kubernetes import client, config

    done = []
    for ctx, secrets in leftovers.items():
        core = client.CoreV1Api(config.new_client_from_config(kubeconfig, context=ctx))
        for name in secrets:
            core.patch_namespaced_secret(name, adoption.NAMESPACE, {"metadata": {
                "labels": {adoption.MANAGED_BY_LABEL: "Helm"},
                "annotations": {adoption.RELEASE_NAME_ANNOTATION: adoption.RELEASE,
                                adoption.RELEASE_NAMESPACE_ANNOTATION: adoption.NAMESPACE}}})
            done.append(f"{ctx}: Secret {adoption.NAMESPACE}/{name} now carries release {adoption.RELEASE}'s ownership")
    return done


# -- what the program changes -----------------------------------------------------------------


def _default(tree: Any, path: Sequence[str]) -> Any:
    from tools import plandiff

    for p in path:
        if not isinstance(tree, Mapping) or p not in tree:
            return plandiff.MISSING
        tree = tree[p]
    return tree


def changes(out: Path, fleet: Sequence[Observed], names: Mapping[str, str]) -> dict[str, list[Any]]:
    """Cluster -> the value changes (``tools.plandiff.ValueChange``) from what it runs (its user-supplied values, `helm
    get values`) to the offline plan's values of the stack just written, classified as the plan diff classifies
    them. A value set on one side only is compared with the running chart's default (`helm get values --all`): the
    program setting what the chart defaults to changes nothing. Secrets are ``[secret]`` on both sides."""
    from tools import plandiff

    with tempfile.TemporaryDirectory(prefix="mesh-adopt-plan-") as tmp:
        plan = Path(tmp) / "plan"
        proc = subprocess.run([sys.executable, "-m", "tools.plan", str(out), "--out", str(plan)], cwd=ROOT,
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise SystemExit(f"error: the offline plan of {out} failed:\n{proc.stderr.strip()}")
        planned = {p.stem: yaml.safe_load(p.read_text(encoding="utf-8")) for p in (plan / "values").glob("*.yaml")}
    by_context = {o.context: o for o in fleet}
    report: dict[str, list[Any]] = {}
    for name, ctx in names.items():
        live = json.loads(json.dumps(by_context[ctx].values))
        if isinstance(live.get("tls", {}).get("ca"), dict) and "key" in live["tls"]["ca"]:
            live["tls"]["ca"]["key"] = "[secret]"
        defaults = by_context[ctx].chart_defaults
        report[name] = []
        for c in plandiff.value_changes(live, planned[name]):
            default = _default(defaults, c.path)
            old = default if c.old is plandiff.MISSING else c.old
            new = default if c.new is plandiff.MISSING else c.new
            if old != new:
                report[name].append(c)
    return report


def render_changes(report: Mapping[str, list[Any]]) -> list[str]:
    from tools import plandiff

    words = {"rolls": "ROLLS PODS NOW", "next-restart": "TAKES EFFECT AT THE NEXT RESTART", "identity": "DISRUPTIVE",
             "ca": "CA CHANGE", "none": "no restart", "unknown": "UNKNOWN TO THE CHART"}
    lines = []
    for name, cs in report.items():
        if not cs:
            lines.append(f"- {name}: no value changes")
            continue
        lines.append(f"- {name}: {len(cs)} value(s) change against what runs")
        for c in cs:
            what = words.get(c.effect, c.effect)
            if c.effect == "rolls" and c.impact.rolls:
                what += f" ({', '.join(c.impact.rolls)})"
            lines.append(f"  - {'.'.join(c.path)}: {plandiff.brief(c.old)} -> {plandiff.brief(c.new)}  [{what}]")
    return lines


def _pod_cidrs(items: Sequence[str]) -> dict[str, list[str]]:
    out = {}
    for item in items:
        name, sep, cidrs = item.partition("=")
        if not sep or not name or not cidrs:
            raise SystemExit(f"error: --pod-cidrs {item}: write NAME=CIDR[,CIDR...] (NAME: a context or cluster name)")
        out[name] = [c.strip() for c in cidrs.split(",") if c.strip()]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.adopt", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", required=True, help="the kubeconfig holding every context")
    parser.add_argument("--contexts", required=True, help="comma-separated contexts, one per cluster of the mesh")
    parser.add_argument("--out", required=True, type=Path, help="the stack file, <project>/stacks/Pulumi.<stack>.yaml")
    parser.add_argument("--region", help="the Tencent Cloud region of every cluster (default: the nodes' label)")
    parser.add_argument("--chart", help="mesh:cilium.chart: a local chart or oci:// reference (default: the "
                                        "repository)")
    parser.add_argument("--skip-await", action="store_true", help="mesh:cilium.skipAwait: true")
    parser.add_argument("--pod-cidrs", action="append", default=[], metavar="NAME=CIDR[,CIDR]",
                        help="a cluster's pod CIDRs where it does not say (repeatable)")
    parser.add_argument("--take-over", action="store_true",
                        help="give the Secrets the release renders that exist outside Helm its ownership metadata")
    parser.add_argument("--no-plan", action="store_true", help="do not plan the stack to show what changes")
    parser.add_argument("--pulumi", default="pulumi", help="the pulumi CLI (default: from PATH)")
    parser.add_argument("--secrets-provider", help="for a new stack: pulumi stack init --secrets-provider")
    args = parser.parse_args(argv)
    contexts = [c.strip() for c in args.contexts.split(",") if c.strip()]
    if not contexts or len(set(contexts)) != len(contexts):
        parser.error("--contexts needs distinct, comma-separated contexts")
    stack = localstack.stack_name(args.out)
    project_of(args.out)
    kubeconfig = os.path.abspath(os.path.expanduser(args.kubeconfig))
    fleet = observe_fleet(kubeconfig, contexts)
    options = Options(kubeconfig, args.region, args.chart, args.skip_await, _pod_cidrs(args.pod_cidrs))
    try:
        adopted = adoption.adopt(fleet, options)
    except Refused as err:
        for line in err.lines:
            print(f"error: {line}", file=sys.stderr)
        print(f"error: nothing adopted, nothing written ({len(err.lines)} problem(s))", file=sys.stderr)
        return 2
    problems = validate(adopted.config, stack)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print("error: the program refuses the stack adopt would write (above); nothing written", file=sys.stderr)
        return 2
    write_stack(adopted, args.out, args.pulumi, args.secrets_provider)
    print(f"wrote {args.out} (stack {stack}: {len(adopted.clusters)} cluster(s); the CA of {adoption.NAMESPACE}/"
          f"{adoption.CA_SECRET} brought, its key the secret mesh:caPrivateKey)")
    for note in adopted.notes:
        print(f"note: {note}")
    if args.take_over:
        for line in take_over(kubeconfig, adopted.leftovers):
            print(line)
    if not args.no_plan:
        print("What the first `pulumi up` changes against what runs (the offline plan's values):")
        for line in render_changes(changes(args.out, fleet, adopted.clusters)):
            print(line)
    print(f"next: pulumi preview --stack {stack} --diff (it imports each release {adoption.NAMESPACE}/"
          f"{adoption.RELEASE}), then pulumi up --stack {stack}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
