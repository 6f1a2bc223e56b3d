"""``rotator status NAMESPACE/NAME`` and ``rotator renew NAMESPACE/NAME``: one Secret,
planned (and for ``renew`` renewed) with the same pass as ``check``, narrowed to it."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from rotator.commands.check import run_live
from rotator.commands.common import api_from_args, color_of, error


def one_secret_command(args: argparse.Namespace, stdout: TextIO) -> int:
    """rotator status / rotator renew NAMESPACE/NAME."""
    from rotator.config.load import ConfigError, load_config
    from rotator.util import logs

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return error(str(exc))
    logs.configure(args.log_level or "warning", args.log_format or config.logging.format, color=color_of(args))
    logs.new_run_id()
    namespace, slash, name = args.secret.partition("/")
    if not slash or not namespace or not name or "/" in name:
        return error(f"{args.command}: expected NAMESPACE/NAME, got {args.secret!r}")
    api = api_from_args(args)
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
            result = run_live(api, config, utcnow(), False, issuers, selection, frozenset({f"{namespace}/{name}"}))
        else:
            result = run_live(api, config, utcnow(), True, {}, selection)
    except ApiError as exc:
        return error(f"cannot read the cluster: {exc}")
    if not result.credentials:
        return error(
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
        write_table(result, stdout, color=color_of(args))
    done = [o for o in result.renewals if o.status == "renewed"]
    if not done:
        why = "; ".join(o.message for o in result.renewals) or "; ".join(
            c.reason or f"nothing to renew (action {c.action})" for c in result.credentials if c.spec.role == "server"
        )
        sys.stderr.write(f"rotator: {namespace}/{name} was not renewed: {why}\n")
        return 1
    return 0
