"""`rotator check --dry-run` predicts the real pass: one world, planned by a dry run and
then run for real; every credential's planned action is what the real pass did.

The world holds each kind of credential a plan can go wrong on: due, expired,
cert-manager's, another CA's (with and without allow_issuer_change), no issuer rule,
back-off in force, and a Secret rotator may not read. The ARI case needs a CA that
offers ARI: it runs against pebble 2.6 in tests/test_acme.py's world (below).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from rotator.cli import main
from tests.support import factory as f
from tests.support import kube
from tests.support.fakeapi import FakeCluster
from tests.support.world import CA, config_file

NS = "istio-system"
RULES = [
    {"issuer": "internal", "hosts": ["*.example.com"]},
    {"issuer": "internal", "hosts": ["*.example.org"], "allow_issuer_change": True},
]


def seed(fake: FakeCluster, ca: CA) -> None:
    other = CA("Someone Else's CA")
    kube.seed_object(fake, f.ingress())
    kube.seed_object(fake, f.ingress("edge", {"istio": "edge"}))  # no Secret Role there: its Secret is unreadable
    kube.seed_object(fake, ca.secret())
    world = {
        "due-tls": (ca, "due.example.com", 5),
        "expired-tls": (ca, "expired.example.com", -1),
        "fresh-tls": (ca, "fresh.example.com", 60),
        "manager-tls": (ca, "manager.example.com", 5),
        "other-tls": (other, "other.example.com", 5),
        "moved-tls": (other, "moved.example.org", 5),
        "norule-tls": (ca, "norule.example.net", 5),
        "backoff-tls": (ca, "backoff.example.com", 5),
    }
    servers = []
    for i, (name, (issuer, host, days)) in enumerate(sorted(world.items())):
        crt, key, _ = issuer.leaf([host], days_left=days)
        ann = {"cert-manager.io/certificate-name": "manager"} if name == "manager-tls" else None
        kube.seed_object(fake, f.secret(name, data={"tls.crt": crt, "tls.key": key}, annotations=ann))
        servers.append(f.server([host], name, name=f"https-{i}", port=1000 + i))
    kube.seed_object(fake, f.gateway("gw", servers))
    crt, key, _ = ca.leaf(["edge.example.com"], days_left=5)
    kube.seed_object(fake, f.secret("edge-tls", "edge", data={"tls.crt": crt, "tls.key": key}))
    edge = f.gateway("edge", [f.server(["edge.example.com"], "edge-tls")], namespace="edge", selector={"istio": "edge"})
    kube.seed_object(fake, edge)
    state = {
        f"{NS}/backoff-tls": {
            "failures": 3,
            "last_failure": "2026-12-06T00:00:00Z",
            "next_attempt": "2099-01-01T00:00:00Z",
            "last_error": "DNS update refused (test)",
        }
    }
    kube.seed_object(fake, f.config_map("rotator-state", "rotator", {"renewal.json": json.dumps(state)}))


def check(kc: Path, cfg: Path, *extra: str) -> dict[str, Any]:
    out = io.StringIO()
    main(
        ["check", "-o", "json", "--log-level", "error", "--kubeconfig", str(kc), "--config", str(cfg), *extra],
        stdout=out,
    )
    doc: dict[str, Any] = json.loads(out.getvalue())
    return doc


def test_the_dry_run_plans_what_the_real_pass_does(tmp_path: Path) -> None:
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake:
        seed(fake, CA())
        kc, cfg = fake.kubeconfig(tmp_path / "kc"), config_file(tmp_path, rules=RULES)
        planned = {(c["namespace"], c["name"]): c for c in check(kc, cfg, "--dry-run")["credentials"]}
        real = {(c["namespace"], c["name"]): c for c in check(kc, cfg)["credentials"]}
        done = {k: (c.get("renewal") or {}).get("status") for k, c in real.items()}
        expected = {
            (NS, "due-tls"): "renew",
            (NS, "expired-tls"): "renew",
            (NS, "fresh-tls"): "none",
            (NS, "manager-tls"): "skip",  # cert-manager's
            (NS, "other-tls"): "skip",  # another CA, no consent: issuer-change
            (NS, "moved-tls"): "renew",  # another CA, allow_issuer_change
            (NS, "norule-tls"): "skip",  # no issuer rule
            (NS, "backoff-tls"): "skip",  # back-off in force
            ("edge", "edge-tls"): "skip",  # unreadable (403)
        }
        assert {k: c["action"] for k, c in planned.items()} == expected
        for key, action in expected.items():
            # renew <=> the real pass renewed it; anything else <=> it did not touch it
            assert (done[key] == "renewed") == (action == "renew"), (key, action, real[key].get("renewal"))
            assert done[key] in (None, "renewed"), (key, real[key].get("renewal"))
        codes = {k: {x["code"] for x in c["findings"]} for k, c in planned.items()}
        assert "issuer-change" in codes[(NS, "other-tls")] and "renewal-backoff" in codes[(NS, "backoff-tls")]
        assert "access-denied" in codes[("edge", "edge-tls")]
        assert planned[(NS, "backoff-tls")]["reason"].endswith("skipped: backing off until 2099-01-01T00:00:00Z")
        assert [r.method for r in fake.requests if r.method != "GET" and r.resource != "events"] != []  # real writes


def test_when_the_ca_cannot_be_read_the_plan_says_so(tmp_path: Path) -> None:
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake:
        seed(fake, CA())
        fake.fault(method="GET", name="internal-ca", status=403, times=1000)
        kc, cfg = fake.kubeconfig(tmp_path / "kc"), config_file(tmp_path, rules=RULES)
        doc = check(kc, cfg, "--dry-run")
        due = next(c for c in doc["credentials"] if c["name"] == "due-tls")
        assert due["action"] == "renew" and "could not check which CA issued the current certificate" in due["reason"]


def test_an_open_ari_window_is_planned_by_the_dry_run_and_renewed_by_the_real_pass(tmp_path: Path) -> None:
    """pebble 2.6 (ARI): a revoked certificate gets a renewal window in the past. The
    dry run asks renewalInfo (an unauthenticated GET) and plans the renewal."""
    import pytest

    from rotator.checks import certs
    from tests.support import acmeenv
    from tests.support.acmeenv import ZONE, ari_pebble, issuer, request

    if ari_pebble() is None:
        pytest.skip("pebble 2.6 with ARI not found (.ci/fetch-pebble-ari)")
    host = f"ari.{ZONE}"
    with (
        acmeenv.bind(tmp_path) as bind,
        acmeenv.pebble(tmp_path, bind.port, binary=ari_pebble()) as pebble,
        FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake,
    ):
        acme = issuer(bind, pebble, tmp_path)
        issued = acme.issue(request(host))
        acme._connect().revoke(certs.parse_bundle(issued.chain_pem).certs[0], 0)  # the CA now says: renew
        kube.seed_object(fake, f.ingress())
        kube.seed_object(fake, f.gateway("gw", [f.server([host], "ari-tls")]))
        kube.seed_object(fake, f.secret("ari-tls", data={"tls.crt": issued.chain_pem, "tls.key": issued.key_pem}))
        kube.seed_object(fake, f.secret("rotator-tsig", "rotator", data={"secret": bind.tsig_secret.encode()}))
        cfg = config_file(
            tmp_path,
            issuers={"pebble": acmeenv.cluster_issuer(bind, pebble, accept_issuers=["Pebble*"])},
            rules=[{"issuer": "pebble"}],
        )
        kc = fake.kubeconfig(tmp_path / "kc")
        fake.reset_requests()
        (planned,) = check(kc, cfg, "--dry-run")["credentials"]
        assert planned["action"] == "renew" and planned["reason"].startswith("ari: inside the CA's suggested"), planned
        assert {r.method for r in fake.requests} == {"GET"}  # the dry run wrote nothing (no account Secret either)
        (done,) = check(kc, cfg)["credentials"]
        assert done["renewal"]["status"] == "renewed", done


def exit_rule(doc: dict[str, Any]) -> int:
    """docs/report-format.md's rule, applied to the document as printed."""
    findings = doc["findings"] + [x for c in doc["credentials"] for x in c["findings"]]
    sev = {x["severity"] for x in findings}
    states = {c["state"] for c in doc["credentials"]}
    if states & {"expired", "invalid", "missing"} or sev & {"critical", "error"}:
        return 2
    return 1 if "due" in states or "warning" in sev else 0


def test_the_exit_code_follows_from_the_report_as_printed(tmp_path: Path) -> None:
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake:
        seed(fake, CA())
        kc, cfg = fake.kubeconfig(tmp_path / "kc"), config_file(tmp_path, rules=RULES)
        for extra in (("--dry-run",), (), ("--dry-run",)):  # before, the real pass, after
            out = io.StringIO()
            argv = ["check", "-o", "json", "--log-level", "error", "--kubeconfig", str(kc), "--config", str(cfg)]
            code = main([*argv, *extra], stdout=out)
            doc = json.loads(out.getvalue())
            assert code == doc["exit_code"] == exit_rule(doc), (extra, code, doc["exit_code"])
        real_after = {c["name"]: c for c in doc["credentials"]}
        assert real_after["due-tls"]["action"] == "none" and real_after["due-tls"]["state"] == "ok"


def test_a_dry_run_discovers_and_inspects_each_credential_once(tmp_path: Path, monkeypatch: Any) -> None:
    """Planning twice (without, then with the edges' facts) re-plans the inspected
    credentials; it does not discover or inspect again. RSA keys make a second look
    expensive (~30 ms each), so the count is the contract."""
    import rotator.pipeline as pipeline

    counts = {"discover": 0, "inspect": 0}

    def counting(name: str, real: Any) -> Any:
        def wrapper(*a: Any, **kw: Any) -> Any:
            counts[name] += 1
            return real(*a, **kw)

        return wrapper

    monkeypatch.setattr(pipeline, "discover", counting("discover", pipeline.discover))
    monkeypatch.setattr(pipeline, "inspect", counting("inspect", pipeline.inspect))
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake:
        seed(fake, CA())
        kc, cfg = fake.kubeconfig(tmp_path / "kc"), config_file(tmp_path, rules=RULES)
        doc = check(kc, cfg, "--dry-run")
    assert counts == {"discover": 1, "inspect": len(doc["credentials"])}
    assert len(doc["credentials"]) >= 9
