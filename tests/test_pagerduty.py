"""PagerDuty alerting against a real HTTP test double that validates every request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from rotator.config.schema import PagerDutyConfig, SecretKeyRef
from rotator.kube.state import MemoryState
from rotator.report.alerts.decide import clip, dedup_key, desired, page_for, plan_actions
from rotator.report.alerts.pagerduty import Notifier, RateLimiter, Transport
from rotator.util.retry import RetryPolicy
from tests.support import factory as f
from tests.support import kube
from tests.support.alerts import KEY, expired_result, healthy_result
from tests.support.fakeapi import FakeCluster
from tests.support.pdserver import PagerDutyDouble

ROOT = Path(__file__).resolve().parent.parent
assert len(KEY) == 32


def notifier(
    double: PagerDutyDouble,
    state: MemoryState,
    sleeps: list[float] | None = None,
    limiter: RateLimiter | None = None,
    **cfg: Any,
) -> Notifier:
    conf = PagerDutyConfig(routing_key=SecretKeyRef(env="X"), url=double.url, **cfg)
    record = sleeps if sleeps is not None else []
    transport = Transport(double.url, 5, RetryPolicy(attempts=4, base=0.5, cap=8), sleep=record.append)
    return Notifier(conf, KEY, state, "prod-eu", lambda: f.NOW, transport, limiter)


# --- pure rules ----------------------------------------------------------------------


def test_dedup_keys_are_stable_and_fit() -> None:
    (c,) = expired_result().credentials
    assert dedup_key("prod", c) == dedup_key("prod", c) == "rotator/prod/Secret/istio-system/tls-0/server"
    long = dedup_key("x" * 300, c)
    assert len(long) <= 255 and long.startswith("rotator/")
    assert dedup_key("a", c) != dedup_key("b", c)  # per cluster


def test_summary_is_clipped_to_1024_code_points() -> None:
    assert len(clip("é" * 5000)) == 1024 and clip("é" * 5000).endswith("…")
    assert clip("short") == "short"


def test_severity_mapping() -> None:
    window, pct = timedelta(days=7), 20.0
    (expired,) = expired_result().credentials
    assert page_for(expired, None, f.NOW, pct, window) == "critical"
    (fine,) = healthy_result().credentials
    assert page_for(fine, None, f.NOW, pct, window) is None
    near = f.run(
        f.ingress(),
        f.gateway("g", [f.server(["h.example.com"], "s")]),
        f.secret("s", leaf=f.make_leaf(["h.example.com"], nb=-85, na=5)),
    ).credentials[0]
    assert near.action == "skip"  # due, no issuer rule
    assert page_for(near, None, f.NOW, pct, window) == "error"


def test_actions_trigger_once_per_state_change_and_resolve() -> None:
    wanted = desired(expired_result(2), "c", 20, timedelta(days=7))
    first = plan_actions(wanted, {})
    assert [a.kind for a in first] == ["trigger", "trigger"]
    known = {k: {"severity": a.severity} for k, a in wanted.items()}
    assert plan_actions(wanted, known) == []  # unchanged: nothing re-sent
    one = dict(list(wanted.items())[:1])
    assert [(a.kind, a.dedup_key) for a in plan_actions(one, known)] == [("resolve", list(wanted)[1])]


def test_a_pass_without_the_lease_only_opens_and_raises_alerts() -> None:
    wanted = desired(expired_result(2), "c", 20, timedelta(days=7))
    a, b = sorted(wanted)
    known = {a: {"severity": "error"}, b: {"severity": "critical"}, "rotator/c/gone": {"severity": "error"}}
    actions = plan_actions(wanted, known, escalate_only=True)
    assert [(x.kind, x.dedup_key) for x in actions] == [("trigger", a)]  # raised; never resolved or lowered
    lower = {k: replace(v, severity="warning") for k, v in wanted.items()}
    assert plan_actions(lower, known, escalate_only=True) == []
    assert [x.kind for x in plan_actions(lower, known)] == ["trigger", "trigger", "resolve"]


# --- against the double --------------------------------------------------------------------


def test_trigger_then_silence_then_resolve() -> None:
    state = MemoryState()
    with PagerDutyDouble() as pd:
        n = notifier(pd, state)
        assert n.notify(expired_result())["triggered"] == 1
        assert n.notify(expired_result())["triggered"] == 0  # the same problem is not re-sent
        assert len(pd.open) == 1 and len(pd.events) == 1
        (event,) = pd.events
        p = event["payload"]
        assert p["severity"] == "critical" and p["source"] == "prod-eu" and p["class"] == "tls-server"
        assert p["custom_details"]["secret"] == "tls-0" and p["custom_details"]["gateways"] == ["istio-system/gw0"]
        assert n.notify(healthy_result())["resolved"] == 1
        assert pd.open == {} and len(pd.resolved) == 1
        assert state.all() == {}


def test_transient_failures_are_retried_within_budget() -> None:
    state, sleeps = MemoryState(), []
    with PagerDutyDouble() as pd:
        pd.faults = [429, 500, "reset"]
        counts = notifier(pd, state, sleeps).notify(expired_result())
        assert counts["triggered"] == 1 and len(pd.open) == 1
        assert len(sleeps) == 3 and all(0 <= s <= 8 for s in sleeps)


def test_a_400_is_never_retried_and_the_change_is_kept_for_next_time(capsys: Any) -> None:
    from rotator.util import logs

    logs.configure("info", "json")
    state = MemoryState()
    with PagerDutyDouble() as pd:
        pd.faults = [400]
        counts = notifier(pd, state).notify(expired_result())
        assert counts["failed"] == 1 and len(pd.requests) == 1  # not retried
        assert state.all() == {}
        assert notifier(pd, state).notify(expired_result())["triggered"] == 1  # re-sent next pass
    err = capsys.readouterr().err
    assert "PagerDuty rejected the event" in err and KEY not in err


def test_an_outage_is_bounded_and_the_resolve_is_delivered_later() -> None:
    state = MemoryState()
    with PagerDutyDouble() as pd:
        n = notifier(pd, state)
        n.notify(expired_result())
        pd.faults = [503] * 4  # exactly one pass of attempts
        assert n.notify(healthy_result())["failed"] == 1  # 4 attempts, then given up for this pass
        assert len(pd.open) == 1
        assert n.notify(healthy_result())["resolved"] == 1  # every resolve delivered, eventually
        assert pd.open == {}


def test_a_storm_stays_under_the_per_key_rate() -> None:
    state = MemoryState()
    clock = {"t": 0.0}
    with PagerDutyDouble() as pd:
        n = notifier(pd, state, limiter=RateLimiter(100, clock=lambda: clock["t"]))
        first = n.notify(expired_result(200))
        assert first["triggered"] == 100 and first["deferred"] == 100
        assert pd.max_in_window() <= 120
        clock["t"] = 61
        second = n.notify(expired_result(200))
        assert second["triggered"] == 100 and len(pd.open) == 200


def test_an_invalid_routing_key_turns_alerting_off_without_leaking_it(capsys: Any) -> None:
    from rotator.util import logs

    logs.configure("info", "json")
    with PagerDutyDouble() as pd:
        conf = PagerDutyConfig(routing_key=SecretKeyRef(env="X"), url=pd.url)
        n = Notifier(conf, "not-a-key-secret-value", MemoryState(), "c", lambda: f.NOW)
        counts = n.notify(expired_result())
        assert counts == {"triggered": 0, "resolved": 0, "deferred": 0, "failed": 0, "changes": 0, "unavailable": 1}
        assert pd.requests == []
    assert "not-a-key-secret-value" not in capsys.readouterr().err


# --- across two separate `rotator check` processes -------------------------------------------


def test_trigger_and_resolve_across_two_rotator_check_processes(tmp_path: Path) -> None:
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake, PagerDutyDouble() as pd:
        kube.seed_object(fake, f.ingress())
        kube.seed_object(fake, f.gateway("gw", [f.server(["app.example.com"], "app-tls")]))
        expired = f.make_leaf(["app.example.com"], nb=-400, na=-300)  # expired on any date after 2025
        kube.seed_object(fake, f.secret("app-tls", leaf=expired))
        cfg = tmp_path / "rotator.yaml"
        cfg.write_text(
            yaml.safe_dump(
                {
                    "cluster_name": "prod",
                    "pagerduty": {"routing_key": {"env": "ROTATOR_TEST_PD_KEY"}, "url": pd.url, "change_events": True},
                }
            )
        )
        env = {**os.environ, "ROTATOR_TEST_PD_KEY": KEY}
        cmd = [
            sys.executable,
            "-m",
            "rotator",
            "check",
            "-o",
            "json",
            "--log-level",
            "debug",
            "--log-format",
            "json",
            "--kubeconfig",
            str(fake.kubeconfig(tmp_path / "kc")),
            "--config",
            str(cfg),
        ]
        first = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
        assert first.returncode == 2, first.stderr[-2000:]
        assert [e["event_action"] for e in pd.events] == ["trigger"] and len(pd.open) == 1
        again = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)  # a new pod, same problem
        assert [e["event_action"] for e in pd.events] == ["trigger"]  # not re-sent
        kube.seed_object(fake, f.secret("app-tls", leaf=f.make_leaf(["app.example.com"], nb=-1, na=3650)))
        second = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
        assert second.returncode == 0, second.stderr[-2000:]
        assert [e["event_action"] for e in pd.events] == ["trigger", "resolve"]
        assert pd.events[0]["dedup_key"] == pd.events[1]["dedup_key"]
        assert pd.open == {} and len(pd.resolved) == 1
        state = json.loads((fake.get("v1", "ConfigMap", "rotator", "rotator-state") or {})["data"]["alerts.json"])
        assert state == {}
        for run in (first, again, second):
            assert KEY not in run.stderr + run.stdout  # the routing key never reaches logs or reports
        assert fake.denied() == []


def test_a_rotation_the_gateway_does_not_serve_pages() -> None:
    from dataclasses import replace

    from rotator.findings import finding
    from rotator.model import ObjectRef

    long_name = "tls-" + "x" * 240  # the dedup key is hashed: only the stored target names the Secret
    obj = ObjectRef("Secret", "istio-system", long_name)
    result = replace(healthy_result(), findings=(finding("not-served", "still serves the old serial", obj),))
    state = MemoryState()
    with PagerDutyDouble() as pd:
        n = notifier(pd, state)
        assert n.notify(result)["triggered"] == 1
        assert pd.events[0]["payload"]["class"] == "tls-not-served"
        ((key, entry),) = state.all().items()
        assert long_name not in key and entry["target"] == f"istio-system/{long_name}"
        assert entry["class"] == "tls-not-served"
        assert n.notify(healthy_result())["resolved"] == 1  # served now: resolved


def test_change_events_for_successful_rotations_only() -> None:
    from dataclasses import replace

    from rotator.model import RenewalOutcome

    done = RenewalOutcome(
        "istio-system", "tls-0", "renewed", "ok", "internal", "abc", f.NOW + timedelta(days=30), ("istio-system/tls-0",)
    )
    failed = RenewalOutcome("istio-system", "tls-1", "failed", "no", "internal")
    result = replace(healthy_result(), renewals=(done, failed))
    with PagerDutyDouble() as pd:
        counts = notifier(pd, MemoryState(), change_events=True).notify(result)
        assert counts["changes"] == 1 and len(pd.changes) == 1
        change = pd.changes[0]
        assert "tls-0" in change["payload"]["summary"] and "event_action" not in change
        assert pd.events == []  # a change event never pages


def test_a_new_routing_key_does_not_send_resolves_pagerduty_would_drop(capsys: Any) -> None:
    from rotator.util import logs

    logs.configure("info", "json")
    state = MemoryState()
    other_key = "Z" * 32
    with PagerDutyDouble() as pd:
        notifier(pd, state).notify(expired_result(2))
        assert len(pd.open) == 2
        conf = PagerDutyConfig(routing_key=SecretKeyRef(env="X"), url=pd.url)
        moved = Notifier(
            conf,
            other_key,
            state,
            "prod-eu",
            lambda: f.NOW,
            Transport(pd.url, 5, RetryPolicy(attempts=1), sleep=lambda _s: None),
        )
        # tls-0 still broken, tls-1 fixed: re-trigger under the new key; no resolve with the wrong key
        result = f.run(
            f.ingress(),
            f.gateway("gw0", [f.server(["h0.example.com"], "tls-0")]),
            f.secret("tls-0", leaf=f.make_leaf(["h0.example.com"], nb=-90, na=-1)),
            f.gateway("gw1", [f.server(["h1.example.com"], "tls-1")]),
            f.secret("tls-1", leaf=f.make_leaf(["h1.example.com"])),
        )
        counts = moved.notify(result)
        assert counts == {"triggered": 1, "resolved": 0, "deferred": 0, "failed": 0, "changes": 0, "unavailable": 0}
        assert [e["routing_key"] == other_key for e in pd.events] == [False, False, True]
        assert list(state.all()) == ["rotator/prod-eu/Secret/istio-system/tls-0/server"]
    err = capsys.readouterr().err
    assert "resolve them in PagerDuty" in err and other_key not in err and KEY not in err
