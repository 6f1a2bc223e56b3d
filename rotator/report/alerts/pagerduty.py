"""PagerDuty Events API v2: a small, bounded client and the notifier that drives it.

Plain HTTP (urllib), as PagerDuty's own API reference makes it one unauthenticated JSON
POST: explicit region/URL, timeout, a *bounded* retry budget on 429/5xx/network errors
with exponential backoff and jitter, never a retry on 400 (its body is logged), and a
client-side rate limit under the ~120 events/minute/key PagerDuty accepts. The routing
key is only ever in request bodies: never in logs, findings or exceptions.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from rotator.config.schema import PagerDutyConfig
from rotator.kube.state import StateStore
from rotator.model import CheckResult, RenewalOutcome
from rotator.report.alerts.decide import Alert, AlertAction, clip
from rotator.report.alerts.notifier import AlertNotifier, RateLimiter
from rotator.report.alerts.post import JSONPoster
from rotator.util.retry import RetryPolicy, default_sleep
from rotator.util.timeutil import parse_duration, rfc3339

REGIONS = {"us": "https://events.pagerduty.com", "eu": "https://events.eu.pagerduty.com"}
ROUTING_KEY = re.compile(r"^[A-Za-z0-9]{32}$")


class Transport(JSONPoster):
    """Events API v2 accepts with 202; anything else is not an accepted event."""

    def __init__(
        self,
        base_url: str,
        timeout: float = 15.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = default_sleep,
    ) -> None:
        retry = retry or RetryPolicy(attempts=4, base=0.5, cap=8.0, retry_after_cap=8.0)  # docs/alerting.md
        super().__init__(base_url, "PagerDuty", timeout, retry, sleep, accepted=lambda status: status == 202)

    def post(self, path: str, body: dict[str, Any], kind: str | None = None, deadline: float | None = None) -> bool:
        return super().post(path, body, kind or str(body.get("event_action", "change")), deadline)


class Notifier(AlertNotifier):
    service = "PagerDuty"

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
        super().__init__(cfg, state, cluster, clock, limiter, budget, monotonic, cfg.client_url)
        self.cfg = cfg
        self.routing_key = routing_key
        base = cfg.url or REGIONS[cfg.region]
        self.transport = transport or Transport(
            base,
            parse_duration(cfg.timeout).total_seconds(),
            RetryPolicy(attempts=cfg.attempts, base=0.5, cap=8.0, retry_after_cap=8.0),
        )

    def ready(self) -> bool:
        if not ROUTING_KEY.match(self.routing_key):
            self.log.error("PagerDuty routing key is not a 32-character integration key; alerts are off")
            return False
        return True

    def key_id(self) -> str:
        return key_id(self.routing_key)

    def send(self, action: AlertAction, known: dict[str, dict[str, Any]]) -> bool:
        if action.kind == "trigger" and action.alert is not None:
            body = trigger_event(self.routing_key, action.alert, self.clock(), self.cfg.client_url)
        else:
            body = resolve_event(self.routing_key, action.dedup_key)
        return self.transport.post("/v2/enqueue", body, deadline=self.deadline)

    def after(self, result: CheckResult, deadline: float, counts: dict[str, int]) -> None:
        if not self.cfg.change_events or self.routing_key.startswith("R"):
            return
        for o in result.renewals:
            if o.status != "renewed" or self.monotonic() > deadline or not self.limiter.allow():
                continue
            event = change_event(self.routing_key, o, self.cluster, self.clock())
            if self.transport.post("/v2/change/enqueue", event, deadline=deadline):  # best effort: never pages
                counts["changes"] += 1


# --- the Events API v2 wire format -------------------------------------------------


def key_id(routing_key: str) -> str:
    """Which routing key opened an alert, without storing the key itself."""
    return hashlib.sha256(routing_key.encode()).hexdigest()[:12]


def trigger_event(routing_key: str, alert: Alert, now: datetime, client_url: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": alert.dedup_key,
        "payload": {
            "summary": alert.summary,
            "source": alert.source,
            "severity": alert.severity,
            "timestamp": now.isoformat(),
            "component": alert.component,
            "group": alert.group,
            "class": alert.klass,
            "custom_details": alert.details,
        },
        "client": "rotator",
    }
    if client_url:
        body["client_url"] = client_url
    return body


def resolve_event(routing_key: str, key: str) -> dict[str, Any]:
    return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": key}


def change_event(routing_key: str, o: RenewalOutcome, source: str, now: datetime) -> dict[str, Any]:
    return {
        "routing_key": routing_key,
        "payload": {
            "summary": clip(f"Secret {o.namespace}/{o.name} rotated by {o.issuer} (serial {o.serial})"),
            "source": source,
            "timestamp": now.isoformat(),
            "custom_details": {"copies": list(o.copies), "not_after": rfc3339(o.not_after) if o.not_after else None},
        },
    }
