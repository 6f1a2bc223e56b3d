"""Which issuer a credential gets and how early it renews: the config's rules (first
match wins), the ``rotator.io/issuer`` and ``rotator.io/renew-before`` annotations, and
the Secrets issuers themselves use (never renewed as tenant credentials). Pure."""

from __future__ import annotations

from rotator.config.schema import Config, Rule
from rotator.findings import finding
from rotator.model import (
    Credential,
    Finding,
    ObjectRef,
    Reference,
    Secret,
    is_untrusted,
)
from rotator.util.timeutil import DEFAULT_RENEW_BEFORE, RenewBefore, parse_renew_before

RENEW_BEFORE_ANNOTATION = "rotator.io/renew-before"


ISSUER_ANNOTATION = "rotator.io/issuer"


def choose_issuer(
    cred: Credential, secret: Secret | None, config: Config
) -> tuple[str | None, Rule | None, list[Finding], tuple[str, ...]]:
    """(issuer, rule, findings, untrusted Gateway namespaces).

    Rules are tried in order. Each decides which referencing Gateways it trusts; the
    first that matches the Secret with the hosts of its trusted Gateways wins, so a
    tenant's Gateway naming a shared Secret can neither pick the rule nor stop it (its
    hosts are left out). When a rule would match but trusts none of the Gateways, their
    namespaces come back to be reported (and nothing is issued)."""
    spec = cred.spec
    obj = ObjectRef(spec.kind, spec.namespace, spec.name)
    found: list[Finding] = []
    gateways = tuple(sorted({(r.group, r.namespace) for r in spec.references}))

    def split(rule: Rule) -> tuple[tuple[str, ...], tuple[Reference, ...]]:
        bad = tuple(rule.untrusted(spec.namespace, gateways))
        return bad, tuple(r for r in spec.references if not is_untrusted(r, bad))

    rule: Rule | None = None
    untrusted: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()
    for candidate in config.rules:
        bad, trusted = split(candidate)
        if not trusted and spec.references:
            if not refused and candidate.matches(spec.namespace, spec.name, normal_hosts(spec.hosts)):
                refused = bad
            continue
        if candidate.matches(spec.namespace, spec.name, ref_hosts(trusted)):
            rule, untrusted = candidate, bad
            break
    if secret is not None and ISSUER_ANNOTATION in secret.annotations:
        wanted = secret.annotations[ISSUER_ANNOTATION]
        if wanted in config.issuers:
            # The annotation is the Secret writer's consent, not the Gateway author's: hosts
            # still come from the Gateways, so those must be trusted all the same.
            return wanted, rule, found, split(rule or Rule(issuer=wanted))[0]
        found.append(
            finding(
                "invalid-annotation",
                f"{obj}: annotation {ISSUER_ANNOTATION}={wanted!r} names no configured issuer "
                f"({', '.join(sorted(config.issuers)) or 'none defined'}); using the config rules instead.",
                obj,
            )
        )
    if rule is None:
        return None, None, found, refused
    return rule.issuer, rule, found, untrusted


def ref_hosts(references: tuple[Reference, ...]) -> tuple[str, ...]:
    return normal_hosts(tuple(dict.fromkeys(h for r in references for h in r.hosts)))


def resolve_renew_before(
    secret: Secret | None, rule: Rule | None, config: Config, obj: ObjectRef
) -> tuple[RenewBefore, list[Finding]]:
    """Secret annotation, then the matching rule, then the global setting, then 1/3 of lifetime."""
    if secret is not None and RENEW_BEFORE_ANNOTATION in secret.annotations:
        raw = secret.annotations[RENEW_BEFORE_ANNOTATION]
        try:
            return parse_renew_before(raw), []
        except ValueError as exc:
            bad = finding(
                "invalid-annotation",
                f"{obj}: annotation {RENEW_BEFORE_ANNOTATION}={raw!r} is not usable ({exc}); using the default.",
                obj,
            )
            return configured_renew_before(rule, config), [bad]
    return configured_renew_before(rule, config), []


def issuer_secrets(config: Config) -> set[str]:
    """Where rotator's own issuers keep their CA ("namespace/name")."""
    out: set[str] = set()
    for cfg in config.issuers.values():
        ref = getattr(cfg, "secret", None)
        if isinstance(ref, str) and "/" in ref:
            out.add(ref)
    return out


def normal_hosts(hosts: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(h for h in hosts if h != "*")


def configured_renew_before(rule: Rule | None, config: Config) -> RenewBefore:
    if rule is not None and rule.renew_before:
        return parse_renew_before(rule.renew_before)
    return config.renew_before() or DEFAULT_RENEW_BEFORE
