"""Looks inside each credential: can Istio load it, and will clients accept it?

Pure: a ``CredentialSpec`` plus the inventory and ``now`` in, a ``Credential`` out.
Renewal timing is the policy module's job; this module reports facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509

from rotator import findings
from rotator.checks import certs as c
from rotator.findings import finding
from rotator.hosts import coverage_targets, covered
from rotator.model import Credential, CredentialSpec, Finding, Inventory, ObjectRef, State
from rotator.util.timeutil import rfc3339

# Secret types istiod's informer never sees (§2.7).
INVISIBLE_TYPES = frozenset({"helm.sh/release.v1", "kubernetes.io/service-account-token"})
SERVER_FAMILIES = (("cert", "key"), ("tls.crt", "tls.key"))
CA_KEYS = ("cacert", "ca.crt")


@dataclass(frozen=True)
class InspectOptions:
    client_ca_warning: timedelta = timedelta(days=30)
    # Verify every chain signature even when key identifiers match (validation before a
    # write); reports rely on identifiers and verify only where they are missing.
    verify_signatures: bool = False


def inspect(spec: CredentialSpec, inv: Inventory, now: datetime, options: InspectOptions) -> Credential:
    obj = ObjectRef(spec.kind, spec.namespace, spec.name)
    found: list[Finding] = list(spec.findings)
    data = _lookup(spec, inv, obj, found)
    if data is None:
        # unreadable (malformed, or refused by RBAC) is not "missing": it exists, and
        # rotator must not plan to create it
        unreadable = any(f.code in ("invalid-manifest", "access-denied") for f in found)
        return Credential(spec, None, "invalid" if unreadable else "missing", tuple(found))
    if spec.role == "server":
        return _inspect_server(spec, data, obj, now, found, options)
    return _inspect_ca(spec, data, obj, now, options, found, inv)


def _lookup(spec: CredentialSpec, inv: Inventory, obj: ObjectRef, found: list[Finding]) -> dict[str, bytes] | None:
    gateways = ", ".join(sorted({f"{r.namespace}/{r.name}" for r in spec.references}))
    unreadable = inv.unreadable.get((spec.kind, spec.namespace, spec.name))
    if unreadable is not None:
        code, why = unreadable
        found.append(finding(code, f"{obj} could not be read: {why}", obj))
        return None
    if spec.kind == "ConfigMap":
        cm = inv.config_map(spec.namespace, spec.name)
        if cm is None:
            found.append(
                finding(
                    "client-ca-missing",
                    f"ConfigMap {spec.namespace}/{spec.name} with the client CA for Gateway {gateways} does not exist.",
                    obj,
                )
            )
            return None
        return cm.data
    secret = inv.secret(spec.namespace, spec.name)
    if secret is not None and secret.type in INVISIBLE_TYPES:
        found.append(
            finding(
                "secret-not-found",
                f"Secret {spec.namespace}/{spec.name} has type {secret.type}, which istiod never reads.",
                obj,
            )
        )
        return None
    if secret is not None:
        for key in secret.invalid_base64:
            found.append(
                finding(
                    "invalid-pem",
                    f"{obj} key {key!r} is not valid base64, so nothing can be read from it (the API server "
                    "refuses such a Secret: was the manifest edited by hand? put PEM under stringData, or "
                    "base64-encode it)",
                    obj,
                )
            )
        return secret.data
    if spec.role == "client-ca":
        found.append(
            finding(
                "client-ca-missing",
                f"no Secret {spec.namespace}/{spec.name} holds the client CA (cacert or ca.crt) that the "
                f"{spec.references[0].mode} server of Gateway {gateways} requires; handshakes will fail.",
                obj,
            )
        )
        return None
    elsewhere = sorted(s.namespace for s in inv.secrets_named(spec.name) if s.namespace != spec.namespace)
    if elsewhere:
        found.append(
            finding(
                "secret-wrong-namespace",
                f"Secret {spec.name} exists in {', '.join(elsewhere)} but Gateway {gateways} runs its gateway "
                f"workload in {spec.namespace!r}, the only namespace Istio reads it from. Create it in "
                f"{spec.namespace!r}.",
                obj,
            )
        )
    else:
        found.append(
            finding(
                "secret-not-found",
                f"Secret {spec.namespace}/{spec.name} referenced by Gateway {gateways} does not exist.",
                obj,
            )
        )
    return None


def _has(data: dict[str, bytes], key: str) -> bool:
    """istiod's ``hasValue`` (§3.1): only a zero-length value counts as absent.

    A whitespace-only value is *present* for istiod, so it selects that family and then
    fails to load it; stripping here would inspect the other family instead and call a
    broken Secret healthy.
    """
    return bool(data.get(key))


def select_server_keys(data: dict[str, bytes]) -> tuple[str, str] | None:
    """istiod's ExtractCertInfo precedence (§3.1): ``cert``/``key`` wins over ``tls.crt``/``tls.key``."""
    for family in SERVER_FAMILIES:
        if _has(data, family[0]) and _has(data, family[1]):
            return family
    return None


def select_ca_key(data: dict[str, bytes]) -> str | None:
    """istiod's ExtractRoot precedence (§3.2): ``cacert`` wins over ``ca.crt``."""
    for key in CA_KEYS:
        if _has(data, key):
            return key
    return None


def _state(found: list[Finding], expired: bool) -> State:
    if any(f.code in findings.INVALID for f in found):
        return "invalid"
    return "expired" if expired else "ok"


def _inspect_server(
    spec: CredentialSpec,
    data: dict[str, bytes],
    obj: ObjectRef,
    now: datetime,
    found: list[Finding],
    options: InspectOptions,
) -> Credential:
    family = select_server_keys(data)
    if family is None:
        present = sorted(k for k in data if k in {"cert", "key", "tls.crt", "tls.key"})
        empty = [k for k in present if not _has(data, k)]
        detail = f"found {', '.join(present) or 'none of them'}"
        if empty:
            detail += f" ({', '.join(empty)} empty)"
        found.append(
            finding(
                "missing-keys",
                f"{obj} needs both cert and key, or both tls.crt and tls.key, with values; {detail}.",
                obj,
            )
        )
        return Credential(spec, None, "invalid", tuple(found))
    if family == ("cert", "key") and (_has(data, "tls.crt") or _has(data, "tls.key")):
        # Compare only the shadowed keys that are present: a lone tls.crt equal to cert
        # is a harmless copy, not "a different certificate".
        shadowed = [k for k in ("tls.crt", "tls.key") if _has(data, k)]
        same = all(data[k] == data[{"tls.crt": "cert", "tls.key": "key"}[k]] for k in shadowed)
        names = "/".join(shadowed)
        found.append(
            finding(
                "shadowed-keys",
                f"{obj} has both cert/key and {names}; Istio serves cert/key and ignores {names}"
                + (
                    " (identical copies today)."
                    if same
                    else f", which hold different material. A rotation that writes only {names} would have no effect."
                ),
                obj,
                severity="info" if same else None,
            )
        )
    bundle = c.parse_bundle(data[family[0]])
    for err in bundle.errors:
        found.append(finding("invalid-pem", f"{obj} key {family[0]!r}: {err}.", obj))
    key, key_err = c.parse_private_key(data[family[1]])
    if key is None:
        found.append(finding("invalid-pem", f"{obj} key {family[1]!r}: {key_err}.", obj))
    if not bundle.certs:
        return Credential(spec, None, "invalid", tuple(found), key_family=family)
    chain = bundle.certs
    leaf = chain[0]
    if key is not None and not c.key_matches(leaf, key):
        match = next((i for i, cert in enumerate(chain[1:], 2) if c.key_matches(cert, key)), None)
        if match is not None:
            # Envoy takes the first certificate as the leaf, so this fails to load with
            # KEY_VALUES_MISMATCH exactly like a wrong key; the rest of the report
            # describes the certificate the key belongs to, which is what was meant.
            found.append(
                finding(
                    "key-mismatch",
                    f"{obj}: the private key belongs to certificate {match} of {family[0]!r}, not the first; Envoy "
                    "uses the first certificate as the leaf and rejects the pair. Put the leaf first.",
                    obj,
                )
            )
            leaf = chain[match - 1]
        else:
            found.append(
                finding(
                    "key-mismatch",
                    f"{obj}: the private key in {family[1]!r} does not belong to the first certificate in "
                    f"{family[0]!r} ({leaf.subject.rfc4514_string()}); Envoy rejects the pair.",
                    obj,
                )
            )
    found.extend(_chain_findings(chain, obj, family[0], options.verify_signatures))
    expired = False
    if c.not_after(leaf) < now:  # notAfter is inclusive (RFC 5280 §4.1.2.5)
        expired = True
        found.append(finding("cert-expired", f"{obj}: certificate expired at {_ts(c.not_after(leaf))}.", obj))
    elif c.not_before(leaf) > now:
        found.append(
            finding("cert-not-yet-valid", f"{obj}: certificate is not valid before {_ts(c.not_before(leaf))}.", obj)
        )
    for i, cert in enumerate(chain[1:], 2):
        if c.not_after(cert) < now:
            found.append(
                finding(
                    "cert-expired",
                    f"{obj}: chain certificate {i} ({cert.subject.rfc4514_string()}) expired at "
                    f"{_ts(c.not_after(cert))}; clients that need it will fail.",
                    obj,
                    severity="error",
                )
            )
    found.extend(_strength_findings(chain, obj))
    found.extend(_coverage_findings(spec, *c.typed_sans(leaf), obj))
    if family == ("tls.crt", "tls.key") and _has(data, "tls.ocsp-staple"):
        issuer = chain[chain.index(leaf) + 1] if chain.index(leaf) + 1 < len(chain) else None
        problem = c.ocsp_problem(data["tls.ocsp-staple"], leaf, issuer)
        if problem:
            found.append(
                finding(
                    "stale-ocsp-staple",
                    f"{obj}: {problem}; Envoy rejects a certificate whose staple does not match it. Replace or "
                    "remove tls.ocsp-staple.",
                    obj,
                )
            )
    return Credential(spec, c.describe(chain, leaf), _state(found, expired), tuple(found), key_family=family)


def _chain_findings(chain: tuple[x509.Certificate, ...], obj: ObjectRef, key: str, verify: bool) -> list[Finding]:
    out: list[Finding] = []
    for i in range(len(chain) - 1):
        child, parent = chain[i], chain[i + 1]
        if not c.signed_by(child, parent, verify):
            out.append(
                finding(
                    "chain-order",
                    f"{obj} {key!r}: certificate {i + 1} ({child.subject.rfc4514_string()}) is not issued by "
                    f"certificate {i + 2} ({parent.subject.rfc4514_string()}); order the chain leaf → "
                    "intermediates → (optional) root.",
                    obj,
                )
            )
            break
    return out


def _strength_findings(chain: tuple[x509.Certificate, ...], obj: ObjectRef) -> list[Finding]:
    out: list[Finding] = []
    for i, cert in enumerate(chain, 1):
        reason = c.weak_key_reason(cert)
        if reason:
            out.append(finding("weak-key", f"{obj}: certificate {i} has a weak key: {reason}.", obj))
        algo = c.signature_hash(cert)
        if algo in c.WEAK_HASHES and not c.is_self_signed(cert):
            out.append(
                finding(
                    "weak-signature",
                    f"{obj}: certificate {i} ({cert.subject.rfc4514_string()}) is signed with {algo.upper()}, "
                    "which clients reject.",
                    obj,
                )
            )
    return out


def _coverage_findings(
    spec: CredentialSpec, dns_sans: tuple[str, ...], ip_sans: tuple[str, ...], obj: ObjectRef
) -> list[Finding]:
    out: list[Finding] = []
    seen: set[str] = set()
    sans = dns_sans + ip_sans
    for ref in spec.references:
        for target, why in coverage_targets(ref.hosts, ref.route_hosts):
            if target in seen or covered(target, dns_sans, ip_sans):
                continue
            seen.add(target)
            where = f"{ref.kind} {ref.namespace}/{ref.name} {ref.listener}"
            have = ", ".join(sans) if sans else "none (clients ignore the subject CN)"
            out.append(
                finding(
                    "host-not-covered",
                    f"{obj}: host {target!r} ({why}, {where}) is not covered by the certificate; SANs: {have}.",
                    obj,
                )
            )
    return out


def _inspect_ca(
    spec: CredentialSpec,
    data: dict[str, bytes],
    obj: ObjectRef,
    now: datetime,
    options: InspectOptions,
    found: list[Finding],
    inv: Inventory,
) -> Credential:
    key = select_ca_key(data)
    if spec.kind == "Secret" and spec.name.endswith("-cacert"):
        base = inv.secret(spec.namespace, spec.name[: -len("-cacert")])
        inline = [k for k in CA_KEYS if base is not None and _has(base.data, k)]
        if base is not None and inline:
            found.append(
                finding(
                    "shadowed-keys",
                    f"{obj} is the client CA Istio uses; Secret {base.namespace}/{base.name} also holds "
                    f"{' and '.join(inline)}, which Istio ignores while {spec.name} exists (§3.3). Updating that "
                    "inline CA has no effect.",
                    obj,
                )
            )
    if key is None:
        found.append(
            finding(
                "client-ca-missing",
                f"{obj} has no cacert or ca.crt, so the {spec.references[0].mode} server of "
                f"{spec.references[0].kind} {spec.references[0].namespace}/{spec.references[0].name} has no "
                "client CA; istiod sends nothing and client handshakes fail."
                + (
                    " A Secret named '<name>-cacert' wins even without the keys; there is no fallback."
                    if spec.name.endswith("-cacert")
                    else ""
                ),
                obj,
            )
        )
        return Credential(spec, None, "missing", tuple(found))
    if key == "cacert" and _has(data, "ca.crt"):
        same = data["ca.crt"] == data["cacert"]
        found.append(
            finding(
                "shadowed-keys",
                f"{obj} has both cacert and ca.crt"
                + (
                    " (identical copies today); Istio trusts cacert."
                    if same
                    else " with different bundles; Istio trusts cacert and ignores ca.crt."
                ),
                obj,
                severity="info" if same else None,
            )
        )
    bundle = c.parse_bundle(data[key])
    for err in bundle.errors:
        found.append(finding("invalid-pem", f"{obj} key {key!r}: {err}.", obj))
    if not bundle.certs:
        return Credential(spec, None, "invalid", tuple(found))
    expired = [cert for cert in bundle.certs if c.not_after(cert) < now]
    live = [cert for cert in bundle.certs if c.not_after(cert) >= now]
    valid_now = [cert for cert in live if c.not_before(cert) <= now]
    for cert in live:
        if c.not_before(cert) > now:
            found.append(
                finding(
                    "cert-not-yet-valid",
                    f"{obj}: client CA {cert.subject.rfc4514_string()} is not valid before "
                    f"{_ts(c.not_before(cert))}"
                    + (
                        "; no CA in the bundle is valid now, so every client certificate is refused."
                        if not valid_now
                        else "."
                    ),
                    obj,
                    severity=None if not valid_now else "warning",
                )
            )
    for cert in expired:
        found.append(
            finding(
                "client-ca-expired",
                f"{obj}: client CA {cert.subject.rfc4514_string()} expired at {_ts(c.not_after(cert))}"
                + (
                    "; no CA in the bundle is valid, so every client certificate is refused."
                    if not live
                    else f"; {len(live)} other CA certificate(s) in the bundle are still valid."
                ),
                obj,
                severity=None if not live else "warning",
            )
        )
    for cert in live:
        if c.not_after(cert) - now <= options.client_ca_warning:
            found.append(
                finding(
                    "client-ca-expiring",
                    f"{obj}: client CA {cert.subject.rfc4514_string()} expires at {_ts(c.not_after(cert))}; "
                    "issue client certificates from its successor and add it to the bundle before then.",
                    obj,
                )
            )
    soonest = min(valid_now or live or list(bundle.certs), key=c.not_after)
    # A future CA next to a current one is a staged roll-over, not a broken bundle.
    state = _state([f for f in found if f.code != "cert-not-yet-valid"], not live)
    if state == "ok" and not valid_now:
        state = "invalid"  # only not-yet-valid CAs: nothing verifies a client today
    return Credential(spec, c.describe(bundle.certs, soonest), state, tuple(found))


def _ts(value: datetime) -> str:
    return rfc3339(value)
