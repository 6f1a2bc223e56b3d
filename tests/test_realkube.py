"""rotator against a real kube-apiserver (built from k8s.io/kubernetes) and etcd.

deploy/ is applied for real, and rotator runs as the ServiceAccount it creates, with a
real signed token, under the real RBAC authorizer. The audit log records every request
of that identity: the suite proves from it that rotator's normal paths are never refused
and which of deploy/'s rules they use. ``tests/support/realkube.py`` starts the cluster;
``bash .ci/build-kube`` builds the server (``.ci/run`` does both)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rotator.apply.secret_writer import SecretWriter
from rotator.apply.validate import validate
from rotator.checks.certs import utcnow
from rotator.cli import main
from rotator.kube.api import SECRETS, KubeAPI, connect
from rotator.model import Reference
from tests.support import factory as f
from tests.support import kube, realkube
from tests.support.world import CA, HOST, NAME, NS, config_file

pytestmark = pytest.mark.realkube
ROOT = Path(__file__).resolve().parent.parent
SA_USER = "system:serviceaccount:rotator:rotator"
GATEWAY_NAMESPACES = ("istio-system", "ingress-b")


@pytest.fixture(scope="session")
def golden(tmp_path_factory: pytest.TempPathFactory) -> Path:
    why = realkube.missing()
    if why is not None:
        if os.environ.get("ROTATOR_REALKUBE") == "required":
            pytest.fail(why)
        pytest.skip(why)
    return realkube.make_golden(tmp_path_factory.mktemp("realkube") / "golden")


@pytest.fixture
def cluster(golden: Path, tmp_path: Path) -> Iterator[realkube.RealCluster]:
    with realkube.real_cluster(golden, tmp_path / "cluster") as c:
        yield c


def world(ca: CA, days_left: float = 5) -> list[dict[str, Any]]:
    """Classic + Gateway API, SIMPLE and MUTUAL, two gateway namespaces (one Secret, two
    copies), cert-manager's Secret, a Secret in the wrong namespace, a ReferenceGrant that
    allows one cross-namespace reference and none for another."""
    crt, key, _ = ca.leaf([HOST], days_left=days_left)
    mcrt, mkey, _ = ca.leaf(["mtls.example.com"], days_left=60)
    gcrt, gkey, _ = ca.leaf(["api.example.com"], days_left=60)
    scrt, skey, _ = ca.leaf(["shared.example.com", "denied.example.com"], days_left=60)
    cm_crt, cm_key, _ = ca.leaf(["cm.example.com"], days_left=3)
    from rotator.util import pki

    ca_pem = pki.cert_pem(ca.cert)
    return [
        f.ingress(),
        f.ingress("ingress-b"),
        f.gateway(
            "gw",
            [
                f.server([HOST], NAME),
                f.server(["mtls.example.com"], "mtls-tls", mode="MUTUAL", port=8443, name="mtls"),
                f.server(["cm.example.com"], "cm-tls", port=9443, name="cm"),
                f.server(["lost.example.com"], "lost-tls", port=10443, name="lost"),
            ],
            namespace="edge",
        ),
        f.secret(NAME, data={"tls.crt": crt, "tls.key": key}),
        f.secret(NAME, "ingress-b", data={"tls.crt": crt, "tls.key": key}),
        f.secret("mtls-tls", data={"tls.crt": mcrt, "tls.key": mkey, "ca.crt": ca_pem}),
        f.secret("mtls-tls", "ingress-b", data={"tls.crt": mcrt, "tls.key": mkey, "ca.crt": ca_pem}),
        *(
            f.secret(
                "cm-tls",
                ns,
                data={"tls.crt": cm_crt, "tls.key": cm_key},
                annotations={"cert-manager.io/certificate-name": "cm", "cert-manager.io/issuer-name": "le"},
            )
            for ns in GATEWAY_NAMESPACES
        ),
        f.secret("lost-tls", "edge", data={"tls.crt": crt, "tls.key": key}),  # Istio looks in the pods' namespaces
        f.kube_gateway(
            "api",
            "istio-system",
            [
                f.listener("api", "api.example.com", [{"name": "api-tls"}]),
                f.listener("shared", "shared.example.com", [{"name": "shared-tls", "namespace": "certs"}]),
                f.listener("denied", "denied.example.com", [{"name": "denied-tls", "namespace": "apps"}]),
            ],
            # MUTUAL for Gateway API: the client CA bundle is a ConfigMap Istio reads
            spec_tls={
                "frontend": {
                    "default": {
                        "validation": {"caCertificateRefs": [{"group": "", "kind": "ConfigMap", "name": "client-ca"}]}
                    }
                }
            },
        ),
        f.config_map("client-ca", "istio-system", {"ca.crt": ca_pem.decode()}),
        f.secret("api-tls", data={"tls.crt": gcrt, "tls.key": gkey}),
        f.secret("shared-tls", "certs", data={"tls.crt": scrt, "tls.key": skey}),
        f.secret("denied-tls", "apps", data={"tls.crt": scrt, "tls.key": skey}),
        f.reference_grant("allow-istio-system", "certs", "istio-system"),
        ca.secret(),
    ]


def install(cluster: realkube.RealCluster, objects: list[dict[str, Any]], overlay: str = "cronjob") -> Path:
    """deploy/ applied for real (its Roles copied into each extra namespace rotator reads
    Secrets in, as docs/security.md says), the world seeded, and a kubeconfig holding the
    rotator ServiceAccount's real token."""
    cluster.kubectl("create", "namespace", "istio-system")
    cluster.kubectl("apply", "--server-side", "-k", str(ROOT / "deploy/overlays" / overlay))
    # "edge" holds the Gateway resource: read there only to say "secret-wrong-namespace".
    extra = ("ingress-b", "certs", "apps", "edge")
    rbac = [d for d in kube.deploy_rbac(extra, overlay) if d["metadata"].get("namespace") in extra]
    cluster.seed(rbac + objects)
    return cluster.kubeconfig(cluster.workdir / "rotator.kubeconfig", cluster.token())


def rotator_config(tmp_path: Path, **extra: Any) -> Path:
    """The test CA issuer for every host, trusting the Gateways in "edge" to ask for them."""
    rules = [{"issuer": "internal", "hosts": ["*.example.com"], "gateway_namespaces": ["edge", "istio-system"]}]
    return config_file(tmp_path, rules=rules, **extra)


def offline(tmp_path: Path, objects: list[dict[str, Any]], cfg: Path) -> dict[str, Any]:
    path = tmp_path / "world.yaml"
    path.write_text(yaml.safe_dump_all([realkube.as_applied(o) for o in objects]))
    return run(["check", "--dry-run", "-f", str(path), "--config", str(cfg)])[1]


def run(argv: list[str]) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    code = main([*argv, "-o", "json", "--log-level", "error"], stdout=out)
    return code, json.loads(out.getvalue())


def summary(doc: dict[str, Any]) -> set[tuple[str, str, str, str, tuple[str, ...]]]:
    return {
        (c["namespace"], c["name"], c["role"], c["state"], tuple(sorted(x["code"] for x in c["findings"])))
        for c in doc["credentials"]
    }


def secret_crt(cluster: realkube.RealCluster, ns: str, name: str) -> str:
    return str(json.loads(cluster.kubectl("get", "secret", "-n", ns, name, "-o", "json").stdout)["data"]["tls.crt"])


def forbidden(cluster: realkube.RealCluster) -> list[str]:
    return [
        f"{e['verb']} {e['requestURI']}"
        for e in cluster.audit()
        if e["user"]["username"] == SA_USER and e["responseStatus"].get("code") == 403
    ]


def test_a_dry_run_as_the_service_account_reports_what_the_files_report(
    cluster: realkube.RealCluster, tmp_path: Path
) -> None:
    objects = world(CA())
    kc = install(cluster, objects)
    cfg = rotator_config(tmp_path)
    code, live = run(["check", "--dry-run", "--kubeconfig", str(kc), "--config", str(cfg)])
    files = offline(tmp_path, objects, cfg)
    assert summary(live) == summary(files)
    names = {(c["namespace"], c["name"]) for c in live["credentials"]}
    assert {("istio-system", NAME), ("ingress-b", NAME), ("certs", "shared-tls")} <= names
    denied = [x for x in live["findings"] + [y for c in live["credentials"] for y in c["findings"]]]
    assert any("denied-tls" in x["message"] for x in denied)  # no ReferenceGrant: refused, reported
    assert {(c["name"], c.get("action")) for c in live["credentials"] if c["name"] == NAME} == {(NAME, "renew")}
    assert forbidden(cluster) == []
    assert code == files_code(files)


def files_code(doc: dict[str, Any]) -> int:
    return int(doc["exit_code"]) if "exit_code" in doc else int(doc.get("summary", {}).get("exit_code", 0))


def test_a_real_pass_renews_both_copies_records_events_and_rollback_restores(
    cluster: realkube.RealCluster, tmp_path: Path
) -> None:
    objects = world(CA())
    kc = install(cluster, objects)
    cfg = rotator_config(tmp_path)
    before = {ns: secret_crt(cluster, ns, NAME) for ns in GATEWAY_NAMESPACES}
    code, doc = run(["check", "--kubeconfig", str(kc), "--config", str(cfg)])
    renewed = {
        (c["namespace"], c["name"]) for c in doc["credentials"] if (c.get("renewal") or {}).get("status") == "renewed"
    }
    assert renewed == {(ns, NAME) for ns in GATEWAY_NAMESPACES}
    after = {ns: secret_crt(cluster, ns, NAME) for ns in GATEWAY_NAMESPACES}
    assert after["istio-system"] == after["ingress-b"] != before["istio-system"]  # one certificate, both copies
    cm = next(c for c in doc["credentials"] if c["name"] == "cm-tls")
    assert cm["action"] == "skip" and "managed-externally" in {x["code"] for x in cm["findings"]}
    # Events the real server accepted, as `kubectl get events` shows them.
    events = json.loads(cluster.kubectl("get", "events", "-n", "istio-system", "-o", "json").stdout)["items"]
    rotated = [e for e in events if e["reason"] == "Rotated" and e["involvedObject"]["name"] == NAME]
    assert rotated and rotated[0]["involvedObject"]["kind"] == "Secret" and rotated[0]["type"] == "Normal"
    assert rotated[0]["source"].get("component") or rotated[0].get("reportingComponent")
    table = cluster.kubectl("get", "events", "-n", "istio-system").stdout
    assert "Rotated" in table and f"secret/{NAME}" in table
    # rollback restores both copies to the certificate they had.
    out = io.StringIO()
    rc = main(["rollback", f"{NS}/{NAME}", "--kubeconfig", str(kc), "--config", str(cfg)], stdout=out)
    assert rc == 0, out.getvalue()
    assert {ns: secret_crt(cluster, ns, NAME) for ns in GATEWAY_NAMESPACES} == before
    assert forbidden(cluster) == []
    assert code == 2  # lost-tls sits in the wrong namespace: critical, and no renewal can fix it


class EditedBetweenReadAndWrite(KubeAPI):
    """The first update is preceded by an operator's `kubectl annotate` of the same Secret:
    the server, not a fake, decides that rotator's write is stale."""

    def __init__(self, client: Any, cluster: realkube.RealCluster) -> None:
        super().__init__(client)
        self.cluster = cluster
        self.edited = False

    def update(self, resource: Any, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        if resource == SECRETS and not self.edited and body["metadata"]["name"] == NAME:
            self.edited = True
            self.cluster.kubectl("annotate", "secret", "-n", namespace, NAME, "team.example.com/owner=payments")
        return super().update(resource, namespace, body)


def test_a_concurrent_kubectl_edit_gives_a_real_409_and_rotator_rereads(
    cluster: realkube.RealCluster, tmp_path: Path
) -> None:
    ca = CA()
    kc = install(cluster, world(ca))
    api = EditedBetweenReadAndWrite(connect(str(kc)), cluster)
    crt, key, _ = ca.leaf([HOST], days_left=80)
    from rotator.apply.secret_bodies import TLS_FAMILY, Material

    ref = Reference("networking.istio.io", "Gateway", "edge", "gw", "https", 443, "SIMPLE", (HOST,))
    checked = validate(Material(crt, key), [ref], utcnow(), TLS_FAMILY)
    # still_needed: what the renewer's re-plan answers when the edit left the certificate alone
    outcomes = SecretWriter(api, utcnow).write_copies([(NS, NAME)], checked, [ref], still_needed=lambda cur: True)
    assert [o.status for o in outcomes] == ["rotated"], outcomes
    stored = json.loads(cluster.kubectl("get", "secret", "-n", NS, NAME, "-o", "json").stdout)
    assert stored["metadata"]["annotations"]["team.example.com/owner"] == "payments"  # the edit survived
    import base64

    assert base64.b64decode(stored["data"]["tls.crt"]) == crt
    updates = [
        e["responseStatus"].get("code")
        for e in cluster.audit()
        if e["user"]["username"] == SA_USER
        and e["verb"] == "update"
        and e["objectRef"].get("name") == NAME
        and e["objectRef"].get("namespace") == NS
    ]
    assert updates[0] == 409 and updates[-1] == 200


def test_the_lease_hands_over_between_two_daemons_and_after_one_is_sigkilled(
    cluster: realkube.RealCluster, tmp_path: Path
) -> None:
    kc = install(cluster, world(CA(), days_left=60), overlay="daemon")
    cfg = rotator_config(
        tmp_path,
        daemon={
            "interval": "1h",
            "jitter": "0s",
            "listen": "127.0.0.1:0",
            "lease": {"duration": "4s", "renew_deadline": "3s", "retry_period": "1s"},
        },
    )

    def start(identity: str) -> subprocess.Popen[str]:
        env = {**os.environ, "POD_NAME": identity}
        cmd = [sys.executable, "-m", "rotator", "daemon", "--kubeconfig", str(kc), "--config", str(cfg)]
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def holder() -> str:
        out = cluster.kubectl("get", "lease", "-n", "rotator", "rotator-leader", "-o", "json", check=False)
        return str(json.loads(out.stdout)["spec"].get("holderIdentity") or "") if out.returncode == 0 else ""

    def wait_for(pred: Any, timeout: float = 30) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return True
            time.sleep(0.3)
        return False

    a = start("rotator-a")
    assert wait_for(lambda: holder() == "rotator-a"), holder()
    b = start("rotator-b")
    try:
        time.sleep(3)  # b runs, finds a live holder, and waits
        assert holder() == "rotator-a"
        a.send_signal(signal.SIGTERM)  # a graceful stop releases the Lease: b takes it at once
        a.wait(timeout=30)
        assert wait_for(lambda: holder() == "rotator-b", timeout=15), holder()
        a = start("rotator-a")
        time.sleep(2)
        b.send_signal(signal.SIGKILL)  # a dead leader releases nothing: a takes it after the lease
        b.wait(timeout=10)
        assert wait_for(lambda: holder() == "rotator-a", timeout=20), holder()
        lease = json.loads(cluster.kubectl("get", "lease", "-n", "rotator", "rotator-leader", "-o", "json").stdout)
        assert int(lease["spec"]["leaseTransitions"]) >= 2
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.kill()
                p.wait()
    assert forbidden(cluster) == []


def test_every_request_is_allowed_and_every_rule_of_deploy_is_used(
    cluster: realkube.RealCluster, tmp_path: Path
) -> None:
    """The RBAC figures of docs/security.md: the suite's normal paths as rotator's own
    identity, then the audit log matched against each rule of deploy/'s Roles."""
    ca = CA()
    kc = install(cluster, world(ca))
    cfg = rotator_config(tmp_path)
    run(["check", "--dry-run", "--kubeconfig", str(kc), "--config", str(cfg)])
    run(["check", "--kubeconfig", str(kc), "--config", str(cfg)])
    for _ in range(3):  # more rotations than backup_retention keeps: the oldest backup is pruned
        run(["renew", f"{NS}/{NAME}", "--kubeconfig", str(kc), "--config", str(cfg)])
    main(["rollback", f"{NS}/{NAME}", "--kubeconfig", str(kc), "--config", str(cfg)], stdout=io.StringIO())
    api = KubeAPI(connect(str(kc)))
    # rotator's state ConfigMap (back-off, alert state, the ACME challenge journal): created
    # on first use, then updated, through the journal every ACME issuer writes.
    from datetime import timedelta

    from rotator.issuers.acme.journal import Artefact, ChallengeJournal
    from rotator.kube.state import ConfigMapState

    journal = ChallengeJournal(ConfigMapState(api, "rotator", "rotator-state", "challenges.json"), utcnow)
    txt = Artefact("le", "txt", "_acme-challenge.app.example.com", "v", server="127.0.0.1:53")
    journal.record([txt], timedelta(minutes=5))
    journal.strike([txt.key])
    # The ACME paths rotator's own namespace serves: the account key Secret and the
    # HTTP-01 challenge route, exercised through the same code the issuer uses.
    from rotator.config.schema import ACMEIssuerConfig
    from rotator.issuers.acme.account import account_key_store
    from rotator.issuers.acme.http01 import ClusterRoutes

    acme_cfg = ACMEIssuerConfig.model_validate(
        {
            "type": "acme",
            "directory": "https://acme.invalid/dir",
            "email": "a@example.com",
            "terms_agreed": True,
            "solver": "http01",
            "http01": {"service_host": "rotator-solver.rotator.svc.cluster.local"},
        }
    )
    account_key_store("le", acme_cfg, api)()
    routes = ClusterRoutes(api, "rotator", "rotator-solver.rotator.svc.cluster.local", 8089)
    route = routes.name_for(HOST)
    routes.add(HOST, ["edge/gw"], route)
    routes.remove(route)
    events = [e for e in cluster.audit() if e["user"]["username"] == SA_USER]
    assert [f"{e['verb']} {e['requestURI']}" for e in events if e["responseStatus"].get("code") == 403] == []
    used = {
        (
            e["objectRef"].get("apiGroup", ""),
            e["objectRef"]["resource"],
            e["verb"],
            e["objectRef"].get("namespace", ""),
        )
        for e in events
        if e.get("objectRef")
    }
    unused = []
    for doc in kube.render("cronjob"):
        if doc["kind"] not in ("Role", "ClusterRole"):
            continue
        ns = doc["metadata"].get("namespace", "")
        for rule in doc["rules"]:
            for group in rule["apiGroups"]:
                for res in rule["resources"]:
                    for verb in rule["verbs"]:
                        if not any(u[:3] == (group, res, verb) and (not ns or u[3] == ns) for u in used):
                            unused.append(f"{doc['kind']} {ns}/{doc['metadata']['name']}: {verb} {group}/{res}")
    assert unused == [], unused
    if os.environ.get("ROTATOR_RBAC_FIGURES"):  # the figures docs/security.md quotes
        by_rule = sorted({f"{u[2]} {u[0] or 'core'}/{u[1]}" + (f" in {u[3]}" if u[3] else "") for u in used})
        figures = {
            "requests": len(events),
            "forbidden": 0,
            "rules": sum(
                len(r["verbs"])
                for d in kube.render("cronjob")
                if d["kind"] in ("Role", "ClusterRole")
                for r in d["rules"]
                for _ in r["apiGroups"]
                for _ in r["resources"]
            ),
            "used": by_rule,
        }
        Path(os.environ["ROTATOR_RBAC_FIGURES"]).write_text(json.dumps(figures, indent=1))


def test_the_helm_chart_renders_the_same_with_the_real_helm_and_applies_for_real(
    cluster: realkube.RealCluster, tmp_path: Path
) -> None:
    """The real helm binary and the helm-python-sdk that tests/test_helm.py uses give the
    same objects; applied to the real server, the chart's ServiceAccount and RBAC let a
    pass over two gateway namespaces run without one refused request."""
    import helm_python

    values = {"rbac": {"gatewayNamespaces": ["istio-system", "ingress-b"]}}
    (tmp_path / "values.yaml").write_text(yaml.safe_dump(values))
    chart = ROOT / "deploy/helm/rotator"
    out = subprocess.run(
        [
            str(realkube.helm_binary()),
            "template",
            "rotator",
            str(chart),
            "-n",
            "rotator",
            "-f",
            str(tmp_path / "values.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    real_docs = [d for d in yaml.safe_load_all(out) if d]
    rendered = helm_python.Chart.load(chart).render(values, name="rotator", namespace="rotator", is_install=True)
    sdk_docs = [
        d for path, text in sorted(rendered.items()) if path.endswith(".yaml") for d in yaml.safe_load_all(text) if d
    ]

    def key(d: dict[str, Any]) -> tuple[str, str, str]:
        return (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"])

    assert sorted(map(key, real_docs)) == sorted(map(key, sdk_docs))
    assert {key(d): d for d in real_docs} == {key(d): d for d in sdk_docs}
    for ns in ("rotator", "istio-system", "ingress-b"):
        cluster.kubectl("create", "namespace", ns, check=False)
    cluster.apply([d for d in real_docs if d["kind"] != "Namespace"])
    # the classic part of the world: the chart grants Secrets in the gateway namespaces only
    objects = [o for o in world(CA()) if not o["apiVersion"].startswith("gateway.networking.k8s.io/")]
    cluster.seed(objects)
    kc = cluster.kubeconfig(tmp_path / "helm.kubeconfig", cluster.token("rotator", "rotator"))
    _, doc = run(["check", "--dry-run", "--kubeconfig", str(kc), "--config", str(rotator_config(tmp_path))])
    planned = {(c["namespace"], c["name"]): c["action"] for c in doc["credentials"]}
    assert {planned[(ns, NAME)] for ns in GATEWAY_NAMESPACES} == {"renew"}
    refused = forbidden(cluster)
    # "edge" (the Gateway's own namespace) has no Role: only the wrong-namespace hint is refused
    assert refused and all("/namespaces/edge/" in r for r in refused), refused


def test_a_deleted_secret_keeps_its_backups_and_rollback_recreates_it(
    cluster: realkube.RealCluster, tmp_path: Path
) -> None:
    """Backups carry no ownerReference on purpose: the real garbage collector (which does
    collect an object that has one) leaves them when the Secret is deleted, so rollback
    can bring the Secret back."""
    kc = install(cluster, world(CA()))
    cfg = rotator_config(tmp_path)
    before = secret_crt(cluster, NS, NAME)
    run(["check", "--kubeconfig", str(kc), "--config", str(cfg)])
    uid = json.loads(cluster.kubectl("get", "secret", "-n", NS, NAME, "-o", "json").stdout)["metadata"]["uid"]
    owned = f.secret(
        "owned-by-app-tls", type_="Opaque", owners=[{"apiVersion": "v1", "kind": "Secret", "name": NAME, "uid": uid}]
    )
    cluster.apply([owned])
    cluster.kubectl("delete", "secret", "-n", NS, NAME)

    def names() -> set[str]:
        items = json.loads(cluster.kubectl("get", "secrets", "-n", NS, "-o", "json").stdout)["items"]
        return {s["metadata"]["name"] for s in items}

    deadline = time.monotonic() + 30
    while "owned-by-app-tls" in names() and time.monotonic() < deadline:
        time.sleep(0.5)
    left = names()
    assert "owned-by-app-tls" not in left  # the collector ran and collects owned objects
    assert any(n.startswith(f"{NAME}-rotator-backup-") for n in left)  # ... but not rotator's backups
    out = io.StringIO()
    code = main(
        ["rollback", f"{NS}/{NAME}", "--this-copy-only", "--kubeconfig", str(kc), "--config", str(cfg)], stdout=out
    )
    assert code == 0 and "re-created" in out.getvalue(), out.getvalue()
    assert secret_crt(cluster, NS, NAME) == before
    assert forbidden(cluster) == []
