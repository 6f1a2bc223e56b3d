"""PagerDuty Events API v2: a small, bounded client and the notifier that drives it.

Plain HTTP (urllib), as PagerDuty's own API reference makes it one unauthenticated JSON
POST: explicit region/URL, timeout, a *bounded* retry budget on 429/5xx/network errors
with exponential backoff and jitter, never a retry on 400 (its body is logged), and a
client-side rate limit under the ~120 events/minute/key PagerDuty accepts. The routing
key is only ever in request bodies: never in logs, findings or exceptions.
"""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from rotator import __version__
from rotator.alerting import (
    Action,
    change_event,
    desired,
    key_id,
    not_served_alerts,
    plan_actions,
    resolve_event,
    trigger_event,
)
from rotator.config import PagerDutyConfig
from rotator.logs import get_logger
from rotator.model import CheckResult
from rotator.retry import RetryPolicy, default_sleep
from rotator.state import StateStore
from rotator.timeutil import parse_duration, rfc3339

REGIONS = {"us": "https://events.pagerduty.com", "eu": "https://events.eu.pagerduty.com"}
ROUTING_KEY = re.compile(r"^[A-Za-z0-9]{32}$")


class Transport:
    def __init__(
        self,
        base_url: str,
        timeout: float = 15.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = default_sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retry = retry or RetryPolicy(attempts=4, base=0.5, cap=8.0, retry_after_cap=30.0)
        self.sleep = sleep
        self.log = get_logger("rotator.pagerduty")

    def post(self, path: str, body: dict[str, Any]) -> bool:
        """True once PagerDuty accepted (202). Bounded; a 400 is final and its body logged."""
        data = json.dumps(body).encode()
        what = body.get("event_action", "change")
        for attempt in range(self.retry.attempts):
            if attempt:
                self.sleep(self.retry.delay(attempt - 1))
            req = urllib.request.Request(
                self.base_url + path,
                data=data,
                method="POST",
                headers={"Content-Type": "application/json", "User-Agent": f"rotator/{__version__}"},
            )
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    if resp.status == 202:
                        return True
                    self.log.warning("unexpected PagerDuty answer", status=resp.status, kind=what)
                    return False
            except urllib.error.HTTPError as exc:
                text = exc.read().decode("utf-8", "replace")[:2000]
                if exc.code == 429 or exc.code >= 500:
                    self.log.warning("PagerDuty busy; retrying", status=exc.code, kind=what, attempt=attempt + 1)
                    continue
                self.log.error("PagerDuty rejected the event", status=exc.code, kind=what, body=text)
                return False
            except (OSError, ValueError, http.client.HTTPException) as exc:  # resets, timeouts, garbage
                self.log.warning(
                    "PagerDuty unreachable; retrying", error=type(exc).__name__, kind=what, attempt=attempt + 1
                )
                continue
        self.log.error("PagerDuty event not delivered; will retry next pass", kind=what)
        return False


class RateLimiter:
    """At most ``limit`` events in any 60 s window (sliding), per routing key."""

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self.sent: deque[float] = deque()

    def allow(self) -> bool:
        now = self.clock()
        while self.sent and now - self.sent[0] >= 60:
            self.sent.popleft()
        if len(self.sent) >= self.limit:
            return False
        self.sent.append(now)
        return True


class Notifier:
    def __init__(
        self,
        cfg: PagerDutyConfig,
        routing_key: str,
        state: StateStore,
        cluster: str,
        clock: Callable[[], datetime],
        transport: Transport | None = None,
        limiter: RateLimiter | None = None,
        budget: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self.routing_key = routing_key
        self.state = state
        self.cluster = cluster
        self.clock = clock
        base = cfg.url or REGIONS[cfg.region]
        self.transport = transport or Transport(
            base, parse_duration(cfg.timeout).total_seconds(), RetryPolicy(attempts=cfg.attempts, base=0.5, cap=8.0)
        )
        self.limiter = limiter or RateLimiter(cfg.rate_per_minute)
        self.budget = budget  # seconds per pass: PagerDuty never delays rotations for long
        self.monotonic = monotonic
        self.log = get_logger("rotator.pagerduty")

    def notify(self, result: CheckResult) -> dict[str, int]:
        """Send what changed since PagerDuty was last told; never raises."""
        counts = {"triggered": 0, "resolved": 0, "deferred": 0, "failed": 0, "changes": 0}
        if not ROUTING_KEY.match(self.routing_key):
            self.log.error("PagerDuty routing key is not a 32-character integration key; alerts are off")
            return counts
        try:
            self._notify(result, counts)
        except Exception as exc:  # alerting must never break a pass
            self.log.error("alerting failed", error=f"{type(exc).__name__}: {exc}")
        return counts

    def _notify(self, result: CheckResult, counts: dict[str, int]) -> None:
        wanted = desired(
            result,
            self.cluster,
            self.cfg.critical_window_percent,
            parse_duration(self.cfg.critical_window),
            self.cfg.client_url,
        )
        wanted.update(not_served_alerts(result, self.cluster))
        known = self.state.all()
        kid = key_id(self.routing_key)
        orphans = sorted(k for k, v in known.items() if k not in wanted and v.get("key", kid) != kid)
        if orphans:
            # Opened with a previous routing key: PagerDuty would drop our resolve. Say so
            # once and forget them; they must be resolved in PagerDuty.
            self.log.warning("alerts opened with another routing key; resolve them in PagerDuty", alerts=orphans)
            self._save(dict.fromkeys(orphans))
        actions = plan_actions(wanted, known, kid)
        done: dict[str, dict[str, Any] | None] = {}
        deadline = self.monotonic() + self.budget
        try:
            for action in actions:
                if self.monotonic() > deadline or not self.limiter.allow():
                    counts["deferred"] += 1  # still different from the stored state: next pass sends it
                    continue
                if self._send(action):
                    counts["triggered" if action.kind == "trigger" else "resolved"] += 1
                    done[action.dedup_key] = (
                        {
                            "severity": action.alert.severity,
                            "since": rfc3339(self.clock()),
                            "key": kid,
                            "class": action.alert.klass,
                            "target": action.alert.component,  # namespace/secret
                        }
                        if action.kind == "trigger" and action.alert is not None
                        else None
                    )
                else:
                    counts["failed"] += 1
        finally:
            self._save(done)  # what PagerDuty accepted is stored even if a later event blew up
        self._change_events(result, deadline, counts)
        self.log.info("alerting done", **counts)

    def _save(self, done: dict[str, dict[str, Any] | None]) -> None:
        if not done:
            return

        def apply(doc: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
            for key, entry in done.items():
                if entry is None:
                    doc.pop(key, None)
                else:
                    doc[key] = entry
            return doc

        self.state.update_all(apply)

    def _change_events(self, result: CheckResult, deadline: float, counts: dict[str, int]) -> None:
        if not self.cfg.change_events or self.routing_key.startswith("R"):
            return
        for o in result.renewals:
            if o.status != "renewed" or self.monotonic() > deadline or not self.limiter.allow():
                continue
            event = change_event(self.routing_key, o, self.cluster, self.clock())
            if self.transport.post("/v2/change/enqueue", event):  # best effort: never pages, never fails
                counts["changes"] += 1

    def _send(self, action: Action) -> bool:
        if action.kind == "trigger" and action.alert is not None:
            body = trigger_event(self.routing_key, action.alert, self.clock(), self.cfg.client_url)
        else:
            body = resolve_event(self.routing_key, action.dedup_key)
        return self.transport.post("/v2/enqueue", body)
