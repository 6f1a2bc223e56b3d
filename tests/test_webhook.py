"""Generic webhooks against a real HTTP receiver that checks the documented body, the
signature and the token, and models open/resolved alerts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from rotator.config.load import ConfigError, load_config
from rotator.config.schema import WebhookConfig
from rotator.kube.state import MemoryState
from rotator.model import RenewalOutcome
from rotator.report.alerts.webhook import WebhookNotifier, sign
from tests.support import factory as f
from tests.support import kube, localhttp
from tests.support.alerts import KEY, expired_result, healthy_result
from tests.support.fakeapi import FakeCluster
from tests.support.pdserver import PagerDutyDouble
from tests.support.secretscan import register_secret
from tests.support.webhookserver import WebhookDouble, validate

ROOT = Path(__file__).resolve().parent.parent
SECRET = b"whsec-" + os.urandom(12).hex().encode()
TOKEN = "Bearer tok-" + os.urandom(12).hex()
register_secret(SECRET.decode())
register_secret(TOKEN.split()[1])


def hook(double: WebhookDouble, state: MemoryState, sleeps: list[float] | None = None, **cfg: Any) -> WebhookNotifier:
    conf = WebhookConfig(name="chat", url=double.url, allow_http=True, **cfg)
    record = sleeps if sleeps is not None else []
    return WebhookNotifier(conf, state, "prod-eu", lambda: f.NOW, SECRET, TOKEN, sleep=record.append)


def test_signature_is_hmac_sha256_of_the_raw_body() -> None:
    body = b'{"a":1}'
    assert sign(b"k", body) == "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert sign(b"k", body) != sign(b"other", body)


def test_the_receiver_contract_can_refuse() -> None:
    """The double's schema check is not permissive by construction."""
    assert validate({"schema": "rotator.webhook/v1", "event": "resolve"}) != []
    good = {
        "schema": "rotator.webhook/v1",
        "event": "resolve",
        "id": "x",
        "cluster": "c",
        "timestamp": "2026-11-26T00:00:00Z",
        "text": "t",
        "target": "a/b",
        "class": None,
    }
    assert validate(good) == []
    assert validate({**good, "surprise": 1}) == ["undocumented fields ['surprise']"]


def test_trigger_once_then_resolve_signed_and_authorized() -> None:
    state = MemoryState()
    with WebhookDouble(SECRET, TOKEN) as double:
        counts = hook(double, state).notify(expired_result())
        assert counts["triggered"] == 1 and double.rejected == []
        (event,) = double.accepted
        assert event["event"] == "trigger" and event["severity"] == "critical"
        assert event["target"] == "istio-system/tls-0" and event["gateways"] == ["istio-system/gw0"]
        assert event["text"].startswith("CRITICAL: [prod-eu] Secret istio-system/tls-0")
        assert event["details"]["state"] == "expired"
        assert hook(double, state).notify(expired_result())["triggered"] == 0  # unchanged: not re-sent
        counts = hook(double, state).notify(healthy_result())
        assert counts["resolved"] == 1 and double.open == {} and double.resolved == [event["id"]]
        resolve = double.accepted[-1]
        assert resolve["target"] == "istio-system/tls-0" and resolve["class"] == "tls-server"
        assert state.all() == {}
        assert len(set(double.deliveries)) == len(double.deliveries)  # one delivery id per request


def test_a_wrong_secret_is_refused_and_nothing_is_recorded_as_sent(capsys: Any) -> None:
    from rotator.util import logs

    logs.configure("info", "json")
    state = MemoryState()
    with WebhookDouble(b"the receiver's real secret", TOKEN) as double:
        counts = hook(double, state).notify(expired_result())
        assert counts == {"triggered": 0, "resolved": 0, "deferred": 0, "failed": 1, "changes": 0, "unavailable": 0}
        assert double.rejected == [(401, "bad signature")] and state.all() == {}  # tried again next pass
    err = capsys.readouterr().err
    assert "webhook chat rejected the event" in err and '"status": 401' in err
    assert SECRET.decode() not in err and TOKEN not in err


def test_429_honours_retry_after_and_5xx_and_resets_are_retried_within_the_budget() -> None:
    state = MemoryState()
    sleeps: list[float] = []
    with WebhookDouble(SECRET, TOKEN) as double:
        double.faults = [429, 503, "reset"]
        counts = hook(double, state, sleeps).notify(expired_result())
        assert counts["triggered"] == 1 and len(double.accepted) == 1
        assert sleeps[0] == 2.0  # the receiver's Retry-After
        assert len(sleeps) == 3 and all(0 <= s <= 8 for s in sleeps)
        double.faults = [500] * 4
        assert hook(double, state, attempts=4).notify(healthy_result())["failed"] == 1  # bounded: 4 tries
        assert len(state.all()) == 1  # the resolve is still owed, and sent next pass
        assert hook(double, state).notify(healthy_result())["resolved"] == 1


def test_rotated_events_only_when_asked_and_only_for_rotations() -> None:
    done = RenewalOutcome(
        "istio-system", "tls-0", "renewed", "ok", "internal", "abc", f.NOW + timedelta(days=30), ("istio-system/tls-0",)
    )
    failed = RenewalOutcome("istio-system", "tls-1", "failed", "no", "internal")
    result = replace(healthy_result(), renewals=(done, failed))
    with WebhookDouble(SECRET, TOKEN) as double:
        assert hook(double, MemoryState()).notify(result)["changes"] == 0
        assert hook(double, MemoryState(), rotations=True).notify(result)["changes"] == 1
        (rotated,) = double.accepted
        assert (
            rotated["event"] == "rotated" and rotated["serial"] == "abc" and rotated["copies"] == ["istio-system/tls-0"]
        )


def test_webhook_names_must_be_unique(tmp_path: Path) -> None:
    path = tmp_path / "rotator.yaml"
    path.write_text(
        yaml.safe_dump({"webhooks": [{"name": "a", "url": "https://x"}, {"name": "a", "url": "https://y"}]})
    )
    with pytest.raises(ConfigError, match="names must be unique"):
        load_config(str(path), environ={})


def test_pagerduty_and_a_webhook_across_two_rotator_check_processes_and_one_sinks_outage(tmp_path: Path) -> None:
    """Each sink keeps its own state: the webhook being down does not stop PagerDuty, and
    what the webhook missed is delivered by the next process."""
    with (
        FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake,
        PagerDutyDouble() as pd,
        WebhookDouble(SECRET, TOKEN) as chat,
    ):
        kube.seed_object(fake, f.ingress())
        kube.seed_object(fake, f.gateway("gw", [f.server(["app.example.com"], "app-tls")]))
        kube.seed_object(fake, f.secret("app-tls", leaf=f.make_leaf(["app.example.com"], nb=-400, na=-300)))
        # the webhook's HMAC key in a Secret in rotator's namespace, read through the API
        kube.seed_object(
            fake,
            f.secret("chat-hook", "rotator", type_="Opaque", data={"hmac": SECRET}),
        )
        cfg = tmp_path / "rotator.yaml"
        cfg.write_text(
            yaml.safe_dump(
                {
                    "cluster_name": "prod",
                    "pagerduty": {"routing_key": {"env": "ROTATOR_TEST_PD_KEY"}, "url": pd.url},
                    "webhooks": [
                        {
                            "name": "chat",
                            "url": chat.url,
                            "secret": {"secret": "rotator/chat-hook", "key": "hmac"},
                            "authorization": {"env": "ROTATOR_TEST_HOOK_TOKEN"},
                            "attempts": 1,
                            "allow_http": True,
                        }
                    ],
                }
            )
        )
        env = {**os.environ, "ROTATOR_TEST_PD_KEY": KEY, "ROTATOR_TEST_HOOK_TOKEN": TOKEN}
        cmd = [sys.executable, "-m", "rotator", "check", "-o", "json", "--log-level", "debug", "--log-format", "json"]
        cmd += ["--kubeconfig", str(fake.kubeconfig(tmp_path / "kc")), "--config", str(cfg)]
        chat.faults = [500]  # the webhook is down for the first pass
        first = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
        assert first.returncode == 2, first.stderr[-2000:]
        assert len(pd.open) == 1 and chat.accepted == []
        second = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)  # a new pod
        assert [e["event"] for e in chat.accepted] == ["trigger"]  # delivered late, once
        assert len(pd.events) == 1  # PagerDuty was not told twice
        kube.seed_object(fake, f.secret("app-tls", leaf=f.make_leaf(["app.example.com"], nb=-1, na=3650)))
        third = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
        assert third.returncode == 0, third.stderr[-2000:]
        assert [e["event"] for e in chat.accepted] == ["trigger", "resolve"] and chat.open == {}
        assert pd.open == {} and chat.rejected == [(500, "injected")]
        data = (fake.get("v1", "ConfigMap", "rotator", "rotator-state") or {})["data"]
        assert json.loads(data["alerts.json"]) == {} and json.loads(data["alerts-webhook-chat.json"]) == {}
        for run in (first, second, third):
            out = run.stderr + run.stdout
            assert SECRET.decode() not in out and TOKEN.split()[1] not in out and KEY not in out
            assert base64.b64encode(SECRET).decode() not in out
        assert fake.denied() == []


def test_delivery_outcomes_reach_the_pass_result_and_the_metrics(tmp_path: Path) -> None:
    """Alerting that fails must show somewhere other than in itself: a failed webhook and
    an unreadable routing key are counted per sink in rotator_alert_events_total."""
    from rotator.config.schema import Config
    from rotator.live_pass import live_pass
    from rotator.report.metrics import Metrics

    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake, WebhookDouble(SECRET, TOKEN) as chat:
        kube.seed_object(fake, f.ingress())
        kube.seed_object(fake, f.gateway("gw", [f.server(["app.example.com"], "app-tls")]))
        kube.seed_object(fake, f.secret("app-tls", leaf=f.make_leaf(["app.example.com"], nb=-400, na=-300)))
        config = Config.model_validate(
            {
                "pagerduty": {"routing_key": {"env": "ROTATOR_TEST_NO_SUCH_VARIABLE"}},
                "webhooks": [{"name": "chat", "url": chat.url, "attempts": 1, "allow_http": True}],  # no secret: 401
            }
        )
        api = kube.api(fake.kubeconfig(tmp_path / "kc"))
        result, _ = live_pass(api, config, lambda: f.NOW, dry_run=False)
        failing = tuple(n for n in result.notifications if n[2])
        assert failing == (("pagerduty", "unavailable", 1), ("webhook/chat", "failed", 1))
        assert ("webhook/chat", "triggered", 0) in result.notifications  # every outcome has a series from the start
        metrics = Metrics()
        metrics.observe(result, 1.0, 1.0, {})
        text = metrics.render().decode()
        assert 'rotator_alert_events_total{result="failed",sink="webhook/chat"} 1.0' in text
        assert 'rotator_alert_events_total{result="unavailable",sink="pagerduty"} 1.0' in text
        assert 'rotator_alert_sink_failures{sink="webhook/chat"} 1.0' in text
        assert 'rotator_alert_sink_failures{sink="pagerduty"} 1.0' in text


def test_a_redirect_is_a_failed_delivery_and_credentials_do_not_follow_it() -> None:
    """urllib would re-send the POST as a bodiless GET to the new place, with the token."""
    from http.server import BaseHTTPRequestHandler

    seen: list[tuple[str, str | None]] = []

    class Elsewhere(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append((self.command, self.headers.get("Authorization")))
            self.send_response(200)
            self.end_headers()

        do_POST = do_GET

        def log_message(self, *args: Any) -> None:
            pass

    state = MemoryState()
    with localhttp.serve(Elsewhere) as other:

        class Moved(Elsewhere):
            def do_POST(self) -> None:
                self.send_response(302)
                self.send_header("Location", localhttp.url(other) + "/moved")
                self.send_header("Content-Length", "0")
                self.end_headers()

        with localhttp.serve(Moved) as moving:
            conf = WebhookConfig(name="chat", url=localhttp.url(moving), allow_http=True)
            notifier = WebhookNotifier(conf, state, "prod-eu", lambda: f.NOW, SECRET, TOKEN, sleep=lambda _s: None)
            counts = notifier.notify(expired_result())
    assert counts["failed"] == 1 and counts["triggered"] == 0 and state.all() == {}  # owed, not lost
    assert seen == []  # nothing went to the other server


def test_plain_http_needs_consent() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="plain http"):
        WebhookConfig(name="x", url="http://hooks.example.com/")
    assert WebhookConfig(name="x", url="http://hooks.internal/", allow_http=True).allow_http


def test_a_broken_webhook_never_stops_pagerduty(tmp_path: Path) -> None:
    """A missing ca_bundle (or any error building the sink) is that sink's problem only."""
    from rotator.config.schema import Config
    from rotator.live_pass import live_pass

    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake, PagerDutyDouble() as pd:
        kube.seed_object(fake, f.ingress())
        kube.seed_object(fake, f.gateway("gw", [f.server(["app.example.com"], "app-tls")]))
        kube.seed_object(fake, f.secret("app-tls", leaf=f.make_leaf(["app.example.com"], nb=-400, na=-300)))
        os.environ["ROTATOR_TEST_PD_KEY_2"] = KEY
        try:
            config = Config.model_validate(
                {
                    "pagerduty": {"routing_key": {"env": "ROTATOR_TEST_PD_KEY_2"}, "url": pd.url},
                    "webhooks": [{"name": "chat", "url": "https://hooks.example/", "ca_bundle": str(tmp_path / "no")}],
                }
            )
            result, _ = live_pass(kube.api(fake.kubeconfig(tmp_path / "kc")), config, lambda: f.NOW, dry_run=False)
        finally:
            del os.environ["ROTATOR_TEST_PD_KEY_2"]
        assert len(pd.open) == 1
        assert ("webhook/chat", "unavailable", 1) in result.notifications


def test_retries_never_wait_past_the_passs_budget() -> None:
    from rotator.report.alerts.post import JSONPoster
    from rotator.util.retry import RetryPolicy

    now = [0.0]
    sleeps: list[float] = []

    def sleep(s: float) -> None:
        sleeps.append(s)
        now[0] += s

    with WebhookDouble() as double:
        double.faults = [429, 429, 429]  # each with Retry-After: 2
        poster = JSONPoster(
            double.url, "webhook t", 5, RetryPolicy(attempts=4, retry_after_cap=30), sleep, monotonic=lambda: now[0]
        )
        assert not poster.post("", {"x": 1}, "trigger", deadline=3.0)  # a second 2 s wait would cross it
        assert sleeps == [2.0]


def test_pagerduty_caps_a_servers_retry_after_at_8_seconds() -> None:
    from rotator.report.alerts.pagerduty import Transport

    t = Transport("http://127.0.0.1:9")
    assert t.retry.delay(0, retry_after=60) == 8.0 and t.retry.cap == 8.0


def test_a_state_that_cannot_be_written_counts_as_failed_and_does_not_resend_silently() -> None:
    class Unwritable(MemoryState):
        def update_all(self, change: Any) -> None:
            raise OSError("ConfigMap unreachable")

    with WebhookDouble(SECRET, TOKEN) as double:
        counts = hook(double, Unwritable()).notify(expired_result())
    assert counts["failed"] >= 1  # delivered but not recorded: shows as a failure, so the metric fires


def test_alert_test_reaches_every_sink_and_resolves_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`rotator alert test`: a wrong key or URL shows before a real page is lost."""
    import io

    from rotator.cli import main
    from tests.support.pdserver import PagerDutyDouble

    key = "R0TAT0RTESTR0UT1NGKEY00000000077"
    with PagerDutyDouble() as pd, WebhookDouble(secret=b"s3cret") as chat:
        hmac_file = tmp_path / "hmac"
        hmac_file.write_bytes(b"s3cret")
        cfg = tmp_path / "rotator.yaml"
        hooks = [{"name": "chat", "url": chat.url, "secret": {"file": str(hmac_file)}, "allow_http": True}]
        cfg.write_text(
            yaml.safe_dump(
                {
                    "cluster_name": "prod",
                    "pagerduty": {"routing_key": {"env": "PD_KEY"}, "url": pd.url},
                    "webhooks": hooks,
                }
            )
        )
        monkeypatch.setenv("PD_KEY", key)
        out = io.StringIO()
        assert main(["alert", "test", "--config", str(cfg)], stdout=out) == 0, out.getvalue()
        assert out.getvalue().splitlines() == ["pagerduty: ok", "webhook/chat: ok"]
        assert [e["event_action"] for e in pd.events] == ["trigger", "resolve"] and pd.open == {}
        assert len(chat.resolved) == 1 and chat.open == {}
        monkeypatch.delenv("PD_KEY")  # the routing key is gone: said, exit 2
        out = io.StringIO()
        assert main(["alert", "test", "--config", str(cfg)], stdout=out) == 2
        assert "pagerduty: unavailable" in out.getvalue() and key not in out.getvalue()
