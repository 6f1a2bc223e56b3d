"""Command line. Only argparse is imported at start-up; each command imports what it needs.

``rotator --help`` must answer fast (it runs in CronJobs and shell completions), so the
heavy modules (cryptography, pydantic, the kubernetes client) load inside the command functions.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TextIO

from rotator import __version__
from rotator.commands.common import Terminated, error, silence_stdout

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
            from rotator.commands.check import check_command

            return check_command(args, stdin or sys.stdin, out)
        if args.command == "rollback":
            from rotator.commands.rollback import rollback_command

            return rollback_command(args, out)
        if args.command == "daemon":
            from rotator.commands.daemon import daemon_command

            return daemon_command(args)
        if args.command in ("status", "renew"):
            from rotator.commands.one_secret import one_secret_command

            return one_secret_command(args, out)
        if args.command == "alert":
            from rotator.commands.alert import alert_test_command

            return alert_test_command(args, out)
        if args.command == "completion":
            from rotator.commands.completion import script

            out.write(script(build_parser(), args.shell))
            return 0
    except BrokenPipeError:
        # `rotator check -o json | head`: the reader left; that is not a failure of ours.
        silence_stdout()
        return 0
    except KeyboardInterrupt:
        return error("interrupted")
    except Terminated:
        return error("terminated (SIGTERM): stopped before the next write; the Lease, if held, was released")
    except Exception as exc:  # a bug must never look like OK or WARNING to cron/Nagios
        import traceback

        sys.stderr.write(traceback.format_exc())
        return error(f"internal error ({type(exc).__name__}); please report it with the trace above")
    return 3  # pragma: no cover - argparse rejects unknown commands
