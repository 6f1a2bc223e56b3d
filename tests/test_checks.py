"""Inspection: every content and placement finding fires on a broken Secret and stays
quiet on its healthy counterpart.

The rules come from the reference note ``istio-gateway-credentials.md`` (§3 key names and
precedence, §4 what Envoy rejects, §7.3 SAN coverage). Everything runs through the real
pipeline with real certificates built by ``rotator.util.pki``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from freezegun import freeze_time

from rotator.checks import certs
from rotator.model import CheckResult, Credential, Finding, ObjectRef
from rotator.util import pki
from tests.support import factory as f

NS = "istio-system"
NAME = "app-tls"
HOST = "app.example.com"
SECRET = ObjectRef("Secret", NS, NAME)


# --- helpers -----------------------------------------------------------------------


def check(
    secret: dict[str, Any] | None,
    hosts: tuple[str, ...] | list[str] = (HOST,),
    mode: str = "SIMPLE",
    extra: tuple[dict[str, Any], ...] = (),
    cfg: dict[str, Any] | None = None,
    now: Any = f.NOW,
    **tls: Any,
) -> CheckResult:
    """One ingress Deployment in istio-system, Gateway ``gw`` with one server on ``NAME``."""
    objects = [f.ingress(), f.gateway("gw", [f.server(list(hosts), NAME, mode=mode, **tls)])]
    if secret is not None:
        objects.append(secret)
    objects.extend(extra)
    result: CheckResult = f.run(*objects, cfg=cfg, now=now)
    return result


def server(secret: dict[str, Any] | None, **kw: Any) -> Credential:
    cred: Credential = f.cred(check(secret, **kw), NAME)
    return cred


def client_ca(result: CheckResult, name: str = NAME) -> Credential:
    cred: Credential = f.cred(result, name, "client-ca")
    return cred


def expect(
    cred: Credential,
    code: str,
    severity: str,
    obj: ObjectRef = SECRET,
    count: int | None = None,
    qualified: bool = True,
) -> list[Finding]:
    """``code`` fires with ``severity``, and each message names the object it is about."""
    hits = [x for x in cred.findings if x.code == code]
    assert hits, f"{code} expected, got {f.codes(cred)}"
    if count is not None:
        assert len(hits) == count, hits
    for hit in hits:
        assert hit.severity == severity, hit
        assert hit.object == obj, hit
        assert (f"{obj.namespace}/{obj.name}" if qualified else obj.name) in hit.message, hit.message
    return hits


def absent(cred: Credential, *codes: str) -> None:
    present = set(f.codes(cred)) & set(codes)
    assert not present, f"unexpected {sorted(present)}: {cred.findings}"


def all_messages(result: CheckResult) -> list[str]:
    return [x.message for x in result.findings] + [x.message for c in result.credentials for x in c.findings]


def key_fragments(pem: bytes) -> list[str]:
    """Overlapping 12-character windows of the base64 body: any echo of the key shows up."""
    lines = pem.decode().splitlines()
    body = "".join(line for line in lines if line and not line.startswith("-----") and ":" not in line)
    return [body[i : i + 12] for i in range(0, max(len(body) - 12, 1), 4)]


def tls_data(leaf: f.Leaf) -> dict[str, bytes]:
    return {"tls.crt": leaf.cert_pem(), "tls.key": leaf.key_pem()}


def healthy() -> dict[str, Any]:
    return f.secret(NAME, leaf=f.make_leaf([HOST]))


# --- the healthy baseline ----------------------------------------------------------


def test_healthy_secret_has_no_findings() -> None:
    cred = server(healthy())
    assert cred.state == "ok"
    assert cred.findings == ()
    assert cred.key_family == ("tls.crt", "tls.key")


# --- placement: secret-not-found, secret-wrong-namespace ---------------------------


def test_secret_not_found() -> None:
    cred = server(None)
    (hit,) = expect(cred, "secret-not-found", "critical")
    assert "Gateway istio-system/gw" in hit.message
    assert cred.state == "missing"
    assert cred.certificate is None


def test_existing_secret_is_found() -> None:
    cred = server(healthy())
    absent(cred, "secret-not-found", "secret-wrong-namespace")


@pytest.mark.parametrize("type_", ["helm.sh/release.v1", "kubernetes.io/service-account-token"])
def test_secret_of_a_type_istiod_never_reads_is_not_found(type_: str) -> None:
    leaf = f.make_leaf([HOST])
    cred = server(f.secret(NAME, leaf=leaf, type_=type_))
    (hit,) = expect(cred, "secret-not-found", "critical")
    assert type_ in hit.message
    assert cred.state == "missing"


def test_untyped_secret_is_read() -> None:
    """§2.7: any other type is fine; the type is not checked."""
    cred = server(f.secret(NAME, leaf=f.make_leaf([HOST]), type_="Opaque"))
    assert cred.state == "ok"
    absent(cred, "secret-not-found")


def _gateway_in_apps(secret_namespace: str) -> Credential:
    """Gateway resource in ``apps``, gateway workload in ``istio-system`` (§2.1)."""
    result = f.run(
        f.ingress(),
        f.gateway("gw", [f.server([HOST], NAME)], namespace="apps"),
        f.secret(NAME, namespace=secret_namespace, leaf=f.make_leaf([HOST])),
    )
    cred: Credential = f.cred(result, NAME, namespace=NS)
    return cred


def test_secret_in_gateway_namespace_instead_of_workload_namespace() -> None:
    cred = _gateway_in_apps("apps")
    # The message names the Secret and both namespaces rather than one ns/name pair.
    (hit,) = expect(cred, "secret-wrong-namespace", "critical", qualified=False)
    assert "apps" in hit.message and "'istio-system'" in hit.message
    absent(cred, "secret-not-found")
    assert cred.state == "missing"


def test_secret_in_workload_namespace_is_not_wrong_namespace() -> None:
    cred = _gateway_in_apps(NS)
    absent(cred, "secret-wrong-namespace", "secret-not-found")
    assert cred.state == "ok"


# --- invalid-pem ---------------------------------------------------------------------


def _corrupted_key_pem(leaf: f.Leaf) -> bytes:
    """A real key's PEM with one base64 line replaced: looks right, does not parse."""
    lines = leaf.key_pem().decode().splitlines()
    lines[2] = base64.b64encode(b"\x00" * 48).decode()
    return ("\n".join(lines) + "\n").encode()


def _traditional_encrypted(leaf: f.Leaf) -> bytes:
    return bytes(
        leaf.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.BestAvailableEncryption(b"pw"),
        )
    )


DataCase = Callable[[f.Leaf], dict[str, bytes]]

INVALID_PEM_CASES: dict[str, DataCase] = {
    "garbage-cert": lambda leaf: {"tls.crt": b"this is not a certificate", "tls.key": leaf.key_pem()},
    "truncated-cert": lambda leaf: {"tls.crt": leaf.cert_pem()[:200], "tls.key": leaf.key_pem()},
    "bad-cert-block": lambda leaf: {
        "tls.crt": b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "tls.key": leaf.key_pem(),
    },
    "garbage-key": lambda leaf: {"tls.crt": leaf.cert_pem(), "tls.key": b"s3cr3t-n0t-a-key-material-xyz"},
    "corrupted-key": lambda leaf: {"tls.crt": leaf.cert_pem(), "tls.key": _corrupted_key_pem(leaf)},
    "encrypted-pkcs8-key": lambda leaf: {"tls.crt": leaf.cert_pem(), "tls.key": f.encrypted_key_pem(leaf.key)},
    "encrypted-traditional-key": lambda leaf: {"tls.crt": leaf.cert_pem(), "tls.key": _traditional_encrypted(leaf)},
    "cert-and-key-swapped": lambda leaf: {"tls.crt": leaf.key_pem(), "tls.key": leaf.cert_pem()},
    "key-in-cert-family": lambda leaf: {"cert": leaf.key_pem(), "key": leaf.key_pem()},
}


@pytest.mark.parametrize("case", sorted(INVALID_PEM_CASES))
def test_invalid_pem(case: str) -> None:
    leaf = f.make_leaf([HOST])
    data = INVALID_PEM_CASES[case](leaf)
    result = check(f.secret(NAME, data=data))
    cred = f.cred(result, NAME)
    expect(cred, "invalid-pem", "critical")
    assert cred.state == "invalid"
    # The key material must never reach a message (logs, reports, alerts).
    messages = all_messages(result)
    for value in data.values():
        if b"PRIVATE KEY" in value:
            for fragment in key_fragments(value):
                assert not any(fragment in m for m in messages), f"key material {fragment!r} leaked"
    assert not any("s3cr3t" in m for m in messages)


def test_encrypted_key_message_says_encrypted() -> None:
    leaf = f.make_leaf([HOST])
    cred = server(f.secret(NAME, data={"tls.crt": leaf.cert_pem(), "tls.key": f.encrypted_key_pem(leaf.key)}))
    (hit,) = expect(cred, "invalid-pem", "critical")
    assert "encrypted" in hit.message
    assert "'tls.key'" in hit.message


def test_garbage_cert_message_names_the_key() -> None:
    leaf = f.make_leaf([HOST])
    cred = server(f.secret(NAME, data={"tls.crt": b"garbage", "tls.key": leaf.key_pem()}))
    (hit,) = expect(cred, "invalid-pem", "critical")
    assert "'tls.crt'" in hit.message
    assert cred.certificate is None


@pytest.mark.parametrize("pkcs1", [False, True])
def test_valid_pem_in_either_key_format_is_not_invalid(pkcs1: bool) -> None:
    leaf = f.make_leaf([HOST], algo="rsa-2048")
    data = {"tls.crt": leaf.cert_pem(), "tls.key": pki.key_pem(leaf.key, pkcs1=pkcs1)}
    cred = server(f.secret(NAME, data=data))
    absent(cred, "invalid-pem", "key-mismatch")
    assert cred.state == "ok"


def corrupted_rsa_pem(key: Any, field: str) -> bytes:
    """The key with one private parameter off by one: what a truncated copy or a bad
    hand edit does. Loaded without validation, as OpenSSL would refuse to build it."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    n = key.private_numbers()
    values = {"p": n.p, "q": n.q, "d": n.d, "dmp1": n.dmp1, "dmq1": n.dmq1, "iqmp": n.iqmp}
    values[field] += 2
    broken = rsa.RSAPrivateNumbers(public_numbers=n.public_numbers, **values)
    return broken.private_key(unsafe_skip_rsa_key_validation=True).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.mark.parametrize("field", ["d", "dmp1", "dmq1", "iqmp"])  # n = p·q: cryptography checks that itself
def test_a_corrupted_rsa_key_is_invalid_though_its_primes_are_not_tested(field: str) -> None:
    """Inspection skips OpenSSL's expensive prime tests (rotator never signs with a
    tenant's key) but still refuses a key whose parameters do not fit together, as the
    gateway's TLS library would."""
    leaf = f.make_leaf([HOST], algo="rsa-2048")
    cred = server(f.secret(NAME, data={"tls.crt": leaf.cert_pem(), "tls.key": corrupted_rsa_pem(leaf.key, field)}))
    (hit,) = expect(cred, "invalid-pem", "critical")
    assert "inconsistent" in hit.message and "'tls.key'" in hit.message


def test_inspection_skips_the_rsa_prime_tests_and_a_ca_key_keeps_them(monkeypatch: pytest.MonkeyPatch) -> None:
    from rotator.issuers.ca import load_material

    calls: list[bool] = []
    real = serialization.load_pem_private_key

    def spy(data: bytes, password: Any = None, **kw: Any) -> Any:
        calls.append(bool(kw.get("unsafe_skip_rsa_key_validation")))
        return real(data, password, **kw)

    monkeypatch.setattr(serialization, "load_pem_private_key", spy)
    leaf = f.make_leaf([HOST], algo="rsa-2048")
    server(f.secret(NAME, data={"tls.crt": leaf.cert_pem(), "tls.key": leaf.key_pem()}))
    assert calls == [True]
    ca = f.make_ca()
    load_material(pki.cert_pem(ca.cert), pki.key_pem(ca.key), "test")
    assert calls == [True, False]


# --- missing-keys ----------------------------------------------------------------------


MISSING_KEYS_CASES: dict[str, DataCase] = {
    "only-tls.crt": lambda leaf: {"tls.crt": leaf.cert_pem()},
    "only-tls.key": lambda leaf: {"tls.key": leaf.key_pem()},
    "empty-tls.key": lambda leaf: {"tls.crt": leaf.cert_pem(), "tls.key": b""},
    "empty-cert-and-key": lambda leaf: {"cert": b"", "key": b""},
    "cert-with-tls.key": lambda leaf: {"cert": leaf.cert_pem(), "tls.key": leaf.key_pem()},
    "tls.crt-with-key": lambda leaf: {"tls.crt": leaf.cert_pem(), "key": leaf.key_pem()},
    "ca-only": lambda leaf: {"ca.crt": f.default_ca().pem()},
    "no-data": lambda leaf: {},
}


@pytest.mark.parametrize("case", sorted(MISSING_KEYS_CASES))
def test_missing_keys(case: str) -> None:
    cred = server(f.secret(NAME, data=MISSING_KEYS_CASES[case](f.make_leaf([HOST]))))
    expect(cred, "missing-keys", "critical", count=1)
    assert cred.state == "invalid"
    assert cred.certificate is None


def test_missing_keys_message_lists_empty_values() -> None:
    leaf = f.make_leaf([HOST])
    cred = server(f.secret(NAME, data={"tls.crt": leaf.cert_pem(), "tls.key": b""}))
    (hit,) = expect(cred, "missing-keys", "critical")
    assert "tls.key empty" in hit.message


@pytest.mark.parametrize("family", [("tls.crt", "tls.key"), ("cert", "key")])
def test_complete_family_has_no_missing_keys(family: tuple[str, str]) -> None:
    leaf = f.make_leaf([HOST])
    cred = server(f.secret(NAME, data={family[0]: leaf.cert_pem(), family[1]: leaf.key_pem()}))
    absent(cred, "missing-keys")
    assert cred.key_family == family
    assert cred.state == "ok"


def test_empty_cert_family_falls_through_to_tls_family() -> None:
    """§3.1: an empty value counts as absent when choosing a branch."""
    leaf = f.make_leaf([HOST])
    cred = server(f.secret(NAME, data={"cert": b"", "key": b"", **tls_data(leaf)}))
    absent(cred, "missing-keys", "shadowed-keys", "invalid-pem")
    assert cred.key_family == ("tls.crt", "tls.key")


def test_whitespace_only_values_are_present_for_istiod() -> None:
    """istiod's hasValue is ``len(v) == 0``: a newline is a value, so cert/key wins and fails."""
    leaf = f.make_leaf([HOST])
    cred = server(f.secret(NAME, data={"cert": b"\n", "key": b"\n", **tls_data(leaf)}))
    assert cred.key_family == ("cert", "key")
    expect(cred, "invalid-pem", "critical")
    assert cred.state == "invalid"


# --- shadowed-keys ---------------------------------------------------------------------


def test_shadowed_keys_with_different_certificate() -> None:
    served = f.make_leaf([HOST])
    stale = f.make_leaf([HOST], nb=-100, na=-5)
    data = {"cert": served.cert_pem(), "key": served.key_pem(), **tls_data(stale)}
    cred = server(f.secret(NAME, data=data))
    (hit,) = expect(cred, "shadowed-keys", "warning")
    assert "no effect" in hit.message
    # cert/key wins: the credential reports the cert/key certificate, which is valid.
    assert cred.key_family == ("cert", "key")
    assert cred.certificate is not None
    assert cred.certificate.serial == format(served.cert.serial_number, "x")
    absent(cred, "cert-expired")
    assert cred.state == "ok"


def test_shadowed_keys_hide_a_fresh_rotation() -> None:
    """The trap: a rotation wrote tls.crt/tls.key, but the stale cert/key is still served."""
    stale = f.make_leaf([HOST], nb=-100, na=-5)
    rotated = f.make_leaf([HOST])
    data = {"cert": stale.cert_pem(), "key": stale.key_pem(), **tls_data(rotated)}
    cred = server(f.secret(NAME, data=data))
    expect(cred, "shadowed-keys", "warning")
    expect(cred, "cert-expired", "critical")
    assert cred.certificate is not None
    assert cred.certificate.serial == format(stale.cert.serial_number, "x")
    assert cred.state == "expired"


def test_identical_shadowed_copies_are_info() -> None:
    leaf = f.make_leaf([HOST])
    data = {"cert": leaf.cert_pem(), "key": leaf.key_pem(), **tls_data(leaf)}
    cred = server(f.secret(NAME, data=data))
    (hit,) = expect(cred, "shadowed-keys", "info")
    assert "identical" in hit.message
    assert cred.state == "ok"


def test_single_family_is_not_shadowed() -> None:
    cred = server(healthy())
    absent(cred, "shadowed-keys")


def _mutual_with(data: dict[str, bytes]) -> CheckResult:
    return check(f.secret(NAME, data=data), mode="MUTUAL")


def test_cacert_shadows_different_ca_crt() -> None:
    leaf = f.make_leaf([HOST])
    trusted, ignored = f.make_ca("Client CA A"), f.make_ca("Client CA B")
    result = _mutual_with({**tls_data(leaf), "cacert": trusted.pem(), "ca.crt": ignored.pem()})
    ca = client_ca(result)
    (hit,) = expect(ca, "shadowed-keys", "warning")
    assert "cacert" in hit.message
    # cacert wins (§3.2): the credential describes the cacert bundle.
    assert ca.certificate is not None and ca.certificate.subject == "CN=Client CA A"
    absent(f.cred(result, NAME), "shadowed-keys")


@pytest.mark.parametrize("keys", [("ca.crt",), ("cacert",)])
def test_single_ca_key_is_not_shadowed(keys: tuple[str, ...]) -> None:
    leaf = f.make_leaf([HOST])
    bundle = f.make_ca("Client CA").pem()
    result = _mutual_with({**tls_data(leaf), **dict.fromkeys(keys, bundle)})
    ca = client_ca(result)
    absent(ca, "shadowed-keys", "client-ca-missing")
    assert ca.state == "ok"


def test_identical_cacert_and_ca_crt_are_noted_as_info_like_server_copies() -> None:
    leaf = f.make_leaf([HOST])
    bundle = f.make_ca("Client CA").pem()
    ca = client_ca(_mutual_with({**tls_data(leaf), "cacert": bundle, "ca.crt": bundle}))
    (hit,) = expect(ca, "shadowed-keys", "info")
    assert "identical" in hit.message
    assert ca.state == "ok"


def test_lone_identical_tls_crt_next_to_cert_key_is_info_not_a_different_certificate() -> None:
    leaf = f.make_leaf([HOST])
    cred = server(f.secret(NAME, data={"cert": leaf.cert_pem(), "key": leaf.key_pem(), "tls.crt": leaf.cert_pem()}))
    (hit,) = expect(cred, "shadowed-keys", "info")
    assert "different" not in hit.message and "tls.crt" in hit.message and "tls.key" not in hit.message


# --- key-mismatch ------------------------------------------------------------------------


def test_key_mismatch() -> None:
    leaf, other = f.make_leaf([HOST]), f.make_leaf([HOST])
    cred = server(f.secret(NAME, data={"tls.crt": leaf.cert_pem(), "tls.key": other.key_pem()}))
    (hit,) = expect(cred, "key-mismatch", "critical")
    assert "'tls.key'" in hit.message
    assert cred.state == "invalid"
    absent(cred, "chain-order")


@pytest.mark.parametrize("algo", ["ecdsa-p256", "rsa-2048", "ed25519"])
def test_matching_key_is_not_a_mismatch(algo: pki.KeyAlgorithm) -> None:
    cred = server(f.secret(NAME, leaf=f.make_leaf([HOST], algo=algo)))
    absent(cred, "key-mismatch")
    assert cred.state == "ok"


# --- chain-order -------------------------------------------------------------------------


def _three_level() -> tuple[f.CA, f.CA, f.Leaf]:
    root = f.make_ca("Chain Root")
    inter = f.make_ca("Chain Intermediate", parent=root)
    leaf = f.make_leaf([HOST], ca=inter, chain=False)
    return root, inter, leaf


def test_leaf_not_first_is_a_key_mismatch_for_envoy() -> None:
    root, inter, leaf = _three_level()
    pem = pki.cert_pem(inter.cert, leaf.cert, root.cert)
    cred = server(f.secret(NAME, data={"tls.crt": pem, "tls.key": leaf.key_pem()}))
    (hit,) = expect(cred, "key-mismatch", "critical")
    assert "Put the leaf first" in hit.message and "certificate 2" in hit.message
    assert cred.state == "invalid"
    expect(cred, "chain-order", "error")
    # The report describes the certificate the key belongs to.
    assert cred.certificate is not None and cred.certificate.subject == f"CN={HOST}"


def test_intermediate_followed_by_the_wrong_parent() -> None:
    root, inter, leaf = _three_level()
    pem = pki.cert_pem(leaf.cert, root.cert, inter.cert)
    cred = server(f.secret(NAME, data={"tls.crt": pem, "tls.key": leaf.key_pem()}))
    (hit,) = expect(cred, "chain-order", "error")
    assert "certificate 1" in hit.message and "certificate 2" in hit.message


def test_intermediate_with_the_same_name_but_another_key() -> None:
    """A re-keyed intermediate with the same subject is not the leaf's issuer."""
    root, _inter, leaf = _three_level()
    rekeyed = f.make_ca("Chain Intermediate", parent=root)
    pem = pki.cert_pem(leaf.cert, rekeyed.cert, root.cert)
    cred = server(f.secret(NAME, data={"tls.crt": pem, "tls.key": leaf.key_pem()}))
    expect(cred, "chain-order", "error", count=1)


def test_wrong_intermediate_deeper_in_the_chain() -> None:
    _root, inter, leaf = _three_level()
    other_root = f.make_ca("Chain Root")  # same name, other key
    pem = pki.cert_pem(leaf.cert, inter.cert, other_root.cert)
    cred = server(f.secret(NAME, data={"tls.crt": pem, "tls.key": leaf.key_pem()}))
    (hit,) = expect(cred, "chain-order", "error")
    assert "certificate 2" in hit.message and "certificate 3" in hit.message


@pytest.mark.parametrize("with_root", [True, False])
def test_correct_chain_has_no_chain_order(with_root: bool) -> None:
    root, inter, leaf = _three_level()
    chain = (inter.cert, root.cert) if with_root else (inter.cert,)
    pem = pki.cert_pem(leaf.cert, *chain)
    cred = server(f.secret(NAME, data={"tls.crt": pem, "tls.key": leaf.key_pem()}))
    absent(cred, "chain-order")
    assert cred.certificate is not None and cred.certificate.chain_length == len(chain) + 1


def test_leaf_alone_has_no_chain_order() -> None:
    cred = server(f.secret(NAME, leaf=f.make_leaf([HOST], chain=False)))
    absent(cred, "chain-order")


# --- cert-expired, cert-not-yet-valid -------------------------------------------------


def test_expired_leaf() -> None:
    cred = server(f.secret(NAME, leaf=f.make_leaf([HOST], nb=-100, na=-1)))
    (hit,) = expect(cred, "cert-expired", "critical")
    assert f.rfc(f.t(-1)) in hit.message
    assert cred.state == "expired"


def test_expiry_boundary() -> None:
    """notAfter is inclusive (RFC 5280 §4.1.2.5, Go's x509 too): expired only after it."""
    leaf = f.make_leaf([HOST])
    not_after = leaf.cert.not_valid_after_utc
    at = f.cred(check(f.secret(NAME, leaf=leaf), now=not_after), NAME)
    after = f.cred(check(f.secret(NAME, leaf=leaf), now=not_after + timedelta(seconds=1)), NAME)
    expect(after, "cert-expired", "critical")
    assert after.state == "expired"
    absent(at, "cert-expired")
    assert at.state == "due"


def test_expired_intermediate_is_an_error() -> None:
    root = f.make_ca("Chain Root")
    inter = f.make_ca("Old Intermediate", parent=root, nb=-400, na=-3)
    leaf = f.make_leaf([HOST], ca=inter, chain=False)
    pem = pki.cert_pem(leaf.cert, inter.cert, root.cert)
    cred = server(f.secret(NAME, data={"tls.crt": pem, "tls.key": leaf.key_pem()}))
    (hit,) = expect(cred, "cert-expired", "error")
    assert "chain certificate 2" in hit.message and "Old Intermediate" in hit.message
    assert cred.state == "ok"  # the leaf itself is valid


def test_valid_leaf_and_chain_are_not_expired() -> None:
    cred = server(healthy())
    absent(cred, "cert-expired", "cert-not-yet-valid")


def test_not_yet_valid_leaf() -> None:
    cred = server(f.secret(NAME, leaf=f.make_leaf([HOST], nb=2, na=90)))
    (hit,) = expect(cred, "cert-not-yet-valid", "critical")
    assert f.rfc(f.t(2)) in hit.message
    assert cred.state == "invalid"
    absent(cred, "cert-expired")


def test_not_before_boundary_is_valid() -> None:
    leaf = f.make_leaf([HOST], nb=0, na=90)
    at = f.cred(check(f.secret(NAME, leaf=leaf), now=f.NOW), NAME)
    early = f.cred(check(f.secret(NAME, leaf=leaf), now=f.NOW - timedelta(seconds=1)), NAME)
    absent(at, "cert-not-yet-valid")
    assert at.state == "ok"
    expect(early, "cert-not-yet-valid", "critical")


# --- host-not-covered (§7.3) -----------------------------------------------------------

# (server hosts, certificate SANs, VirtualService hosts bound to the gateway, uncovered hosts)
COVERAGE_CASES: dict[str, tuple[list[str], list[str], list[str], set[str]]] = {
    "exact": (["a.example.com"], ["a.example.com"], [], set()),
    "exact-missing": (["a.example.com"], ["b.example.com"], [], {"a.example.com"}),
    "wildcard-san-one-label": (["a.example.com"], ["*.example.com"], [], set()),
    "wildcard-san-not-apex": (["example.com"], ["*.example.com"], [], {"example.com"}),
    "wildcard-san-not-two-labels": (["a.b.example.com"], ["*.example.com"], [], {"a.b.example.com"}),
    "partial-label-wildcard-san": (["foo.example.com"], ["f*.example.com"], [], {"foo.example.com"}),
    "wildcard-host-needs-wildcard-san": (["*.example.com"], ["a.example.com"], [], {"*.example.com"}),
    "wildcard-host-wildcard-san": (["*.example.com"], ["*.example.com"], [], set()),
    "wildcard-host-wider-san-is-not-enough": (["*.a.example.com"], ["*.example.com"], [], {"*.a.example.com"}),
    "wildcard-host-routes-one-label": (["*.example.com"], ["*.example.com"], ["a.example.com"], set()),
    "wildcard-host-routes-two-labels": (
        ["*.example.com"],
        ["*.example.com"],
        ["a.b.example.com"],
        {"a.b.example.com"},
    ),
    "wildcard-host-routes-narrower-wildcard": (
        ["*.example.com"],
        ["*.example.com"],
        ["*.b.example.com"],
        {"*.b.example.com"},
    ),
    "catch-all-checks-routes": (["*"], ["a.example.com"], ["a.example.com", "b.example.com"], {"b.example.com"}),
    "catch-all-routes-covered": (["*"], ["*.example.com"], ["a.example.com", "b.example.com"], set()),
    "catch-all-without-routes": (["*"], ["a.example.com"], [], set()),
    "namespace-prefix-stripped": (["istio-system/a.example.com"], ["a.example.com"], [], set()),
    "any-namespace-prefix-stripped": (["*/a.example.com"], ["a.example.com"], [], set()),
    "dot-prefix-stripped": (["./a.example.com"], ["b.example.com"], [], {"a.example.com"}),
    "case-insensitive-host": (["App.Example.COM"], ["app.example.com"], [], set()),
    "case-insensitive-san": (["a.example.com"], ["*.EXAMPLE.com"], [], set()),
    "ip-san": (["10.0.0.1"], ["10.0.0.1"], [], set()),
    "ip-san-other-address": (["10.0.0.1"], ["10.0.0.2"], [], {"10.0.0.1"}),
    "ip-host-dns-san": (["10.0.0.1"], ["app.example.com"], [], {"10.0.0.1"}),
    "ipv6-san": (["2001:db8::1"], ["2001:db8:0:0::1"], [], set()),
    "every-host-checked": (["a.example.com", "b.example.com"], ["a.example.com"], [], {"b.example.com"}),
}


def _coverage(server_hosts: list[str], sans: list[str], routes: list[str]) -> Credential:
    extra: tuple[dict[str, Any], ...] = ()
    if routes:
        extra = (f.virtual_service("vs", NS, routes, gateways=["gw"]),)
    leaf = f.make_leaf(sans, cn="coverage")
    return server(f.secret(NAME, leaf=leaf), hosts=server_hosts, extra=extra)


def _uncovered(cred: Credential) -> set[str]:
    return {
        m.group(1)
        for x in cred.findings
        if x.code == "host-not-covered"
        for m in [re.search(r"host '([^']+)'", x.message)]
        if m
    }


@pytest.mark.parametrize("case", sorted(COVERAGE_CASES))
def test_host_coverage(case: str) -> None:
    server_hosts, sans, routes, uncovered = COVERAGE_CASES[case]
    cred = _coverage(server_hosts, sans, routes)
    assert _uncovered(cred) == uncovered
    if uncovered:
        expect(cred, "host-not-covered", "error", count=len(uncovered))
    else:
        absent(cred, "host-not-covered")


def test_host_not_covered_message_lists_sans() -> None:
    cred = _coverage(["a.example.com"], ["b.example.com", "c.example.com"], [])
    (hit,) = expect(cred, "host-not-covered", "error")
    assert "b.example.com, c.example.com" in hit.message


def test_certificate_without_sans_covers_nothing() -> None:
    """Clients ignore the subject CN when checking names (§7.3)."""
    cred = server(f.secret(NAME, leaf=f.make_leaf([], cn=HOST)))
    (hit,) = expect(cred, "host-not-covered", "error")
    assert "none" in hit.message


def test_catch_all_checks_routes_from_other_namespaces() -> None:
    vs = f.virtual_service("vs", "apps", ["shop.example.com"], gateways=["istio-system/gw"])
    cred = server(f.secret(NAME, leaf=f.make_leaf([HOST])), hosts=["*"], extra=(vs,))
    assert _uncovered(cred) == {"shop.example.com"}


@pytest.mark.parametrize(("vs_namespace", "uncovered"), [("apps", {"shop.example.com"}), ("other", set())])
def test_namespace_scoped_catch_all_checks_only_its_namespace(vs_namespace: str, uncovered: set[str]) -> None:
    """A server host ``apps/*`` binds only VirtualServices in ``apps`` (§7.2.2)."""
    vs = f.virtual_service("vs", vs_namespace, ["shop.example.com"], gateways=["istio-system/gw"])
    cred = server(f.secret(NAME, leaf=f.make_leaf([HOST])), hosts=["apps/*"], extra=(vs,))
    assert _uncovered(cred) == uncovered


# --- stale-ocsp-staple ------------------------------------------------------------------


def _stapled(leaf: f.Leaf, staple: bytes, family: tuple[str, str] = ("tls.crt", "tls.key")) -> Credential:
    data = {family[0]: leaf.cert_pem(), family[1]: leaf.key_pem(), "tls.ocsp-staple": staple}
    return server(f.secret(NAME, data=data))


def _der_items(data: bytes) -> list[tuple[int, bytes]]:
    """Top-level DER TLVs (short-form tags only, enough for OCSP)."""
    out: list[tuple[int, bytes]] = []
    i = 0
    while i < len(data):
        tag, length = data[i], data[i + 1]
        i += 2
        if length & 0x80:
            n = length & 0x7F
            length = int.from_bytes(data[i : i + n], "big")
            i += n
        out.append((tag, data[i : i + length]))
        i += length
    return out


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def _join(items: list[tuple[int, bytes]]) -> bytes:
    return b"".join(_der(t, b) for t, b in items)


def _duplicate_single_response(staple: bytes) -> bytes:
    """The same OCSP response with its SingleResponse listed twice (signature not redone)."""
    ((_, outer),) = _der_items(staple)
    status, (bytes_tag, response_bytes) = _der_items(outer)
    ((_, seq),) = _der_items(response_bytes)
    oid, (octet_tag, octet) = _der_items(seq)
    ((_, basic_body),) = _der_items(octet)
    basic = _der_items(basic_body)
    data = _der_items(basic[0][1])
    idx = next(i for i, (t, _) in enumerate(data) if t == 0x30)  # responses SEQUENCE OF
    data[idx] = (0x30, data[idx][1] * 2)
    basic[0] = (0x30, _join(data))
    new_octet = _der(0x30, _join(basic))
    new_bytes = _der(0x30, _join([oid, (octet_tag, new_octet)]))
    return _der(0x30, _join([status, (bytes_tag, new_bytes)]))


def test_ocsp_staple_for_the_leaf_is_fine() -> None:
    ca = f.make_ca("OCSP CA")
    leaf = f.make_leaf([HOST], ca=ca)
    cred = _stapled(leaf, f.ocsp_response(leaf.cert, ca))
    absent(cred, "stale-ocsp-staple")
    assert cred.state == "ok"


def test_ocsp_staple_for_another_serial_after_rotation() -> None:
    ca = f.make_ca("OCSP CA")
    old, new = f.make_leaf([HOST], ca=ca), f.make_leaf([HOST], ca=ca)
    cred = _stapled(new, f.ocsp_response(old.cert, ca))
    (hit,) = expect(cred, "stale-ocsp-staple", "error")
    assert format(old.cert.serial_number, "x") in hit.message
    assert format(new.cert.serial_number, "x") in hit.message


def test_ocsp_staple_from_another_ca_for_the_same_serial() -> None:
    """Envoy matches on the serial alone; rotator also checks the issuer, so a colliding
    serial from another CA is still caught."""
    ca, other = f.make_ca("OCSP CA"), f.make_ca("Other OCSP CA")
    leaf = f.make_leaf([HOST], ca=ca)
    twin = pki.build_certificate(
        subject_cn=HOST,
        public_key=leaf.key.public_key(),
        not_before=f.t(-10),
        not_after=f.t(80),
        issuer_cert=other.cert,
        issuer_key=other.key,
        sans=[HOST],
        serial=leaf.cert.serial_number,
    )
    cred = _stapled(leaf, f.ocsp_response(twin, other))
    (hit,) = expect(cred, "stale-ocsp-staple", "error")
    assert "another CA" in hit.message


def test_garbage_ocsp_staple() -> None:
    cred = _stapled(f.make_leaf([HOST]), b"\x30\x03garbage")
    (hit,) = expect(cred, "stale-ocsp-staple", "error")
    assert "not a DER OCSP response" in hit.message


def test_unsuccessful_ocsp_staple() -> None:
    from cryptography.x509 import ocsp

    staple = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.TRY_LATER)
    cred = _stapled(f.make_leaf([HOST]), staple.public_bytes(serialization.Encoding.DER))
    (hit,) = expect(cred, "stale-ocsp-staple", "error")
    assert "TRY_LATER" in hit.message


def test_ocsp_staple_with_two_responses_is_a_finding_not_a_crash() -> None:
    """Envoy: "OCSP Response must be for one certificate only"."""
    ca = f.make_ca("OCSP CA")
    leaf = f.make_leaf([HOST], ca=ca)
    cred = _stapled(leaf, _duplicate_single_response(f.ocsp_response(leaf.cert, ca)))
    (hit,) = expect(cred, "stale-ocsp-staple", "error")
    assert "2 responses" in hit.message


def test_ocsp_staple_in_cert_family_secret_is_not_read() -> None:
    """§3.1: with cert/key, istiod does not read tls.ocsp-staple at all."""
    cred = _stapled(f.make_leaf([HOST]), b"garbage", family=("cert", "key"))
    absent(cred, "stale-ocsp-staple")
    assert cred.state == "ok"


def test_empty_ocsp_staple_is_no_staple() -> None:
    cred = _stapled(f.make_leaf([HOST]), b"")
    absent(cred, "stale-ocsp-staple")


# --- weak-key, weak-signature ----------------------------------------------------------


def test_weak_rsa_key() -> None:
    cred = server(f.secret(NAME, leaf=f.make_leaf([HOST], algo="rsa-1024")))
    (hit,) = expect(cred, "weak-key", "error")
    assert "1024" in hit.message


@pytest.mark.parametrize("algo", ["rsa-2048", "ecdsa-p256", "ecdsa-p384", "ed25519"])
def test_strong_keys_are_not_weak(algo: pki.KeyAlgorithm) -> None:
    cred = server(f.secret(NAME, leaf=f.make_leaf([HOST], algo=algo)))
    absent(cred, "weak-key")


def test_weak_key_in_the_chain() -> None:
    weak_ca = f.make_ca("Weak CA", algo="rsa-1024")
    cred = server(f.secret(NAME, leaf=f.make_leaf([HOST], ca=weak_ca)))
    (hit,) = expect(cred, "weak-key", "error")
    assert "certificate 2" in hit.message


@pytest.fixture(scope="module")
def rsa_ca() -> f.CA:
    return f.make_ca("RSA Root", algo="rsa-2048")


def test_sha1_signed_leaf(rsa_ca: f.CA) -> None:
    leaf = f.make_leaf([HOST], ca=rsa_ca)
    sha1 = f.Leaf(pki.resign_sha1(leaf.cert, rsa_ca.key), leaf.key, (rsa_ca.cert,))
    cred = server(f.secret(NAME, leaf=sha1))
    (hit,) = expect(cred, "weak-signature", "error")
    assert "SHA1" in hit.message and "certificate 1" in hit.message
    absent(cred, "chain-order")  # the SHA-1 signature is still a valid signature


def test_sha256_signed_leaf_is_not_weak(rsa_ca: f.CA) -> None:
    cred = server(f.secret(NAME, leaf=f.make_leaf([HOST], ca=rsa_ca)))
    absent(cred, "weak-signature")


def test_self_signed_sha1_root_is_not_flagged(rsa_ca: f.CA) -> None:
    """Clients never check a trust anchor's own signature."""
    root_sha1 = pki.resign_sha1(rsa_ca.cert, rsa_ca.key)
    leaf = f.make_leaf([HOST], ca=rsa_ca, chain=False)
    cred = server(f.secret(NAME, leaf=f.Leaf(leaf.cert, leaf.key, (root_sha1,))))
    absent(cred, "weak-signature", "chain-order")


# --- client CA ---------------------------------------------------------------------------


def _mutual(ca_bundle: bytes | None, mode: str = "MUTUAL", cfg: dict[str, Any] | None = None) -> CheckResult:
    data = tls_data(f.make_leaf([HOST]))
    if ca_bundle is not None:
        data["ca.crt"] = ca_bundle
    return check(f.secret(NAME, data=data), mode=mode, cfg=cfg)


@pytest.mark.parametrize("mode", ["MUTUAL", "OPTIONAL_MUTUAL"])
def test_client_ca_missing(mode: str) -> None:
    result = _mutual(None, mode=mode)
    ca = client_ca(result)
    (hit,) = expect(ca, "client-ca-missing", "critical")
    assert mode in hit.message
    assert ca.state == "missing"
    assert f.cred(result, NAME).state == "ok"  # the server pair itself is fine


@pytest.mark.parametrize("mode", ["MUTUAL", "OPTIONAL_MUTUAL"])
def test_client_ca_present(mode: str) -> None:
    ca = client_ca(_mutual(f.make_ca("Client CA").pem(), mode=mode))
    absent(ca, "client-ca-missing", "client-ca-expired", "client-ca-expiring")
    assert ca.state == "ok"


def test_simple_server_needs_no_client_ca() -> None:
    result = check(healthy())
    assert [c.spec.role for c in result.credentials] == ["server"]
    assert "client-ca-missing" not in f.codes(result)


def test_separate_cacert_secret_without_keys_has_no_fallback() -> None:
    """§3.3: ``<name>-cacert`` wins when it exists, even without CA keys."""
    data = {**tls_data(f.make_leaf([HOST])), "ca.crt": f.make_ca("Client CA").pem()}
    cacert = f.secret(f"{NAME}-cacert", data={"unrelated": b"x"}, type_="Opaque")
    result = check(f.secret(NAME, data=data), mode="MUTUAL", extra=(cacert,))
    ca = client_ca(result, f"{NAME}-cacert")
    (hit,) = expect(ca, "client-ca-missing", "critical", obj=ObjectRef("Secret", NS, f"{NAME}-cacert"))
    assert "no fallback" in hit.message


def test_separate_cacert_secret_with_cacert() -> None:
    cacert = f.secret(f"{NAME}-cacert", data={"cacert": f.make_ca("Client CA").pem()}, type_="Opaque")
    result = check(f.secret(NAME, leaf=f.make_leaf([HOST])), mode="MUTUAL", extra=(cacert,))
    ca = client_ca(result, f"{NAME}-cacert")
    absent(ca, "client-ca-missing")
    assert ca.state == "ok"


def test_client_ca_config_map_missing_and_present() -> None:
    ref = "configmap://istio-system/client-ca"
    obj = ObjectRef("ConfigMap", NS, "client-ca")
    missing = check(healthy(), mode="MUTUAL", caCertCredentialName=ref)
    expect(client_ca(missing, "client-ca"), "client-ca-missing", "critical", obj=obj)
    cm = f.config_map("client-ca", NS, {"ca.crt": f.make_ca("Client CA").pem().decode()})
    present = check(healthy(), mode="MUTUAL", caCertCredentialName=ref, extra=(cm,))
    absent(client_ca(present, "client-ca"), "client-ca-missing")


def test_all_client_cas_expired() -> None:
    ca = client_ca(_mutual(f.make_ca("Client CA", nb=-400, na=-1).pem()))
    (hit,) = expect(ca, "client-ca-expired", "critical")
    assert "every client certificate is refused" in hit.message
    assert ca.state == "expired"


def test_one_of_two_client_cas_expired() -> None:
    bundle = f.make_ca("Old Client CA", nb=-400, na=-1).pem() + f.make_ca("New Client CA").pem()
    ca = client_ca(_mutual(bundle))
    (hit,) = expect(ca, "client-ca-expired", "warning")
    assert "Old Client CA" in hit.message
    assert ca.state == "ok"
    assert ca.certificate is not None and ca.certificate.subject == "CN=New Client CA"


def test_valid_client_ca_is_not_expired() -> None:
    absent(client_ca(_mutual(f.make_ca("Client CA").pem())), "client-ca-expired")


def test_client_ca_expiring_inside_default_window() -> None:
    ca = client_ca(_mutual(f.make_ca("Client CA", na=20).pem()))
    (hit,) = expect(ca, "client-ca-expiring", "warning")
    assert f.rfc(f.t(20)) in hit.message
    assert ca.state == "ok"


def test_client_ca_outside_default_window() -> None:
    absent(client_ca(_mutual(f.make_ca("Client CA", na=40).pem())), "client-ca-expiring")


@pytest.mark.parametrize(("window", "fires"), [("60d", True), ("1440h", True), ("7d", False)])
def test_client_ca_warning_is_configurable(window: str, fires: bool) -> None:
    cfg = {"renewal": {"client_ca_warning": window}}
    ca = client_ca(_mutual(f.make_ca("Client CA", na=40).pem(), cfg=cfg))
    assert ("client-ca-expiring" in f.codes(ca)) is fires


def test_expired_client_ca_is_not_also_expiring() -> None:
    ca = client_ca(_mutual(f.make_ca("Client CA", nb=-400, na=-1).pem()))
    absent(ca, "client-ca-expiring")


# --- the clock edge -------------------------------------------------------------------


def test_utcnow_is_the_only_clock_and_is_aware() -> None:
    with freeze_time(f.NOW):
        now = certs.utcnow()
    assert now == f.NOW
    assert now.utcoffset() == timedelta(0)


def test_check_at_the_current_time_uses_the_clock() -> None:
    leaf = f.make_leaf([HOST], nb=-10, na=80)
    with freeze_time(f.t(79)):
        before = f.cred(check(f.secret(NAME, leaf=leaf), now=certs.utcnow()), NAME)
    with freeze_time(f.t(81)):
        after = f.cred(check(f.secret(NAME, leaf=leaf), now=certs.utcnow()), NAME)
    absent(before, "cert-expired")
    expect(after, "cert-expired", "critical")
    assert (before.state, after.state) == ("due", "expired")


def _check_lenient(secret: dict[str, Any]) -> CheckResult:
    """Like ``check`` but lets inventory findings through, as the CLI does."""
    from rotator.discover.wire.inventory import build_inventory
    from rotator.model import RawObject, Source
    from rotator.pipeline import run_check

    objects = [f.ingress(), f.gateway("gw", [f.server([HOST], NAME)]), secret]
    inv, found = build_inventory([RawObject(Source("t.yaml", i), o) for i, o in enumerate(objects)])
    return run_check(inv, f.config(), f.NOW, found)


def test_secret_with_an_unquoted_boolean_label_is_still_inspected() -> None:
    leaf = f.make_leaf([HOST])
    s = f.secret(NAME, leaf=leaf)
    s["metadata"]["labels"] = {"enabled": True}
    result = _check_lenient(s)
    cred = f.cred(result, NAME)
    assert cred.state == "ok"
    absent(cred, "secret-not-found")
    assert any(x.code == "invalid-manifest" and "metadata.labels.enabled" in x.message for x in result.findings)


def test_malformed_secret_is_invalid_not_missing() -> None:
    s = f.secret(NAME, leaf=f.make_leaf([HOST]))
    s["data"] = ["not", "a", "mapping"]
    cred = f.cred(_check_lenient(s), NAME)
    assert cred.state == "invalid"
    absent(cred, "secret-not-found", "secret-wrong-namespace")
    (hit,) = expect(cred, "invalid-manifest", "error")
    assert "data" in hit.message


def test_inline_ca_shadowed_by_a_cacert_secret_is_reported() -> None:
    leaf = f.make_leaf([HOST])
    used, ignored = f.make_ca("Used CA"), f.make_ca("Ignored CA")
    result = check(
        f.secret(NAME, data={**tls_data(leaf), "ca.crt": ignored.pem()}),
        mode="MUTUAL",
        extra=(f.secret(f"{NAME}-cacert", data={"cacert": used.pem()}, type_="Opaque"),),
    )
    ca = client_ca(result, f"{NAME}-cacert")
    (hit,) = expect(ca, "shadowed-keys", "warning", obj=ObjectRef("Secret", "istio-system", f"{NAME}-cacert"))
    assert "ca.crt" in hit.message and "no effect" in hit.message
    assert ca.certificate is not None and ca.certificate.subject == "CN=Used CA"


def test_client_ca_not_yet_valid() -> None:
    leaf = f.make_leaf([HOST])
    future = f.make_ca("Future CA", nb=10, na=400)
    result = _mutual_with({**tls_data(leaf), "ca.crt": future.pem()})
    ca = client_ca(result)
    (hit,) = expect(ca, "cert-not-yet-valid", "critical")
    assert "Future CA" in hit.message and "every client certificate is refused" in hit.message
    assert ca.state == "invalid"
    current = f.make_ca("Current CA")
    both = client_ca(_mutual_with({**tls_data(leaf), "ca.crt": future.pem() + current.pem()}))
    expect(both, "cert-not-yet-valid", "warning")
    assert both.state == "ok"
