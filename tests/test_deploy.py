"""deploy/: renders, validates offline against Kubernetes schemas, and stays least-privilege."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import kube

ROOT = Path(__file__).resolve().parent.parent
OVERLAYS = ("cronjob", "daemon")
KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl (with built-in kustomize) is not installed")


def validate(docs: list[dict[str, Any]], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    exe = Path(sys.executable).parent / "kubernetes-validate"
    return subprocess.run([str(exe), "--strict", "-k", "1.32.0", "--quiet", str(path)], capture_output=True, text=True)


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_validates_strictly(overlay: str, tmp_path: Path) -> None:
    docs = kube.render(overlay)
    kinds = sorted(d["kind"] for d in docs)
    assert {
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "ConfigMap",
    } <= set(kinds)
    assert ("CronJob" if overlay == "cronjob" else "Deployment") in kinds
    p = validate(docs, tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr


def test_base_files_validate_strictly_without_kubectl(tmp_path: Path) -> None:
    docs = kube.base_files()
    for overlay in OVERLAYS:
        workload = ROOT / "deploy/overlays" / overlay / ("cronjob.yaml" if overlay == "cronjob" else "deployment.yaml")
        docs += [d for d in yaml.safe_load_all(workload.read_text()) if d]
    p = validate(docs, tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr


def test_strict_validation_catches_a_typo(tmp_path: Path) -> None:
    """The gate above can fail: an unknown field is rejected."""
    bad = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "x", "namespace": "y"},
            "automountServiceAcountToken": True,
        }
    ]
    assert validate(bad, tmp_path).returncode != 0


@needs_kubectl
def test_fallback_rbac_equals_rendered_rbac() -> None:
    """Tests without kubectl read the base files; they must mean the same RBAC as the render."""

    def rules(docs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
        return sorted(
            (d["kind"], d["metadata"].get("namespace", ""), yaml.safe_dump(d.get("rules") or d.get("subjects")))
            for d in docs
            if d["kind"] in kube.RBAC_KINDS
        )

    assert rules(kube.render("cronjob")) == rules(kube.base_files())


def pod_specs(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for d in docs:
        if d["kind"] == "CronJob":
            out.append(d["spec"]["jobTemplate"]["spec"]["template"]["spec"])
        elif d["kind"] == "Deployment":
            out.append(d["spec"]["template"]["spec"])
    return out


def all_docs() -> list[dict[str, Any]]:
    docs = kube.base_files()
    for overlay, file in (("cronjob", "cronjob.yaml"), ("daemon", "deployment.yaml")):
        docs += [d for d in yaml.safe_load_all((ROOT / "deploy/overlays" / overlay / file).read_text()) if d]
    return docs


def test_pods_meet_the_restricted_pod_security_profile() -> None:
    specs = pod_specs(all_docs())
    assert len(specs) == 2
    for spec in specs:
        assert spec["serviceAccountName"] == "rotator"
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 10001
        assert psc["seccompProfile"]["type"] == "RuntimeDefault"
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
            # a read-only root needs a writable /tmp
            assert any(m["mountPath"] == "/tmp" for m in c["volumeMounts"])


def test_cronjob_never_overlaps_and_keeps_bounded_history() -> None:
    (cron,) = [d for d in all_docs() if d["kind"] == "CronJob"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["successfulJobsHistoryLimit"] <= 5 and cron["spec"]["failedJobsHistoryLimit"] <= 5
    assert cron["spec"]["jobTemplate"]["spec"]["backoffLimit"] <= 2


def test_secrets_are_only_reachable_through_namespaced_roles() -> None:
    docs = all_docs()
    for d in docs:
        if d["kind"] == "ClusterRole":
            for rule in d["rules"]:
                assert "secrets" not in rule["resources"], "no cluster-wide Secret access"
                assert set(rule["verbs"]) <= {"get", "list"}, "cluster-wide access is read-only"
                assert "*" not in rule["resources"] and "*" not in rule["verbs"]
    roles = [d for d in docs if d["kind"] == "Role"]
    own = {d["metadata"]["name"]: d for d in roles if d["metadata"]["namespace"] == "rotator"}
    assert sorted(own) == ["rotator-leader", "rotator-self"]
    assert own["rotator-leader"]["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}
    ]
    for rule in own["rotator-self"]["rules"]:  # its own namespace: state, issuer credentials, HTTP-01 routes
        if rule["resources"] == ["virtualservices"]:
            assert set(rule["verbs"]) == {"create", "delete"}
            continue
        assert set(rule["verbs"]) <= {"get", "create", "update"}
        assert "update" not in rule["verbs"] or rule["resources"] == ["configmaps"]
    for role in roles:
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] and "watch" not in rule["verbs"] and "patch" not in rule["verbs"]


def test_the_cronjob_runs_a_command_rotator_has() -> None:
    """The shipped args must parse: a typo here is a Job failing every six hours."""
    from rotator.cli import build_parser

    (cron,) = [d for d in all_docs() if d["kind"] == "CronJob"]
    (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    args = build_parser().parse_args(container["args"])
    assert args.command == "check" and args.exit_codes == "job" and not args.dry_run


def test_the_shipped_config_is_the_documented_example() -> None:
    """deploy/base/rotator.yaml (the ConfigMap) is config/rotator.yaml: one file, never two."""
    from rotator.config.load import load_config

    assert (ROOT / "deploy/base/rotator.yaml").read_text() == (ROOT / "config/rotator.yaml").read_text()
    load_config(str(ROOT / "deploy/base/rotator.yaml"), environ={})
