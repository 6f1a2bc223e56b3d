"""Back-off after a failed renewal, as pure arithmetic over the persisted entry: doubling
from minutes to a day, jittered, and never shorter than the CA's Retry-After or, for a
rate limit, an hour (a tight loop burns the CA's limits for everyone)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from rotator.issuers.base import IssuerError
from rotator.util.timeutil import rfc3339

RATE_LIMIT_FLOOR = timedelta(hours=1)


def backoff_delay(failures: int, initial: timedelta, cap: timedelta) -> timedelta:
    """initial, 2×, 4× … capped: minutes first (not cert-manager's hour), a day at most."""
    factor: int = 2 ** max(0, failures - 1)
    return min(cap, initial * factor)


def failure_entry(
    old: dict[str, Any] | None,
    now: datetime,
    error: IssuerError | Exception,
    initial: timedelta,
    cap: timedelta,
    rng: Callable[[], float] = random.random,
) -> dict[str, Any]:
    failures = int((old or {}).get("failures", 0)) + 1
    delay = backoff_delay(failures, initial, cap)
    delay += delay * 0.1 * rng()  # jitter so a fleet does not retry in lock-step
    if isinstance(error, IssuerError):
        if error.retry_after is not None:
            delay = max(delay, timedelta(seconds=error.retry_after))
        if error.rate_limited:
            delay = max(delay, RATE_LIMIT_FLOOR)  # a rate limit is a long back-off, never a tight loop
    return {
        "failures": failures,
        "last_failure": rfc3339(now),
        "next_attempt": rfc3339(now + delay),
        "last_error": str(error)[:500],
    }


def parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
