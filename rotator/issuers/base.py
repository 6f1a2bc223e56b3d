"""The issuer interface: what the renewal flow asks of any backend.

Kept deliberately small (issue, owns, health, renewal_window) so the CA issuer, the
ACME issuer and test doubles are interchangeable and the renewal flow is tested without
a network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cryptography import x509

from rotator.model import Finding
from rotator.util.pki import KeyAlgorithm


@dataclass(frozen=True)
class IssueRequest:
    namespace: str
    name: str
    sans: tuple[str, ...]  # DNS names (wildcards kept) and IP addresses
    key_algorithm: KeyAlgorithm
    pkcs1: bool = False  # write the key as PKCS#1/SEC1 because the Secret did
    client_auth: bool = False
    replaces: x509.Certificate | None = None  # the current certificate (ACME ARI ``replaces``)
    gateways: tuple[str, ...] = ()  # "namespace/name" of classic Gateways serving these hosts (HTTP-01 routes)


@dataclass(frozen=True)
class Issued:
    chain_pem: bytes  # leaf first
    key_pem: bytes
    serial: str
    not_after: datetime
    issuer: str  # the issuer's configured name


class IssuerError(Exception):
    """Issuance failed; ``retry_after`` (seconds) when the server said when to come back."""

    def __init__(self, message: str, retry_after: float | None = None, rate_limited: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.rate_limited = rate_limited


class Issuer(Protocol):
    """What the plan, the renewer, preflight and metrics need from a CA; nothing is reached
    by ``getattr``, so a new issuer is complete when it type-checks against this."""

    name: str

    @property
    def requests(self) -> Mapping[str, int]:
        """Requests made to the CA so far, by result (``rotator_acme_requests_total``); an
        issuer that talks to no server keeps it empty."""

    def issue(self, request: IssueRequest) -> Issued:
        """Issue a certificate for the request; raise IssuerError on failure."""

    def owns(self, cert: x509.Certificate) -> bool:
        """Was ``cert`` issued by this issuer? (moving a credential to another CA needs consent).
        Raises IssuerError when it cannot tell (its CA cannot be read): "unknown" must not
        read as "another CA"."""

    def health(self, now: datetime) -> list[Finding]:
        """Problems with the issuer itself, e.g. its CA expiring."""

    def renewal_window(self, cert: x509.Certificate) -> tuple[datetime, datetime] | None:
        """The CA's suggested renewal window (ACME ARI), or None."""

    def sweep(self) -> None:
        """Remove what orders of a killed pod left behind (challenge records, routes); a
        no-op for an issuer that leaves nothing. Called once per pass that may write."""
