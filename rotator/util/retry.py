"""Bounded exponential backoff with full jitter, shared by every network edge.

The clock and the sleep are parameters, so tests drive retries with a fake sleep and
no wall-clock time; production passes ``time.sleep``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # total tries, including the first
    base: float = 0.25  # seconds; the n-th retry waits up to base * 2**n
    cap: float = 8.0  # no single wait is longer
    retry_after_cap: float = 60.0  # a server's Retry-After is honoured up to this

    def delay(self, retry: int, retry_after: float | None = None, rng: Callable[[], float] = random.random) -> float:
        """Wait before retry number ``retry`` (0-based); a server's Retry-After wins when given."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_cap)
        return float(rng() * min(self.cap, self.base * (2**retry)))


def default_sleep(seconds: float) -> None:
    time.sleep(seconds)
