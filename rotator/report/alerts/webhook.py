"""Generic JSON webhooks: the PagerDuty state machine, a documented body, a signature.

For receivers other than PagerDuty (chat, ticketing, an in-house router): the same
decisions (``alerting``), the same delivery guarantees (``notify``, ``delivery``), one
versioned JSON body per event (docs/alerting.md#webhooks). With a secret, the body is
signed with HMAC-SHA256 so the receiver can tell rotator's events from anyone's; the
secret and the Authorization value are only ever in headers, never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from rotator.config.schema import WebhookConfig
from rotator.kube.state import StateStore
from rotator.model import CheckResult, RenewalOutcome
from rotator.report.alerts.decide import AlertAction, clip
from rotator.report.alerts.notifier import AlertNotifier, RateLimiter
from rotator.report.alerts.post import JSONPoster
from rotator.util.retry import RetryPolicy, default_sleep
from rotator.util.timeutil import parse_duration, rfc3339

SCHEMA = "rotator.webhook/v1"
SIGNATURE_HEADER = "X-Rotator-Signature-256"


def sign(secret: bytes, body: bytes) -> str:
    """``sha256=<hex>``: the receiver recomputes it over the raw body and compares in
    constant time (as with GitHub's X-Hub-Signature-256)."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def trigger_body(action: AlertAction, cluster: str, now: datetime) -> dict[str, Any]:
    alert = action.alert
    assert alert is not None
    return {
        "schema": SCHEMA,
        "event": "trigger",
        "id": alert.dedup_key,
        "cluster": cluster,
        "timestamp": rfc3339(now),
        "severity": alert.severity,
        "summary": alert.summary,
        "class": alert.klass,
        "target": alert.component,
        "gateways": [g for g in alert.group.split(",") if g],
        "details": alert.details,
        "text": f"{alert.severity.upper()}: {alert.summary}",
    }


def resolve_body(key: str, known: dict[str, Any] | None, cluster: str, now: datetime) -> dict[str, Any]:
    target = str((known or {}).get("target", ""))
    return {
        "schema": SCHEMA,
        "event": "resolve",
        "id": key,
        "cluster": cluster,
        "timestamp": rfc3339(now),
        "class": (known or {}).get("class"),
        "target": target,
        "text": clip(f"RESOLVED: [{cluster}] {target or key}"),
    }


def rotated_body(o: RenewalOutcome, cluster: str, now: datetime) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "event": "rotated",
        "id": f"rotator/{cluster}/rotated/{o.namespace}/{o.name}/{o.serial}",
        "cluster": cluster,
        "timestamp": rfc3339(now),
        "target": f"{o.namespace}/{o.name}",
        "issuer": o.issuer,
        "serial": o.serial,
        "not_after": rfc3339(o.not_after) if o.not_after else None,
        "copies": list(o.copies),
        "text": clip(f"[{cluster}] Secret {o.namespace}/{o.name} rotated by {o.issuer} (serial {o.serial})"),
    }


class WebhookNotifier(AlertNotifier):
    def __init__(
        self,
        cfg: WebhookConfig,
        state: StateStore,
        cluster: str,
        clock: Callable[[], datetime],
        secret: bytes | None = None,
        authorization: str | None = None,
        poster: JSONPoster | None = None,
        limiter: RateLimiter | None = None,
        budget: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = default_sleep,
    ) -> None:
        self.service = f"webhook {cfg.name}"
        super().__init__(cfg, state, cluster, clock, limiter, budget, monotonic)
        self.cfg = cfg

        def headers(body: bytes) -> dict[str, str]:
            out = {"X-Rotator-Delivery": str(uuid.uuid4())}
            if secret:
                out[SIGNATURE_HEADER] = sign(secret, body)
            if authorization:
                out["Authorization"] = authorization
            return out

        retry = RetryPolicy(attempts=cfg.attempts, base=0.5, cap=8.0, retry_after_cap=30.0)
        self.poster = poster or JSONPoster(
            cfg.url,
            f"webhook {cfg.name}",
            parse_duration(cfg.timeout).total_seconds(),
            retry,
            sleep,
            headers=headers,
            ca_bundle=cfg.ca_bundle,
        )

    def send(self, action: AlertAction, known: dict[str, dict[str, Any]]) -> bool:
        if action.kind == "trigger":
            body = trigger_body(action, self.cluster, self.clock())
        else:
            body = resolve_body(action.dedup_key, known.get(action.dedup_key), self.cluster, self.clock())
        return self.poster.post("", body, action.kind, self.deadline)

    def after(self, result: CheckResult, deadline: float, counts: dict[str, int]) -> None:
        if not self.cfg.rotations:
            return
        for o in result.renewals:
            if o.status != "renewed" or self.monotonic() > deadline or not self.limiter.allow():
                continue
            if self.poster.post("", rotated_body(o, self.cluster, self.clock()), "rotated", deadline):
                counts["changes"] += 1
