"""The configured alert sinks, built in one place, each with its secrets read.

A sink whose secret cannot be read is ``unavailable`` (logged, counted, and a
``sink-unavailable`` finding under --preflight), never an exception: one sink's trouble
never stops another. A new sink is one ``AlertNotifier`` subclass and a few lines here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from rotator.config.schema import Config
from rotator.findings import finding
from rotator.kube.api import KubeAPI
from rotator.kube.secret_refs import read_value
from rotator.kube.state import ConfigMapState, MemoryState, StateStore
from rotator.model import CheckResult, Finding, ObjectRef
from rotator.report.alerts.decide import Alert, AlertAction
from rotator.report.alerts.notifier import AlertNotifier
from rotator.util.logs import get_logger


@dataclass
class Sinks:
    """The sinks that can be used, and why each of the others cannot (the messages name
    the source: env, file, Secret; never a value)."""

    built: list[tuple[str, AlertNotifier]] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)

    def open_alerts(self) -> dict[str, Any]:
        """What every sink last opened, by dedup key: the not-served probes re-check these."""
        out: dict[str, Any] = {}
        for _name, sink in self.built:
            out.update(sink.state.all())
        return out


def build_sinks(config: Config, api: KubeAPI | None, clock: Callable[[], datetime]) -> Sinks:
    def state(name: str) -> StateStore:
        if api is None:
            return MemoryState()
        return ConfigMapState(api, config.renewal.state_namespace, config.renewal.state_configmap, name)

    log = get_logger("rotator.alerting")
    sinks = Sinks()
    if config.pagerduty is not None:
        from rotator.report.alerts.pagerduty import Notifier

        try:
            key = read_value(config.pagerduty.routing_key, api).decode()
            notifier: AlertNotifier = Notifier(config.pagerduty, key, state("alerts.json"), config.cluster_name, clock)
            sinks.built.append(("pagerduty", notifier))
        except Exception as exc:
            log.error("PagerDuty routing key unavailable", error=str(exc))
            sinks.unavailable["pagerduty"] = f"its routing key cannot be read: {exc}"
    for hook in config.webhooks:
        from rotator.report.alerts.webhook import WebhookNotifier

        try:
            secret = read_value(hook.secret, api) if hook.secret else None
            authorization = read_value(hook.authorization, api).decode() if hook.authorization else None
            hook_state = state(f"alerts-webhook-{hook.name}.json")
            notifier = WebhookNotifier(hook, hook_state, config.cluster_name, clock, secret, authorization)
        except Exception as exc:  # an unreadable secret, a missing ca_bundle: this sink only
            log.error("webhook unavailable", webhook=hook.name, error=f"{type(exc).__name__}: {exc}")
            sinks.unavailable[f"webhook/{hook.name}"] = f"{type(exc).__name__}: {exc}"
            continue
        sinks.built.append((f"webhook/{hook.name}", notifier))
    return sinks


def notify_all(result: CheckResult, sinks: Sinks, escalate_only: bool = False) -> dict[tuple[str, str], int]:
    """Every sink told what is true now; (sink, result) counts, ``unavailable`` included."""
    totals: dict[tuple[str, str], int] = {(name, "unavailable"): 1 for name in sinks.unavailable}
    for name, sink in sinks.built:
        for outcome, count in sink.notify(result, escalate_only).items():
            totals[(name, outcome)] = totals.get((name, outcome), 0) + count
    return totals


def sink_health(config: Config, api: KubeAPI | None, clock: Callable[[], datetime]) -> list[Finding]:
    """--preflight: every alert sink's secrets readable (an unset routing key is found
    before a real page is lost)."""
    sinks = build_sinks(config, api, clock)
    return [
        finding(
            "sink-unavailable",
            f"alert sink {name}: {why}; no alert would reach it",
            ObjectRef("AlertSink", "", name),
        )
        for name, why in sorted(sinks.unavailable.items())
    ]


def alert_test(config: Config, api: KubeAPI | None, clock: Callable[[], datetime]) -> list[tuple[str, str]]:
    """``rotator alert test``: one trigger and its resolve to every sink, so a routing key,
    a URL or a signing secret that is wrong shows before a real page is lost. Returns
    (sink, "ok" | why not) per sink."""
    sinks = build_sinks(config, api, clock)
    out = [(name, f"unavailable: {why}") for name, why in sinks.unavailable.items()]
    key = f"rotator/{config.cluster_name}/alert-test"
    alert = Alert(
        key,
        "info",
        f"[{config.cluster_name}] rotator alert test: this sink receives rotator's alerts (resolved at once)",
        config.cluster_name,
        "rotator",
        "",
        "rotator-test",
        {"test": True},
    )
    for name, sink in sinks.built:
        if not sink.ready():
            out.append((name, "not ready (see the log)"))
            continue
        sink.deadline = None
        # PagerDuty: info, so the test never pages urgently; webhooks document critical|error only
        event = alert if name == "pagerduty" else replace(alert, severity="error")
        try:
            sent = sink.send(AlertAction("trigger", key, event), {})
            resolved = sent and sink.send(
                AlertAction("resolve", key), {key: {"severity": "info", "class": "rotator-test"}}
            )
        except Exception as exc:
            out.append((name, f"failed: {type(exc).__name__}: {exc}"))
            continue
        out.append((name, "ok" if sent and resolved else "failed: the sink refused the event (see the log)"))
    return out
