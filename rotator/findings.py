"""The catalogue of finding codes.

Codes are a stable contract (scripts and alerts key on them); each one is documented
with cause and fix in docs/findings.md, and a test keeps the two in step.
"""

from __future__ import annotations

from rotator.model import Finding, ObjectRef, Severity

CATALOGUE: dict[str, tuple[Severity, str]] = {
    # input
    "invalid-manifest": ("error", "A manifest could not be parsed or has the wrong shape"),
    "duplicate-object": ("info", "The same object appears twice in the input; the first copy is used"),
    "no-gateways": ("warning", "The input has no Gateway at all; nothing was checked"),
    "no-workloads": ("info", "No workload objects in the input; Gateway namespaces assumed"),
    "access-denied": ("error", "The API server refused to let rotator read an object it needs"),
    # references and placement
    "secret-not-found": ("critical", "The referenced Secret does not exist where Istio reads it"),
    "secret-wrong-namespace": ("critical", "The Secret exists, but not in the gateway workload's namespace"),
    "cross-namespace-reference": ("error", "A classic Gateway names a Secret in another namespace"),
    "reference-not-permitted": ("error", "A Gateway API reference across namespaces has no ReferenceGrant"),
    "unsupported-reference": ("error", "A reference Istio cannot resolve to a Secret or ConfigMap"),
    "credential-ignored": ("warning", "A credential on a server that does not terminate TLS"),
    "cacert-name-for-server": ("error", "A server credential name ends in -cacert"),
    # content
    "invalid-pem": ("critical", "Certificate or key material does not parse"),
    "missing-keys": ("critical", "The Secret lacks the keys Istio reads"),
    "shadowed-keys": ("warning", "Two key families present; one is silently ignored"),
    "key-mismatch": ("critical", "The private key does not belong to the leaf certificate"),
    "chain-order": ("error", "The leaf is not first or the chain is out of order"),
    "cert-expired": ("critical", "The certificate has expired"),
    "cert-not-yet-valid": ("critical", "The certificate is not valid yet"),
    "cert-renewal-due": ("warning", "The certificate is inside its renewal window"),
    "host-not-covered": ("error", "A host the gateway serves is not covered by the certificate"),
    "stale-ocsp-staple": ("error", "tls.ocsp-staple does not belong to the certificate"),
    "weak-key": ("error", "Key too weak (RSA < 2048 bits, EC < 256 bits, DSA)"),
    "weak-signature": ("error", "Certificate signed with SHA-1 or MD5"),
    "client-ca-missing": ("critical", "MUTUAL/OPTIONAL_MUTUAL server without a client CA bundle"),
    "client-ca-expired": ("critical", "A client CA certificate has expired"),
    "client-ca-expiring": ("warning", "A client CA certificate expires soon"),
    # plan
    "managed-externally": ("info", "cert-manager owns this Secret; rotator leaves it alone"),
    "no-issuer": ("warning", "Renewal is due but no issuer rule matches"),
    "invalid-annotation": ("warning", "A rotator.io annotation has a value rotator cannot use"),
    "not-owned": ("warning", "The Secret is not a TLS credential rotator may write (Istio's CA, other keys)"),
    "untrusted-gateway": ("warning", "A Gateway from a namespace no rule trusts references the Secret"),
    # renewal (rotator check without --dry-run)
    "renewal-failed": ("error", "Issuing or writing the renewed certificate failed"),
    "renewal-paused": ("info", "Renewal is paused by the rotator.io/renewal=paused annotation (e.g. after a rollback)"),
    "renewal-backoff": ("warning", "Renewal is waiting after earlier failures"),
    "issuer-change": ("warning", "The current certificate comes from another CA; not moved without consent"),
    "issuer-ca-expiring": ("warning", "The CA of a CA issuer expires soon (critical once expired)"),
    "not-served": ("error", "After a rotation, the gateway kept serving another certificate"),
    "sink-unavailable": ("error", "An alert sink cannot be used: its routing key or secret cannot be read"),
    "internal-error": ("error", "rotator failed on one object (a bug); the others were processed"),
    "issuer-unavailable": ("error", "An issuer cannot be used (missing or invalid CA, unreachable ACME server)"),
    # the seed's checklist
    "selector-no-workload": ("error", "The Gateway selector matches no workload"),
    "vs-host-not-in-gateway": ("warning", "A VirtualService host is not served by its Gateway"),
    "vs-gateway-not-found": ("error", "A VirtualService names a Gateway that does not exist"),
    "subset-not-defined": ("error", "A route uses a subset no DestinationRule defines"),
    "conflicting-gateways": ("error", "Two Gateways claim the same port and host on the same workloads"),
}

# Named classes of codes: each decision that keys on a kind of finding reads it here, so a
# new code is classified in one place, beside its catalogue row.

# The certificate's content makes the credential unusable: Istio cannot serve it.
UNUSABLE_CONTENT = frozenset({"invalid-pem", "missing-keys", "key-mismatch", "cert-not-yet-valid"})
# The reference itself is broken: Istio will not load the Secret from where it is named.
BROKEN_REFERENCE = frozenset({"cross-namespace-reference", "reference-not-permitted", "cacert-name-for-server"})
# Either: the credential's state is ``invalid``, whatever its dates say.
INVALID = UNUSABLE_CONTENT | BROKEN_REFERENCE
# What a freshly issued candidate must not have before it may replace a serving credential.
BLOCKS_WRITE = frozenset(
    {
        "invalid-pem",
        "missing-keys",
        "key-mismatch",
        "chain-order",
        "cert-expired",
        "cert-not-yet-valid",
        "host-not-covered",
        "weak-key",
        "weak-signature",
        "stale-ocsp-staple",
    }
)


def finding(code: str, message: str, obj: ObjectRef | None = None, severity: Severity | None = None) -> Finding:
    """Build a finding; the severity comes from the catalogue unless the context raises it."""
    default, _title = CATALOGUE[code]
    return Finding(code=code, severity=severity or default, message=message, object=obj)


def internal_error(stage: str, obj: ObjectRef, exc: BaseException) -> Finding:
    """One object's unexpected failure in one stage, as a finding on that object: the
    pass goes on with the others (one tenant's odd object must not stop rotation)."""
    return finding(
        "internal-error",
        f"{obj}: rotator failed during {stage} ({type(exc).__name__}: {str(exc)[:200]}); the other objects were "
        "processed. Please report this with the object's shape (not its key material).",
        obj,
    )
