"""The CA issuer's leaf profile and health, on real keys (no network)."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509 import DNSName
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store

from rotator.checks import certs
from rotator.issuers.base import IssueRequest, IssuerError
from rotator.issuers.ca import CAIssuer, load_material
from rotator.util import pki

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def hierarchy(root_days: float = 3650, inter_days: float = 1000) -> tuple[bytes, bytes, x509.Certificate]:
    """Root → intermediate; returns the issuer's tls.crt (intermediate + root), tls.key, root."""
    root_key = pki.new_key("ecdsa-p384")
    root = pki.build_certificate(
        subject_cn="Test Root",
        public_key=root_key.public_key(),
        not_before=NOW - timedelta(days=10),
        not_after=NOW + timedelta(days=root_days),
        issuer_cert=None,
        issuer_key=root_key,
        is_ca=True,
    )
    key = pki.new_key()
    inter = pki.build_certificate(
        subject_cn="Test Issuing CA",
        public_key=key.public_key(),
        not_before=NOW - timedelta(days=10),
        not_after=NOW + timedelta(days=inter_days),
        issuer_cert=root,
        issuer_key=root_key,
        is_ca=True,
        path_length=0,
    )
    return pki.cert_pem(inter, root), pki.key_pem(key), root


def issuer(
    validity_days: float = 90, inter_days: float = 1000, client_auth: bool = False
) -> tuple[CAIssuer, x509.Certificate]:
    crt, key, root = hierarchy(inter_days=inter_days)
    return CAIssuer(
        "ca",
        lambda: load_material(crt, key, "test"),
        timedelta(days=validity_days),
        lambda: NOW,
        client_auth=client_auth,
    ), root


def req(*sans: str, **kw: object) -> IssueRequest:
    return IssueRequest("ns", "s", sans, "ecdsa-p256", **kw)  # type: ignore[arg-type]


def test_leaf_profile_and_chain(tmp_path: Path) -> None:
    ca, root = issuer()
    issued = ca.issue(req("a.example.com", "*.a.example.com", "10.0.0.7"))
    chain = certs.parse_bundle(issued.chain_pem).certs
    leaf, inter = chain
    assert len(chain) == 2  # leaf + intermediate, never the self-signed root
    assert certs.typed_sans(leaf) == (("a.example.com", "*.a.example.com"), ("10.0.0.7",))
    assert leaf.not_valid_after_utc - NOW == timedelta(days=90)
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    ski = leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    inter_ski = inter.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski.digest and aki.key_identifier == inter_ski.digest
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert 64 < leaf.serial_number.bit_length() <= 127
    PolicyBuilder().store(Store([root])).time(NOW).build_server_verifier(DNSName("x.a.example.com")).verify(
        leaf, [inter]
    )
    (tmp_path / "root.pem").write_bytes(pki.cert_pem(root))
    (tmp_path / "inter.pem").write_bytes(pki.cert_pem(inter))
    (tmp_path / "leaf.pem").write_bytes(pki.cert_pem(leaf))
    p = subprocess.run(
        [
            "openssl",
            "verify",
            "-attime",
            str(int(NOW.timestamp())),
            "-CAfile",
            str(tmp_path / "root.pem"),
            "-untrusted",
            str(tmp_path / "inter.pem"),
            str(tmp_path / "leaf.pem"),
        ],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stdout + p.stderr


def test_serials_are_random() -> None:
    ca, _ = issuer()
    serials = {ca.issue(req("a.example.com")).serial for _ in range(20)}
    assert len(serials) == 20


def test_validity_never_outlives_the_ca() -> None:
    ca, _ = issuer(validity_days=90, inter_days=30)
    leaf = certs.parse_bundle(ca.issue(req("a.example.com")).chain_pem).certs[0]
    assert leaf.not_valid_after_utc == NOW + timedelta(days=30)


def test_client_auth_when_asked() -> None:
    ca, _ = issuer(client_auth=True)
    leaf = certs.parse_bundle(ca.issue(req("a.example.com")).chain_pem).certs[0]
    eku = list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert eku == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    ca2, _ = issuer()
    leaf2 = certs.parse_bundle(ca2.issue(req("a.example.com", client_auth=True)).chain_pem).certs[0]
    assert ExtendedKeyUsageOID.CLIENT_AUTH in list(
        leaf2.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    )


@pytest.mark.parametrize(
    ("algo", "pkcs1", "header", "kind"),
    [
        ("ecdsa-p256", False, b"BEGIN PRIVATE KEY", "ECDSA P-256"),
        ("ecdsa-p384", True, b"BEGIN EC PRIVATE KEY", "ECDSA P-384"),
        ("rsa-2048", True, b"BEGIN RSA PRIVATE KEY", "RSA 2048"),
        ("rsa-4096", False, b"BEGIN PRIVATE KEY", "RSA 4096"),
    ],
)
def test_key_algorithms_and_encodings(algo: str, pkcs1: bool, header: bytes, kind: str) -> None:
    ca, _ = issuer()
    issued = ca.issue(IssueRequest("ns", "s", ("a.example.com",), algo, pkcs1))  # type: ignore[arg-type]
    assert header in issued.key_pem
    key, _ = certs.parse_private_key(issued.key_pem)
    assert key is not None and certs.key_type(key) == kind
    assert certs.key_matches(certs.parse_bundle(issued.chain_pem).certs[0], key)


def test_health_warns_before_the_ca_expires_and_is_critical_after() -> None:
    fine, _ = issuer(inter_days=1000)
    assert fine.health(NOW) == []
    soon, _ = issuer(inter_days=20)
    (warn,) = soon.health(NOW)
    assert warn.code == "issuer-ca-expiring" and warn.severity == "warning"
    (dead,) = soon.health(NOW + timedelta(days=21))
    assert dead.severity == "critical"
    with pytest.raises(IssuerError):
        CAIssuer("ca", soon._load, timedelta(days=90), lambda: NOW + timedelta(days=21)).issue(req("a.example.com"))


def test_owns_only_what_it_signed() -> None:
    ca, _ = issuer()
    other, _ = issuer()
    mine = certs.parse_bundle(ca.issue(req("a.example.com")).chain_pem).certs[0]
    assert ca.owns(mine) and not other.owns(mine)


@pytest.mark.parametrize(
    ("cert_pem", "key_pem", "why"),
    [
        (b"", b"", "no certificate"),
        (None, b"not a key", "not PEM"),
        ("leaf", None, "not a CA"),
    ],
)
def test_bad_ca_material_is_a_clear_error(cert_pem: object, key_pem: object, why: str) -> None:
    crt, key, _ = hierarchy()
    if cert_pem == "leaf":
        ca, _ = issuer()
        issued = ca.issue(req("a.example.com"))
        crt, key = issued.chain_pem, issued.key_pem
    else:
        crt = crt if cert_pem is None else cert_pem  # type: ignore[assignment]
        key = key if key_pem is None else key_pem  # type: ignore[assignment]
    with pytest.raises(IssuerError) as info:
        load_material(crt, key, "Secret rotator/ca")
    assert why in str(info.value) and "Secret rotator/ca" in str(info.value)
