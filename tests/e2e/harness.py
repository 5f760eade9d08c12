"""The end-to-end suite's readers of what landed in the API servers (the workspace that runs
the real engine is ``tools.workspace``)."""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from tools import ROOT, periodic
from tools.workspace import CHART, Workspace


def plan_values(plan_dir: Path, cluster: str) -> dict[str, Any]:
    return yaml.safe_load((plan_dir / "values" / f"{cluster}.yaml").read_text(encoding="utf-8"))


def diagnostics(output: str) -> list[str]:
    """The lines of the Diagnostics section of a text `pulumi preview`/`up` (what stays on screen at the end)."""
    section = output.split("\nDiagnostics:\n", 1)[1]
    return [line.strip() for line in section.split("\n\n", 1)[0].splitlines()[1:]]


# -- reading the API servers ------------------------------------------------------------------


def core_api(kubeconfig: Path, context: str) -> Any:
    from kubernetes import client, config

    return client.CoreV1Api(config.new_client_from_config(str(kubeconfig), context=context))


def helm_releases(kubeconfig: Path, context: str, name: str = "cilium",
                  namespace: str = "kube-system") -> list[dict[str, Any]]:
    """Every revision Helm stored of release ``name`` (its ``sh.helm.release.v1`` Secrets), oldest first."""
    api = core_api(kubeconfig, context)
    secrets = api.list_namespaced_secret(namespace, label_selector=f"owner=helm,name={name}").items
    releases = []
    for s in secrets:
        raw = base64.b64decode(base64.b64decode(s.data["release"]))
        releases.append(json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw))
    return sorted(releases, key=lambda r: r["version"])


def deployed(kubeconfig: Path, context: str) -> dict[str, Any] | None:
    """The deployed revision of release cilium, or None."""
    live = [r for r in helm_releases(kubeconfig, context) if r["info"]["status"] == "deployed"]
    assert len(live) <= 1, [r["version"] for r in live]
    return live[0] if live else None


def secret_data(kubeconfig: Path, context: str, name: str, namespace: str = "kube-system") -> dict[str, str]:
    api = core_api(kubeconfig, context)
    s = api.read_namespaced_secret(name, namespace)
    return {k: base64.b64decode(v).decode() for k, v in (s.data or {}).items()}


def config_map(kubeconfig: Path, context: str, name: str, namespace: str = "kube-system") -> dict[str, str]:
    return dict(core_api(kubeconfig, context).read_namespaced_config_map(name, namespace).data or {})


@contextlib.contextmanager
def sampling(read: Callable[[], Any], on_sample: Callable[[Any], None], every: float,
             tolerated: tuple[type[BaseException], ...]) -> Iterator[None]:
    """While the block runs, ``read()`` every ``every`` seconds on a thread, and ``on_sample`` of what it read;
    a read that fails with one of ``tolerated`` (a status file half written, a server restarting) is skipped."""

    def sample() -> None:
        with contextlib.suppress(*tolerated):
            on_sample(read())

    with periodic.every(every, sample):
        yield


__all__ = ["ROOT", "Workspace", "diagnostics", "plan_values", "helm_releases", "deployed", "secret_data", "config_map", "CHART",
           "sampling"]
