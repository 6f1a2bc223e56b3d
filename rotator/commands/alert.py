"""``rotator alert test``: one trigger and its resolve to every configured sink."""

from __future__ import annotations

import argparse
from typing import TextIO

from rotator.commands.common import api_from_args, color_of, error


def alert_test_command(args: argparse.Namespace, stdout: TextIO) -> int:
    from rotator.config.load import ConfigError, load_config
    from rotator.util import logs

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return error(str(exc))
    logs.configure(args.log_level or "warning", args.log_format or config.logging.format, color=color_of(args))
    if config.pagerduty is None and not config.webhooks:
        return error("no alert sink is configured (pagerduty: or webhooks: in the config)")
    api = None
    needs_api = any(
        ref is not None and ref.secret
        for ref in [config.pagerduty.routing_key if config.pagerduty else None]
        + [h.secret for h in config.webhooks]
        + [h.authorization for h in config.webhooks]
    )
    if needs_api:
        api = api_from_args(args)
        if isinstance(api, int):
            return api
    from rotator.checks.certs import utcnow
    from rotator.report.alerts.sinks import alert_test

    results = alert_test(config, api, utcnow)
    for name, outcome in results:
        stdout.write(f"{name}: {outcome}\n")
    return 0 if results and all(o == "ok" for _n, o in results) else 2
