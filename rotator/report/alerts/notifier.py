"""The alert state machine every sink shares (PagerDuty, webhooks): one trigger per state
change, every resolve delivered, within a rate limit and a time budget per pass.

What should be open comes from ``alerting`` (pure); what the sink last accepted is kept
in rotator's state ConfigMap, so a CronJob pod that died after triggering is followed by
one that resolves. A sink subclass says how one trigger or resolve is sent.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from rotator.kube.state import StateStore
from rotator.model import CheckResult
from rotator.report.alerts.decide import Alert, AlertAction, desired, not_served_alerts, plan_actions
from rotator.util.logs import get_logger
from rotator.util.timeutil import parse_duration, rfc3339


class RateLimiter:
    """At most ``limit`` events in any 60 s window (sliding), per destination."""

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


class SinkSettings(Protocol):
    """What every sink's config section says about when to alert and how fast."""

    @property
    def critical_window_percent(self) -> float: ...
    @property
    def critical_window(self) -> str: ...
    @property
    def rate_per_minute(self) -> int: ...


class AlertNotifier:
    service = "alerting"

    def __init__(
        self,
        cfg: SinkSettings,
        state: StateStore,
        cluster: str,
        clock: Callable[[], datetime],
        limiter: RateLimiter | None = None,
        budget: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
        client_url: str | None = None,
    ) -> None:
        self.state = state
        self.cluster = cluster
        self.clock = clock
        self.limiter = limiter or RateLimiter(cfg.rate_per_minute)
        self.window_percent = cfg.critical_window_percent
        self.window = parse_duration(cfg.critical_window)
        self.client_url = client_url
        self.budget = budget  # seconds per pass: alerting never delays rotations for long
        self.monotonic = monotonic
        self.deadline: float | None = None  # of the pass in progress: no retry waits past it
        self.log = get_logger(f"rotator.{self.service.split()[0].lower()}")

    # -- what a sink provides ---------------------------------------------------------

    def ready(self) -> bool:
        """False when the sink cannot send at all (it logs why)."""
        return True

    def key_id(self) -> str | None:
        """Which credential opened an alert, when a sink can only resolve its own."""
        return None

    def send(self, action: AlertAction, known: dict[str, dict[str, Any]]) -> bool:
        raise NotImplementedError

    def after(self, result: CheckResult, deadline: float, counts: dict[str, int]) -> None:
        """Best-effort extras after the alerts (change events): never page, never fail."""

    # -- the state machine ----------------------------------------------------------------

    def notify(self, result: CheckResult, escalate_only: bool = False) -> dict[str, int]:
        """Send what changed since the sink was last told; never raises. ``escalate_only``:
        this pass does not hold the Lease (see ``alerting.plan_actions``)."""
        counts = {"triggered": 0, "resolved": 0, "deferred": 0, "failed": 0, "changes": 0, "unavailable": 0}
        if not self.ready():
            counts["unavailable"] = 1
            return counts
        try:
            self._notify(result, counts, escalate_only)
        except Exception as exc:  # alerting must never break a pass; but it must show
            counts["failed"] += 1
            self.log.error("alerting failed", error=f"{type(exc).__name__}: {exc}")
        return counts

    def wanted(self, result: CheckResult) -> dict[str, Alert]:
        out = desired(result, self.cluster, self.window_percent, self.window, self.client_url)
        out.update(not_served_alerts(result, self.cluster))
        return out

    def _notify(self, result: CheckResult, counts: dict[str, int], escalate_only: bool = False) -> None:
        wanted = self.wanted(result)
        known = self.state.all()
        kid = self.key_id()
        orphans = sorted(k for k, v in known.items() if k not in wanted and kid and v.get("key", kid) != kid)
        if orphans and not escalate_only:
            # Opened with a previous credential: the sink would drop our resolve. Say so
            # once and forget them; they must be resolved at the sink.
            self.log.warning(f"alerts opened with another key; resolve them in {self.service}", alerts=orphans)
            self._save(dict.fromkeys(orphans))
        actions = plan_actions(wanted, known, kid, escalate_only)
        done: dict[str, dict[str, Any] | None] = {}
        deadline = self.monotonic() + self.budget
        self.deadline = deadline
        try:
            for action in actions:
                if self.monotonic() > deadline or not self.limiter.allow():
                    counts["deferred"] += 1  # still different from the stored state: next pass sends it
                    continue
                try:
                    sent = self.send(action, known)
                except Exception as exc:  # one event's surprise never keeps the others from going out
                    self.log.error("alert not sent", dedup_key=action.dedup_key, error=f"{type(exc).__name__}: {exc}")
                    sent = False
                if sent:
                    counts["triggered" if action.kind == "trigger" else "resolved"] += 1
                    done[action.dedup_key] = self._entry(action, kid)
                else:
                    counts["failed"] += 1
        finally:
            self._save(done)  # what the sink accepted is stored even if a later event blew up
        self.after(result, deadline, counts)
        self.log.info("alerting done", **counts)

    def _entry(self, action: AlertAction, kid: str | None) -> dict[str, Any] | None:
        if action.kind != "trigger" or action.alert is None:
            return None
        entry = {
            "severity": action.alert.severity,
            "since": rfc3339(self.clock()),
            "class": action.alert.klass,
            "target": action.alert.component,  # namespace/secret
        }
        if kid is not None:
            entry["key"] = kid
        return entry

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
