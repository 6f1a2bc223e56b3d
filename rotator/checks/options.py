"""What both inspection chains are told, and how their findings become a state."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from rotator import findings
from rotator.model import Finding, State


@dataclass(frozen=True)
class InspectOptions:
    client_ca_warning: timedelta = timedelta(days=30)
    # Verify every chain signature even when key identifiers match (validation before a
    # write); reports rely on identifiers and verify only where they are missing.
    verify_signatures: bool = False


def state_of(found: Iterable[Finding], expired: bool) -> State:
    """Unusable beats expired: an expired certificate Istio cannot even load is ``invalid``."""
    if any(f.code in findings.INVALID for f in found):
        return "invalid"
    return "expired" if expired else "ok"
