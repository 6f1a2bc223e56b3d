"""`rotator check` renews: the fake API server (real protocol, RBAC from deploy/), real
issuers, real TLS handshakes with what was written."""

from __future__ import annotations

import base64
import io
import json
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509 import DNSName
from cryptography.x509.verification import PolicyBuilder, Store

from rotator.apply.backoff import backoff_delay, failure_entry
from rotator.apply.renewer import pending_name
from rotator.checks import certs
from rotator.cli import main
from rotator.issuers.base import IssuerError
from rotator.kube.state import ConfigMapState
from rotator.util import pki
from tests.support import acmeenv, kube, localhttp
from tests.support import factory as f
from tests.support.fakeapi import FakeCluster
from tests.support.world import (
    CA,
    HOST,
    NAME,
    NS,
    config_file,
    now,
    plan_from_cluster,
    renewer_for,
    secret_data,
    seed_two_namespace_world,
)


def serve_and_handshake(chain_pem: bytes, key_pem: bytes, root_pem: bytes, host: str, tmp: Path) -> x509.Certificate:
    """A real TLS server with the written credential; a client that verifies the hostname
    against the issuing root. Returns the certificate the client saw."""
    (tmp / "chain.pem").write_bytes(chain_pem)
    (tmp / "key.pem").write_bytes(key_pem)
    (tmp / "root.pem").write_bytes(root_pem)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(str(tmp / "chain.pem"), str(tmp / "key.pem"))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def accept() -> None:
        conn, _ = listener.accept()
        try:
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError):
            pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    client_ctx = ssl.create_default_context(cafile=str(tmp / "root.pem"))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        client_ctx.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        tls.sendall(b"x")
    t.join(5)
    listener.close()
    assert der is not None
    return x509.load_der_x509_certificate(der)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[FakeCluster, Path, CA]]:
    ca = CA()
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake:
        kube.seed_object(fake, f.ingress())
        kube.seed_object(fake, f.gateway("gw", [f.server([HOST, f"www.{HOST}"], NAME)]))
        crt, key, _ = ca.leaf([HOST, f"www.{HOST}", "legacy.example.com"], days_left=10)
        kube.seed_object(
            fake,
            f.secret(
                NAME,
                data={"tls.crt": crt, "tls.key": key, "ca.crt": b"client ca"},
                annotations={"rotator.io/issued-by": "internal"},
            ),
        )
        kube.seed_object(fake, ca.secret())
        yield fake, fake.kubeconfig(tmp_path / "kc"), ca
        assert fake.errors == []


def run_cli(*args: str) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    code = main(["check", "-o", "json", "--log-level", "error", *args], stdout=out)
    return code, json.loads(out.getvalue())


def test_check_renews_a_due_secret_that_then_serves(cluster: tuple[FakeCluster, Path, CA], tmp_path: Path) -> None:
    fake, kc, ca = cluster
    before = secret_data(fake)
    code, doc = run_cli("--kubeconfig", str(kc), "--config", str(config_file(tmp_path)))
    (cred,) = [c for c in doc["credentials"] if c["name"] == NAME]
    assert cred["renewal"]["status"] == "renewed", cred
    # the report shows the world after the pass: the new certificate, nothing left to do
    assert cred["certificate"]["serial"] == cred["renewal"]["serial"] and cred["state"] == "ok"
    assert cred["action"] == "none" and cred["findings"] == []
    assert doc["summary"]["renewals"] == {"renewed": 1, "failed": 0, "skipped": 0, "backoff": 0}
    assert code == 0 == doc["exit_code"]  # the due certificate was renewed: nothing left to warn about
    after = secret_data(fake)
    assert after["tls.crt"] != before["tls.crt"] and after["ca.crt"] == b"client ca"
    leaf = certs.parse_bundle(after["tls.crt"]).certs[0]
    assert format(leaf.serial_number, "x") == cred["renewal"]["serial"]
    # SANs: the hosts the Gateway serves plus the current certificate's SANs
    assert set(certs.sans(leaf)) == {HOST, f"www.{HOST}", "legacy.example.com"}
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= timedelta(days=30, minutes=6)
    # verified by cryptography's verifier, by openssl, and in a real handshake
    root_pem = pki.cert_pem(ca.cert)
    PolicyBuilder().store(Store([ca.cert])).build_server_verifier(DNSName(f"www.{HOST}")).verify(leaf, [])
    (tmp_path / "root.pem").write_bytes(root_pem)
    (tmp_path / "leaf.pem").write_bytes(after["tls.crt"])
    p = subprocess.run(
        ["openssl", "verify", "-CAfile", str(tmp_path / "root.pem"), str(tmp_path / "leaf.pem")],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    seen = serve_and_handshake(after["tls.crt"], after["tls.key"], root_pem, f"www.{HOST}", tmp_path)
    assert seen.serial_number == leaf.serial_number
    assert fake.denied() == []
    assert fake.get("v1", "Secret", NS, pending_name(NAME)) is None  # pending cleared after the write


def test_after_a_rollback_the_next_pass_holds_off_until_resumed(
    cluster: tuple[FakeCluster, Path, CA], tmp_path: Path
) -> None:
    """A rollback that the next pass undoes is no rollback: it pauses renewal."""
    fake, kc, _ = cluster
    cfg = str(config_file(tmp_path))
    before = secret_data(fake)["tls.crt"]
    assert run_cli("--kubeconfig", str(kc), "--config", cfg)[1]["summary"]["renewals"]["renewed"] == 1
    out = io.StringIO()
    code = main(["rollback", f"{NS}/{NAME}", "--kubeconfig", str(kc), "--log-level", "error"], stdout=out)
    assert code == 0 and "renewal paused (resume: kubectl annotate secret" in out.getvalue()
    assert secret_data(fake)["tls.crt"] == before  # the old, due certificate is back
    for _pass in range(2):
        code, doc = run_cli("--kubeconfig", str(kc), "--config", cfg)
        (cred,) = [c for c in doc["credentials"] if c["name"] == NAME]
        assert cred["action"] == "skip" and cred["renewal"] is None, cred
        assert "renewal-paused" in {x["code"] for x in cred["findings"]}
        assert secret_data(fake)["tls.crt"] == before
    obj = fake.get("v1", "Secret", NS, NAME) or {}
    del obj["metadata"]["annotations"]["rotator.io/renewal"]  # kubectl annotate ... rotator.io/renewal-
    fake.add({"apiVersion": "v1", "kind": "Secret", **obj})
    assert run_cli("--kubeconfig", str(kc), "--config", cfg)[1]["summary"]["renewals"]["renewed"] == 1


def test_dry_run_only_reads_and_changes_nothing(cluster: tuple[FakeCluster, Path, CA], tmp_path: Path) -> None:
    fake, kc, _ = cluster
    before = secret_data(fake)
    fake.reset_requests()
    code, doc = run_cli("--dry-run", "--kubeconfig", str(kc), "--config", str(config_file(tmp_path)))
    assert code == 1 and doc["credentials"][0]["renewal"] is None and doc["credentials"][0]["action"] == "renew"
    assert secret_data(fake) == before
    # the CA's Secret is read (who issued the current certificate decides the plan), never written
    assert any(r.name == "internal-ca" for r in fake.requests)
    assert {r.method for r in fake.requests} == {"GET"}


def test_a_certificate_from_another_ca_is_not_moved_without_consent(
    cluster: tuple[FakeCluster, Path, CA], tmp_path: Path
) -> None:
    fake, kc, _ = cluster
    other = CA("Someone Else's CA")
    crt, key, _ = other.leaf([HOST, f"www.{HOST}"], days_left=10)
    kube.seed_object(fake, f.secret(NAME, data={"tls.crt": crt, "tls.key": key}))
    code, doc = run_cli("--kubeconfig", str(kc), "--config", str(config_file(tmp_path)))
    cred = doc["credentials"][0]
    assert cred["action"] == "skip" and cred["renewal"] is None  # decided by the plan, as a dry run says
    assert any(x["code"] == "issuer-change" for x in cred["findings"])
    assert secret_data(fake)["tls.crt"] == crt
    consent = config_file(
        tmp_path, rules=[{"issuer": "internal", "hosts": ["*.example.com"], "allow_issuer_change": True}]
    )
    code, doc = run_cli("--kubeconfig", str(kc), "--config", str(consent))
    assert doc["credentials"][0]["renewal"]["status"] == "renewed" and code == 0


def test_renewed_key_follows_the_current_key_type_and_encoding(
    cluster: tuple[FakeCluster, Path, CA], tmp_path: Path
) -> None:
    fake, kc, ca = cluster
    rsa_key = pki.new_key("rsa-3072")
    cert = pki.build_certificate(
        subject_cn=HOST,
        public_key=rsa_key.public_key(),
        not_before=now() - timedelta(80),
        not_after=now() + timedelta(5),
        issuer_cert=ca.cert,
        issuer_key=ca.key,
        sans=[HOST, f"www.{HOST}"],
    )
    kube.seed_object(
        fake,
        f.secret(
            NAME,
            data={"tls.crt": pki.cert_pem(cert), "tls.key": pki.key_pem(rsa_key, pkcs1=True)},
            annotations={"rotator.io/issued-by": "internal"},
        ),
    )
    run_cli("--kubeconfig", str(kc), "--config", str(config_file(tmp_path)))
    key_pem = secret_data(fake)["tls.key"]
    assert b"BEGIN RSA PRIVATE KEY" in key_pem  # PKCS#1 kept
    assert certs.key_type(certs.parse_private_key(key_pem)[0]) == "RSA 3072"  # type: ignore[arg-type]


def test_a_failed_write_keeps_the_certificate_and_never_orders_twice(cluster: tuple[FakeCluster, Path, CA]) -> None:
    fake, kc, ca = cluster
    renewer, issuer, config = renewer_for(fake, kc, ca)
    fake.fault(method="PUT", name=NAME, status=500, times=1000)
    result, inv = plan_from_cluster(kc, config, now())
    (first,) = renewer.run(result, inv)
    assert first.status == "failed" and "kept in Secret" in first.message
    pending = fake.get("v1", "Secret", NS, pending_name(NAME))
    assert pending is not None
    fake.clear_faults()
    result, inv = plan_from_cluster(kc, config, now())
    (second,) = renewer.run(result, inv)
    assert second.status == "renewed" and second.reused_pending
    assert issuer.calls == [NAME]  # one order in all
    assert secret_data(fake)["tls.crt"] == base64.b64decode(pending["data"]["tls.crt"])
    assert fake.get("v1", "Secret", NS, pending_name(NAME)) is None


def test_failed_orders_back_off_exponentially_across_passes(cluster: tuple[FakeCluster, Path, CA]) -> None:
    fake, kc, ca = cluster
    clock = {"t": now()}
    state = ConfigMapState(kube.api(kc), "rotator", "rotator-state", "renewal.json")  # survives "pods"
    renewer, issuer, config = renewer_for(
        fake,
        kc,
        ca,
        state=state,
        clock=lambda: clock["t"],
        fail_for={NAME},
        renewal={"backoff_initial": "5m", "backoff_max": "1h"},
    )
    outcomes = []
    for minutes in (0, 1, 6, 7, 17, 30):
        clock["t"] = now() + timedelta(minutes=minutes)
        result, inv = plan_from_cluster(kc, config, clock["t"])
        outcomes.append(renewer.run(result, inv)[0].status)
    # fail at 0 (next ≥ 5m), wait at 1, fail at 6 (next ≥ 16m), wait at 7, fail at 17 (next ≥ 37m), wait at 30
    assert outcomes == ["failed", "backoff", "failed", "backoff", "failed", "backoff"]
    assert len(issuer.calls) == 3
    saved = json.loads((fake.get("v1", "ConfigMap", "rotator", "rotator-state") or {})["data"]["renewal.json"])
    assert saved[f"{NS}/{NAME}"]["failures"] == 3


def test_backoff_arithmetic() -> None:
    assert [backoff_delay(n, timedelta(minutes=5), timedelta(hours=24)) for n in (1, 2, 3, 10)] == [
        timedelta(minutes=5),
        timedelta(minutes=10),
        timedelta(minutes=20),
        timedelta(hours=24),
    ]
    t = datetime(2026, 1, 1, tzinfo=UTC)
    limited = failure_entry(
        None,
        t,
        IssuerError("rateLimited", rate_limited=True),
        timedelta(minutes=5),
        timedelta(hours=24),
        rng=lambda: 0.0,
    )
    assert limited["next_attempt"] == "2026-01-01T01:00:00Z"  # a rate limit waits at least an hour
    told = failure_entry(
        {"failures": 1},
        t,
        IssuerError("busy", retry_after=7200),
        timedelta(minutes=5),
        timedelta(hours=24),
        rng=lambda: 0.0,
    )
    assert told["failures"] == 2 and told["next_attempt"] == "2026-01-01T02:00:00Z"  # Retry-After honoured


def test_one_failure_never_stops_the_others_and_renewals_run_concurrently(
    cluster: tuple[FakeCluster, Path, CA],
) -> None:
    fake, kc, ca = cluster
    for i in range(6):
        kube.seed_object(fake, f.gateway(f"gw{i}", [f.server([f"h{i}.example.com"], f"tls-{i}")]))
        crt, key, _ = ca.leaf([f"h{i}.example.com"], days_left=3)
        kube.seed_object(fake, f.secret(f"tls-{i}", data={"tls.crt": crt, "tls.key": key}))
    renewer, _issuer, config = renewer_for(fake, kc, ca, fail_for={"tls-3"}, renewal={"concurrency": 3})
    result, inv = plan_from_cluster(kc, config, now())
    outcomes = {o.name: o.status for o in renewer.run(result, inv)}
    assert outcomes.pop("tls-3") == "failed"
    assert set(outcomes.values()) == {"renewed"} and len(outcomes) == 6  # app-tls and five of six


def test_copies_in_two_gateway_namespaces_get_one_certificate(tmp_path: Path) -> None:
    ca = CA()
    with FakeCluster(rbac_manifests=kube.deploy_rbac(("ingress-b",))) as fake:
        seed_two_namespace_world(fake, ca)
        for ns in (NS, "ingress-b"):
            crt, key, _ = ca.leaf([HOST], days_left=3)
            kube.seed_object(fake, f.secret(NAME, namespace=ns, data={"tls.crt": crt, "tls.key": key}))
        kc = fake.kubeconfig(tmp_path / "kc")
        rules = [{"issuer": "internal", "gateway_namespaces": ["edge"]}]  # the Gateway's namespace is trusted
        renewer, issuer, config = renewer_for(fake, kc, ca, rules=rules)
        result, inv = plan_from_cluster(kc, config, now())
        (outcome,) = renewer.run(result, inv)
        assert outcome.status == "renewed" and len(outcome.copies) == 2
        assert issuer.calls == [NAME]
        assert secret_data(fake, ns=NS)["tls.crt"] == secret_data(fake, ns="ingress-b")["tls.crt"]


def test_an_issued_certificate_is_validated_once_for_all_its_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer takes Validated material: one inspection per issuance, not 2 + N."""
    from rotator.apply import validate as validate_module

    calls: list[str] = []
    real = validate_module.inspect

    def counting(spec: Any, *args: Any) -> Any:
        calls.append(spec.name)
        return real(spec, *args)

    ca = CA()
    with FakeCluster(rbac_manifests=kube.deploy_rbac(("ingress-b",))) as fake:
        seed_two_namespace_world(fake, ca)
        for ns in (NS, "ingress-b"):
            crt, key, _ = ca.leaf([HOST], days_left=3)
            kube.seed_object(fake, f.secret(NAME, namespace=ns, data={"tls.crt": crt, "tls.key": key}))
        kc = fake.kubeconfig(tmp_path / "kc")
        rules = [{"issuer": "internal", "gateway_namespaces": ["edge"]}]
        renewer, _issuer, config = renewer_for(fake, kc, ca, rules=rules)
        result, inv = plan_from_cluster(kc, config, now())
        monkeypatch.setattr(validate_module, "inspect", counting)
        (outcome,) = renewer.run(result, inv)
        assert outcome.status == "renewed" and len(outcome.copies) == 2
        assert calls == ["candidate"]


def test_validated_material_cannot_be_made_except_by_validate() -> None:
    from rotator.apply.secret_bodies import Material
    from rotator.apply.validate import Rejected, Validated, validate

    crt, key, _ = CA().leaf([HOST], days_left=30)
    with pytest.raises(TypeError, match="validate only"):
        Validated(Material(crt, key))
    assert isinstance(validate(Material(crt, key), (), now()), Validated)
    assert isinstance(validate(Material(b"garbage", key), (), now()), Rejected)


# --- against real pebble and BIND9 -------------------------------------------------------


def test_check_renews_through_acme_dns01(tmp_path: Path) -> None:
    host = f"shop.{acmeenv.ZONE}"
    ca = CA("Old Internal CA")
    with (
        acmeenv.bind(tmp_path) as bind,
        acmeenv.pebble(tmp_path, bind.port) as pebble,
        FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake,
    ):
        kube.seed_object(fake, f.ingress())
        kube.seed_object(fake, f.gateway("gw", [f.server([host, f"*.{host}"], "shop-tls")]))
        crt, key, _ = ca.leaf([host, f"*.{host}"], days_left=2)
        kube.seed_object(fake, f.secret("shop-tls", data={"tls.crt": crt, "tls.key": key}))
        kube.seed_object(fake, f.secret("rotator-tsig", "rotator", data={"secret": bind.tsig_secret.encode()}))
        cfg = config_file(
            tmp_path,
            issuers={"pebble": acmeenv.cluster_issuer(bind, pebble)},
            rules=[{"issuer": "pebble", "allow_issuer_change": True}],
        )
        pushed: list[tuple[str, str, str]] = []
        with localhttp.pushgateway(pushed) as gateway_url:
            code, doc = run_cli(
                "--kubeconfig",
                str(fake.kubeconfig(tmp_path / "kc")),
                "--config",
                str(cfg),
                "--pushgateway",
                gateway_url,
            )
        (cred,) = doc["credentials"]
        assert cred["renewal"]["status"] == "renewed", cred
        assert code == 0
        ((_method, _path, body),) = pushed  # the CronJob's metrics: ACME requests, and the state after renewing
        assert 'rotator_acme_requests_total{issuer="pebble",result="ok"}' in body
        assert 'rotator_renewals_total{issuer="pebble",result="renewed"} 1.0' in body
        data = secret_data(fake, "shop-tls")
        seen = serve_and_handshake(data["tls.crt"], data["tls.key"], pebble.roots(), f"www.{host}", tmp_path)
        assert set(certs.sans(seen)) == {host, f"*.{host}"}
        account = fake.get("v1", "Secret", "rotator", "rotator-acme-pebble")
        assert account is not None and "account.key" in account["data"]  # created on first use
        assert fake.denied() == []


def test_configured_key_algorithm_wins_over_the_current_key(
    cluster: tuple[FakeCluster, Path, CA], tmp_path: Path
) -> None:
    fake, kc, _ = cluster
    run_cli("--kubeconfig", str(kc), "--config", str(config_file(tmp_path, renewal={"key_algorithm": "ecdsa-p384"})))
    key_pem = secret_data(fake)["tls.key"]
    assert certs.key_type(certs.parse_private_key(key_pem)[0]) == "ECDSA P-384"  # type: ignore[arg-type]
    assert b"BEGIN PRIVATE KEY" in key_pem  # PKCS#8 unless the Secret used PKCS#1


def test_no_loop_when_the_pending_secret_cannot_be_kept_either(cluster: tuple[FakeCluster, Path, CA]) -> None:
    """Writes and the pending safety net both refused: back off instead of ordering every pass."""
    fake, kc, ca = cluster
    renewer, issuer, config = renewer_for(fake, kc, ca)
    fake.fault(method="POST", resource="secrets", status=403, times=1000)  # no pending Secret, no backup
    statuses = []
    for _ in range(3):
        result, inv = plan_from_cluster(kc, config, now())
        statuses.append(renewer.run(result, inv)[0].status)
    assert statuses == ["failed", "backoff", "backoff"]
    assert issuer.calls == [NAME]  # one order, not one per pass


def test_a_secret_renewed_by_someone_else_after_the_plan_is_not_overwritten(
    cluster: tuple[FakeCluster, Path, CA],
) -> None:
    fake, kc, ca = cluster
    renewer, _issuer, config = renewer_for(fake, kc, ca)
    result, inv = plan_from_cluster(kc, config, now())  # plan: app-tls is due
    crt, key, _ = ca.leaf([HOST, f"www.{HOST}"], days_left=80)
    kube.seed_object(
        fake,
        f.secret(
            NAME,
            data={"tls.crt": crt, "tls.key": key, "ca.crt": b"client ca"},
            annotations={"rotator.io/issued-by": "internal"},
        ),
    )  # another writer, meanwhile
    (outcome,) = renewer.run(result, inv)
    assert outcome.status == "skipped", outcome
    assert secret_data(fake)["tls.crt"] == crt  # theirs kept; re-checked, not overwritten
