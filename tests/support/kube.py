"""Shared set-up for tests against the fake API server: RBAC from deploy/, seeding, clients."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from rotator.discover.files import load
from rotator.kube.api import KubeAPI, connect

ROOT = Path(__file__).resolve().parent.parent.parent
RBAC_KINDS = ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")


def render(overlay: str = "cronjob") -> list[dict[str, Any]]:
    """``kubectl kustomize deploy/overlays/<overlay>``, or the base files when kubectl is absent.

    The fallback reads the same files the base lists, so the RBAC under test is always
    the RBAC that ships; tests/test_deploy.py checks both give the same rules.
    """
    kubectl = shutil.which("kubectl")
    if kubectl:
        out = subprocess.run(
            [kubectl, "kustomize", str(ROOT / "deploy/overlays" / overlay)], capture_output=True, text=True, check=True
        ).stdout
        return [d for d in yaml.safe_load_all(out) if d]
    return base_files(overlay)


def base_files(overlay: str | None = None) -> list[dict[str, Any]]:
    """The files the base (and, given, an overlay) list: kustomize without kubectl, for our layout."""
    folders = [ROOT / "deploy/base"] + ([ROOT / "deploy/overlays" / overlay] if overlay else [])
    docs: list[dict[str, Any]] = []
    for folder in folders:
        kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
        for name in kustomization["resources"]:
            if not (folder / name).is_file():
                continue  # ../../base
            docs += [d for d in yaml.safe_load_all((folder / name).read_text()) if d]
    return docs


def deploy_rbac(extra_namespaces: tuple[str, ...] = (), overlay: str = "cronjob") -> list[dict[str, Any]]:
    """The shipped RBAC, plus the per-namespace Role/RoleBinding copied into more namespaces,
    exactly as docs/security.md tells users to do for each extra gateway namespace."""
    docs = [d for d in render(overlay) if d.get("kind") in RBAC_KINDS]
    namespaced = [d for d in docs if d["kind"] in ("Role", "RoleBinding")]
    for ns in extra_namespaces:
        for d in namespaced:
            clone = copy.deepcopy(d)
            clone["metadata"]["namespace"] = ns
            docs.append(clone)
    return docs


def seed(cluster: Any, *paths: str | Path) -> None:
    """Put manifests into the fake cluster; a Deployment becomes the Pod it would run."""
    loaded = load([str(p) for p in paths])
    assert not loaded.errors, loaded.errors
    for raw in loaded.objects:
        seed_object(cluster, raw.body)


def seed_object(cluster: Any, body: dict[str, Any]) -> None:
    body = copy.deepcopy(body)
    meta = body.setdefault("metadata", {})
    meta.setdefault("namespace", "default")
    if body.get("kind") in ("Deployment", "StatefulSet", "DaemonSet"):
        labels = ((body.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels", {})
        cluster.add(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"{meta['name']}-7d9f8-x2x4q", "namespace": meta["namespace"], "labels": labels},
                "spec": {"containers": [{"name": "istio-proxy", "image": "proxyv2"}]},
            }
        )
        return
    cluster.add(body)


def api(kubeconfig: Path, sleeps: list[float] | None = None) -> KubeAPI:
    """rotator's API seam on the fake cluster; retries 'sleep' into ``sleeps`` instantly."""
    record = sleeps if sleeps is not None else []
    return KubeAPI(connect(str(kubeconfig)), sleep=record.append)
