"""The server certificate checks: ``SERVER_CHECKS``, a named chain of small pure functions.

Each check takes the credential's material, parsed once into a ``ServerMaterial``, and
returns its findings; none depends on another's output. A new content check is one
function appended to the chain, plus its code in ``findings.CATALOGUE``. Order matters
only for the order of findings in the report, which is part of its contract.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import types

from rotator.checks import certs as c
from rotator.checks.families import has, select_server_keys
from rotator.checks.options import InspectOptions, state_of
from rotator.findings import finding
from rotator.hosts import coverage_targets, covered
from rotator.model import Credential, CredentialSpec, Finding, ObjectRef
from rotator.util.timeutil import rfc3339


@dataclass(frozen=True)
class ServerMaterial:
    """A server credential as Istio would load it: the key family it picks, the parsed
    chain and key, and the certificate the key belongs to (``leaf``)."""

    spec: CredentialSpec
    obj: ObjectRef
    data: dict[str, bytes]
    family: tuple[str, str] | None
    bundle: c.Bundle
    key: types.PrivateKeyTypes | None
    key_error: str
    leaf_index: int
    now: datetime
    options: InspectOptions

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        return self.bundle.certs

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[self.leaf_index]


ServerCheck = Callable[[ServerMaterial], Sequence[Finding]]


def material(
    spec: CredentialSpec, obj: ObjectRef, data: dict[str, bytes], now: datetime, options: InspectOptions
) -> ServerMaterial:
    """Parse once. The leaf is the first certificate, unless the key belongs to a later one:
    the report then describes the certificate that was meant (``key_mismatch`` says so)."""
    family = select_server_keys(data)
    if family is None:
        return ServerMaterial(spec, obj, data, None, c.Bundle((), ()), None, "", 0, now, options)
    bundle = c.parse_bundle(data[family[0]])
    key, key_error = c.parse_private_key(data[family[1]], signing=False)
    leaf_index = 0
    if key is not None and bundle.certs and not c.key_matches(bundle.certs[0], key):
        leaf_index = next((i for i, cert in enumerate(bundle.certs) if c.key_matches(cert, key)), 0)
    return ServerMaterial(spec, obj, data, family, bundle, key, key_error, leaf_index, now, options)


def missing_keys(m: ServerMaterial) -> list[Finding]:
    if m.family is not None:
        return []
    present = sorted(k for k in m.data if k in {"cert", "key", "tls.crt", "tls.key"})
    empty = [k for k in present if not has(m.data, k)]
    detail = f"found {', '.join(present) or 'none of them'}"
    if empty:
        detail += f" ({', '.join(empty)} empty)"
    message = f"{m.obj} needs both cert and key, or both tls.crt and tls.key, with values; {detail}."
    return [finding("missing-keys", message, m.obj)]


def shadowed_keys(m: ServerMaterial) -> list[Finding]:
    """cert/key wins over tls.crt/tls.key; a rotation writing only the loser does nothing."""
    if m.family != ("cert", "key") or not (has(m.data, "tls.crt") or has(m.data, "tls.key")):
        return []
    # Compare only the shadowed keys that are present: a lone tls.crt equal to cert is a
    # harmless copy, not "a different certificate".
    shadowed = [k for k in ("tls.crt", "tls.key") if has(m.data, k)]
    same = all(m.data[k] == m.data[{"tls.crt": "cert", "tls.key": "key"}[k]] for k in shadowed)
    names = "/".join(shadowed)
    tail = (
        " (identical copies today)."
        if same
        else f", which hold different material. A rotation that writes only {names} would have no effect."
    )
    message = f"{m.obj} has both cert/key and {names}; Istio serves cert/key and ignores {names}" + tail
    return [finding("shadowed-keys", message, m.obj, severity="info" if same else None)]


def unparsable(m: ServerMaterial) -> list[Finding]:
    if m.family is None:
        return []
    out = [finding("invalid-pem", f"{m.obj} key {m.family[0]!r}: {err}.", m.obj) for err in m.bundle.errors]
    if m.key is None:
        out.append(finding("invalid-pem", f"{m.obj} key {m.family[1]!r}: {m.key_error}.", m.obj))
    return out


def key_mismatch(m: ServerMaterial) -> list[Finding]:
    if m.family is None or m.key is None or not m.chain or c.key_matches(m.chain[0], m.key):
        return []
    if m.leaf_index:
        # Envoy takes the first certificate as the leaf, so this fails to load with
        # KEY_VALUES_MISMATCH exactly like a wrong key.
        message = (
            f"{m.obj}: the private key belongs to certificate {m.leaf_index + 1} of {m.family[0]!r}, not the "
            "first; Envoy uses the first certificate as the leaf and rejects the pair. Put the leaf first."
        )
    else:
        message = (
            f"{m.obj}: the private key in {m.family[1]!r} does not belong to the first certificate in "
            f"{m.family[0]!r} ({m.chain[0].subject.rfc4514_string()}); Envoy rejects the pair."
        )
    return [finding("key-mismatch", message, m.obj)]


def chain_order(m: ServerMaterial) -> list[Finding]:
    for i in range(len(m.chain) - 1):
        child, parent = m.chain[i], m.chain[i + 1]
        if not c.signed_by(child, parent, m.options.verify_signatures):
            assert m.family is not None
            message = (
                f"{m.obj} {m.family[0]!r}: certificate {i + 1} ({child.subject.rfc4514_string()}) is not issued "
                f"by certificate {i + 2} ({parent.subject.rfc4514_string()}); order the chain leaf → "
                "intermediates → (optional) root."
            )
            return [finding("chain-order", message, m.obj)]
    return []


def leaf_validity(m: ServerMaterial) -> list[Finding]:
    if not m.chain:
        return []
    if expired(m):
        return [finding("cert-expired", f"{m.obj}: certificate expired at {rfc3339(c.not_after(m.leaf))}.", m.obj)]
    if c.not_before(m.leaf) > m.now:
        message = f"{m.obj}: certificate is not valid before {rfc3339(c.not_before(m.leaf))}."
        return [finding("cert-not-yet-valid", message, m.obj)]
    return []


def chain_expiry(m: ServerMaterial) -> list[Finding]:
    return [
        finding(
            "cert-expired",
            f"{m.obj}: chain certificate {i} ({cert.subject.rfc4514_string()}) expired at "
            f"{rfc3339(c.not_after(cert))}; clients that need it will fail.",
            m.obj,
            severity="error",
        )
        for i, cert in enumerate(m.chain[1:], 2)
        if c.not_after(cert) < m.now
    ]


def strength(m: ServerMaterial) -> list[Finding]:
    out: list[Finding] = []
    for i, cert in enumerate(m.chain, 1):
        reason = c.weak_key_reason(cert)
        if reason:
            out.append(finding("weak-key", f"{m.obj}: certificate {i} has a weak key: {reason}.", m.obj))
        algo = c.signature_hash(cert)
        if algo in c.WEAK_HASHES and not c.is_self_signed(cert):
            message = (
                f"{m.obj}: certificate {i} ({cert.subject.rfc4514_string()}) is signed with {algo.upper()}, "
                "which clients reject."
            )
            out.append(finding("weak-signature", message, m.obj))
    return out


def host_coverage(m: ServerMaterial) -> list[Finding]:
    """Every host a client may ask for on the referencing servers (and their routes)."""
    if not m.chain:
        return []
    dns_sans, ip_sans = c.typed_sans(m.leaf)
    out: list[Finding] = []
    seen: set[str] = set()
    sans = dns_sans + ip_sans
    for ref in m.spec.references:
        for target, why in coverage_targets(ref.hosts, ref.route_hosts):
            if target in seen or covered(target, dns_sans, ip_sans):
                continue
            seen.add(target)
            where = f"{ref.kind} {ref.namespace}/{ref.name} {ref.listener}"
            have = ", ".join(sans) if sans else "none (clients ignore the subject CN)"
            message = f"{m.obj}: host {target!r} ({why}, {where}) is not covered by the certificate; SANs: {have}."
            out.append(finding("host-not-covered", message, m.obj))
    return out


def ocsp_staple(m: ServerMaterial) -> list[Finding]:
    if not m.chain or m.family != ("tls.crt", "tls.key") or not has(m.data, "tls.ocsp-staple"):
        return []
    issuer = m.chain[m.leaf_index + 1] if m.leaf_index + 1 < len(m.chain) else None
    problem = c.ocsp_problem(m.data["tls.ocsp-staple"], m.leaf, issuer)
    if not problem:
        return []
    message = (
        f"{m.obj}: {problem}; Envoy rejects a certificate whose staple does not match it. Replace or "
        "remove tls.ocsp-staple."
    )
    return [finding("stale-ocsp-staple", message, m.obj)]


SERVER_CHECKS: tuple[ServerCheck, ...] = (
    missing_keys,
    shadowed_keys,
    unparsable,
    key_mismatch,
    chain_order,
    leaf_validity,
    chain_expiry,
    strength,
    host_coverage,
    ocsp_staple,
)


def expired(m: ServerMaterial) -> bool:
    return bool(m.chain) and c.not_after(m.leaf) < m.now  # notAfter is inclusive (RFC 5280 §4.1.2.5)


def inspect_server(m: ServerMaterial, found: list[Finding]) -> Credential:
    """Run the chain; ``found`` holds what discovery and the lookup already said."""
    for check in SERVER_CHECKS:
        found.extend(check(m))
    if m.family is None:
        return Credential(m.spec, None, "invalid", tuple(found))
    if not m.chain:
        return Credential(m.spec, None, "invalid", tuple(found), key_family=m.family)
    info = c.describe(m.chain, m.leaf)
    return Credential(m.spec, info, state_of(found, expired(m)), tuple(found), key_family=m.family)
