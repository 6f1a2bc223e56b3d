"""The ACME issuer against real pebble, with DNS-01 through real BIND9 (RFC 2136 + TSIG)
and HTTP-01 through rotator's responder. Nothing here is mocked: pebble validates the
challenges itself."""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509 import DNSName
from cryptography.x509.verification import PolicyBuilder, Store

from rotator.checks import certs
from rotator.config.schema import SecretKeyRef
from rotator.issuers.acme import dns01 as dns01_module
from rotator.issuers.acme.account import account_key_store
from rotator.issuers.acme.client import offers
from rotator.issuers.acme.issuer import ACMEIssuer
from rotator.issuers.acme.renewal_info import ari_due
from rotator.issuers.base import IssueRequest, IssuerError
from tests.support import acmeenv
from tests.support.acmeenv import ari_pebble, issuer, request, txt

ROOT = Path(__file__).resolve().parent.parent
ZONE = acmeenv.ZONE


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[acmeenv.Bind, acmeenv.Pebble, Path]]:
    tmp = tmp_path_factory.mktemp("acme")
    with acmeenv.bind(tmp) as bind, acmeenv.pebble(tmp, bind.port) as pebble:  # pebble's default 5 % badNonce
        yield bind, pebble, tmp


def verify_chain(chain_pem: bytes, root_pem: bytes, host: str, tmp: Path) -> None:
    """Both cryptography's verifier and `openssl verify` accept the chain for ``host``."""
    chain = certs.parse_bundle(chain_pem).certs
    root = x509.load_pem_x509_certificate(root_pem)
    verifier = PolicyBuilder().store(Store([root])).build_server_verifier(DNSName(host))
    verifier.verify(chain[0], list(chain[1:]))
    (tmp / "root.pem").write_bytes(root_pem)
    (tmp / "leaf.pem").write_bytes(chain_pem.split(b"-----END CERTIFICATE-----")[0] + b"-----END CERTIFICATE-----\n")
    (tmp / "inter.pem").write_bytes(
        b"".join(
            c.public_bytes(
                __import__("cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]).Encoding.PEM
            )
            for c in chain[1:]
        )
    )
    p = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            str(tmp / "root.pem"),
            "-untrusted",
            str(tmp / "inter.pem"),
            str(tmp / "leaf.pem"),
        ],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stdout + p.stderr


def test_dns01_for_a_name_and_its_wildcard(env: tuple[acmeenv.Bind, acmeenv.Pebble, Path]) -> None:
    bind, pebble, tmp = env
    acme = issuer(bind, pebble, tmp)
    issued = acme.issue(request(f"api.{ZONE}", f"*.api.{ZONE}"))
    leaf = certs.parse_bundle(issued.chain_pem).certs[0]
    assert set(certs.sans(leaf)) == {f"api.{ZONE}", f"*.api.{ZONE}"}
    assert certs.key_matches(leaf, certs.parse_private_key(issued.key_pem)[0])  # type: ignore[arg-type]
    assert b"BEGIN PRIVATE KEY" in issued.key_pem  # PKCS#8 by default
    verify_chain(issued.chain_pem, pebble.roots(), f"x.api.{ZONE}", tmp)
    assert txt(bind, f"_acme-challenge.api.{ZONE}") == []  # both values cleaned up


def test_a_wrong_txt_value_is_rejected_by_the_ca_and_cleaned_up(
    env: tuple[acmeenv.Bind, acmeenv.Pebble, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    bind, pebble, tmp = env
    acme = issuer(bind, pebble, tmp)
    real_present = dns01_module.RFC2136Solver.present
    real_wait = dns01_module.RFC2136Solver.wait

    def wrong(records: list[dns01_module.Record]) -> list[dns01_module.Record]:
        return [(name, "not-the-key-authorization") for name, _ in records]

    monkeypatch.setattr(dns01_module.RFC2136Solver, "present", lambda self, r: real_present(self, wrong(r)))
    monkeypatch.setattr(dns01_module.RFC2136Solver, "wait", lambda self, r: real_wait(self, wrong(r)))
    monkeypatch.setattr(
        dns01_module.RFC2136Solver,
        "cleanup",
        lambda self, r, real=dns01_module.RFC2136Solver.cleanup: real(self, wrong(r)),
    )
    with pytest.raises(IssuerError) as info:
        acme.issue(request(f"wrong.{ZONE}"))
    assert "authorization" in str(info.value) and f"wrong.{ZONE}" in str(info.value)
    assert txt(bind, f"_acme-challenge.wrong.{ZONE}") == []


def test_http01_through_the_builtin_responder(env: tuple[acmeenv.Bind, acmeenv.Pebble, Path]) -> None:
    bind, pebble, tmp = env
    acme = issuer(bind, pebble, tmp, solver="http01")
    try:
        issued = acme.issue(request(f"web.{ZONE}"))
    finally:
        assert acme.responder is not None
        acme.responder.close()
    verify_chain(issued.chain_pem, pebble.roots(), f"web.{ZONE}", tmp)
    assert acme.responder.tokens == {}  # tokens withdrawn


def test_http01_cannot_do_wildcards(env: tuple[acmeenv.Bind, acmeenv.Pebble, Path]) -> None:
    bind, pebble, tmp = env
    acme = issuer(bind, pebble, tmp, solver="http01")
    try:
        with pytest.raises(IssuerError) as info:
            acme.issue(request(f"*.wild.{ZONE}"))
    finally:
        assert acme.responder is not None
        acme.responder.close()
    assert "dns-01" in str(info.value)


def test_account_key_is_created_once_and_reused(env: tuple[acmeenv.Bind, acmeenv.Pebble, Path]) -> None:
    bind, pebble, tmp = env
    first = issuer(bind, pebble, tmp)
    path = Path(first.cfg.account_key_file or "")
    first.issue(request(f"acct.{ZONE}"))
    key = path.read_bytes()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    again = ACMEIssuer.from_config("pebble", first.cfg, None, lambda: datetime.now(UTC))
    again.issue(request(f"acct2.{ZONE}"))
    assert path.read_bytes() == key
    assert account_key_store("x", first.cfg, None)() == key


def test_many_issuances_survive_bad_nonces(tmp_path: Path) -> None:
    """pebble rejecting 40 % of nonces: every issuance still succeeds, by retrying badNonce.

    The library retries once per POST, so rotator's own retry runs when two rejections come
    in a row (16 % per call: certain over ~40 calls); a call fails only after 20 in a row."""
    with acmeenv.bind(tmp_path) as bind, acmeenv.pebble(tmp_path, bind.port, env={"PEBBLE_WFE_NONCEREJECT": "40"}) as p:
        acme = issuer(bind, p, tmp_path)
        for i in range(5):
            acme.issue(request(f"nonce{i}.{ZONE}"))
        assert acme.stats["orders"] == 5
        assert acme.stats["bad_nonce_retries"] > 0


def test_eab_required_wrong_and_right(tmp_path: Path) -> None:
    hmac = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    with acmeenv.bind(tmp_path) as bind, acmeenv.pebble(tmp_path, bind.port, eab={"kid-1": hmac}) as p:
        (tmp_path / "eab-wrong").write_text(base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("="))
        (tmp_path / "eab-right").write_text(hmac)
        with pytest.raises(IssuerError) as none:
            issuer(bind, p, tmp_path).issue(request(f"eab0.{ZONE}"))
        assert "registration refused" in str(none.value)
        wrong = issuer(bind, p, tmp_path, eab_key_id="kid-1", eab_hmac=SecretKeyRef(file=str(tmp_path / "eab-wrong")))
        with pytest.raises(IssuerError):
            wrong.issue(request(f"eab1.{ZONE}"))
        right = issuer(bind, p, tmp_path, eab_key_id="kid-1", eab_hmac=SecretKeyRef(file=str(tmp_path / "eab-right")))
        issued = right.issue(request(f"eab2.{ZONE}"))
        assert certs.sans(certs.parse_bundle(issued.chain_pem).certs[0]) == (f"eab2.{ZONE}",)


def test_no_ari_on_this_pebble_is_a_clean_fallback(env: tuple[acmeenv.Bind, acmeenv.Pebble, Path]) -> None:
    bind, pebble, tmp = env
    acme = issuer(bind, pebble, tmp)
    issued = acme.issue(request(f"noari.{ZONE}"))
    leaf = certs.parse_bundle(issued.chain_pem).certs[0]
    if offers(acme._connect().directory, "renewalInfo"):
        pytest.skip("this pebble offers ARI; see test_ari_window_and_replaces")
    assert acme.renewal_window(leaf) is None
    # and a renewal order with the current certificate still works without `replaces`
    again = acme.issue(IssueRequest("istio-system", "app-tls", (f"noari.{ZONE}",), "ecdsa-p256", replaces=leaf))
    assert again.serial != issued.serial


@pytest.mark.skipif(
    ari_pebble() is None,
    reason="pebble 2.6 (Debian trixie, with ARI) could not be obtained; .ci/run fetches it into .ci/cache/pebble-ari",
)
def test_ari_window_and_replaces(tmp_path: Path) -> None:
    with acmeenv.bind(tmp_path) as bind, acmeenv.pebble(tmp_path, bind.port, binary=ari_pebble()) as p:
        acme = issuer(bind, p, tmp_path)
        assert offers(acme._connect().directory, "renewalInfo")
        first = acme.issue(request(f"ari.{ZONE}"))
        leaf = certs.parse_bundle(first.chain_pem).certs[0]
        window = acme.renewal_window(leaf)
        assert window is not None
        start, end = window
        assert certs.not_before(leaf) < start < end <= certs.not_after(leaf)
        assert not ari_due(window, leaf, start - (end - start))
        assert ari_due(window, leaf, end)
        # the renewal order names the certificate it replaces (RFC 9773 §5)
        second = acme.issue(IssueRequest("istio-system", "app-tls", (f"ari.{ZONE}",), "ecdsa-p256", replaces=leaf))
        assert second.serial != first.serial
        assert acme.requests.get("ok", 0) > 0
        # `leaf` is already replaced now: the CA refuses `replaces`, and a plain order follows
        third = acme.issue(IssueRequest("istio-system", "app-tls", (f"ari.{ZONE}",), "ecdsa-p256", replaces=leaf))
        assert third.serial not in (first.serial, second.serial)
        # a certificate from another CA as `replaces` is refused too, and handled the same way
        other = certs.parse_bundle(f_leaf_pem()).certs[0]
        fourth = acme.issue(IssueRequest("istio-system", "app-tls", (f"ari.{ZONE}",), "ecdsa-p256", replaces=other))
        assert fourth.serial


def test_http01_in_a_cluster_routes_the_challenge_with_a_temporary_virtualservice(tmp_path: Path) -> None:
    """The VirtualService exists while pebble validates, is bound to the Gateway, and is gone after."""
    from tests.support import kube
    from tests.support.fakeapi import FakeCluster

    host = f"routed.{ZONE}"
    with (
        acmeenv.bind(tmp_path) as bind,
        acmeenv.pebble(tmp_path, bind.port) as p,
        FakeCluster(rbac_manifests=kube.deploy_rbac()) as cluster,
    ):
        api = kube.api(cluster.kubeconfig(tmp_path / "kc"))
        cfg = acmeenv.issuer_config(bind, p, tmp_path, "http01", cluster_routes=True)
        acme = ACMEIssuer.from_config("pebble", cfg, api, lambda: datetime.now(UTC))
        seen: list[dict[str, object]] = []
        real_answer = acme._answer

        def answer(client: object, challb: object) -> None:
            seen.extend(cluster.list("networking.istio.io/v1", "VirtualService", "rotator"))
            real_answer(client, challb)  # type: ignore[arg-type]

        acme._answer = answer  # type: ignore[method-assign]
        try:
            acme.issue(
                IssueRequest(
                    "istio-system", "routed-tls", (host,), "ecdsa-p256", gateways=("istio-system/api-gateway",)
                )
            )
        finally:
            assert acme.responder is not None
            acme.responder.close()
        (route,) = seen
        spec = route["spec"]
        assert spec["hosts"] == [host] and spec["gateways"] == ["istio-system/api-gateway"]  # type: ignore[index]
        assert spec["http"][0]["match"][0]["uri"]["prefix"] == "/.well-known/acme-challenge/"  # type: ignore[index]
        assert cluster.list("networking.istio.io/v1", "VirtualService", "rotator") == []
        assert cluster.denied() == []


def test_no_tsig_secret_eab_key_or_account_key_in_logs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Debug logs of a DNS-01 issuance with EAB, and of failures, never carry credentials."""
    from rotator.util import logs

    logs.configure("debug", "json")
    hmac = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    (tmp_path / "eab").write_text(hmac)
    with acmeenv.bind(tmp_path) as bind, acmeenv.pebble(tmp_path, bind.port, eab={"kid-9": hmac}) as p:
        acme = issuer(bind, p, tmp_path, eab_key_id="kid-9", eab_hmac=SecretKeyRef(file=str(tmp_path / "eab")))
        acme.issue(request(f"logs.{ZONE}"))
        with pytest.raises(IssuerError):
            acme.issue(request("not-in-the-zone.example.org"))  # a failure path logs too
        account = Path(acme.cfg.account_key_file or "").read_text()
    out = capsys.readouterr()
    text = out.out + out.err
    assert bind.tsig_secret not in text and hmac not in text
    assert not any(line in text for line in account.splitlines() if "-----" not in line)


def f_leaf_pem() -> bytes:
    from tests.support import factory

    return factory.make_leaf(["other.example.com"]).cert_pem()


def test_retry_after_is_read_from_seconds_and_http_dates() -> None:
    import requests

    from rotator.issuers.acme.client import retry_after_seconds

    r = requests.Response()
    r.headers["Retry-After"] = "86400"
    assert retry_after_seconds(r) == 86400
    r.headers["Retry-After"] = "Wed, 21 Oct 2099 07:28:00 GMT"
    assert (retry_after_seconds(r) or 0) > 365 * 86400
    r.headers["Retry-After"] = "soon"
    assert retry_after_seconds(r) is None
    assert retry_after_seconds(None) is None
