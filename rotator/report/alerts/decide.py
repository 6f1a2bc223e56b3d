"""Which credentials should page, and which triggers and resolves move a sink from what it
was told last to what is true now. Pure and sink-neutral: each sink's wire format lives
with the sink (``pagerduty.py``, ``webhook.py``); the transport and state are passed in.

One trigger per state change (an unchanged problem is not re-sent every pass), every
resolve delivered: the last state PagerDuty acknowledged is persisted (rotator's state
ConfigMap), so a CronJob pod that died after triggering is followed by one that resolves.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from rotator.model import CheckResult, Credential, RenewalOutcome, Severity
from rotator.util.timeutil import rfc3339

SUMMARY_LIMIT = 1024
DEDUP_LIMIT = 255


@dataclass(frozen=True)
class Alert:
    dedup_key: str
    severity: Severity
    summary: str
    source: str
    component: str
    group: str
    klass: str
    details: dict[str, Any]


@dataclass(frozen=True)
class AlertAction:
    kind: Literal["trigger", "resolve"]
    dedup_key: str
    alert: Alert | None = None  # for triggers


def dedup_key(cluster: str, c: Credential) -> str:
    """Stable per credential and cluster."""
    return bounded(f"rotator/{cluster}/{c.spec.kind}/{c.spec.namespace}/{c.spec.name}/{c.spec.role}")


def bounded(key: str) -> str:
    """Hashed past PagerDuty's 255 characters, so a long key is stable but cannot be parsed back."""
    return key if len(key) <= DEDUP_LIMIT else "rotator/" + hashlib.sha256(key.encode()).hexdigest()


def clip(text: str, limit: int = SUMMARY_LIMIT) -> str:
    """At most ``limit`` code points, with an ellipsis (an over-long summary is a 400: a lost page)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def in_critical_window(c: Credential, now: datetime, percent: float, window: timedelta) -> bool:
    cert = c.certificate
    if cert is None:
        return False
    left = cert.not_after - now
    lifetime = cert.not_after - cert.not_before
    return left <= window or left <= lifetime * (percent / 100)


def page_for(
    c: Credential, renewal: RenewalOutcome | None, now: datetime, percent: float, window: timedelta
) -> Severity | None:
    """The documented mapping (docs/alerting.md); None when the credential is fine."""
    if renewal is not None and renewal.status == "renewed":
        return None
    if c.state in ("expired", "missing"):
        return "critical"
    if c.state == "invalid":
        return "error"
    if in_critical_window(c, now, percent, window):
        if renewal is not None and renewal.status in ("failed", "backoff"):
            return "critical"
        if c.action == "skip" or (renewal is not None and renewal.status == "skipped"):
            return "error"  # no issuer, cert-manager's, issuer-change without consent: nobody renews it
    return None


def desired(
    result: CheckResult, cluster: str, percent: float, window: timedelta, client_url: str | None = None
) -> dict[str, Alert]:
    now = result.evaluated_at
    renewals = result.renewals_by_copy()
    out: dict[str, Alert] = {}
    for c in result.credentials:
        renewal = renewals.get(f"{c.spec.namespace}/{c.spec.name}") if c.spec.role == "server" else None
        try:
            severity = page_for(c, renewal, now, percent, window)
        except Exception:  # cannot tell: page rather than stay silent about it
            severity = "error"
        if severity is None:
            continue
        worst = [f for f in c.findings if f.severity in ("critical", "error")] or list(c.findings)
        what = c.state if c.state != "ok" else "expiring and not renewed"
        left = f", expires {rfc3339(c.certificate.not_after)}" if c.certificate else ""
        summary = clip(
            f"[{cluster}] {c.spec.kind} {c.spec.namespace}/{c.spec.name} ({c.spec.role}) {what}{left}: "
            + "; ".join(f.message for f in worst[:3])
        )
        key = dedup_key(cluster, c)
        out[key] = Alert(
            dedup_key=key,
            severity=severity,
            summary=summary,
            source=cluster,
            component=f"{c.spec.namespace}/{c.spec.name}",
            group=",".join(sorted({f"{r.namespace}/{r.name}" for r in c.spec.references})),
            klass=f"tls-{c.spec.role}",
            details={
                "namespace": c.spec.namespace,
                "secret": c.spec.name,
                "role": c.spec.role,
                "state": c.state,
                "gateways": sorted({f"{r.namespace}/{r.name}" for r in c.spec.references}),
                "hosts": list(c.spec.hosts),
                "not_after": rfc3339(c.certificate.not_after) if c.certificate else None,
                "findings": [{"code": f.code, "severity": f.severity, "message": f.message} for f in c.findings],
                "last_error": renewal.message if renewal is not None and renewal.status != "renewed" else None,
                "client_url": client_url,
            },
        )
    return out


def not_served_alerts(result: CheckResult, cluster: str) -> dict[str, Alert]:
    """A rotation the gateway does not serve pages: the new certificate is not live."""
    out: dict[str, Alert] = {}
    for f in result.findings:
        if f.code != "not-served" or f.object is None:
            continue
        key = bounded(f"rotator/{cluster}/not-served/{f.object.namespace}/{f.object.name}")
        out[key] = Alert(
            key,
            "error",
            clip(f"[{cluster}] {f.message}"),
            cluster,
            f"{f.object.namespace}/{f.object.name}",
            "",
            "tls-not-served",
            {"namespace": f.object.namespace, "secret": f.object.name, "message": f.message},
        )
    return out


RANK = {"info": 0, "warning": 1, "error": 2, "critical": 3}


def plan_actions(
    wanted: dict[str, Alert],
    known: dict[str, dict[str, Any]],
    routing_key_id: str | None = None,
    escalate_only: bool = False,
) -> list[AlertAction]:
    """Triggers for new problems and changed severities; resolves for what is no longer wanted.

    ``escalate_only`` is for a pass that does not hold the Lease: it sees the cluster but
    not the leader's renewals in flight, so it opens new alerts and raises severities but
    never resolves or lowers one (that is the leader's word, and two passes disagreeing
    would flap the incident).

    An alert opened with another routing key cannot be resolved with this one (PagerDuty
    drops such a resolve silently): it is re-triggered under the current key when still
    wanted, and otherwise left to be resolved in PagerDuty (the caller logs it).
    """
    actions: list[AlertAction] = []
    for key, alert in sorted(wanted.items()):
        was = known.get(key)
        other_key = was is not None and routing_key_id is not None and was.get("key", routing_key_id) != routing_key_id
        if escalate_only and was is not None and RANK.get(str(was.get("severity")), 0) >= RANK[alert.severity]:
            continue
        if was is None or was.get("severity") != alert.severity or other_key:
            actions.append(AlertAction("trigger", key, alert))
    if escalate_only:
        return actions
    for key in sorted(known):
        if key not in wanted and (routing_key_id is None or known[key].get("key", routing_key_id) == routing_key_id):
            actions.append(AlertAction("resolve", key))
    return actions
