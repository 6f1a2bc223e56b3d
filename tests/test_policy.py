"""Renewal policy: the credential state machine, when renewal is due, which issuer
renews it, and when rotator must keep its hands off.

Evaluation time is always passed explicitly as ``now``; certificates are real.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from rotator.model import CheckResult, Credential, Finding, ObjectRef
from tests.support import factory as f

NS = "istio-system"
NAME = "app-tls"
HOST = "app.example.com"
SECRET = ObjectRef("Secret", NS, NAME)
ISSUERS: dict[str, Any] = {
    "internal": {"type": "ca", "secret": "istio-system/root-ca"},
    "public": {"type": "acme", "directory": "https://acme.example/directory", "solver": "http01", "http01": {}},
    "partner": {"type": "ca", "cert_file": "ca.pem", "key_file": "ca.key"},
}
CATCH_ALL = {"issuers": ISSUERS, "rules": [{"issuer": "internal", "create": True}]}


# --- helpers -----------------------------------------------------------------------


def cfg(*rules: dict[str, Any], renew_before: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"issuers": ISSUERS, "rules": list(rules)}
    if renew_before is not None:
        out["renewal"] = {"renew_before": renew_before}
    return out


def run(
    secret: dict[str, Any] | None,
    config: dict[str, Any] | None = None,
    hosts: tuple[str, ...] | list[str] = (HOST,),
    mode: str = "SIMPLE",
    namespace: str = NS,
    now: Any = f.NOW,
) -> CheckResult:
    """Gateway ``gw`` whose gateway workload runs in ``namespace``, with one server on NAME."""
    objects = [
        f.ingress(namespace),
        f.gateway("gw", [f.server(list(hosts), NAME, mode=mode)], namespace=namespace),
    ]
    if secret is not None:
        objects.append(secret)
    result: CheckResult = f.run(*objects, cfg=config, now=now)
    return result


def cred_of(
    secret: dict[str, Any] | None, config: dict[str, Any] | None = None, namespace: str = NS, **kw: Any
) -> Credential:
    cred: Credential = f.cred(run(secret, config, namespace=namespace, **kw), NAME, namespace=namespace)
    return cred


def fresh(**kw: Any) -> f.Leaf:
    """A 90-day certificate 10 days old: default renewal at day 60, i.e. f.t(50)."""
    return f.make_leaf([HOST], nb=-10, na=80, **kw)


def due_leaf() -> f.Leaf:
    """A 90-day certificate 70 days old: inside the default window since f.t(-10)."""
    return f.make_leaf([HOST], nb=-70, na=20)


def long_leaf() -> f.Leaf:
    """A 180-day certificate: default renew-before 60d (f.t(110)), easy to tell apart from 30d."""
    return f.make_leaf([HOST], nb=-10, na=170)


def secret_with(leaf: f.Leaf | None = None, name: str = NAME, namespace: str = NS, **kw: Any) -> dict[str, Any]:
    return f.secret(name, namespace=namespace, leaf=leaf or fresh(), **kw)


def expect(cred: Credential, code: str, severity: str) -> Finding:
    hits = [x for x in cred.findings if x.code == code]
    assert len(hits) == 1, f"one {code} expected, got {f.codes(cred)}"
    hit = hits[0]
    assert hit.severity == severity, hit
    assert hit.object == ObjectRef("Secret", cred.spec.namespace, cred.spec.name), hit
    assert f"{cred.spec.namespace}/{cred.spec.name}" in hit.message, hit.message
    return hit


def absent(cred: Credential, *codes: str) -> None:
    present = set(f.codes(cred)) & set(codes)
    assert not present, f"unexpected {sorted(present)}: {cred.findings}"


# --- the state machine ---------------------------------------------------------------


def _mismatched() -> dict[str, Any]:
    leaf, other = fresh(), fresh()
    return f.secret(NAME, data={"tls.crt": leaf.cert_pem(), "tls.key": other.key_pem()})


STATES: dict[str, tuple[Any, str, str]] = {
    # scenario: (secret factory, state, reason code)
    "ok": (lambda: secret_with(fresh()), "ok", ""),
    "due": (lambda: secret_with(due_leaf()), "due", "due"),
    "expired": (lambda: secret_with(f.make_leaf([HOST], nb=-100, na=-1)), "expired", "expired"),
    "invalid-key-mismatch": (_mismatched, "invalid", "content-invalid"),
    "invalid-not-yet-valid": (lambda: secret_with(f.make_leaf([HOST], nb=1, na=91)), "invalid", "content-invalid"),
    "invalid-missing-keys": (
        lambda: f.secret(NAME, data={"tls.crt": fresh().cert_pem()}),
        "invalid",
        "content-invalid",
    ),
    "missing": (lambda: None, "missing", "secret-missing"),
}


@pytest.mark.parametrize("scenario", sorted(STATES))
def test_state_and_action(scenario: str) -> None:
    make, state, reason_code = STATES[scenario]
    cred = cred_of(make(), CATCH_ALL)
    assert cred.state == state
    if reason_code:
        assert cred.action == "renew"
        assert cred.reason.startswith(f"{reason_code}: "), cred.reason
        assert cred.issuer == "internal"
    else:
        assert cred.action == "none"
        assert cred.reason == ""


def test_states_over_time_for_one_certificate() -> None:
    """ok until renew_at, due from renew_at (inclusive), expired after not_after (notAfter is inclusive)."""
    leaf = fresh()
    renew_at, not_after = f.t(50), f.t(80)
    second = timedelta(seconds=1)
    timeline = [
        (f.NOW, "ok"),
        (renew_at - second, "ok"),
        (renew_at, "due"),
        (not_after - second, "due"),
        (not_after, "due"),
        (not_after + second, "expired"),
        (f.t(400), "expired"),
    ]
    for now, state in timeline:
        cred = f.cred(run(secret_with(leaf), CATCH_ALL, now=now), NAME)
        assert cred.state == state, (now, cred.state)
        assert cred.renew_at == renew_at
        assert cred.action == ("none" if state == "ok" else "renew"), (now, cred.action)


def test_missing_secret_has_no_renewal_time() -> None:
    cred = cred_of(None, CATCH_ALL)
    assert cred.renew_at is None
    assert cred.reason == "secret-missing: the Secret does not exist"


def test_invalid_content_reason_names_the_problem() -> None:
    cred = cred_of(_mismatched(), CATCH_ALL)
    assert "key-mismatch" in cred.reason
    assert cred.renew_at == f.t(50)  # the certificate itself is still readable


def test_expired_wins_over_due() -> None:
    cred = cred_of(secret_with(f.make_leaf([HOST], nb=-100, na=-1)), CATCH_ALL)
    assert cred.reason == "expired: the certificate has expired"
    absent(cred, "cert-renewal-due")


# --- cert-renewal-due ----------------------------------------------------------------


def test_renewal_due() -> None:
    cred = cred_of(secret_with(due_leaf()), CATCH_ALL)
    hit = expect(cred, "cert-renewal-due", "warning")
    assert f.rfc(f.t(-10)) in hit.message  # due since
    assert "20d left" in hit.message
    assert cred.reason == f"due: inside the renewal window since {f.rfc(f.t(-10))}"


def test_not_due_yet() -> None:
    cred = cred_of(secret_with(fresh()), CATCH_ALL)
    absent(cred, "cert-renewal-due")
    assert cred.state == "ok"


def test_renew_before_longer_than_lifetime_is_always_due() -> None:
    cred = cred_of(secret_with(fresh()), cfg({"issuer": "internal"}, renew_before="100d"))
    hit = expect(cred, "cert-renewal-due", "warning")
    assert "always due" in hit.message
    assert cred.state == "due"
    assert cred.renew_at == f.t(-10)  # clamped to not_before: due from the start


def test_absurd_renew_before_annotation_does_not_crash() -> None:
    """A huge value is still a valid duration, but not_after minus it leaves datetime's range."""
    secret = secret_with(fresh(), annotations={"rotator.io/renew-before": "999999d"})
    cred = cred_of(secret, CATCH_ALL)
    assert cred.state == "due"
    assert cred.renew_at == f.t(-10)
    expect(cred, "cert-renewal-due", "warning")


# --- renew_at: the renew-before chain -------------------------------------------------


def test_default_renew_before_is_a_third_of_the_lifetime() -> None:
    cred = cred_of(secret_with(fresh()), CATCH_ALL)
    assert cred.certificate is not None
    lifetime = cred.certificate.not_after - cred.certificate.not_before
    assert cred.renew_at == cred.certificate.not_after - lifetime / 3
    assert cred.renew_at == f.t(50)


def test_default_renew_before_with_a_lifetime_not_divisible_by_three() -> None:
    leaf = f.make_leaf([HOST], nb=-10, na=80 + 1 / 86400)  # 90 days and one second
    cred = cred_of(secret_with(leaf), CATCH_ALL)
    assert cred.certificate is not None
    lifetime = cred.certificate.not_after - cred.certificate.not_before
    assert lifetime == timedelta(days=90, seconds=1)
    assert cred.renew_at == cred.certificate.not_after - lifetime / 3


@pytest.mark.parametrize(
    ("renew_before", "renew_at_day"),
    [("720h", 140), ("30d", 140), ("4w", 142), ("1440h", 110), ("50%", 80), ("10%", 152), ("33.3333%", 110.00006)],
)
def test_global_renew_before(renew_before: str, renew_at_day: float) -> None:
    cred = cred_of(secret_with(long_leaf()), cfg({"issuer": "internal"}, renew_before=renew_before))
    assert cred.renew_at is not None
    assert abs(cred.renew_at - f.t(renew_at_day)) < timedelta(seconds=1)


def test_global_percentage_is_exact() -> None:
    cred = cred_of(secret_with(long_leaf()), cfg({"issuer": "internal"}, renew_before="50%"))
    assert cred.renew_at == f.t(80)


def test_rule_renew_before_overrides_global() -> None:
    config = cfg({"issuer": "internal", "renew_before": "10d"}, renew_before="720h")
    cred = cred_of(secret_with(long_leaf()), config)
    assert cred.renew_at == f.t(160)


def test_renew_before_of_a_rule_that_does_not_match_is_not_used() -> None:
    config = cfg(
        {"issuer": "partner", "secrets": ["other-*"], "renew_before": "10d"},
        {"issuer": "internal"},
        renew_before="720h",
    )
    cred = cred_of(secret_with(long_leaf()), config)
    assert cred.issuer == "internal"
    assert cred.renew_at == f.t(140)


@pytest.mark.parametrize(("annotation", "renew_at_day"), [("5d", 165), ("120h", 165), ("25%", 125)])
def test_annotation_overrides_rule_and_global(annotation: str, renew_at_day: float) -> None:
    config = cfg({"issuer": "internal", "renew_before": "10d"}, renew_before="720h")
    secret = secret_with(long_leaf(), annotations={"rotator.io/renew-before": annotation})
    cred = cred_of(secret, config)
    assert cred.renew_at == f.t(renew_at_day)
    absent(cred, "invalid-annotation")


def test_annotation_applies_without_any_rule() -> None:
    secret = secret_with(long_leaf(), annotations={"rotator.io/renew-before": "5d"})
    cred = cred_of(secret, cfg())
    assert cred.renew_at == f.t(165)


def test_annotation_can_make_a_certificate_due() -> None:
    secret = secret_with(fresh(), annotations={"rotator.io/renew-before": "85d"})
    cred = cred_of(secret, CATCH_ALL)
    assert cred.renew_at == f.t(-5)
    assert cred.state == "due"
    assert cred.action == "renew"


# --- invalid-annotation --------------------------------------------------------------


@pytest.mark.parametrize("value", ["soon", "", "0h", "0%", "100%", "150%", "-5d", "5 days", "99999999999d"])
def test_invalid_renew_before_annotation(value: str) -> None:
    config = cfg({"issuer": "internal", "renew_before": "10d"})
    secret = secret_with(fresh(), annotations={"rotator.io/renew-before": value})
    cred = cred_of(secret, config)
    hit = expect(cred, "invalid-annotation", "warning")
    assert "rotator.io/renew-before" in hit.message and repr(value) in hit.message
    assert cred.renew_at == f.t(70)  # falls back to the rule's 10d
    assert cred.state == "ok"


def test_invalid_issuer_annotation_falls_back_to_rules() -> None:
    secret = secret_with(due_leaf(), annotations={"rotator.io/issuer": "nope"})
    cred = cred_of(secret, CATCH_ALL)
    hit = expect(cred, "invalid-annotation", "warning")
    assert "rotator.io/issuer" in hit.message and "'nope'" in hit.message
    assert "internal" in hit.message  # lists the configured issuers
    assert cred.issuer == "internal"
    assert cred.action == "renew"


def test_invalid_issuer_annotation_without_rules_is_also_no_issuer() -> None:
    secret = secret_with(due_leaf(), annotations={"rotator.io/issuer": "nope"})
    cred = cred_of(secret, cfg())
    expect(cred, "invalid-annotation", "warning")
    expect(cred, "no-issuer", "warning")
    assert cred.action == "skip"


def test_valid_annotations_are_not_invalid() -> None:
    annotations = {"rotator.io/renew-before": "10d", "rotator.io/issuer": "public", "rotator.io/other": "x"}
    cred = cred_of(secret_with(fresh(), annotations=annotations), CATCH_ALL)
    absent(cred, "invalid-annotation")
    assert cred.issuer == "public"


# --- issuer rules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("namespace", "issuer"), [("prod-gateways", "public"), ("prod", "internal"), ("istio-system", "internal")]
)
def test_rule_matches_namespace_glob(namespace: str, issuer: str) -> None:
    config = cfg({"issuer": "public", "namespaces": ["prod-*"]}, {"issuer": "internal"})
    cred = cred_of(secret_with(namespace=namespace), config, namespace=namespace)
    assert cred.issuer == issuer


@pytest.mark.parametrize(("name", "issuer"), [("app-tls", "public"), ("app-cert", "internal")])
def test_rule_matches_secret_glob(name: str, issuer: str) -> None:
    config = cfg({"issuer": "public", "secrets": ["*-tls", "wildcard-?"]}, {"issuer": "internal"})
    result = f.run(
        f.ingress(),
        f.gateway("gw", [f.server([HOST], name)]),
        secret_with(name=name),
        cfg=config,
    )
    assert f.cred(result, name).issuer == issuer


@pytest.mark.parametrize(
    ("hosts", "issuer"),
    [
        (["a.example.com"], "public"),
        (["a.example.com", "b.example.com"], "public"),
        (["A.Example.com"], "public"),  # host globs compare case-insensitively
        (["a.example.com", "a.example.org"], "partner"),  # every host must match one glob
        (["a.example.org"], "partner"),
        (["a.internal.test"], "internal"),
    ],
)
def test_rule_matches_every_host(hosts: list[str], issuer: str) -> None:
    config = cfg(
        {"issuer": "public", "hosts": ["*.example.com"]},
        {"issuer": "partner", "hosts": ["*.example.com", "*.example.org"]},
        {"issuer": "internal"},
    )
    leaf = f.make_leaf(hosts, nb=-10, na=80)
    cred = cred_of(f.secret(NAME, leaf=leaf), config, hosts=hosts)
    assert cred.issuer == issuer


def test_host_rule_does_not_match_a_catch_all_server() -> None:
    config = cfg({"issuer": "public", "hosts": ["*"]})
    cred = cred_of(secret_with(due_leaf()), config, hosts=["*"])
    assert cred.issuer is None
    assert cred.action == "skip"


def test_all_selectors_must_match() -> None:
    config = cfg(
        {"issuer": "public", "namespaces": ["istio-*"], "secrets": ["other-*"]},
        {"issuer": "partner", "namespaces": ["istio-*"], "secrets": ["app-*"], "hosts": ["*.example.com"]},
    )
    assert cred_of(secret_with(), config).issuer == "partner"


def test_first_matching_rule_wins() -> None:
    config = cfg({"issuer": "partner", "secrets": ["app-*"]}, {"issuer": "public"}, {"issuer": "internal"})
    assert cred_of(secret_with(), config).issuer == "partner"


def test_issuer_annotation_overrides_rules() -> None:
    secret = secret_with(due_leaf(), annotations={"rotator.io/issuer": "partner"})
    cred = cred_of(secret, CATCH_ALL)
    assert cred.issuer == "partner"
    assert cred.action == "renew"


def test_issuer_annotation_keeps_the_rules_renew_before() -> None:
    config = cfg({"issuer": "internal", "renew_before": "10d"})
    secret = secret_with(long_leaf(), annotations={"rotator.io/issuer": "partner"})
    cred = cred_of(secret, config)
    assert (cred.issuer, cred.renew_at) == ("partner", f.t(160))


def test_no_rules_means_no_issuer() -> None:
    cred = cred_of(secret_with(fresh()), cfg())
    assert cred.issuer is None
    assert cred.action == "none"
    absent(cred, "no-issuer")  # nothing to renew, nothing to complain about


# --- actions and gates ----------------------------------------------------------------


def _host_not_covered() -> dict[str, Any]:
    return f.secret(NAME, leaf=f.make_leaf(["old.example.com"], nb=-10, na=80))


ACTIONS: dict[str, tuple[Any, str]] = {
    "due": (lambda: secret_with(due_leaf()), "due: inside the renewal window"),
    "expired": (lambda: secret_with(f.make_leaf([HOST], nb=-100, na=-1)), "expired: the certificate has expired"),
    "missing": (lambda: None, "secret-missing: the Secret does not exist"),
    "invalid-content": (_mismatched, "content-invalid: the Secret's content is unusable (key-mismatch)"),
    "host-not-covered": (_host_not_covered, "hosts-changed: the certificate does not cover app.example.com"),
}


@pytest.mark.parametrize("scenario", sorted(ACTIONS))
def test_renew_with_an_issuer(scenario: str) -> None:
    make, reason = ACTIONS[scenario]
    cred = cred_of(make(), CATCH_ALL)
    assert cred.action == "renew"
    assert cred.reason.startswith(reason), cred.reason
    assert "skipped" not in cred.reason
    assert cred.issuer == "internal"
    absent(cred, "no-issuer", "managed-externally")


@pytest.mark.parametrize("scenario", sorted(ACTIONS))
def test_no_issuer(scenario: str) -> None:
    make, reason = ACTIONS[scenario]
    cred = cred_of(make(), cfg())
    hit = expect(cred, "no-issuer", "warning")
    assert "rotator.io/issuer" in hit.message and HOST in hit.message
    assert cred.action == "skip"
    assert cred.reason.startswith(reason) and cred.reason.endswith("; skipped: no issuer rule matches")


def test_host_not_covered_renews_without_changing_state() -> None:
    cred = cred_of(_host_not_covered(), CATCH_ALL)
    assert cred.state == "ok"
    assert "host-not-covered" in f.codes(cred)


def test_healthy_credential_needs_nothing() -> None:
    cred = cred_of(secret_with(fresh()), CATCH_ALL)
    assert (cred.action, cred.reason, cred.issuer) == ("none", "", "internal")
    absent(cred, "no-issuer", "managed-externally", "cert-renewal-due")


@pytest.mark.parametrize(
    ("annotations", "owners"),
    [
        ({"cert-manager.io/certificate-name": "app"}, None),
        ({"cert-manager.io/issuer-name": "letsencrypt"}, None),
        (None, [{"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "name": "app"}]),
    ],
)
def test_managed_externally(annotations: dict[str, str] | None, owners: list[dict[str, str]] | None) -> None:
    secret = secret_with(due_leaf(), annotations=annotations, owners=owners)
    cred = cred_of(secret, CATCH_ALL)
    hit = expect(cred, "managed-externally", "info")
    assert ("Certificate app" if owners else "cert-manager.io/") in hit.message
    assert cred.action == "skip"
    assert cred.reason.endswith("; skipped: managed by cert-manager")
    assert cred.state == "due"  # still reported


def test_managed_externally_is_checked_before_the_issuer() -> None:
    secret = secret_with(due_leaf(), annotations={"cert-manager.io/certificate-name": "app"})
    cred = cred_of(secret, cfg())
    expect(cred, "managed-externally", "info")
    absent(cred, "no-issuer")
    assert cred.action == "skip"


@pytest.mark.parametrize(
    ("annotations", "owners"),
    [
        ({"example.com/cert-manager.io": "x", "rotator.io/renew-before": "30d"}, None),
        (None, [{"apiVersion": "example.com/v1", "kind": "Certificate", "name": "app"}]),
        (None, [{"apiVersion": "cert-manager.io/v1", "kind": "CertificateRequest", "name": "app"}]),
        (None, [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "app"}]),
    ],
)
def test_not_managed_externally(annotations: dict[str, str] | None, owners: list[dict[str, str]] | None) -> None:
    secret = secret_with(due_leaf(), annotations=annotations, owners=owners)
    cred = cred_of(secret, CATCH_ALL)
    absent(cred, "managed-externally")
    assert cred.action == "renew"


def test_managed_secret_that_is_not_due_has_no_finding() -> None:
    secret = secret_with(fresh(), annotations={"cert-manager.io/certificate-name": "app"})
    cred = cred_of(secret, CATCH_ALL)
    absent(cred, "managed-externally")
    assert cred.action == "none"


# --- client CAs are reported, never renewed --------------------------------------------


@pytest.mark.parametrize("ca_days", [-1, 10, 400])
def test_client_ca_credentials_are_never_acted_on(ca_days: int) -> None:
    leaf = fresh()
    data = {
        "tls.crt": leaf.cert_pem(),
        "tls.key": leaf.key_pem(),
        "ca.crt": f.make_ca("Client CA", nb=-500, na=ca_days).pem(),
    }
    result = run(f.secret(NAME, data=data), CATCH_ALL, mode="MUTUAL")
    ca: Credential = f.cred(result, NAME, "client-ca")
    assert (ca.action, ca.reason, ca.renew_at, ca.issuer) == ("none", "", None, None)
    absent(ca, "no-issuer", "managed-externally", "cert-renewal-due")
    server: Credential = f.cred(result, NAME)
    assert server.issuer == "internal"


def test_missing_client_ca_is_not_renewed() -> None:
    result = run(secret_with(fresh()), CATCH_ALL, mode="MUTUAL")
    ca: Credential = f.cred(result, NAME, "client-ca")
    assert ca.state == "missing"
    assert ca.action == "none"


def test_secret_in_the_wrong_namespace_is_not_reissued() -> None:
    """Copying the existing Secret fixes it; a new certificate would waste an issuance."""
    leaf = f.make_leaf(["app.example.com"])
    result = f.run(
        f.ingress(),
        f.gateway("gw", [f.server(["app.example.com"], "app-tls")], namespace="apps"),
        f.secret("app-tls", namespace="apps", leaf=leaf),
        cfg={"issuers": {"ca": {"type": "ca", "secret": "ns/ca"}}, "rules": [{"issuer": "ca"}]},
    )
    cred = f.cred(result, "app-tls", namespace="istio-system")
    assert cred.state == "missing"
    assert cred.action == "skip"
    assert "copy it where Istio reads it" in cred.reason
