"""Kubeconfig handling: where it is, which contexts it has, one context extracted.

Each cluster's Kubernetes provider receives a *minimal* kubeconfig holding only its own
context, cluster and user, with referenced certificate files inlined. So a provider
never carries other clusters' credentials, and editing an unrelated context in the
file changes no provider. The text is a secret from the moment the program reads it:
this module only returns it; the caller wraps it in ``pulumi.Output.secret``.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from meshcore import yamlio
from meshcore.errors import ConfigIssue

_FILE_FIELDS = {
    "cluster": (("certificate-authority", "certificate-authority-data"),),
    "user": (("client-certificate", "client-certificate-data"), ("client-key", "client-key-data")),
}


@dataclass(frozen=True)
class Kubeconfig:
    """A (possibly merged) kubeconfig, with the files it came from."""

    files: tuple[str, ...]
    contexts: Mapping[str, Mapping[str, Any]]
    clusters: Mapping[str, Mapping[str, Any]]
    users: Mapping[str, Mapping[str, Any]] = field(repr=False)
    """Credentials: never in a repr."""
    origin: Mapping[str, str]
    """Entry key ("cluster:<name>", "user:<name>") -> the file it was read from."""


OVERRIDE_ENV = "MESH_KUBECONFIG_FILE"
"""The environment variable that overrides ``mesh:kubeconfig`` for one run (the CI workflows set it)."""


@dataclass(frozen=True)
class KubeconfigSource:
    """Which kubeconfig file(s) a run reads, where that choice came from, and how to change it.

    Precedence, first that is set wins (README, "Which kubeconfig"):

    1. ``$MESH_KUBECONFIG_FILE``: one path, this run's override (CI writes the kubeconfig secret to
       a file and sets it). A variable only this program reads, so a ``$KUBECONFIG`` a shell
       exports for other work never overrides what the stack says;
    2. ``mesh:kubeconfig``: the stack's path (committed, usually a laptop path);
    3. ``$KUBECONFIG``: a path list, merged the way kubectl merges it;
    4. ``~/.kube/config``.
    """

    files: tuple[str, ...]
    key: str
    """The setting that chose the files: the key of an error about them."""
    origin: str
    """Where the files came from, for messages (``from mesh:kubeconfig``)."""
    change: str
    """How to read another kubeconfig instead, for messages."""

    def describe(self) -> str:
        """``<files> (<origin>)``: what every kubeconfig error starts with."""
        return f"{os.pathsep.join(self.files)} ({self.origin})"


def kubeconfig_files(configured: str | None, environ: Mapping[str, str]) -> KubeconfigSource:
    """The kubeconfig file(s) of this run: ``$MESH_KUBECONFIG_FILE``, else ``mesh:kubeconfig``,
    else ``$KUBECONFIG`` (a path list), else ``~/.kube/config``."""
    override = environ.get(OVERRIDE_ENV, "")
    if override:
        shadowed = f" (mesh:kubeconfig {configured} is not used)" if configured else ""
        return KubeconfigSource(
            (os.path.expanduser(override),), f"${OVERRIDE_ENV}",
            f"from ${OVERRIDE_ENV}, which overrides mesh:kubeconfig and $KUBECONFIG{shadowed}",
            f"point ${OVERRIDE_ENV} at the merged kubeconfig of the mesh clusters, or unset it to use "
            f"{'mesh:kubeconfig' if configured else '$KUBECONFIG or ~/.kube/config'}")
    if configured:
        return KubeconfigSource(
            (os.path.expanduser(configured),), "mesh:kubeconfig", "from the stack's mesh:kubeconfig",
            f"fix mesh:kubeconfig (pulumi config set mesh:kubeconfig PATH), or set ${OVERRIDE_ENV}=PATH for this "
            "run (the CI workflows do)")
    env = environ.get("KUBECONFIG", "")
    paths = tuple(os.path.expanduser(p) for p in env.split(os.pathsep) if p)
    if paths:
        return KubeconfigSource(
            paths, "$KUBECONFIG", "from $KUBECONFIG: the stack sets no mesh:kubeconfig",
            f"fix $KUBECONFIG, or set mesh:kubeconfig (or ${OVERRIDE_ENV} for this run), which take precedence")
    return KubeconfigSource(
        (os.path.expanduser("~/.kube/config"),), "mesh:kubeconfig",
        f"the default: neither ${OVERRIDE_ENV}, mesh:kubeconfig nor $KUBECONFIG is set",
        f"set mesh:kubeconfig, $KUBECONFIG, or ${OVERRIDE_ENV} for this run")


def parse_problem(err: Exception) -> str:
    """What is wrong with a kubeconfig file, without its text: PyYAML's messages quote the lines
    around the problem, and a kubeconfig's lines are tokens, keys and certificates."""
    if isinstance(err, yaml.MarkedYAMLError):
        mark = err.problem_mark or err.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        return f"not valid YAML: {err.problem or err.context or 'unreadable'}{where}"
    if isinstance(err, yaml.YAMLError):
        return "not valid YAML"
    return str(err)  # our own messages (load), which name no content


def load(files: Sequence[str], read: Callable[[str], str]) -> Kubeconfig:
    """Merge kubeconfig files the way kubectl does: the first file that names an entry wins."""
    contexts: dict[str, Any] = {}
    clusters: dict[str, Any] = {}
    users: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for path in files:
        doc = yamlio.safe_load(read(path)) or {}
        if not isinstance(doc, dict):
            raise ValueError(f"{path} is not a kubeconfig (expected a mapping)")
        for section, target, kind in (("contexts", contexts, "context"), ("clusters", clusters, "cluster"),
                                      ("users", users, "user")):
            for item in doc.get(section) or []:
                if isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"] not in target:
                    target[item["name"]] = item.get(kind) or {}
                    origin[f"{kind}:{item['name']}"] = path
    return Kubeconfig(tuple(files), contexts, clusters, users, origin)


def check_contexts(kc: Kubeconfig, wanted: Sequence[tuple[str, str]],
                   source: KubeconfigSource | None = None) -> list[ConfigIssue]:
    """An issue for every (config key, context) whose context, cluster or user is missing;
    each names the file(s) read and, given ``source``, where they came from and how to change it."""
    issues = []
    where = source.describe() if source is not None else os.pathsep.join(kc.files)
    other = f"; or read another kubeconfig: {source.change}" if source is not None else ""
    have = ", ".join(sorted(kc.contexts)) or "none"
    for key, name in wanted:
        ctx = kc.contexts.get(name)
        if ctx is None:
            issues.append(ConfigIssue(
                key,
                f"context '{name}' is not in the kubeconfig {where}; its contexts: {have}; merge the cluster's "
                f"kubeconfig with a context named after the TKE cluster ID, or set the entry's context{other}",
            ))
            continue
        for kind, table in (("cluster", kc.clusters), ("user", kc.users)):
            ref = ctx.get(kind)
            if ref not in table:
                issues.append(ConfigIssue(key, f"context '{name}' refers to {kind} '{ref}', which is not in the "
                                               f"kubeconfig {where}; fix the kubeconfig{other}"))
    return issues


def minimal(kc: Kubeconfig, context: str, read_bytes: Callable[[str], bytes]) -> str:
    """A self-contained kubeconfig for one context (like ``kubectl config view --minify --flatten``)."""
    ctx = dict(kc.contexts[context])
    cluster_name, user_name = ctx["cluster"], ctx["user"]
    entries = {"cluster": dict(kc.clusters[cluster_name]), "user": dict(kc.users[user_name])}
    for kind, entry in entries.items():
        name = cluster_name if kind == "cluster" else user_name
        base = os.path.dirname(kc.origin.get(f"{kind}:{name}", ""))
        for file_field, data_field in _FILE_FIELDS[kind]:
            path = entry.pop(file_field, None)
            if path and data_field not in entry:
                full = path if os.path.isabs(path) else os.path.join(base, path)
                entry[data_field] = base64.b64encode(read_bytes(full)).decode()
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": context,
        "contexts": [{"name": context, "context": ctx}],
        "clusters": [{"name": cluster_name, "cluster": entries["cluster"]}],
        "users": [{"name": user_name, "user": entries["user"]}],
    }
    return yaml.safe_dump(doc, sort_keys=True)


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


@dataclass(frozen=True)
class MinimalKubeconfigs:
    """What ``minimal_kubeconfigs`` read: the usable clusters' kubeconfigs and every problem."""

    configs: Mapping[str, str] = field(repr=False)
    """Cluster name -> its minimal kubeconfig text (a secret: never print or log it, nor in a repr)."""
    issues: tuple[ConfigIssue, ...]
    """Every problem, in order; the file's own problem (unreadable, invalid) is the only one then."""
    by_cluster: Mapping[str, tuple[ConfigIssue, ...]]
    """Cluster name -> the problems with its context or the files it references."""


def minimal_kubeconfigs(source: KubeconfigSource, wanted: Sequence[tuple[str, str, str]],
                        read_text: Callable[[str], str] = _read_text,
                        read_bytes: Callable[[str], bytes] = _read_bytes) -> MinimalKubeconfigs:
    """Each wanted cluster's minimal kubeconfig, and every problem, in the program's words.

    ``wanted``: (cluster name, config key, context). A file that cannot be read or parsed is one
    issue keyed ``source.key`` (and no kubeconfig at all); else each context that is missing or
    broken is an issue keyed by its config key, and a file a context references that cannot be
    read one keyed ``source.key``. The program fails on any issue; the mesh doctor
    (tools/doctor.py) reports a cluster without a usable context and checks the others.
    """
    try:
        config = load(source.files, read_text)
    except OSError as err:
        message = f"cannot read kubeconfig {err.filename} ({source.origin}): {err.strerror}; {source.change}"
        return MinimalKubeconfigs({}, (ConfigIssue(source.key, message),), {})
    except (ValueError, yaml.YAMLError) as err:
        return MinimalKubeconfigs({}, (ConfigIssue(source.key, f"invalid kubeconfig {source.describe()}: "
                                                               f"{parse_problem(err)}; {source.change}"),), {})
    configs: dict[str, str] = {}
    by_cluster: dict[str, tuple[ConfigIssue, ...]] = {}
    for name, key, context in wanted:
        problems = [replace(p, cluster=name) for p in check_contexts(config, [(key, context)], source)]
        if not problems:
            try:
                configs[name] = minimal(config, context, read_bytes)
            except OSError as err:
                problems = [ConfigIssue(source.key, f"cannot read {err.filename}, referenced by kubeconfig "
                                                    f"{source.describe()}: {err.strerror}")]
        if problems:
            by_cluster[name] = tuple(problems)
    return MinimalKubeconfigs(configs, tuple(i for p in by_cluster.values() for i in p), by_cluster)
