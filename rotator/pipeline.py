"""The check pass: discover → inspect → plan, over an inventory, as of ``now``.

The same function serves manifests on disk, the live cluster and the daemon: only
the way the inventory is obtained differs.
"""

from __future__ import annotations

from datetime import datetime

from rotator import checklist
from rotator.config import Config
from rotator.discovery import DiscoveryOptions, discover
from rotator.inspection import InspectOptions, inspect
from rotator.model import CheckResult, Finding, Inventory
from rotator.policy import plan
from rotator.timeutil import parse_duration


def run_check(
    inv: Inventory, config: Config, now: datetime, input_findings: list[Finding] | tuple[Finding, ...] = ()
) -> CheckResult:
    options = DiscoveryOptions(scope_gateway_to_namespace=config.discovery.scope_gateway_to_namespace)
    specs, discovery_findings = discover(inv, options)
    inspect_options = InspectOptions(client_ca_warning=parse_duration(config.renewal.client_ca_warning))
    credentials = tuple(plan(inspect(spec, inv, now, inspect_options), inv, config, now) for spec in specs)
    findings = tuple(input_findings) + tuple(discovery_findings) + tuple(checklist.check(inv, options))
    return CheckResult(evaluated_at=now, credentials=credentials, findings=findings)
