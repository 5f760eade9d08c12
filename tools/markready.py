"""The controllers a local mesh has not: ``python -m tools.localmesh assign-vips`` (TKE's load balancer
controller's part) and ``mark-ready`` (that, the Job controller's for certgen's Jobs, ``tools.certgen``, and the
Deployment and DaemonSet controllers' and the kubelets')."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from tools.certgen import run_certgen_jobs
from tools.localstate import Mesh


def mark_workloads_ready(dir_: Path, nodes: int = 1) -> list[str]:
    """Report every Deployment and DaemonSet of every API server ready, through their status subresource, as
    their controllers would once the kubelets ran the pods: a Deployment's ``spec.replicas`` (default 1) pods
    ready, available and up to date (condition ``Available``); a DaemonSet's pod on each of ``nodes`` nodes."""
    from kubernetes import client, config

    mesh = Mesh.load(dir_)
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    done = []
    for m in mesh.clusters:
        apps = client.AppsV1Api(config.new_client_from_config(str(mesh.path / "kubeconfig"), context=m.name))
        for d in apps.list_deployment_for_all_namespaces().items:
            n = d.spec.replicas if d.spec.replicas is not None else 1
            reason = {"Available": ("MinimumReplicasAvailable", "Deployment has minimum availability."),
                      "Progressing": ("NewReplicaSetAvailable", f'ReplicaSet "{d.metadata.name}" has successfully '
                                                                 "progressed.")}
            apps.patch_namespaced_deployment_status(d.metadata.name, d.metadata.namespace, {"status": {
                "observedGeneration": d.metadata.generation, "replicas": n, "updatedReplicas": n,
                "readyReplicas": n, "availableReplicas": n, "unavailableReplicas": None,
                "conditions": [{"type": t, "status": "True", "reason": r, "message": msg, "lastUpdateTime": now,
                                "lastTransitionTime": now} for t, (r, msg) in reason.items()]}})
            done.append(f"{m.name}: Deployment {d.metadata.namespace}/{d.metadata.name} {n}/{n} ready")
        for ds in apps.list_daemon_set_for_all_namespaces().items:
            apps.patch_namespaced_daemon_set_status(ds.metadata.name, ds.metadata.namespace, {"status": {
                "observedGeneration": ds.metadata.generation, "desiredNumberScheduled": nodes,
                "currentNumberScheduled": nodes, "updatedNumberScheduled": nodes, "numberReady": nodes,
                "numberAvailable": nodes, "numberMisscheduled": 0, "numberUnavailable": None}})
            done.append(f"{m.name}: DaemonSet {ds.metadata.namespace}/{ds.metadata.name} {nodes}/{nodes} ready")
    return done


def mark_ready(dir_: Path, nodes: int = 1) -> list[str]:
    """What the missing controllers would have done by now: the VIPs assigned (``assign_vips``), every certgen Job
    run and complete (``tools.certgen``) and every Deployment and DaemonSet ready (``mark_workloads_ready``)."""
    return assign_vips(dir_) + run_certgen_jobs(dir_) + mark_workloads_ready(dir_, nodes)


def assign_vips(dir_: Path) -> list[str]:
    """Do what TKE's load balancer controller does for the mesh's Services: give every
    LoadBalancer Service that requests a VIP (service.extensiveParameters {"Vip": ...}) that
    address in ``status.loadBalancer.ingress``."""
    from kubernetes import client, config

    from meshcore.chart.values import EXTENSIVE_PARAMETERS_ANNOTATION

    mesh = Mesh.load(dir_)
    done = []
    for m in mesh.clusters:
        api = client.CoreV1Api(config.new_client_from_config(str(mesh.path / "kubeconfig"), context=m.name))
        for svc in api.list_service_for_all_namespaces().items:
            if svc.spec.type != "LoadBalancer":
                continue
            params = (svc.metadata.annotations or {}).get(EXTENSIVE_PARAMETERS_ANNOTATION)
            try:
                vip = json.loads(params)["Vip"] if params else None
            except (ValueError, KeyError, TypeError):
                vip = None
            if not vip:
                continue
            api.patch_namespaced_service_status(svc.metadata.name, svc.metadata.namespace,
                                                {"status": {"loadBalancer": {"ingress": [{"ip": vip}]}}})
            done.append(f"{m.name}: {svc.metadata.namespace}/{svc.metadata.name} -> {vip}")
    return done
