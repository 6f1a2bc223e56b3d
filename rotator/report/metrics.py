"""Prometheus metrics, rebuilt from each pass's result.

Credential series come from a collector over the *last* pass, so a credential that
disappears loses its series at once (a known pain of x509-certificate-exporter, whose
stale series fire alerts for Secrets long deleted). Counters accumulate over the process.
Label choice: one series per credential (namespace, secret, role, kind); the Gateways
that read it are one joined, sorted label (`gateways`), so a Secret shared by several
Gateways is one series, not several that would double-count in alerts.
"""

from __future__ import annotations

import threading
from collections import Counter as Tally
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from rotator import __version__
from rotator.model import STATES, CheckResult
from rotator.report.document import all_findings

CRED_LABELS = ["namespace", "secret", "role", "kind", "gateways"]


class _LastPass(Collector):
    def __init__(self) -> None:
        self.result: CheckResult | None = None
        self.lock = threading.Lock()

    def collect(self) -> Iterator[Any]:
        with self.lock:
            result = self.result
        not_after = GaugeMetricFamily(
            "rotator_certificate_not_after_timestamp_seconds",
            "Expiry of the credential's certificate (leaf, or soonest client CA).",
            labels=CRED_LABELS,
        )
        not_before = GaugeMetricFamily(
            "rotator_certificate_not_before_timestamp_seconds",
            "Start of validity of the credential's certificate.",
            labels=CRED_LABELS,
        )
        due = GaugeMetricFamily(
            "rotator_certificate_renewal_due_timestamp_seconds",
            "When the credential enters its renewal window.",
            labels=CRED_LABELS,
        )
        state = GaugeMetricFamily(
            "rotator_credential_state",
            "1 for the credential's state in the last pass (ok, due, expired, invalid, missing).",
            labels=[*CRED_LABELS, "state"],
        )
        findings = GaugeMetricFamily(
            "rotator_findings", "Findings of the last pass, by code and severity.", labels=["code", "severity"]
        )
        if result is not None:
            for c in result.credentials:
                gws = ",".join(sorted({f"{r.namespace}/{r.name}" for r in c.spec.references}))
                labels = [c.spec.namespace, c.spec.name, c.spec.role, c.spec.kind, gws]
                if c.certificate is not None:
                    not_after.add_metric(labels, c.certificate.not_after.timestamp())
                    not_before.add_metric(labels, c.certificate.not_before.timestamp())
                if c.renew_at is not None:
                    due.add_metric(labels, c.renew_at.timestamp())
                for s in STATES:
                    state.add_metric([*labels, s], 1.0 if c.state == s else 0.0)
            for (code, severity), n in sorted(Tally((f.code, f.severity) for f in all_findings(result)).items()):
                findings.add_metric([code, severity], n)
        yield from (not_after, not_before, due, state, findings)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._last = _LastPass()
        self.registry.register(self._last)
        self.renewals = Counter(
            "rotator_renewals", "Renewal attempts by issuer and result.", ["issuer", "result"], registry=self.registry
        )
        self.api_requests = Counter(
            "rotator_api_requests",
            "Kubernetes API requests by verb and result.",
            ["verb", "result"],
            registry=self.registry,
        )
        self.acme_requests = Counter(
            "rotator_acme_requests",
            "ACME requests by issuer and result (ok, badNonce, rateLimited, ...).",
            ["issuer", "result"],
            registry=self.registry,
        )
        self.alert_events = Counter(
            "rotator_alert_events",
            "Alert deliveries by sink (pagerduty, webhook/<name>) and result (triggered, resolved, changes, "
            "deferred, failed, unavailable).",
            ["sink", "result"],
            registry=self.registry,
        )
        # Gauges of the last pass, for alerts: a counter pushed fresh by each CronJob pod,
        # or born at 1 on its first failure, never shows an increase() to alert on.
        self.last_pass_renewals = Gauge(
            "rotator_last_pass_renewals",
            "Renewal attempts of the last pass by issuer and result.",
            ["issuer", "result"],
            registry=self.registry,
        )
        self.alert_sink_failures = Gauge(
            "rotator_alert_sink_failures",
            "Deliveries that failed (or a sink that was unavailable) in the last pass, per sink.",
            ["sink"],
            registry=self.registry,
        )
        self.pass_duration = Histogram(
            "rotator_pass_duration_seconds",
            "Duration of a check pass.",
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
            registry=self.registry,
        )
        self.last_pass = Gauge("rotator_last_pass_timestamp_seconds", "End of the last pass.", registry=self.registry)
        self.last_success = Gauge(
            "rotator_last_successful_pass_timestamp_seconds",
            "End of the last pass that completed without error.",
            registry=self.registry,
        )
        self.leader = Gauge("rotator_leader", "1 while this replica holds the leader Lease.", registry=self.registry)
        self.passes = Counter(
            "rotator_passes", "Passes by outcome (ok, failed, follower).", ["outcome"], registry=self.registry
        )
        Info("rotator_build", "rotator version.", registry=self.registry).info({"version": __version__})

    def observe(
        self, result: CheckResult, duration: float, ended: float, api_by_result: dict[tuple[str, str], int]
    ) -> None:
        with self._last.lock:
            self._last.result = result
        for o in result.renewals:
            self.renewals.labels(o.issuer or "none", o.status).inc()
        for (verb, outcome), n in api_by_result.items():
            self.api_requests.labels(verb, outcome).inc(n)
        self.last_pass_renewals.clear()
        for (issuer, status), n in Tally((o.issuer or "none", o.status) for o in result.renewals).items():
            self.last_pass_renewals.labels(issuer, status).set(n)
        failures: Tally[str] = Tally()
        for sink, outcome, n in result.notifications:
            self.alert_events.labels(sink, outcome).inc(n)
            failures[sink] += n if outcome in ("failed", "unavailable") else 0
        self.alert_sink_failures.clear()
        for sink, n in failures.items():
            self.alert_sink_failures.labels(sink).set(n)
        self.pass_duration.observe(duration)
        self.last_pass.set(ended)
        self.last_success.set(ended)
        self.passes.labels("ok").inc()

    def snapshot(self, result: CheckResult | None) -> None:
        """Replace the credential series (None: export none, e.g. on a follower)."""
        with self._last.lock:
            self._last.result = result

    def acme(self, issuer: str, deltas: dict[str, int]) -> None:
        for result, n in deltas.items():
            if n:
                self.acme_requests.labels(issuer, result).inc(n)

    def failed(self, ended: float) -> None:
        self.last_pass.set(ended)
        self.passes.labels("failed").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def push(self, url: str, job: str, grouping: dict[str, str]) -> None:
        """PUT to a Pushgateway: the whole group is replaced, so vanished series vanish there too."""
        from prometheus_client import push_to_gateway

        push_to_gateway(url, job=job, registry=self.registry, grouping_key=grouping, timeout=10)
