"""Command line. Only argparse is imported at start-up; each command imports what it needs.

``rotator --help`` must answer fast (it runs in CronJobs and shell completions), so the
heavy modules (cryptography, pydantic, rich) load inside the command functions.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any, TextIO

from rotator import __version__

EXIT_CODES = """exit codes (Nagios-style, for cron and monitoring):
  0  OK        nothing due, no warnings
  1  WARNING   renewals due, or warning findings
  2  CRITICAL  expired, invalid or missing credentials, or error/critical findings
  3  UNKNOWN   could not run: bad config, unreadable input, bad arguments
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rotator",
        description="Discover, inspect and renew the TLS credentials of Istio ingress gateways.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rotator {__version__}")
    _common(parser, top=True)
    _cluster(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = sub.add_parser(
        "check",
        help="discover, inspect and plan (and, without --dry-run, renew)",
        description="Discover every credential Istio gateways reference, inspect it, and plan renewals. "
        "With -f, reads manifests instead of a cluster.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(check, top=False)
    check.add_argument("--dry-run", action="store_true", help="change nothing; print the plan")
    check.add_argument(
        "--preflight",
        action="store_true",
        help="with --dry-run: also check every issuer in use, read-only (CA key pair and expiry; ACME "
        "directory, EAB, TSIG key, nameserver). A live pass always does",
    )
    check.add_argument(
        "-f",
        "--filename",
        action="append",
        default=[],
        metavar="PATH",
        help="manifest file or folder (recursive; dot-folders and Helm templates/ are skipped); '-' for stdin; "
        "repeatable",
    )
    check.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="with -f on a folder: skip paths matching this glob (e.g. 'tests/*', '*.kustomize.yaml'); repeatable",
    )
    check.add_argument(
        "-o",
        "--output",
        choices=("table", "wide", "json", "yaml", "summary"),
        default="table",
        help="report format: table (default, fits 80 columns), wide (every column), json, yaml, or summary "
        "(the closing line only)",
    )
    check.add_argument(
        "--at", metavar="WHEN", help="evaluate as of another time: ISO date/time or relative (+30d, -12h)"
    )
    _selection(check)
    check.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="log errors only (at a terminal, warnings and errors are the default)",
    )
    check.add_argument(
        "--pushgateway", metavar="URL", help="push this pass's metrics to a Prometheus Pushgateway (for the CronJob)"
    )
    check.add_argument(
        "--exit-codes",
        choices=("nagios", "job"),
        default="nagios",
        help="nagios (default): 0/1/2/3 as below; job: for a CronJob, 0 when the pass ran and every renewal it "
        "attempted succeeded, 1 when a renewal failed or an expired credential is left un-renewed (for instance "
        "because another rotator holds the Lease), 3 when it could not run (other findings go to metrics/alerts, "
        "not to Job failures that would retry the pass)",
    )
    _cluster(check)

    status = sub.add_parser(
        "status",
        help="everything about one Secret: references, certificate, findings, plan, last renewal, backups",
        description="Everything rotator knows about one Secret (like cmctl status certificate); reads only.",
    )
    _common(status, top=False)
    status.add_argument("secret", metavar="NAMESPACE/NAME")
    status.add_argument("-o", "--output", choices=("text", "json"), default="text")
    _cluster(status)

    renew = sub.add_parser(
        "renew",
        help="renew one Secret now, due or not (like cmctl renew, certbot --force-renewal)",
        description="Renew one Secret now, whether due or not (and past a back-off), through the same pass as "
        "rotator check: the same safety rules, the Lease, a backup first. Its copies in other gateway namespaces "
        "(Istio reads a classic Gateway's Secret where each gateway pod runs) are renewed with it, to one "
        "certificate. A paused, unreadable, not-owned or another CA's Secret is not renewed; the report says why.",
    )
    _common(renew, top=False)
    renew.add_argument("secret", metavar="NAMESPACE/NAME")
    renew.add_argument("-o", "--output", choices=("table", "json"), default="table")
    _cluster(renew)

    alert = sub.add_parser(
        "alert",
        help="alert test: send a test event to each configured sink (PagerDuty, webhooks) and resolve it",
        description="rotator alert test: one trigger and its resolve to every configured sink, so a wrong "
        "routing key, URL or signing secret shows before a real page is lost. Exit 0 when every sink "
        "accepted both, 2 otherwise.",
    )
    _common(alert, top=False)
    alert.add_argument("action", choices=("test",))
    _cluster(alert)

    completion = sub.add_parser(
        "completion",
        help="print a shell completion script: bash, zsh or fish",
        description="Print a completion script. bash: source <(rotator completion bash); zsh: source "
        "<(rotator completion zsh); fish: rotator completion fish | source.",
    )
    completion.add_argument("shell", choices=("bash", "zsh", "fish"))

    daemon = sub.add_parser(
        "daemon",
        help="run passes on a schedule, with leader election and /metrics, /healthz, /readyz",
        description="Run the check-and-renew pass on the schedule in the config (daemon: interval or cron), "
        "as the leader of a Lease when several replicas run. Serves /metrics, /healthz and /readyz. "
        "SIGTERM/SIGINT finish the pass in flight and exit 0.",
    )
    _common(daemon, top=False)
    _cluster(daemon)
    daemon.add_argument("--listen", metavar="HOST:PORT", help="override daemon.listen")

    rollback = sub.add_parser(
        "rollback",
        help="restore the previous version of a Secret rotator rotated",
        description="Restore a Secret from the backup rotator wrote before its last rotation (or --to a named "
        "backup). The backup is validated like a new certificate: it must parse, match its key, chain in "
        "order, be valid now and cover the hosts the Gateways serve. The current version is backed up first, "
        "so a rollback can itself be undone. The Secret's copies in other gateway namespaces (same name, same "
        "Gateway servers) are restored to the same certificate, all validated before any is written, or none is.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(rollback, top=False)
    rollback.add_argument("secret", metavar="NAMESPACE/NAME", help="the Secret to restore")
    rollback.add_argument("--to", metavar="BACKUP", help="restore this backup Secret instead of the newest")
    rollback.add_argument("--list", action="store_true", help="list the backups and exit")
    rollback.add_argument("--dry-run", action="store_true", help="validate and say what would be restored")
    rollback.add_argument(
        "--no-hold",
        action="store_true",
        help="do not pause renewal: by default the restored Secret is annotated rotator.io/renewal=paused, or "
        "the next pass would renew it again; resume with kubectl annotate secret -n NS NAME rotator.io/renewal-",
    )
    rollback.add_argument(
        "--this-copy-only",
        action="store_true",
        help="restore only the Secret named, not its copies in other gateway namespaces (which then serve "
        "another certificate)",
    )
    _cluster(rollback)
    return parser


def _selection(parser: argparse.ArgumentParser) -> None:
    """kubectl's -n / -A / -l, on credentials."""
    parser.add_argument(
        "-n",
        "--namespace",
        metavar="NS",
        default=None,
        help="only credentials (Secrets) in this namespace; Gateways are read everywhere. With -f, also the "
        "namespace of manifests without metadata.namespace",
    )
    parser.add_argument(
        "-A", "--all-namespaces", action="store_true", help="every namespace (the default; for kubectl's habit)"
    )
    parser.add_argument(
        "-l", "--selector", metavar="SELECTOR", default=None, help="only Secrets with these labels: a=b,c!=d,e,!f"
    )


def _selection_of(args: argparse.Namespace) -> Any:
    """The Selection the flags ask for, or an exit code after a clear message."""
    from rotator.plan.selection import Selection, parse_selector

    if args.all_namespaces and args.namespace:
        return _error("-n and -A: give one (-A is every namespace)")
    try:
        selector = parse_selector(args.selector) if args.selector else ()
    except ValueError as exc:
        return _error(f"-l: {exc}")
    return Selection(namespace=None if args.all_namespaces else args.namespace, selector=selector)


def _cluster(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """kubectl's habit: --kubeconfig and --context before or after the command."""
    parser.add_argument(
        "--kubeconfig",
        metavar="FILE",
        default=None if top else argparse.SUPPRESS,
        help="kubeconfig file (default: in-cluster, else $KUBECONFIG or ~/.kube/config)",
    )
    parser.add_argument(
        "--context", metavar="NAME", default=None if top else argparse.SUPPRESS, help="kubeconfig context"
    )


def _common(parser: argparse.ArgumentParser, top: bool) -> None:
    """Global options, accepted before or after the command (sub-parsers must not reset them)."""

    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    parser.add_argument(
        "--config",
        metavar="FILE",
        default=default(os.environ.get("ROTATOR_CONFIG")),
        help="config file (default: $ROTATOR_CONFIG; none: built-in defaults)",
    )
    parser.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default=default(None),
        help="log level (default: from config, else info; rotator check at a terminal: warning)",
    )
    parser.add_argument(
        "--log-format",
        choices=("auto", "console", "json"),
        default=default(None),
        help="log format on stderr (default: console on a terminal, else JSON)",
    )
    parser.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default=default("auto"),
        help="colours in the table and the logs (auto: a terminal without NO_COLOR)",
    )


def _join_negative_values(argv: list[str]) -> list[str]:
    """``--at -12h`` → ``--at=-12h``: argparse takes a leading '-' for an option."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] == "--at" and i + 1 < len(argv) and argv[i + 1][:1] == "-" and argv[i + 1][1:2].isdigit():
            out.append(f"--at={argv[i + 1]}")
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out


def main(argv: list[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(_join_negative_values(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # argparse exits 2 on bad usage; our 2 means CRITICAL
        code = exc.code if isinstance(exc.code, int) else 3
        return 0 if code == 0 else 3
    if args.command is None:
        parser.print_help()
        return 3
    out = stdout or sys.stdout
    try:
        if args.command == "check":
            return _check(args, stdin or sys.stdin, out)
        if args.command == "rollback":
            return _rollback(args, out)
        if args.command == "daemon":
            return _daemon(args)
        if args.command in ("status", "renew"):
            return _one(args, out)
        if args.command == "alert":
            return _alert_test(args, out)
        if args.command == "completion":
            from rotator.commands.completion import script

            out.write(script(build_parser(), args.shell))
            return 0
    except BrokenPipeError:
        # `rotator check -o json | head`: the reader left; that is not a failure of ours.
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        return _error("interrupted")
    except Terminated:
        return _error("terminated (SIGTERM): stopped before the next write; the Lease, if held, was released")
    except Exception as exc:  # a bug must never look like OK or WARNING to cron/Nagios
        import traceback

        sys.stderr.write(traceback.format_exc())
        return _error(f"internal error ({type(exc).__name__}); please report it with the trace above")
    return 3  # pragma: no cover - argparse rejects unknown commands


class Terminated(BaseException):
    """SIGTERM (node drain, the Job's activeDeadlineSeconds): unwinds the pass so the
    Lease is released on the way out. A BaseException, so no per-credential guard
    swallows it."""


@contextlib.contextmanager
def _terminate_on_sigterm(stop: threading.Event) -> Iterator[None]:
    """While a writing pass runs: SIGTERM stops new issuance and writes (``stop``) and
    unwinds the main thread; renewal workers see ``stop`` at their next step."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield  # signals are only delivered to the main thread (tests call main() in others)
        return

    def handler(signum: int, frame: object) -> None:
        stop.set()
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


LEVELS = ("debug", "info", "warning", "error")


def _check_log_level(args: argparse.Namespace, config: Any) -> str:
    """A person at a terminal reads the report, not log chatter: below warning only when
    asked (--log-level) or when logs go to a machine (JSON, as the CronJob runs)."""
    if args.log_level:
        return str(args.log_level)
    if args.quiet:
        return "error"
    level = str(config.logging.level)
    if args.log_format == "json":  # asked for machine logs on the command line
        return level
    return LEVELS[max(LEVELS.index(level), LEVELS.index("warning"))]


def _color(args: argparse.Namespace) -> bool | None:
    """--color always/never, else None: a terminal decides, and NO_COLOR turns it off."""
    return {"always": True, "never": False}.get(getattr(args, "color", "auto"))


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _error(message: str) -> int:
    sys.stderr.write(f"rotator: error: {message}\n")
    return 3


def _check(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    from rotator.config.load import ConfigError, load_config
    from rotator.util import logs

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return _error(str(exc))
    logs.configure(_check_log_level(args, config), args.log_format or config.logging.format, color=_color(args))
    logs.new_run_id()
    log = logs.get_logger()

    if args.pushgateway and (args.dry_run or args.at):
        return _error("--pushgateway pushes the metrics of a real pass; a dry run or --at would push a simulation")
    if not args.dry_run:
        if args.filename:
            return _error("renewing writes Secrets back to a cluster; with -f (manifests) use --dry-run")
        if args.at:
            return _error("--at evaluates another time: it only goes with --dry-run")
        if args.preflight:
            return _error("--preflight goes with --dry-run (a live pass always checks its issuers)")

    from rotator.checks.certs import utcnow
    from rotator.util.timeutil import parse_when

    now = utcnow()
    if args.at:
        try:
            now = parse_when(args.at, now)
        except ValueError as exc:
            return _error(f"--at: {exc}")

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
        selection = _selection_of(args)
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
        api = _api(args)
        if isinstance(api, int):
            return api
        from rotator.kube.api import ApiError

        if not args.dry_run:
            from rotator.issuers.factory import build_issuers

            issuers = dict(build_issuers(config, api, utcnow))  # kept: their counters feed --pushgateway
        selection = _selection_of(args)
        if isinstance(selection, int):
            return selection
        phases = Phases(enabled=False if args.quiet or args.log_format == "json" else None)
        try:
            result = _run_live(api, config, now, args.dry_run, issuers, selection, progress=phases)
        except ApiError as exc:
            return _error(f"cannot read the cluster: {exc}")
        finally:
            phases.done()
    if args.preflight and args.dry_run:
        from dataclasses import replace

        from rotator.issuers.factory import build_issuers
        from rotator.live_pass import issuer_health

        health = issuer_health(result, build_issuers(config, api, utcnow), lambda: now)
        from rotator.live_pass import sink_health

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


def _alert_test(args: argparse.Namespace, stdout: TextIO) -> int:
    from rotator.config.load import ConfigError, load_config
    from rotator.util import logs

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return _error(str(exc))
    logs.configure(args.log_level or "warning", args.log_format or config.logging.format, color=_color(args))
    if config.pagerduty is None and not config.webhooks:
        return _error("no alert sink is configured (pagerduty: or webhooks: in the config)")
    api = None
    needs_api = any(
        ref is not None and ref.secret
        for ref in [config.pagerduty.routing_key if config.pagerduty else None]
        + [h.secret for h in config.webhooks]
        + [h.authorization for h in config.webhooks]
    )
    if needs_api:
        api = _api(args)
        if isinstance(api, int):
            return api
    from rotator.checks.certs import utcnow
    from rotator.live_pass import test_alerts

    results = test_alerts(config, api, utcnow)
    for name, outcome in results:
        stdout.write(f"{name}: {outcome}\n")
    return 0 if results and all(o == "ok" for _n, o in results) else 2


def _one(args: argparse.Namespace, stdout: TextIO) -> int:
    """rotator status / rotator renew NAMESPACE/NAME."""
    from rotator.config.load import ConfigError, load_config
    from rotator.util import logs

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return _error(str(exc))
    logs.configure(args.log_level or "warning", args.log_format or config.logging.format, color=_color(args))
    logs.new_run_id()
    namespace, slash, name = args.secret.partition("/")
    if not slash or not namespace or not name or "/" in name:
        return _error(f"{args.command}: expected NAMESPACE/NAME, got {args.secret!r}")
    api = _api(args)
    if isinstance(api, int):
        return api
    from rotator.checks.certs import utcnow
    from rotator.kube.api import ApiError
    from rotator.plan.selection import Selection

    selection = Selection(secret=(namespace, name))
    try:
        if args.command == "renew":
            from rotator.issuers.factory import build_issuers

            issuers = dict(build_issuers(config, api, utcnow))
            result = _run_live(api, config, utcnow(), False, issuers, selection, frozenset({f"{namespace}/{name}"}))
        else:
            result = _run_live(api, config, utcnow(), True, {}, selection)
    except ApiError as exc:
        return _error(f"cannot read the cluster: {exc}")
    if not result.credentials:
        return _error(
            f"no Gateway references Secret {namespace}/{name} where Istio reads it (rotator status lists only "
            "credentials a Gateway uses; check the name, or run rotator check)"
        )
    from rotator.report.document import exit_code, write_json, write_table

    if args.command == "status":
        from rotator.commands.status import describe, document

        if args.output == "json":
            import json

            stdout.write(json.dumps(document(result, api, namespace, name), indent=2) + "\n")
        else:
            stdout.write(describe(result, api, namespace, name))
        return exit_code(result)
    if args.output == "json":
        write_json(result, stdout)
    else:
        write_table(result, stdout, color=_color(args))
    done = [o for o in result.renewals if o.status == "renewed"]
    if not done:
        why = "; ".join(o.message for o in result.renewals) or "; ".join(
            c.reason or f"nothing to renew (action {c.action})" for c in result.credentials if c.spec.role == "server"
        )
        sys.stderr.write(f"rotator: {namespace}/{name} was not renewed: {why}\n")
        return 1
    return 0


def _run_live(
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
        with _terminate_on_sigterm(stop):
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
        _terminate_on_sigterm(stop),
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
    from rotator.discover.wire import build_inventory
    from rotator.model import Finding, ObjectRef

    try:
        loaded = load(args.filename, stdin=stdin, progress=_progress(args.filename), exclude=args.exclude)
    except InputError as exc:
        return _error(str(exc))
    if not any(
        isinstance(o.body.get("apiVersion"), str) and isinstance(o.body.get("kind"), str) for o in loaded.objects
    ):
        # An empty pipe (kubectl failed upstream), an empty folder, or nothing readable at
        # all (broken YAML only, random bytes): "no usable input" is always 3, never a report.
        why = "".join(f"\n  {e.source}: {e.message}" for e in loaded.errors[:5]) or (
            "\n  the input holds no object with a string apiVersion and kind (not Kubernetes manifests?)"
        )
        more = f"\n  … and {len(loaded.errors) - 5} more" if len(loaded.errors) > 5 else ""
        return _error(
            f"no Kubernetes objects could be read from {', '.join(args.filename)}: nothing was checked{why}{more}"
        )
    namespace = args.namespace or config.discovery.default_namespace
    inventory, inv_findings = build_inventory(loaded.objects, default_namespace=namespace)
    input_findings = [
        Finding("invalid-manifest", "error", f"{e.source}: {e.message}", ObjectRef("File", "", e.source.path))
        for e in loaded.errors
    ] + inv_findings
    return inventory, input_findings


def _api(args: argparse.Namespace) -> Any:
    """A KubeAPI for the configured cluster, or an exit code after a clear message."""
    from rotator.kube.api import KubeAPI, connect

    missing = _missing_kubeconfig(args.kubeconfig)
    if missing is not None:
        return _error(missing)
    try:
        return KubeAPI(connect(args.kubeconfig, args.context))
    except Exception as exc:  # kubeconfig missing/invalid: the client raises several types
        return _error(f"cannot configure the Kubernetes client: {exc}")


def _missing_kubeconfig(explicit: str | None) -> str | None:
    """Say which file is missing, in kubectl's terms, before the client's "No configuration found"."""
    if explicit is not None:
        return None if os.path.isfile(explicit) else f"--kubeconfig {explicit}: no such file"
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        return None  # in a pod: the service account
    env = os.environ.get("KUBECONFIG")
    if env:
        files = [p for p in env.split(os.pathsep) if p]
        if not any(os.path.isfile(p) for p in files):
            return f"$KUBECONFIG names no existing file ({env}); set it, or pass --kubeconfig"
        return None
    home = os.path.expanduser("~/.kube/config")
    if not os.path.isfile(home):
        return (
            f"no kubeconfig: $KUBECONFIG is not set and {home} does not exist; pass --kubeconfig, run in a pod, "
            "or use -f with manifests"
        )
    return None


def _daemon(args: argparse.Namespace) -> int:
    from rotator.checks.certs import utcnow
    from rotator.config.load import ConfigError, load_config
    from rotator.util import logs

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return _error(str(exc))
    if args.listen:
        from rotator.util.timeutil import parse_listen

        try:
            parse_listen(args.listen)
        except ValueError as exc:
            return _error(f"--listen: {exc}")
        config = config.model_copy(update={"daemon": config.daemon.model_copy(update={"listen": args.listen})})
    logs.configure(args.log_level or config.logging.level, args.log_format or config.logging.format)
    api = _api(args)
    if isinstance(api, int):
        return api
    from rotator.commands.daemon import Daemon

    return Daemon(api, config, utcnow).run_until_signalled()


def _rollback(args: argparse.Namespace, stdout: TextIO) -> int:
    from rotator.config.load import ConfigError, load_config
    from rotator.util import logs

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return _error(str(exc))
    logs.configure(args.log_level or config.logging.level, args.log_format or config.logging.format)
    namespace, slash, name = args.secret.partition("/")
    if not slash or not namespace or not name:
        return _error(f"rollback: expected NAMESPACE/NAME, got {args.secret!r}")
    api = _api(args)
    if isinstance(api, int):
        return api
    from rotator.apply.secret_writer import ANN_BACKUP_AT, ANN_SERIAL, SecretWriter
    from rotator.checks.certs import utcnow
    from rotator.discover.credentials import DiscoveryOptions, discover
    from rotator.kube.api import ApiError
    from rotator.kube.events import EventRecorder
    from rotator.kube.reader import read_cluster

    writer = SecretWriter(api, utcnow, EventRecorder(api, utcnow))
    try:
        if args.list:
            for b in writer.backups(namespace, name):
                ann = b["metadata"].get("annotations") or {}
                stdout.write(
                    f"{b['metadata']['name']}\tbacked up {ann.get(ANN_BACKUP_AT, '?')}\t"
                    f"serial {ann.get(ANN_SERIAL, '?')}\n"
                )
            return 0
        options = DiscoveryOptions(scope_gateway_to_namespace=config.discovery.scope_gateway_to_namespace)
        specs, _ = discover(read_cluster(api, options).inventory, options)
    except ApiError as exc:
        return _error(str(exc))
    from rotator.apply.renewer import copy_key

    primary = next((s for s in specs if (s.namespace, s.name, s.role) == (namespace, name, "server")), None)
    references = list(primary.references) if primary is not None else []
    # Istio reads a classic Gateway's Secret in each gateway namespace, and rotator keeps
    # those copies on one certificate: a rollback restores them together, or not at all.
    key = copy_key(primary) if primary is not None else None
    copies = sorted({s.namespace for s in specs if key is not None and copy_key(s) == key and s.namespace != namespace})
    if args.this_copy_only:
        copies = []
    try:
        first = writer.rollback(namespace, name, references, to=args.to, dry_run=True)
        if first.status != "rolled-back" or not first.serial:
            stdout.write(f"{namespace}/{name}: {first.status}: {first.message}\n")
            return 2
        plan = [(namespace, first.backup)]
        for ns in copies:
            backup = writer.backup_with_serial(ns, name, first.serial)
            if backup is None:
                stdout.write(
                    f"{ns}/{name}: failed: no backup holds serial {first.serial}; nothing was restored "
                    "(--this-copy-only restores only the Secret named)\n"
                )
                return 2
            check = writer.rollback(ns, name, references, to=backup, dry_run=True)
            if check.status != "rolled-back":
                stdout.write(f"{ns}/{name}: {check.status}: {check.message}; nothing was restored\n")
                return 2
            plan.append((ns, backup))
        failed = False
        for ns, backup in plan:
            outcome = writer.rollback(ns, name, references, to=backup, dry_run=args.dry_run, hold=not args.no_hold)
            held = (
                ""
                if args.no_hold or outcome.status != "rolled-back"
                else (f"; renewal paused (resume: kubectl annotate secret -n {ns} {name} rotator.io/renewal-)")
            )
            stdout.write(f"{ns}/{name}: {outcome.status}: {outcome.message}{held}\n")
            failed = failed or outcome.status != "rolled-back"
    except ApiError as exc:
        return _error(str(exc))
    return 2 if failed else 0


class Phases:
    """One stderr line naming the phase a long pass is in (a terminal only, never with -q
    or machine logs); cleared before the report is printed."""

    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.shown = False

    def __call__(self, phase: str) -> None:
        if self.enabled:
            self.stream.write(f"\r\x1b[K{phase}…")
            self.stream.flush()
            self.shown = True

    def done(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False


def _progress(paths: list[str]):  # type: ignore[no-untyped-def]
    """A stderr progress line for long inputs on a terminal; None otherwise."""
    if not sys.stderr.isatty():
        return None
    from rotator.discover.files import expand_paths

    try:
        files = expand_paths(paths)
    except Exception:
        return None
    if len(files) < 50:
        return None
    total = len(files)
    state = {"n": 0}

    def tick(name: str) -> None:
        state["n"] += 1
        sys.stderr.write(f"\rloading manifests: {state['n']}/{total}")
        if state["n"] == total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return tick
