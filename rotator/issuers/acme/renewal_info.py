"""ACME Renewal Information (RFC 9773) for an x509 certificate: its certificate ID and the
planning rule (``plan.ari``) applied to it."""

from __future__ import annotations

import base64
from datetime import datetime

from cryptography import x509


def ari_cert_id(cert: x509.Certificate) -> str:
    """base64url(AKI keyIdentifier) '.' base64url(DER serial), RFC 9773 §4.1."""
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier or b""
    serial = cert.serial_number
    raw = serial.to_bytes((serial.bit_length() + 8) // 8, "big", signed=True)

    def b64(b: bytes) -> str:
        return base64.urlsafe_b64encode(b).decode().rstrip("=")

    return f"{b64(aki)}.{b64(raw)}"


def ari_jitter(cert: x509.Certificate) -> float:
    from rotator.plan.ari import ari_jitter as jitter

    return jitter(format(cert.serial_number, "x"))


def ari_due(window: tuple[datetime, datetime], cert: x509.Certificate, now: datetime) -> bool:
    """The planning rule (``plan.ari.ari_due``), for an x509 certificate."""
    from rotator.plan.ari import ari_due as due

    return due(window, format(cert.serial_number, "x"), now)
