"""The program's wiring: stack config in, the mesh graph out.

``__main__.py`` calls these in order. Reading config and the kubeconfig happens here,
once; everything else is decided in ``meshcore`` and only wired here.

The graph (per stack):

    SharedCa ──────────────────────────────┐ (tls.ca.* of every release)
    Cluster[c] ── k8s Provider ────────────┤
    Cluster[c] ── ApiserverEndpoint[c] ──┬─┤ (own address, CLB id)
                   (CLB in createClb)    │ │
    Cluster[c] ── MeshPeers[c] <─────────┘ │ (peer entries: the others' endpoints)
    Cluster[c] ── CiliumRelease[c] ── Release "cilium"
    Cluster[c] ── TkeNodePool[c]  (created clusters only: after the release)

A created cluster (``create:``) adds, inside Cluster[c]: TKE Cluster → ClusterEndpoint →
k8s Provider → cni-config ConfigMap, DaemonSet patches, default/kubernetes Endpoints read;
the release waits for those, and the node pool for the release (components/cluster.py).

Every peer address is config or a CLB output, so no release waits for another and
the whole mesh comes up in one ``pulumi up`` with a depth that does not grow with N.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi.runtime
import pulumi_kubernetes as k8s
from tencentcloud_iac_pulumi import Provider as TencentProvider

from components import sdk_internals as sdk
from components.ca import TLS_PLUGIN_VERSION, ProvidedCa, SharedCa
from components.certificates import ca_expiry, cluster_certificates
from components.cilium import CiliumRelease, CiliumReleaseArgs
from components.cluster import Cluster, ClusterArgs, TkeNodePool, TkeNodePoolArgs
from components.endpoint import ApiserverEndpoint, ApiserverEndpointArgs
from components.outputs import apply_all
from components.peering import MeshPeers, MeshPeersArgs
from meshcore import yamlio
from meshcore.chart.values import peer_entry
from meshcore.config.clusters import NS
from meshcore.config.model import Settings, decode_config
from meshcore.errors import ConfigIssue, MeshConfigError
from meshcore.mesh import adoption, plugins, stackoutputs
from meshcore.mesh import chartsource as charts
from meshcore.mesh import kubeconfig as kc
from meshcore.mesh.lifecycle import (
    IdentityChange,
    cilium_records,
    identity_changes,
    renames,
    unused_allowances,
    version_refusals,
)
from meshcore.mesh.release import mesh_non_masquerade_cidrs, release_inputs

CA_NAME = "mesh-ca"
PROJECT_DIR = Path(__file__).absolute().parent.parent
"""Where Pulumi.yaml is: Pulumi runs the program (and its providers) there; relative paths start here."""


class InvalidConfig(pulumi.RunError):
    """The stack config is invalid; raised before any resource is registered.

    A ``RunError``: Pulumi prints it without a traceback. ``issues`` has every problem; each is logged as an error
    of its own when it is made (``_fail``), so the message is only their count: the language host logs the message
    of a ``RunError`` too, and the whole text would print every problem a second time.
    """

    def __init__(self, err: MeshConfigError) -> None:
        self.issues = err.issues
        super().__init__(f"{err.summary()}, reported above")


def _fail(issues: tuple[ConfigIssue, ...] | list[ConfigIssue]) -> InvalidConfig:
    """Log every problem, one error each (a preview's progress shows each one's line), and the exception to raise."""
    err = MeshConfigError(issues)
    for issue in err.issues:
        pulumi.log.error(issue.line())
    return InvalidConfig(err)


def raw_mesh_config() -> tuple[dict[str, Any], list[str]]:
    """Every ``mesh:*`` key of the stack, decoded (all keys, so typos can be reported),
    and those of them the stack holds as secrets. The keys come from the one SDK internal
    that lists them (``components.sdk_internals.config_keys``); their values and whether
    they are secret from the SDK's public API."""
    mesh_keys = {k: pulumi.runtime.get_config(k) for k in sdk.config_keys() if k.startswith(f"{NS}:")}
    secret = [k.split(":", 1)[1] for k in mesh_keys if pulumi.runtime.is_config_secret(k)]
    return decode_config({k: v for k, v in mesh_keys.items() if v is not None}), secret


def load_settings() -> Settings:
    """The validated settings, or ``InvalidConfig`` listing every problem."""
    raw, secret_keys = raw_mesh_config()
    try:
        settings, notes = charts.validated_settings(raw, secret_keys, PROJECT_DIR)
    except MeshConfigError as err:
        raise _fail(err.issues) from None
    for note in notes:  # the Helm value-path check did not run, or read the key index instead of a bad copy
        pulumi.log.warn(note)
    return settings


def read_kubeconfigs(settings: Settings, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Each context cluster's minimal kubeconfig text (to be wrapped as a secret at once).

    Only clusters with ``kubeconfigFrom: context`` (the default) need a context; the file is
    read only when there is at least one. Which file: ``meshcore.mesh.kubeconfig.kubeconfig_files``
    (``$MESH_KUBECONFIG_FILE``, ``mesh:kubeconfig``, ``$KUBECONFIG``, ``~/.kube/config``). A missing
    file or context is a config problem, reported for every cluster at once, naming the file,
    where that choice came from and how to change it.
    """
    wanted = [c for c in settings.clusters if c.kubeconfig_from == "context" and c.context is not None]
    if not wanted:
        return {}
    source = kc.kubeconfig_files(settings.kubeconfig, environ)
    read = kc.minimal_kubeconfigs(source, [(c.name, f"{c.key}.context", c.context) for c in wanted
                                           if c.context is not None])
    if read.issues:
        raise _fail(read.issues)
    return dict(read.configs)


def _tencent_providers(settings: Settings) -> dict[str, TencentProvider]:
    """One Tencent provider per region that needs one (createClb, kubeconfigFrom: tkeApi, create);
    never the default provider."""
    regions = sorted({c.region for c in settings.clusters if c.needs_tencent})
    if not regions:
        return {}
    cfg = pulumi.Config("tencentcloud")
    # Explicit providers do not read tencentcloud:* config by themselves; pass the
    # credentials on (as secrets) when the stack has them, else the provider uses
    # TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY from the environment.
    secret_id: pulumi.Output[str] | None = cfg.get_secret("secretId")
    secret_key: pulumi.Output[str] | None = cfg.get_secret("secretKey")
    return {
        region: TencentProvider(f"tencentcloud-{region}", region=region, secret_id=secret_id, secret_key=secret_key)
        for region in regions
    }


@dataclass
class IdentityCheck:
    """The identity changes since this stack's last deployment, and what the program does with them."""

    guard: pulumi.Output[bool]
    """True once no unapproved identity change is found; fails the update otherwise."""
    renames: pulumi.Output[dict[str, str]]
    """New name -> deployed name of each allowed rename (``meshcore.mesh.lifecycle.renames``)."""
    previous_clusters: pulumi.Output[Any]
    """The ``clusters`` output this stack last recorded (None on a new stack)."""
    cilium: pulumi.Output[dict[str, dict[str, str]]]
    """Cluster name -> its chart record after this update, ``{version, firstInstalled}``
    (``meshcore.mesh.lifecycle.cilium_records``)."""


READ_STACK_OUTPUTS = "pulumi:pulumi:readStackOutputs"
"""The engine's built-in function that reads a stack's last outputs (pulumi ``pkg/resource/deploy/builtins.go``:
``{name}`` -> ``{name, outputs, secretOutputNames}``), the read a StackReference's Read does too."""
READ_ATTEMPTS = 5
UNREADABLE_CHECKPOINT = "failed to load checkpoint"
"""How the file backend's read of the stack fails when it meets the stack's own checkpoint being written: it
writes each file's ``.attrs`` beside it in place (gocloud.dev ``blob/fileblob``), so a read at that moment finds it
empty (``failed to load checkpoint: EOF``). An update writes the checkpoint after every step, the program's own
included; the next read finds it whole."""


async def _read_stack_outputs(name: str) -> Any:
    """``READ_STACK_OUTPUTS`` of stack ``name``; a read that met its checkpoint mid-write is read again."""
    attempt = 1
    while True:
        try:
            return await pulumi.runtime.invoke_async(READ_STACK_OUTPUTS, {"name": name})
        except Exception as err:
            if attempt == READ_ATTEMPTS or UNREADABLE_CHECKPOINT not in str(err):
                raise
            pulumi.log.debug(f"reading this stack's last outputs again ({attempt} of {READ_ATTEMPTS} failed): {err}")
        await asyncio.sleep(0.1 * attempt)
        attempt += 1


def previous_outputs(*names: str) -> dict[str, pulumi.Output[Any]]:
    """This stack's outputs ``names`` as its last update left them (None where it has none: a new stack).

    Read with the engine's ``pulumi:pulumi:readStackOutputs``, not a StackReference: a StackReference is a
    resource read on every run, so the state holds its outputs and the first ``pulumi preview --diff`` after an
    ``up`` would print every stack output as a change of it (about 140 lines for three clusters) before saying
    that nothing changes. A function call is in no state and no preview. Each value is a secret where the stack
    holds it as one (``secretOutputNames``), as ``StackReference.get_output`` gives it.
    """
    me = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    read = asyncio.ensure_future(_read_stack_outputs(me))

    async def value(name: str) -> Any:
        return (((await read) or {}).get("outputs") or {}).get(name)

    async def secret(name: str) -> bool:
        return name in (((await read) or {}).get("secretOutputNames") or [])

    # Built from its futures, not with Output.from_input/secret, which would lift every value inside the
    # outputs (N·(N−1) peer names) into an Output of its own (components/outputs.py).
    return {name: pulumi.Output(set(), asyncio.ensure_future(value(name)), _known(),
                                asyncio.ensure_future(secret(name))) for name in names}


def _known() -> asyncio.Future[bool]:
    known: asyncio.Future[bool] = asyncio.get_event_loop().create_future()
    known.set_result(True)
    return known


def identity_check(settings: Settings, live: Callable[[Any], Any] | None = None,
                   previous: dict[str, pulumi.Output[Any]] | None = None) -> IdentityCheck:
    """Compare the config with what this stack last deployed: identities, and chart versions.

    Reads this very stack's previous ``clusters`` and ``maxConnectedClusters`` outputs (``previous_outputs``; none
    on a new stack). Every release's ``cluster.id`` waits for the guard, so a refused change (an
    identity, or a chart version that skips a minor: ``meshcore.mesh.lifecycle.version_refusals``)
    stops before any release is touched, in a preview and in ``pulumi up --skip-preview`` alike. ``live``
    (``adopted_live``) reads what the adopted clusters the stack has not recorded yet run: that stands for their
    record (``meshcore.mesh.adoption.with_live``).
    """
    previous = previous or previous_outputs(stackoutputs.CLUSTERS, stackoutputs.MAX_CONNECTED_CLUSTERS)
    addresses = {c.name: stackoutputs.configured_mesh_address(c.apiserver) for c in settings.clusters}
    contexts = {c.name: c.context for c in settings.clusters}
    recorded = previous[stackoutputs.CLUSTERS]
    previous_clusters: pulumi.Output[Any] = recorded
    adoption_issues: pulumi.Output[list[ConfigIssue]] = pulumi.Output.from_input([])
    if live is not None:
        read = live
        both: pulumi.Output[tuple[dict[str, Any], list[ConfigIssue]]] = recorded.apply(
            lambda p: pulumi.Output.from_input(read(p)).apply(lambda seen: adoption.with_live(p, settings, seen)))
        previous_clusters, adoption_issues = both.apply(lambda b: b[0]), both.apply(lambda b: b[1])
    # Not Output.all: it walks the N·(N−1) peer names the previous outputs hold (components/outputs.py).
    changes = apply_all([previous_clusters, previous[stackoutputs.MAX_CONNECTED_CLUSTERS]],
                        lambda previous: identity_changes(previous[0], settings, addresses,
                                                          previous_max_connected=previous[1]))

    def check(found: list[IdentityChange], previous: Any, adopted: list[ConfigIssue]) -> bool:
        for change in found:
            if change.allowed and change.allowable:
                pulumi.log.warn(f"{change.where}: {change.description}: allowed by mesh:allowIdentityChange; "
                                f"{change.follow_up(contexts.get(change.cluster))}")
        for name in unused_allowances(found, settings):
            pulumi.log.warn(f"{NS}:allowIdentityChange lists {name}, whose identity does not change; remove it")
        refused = [c.issue() for c in found if not (c.allowed and c.allowable)]
        refused += version_refusals(previous, settings, renames(found))
        refused += adopted
        if refused:
            raise _fail(refused)
        return True

    pair = [changes, previous_clusters]
    return IdentityCheck(apply_all([*pair, adoption_issues], lambda a: check(a[0], a[1], a[2])),
                         changes.apply(renames), recorded,
                         apply_all(pair, lambda a: cilium_records(a[1], settings, renames(a[0]))))


def adopted_live(settings: Settings, clusters: Mapping[str, Cluster]) -> Callable[[Any], Any] | None:
    """For the adopted clusters the stack has not recorded yet (``meshcore.mesh.adoption.needs_live``): a read of what
    each runs, ``cilium-config`` (its Cilium name and id) and ``cilium-ca`` (its CA certificate), through its
    provider; a function of the last ``clusters`` output. None when no cluster is adopted. Once recorded (after
    the first update), nothing is read: the record is what the guard compares with, as for any cluster. The offline
    plan (the mock engine) reads no cluster: there the record is ``adopted`` alone (``meshcore.mesh.lifecycle``)."""
    adopted = [c for c in settings.clusters if c.adopted is not None]
    if not adopted or sdk.mock_engine():
        return None

    def read(previous: Any) -> Any:
        reads: dict[str, Any] = {}
        for c in adopted:
            if not adoption.needs_live(previous, c):
                continue
            opts = pulumi.ResourceOptions(parent=clusters[c.name], provider=clusters[c.name].provider)
            config = k8s.core.v1.ConfigMap.get(f"{c.name}-{adoption.CONFIG_MAP}",
                                               f"{adoption.NAMESPACE}/{adoption.CONFIG_MAP}", opts=opts)
            ca = k8s.core.v1.Secret.get(f"{c.name}-{adoption.CA_SECRET}",
                                        f"{adoption.NAMESPACE}/{adoption.CA_SECRET}", opts=opts)
            # Only the certificate, which is public (the Secret's data is a secret as a whole: its ca.key).
            ca_crt = pulumi.Output.unsecret(ca.data.apply(_ca_crt))
            reads[c.name] = apply_all([config.data, ca_crt], lambda a: {**(a[0] or {}), "ca": a[1]})
        return pulumi.Output.all(**reads) if reads else {}

    return read


def _ca_crt(data: Mapping[str, str] | None) -> str | None:
    """``ca.crt`` of a Secret's data, decoded."""
    try:
        return base64.b64decode((data or {})["ca.crt"]).decode() if (data or {}).get("ca.crt") else None
    except (binascii.Error, UnicodeDecodeError):
        return None


def recorded_renames(settings: Settings, previous: dict[str, pulumi.Output[Any]]) -> pulumi.Output[dict[str, str]]:
    """New name -> deployed name of each allowed rename of a cluster the stack recorded
    (``meshcore.mesh.lifecycle``)."""
    addresses = {c.name: stackoutputs.configured_mesh_address(c.apiserver) for c in settings.clusters}
    return apply_all([previous[stackoutputs.CLUSTERS], previous[stackoutputs.MAX_CONNECTED_CLUSTERS]],
                     lambda p: renames(identity_changes(p[0], settings, addresses, previous_max_connected=p[1])))


def cluster_aliases(name: str, settings: Settings, renamed: pulumi.Output[dict[str, str]]) -> list[Any] | None:
    """The aliases of a cluster's component: its deployed name when this update renames it (an allowed rename),
    so that Pulumi updates its resources in place (the Helm release ``cilium`` is upgraded, not installed a
    second time and uninstalled); the engine gives every child whose name starts with the cluster's name the
    matching alias. Only a cluster listed in ``mesh:allowIdentityChange`` can be renamed, so only those get an
    alias option (an Output of the previous outputs; its own name when nothing is renamed, which the engine
    ignores): the registrations of every other cluster stay as they were."""
    if name not in settings.allow_identity_change:
        return None
    return [renamed.apply(lambda r: pulumi.Alias(name=r.get(name, name)))]


@dataclass
class Mesh:
    """What the program built, for stack outputs and tests."""

    settings: Settings
    ca: SharedCa | ProvidedCa
    """The signing CA."""
    cas: dict[int, SharedCa | ProvidedCa]
    """Every trusted CA generation."""
    clusters: dict[str, Cluster]
    endpoints: dict[str, ApiserverEndpoint]
    peers: dict[str, MeshPeers]
    releases: dict[str, CiliumRelease]
    guard: pulumi.Output[bool]
    """The identity guard; the recorded identities wait for it (see ``outputs``)."""
    cilium: pulumi.Output[dict[str, dict[str, str]]]
    """Cluster name -> its chart record ``{version, firstInstalled}`` (``IdentityCheck.cilium``)."""
    node_pools: dict[str, TkeNodePool] = field(default_factory=dict)
    """The node pools of created clusters, added after their releases."""
    certificates: dict[str, pulumi.Output[Any]] = field(default_factory=dict)
    """Cluster name -> when its certificates expire (``components/certificates.py``)."""
    ca_expiry: pulumi.Output[dict[str, str]] | None = None
    """CA generation -> when its certificate expires."""

    def outputs(self) -> dict[str, Any]:
        """The stack outputs contract (see README, "Stack outputs").

        ``kubeconfigs`` holds each cluster's kubeconfig, every value a secret (never plain: a
        consumer's StackReference receives it as a secret).

        ``clusters`` (ids, addresses, chart records) and ``maxConnectedClusters`` are what the identity and
        version guard reads back on the next run, so they wait for this run's guard: a refused update records nothing
        (outputs are registered all at once, and a failed Output among them fails that), and
        a retry is refused again instead of comparing against the refused identities.

        Only the identities are Outputs of the guard. The peer lists stay plain data: inside
        an Output the SDK walks a value twice more before serialising it (N·(N−1) names).
        """
        return {
            stackoutputs.CLUSTERS: {
                c.name: stackoutputs.cluster_entry(
                    cluster_id=self.guard.apply(_constant(c.id)), region=c.region, context=c.context,
                    address=self.endpoints[c.name].address_with_port, peers=self.settings.peers[c.name],
                    certificates=self.certificates[c.name],
                    cilium=_record(self.cilium, self.releases[c.name].release.version, c.name))
                for c in self.settings.clusters
            },
            # Secret: what a consumer needs to reach each cluster, whichever way the program reaches it (a
            # context's minimal kubeconfig, the TKE API's, a created cluster's endpoint's). Apart from
            # `clusters`, so that reading ids, regions and peers does not make them secret.
            stackoutputs.KUBECONFIGS: {c.name: self.clusters[c.name].kubeconfig for c in self.settings.clusters},
            stackoutputs.CA_CERTIFICATE_PEM: self.ca.cert_pem,
            stackoutputs.MAX_CONNECTED_CLUSTERS: self.guard.apply(lambda _: self.settings.max_connected_clusters),
            stackoutputs.CA_EXPIRES_AT: self.ca_expiry,
        }


def _constant(value: Any) -> Callable[[Any], Any]:
    """A function of anything that gives ``value`` (for Output.apply in a loop)."""
    return lambda _: value


def _record(records: pulumi.Output[dict[str, dict[str, str]]], deployed: pulumi.Output[str | None],
            name: str) -> pulumi.Output[dict[str, str]]:
    """One cluster's chart record: the chart version of its release as the engine left it (not the config's: a
    release this update did not reach, with ``--target`` or after a failure, keeps its previous version), and the
    minor it was first installed with (``IdentityCheck.cilium``, which waits for the guard). ``apply_all``, not
    ``Output.all``, which would walk every cluster's record for each cluster (components/outputs.py)."""
    return apply_all([records, deployed], lambda a: {**a[0][name], "version": a[1] or a[0][name]["version"]})


def _first_installed(name: str) -> Callable[[dict[str, dict[str, str]]], str]:
    """The minor cluster ``name`` was first installed with, out of every cluster's chart record."""
    return lambda records: records[name]["firstInstalled"]


def build_mesh(settings: Settings, kubeconfigs: Mapping[str, str]) -> Mesh:
    """Register the whole mesh: CAs, clusters, endpoints, connections, identity guard, releases."""
    cas, ca, ca_bundle = _mesh_cas(settings)
    tencent = _tencent_providers(settings)
    previous = previous_outputs(stackoutputs.CLUSTERS, stackoutputs.MAX_CONNECTED_CLUSTERS)
    # The aliases of renamed clusters come from the record alone (an adopted cluster has nothing in the state to
    # alias); the guard compares with what adopted clusters run too.
    clusters, endpoints = _clusters_and_endpoints(settings, kubeconfigs, tencent, recorded_renames(settings, previous))
    check = identity_check(settings, adopted_live(settings, clusters), previous)
    entries = {name: peer_entry(name, e.address, e.port) for name, e in endpoints.items()}
    peers: dict[str, MeshPeers] = {
        c.name: MeshPeers(
            f"{c.name}-peers",
            MeshPeersArgs(cluster=c.name, peers=settings.peers[c.name], endpoints=endpoints, entries=entries),
            opts=pulumi.ResourceOptions(parent=clusters[c.name]),
        )
        for c in settings.clusters
    }
    releases = _releases(settings, ca, ca_bundle, check.guard, clusters, endpoints, peers, check.cilium)
    # Nodes of created clusters come last: no node may run without Cilium.
    node_pools: dict[str, TkeNodePool] = {
        c.name: TkeNodePool(
            f"{c.name}-nodepool",
            TkeNodePoolArgs(cluster=clusters[c.name], create=c.create, tencent_provider=tencent[c.region],
                            after=[releases[c.name].release]),
            opts=pulumi.ResourceOptions(parent=clusters[c.name]),
        )
        for c in settings.clusters if c.create is not None
    }
    return Mesh(settings, ca, cas, clusters, endpoints, peers, releases, check.guard, check.cilium, node_pools,
                cluster_certificates(settings, releases, check.previous_clusters, check.renames), ca_expiry(cas))


def check_tls_plugin(environ: Mapping[str, str] = os.environ, home: Path | None = None) -> None:
    """Before a generated CA is registered: fail (``InvalidConfig``, on ``mesh:ca``) when the engine would not find
    the tls plugin and would not download it, saying both ways out (install it, with the command; or bring a CA);
    warn when it is about to download it. The engine's environment is the program's (it inherits it). Pulumi's
    mock engine (the offline plan) loads no plugin: nothing to check there."""
    if sdk.mock_engine():
        return
    try:  # the engine read it before it ran the program
        project = yamlio.safe_load((PROJECT_DIR / "Pulumi.yaml").read_bytes())
    except OSError:
        project = None
    lookup = plugins.find_resource_plugin("tls", TLS_PLUGIN_VERSION, environ, home or Path.home(),
                                          project if isinstance(project, dict) else None)
    issue = plugins.tls_plugin_issue(lookup)
    if issue is not None:
        raise _fail([issue])
    note = plugins.tls_plugin_note(lookup)
    if note is not None:
        pulumi.log.warn(note)


def _mesh_cas(settings: Settings) -> tuple[dict[int, SharedCa | ProvidedCa], SharedCa | ProvidedCa, Any]:
    """Every trusted CA by generation, the signing one, and the trust bundle (during a rotation only)."""
    cas: dict[int, SharedCa | ProvidedCa]
    if settings.ca.provided_certificate is not None:
        key = pulumi.Config(NS).require_secret("caPrivateKey")
        cas = {1: ProvidedCa(CA_NAME, settings.ca.provided_certificate, key)}
    else:
        check_tls_plugin()
        # Generation 1 keeps the name of the first CA, so existing stacks keep its URN.
        cas = {g: SharedCa(CA_NAME if g == 1 else f"{CA_NAME}-{g}") for g in settings.ca.generations}
    ca_bundle = None
    if len(cas) > 1:
        ca_bundle = pulumi.Output.all(*[cas[g].cert_pem for g in sorted(cas)]).apply(lambda pems: "".join(pems))
    assert settings.ca.signing is not None, "the model sets it (the only generation by default)"
    return cas, cas[settings.ca.signing], ca_bundle


def _clusters_and_endpoints(
    settings: Settings, kubeconfigs: Mapping[str, str], tencent: Mapping[str, TencentProvider],
    renamed: pulumi.Output[dict[str, str]],
) -> tuple[dict[str, Cluster], dict[str, ApiserverEndpoint]]:
    """Each cluster (reached, adopted or created) and the endpoint of its clustermesh-apiserver."""
    clusters: dict[str, Cluster] = {}
    endpoints: dict[str, ApiserverEndpoint] = {}
    for c in settings.clusters:
        kubeconfig = kubeconfigs.get(c.name) if c.kubeconfig_from == "context" else None
        cluster = Cluster(
            c.name,
            ClusterArgs(
                cluster_name=c.name,
                region=c.region,
                kubeconfig=pulumi.Output.secret(kubeconfig) if kubeconfig is not None else None,
                context=c.context,
                tke_api=c.tke_api,
                create=c.create,
                prepare_vpc_cni=c.prepare_vpc_cni,
                tencent_provider=tencent.get(c.region),
            ),
            opts=pulumi.ResourceOptions(aliases=cluster_aliases(c.name, settings, renamed)),
        )
        clusters[c.name] = cluster
        endpoints[c.name] = ApiserverEndpoint(
            f"{c.name}-apiserver",
            ApiserverEndpointArgs(cluster_name=c.name, apiserver=c.apiserver, tencent_provider=tencent.get(c.region)),
            opts=pulumi.ResourceOptions(parent=cluster),
        )
    return clusters, endpoints


def _releases(
    settings: Settings, ca: SharedCa | ProvidedCa, ca_bundle: Any, guard: Any, clusters: Mapping[str, Cluster],
    endpoints: Mapping[str, ApiserverEndpoint], peers: Mapping[str, MeshPeers], records: pulumi.Output[Any],
) -> dict[str, CiliumRelease]:
    """Each cluster's Cilium release, with its peers and the mesh's non-masquerade CIDRs; its chart version and
    ``upgradeCompatibility`` from the chart records (``IdentityCheck.cilium``)."""
    masquerade = mesh_non_masquerade_cidrs(settings)
    releases: dict[str, CiliumRelease] = {}
    for c in settings.clusters:
        cluster, endpoint = clusters[c.name], endpoints[c.name]
        inputs = release_inputs(
            settings, c, masquerade=masquerade,
            # Waits for the identity guard: no release is sent before the check passed.
            cluster_id=guard.apply(_constant(c.id)),
            ca_cert_b64=ca.cert_b64, ca_key_b64=ca.key_b64, ca_bundle=ca_bundle,
            own_address=endpoint.address, existing_lb_id=endpoint.existing_lb_id, peers=peers[c.name].entries,
            k8s_service_host=cluster.k8s_service_host, k8s_service_port=cluster.k8s_service_port,
            upgrade_compatibility=records.apply(_first_installed(c.name)))
        releases[c.name] = CiliumRelease(
            f"{c.name}-cilium",
            CiliumReleaseArgs(
                inputs=inputs, cilium=settings.cilium_of(c), provider=cluster.provider,
                depends_on=cluster.release_dependencies,
                # A created cluster has no node until after its release: nothing could get ready.
                skip_await=c.create is not None, adopted=c.adopted is not None),
            opts=pulumi.ResourceOptions(parent=cluster),
        )
    return releases
