"""The client-CA checks of mutual TLS servers: ``CLIENT_CA_CHECKS``, a named chain.

Same shape as ``server.SERVER_CHECKS``: each check takes the parsed ``CAMaterial`` and
returns findings. A CA bundle may hold several CAs (a staged roll-over), so the checks
judge each CA and the state says whether any client can be verified now.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from rotator.checks import certs as c
from rotator.checks.families import CA_KEYS, has, select_ca_key
from rotator.checks.options import InspectOptions, state_of
from rotator.findings import finding
from rotator.model import Credential, CredentialSpec, Finding, Inventory, ObjectRef
from rotator.util.timeutil import rfc3339


@dataclass(frozen=True)
class CAMaterial:
    """A client-CA credential as Istio would load it, with the ``<name>`` Secret whose
    inline CA a ``<name>-cacert`` Secret overrides (None when there is none)."""

    spec: CredentialSpec
    obj: ObjectRef
    data: dict[str, bytes]
    key: str | None
    bundle: c.Bundle
    overridden: tuple[str, str, tuple[str, ...]] | None  # namespace, name, inline CA keys
    now: datetime
    options: InspectOptions

    @property
    def live(self) -> list[x509.Certificate]:
        return [cert for cert in self.bundle.certs if c.not_after(cert) >= self.now]

    @property
    def valid_now(self) -> list[x509.Certificate]:
        return [cert for cert in self.live if c.not_before(cert) <= self.now]


CACheck = Callable[[CAMaterial], Sequence[Finding]]


def material(
    spec: CredentialSpec, obj: ObjectRef, data: dict[str, bytes], inv: Inventory, now: datetime, options: InspectOptions
) -> CAMaterial:
    key = select_ca_key(data)
    bundle = c.parse_bundle(data[key]) if key else c.Bundle((), ())
    overridden = None
    if spec.kind == "Secret" and spec.name.endswith("-cacert"):
        base = inv.secret(spec.namespace, spec.name[: -len("-cacert")])
        inline = tuple(k for k in CA_KEYS if base is not None and has(base.data, k))
        if base is not None and inline:
            overridden = (base.namespace, base.name, inline)
    return CAMaterial(spec, obj, data, key, bundle, overridden, now, options)


def overrides_inline_ca(m: CAMaterial) -> list[Finding]:
    if m.overridden is None:
        return []
    ns, name, inline = m.overridden
    message = (
        f"{m.obj} is the client CA Istio uses; Secret {ns}/{name} also holds {' and '.join(inline)}, which "
        f"Istio ignores while {m.spec.name} exists (§3.3). Updating that inline CA has no effect."
    )
    return [finding("shadowed-keys", message, m.obj)]


def no_ca_key(m: CAMaterial) -> list[Finding]:
    if m.key is not None:
        return []
    ref = m.spec.references[0]
    message = (
        f"{m.obj} has no cacert or ca.crt, so the {ref.mode} server of {ref.kind} {ref.namespace}/{ref.name} "
        "has no client CA; istiod sends nothing and client handshakes fail."
    )
    if m.spec.name.endswith("-cacert"):
        message += " A Secret named '<name>-cacert' wins even without the keys; there is no fallback."
    return [finding("client-ca-missing", message, m.obj)]


def shadowed_ca_keys(m: CAMaterial) -> list[Finding]:
    if m.key != "cacert" or not has(m.data, "ca.crt"):
        return []
    same = m.data["ca.crt"] == m.data["cacert"]
    tail = (
        " (identical copies today); Istio trusts cacert."
        if same
        else " with different bundles; Istio trusts cacert and ignores ca.crt."
    )
    return [
        finding("shadowed-keys", f"{m.obj} has both cacert and ca.crt" + tail, m.obj, severity="info" if same else None)
    ]


def unparsable(m: CAMaterial) -> list[Finding]:
    return [finding("invalid-pem", f"{m.obj} key {m.key!r}: {err}.", m.obj) for err in m.bundle.errors]


def not_yet_valid(m: CAMaterial) -> list[Finding]:
    """A future CA beside a current one is a staged roll-over (a warning); alone, nothing
    verifies a client today."""
    alone = not m.valid_now
    return [
        finding(
            "cert-not-yet-valid",
            f"{m.obj}: client CA {cert.subject.rfc4514_string()} is not valid before {rfc3339(c.not_before(cert))}"
            + ("; no CA in the bundle is valid now, so every client certificate is refused." if alone else "."),
            m.obj,
            severity=None if alone else "warning",
        )
        for cert in m.live
        if c.not_before(cert) > m.now
    ]


def expired(m: CAMaterial) -> list[Finding]:
    live = m.live
    tail = (
        "; no CA in the bundle is valid, so every client certificate is refused."
        if not live
        else f"; {len(live)} other CA certificate(s) in the bundle are still valid."
    )
    return [
        finding(
            "client-ca-expired",
            f"{m.obj}: client CA {cert.subject.rfc4514_string()} expired at {rfc3339(c.not_after(cert))}" + tail,
            m.obj,
            severity=None if not live else "warning",
        )
        for cert in m.bundle.certs
        if c.not_after(cert) < m.now
    ]


def expiring(m: CAMaterial) -> list[Finding]:
    return [
        finding(
            "client-ca-expiring",
            f"{m.obj}: client CA {cert.subject.rfc4514_string()} expires at {rfc3339(c.not_after(cert))}; "
            "issue client certificates from its successor and add it to the bundle before then.",
            m.obj,
        )
        for cert in m.live
        if c.not_after(cert) - m.now <= m.options.client_ca_warning
    ]


CLIENT_CA_CHECKS: tuple[CACheck, ...] = (
    overrides_inline_ca,
    no_ca_key,
    shadowed_ca_keys,
    unparsable,
    not_yet_valid,
    expired,
    expiring,
)


def inspect_client_ca(m: CAMaterial, found: list[Finding]) -> Credential:
    """Run the chain; ``found`` holds what discovery and the lookup already said."""
    for check in CLIENT_CA_CHECKS:
        found.extend(check(m))
    if m.key is None:
        return Credential(m.spec, None, "missing", tuple(found))
    if not m.bundle.certs:
        return Credential(m.spec, None, "invalid", tuple(found))
    live, valid_now = m.live, m.valid_now
    soonest = min(valid_now or live or list(m.bundle.certs), key=c.not_after)
    # A future CA next to a current one is a staged roll-over, not a broken bundle.
    state = state_of([f for f in found if f.code != "cert-not-yet-valid"], not live)
    if state == "ok" and not valid_now:
        state = "invalid"  # only not-yet-valid CAs: nothing verifies a client today
    return Credential(m.spec, c.describe(m.bundle.certs, soonest), state, tuple(found))
