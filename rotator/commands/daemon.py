"""`rotator daemon`: scheduled passes, leader election, /metrics, /healthz, /readyz.

The pass is the same ``live_pass`` the CronJob runs. APScheduler runs it with
``max_instances=1`` and ``coalesce`` (a slow pass never overlaps or piles up), jitter,
and a misfire grace. Only the Lease holder renews; followers idle and stay ready. On
SIGTERM/SIGINT the pass in flight may finish (bounded), the Lease is released so a
follower takes over at once, and the process exits 0.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rotator.commands.common import api_from_args, error
from rotator.config.schema import Config
from rotator.issuers.base import Issuer
from rotator.kube.api import ApiError, KubeAPI
from rotator.kube.leader import LeaderElector
from rotator.live_pass import live_pass
from rotator.report.metrics import Metrics
from rotator.util.logs import get_logger
from rotator.util.timeutil import crontab_fields, parse_duration, parse_listen


class Daemon:
    def __init__(
        self,
        api: KubeAPI,
        config: Config,
        clock: Callable[[], datetime],
        identity: str | None = None,
        issuers: Mapping[str, Issuer] | None = None,
    ) -> None:
        self.api = api
        self.config = config
        self.clock = clock
        self.identity = identity or os.environ.get("POD_NAME") or socket.gethostname()
        # Built once and kept across passes: the ACME client keeps its account and
        # directory, and its request counters feed the metrics.
        if issuers is None:
            from rotator.issuers.factory import build_issuers

            issuers = build_issuers(config, api, clock)
        self.issuers = issuers
        self._acme_seen: dict[str, dict[str, int]] = {}
        self.metrics = Metrics()
        self.log = get_logger("rotator.daemon")
        d = config.daemon
        self.elector: LeaderElector | None = None
        if d.leader_election:
            self.elector = LeaderElector(
                api,
                d.lease.namespace,
                d.lease.name,
                self.identity,
                clock,
                parse_duration(d.lease.duration),
                parse_duration(d.lease.renew_deadline),
                parse_duration(d.lease.retry_period),
                on_change=lambda leader: self.metrics.leader.set(int(leader)),
            )
        self.last_success: datetime | None = None
        self.last_failure: datetime | None = None
        self.last_error = ""
        self.started = clock()
        self.scheduler: Any = None
        self.http: ThreadingHTTPServer | None = None
        self._stop = threading.Event()

    # -- the pass -----------------------------------------------------------------------

    def is_leader(self) -> bool:
        return self.elector is None or self.elector.is_leader()

    def run_pass(self) -> str:
        """One scheduled pass; returns ok, follower or failed (never raises into the scheduler)."""
        if not self.is_leader():
            self.metrics.passes.labels("follower").inc()
            self.metrics.snapshot(None)  # the leader reports credentials; two exporters would disagree
            self.last_failure = None  # a follower's readiness does not hang on its past as leader
            return "follower"
        from rotator.util.logs import new_run_id

        new_run_id()
        start = time.monotonic()
        before = dict(self.api.stats.by_result)
        try:
            result, _ = live_pass(
                self.api, self.config, self.clock, dry_run=False, may_write=self.is_leader, issuers=self.issuers
            )
        except Exception as exc:  # a failed pass is reported and retried next time, never fatal
            self.last_failure, self.last_error = self.clock(), f"{type(exc).__name__}: {exc}"
            self.metrics.failed(time.time())
            self.log.error("pass failed", error=self.last_error)
            return "failed"
        delta = {k: v - before.get(k, 0) for k, v in self.api.stats.by_result.items()}
        self.metrics.observe(result, time.monotonic() - start, time.time(), delta)
        if any(o.status == "renewed" for o in result.renewals):
            # Export what is true after the renewals, not the plan that preceded them.
            try:
                fresh, _ = live_pass(self.api, self.config, self.clock, dry_run=True)
                self.metrics.snapshot(fresh)
            except Exception as exc:
                self.log.warning("post-renewal re-read failed; metrics show the plan", error=str(exc))
        for name, issuer in (self.issuers or {}).items():
            counts = dict(issuer.requests)
            seen = self._acme_seen.get(name, {})
            self.metrics.acme(name, {k: v - seen.get(k, 0) for k, v in counts.items()})
            self._acme_seen[name] = counts
        self.last_success = self.clock()
        renewed = sum(1 for o in result.renewals if o.status == "renewed")
        failed = sum(1 for o in result.renewals if o.status == "failed")
        self.log.info(
            "pass finished",
            credentials=len(result.credentials),
            renewed=renewed,
            failed=failed,
            seconds=round(time.monotonic() - start, 3),
        )
        return "ok"

    # -- health -------------------------------------------------------------------------

    def healthy(self) -> bool:
        return self.scheduler is None or bool(self.scheduler.running)

    def ready(self) -> tuple[bool, str]:
        try:
            self.api.request("GET", "/version", verb="get", resource="version", retry=False)
        except ApiError as exc:
            return False, f"API unreachable: {exc}"
        if self.last_failure is not None and (self.last_success is None or self.last_failure > self.last_success):
            since = self.last_success or self.started
            if self.clock() - since > parse_duration(self.config.daemon.ready_after_failure):
                return False, f"no successful pass since {since.isoformat()}; last error: {self.last_error}"
        return True, "ok"

    def serve_http(self, listen: str) -> int:
        daemon = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    self._send(200, daemon.metrics.render(), "text/plain; version=0.0.4; charset=utf-8")
                elif self.path == "/healthz":
                    ok = daemon.healthy()
                    self._send(200 if ok else 503, b"ok\n" if ok else b"scheduler stopped\n")
                elif self.path == "/readyz":
                    ok, why = daemon.ready()
                    self._send(200 if ok else 503, (why + "\n").encode())
                else:
                    self._send(404, b"not found\n")

            def _send(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        host, port = parse_listen(listen)
        self.http = ThreadingHTTPServer((host, port), Handler)
        self.http.daemon_threads = True
        threading.Thread(target=self.http.serve_forever, name="http", daemon=True).start()
        return int(self.http.server_address[1])

    # -- lifecycle ----------------------------------------------------------------------

    def start(self, first_run_in: float = 1.0) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        d = self.config.daemon
        jitter = int(parse_duration(d.jitter).total_seconds()) or None
        trigger: Any
        if d.cron:
            trigger = CronTrigger(**crontab_fields(d.cron), timezone="UTC", jitter=jitter)
        else:
            trigger = IntervalTrigger(seconds=parse_duration(d.interval or "1h").total_seconds(), jitter=jitter)
        if self.elector is not None:
            self.elector.start()
        self.scheduler = BackgroundScheduler(timezone="UTC")
        self.scheduler.add_job(
            self.run_pass,
            trigger,
            id="pass",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=int(parse_duration(d.misfire_grace).total_seconds()),
            next_run_time=datetime.now().astimezone() + timedelta(seconds=first_run_in),
        )
        self.scheduler.start()
        self.log.info("daemon started", identity=self.identity, leader_election=self.elector is not None)

    def stop(self) -> None:
        """Let the pass in flight finish (bounded), give up the Lease, stop serving."""
        timeout = parse_duration(self.config.daemon.shutdown_timeout).total_seconds()
        if self.scheduler is not None:
            stopper = threading.Thread(target=lambda: self.scheduler.shutdown(wait=True), daemon=True)
            stopper.start()
            stopper.join(timeout)
        if self.elector is not None:
            self.elector.release()
            self.elector.stop()
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()
        self._stop.set()

    def run_until_signalled(self) -> int:
        def handler(signum: int, _frame: Any) -> None:
            self.log.info("stopping", signal=signal.Signals(signum).name)
            self._stop.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
        self.serve_http(self.config.daemon.listen)
        self.start()
        while not self._stop.wait(1):
            pass
        self.stop()
        return 0


def daemon_command(args: argparse.Namespace) -> int:
    from rotator.checks.certs import utcnow
    from rotator.config.load import ConfigError, load_config
    from rotator.util import logs

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return error(str(exc))
    if args.listen:
        from rotator.util.timeutil import parse_listen

        try:
            parse_listen(args.listen)
        except ValueError as exc:
            return error(f"--listen: {exc}")
        config = config.model_copy(update={"daemon": config.daemon.model_copy(update={"listen": args.listen})})
    logs.configure(args.log_level or config.logging.level, args.log_format or config.logging.format)
    api = api_from_args(args)
    if isinstance(api, int):
        return api

    return Daemon(api, config, utcnow).run_until_signalled()
