"""``rotator check``: plan from files or the cluster, renew unless --dry-run, report.

The CronJob runs this; so does an operator before letting it loose. It takes the pass
Lease around a live pass, runs --preflight on request and pushes to a Pushgateway.
"""

from __future__ import annotations

import argparse
import os
import threading
from typing import Any, TextIO

from rotator.commands.common import (
    Phases,
    api_from_args,
    check_log_level,
    color_of,
    error,
    progress,
    selection_of,
    terminate_on_sigterm,
)


def check_command(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    from rotator.config.load import ConfigError, load_config
    from rotator.util import logs

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return error(str(exc))
    logs.configure(check_log_level(args, config), args.log_format or config.logging.format, color=color_of(args))
    logs.new_run_id()
    log = logs.get_logger()

    if args.pushgateway and (args.dry_run or args.at):
        return error("--pushgateway pushes the metrics of a real pass; a dry run or --at would push a simulation")
    if not args.dry_run:
        if args.filename:
            return error("renewing writes Secrets back to a cluster; with -f (manifests) use --dry-run")
        if args.at:
            return error("--at evaluates another time: it only goes with --dry-run")
        if args.preflight:
            return error("--preflight goes with --dry-run (a live pass always checks its issuers)")

    from rotator.checks.certs import utcnow
    from rotator.util.timeutil import parse_when

    now = utcnow()
    if args.at:
        try:
            now = parse_when(args.at, now)
        except ValueError as exc:
            return error(f"--at: {exc}")

    from rotator.report.document import exit_code, write_json, write_table, write_yaml

    api = None
    issuers: dict[str, Any] = {}
    if args.filename:
        got = _from_files(args, config, stdin)
        if isinstance(got, int):
            return got
        from rotator.issuers.factory import build_issuers
        from rotator.live_pass import plan_with_facts

        # Offline: who issued each certificate is still known where it needs no cluster
        # (an ACME issuer's accept_issuers, a CA from files); no CA is contacted.
        offline = build_issuers(config, None, utcnow)
        selection = selection_of(args)
        if isinstance(selection, int):
            return selection
        from rotator.plan.selection import narrow

        phases = Phases(enabled=False if args.quiet or args.log_format == "json" else None)
        gateways = len(got[0].istio_gateways) + len(got[0].kube_gateways)
        phases(f"inspecting ({len(got[0].secrets)} Secrets, {gateways} Gateways)")
        try:
            planned = plan_with_facts(got[0], config, now, got[1], offline, None, ari=False)
        finally:
            phases.done()
        result = narrow(planned, got[0], selection)
    else:
        api = api_from_args(args)
        if isinstance(api, int):
            return api
        from rotator.kube.api import ApiError

        if not args.dry_run:
            from rotator.issuers.factory import build_issuers

            issuers = dict(build_issuers(config, api, utcnow))  # kept: their counters feed --pushgateway
        selection = selection_of(args)
        if isinstance(selection, int):
            return selection
        phases = Phases(enabled=False if args.quiet or args.log_format == "json" else None)
        try:
            result = run_live(api, config, now, args.dry_run, issuers, selection, progress=phases)
        except ApiError as exc:
            return error(f"cannot read the cluster: {exc}")
        finally:
            phases.done()
    if args.preflight and args.dry_run:
        from dataclasses import replace

        from rotator.issuers.factory import build_issuers
        from rotator.live_pass import issuer_health

        health = issuer_health(result, build_issuers(config, api, utcnow), lambda: now)
        from rotator.report.alerts.sinks import sink_health

        health += sink_health(config, api, utcnow)
        if api is None:  # offline: a CA kept in a Secret cannot be read, which is no fault of the CA
            health = [
                replace(h, severity="info", message=h.message + " (not checkable offline)")
                if "needs a cluster connection" in h.message
                else h
                for h in health
            ]
        result = replace(result, findings=result.findings + tuple(health))
    log.info(
        "check finished",
        credentials=len(result.credentials),
        renew=sum(1 for c in result.credentials if c.action == "renew"),
        evaluated_at=now.isoformat(),
    )
    if args.output == "json":
        write_json(result, stdout)
    elif args.output == "yaml":
        write_yaml(result, stdout)
    elif args.output == "summary":
        from rotator.report.document import summary_line

        stdout.write(summary_line(result) + "\n")
    else:
        color = {"always": True, "never": False}.get(args.color)
        write_table(result, stdout, color=color, wide=args.output == "wide")
    if args.pushgateway:
        _push(args.pushgateway, result, config, api, issuers)
    if args.exit_codes == "job":
        from rotator.report.document import unrenewed_expired

        return 1 if any(o.status == "failed" for o in result.renewals) or unrenewed_expired(result) else 0
    return exit_code(result)


def run_live(
    api: Any,
    config: Any,
    now: Any,
    dry_run: bool,
    issuers: dict[str, Any],
    selection: Any,
    forced: frozenset[str] = frozenset(),
    progress: Any = None,
) -> Any:
    """The very pass the daemon runs (read, plan, renew, alert), so the two cannot drift
    apart; a writing pass takes the daemon's Lease and stops cleanly on SIGTERM."""
    from rotator.checks.certs import utcnow
    from rotator.live_pass import live_pass

    progress = progress or (lambda phase: None)

    if dry_run:
        return live_pass(api, config, lambda: now, True, selection=selection, forced=forced, progress=progress)[0]
    stop = threading.Event()
    if not config.daemon.leader_election:
        with terminate_on_sigterm(stop):
            return live_pass(
                api,
                config,
                utcnow,
                False,
                lambda: not stop.is_set(),
                issuers=issuers or None,
                selection=selection,
                forced=forced,
                progress=progress,
            )[0]
    import socket

    from rotator.kube.leader import one_pass_lease
    from rotator.util.timeutil import parse_duration

    lease = config.daemon.lease
    identity = f"check/{os.environ.get('POD_NAME') or socket.gethostname()}/{os.getpid()}"
    with (
        terminate_on_sigterm(stop),
        one_pass_lease(
            api,
            lease.namespace,
            lease.name,
            identity,
            utcnow,
            lease_duration=parse_duration(lease.duration),
            renew_deadline=parse_duration(lease.renew_deadline),
            retry_period=parse_duration(lease.retry_period),
            stop=stop,
        ) as may_write,
    ):
        return live_pass(
            api,
            config,
            utcnow,
            False,
            may_write,
            issuers=issuers or None,
            selection=selection,
            forced=forced,
            progress=progress,
        )[0]


def _push(url: str, result: Any, config: Any, api: Any, issuers: dict[str, Any]) -> None:
    """Best effort: a Pushgateway that is down is logged, never fails the pass."""
    import time

    from rotator.report.metrics import Metrics
    from rotator.util import logs

    metrics = Metrics()
    metrics.observe(result, 0.0, time.time(), dict(api.stats.by_result) if api is not None else {})
    for name, issuer in issuers.items():
        metrics.acme(name, dict(issuer.requests))
    if api is not None and any(o.status == "renewed" for o in result.renewals):
        from rotator.checks.certs import utcnow
        from rotator.live_pass import live_pass

        metrics.snapshot(live_pass(api, config, utcnow, dry_run=True)[0])  # the state after renewing
    try:
        metrics.push(url, job="rotator", grouping={"cluster": config.cluster_name})
    except Exception as exc:
        logs.get_logger().warning("pushgateway push failed", url=url, error=f"{type(exc).__name__}: {exc}")


def _from_files(args: argparse.Namespace, config: Any, stdin: TextIO) -> tuple[Any, list[Any]] | int:
    from rotator.discover.files import InputError, load
    from rotator.discover.wire.inventory import build_inventory
    from rotator.model import Finding, ObjectRef

    try:
        loaded = load(args.filename, stdin=stdin, progress=progress(args.filename), exclude=args.exclude)
    except InputError as exc:
        return error(str(exc))
    if not any(
        isinstance(o.body.get("apiVersion"), str) and isinstance(o.body.get("kind"), str) for o in loaded.objects
    ):
        # An empty pipe (kubectl failed upstream), an empty folder, or nothing readable at
        # all (broken YAML only, random bytes): "no usable input" is always 3, never a report.
        why = "".join(f"\n  {e.source}: {e.message}" for e in loaded.errors[:5]) or (
            "\n  the input holds no object with a string apiVersion and kind (not Kubernetes manifests?)"
        )
        more = f"\n  … and {len(loaded.errors) - 5} more" if len(loaded.errors) > 5 else ""
        return error(
            f"no Kubernetes objects could be read from {', '.join(args.filename)}: nothing was checked{why}{more}"
        )
    namespace = args.namespace or config.discovery.default_namespace
    inventory, inv_findings = build_inventory(loaded.objects, default_namespace=namespace)
    input_findings = [
        Finding("invalid-manifest", "error", f"{e.source}: {e.message}", ObjectRef("File", "", e.source.path))
        for e in loaded.errors
    ] + inv_findings
    return inventory, input_findings
