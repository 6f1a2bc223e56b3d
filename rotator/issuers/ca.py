"""The CA issuer: signs leaves with a CA key pair held in a Kubernetes Secret or files.

Profile: the requested SANs (wildcards kept), validity from config but never beyond the
CA's own notAfter, serverAuth (+ clientAuth on request), SKI/AKI, a random 128-bit serial,
and the CA's intermediates in the chain (never a self-signed root: clients have it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import types

from rotator.checks import certs
from rotator.findings import finding
from rotator.issuers.base import Issued, IssueRequest, IssuerError
from rotator.model import Finding, ObjectRef
from rotator.util import pki
from rotator.util.timeutil import rfc3339

BACKDATE = timedelta(minutes=5)  # tolerate clock skew on clients


@dataclass(frozen=True)
class CAMaterial:
    cert: x509.Certificate  # the signing CA
    key: types.CertificateIssuerPrivateKeyTypes
    chain: tuple[x509.Certificate, ...]  # intermediates above the signing CA (no self-signed root)


def load_material(cert_pem: bytes, key_pem: bytes, source: str) -> CAMaterial:
    """The first certificate signs; following non-root certificates are intermediates."""
    bundle = certs.parse_bundle(cert_pem)
    if not bundle.certs:
        raise IssuerError(f"CA {source}: no certificate ({'; '.join(bundle.errors)})")
    key, err = certs.parse_private_key(key_pem)
    if key is None:
        raise IssuerError(f"CA {source}: {err}")
    ca = bundle.certs[0]
    if not certs.key_matches(ca, key):
        raise IssuerError(f"CA {source}: the key does not belong to the first certificate")
    if not certs.is_ca(ca):
        raise IssuerError(f"CA {source}: the first certificate is not a CA (basicConstraints CA:FALSE)")
    chain = tuple(c for c in bundle.certs[1:] if not certs.is_self_signed(c))
    extra = [] if certs.is_self_signed(ca) else [ca]
    return CAMaterial(ca, key, tuple(extra) + chain)  # type: ignore[arg-type]


class CAIssuer:
    def __init__(
        self,
        name: str,
        load: Callable[[], CAMaterial],
        validity: timedelta,
        clock: Callable[[], datetime],
        warn_before: timedelta = timedelta(days=30),
        client_auth: bool = False,
    ) -> None:
        self.name = name
        self._load = load
        self._material: CAMaterial | None = None
        self.validity = validity
        self.clock = clock
        self.warn_before = warn_before
        self.client_auth = client_auth
        self.requests: dict[str, int] = {}  # signs locally: no CA server to count requests to

    def sweep(self) -> None:
        """Signing leaves nothing behind to remove."""

    @property
    def material(self) -> CAMaterial:
        if self._material is None:
            self._material = self._load()
        return self._material

    def issue(self, request: IssueRequest) -> Issued:
        m = self.material
        now = self.clock()
        ca_end = certs.not_after(m.cert)
        if ca_end <= now:
            raise IssuerError(f"CA {self.name} expired at {rfc3339(ca_end)}; it cannot issue")
        if not request.sans:
            raise IssuerError(f"{request.namespace}/{request.name}: no host names to issue for")
        key = pki.new_key(request.key_algorithm)
        not_after = min(now + self.validity, ca_end)
        cert = pki.build_certificate(
            subject_cn=_common_name(request.sans),
            public_key=key.public_key(),
            not_before=now - BACKDATE,
            not_after=not_after,
            issuer_cert=m.cert,
            issuer_key=m.key,
            sans=request.sans,
            client_auth=request.client_auth or self.client_auth,
        )
        chain = pki.cert_pem(cert, *m.chain)
        return Issued(
            chain,
            pki.key_pem(key, pkcs1=request.pkcs1),
            format(cert.serial_number, "x"),
            certs.not_after(cert),
            self.name,
        )

    def owns(self, cert: x509.Certificate) -> bool:
        return certs.signed_by(cert, self.material.cert, verify=True)  # IssuerError: cannot tell

    def health(self, now: datetime) -> list[Finding]:
        obj = ObjectRef("Issuer", "", self.name)
        try:
            m = self.material
        except IssuerError as exc:
            return [finding("issuer-unavailable", f"issuer {self.name}: {exc}", obj)]
        end = certs.not_after(m.cert)
        if end <= now:
            return [
                finding(
                    "issuer-ca-expiring",
                    f"issuer {self.name}: its CA expired at {rfc3339(end)}; renewals fail until it is replaced.",
                    obj,
                    severity="critical",
                )
            ]
        if end - now <= max(self.warn_before, self.validity):
            return [
                finding(
                    "issuer-ca-expiring",
                    f"issuer {self.name}: its CA expires at {rfc3339(end)}; "
                    "certificates it issues now are cut short at that date. Roll the CA over.",
                    obj,
                )
            ]
        return []

    def renewal_window(self, cert: x509.Certificate) -> tuple[datetime, datetime] | None:
        return None


def _common_name(sans: tuple[str, ...]) -> str:
    """The first DNS SAN (≤ 64 chars) as CN, for humans; clients use the SANs."""
    for s in sans:
        if len(s) <= 64:
            return s
    return "rotator"
