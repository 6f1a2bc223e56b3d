"""ACME Renewal Information timing, pure: a certificate is due by ARI once ``now`` passes
a point in the CA's window, the point fixed per serial (a fleet does not renew in step,
and one certificate does not drift across passes)."""

from __future__ import annotations

import hashlib
from datetime import datetime


def ari_jitter(serial_hex: str) -> float:
    """A stable fraction in [0, 1) per certificate, so repeated passes agree on the moment."""
    digest = hashlib.sha256(str(int(serial_hex, 16)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def ari_due(window: tuple[datetime, datetime], serial_hex: str, now: datetime) -> bool:
    start, end = window
    return now >= start + (end - start) * ari_jitter(serial_hex)
