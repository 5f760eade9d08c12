"""``python -m tools.localmesh mesh-status``: per cluster of a local mesh's control plane, its processes and each
remote cluster its kvstoremesh knows, and, for one that does not connect, why (``kvstoremesh-dbg troubleshoot``'s
first failed check)."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tools import toolchain
from tools.cpstate import API_PORT, ControlPlane, Member, in_pod
from tools.localstate import alive


def remote_clusters(m: Member, timeout: float = 3.0) -> list[dict[str, Any]]:
    """The kvstoremesh API's ``GET /v1/cluster`` (what ``kvstoremesh-dbg status`` prints)."""
    url = f"http://{m.address}:{API_PORT}/v1/cluster"
    with urllib.request.urlopen(url, timeout=timeout) as r:
        out: list[dict[str, Any]] = json.loads(r.read())
    return out


FAILED = "\u274c"
"""The mark ``troubleshoot`` puts before a failed check."""
TROUBLESHOOT_TIMEOUT = "3s"
"""``kvstoremesh-dbg troubleshoot``'s timeout per etcd (its default is 5 s)."""


LOCAL = ""
"""``troubleshoot_reasons``' key for the pod's own etcd."""


def troubleshoot(cp: ControlPlane, name: str, remotes: list[str], local: bool) -> subprocess.Popen[str]:
    """``kvstoremesh-dbg troubleshoot <remotes>`` in cluster ``name``'s pod (what ``kubectl exec`` into the
    kvstoremesh container runs): it reads the pod's peer files, and dials and handshakes each peer's etcd;
    ``local``: the pod's own etcd first, as kvstoremesh reaches it (``--include-local``)."""
    m = cp.clusters[name]
    return subprocess.Popen(
        in_pod(cp.root / name, [str(toolchain.require() / "bin" / m.binary),
                                 "kvstoremesh-dbg", "troubleshoot", "--clustermesh-config",
                                 "/var/lib/cilium/clustermesh/", "--etcd-config", "/var/lib/cilium/etcd-config.yaml",
                                 "--timeout", TROUBLESHOOT_TIMEOUT, *(["--include-local"] if local else []),
                                 *remotes]),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)


def troubleshoot_reasons(output: str) -> dict[str, str]:
    """Per remote cluster of a ``troubleshoot`` output (``LOCAL``: the pod's own etcd), its first failed check
    (a line marked ❌, the mark dropped): why it does not connect, as Cilium's own tool says it."""
    out: dict[str, str] = {}
    cluster = None
    for line in output.splitlines():
        if line.startswith("Local etcd kvstore:"):
            cluster = LOCAL
        elif line.startswith('Cluster "') and line.rstrip().endswith('":'):
            cluster = line.strip()[len('Cluster "'):-2]
        elif cluster is not None and cluster not in out and FAILED in line:
            out[cluster] = line.split(FAILED, 1)[1].strip()
    return out


def mesh_status(dir_: Path) -> dict[str, Any]:
    """Per cluster: its processes, and each remote cluster its kvstoremesh knows (connected, synced, last error);
    for a remote that is not connected and ready, ``reason``: the first check ``kvstoremesh-dbg troubleshoot``
    fails (kvstoremesh's own status only says it is still waiting for the connection)."""
    cp = ControlPlane.load(dir_)
    out: dict[str, Any] = {}
    for name, m in sorted(cp.clusters.items()):
        entry: dict[str, Any] = {"address": f"{m.address}:{m.port}", "version": m.version,
                                 "processes": {k: {"pid": p, "running": alive(p)} for k, p in m.pids().items()},
                                 "remotes": {}, "error": None, "reason": None}
        try:
            remotes = remote_clusters(m)
        except (OSError, urllib.error.URLError, ValueError) as err:
            entry["error"] = f"kvstoremesh API {m.address}:{API_PORT}: {err}"
            remotes = []
        for r in remotes:
            synced = r.get("synced") or {}
            entry["remotes"][r["name"]] = {
                "connected": bool(r.get("connected")),
                "ready": bool(r.get("ready")),
                "synced": bool(synced) and all(bool(v) for k, v in synced.items() if k != "service-exports"),
                "status": r.get("status", ""),
                "failures": r.get("num-failures", 0),
                "lastError": _last_error(r),
                "reason": None,
            }
        out[name] = entry
    checks = {}
    for name, entry in out.items():
        failing = sorted(r for r, s in entry["remotes"].items() if not (s["connected"] and s["ready"]))
        # Its API down while it runs: kvstoremesh serves it once it reached its own etcd.
        local = entry["error"] is not None
        if (failing or local) and alive(cp.clusters[name].kvstoremesh_pid):
            checks[name] = troubleshoot(cp, name, failing, local)
    for name, proc in checks.items():
        try:
            text, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            text, _ = proc.communicate()
        for remote, reason in troubleshoot_reasons(text).items():
            if remote == LOCAL:
                out[name]["reason"] = f"its own etcd: {reason}"
            elif remote in out[name]["remotes"]:
                out[name]["remotes"][remote]["reason"] = reason
    return out


def _last_error(remote: dict[str, Any]) -> str | None:
    if remote.get("connected") and remote.get("ready"):
        return None
    return remote.get("status") or None


def status_lines(status: dict[str, Any]) -> list[str]:
    """``mesh_status`` as text: a line per cluster, one per remote cluster it knows."""
    lines = []
    for name, entry in status.items():
        error = (f": {entry['error']}" if entry["error"] else "") + \
            (f"; troubleshoot: {entry['reason']}" if entry["reason"] else "")
        lines.append(f"{name} ({entry['address']}, {entry['version']}){error}")
        for remote, r in sorted(entry["remotes"].items()):
            state = ("connected" if r["connected"] else "disconnected") + \
                (", synced" if r["synced"] else ", not synced")
            lines.append(f"  {remote:16} {state}" + (f"; last error: {r['lastError']}" if r["lastError"] else "")
                         + (f"; troubleshoot: {r['reason']}" if r["reason"] else ""))
    return lines
