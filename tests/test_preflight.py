"""Issuer health: what a renewal would fail on, found before one is due. Against real
pebble and BIND9 (ACME), and the fake API server (CA issuer, `check --preflight`)."""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from rotator.cli import main
from rotator.config.schema import ACMEIssuerConfig, DNS01Config, SecretKeyRef
from rotator.issuers.acme.issuer import ACMEIssuer
from tests.support import acmeenv, kube
from tests.support import factory as f
from tests.support.acmeenv import issuer as acme_issuer
from tests.support.fakeapi import FakeCluster
from tests.support.world import CA, config_file, now

ZONE = acmeenv.ZONE


def messages(acme: ACMEIssuer) -> list[str]:
    found = acme.health(now())
    assert all(x.code == "issuer-unavailable" and x.severity == "error" for x in found)
    return [x.message for x in found]


def with_changes(acme: ACMEIssuer, **changes: Any) -> ACMEIssuer:
    cfg = acme.cfg.model_copy(update=changes)
    return ACMEIssuer.from_config(acme.name, cfg, None, acme.clock)


def test_acme_health_finds_what_an_order_would_fail_on(tmp_path: Path) -> None:
    hmac = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    with acmeenv.bind(tmp_path) as bind, acmeenv.pebble(tmp_path, bind.port) as p:
        good = acme_issuer(bind, p, tmp_path)
        assert messages(good) == []
        assert good._client is None  # read-only: no account was registered

        moved = with_changes(good, directory=p.directory.replace("/dir", "/nothing-here"))
        (msg,) = messages(moved)
        assert "ACME directory" in msg and "unreachable" in msg and "issuer pebble" in msg

        assert "terms_agreed is false" in messages(with_changes(good, terms_agreed=False))[0]

        d = good.cfg.dns01
        assert d is not None
        wrong_zone = with_changes(good, dns01=d.model_copy(update={"zone": "elsewhere.test"}))
        assert messages(wrong_zone) == [
            f"issuer pebble: nameserver {bind.nameserver} is not authoritative for zone elsewhere.test"
        ]
        no_key = with_changes(
            good, dns01=d.model_copy(update={"tsig_secret": SecretKeyRef(file=str(tmp_path / "nope"))})
        )
        assert "TSIG key is unreadable" in messages(no_key)[0]

    second = tmp_path / "with-eab"
    second.mkdir()
    with acmeenv.bind(second) as bind, acmeenv.pebble(second, bind.port, eab={"kid-1": hmac}) as p:
        (second / "eab").write_text(hmac)
        assert "requires External Account Binding" in messages(acme_issuer(bind, p, second))[0]
        eab = SecretKeyRef(file=str(second / "eab"))
        assert messages(acme_issuer(bind, p, second, eab_key_id="kid-1", eab_hmac=eab)) == []


def test_an_unreachable_nameserver_is_named(tmp_path: Path) -> None:
    with acmeenv.bind(tmp_path) as bind, acmeenv.pebble(tmp_path, bind.port) as p:
        good = acme_issuer(bind, p, tmp_path)
        d = good.cfg.dns01
        assert d is not None
        gone = with_changes(good, dns01=d.model_copy(update={"nameserver": f"127.0.0.1:{acmeenv.free_port()}"}))
        (msg,) = messages(gone)
        assert "does not answer" in msg


@pytest.fixture
def cluster(tmp_path: Path) -> Any:
    ca = CA()
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake:
        kube.seed_object(fake, f.ingress())
        kube.seed_object(fake, f.gateway("gw", [f.server(["app.example.com"], "app-tls")]))
        crt, key, _ = ca.leaf(["app.example.com"], days_left=60)  # not due
        kube.seed_object(fake, f.secret("app-tls", data={"tls.crt": crt, "tls.key": key}))
        yield fake, fake.kubeconfig(tmp_path / "kc"), ca
        assert fake.errors == []


def run(*args: str) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    code = main(["check", "-o", "json", "--log-level", "error", *args], stdout=out)
    return code, json.loads(out.getvalue())


def codes(doc: dict[str, Any]) -> list[str]:
    return sorted(x["code"] for x in doc["findings"] if x["code"].startswith("issuer-"))


def test_dry_run_preflight_reads_the_issuers_and_reports_a_missing_ca(cluster: Any, tmp_path: Path) -> None:
    fake, kc, _ca = cluster
    cfg = str(config_file(tmp_path))
    code, doc = run("--dry-run", "--kubeconfig", str(kc), "--config", cfg)
    assert codes(doc) == [] and code == 0
    assert not any(r.name == "internal-ca" for r in fake.requests)  # a plain dry run reads no issuer
    code, doc = run("--dry-run", "--preflight", "--kubeconfig", str(kc), "--config", cfg)
    assert codes(doc) == ["issuer-unavailable"] and code == 2
    (finding,) = [x for x in doc["findings"] if x["code"] == "issuer-unavailable"]
    assert "rotator/internal-ca not found" in finding["message"]
    assert {r.method for r in fake.requests} == {"GET"}  # still changes nothing


def test_preflight_evaluates_the_ca_at_the_given_time(cluster: Any, tmp_path: Path) -> None:
    fake, kc, ca = cluster
    kube.seed_object(fake, ca.secret())  # the CA expires in 900 days
    cfg = str(config_file(tmp_path))
    assert codes(run("--dry-run", "--preflight", "--kubeconfig", str(kc), "--config", cfg)[1]) == []
    code, doc = run("--dry-run", "--preflight", "--at", "+1000d", "--kubeconfig", str(kc), "--config", cfg)
    assert "issuer-ca-expiring" in codes(doc) and code == 2


def test_a_live_pass_checks_issuers_with_nothing_due(cluster: Any, tmp_path: Path) -> None:
    """Before: only issuers with a renewal due were checked, so a missing CA stayed
    hidden until the day it was needed."""
    fake, kc, _ca = cluster
    code, doc = run("--kubeconfig", str(kc), "--config", str(config_file(tmp_path)))
    assert [c["action"] for c in doc["credentials"]] == ["none"]
    assert codes(doc) == ["issuer-unavailable"] and code == 2
    assert fake.denied() == []


def test_acme_issuer_config_used_here_is_valid() -> None:
    """The helper above copies configs; a copy must still be a valid model."""
    cfg = ACMEIssuerConfig(
        type="acme",
        directory="https://acme.test/dir",
        terms_agreed=True,
        dns01=DNS01Config(nameserver="ns", tsig_key_name="k", tsig_secret=SecretKeyRef(env="X")),
    )
    assert (
        ACMEIssuerConfig.model_validate(cfg.model_copy(update={"terms_agreed": False}).model_dump()).terms_agreed
        is False
    )


def test_a_health_check_that_raises_is_a_finding_and_the_pass_goes_on(cluster: Any, tmp_path: Path) -> None:
    """A CA Secret rotator may not read (403) must not fail the pass after renewals."""
    fake, kc, _ca = cluster
    cfg = config_file(
        tmp_path,
        issuers={
            "internal": {"type": "ca", "secret": "rotator/internal-ca", "validity": "720h"},
            "elsewhere": {"type": "ca", "secret": "kube-system/other-ca"},  # outside rotator's RBAC
        },
        rules=[
            {"issuer": "internal", "hosts": ["*.example.com"]},
            {"issuer": "elsewhere", "hosts": ["*.example.org"]},
        ],
    )
    kube.seed_object(fake, f.gateway("gw2", [f.server(["b.example.org"], "b-tls")]))
    crt, key, _ = CA().leaf(["b.example.org"], days_left=60)
    kube.seed_object(fake, f.secret("b-tls", data={"tls.crt": crt, "tls.key": key}))
    code, doc = run("--kubeconfig", str(kc), "--config", str(cfg))
    found = [x for x in doc["findings"] if x["code"] == "issuer-unavailable"]
    assert any(
        "issuer elsewhere: cannot read Secret kube-system/other-ca" in x["message"] and "forbidden" in x["message"]
        for x in found
    ), found
    assert code == 2 and len(doc["credentials"]) == 2  # reported, not "cannot read the cluster"
    assert fake.denied()  # the 403 really happened


def test_offline_preflight_says_a_secret_kept_ca_cannot_be_checked(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    cfg = tmp_path / "rotator.yaml"
    cfg.write_text(
        json.dumps(
            {
                "issuers": {"internal-ca": {"type": "ca", "secret": "istio-system/internal-ca"}},
                "rules": [{"issuer": "internal-ca"}],
            }
        )
    )
    out = io.StringIO()
    args = [
        "check",
        "--dry-run",
        "--preflight",
        "-f",
        str(root / "examples"),
        "--config",
        str(cfg),
        "--at",
        "2026-12-01",
    ]
    main([*args, "-o", "json", "--log-level", "error"], stdout=out)
    issuer = [x for x in json.loads(out.getvalue())["findings"] if x["code"].startswith("issuer-")]
    assert issuer and all(x["severity"] == "info" and "not checkable offline" in x["message"] for x in issuer)


def test_preflight_without_dry_run_is_refused(capsys: Any) -> None:
    assert main(["check", "--preflight"]) == 3
    assert "--preflight goes with --dry-run" in capsys.readouterr().err


def test_preflight_finds_an_alert_sink_whose_secret_is_not_there(tmp_path: Path, monkeypatch: Any) -> None:
    import io
    import json

    import yaml

    from rotator.cli import main

    root = Path(__file__).resolve().parent.parent
    monkeypatch.delenv("PD_ROUTING_KEY", raising=False)
    cfg = tmp_path / "rotator.yaml"
    cfg.write_text(yaml.safe_dump({"pagerduty": {"routing_key": {"env": "PD_ROUTING_KEY"}}}))
    out = io.StringIO()
    argv = ["check", "--dry-run", "--preflight", "-f", str(root / "examples"), "--config", str(cfg), "-o", "json"]
    main([*argv, "--log-level", "error"], stdout=out)
    (hit,) = [x for x in json.loads(out.getvalue())["findings"] if x["code"] == "sink-unavailable"]
    assert "alert sink pagerduty" in hit["message"] and "PD_ROUTING_KEY" in hit["message"]
