"""Renewal policy: when a credential is due, and what rotator will do about it.

Modelled on cert-manager's ``policies.go``: each reason to renew is a small pure
function, and ``RENEWAL_TRIGGERS`` is the named chain that is evaluated in order; the
first that fires is the recorded reason. ``GATES`` then decide whether rotator may act
(an issuer must be configured, and cert-manager's Secrets are not ours).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from rotator import findings
from rotator.config.schema import Config, Rule
from rotator.findings import finding
from rotator.hosts import covered, strip_namespace
from rotator.model import (
    NO_FACTS,
    Credential,
    Finding,
    Inventory,
    ObjectRef,
    PlanFacts,
    Reference,
    Secret,
    is_untrusted,
)
from rotator.plan import ownership
from rotator.plan.ari import ari_due
from rotator.plan.issuer_rules import (
    ISSUER_ANNOTATION,
    choose_issuer,
    issuer_secrets,
    normal_hosts,
    resolve_renew_before,
)
from rotator.util.timeutil import format_duration, rfc3339

ISSUED_BY_ANNOTATION = "rotator.io/issued-by"
RENEWAL_ANNOTATION = "rotator.io/renewal"


@dataclass(frozen=True)
class PolicyInput:
    credential: Credential
    secret: Secret | None
    now: datetime
    renew_at: datetime | None
    issuer: str | None
    rule: Rule | None = None
    untrusted: tuple[str, ...] = ()  # namespaces of referencing Gateways no rule trusts
    facts: PlanFacts = NO_FACTS
    allow_issuer_change: bool = False  # a rule for this issuer that matches allows moving CAs
    issuer_secret: bool = False  # the Secret is where one of rotator's issuers keeps its CA

    @property
    def key(self) -> str:
        return f"{self.credential.spec.namespace}/{self.credential.spec.name}"


Trigger = Callable[[PolicyInput], str | None]


def _codes(i: PolicyInput) -> set[str]:
    return {f.code for f in i.credential.findings}


def secret_does_not_exist(i: PolicyInput) -> str | None:
    return "the Secret does not exist" if i.credential.state == "missing" else None


def secret_content_invalid(i: PolicyInput) -> str | None:
    bad = sorted(_codes(i) & findings.UNUSABLE_CONTENT)
    return f"the Secret's content is unusable ({', '.join(bad)})" if bad else None


def certificate_expired(i: PolicyInput) -> str | None:
    return "the certificate has expired" if i.credential.state == "expired" else None


def certificate_nearing_expiry(i: PolicyInput) -> str | None:
    if i.renew_at is not None and i.now >= i.renew_at:
        return f"inside the renewal window since {rfc3339(i.renew_at)}"
    return None


def secret_unreadable(i: PolicyInput) -> str | None:
    """It may well need renewal, but nobody can tell; the gate below keeps it from issuing."""
    return "the Secret cannot be read (access-denied)" if "access-denied" in _codes(i) else None


def ari_window_open(i: PolicyInput) -> str | None:
    """Inside the CA's suggested renewal window (ACME ARI, RFC 9773), even before the
    percentage rule: the CA knows of a revocation or a mass re-issuance coming."""
    window = i.facts.ari.get(i.key)
    cert = i.credential.certificate
    if window is None or cert is None or not ari_due(window, cert.serial, i.now):
        return None
    return f"inside the CA's suggested renewal window ({rfc3339(window[0])} to {rfc3339(window[1])})"


def hosts_not_covered(i: PolicyInput) -> str | None:
    """A server host of a trusted Gateway the certificate lacks: a renewal adds it. Names
    only routed under a wildcard (VirtualServices) or listed by untrusted Gateways are
    reported, but renewing would not add them, so they are no reason to order."""
    cert = i.credential.certificate
    if cert is None or "host-not-covered" not in _codes(i):
        return None
    missing = [h for h in renewable_hosts(i.credential.trusted_references()) if not covered(h, cert.sans)]
    return f"the certificate does not cover {', '.join(missing)}" if missing else None


def renewable_hosts(references: tuple[Reference, ...]) -> list[str]:
    """The names a renewal puts in the certificate: the servers' hosts ('*' is no SAN)."""
    out: dict[str, None] = {}
    for ref in references:
        for h in ref.hosts:
            host = strip_namespace(h)[1].lower().rstrip(".")
            if host and host != "*":
                out.setdefault(host, None)
    return list(out)


def renewal_forced(i: PolicyInput) -> str | None:
    """An operator asked (``rotator renew``), as cmctl renew and certbot --force-renewal."""
    return "requested with rotator renew" if i.key in i.facts.forced else None


RENEWAL_TRIGGERS: tuple[tuple[str, Trigger], ...] = (
    ("unreadable", secret_unreadable),
    ("forced", renewal_forced),
    ("secret-missing", secret_does_not_exist),
    ("content-invalid", secret_content_invalid),
    ("expired", certificate_expired),
    ("due", certificate_nearing_expiry),
    ("ari", ari_window_open),
    ("hosts-changed", hosts_not_covered),
)


# A gate returns None to allow renewal, or why it blocks it and the finding to report.
Blocked = tuple[str, Finding | None]
Gate = Callable[[PolicyInput], Blocked | None]


def _obj(i: PolicyInput) -> ObjectRef:
    s = i.credential.spec
    return ObjectRef(s.kind, s.namespace, s.name)


def cannot_read(i: PolicyInput) -> Blocked | None:
    """A certificate for a Secret rotator cannot read could never be written (it would be
    ordered again every back-off period, against the CA's rate limits)."""
    if "access-denied" not in _codes(i):
        return None
    return "rotator may not read the Secret; grant it (deploy/) and nothing is issued meanwhile", None


def renewal_paused(i: PolicyInput) -> Blocked | None:
    """A hold set by hand or by ``rotator rollback``: the restored certificate must not
    be renewed away by the next pass."""
    if i.secret is None or i.secret.annotations.get(RENEWAL_ANNOTATION) != "paused":
        return None
    return f"renewal paused ({RENEWAL_ANNOTATION}=paused)", finding(
        "renewal-paused",
        f"{_obj(i)}: renewal is paused by the annotation {RENEWAL_ANNOTATION}=paused (set by rotator rollback, or by "
        f"hand); remove it to resume: kubectl annotate secret -n {i.credential.spec.namespace} "
        f"{i.credential.spec.name} {RENEWAL_ANNOTATION}-",
        _obj(i),
    )


def reference_is_broken(i: PolicyInput) -> Blocked | None:
    """A new certificate cannot fix a reference Istio refuses; the reference finding already says so."""
    bad = _codes(i) & findings.BROKEN_REFERENCE
    return (f"reference refused ({', '.join(sorted(bad))}); fix the reference first", None) if bad else None


def copy_exists_elsewhere(i: PolicyInput) -> Blocked | None:
    """The Secret exists in another namespace: copying it is the fix, not a new certificate."""
    if "secret-wrong-namespace" in _codes(i):
        return "the Secret exists in another namespace; copy it where Istio reads it instead of issuing anew", None
    return None


def managed_externally(i: PolicyInput) -> Blocked | None:
    s = i.secret
    if s is None:
        return None
    ann = sorted(k for k in s.annotations if k.startswith("cert-manager.io/"))
    owner = next(
        (o for o in s.owners if o.kind == "Certificate" and o.api_version.startswith("cert-manager.io/")), None
    )
    if not ann and owner is None:
        return None
    why = f"owned by Certificate {owner.name}" if owner else f"annotated {ann[0]}"
    return "managed by cert-manager", finding(
        "managed-externally",
        f"{_obj(i)} is managed by cert-manager ({why}); rotator leaves renewal to it and only reports.",
        _obj(i),
    )


def not_ours_to_write(i: PolicyInput) -> Blocked | None:
    """Istio's CA, a CA's Secret, another type of Secret, keys that are not a TLS
    credential's: a Gateway author chose the name, so the name alone never makes a Secret
    rotator's to write (or to create)."""
    s = i.secret
    if s is None:
        why = ownership.name_refusal(i.credential.spec.name)
    else:
        allowed = i.rule.allow_keys if i.rule is not None else []
        ca = i.credential.certificate is not None and i.credential.certificate.is_ca
        why = ownership.refusal(s.name, s.type, s.data, allowed, ca, i.issuer_secret)
    if why is None:
        return None
    return "not a Secret rotator may write", finding(
        "not-owned", f"{_obj(i)}: rotator will not write this Secret: {why}.", _obj(i)
    )


def untrusted_gateway(i: PolicyInput) -> Blocked | None:
    """A Gateway in another namespace names the Secret: its author must not be able to
    make rotator issue (and write) a certificate for the hosts it lists."""
    if not i.untrusted or i.credential.trusted_references():
        return None  # some Gateways are trusted: renew for those (the others are reported)
    gws = sorted({f"{r.namespace}/{r.name}" for r in i.credential.spec.references if r.namespace in i.untrusted})
    return "referenced by a Gateway no rule trusts", finding(
        "untrusted-gateway",
        f"{_obj(i)} is referenced by Gateway {', '.join(gws)} from namespace {', '.join(i.untrusted)}, and no rule "
        f"trusts Gateways there; rotator does not issue on its word. If that namespace may request certificates, "
        f"add it to a rule's gateway_namespaces.",
        _obj(i),
    )


def create_not_allowed(i: PolicyInput) -> Blocked | None:
    if i.secret is not None or i.credential.state != "missing" or i.issuer is None:
        return None
    if i.rule is not None and i.rule.create:
        return None
    return "the Secret does not exist and the rule does not allow creating it (create: true)", None


def issuer_changes(i: PolicyInput) -> Blocked | None:
    """A certificate from another CA is not silently moved to this issuer
    (``allow_issuer_change`` on the rule opts in)."""
    check = i.facts.issuers.get(i.key)
    cert = i.credential.certificate
    if check is None or check.owned is not False or cert is None or i.allow_issuer_change:
        return None
    recorded = (i.secret.annotations if i.secret else {}).get(ISSUED_BY_ANNOTATION)
    if recorded == i.issuer:
        return None
    was = recorded or cert.issuer
    return "issued by another CA", finding(
        "issuer-change",
        f"{_obj(i)}: the current certificate was issued by {was}, not by issuer {i.issuer}; rotator does not move a "
        "credential to another CA on its own. Set allow_issuer_change: true on the rule to allow it.",
        _obj(i),
    )


def backing_off(i: PolicyInput) -> Blocked | None:
    entry = i.facts.backoff.get(i.key)
    if entry is None or i.now >= entry.next_attempt or i.key in i.facts.forced:
        return None  # an operator's explicit renew does not wait out the back-off
    msg = (
        f"waiting after {entry.failures} failed attempt(s) until {rfc3339(entry.next_attempt)}; "
        f"last error: {entry.last_error}"
    )
    return f"backing off until {rfc3339(entry.next_attempt)}", finding("renewal-backoff", f"{_obj(i)}: {msg}", _obj(i))


def has_issuer(i: PolicyInput) -> Blocked | None:
    if i.issuer is not None:
        return None
    hosts = ", ".join(i.credential.spec.hosts) or "no hosts"
    return "no issuer rule matches", finding(
        "no-issuer",
        f"{_obj(i)} needs renewal but no rule in the config matches it (namespace "
        f"{i.credential.spec.namespace!r}, Secret {i.credential.spec.name!r}, hosts {hosts}); add a rule or the "
        f"annotation {ISSUER_ANNOTATION}.",
        _obj(i),
    )


GATES: tuple[Gate, ...] = (
    cannot_read,
    renewal_paused,
    reference_is_broken,
    copy_exists_elsewhere,
    managed_externally,
    not_ours_to_write,
    untrusted_gateway,
    has_issuer,
    create_not_allowed,
    issuer_changes,
    backing_off,
)


def untrusted_note(cred: Credential, untrusted: tuple[str, ...]) -> Finding:
    obj = ObjectRef(cred.spec.kind, cred.spec.namespace, cred.spec.name)
    gws = sorted({f"{r.namespace}/{r.name}" for r in cred.spec.references if is_untrusted(r, untrusted)})
    return finding(
        "untrusted-gateway",
        f"{obj} is also referenced by Gateway {', '.join(gws)} from namespace {', '.join(untrusted)}, which no rule "
        "trusts; its hosts are left out of the certificates rotator issues. If that namespace may request "
        "certificates, add it to the rule's gateway_namespaces.",
        obj,
    )


def plan(cred: Credential, inv: Inventory, config: Config, now: datetime, facts: PlanFacts = NO_FACTS) -> Credential:
    spec = cred.spec
    if spec.role != "server" or spec.kind != "Secret":
        return cred  # client CAs are the user's to manage; rotator only reports on them
    obj = ObjectRef(spec.kind, spec.namespace, spec.name)
    secret = inv.secret(spec.namespace, spec.name)
    issuer, rule, found, untrusted = choose_issuer(cred, secret, config)
    renew_before, more = resolve_renew_before(secret, rule, config, obj)
    found += more
    renew_at = None
    state = cred.state
    if cred.certificate is not None:
        lifetime = cred.certificate.not_after - cred.certificate.not_before
        # Clamped to the lifetime: a renew-before at least that long means "due from the
        # start", and an unclamped huge value (an annotation of 999999d) would push
        # renew_at out of datetime's range and crash the whole run.
        renew_at = cred.certificate.not_after - min(renew_before.amount(lifetime), lifetime)
        if renew_at <= cred.certificate.not_before and state == "ok":
            found.append(
                finding(
                    "cert-renewal-due",
                    f"{obj}: {renew_before.describe(lifetime)} is not shorter than the certificate's "
                    f"{format_duration(lifetime)} lifetime, so it is always due; shorten renew-before.",
                    obj,
                )
            )
    allow_change = any(
        r.issuer == issuer and r.allow_issuer_change and r.matches(spec.namespace, spec.name, normal_hosts(spec.hosts))
        for r in config.rules
    )
    cred = replace(cred, untrusted=untrusted)
    if untrusted and cred.trusted_references():
        found.append(untrusted_note(cred, untrusted))
    pin = PolicyInput(
        cred,
        secret,
        now,
        renew_at,
        issuer,
        rule,
        untrusted,
        facts,
        allow_change,
        f"{spec.namespace}/{spec.name}" in issuer_secrets(config),
    )
    reason_code, reason = next(((code, msg) for code, t in RENEWAL_TRIGGERS if (msg := t(pin))), ("", None))
    if reason is None:
        return replace(cred, findings=cred.findings + tuple(found), renew_at=renew_at, issuer=issuer)
    if reason_code == "ari" and state == "ok":
        state = "due"
    if reason_code == "due" and state == "ok":
        state = "due"
        assert cred.certificate is not None and renew_at is not None
        lifetime = cred.certificate.not_after - cred.certificate.not_before
        left = cred.certificate.not_after - now
        if not any(f.code == "cert-renewal-due" for f in found):
            found.append(
                finding(
                    "cert-renewal-due",
                    f"{obj}: expires at {rfc3339(cred.certificate.not_after)} ({format_duration(left)} left); "
                    f"due since {rfc3339(renew_at)} ({renew_before.describe(lifetime)}).",
                    obj,
                )
            )
    action = "renew"
    reason = f"{reason_code}: {reason}"
    check = facts.issuers.get(pin.key)
    if check is not None and check.owned is None and issuer is not None:
        reason += f"; could not check which CA issued the current certificate ({check.why})"
    for gate in GATES:
        blocked = gate(pin)
        if blocked is not None:
            action = "skip"
            why, note = blocked
            reason += f"; skipped: {why}"
            if note is not None:
                found.append(note)
            break
    return replace(
        cred,
        state=state,
        findings=cred.findings + tuple(found),
        renew_at=renew_at,
        action=action,  # type: ignore[arg-type]
        reason=reason,
        issuer=issuer,
    )
