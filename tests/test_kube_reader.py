"""Reading a live cluster through the real kubernetes client and the fake API server."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from rotator.cli import main
from rotator.discover.cluster import read_cluster
from rotator.kube.api import ApiError
from tests.support import factory as f
from tests.support import kube
from tests.support.fakeapi import FakeCluster

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_NAMESPACES = ("partner-ingress", "certs", "admin")


def cli_json(*args: str) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    code = main(["check", "--dry-run", "-o", "json", "--log-level", "error", *args], stdout=out)
    return code, json.loads(out.getvalue()) if out.getvalue() else {}


@pytest.fixture
def examples_cluster(tmp_path: Path) -> Any:
    with FakeCluster(rbac_manifests=kube.deploy_rbac(EXAMPLE_NAMESPACES)) as cluster:
        kube.seed(cluster, ROOT / "examples")
        yield cluster, cluster.kubeconfig(tmp_path / "kubeconfig")


def test_live_dry_run_equals_the_same_objects_as_files(examples_cluster: Any) -> None:
    cluster, kubeconfig = examples_cluster
    common = ("--config", str(ROOT / "config/rotator.yaml"), "--at", "2026-12-01")
    code_files, files = cli_json("-f", str(ROOT / "examples"), *common)
    code_live, live = cli_json("--kubeconfig", str(kubeconfig), *common)
    assert code_live == code_files == 2
    assert live["credentials"] == files["credentials"]
    assert live["findings"] == files["findings"]
    assert live["summary"] == files["summary"]
    assert cluster.denied() == []


def test_reads_only_what_matters(tmp_path: Path) -> None:
    """Referenced Secrets only, in the namespaces that need them; LIST where it beats GETs."""
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as cluster:
        kube.seed_object(cluster, f.ingress())
        for i in range(30):
            kube.seed_object(cluster, f.gateway(f"gw{i}", [f.server([f"h{i}.example.com"], f"tls-{i}")]))
            kube.seed_object(cluster, f.secret(f"tls-{i}", leaf=f.make_leaf([f"h{i}.example.com"])))
        for i in range(300):  # unrelated Secrets next to them
            kube.seed_object(cluster, f.secret(f"other-{i}", data={"k": b"v"}, type_="Opaque"))
        for i in range(500):  # and elsewhere
            kube.seed_object(cluster, f.secret(f"app-{i}", namespace="apps", data={"k": b"v"}, type_="Opaque"))
        api = kube.api(cluster.kubeconfig(tmp_path / "kc"))
        result = read_cluster(api)
        assert len(result.inventory.secrets) == 30
        secret_requests = [r for r in cluster.requests if r.resource == "secrets"]
        assert all(r.namespace == "istio-system" for r in secret_requests), "read Secrets outside gateway namespaces"
        assert all(r.verb == "list" for r in secret_requests)  # 30 names: a paginated LIST beats 30 GETs
        assert len(secret_requests) <= 3  # probe + 1 page of 500
        assert api.stats.requests == len(cluster.requests) <= 12  # O(kinds × namespaces), not O(objects)
        assert cluster.denied() == []


def test_few_referenced_secrets_are_fetched_by_get(tmp_path: Path) -> None:
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as cluster:
        kube.seed_object(cluster, f.ingress())
        kube.seed_object(cluster, f.gateway("gw", [f.server(["a.example.com"], "tls-a")]))
        kube.seed_object(cluster, f.secret("tls-a", leaf=f.make_leaf(["a.example.com"])))
        for i in range(2000):
            kube.seed_object(cluster, f.secret(f"other-{i}", data={"k": b"v"}, type_="Opaque"))
        api = kube.api(cluster.kubeconfig(tmp_path / "kc"))
        result = read_cluster(api)
        assert [s.name for s in result.inventory.secrets] == ["tls-a"]
        secret_requests = [(r.verb, r.name) for r in cluster.requests if r.resource == "secrets"]
        assert secret_requests == [("get", "tls-a")]


def test_missing_crds_are_normal(tmp_path: Path) -> None:
    with FakeCluster(rbac_manifests=kube.deploy_rbac(("web",)), disabled_groups={"networking.istio.io"}) as cluster:
        kube.seed_object(
            cluster, f.kube_gateway("web", "web", [f.listener("https", "www.example.net", [{"name": "web-tls"}])])
        )
        kube.seed_object(cluster, f.secret("web-tls", namespace="web", leaf=f.make_leaf(["www.example.net"])))
        code, doc = cli_json("--kubeconfig", str(cluster.kubeconfig(tmp_path / "kc")), "--at", "2026-06-01")
        assert code == 0
        assert [(c["namespace"], c["name"], c["state"]) for c in doc["credentials"]] == [("web", "web-tls", "ok")]
        assert not any("/apis/networking.istio.io" in r.path for r in cluster.requests if r.status == 200)
    with FakeCluster(disabled_groups={"networking.istio.io", "gateway.networking.k8s.io"}) as cluster:
        code, doc = cli_json("--kubeconfig", str(cluster.kubeconfig(tmp_path / "kc2")))
        assert code == 1
        assert [x["code"] for x in doc["findings"]] == ["no-gateways"]


def test_refused_namespace_is_reported_and_the_others_checked(tmp_path: Path) -> None:
    """Only istio-system has the Secret Role: Secrets elsewhere say access-denied, with the verb."""
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as cluster:
        kube.seed(cluster, ROOT / "examples")
        code, doc = cli_json("--kubeconfig", str(cluster.kubeconfig(tmp_path / "kc")), "--at", "2026-12-01")
    creds = {(c["namespace"], c["name"]): c for c in doc["credentials"]}
    web = creds[("certs", "web-tls")]
    assert web["state"] == "invalid"  # it exists (the API said forbidden, not not-found): never "missing"
    assert web["action"] == "skip" and "may not read the Secret" in web["reason"]  # nothing is ordered for it
    (denied,) = [x for x in web["findings"] if x["code"] == "access-denied"]
    assert "forbidden" in denied["message"] and "'get'" in denied["message"] and "'certs'" in denied["message"]
    assert creds[("istio-system", "api-tls-secret")]["state"] == "due"
    assert code == 2


def test_cluster_wide_refusal_exits_unknown_naming_verb_and_resource(tmp_path: Path, capsys: Any) -> None:
    rbac = kube.deploy_rbac()
    for d in rbac:
        if d["kind"] == "ClusterRole":
            d["rules"] = [r for r in d["rules"] if "pods" not in r["resources"]]
    with FakeCluster(rbac_manifests=rbac) as cluster:
        kube.seed(cluster, ROOT / "examples")
        code, _ = cli_json("--kubeconfig", str(cluster.kubeconfig(tmp_path / "kc")))
    err = capsys.readouterr().err
    assert code == 3
    assert "list" in err and "pods" in err and "forbidden" in err


def test_transient_errors_are_retried_with_backoff(tmp_path: Path) -> None:
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as cluster:
        kube.seed(cluster, ROOT / "examples/seed", ROOT / "examples/cluster/workloads.yaml")
        sleeps: list[float] = []
        api = kube.api(cluster.kubeconfig(tmp_path / "kc"), sleeps)
        cluster.fault(path_contains="/gateways", status=500, times=1)
        cluster.fault(resource="pods", drop_connection=True, times=1)
        cluster.fault(resource="virtualservices", status=429, retry_after=7, times=1)
        result = read_cluster(api)
        assert {g.name for g in result.inventory.istio_gateways} == {"api-gateway", "mtls-gateway"}
        assert api.stats.retries == 3
        assert 7.0 in sleeps  # Retry-After honoured, without waiting for real
        assert all(0 <= s <= api.retry.cap for s in sleeps if s != 7.0)


def test_retries_are_bounded(tmp_path: Path) -> None:
    with FakeCluster() as cluster:
        sleeps: list[float] = []
        api = kube.api(cluster.kubeconfig(tmp_path / "kc"), sleeps)
        cluster.fault(path_contains="/apis", status=503, times=50)
        with pytest.raises(ApiError) as info:
            read_cluster(api)
        assert info.value.status == 503
        assert len(sleeps) == api.retry.attempts - 1
        assert len([r for r in cluster.requests if r.path == "/apis"]) == api.retry.attempts


def test_not_found_and_client_errors_are_not_retried(tmp_path: Path) -> None:
    with FakeCluster() as cluster:
        api = kube.api(cluster.kubeconfig(tmp_path / "kc"))
        from rotator.kube.api import SECRETS

        assert api.get(SECRETS, "istio-system", "nope") is None
        cluster.fault(resource="secrets", status=403, times=1)
        with pytest.raises(ApiError) as info:
            api.get(SECRETS, "istio-system", "x")
        assert info.value.status == 403 and api.stats.retries == 0


def test_client_configuration_prefers_explicit_then_in_cluster_then_kubeconfig(
    tmp_path: Path, monkeypatch: Any
) -> None:
    import kubernetes.config

    from rotator.kube.api import connect

    calls: list[str] = []
    monkeypatch.setattr(kubernetes.config, "load_incluster_config", lambda **_k: calls.append("in-cluster"))
    monkeypatch.setattr(kubernetes.config, "load_kube_config", lambda **k: calls.append(f"kubeconfig:{k['context']}"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    connect()
    connect(context="prod")  # an explicit --context wins even inside a pod
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    connect()
    assert calls == ["in-cluster", "kubeconfig:prod", "kubeconfig:None"]
    with FakeCluster() as cluster:  # and the real thing works against a real kubeconfig file
        monkeypatch.undo()
        client = connect(str(cluster.kubeconfig(tmp_path / "kc")))
        assert client.configuration.host == cluster.url


def test_gateway_selectors_share_one_pod_list_per_label_key(tmp_path: Path) -> None:
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as cluster:
        for i in range(40):
            kube.seed_object(cluster, f.deployment(f"gw-{i}", "istio-system", {"istio": f"gw{i}"}))
            kube.seed_object(
                cluster, f.gateway(f"g{i}", [f.server([f"h{i}.example.com"], f"s{i}")], selector={"istio": f"gw{i}"})
            )
        api = kube.api(cluster.kubeconfig(tmp_path / "kc"))
        result = read_cluster(api)
        assert len(result.inventory.workloads) == 40
        assert len([r for r in cluster.requests if r.resource == "pods"]) == 1


def test_an_unparsable_selector_is_a_finding_not_a_failed_read(tmp_path: Path) -> None:
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as cluster:
        kube.seed(cluster, ROOT / "examples/seed", ROOT / "examples/cluster/workloads.yaml")
        kube.seed_object(
            cluster,
            f.gateway("odd", [f.server(["odd.example.com"], "odd-tls")], namespace="apps", selector={"app": "a b"}),
        )
        code, doc = cli_json("--kubeconfig", str(cluster.kubeconfig(tmp_path / "kc")))
    assert code == 2
    assert any(x["code"] == "invalid-manifest" and "apps/odd" in x["message"] for x in doc["findings"])
    assert any(c["name"] == "api-tls-secret" for c in doc["credentials"])


def test_get_without_list_still_reads_every_secret(tmp_path: Path) -> None:
    rbac = kube.deploy_rbac()
    for d in rbac:
        if d["kind"] == "Role":
            for rule in d["rules"]:
                if "secrets" in rule["resources"]:
                    rule["verbs"] = [v for v in rule["verbs"] if v != "list"]
    with FakeCluster(rbac_manifests=rbac) as cluster:
        kube.seed_object(cluster, f.ingress())
        for i in range(5):
            kube.seed_object(cluster, f.gateway(f"g{i}", [f.server([f"h{i}.example.com"], f"s{i}")]))
            kube.seed_object(cluster, f.secret(f"s{i}", leaf=f.make_leaf([f"h{i}.example.com"])))
        result = read_cluster(kube.api(cluster.kubeconfig(tmp_path / "kc")))
        assert len(result.inventory.secrets) == 5 and result.inventory.unreadable == {}


def test_list_and_get_paths_report_ignored_secret_types_alike(tmp_path: Path) -> None:
    """A referenced Secret of a type istiod never reads says so, whichever read path found it."""
    with FakeCluster() as cluster:
        kube.seed_object(cluster, f.ingress())
        for i in range(4):
            kube.seed_object(cluster, f.gateway(f"g{i}", [f.server([f"h{i}.example.com"], f"s{i}")]))
        kube.seed_object(cluster, f.secret("s0", type_="kubernetes.io/service-account-token", data={"token": b"x"}))
        result = read_cluster(kube.api(cluster.kubeconfig(tmp_path / "kc")), page_size=2)
        assert any(
            r.verb == "list" and r.resource == "secrets" and r.query.get("fieldSelector") for r in cluster.requests
        )
        assert [s.name for s in result.inventory.secrets] == ["s0"]


def test_what_to_read_is_discovery_s_decision_as_plain_data() -> None:
    """secrets_to_read is pure: the names Istio may read, <name>-cacert beside a client CA,
    and the Gateway's own namespace as the fallback for a missing server Secret."""
    from rotator.discover.cluster import secrets_to_read
    from rotator.model import CredentialSpec, Reference

    def ref(ns: str, group: str = "networking.istio.io") -> Reference:
        return Reference(group, "Gateway", ns, "gw", "https", 443, "SIMPLE", ("a.example.com",))

    specs = [
        CredentialSpec("Secret", "istio-system", "app-tls", "server", (ref("apps"),)),
        CredentialSpec("Secret", "istio-system", "mtls", "client-ca", (ref("apps"),)),
        CredentialSpec("Secret", "edge", "gw-tls", "server", (ref("edge", "gateway.networking.k8s.io"),)),
        CredentialSpec("ConfigMap", "istio-system", "ca-bundle", "client-ca", (ref("apps"),)),
    ]
    wanted = secrets_to_read(specs)
    assert wanted.secrets == {
        "istio-system": frozenset({"app-tls", "mtls", "mtls-cacert"}),
        "edge": frozenset({"gw-tls"}),
    }
    assert wanted.config_maps == frozenset({("istio-system", "ca-bundle")})
    assert wanted.fallbacks == (("istio-system", "app-tls", ("apps",)),)
