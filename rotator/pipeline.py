"""The check pass: discover → inspect → plan, over an inventory, as of ``now``.

The same function serves manifests on disk, the live cluster and the daemon: only
the way the inventory is obtained differs.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from rotator.checks.inspect import InspectOptions, inspect
from rotator.config.schema import Config
from rotator.discover import wiring as checklist
from rotator.discover.collect import DiscoveryOptions
from rotator.discover.credentials import discover
from rotator.findings import internal_error
from rotator.model import NO_FACTS, CheckResult, Credential, CredentialSpec, Finding, Inventory, ObjectRef, PlanFacts
from rotator.plan.policy import plan
from rotator.util.timeutil import parse_duration


def run_check(
    inv: Inventory,
    config: Config,
    now: datetime,
    input_findings: list[Finding] | tuple[Finding, ...] = (),
    facts: PlanFacts = NO_FACTS,
) -> CheckResult:
    """``facts``: what the edges found out (who issued each certificate, ARI windows,
    back-off): with them a dry run plans what the real pass does."""
    options = DiscoveryOptions(scope_gateway_to_namespace=config.discovery.scope_gateway_to_namespace)
    specs, discovery_findings = discover(inv, options)
    inspect_options = InspectOptions(client_ca_warning=parse_duration(config.renewal.client_ca_warning))
    credentials = tuple(_credential(spec, inv, config, now, inspect_options, facts) for spec in specs)
    try:
        advice = tuple(checklist.check(inv, options))
    except Exception as exc:
        advice = (internal_error("the checklist", ObjectRef("Checklist", "", "seed"), exc),)
    findings = tuple(input_findings) + tuple(discovery_findings) + advice
    return CheckResult(evaluated_at=now, credentials=credentials, findings=findings)


def _credential(
    spec: CredentialSpec, inv: Inventory, config: Config, now: datetime, options: InspectOptions, facts: PlanFacts
) -> Credential:
    """Inspect and plan one credential; a failure in either is a finding on it alone."""
    obj = ObjectRef(spec.kind, spec.namespace, spec.name)
    try:
        cred = inspect(spec, inv, now, options)
    except Exception as exc:
        return Credential(spec, None, "invalid", (*spec.findings, internal_error("inspection", obj, exc)))
    try:
        return plan(cred, inv, config, now, facts)
    except Exception as exc:
        return replace(cred, findings=(*cred.findings, internal_error("planning", obj, exc)))


def reinspect(
    result: CheckResult, inv: Inventory, config: Config, now: datetime, secrets: set[tuple[str, str]]
) -> CheckResult:
    """``result`` with the credentials of ``secrets`` inspected and planned again on ``inv``
    (what a pass wrote); every other credential keeps its plan."""
    options = InspectOptions(client_ca_warning=parse_duration(config.renewal.client_ca_warning))
    credentials = tuple(
        _credential(c.spec, inv, config, now, options, NO_FACTS) if (c.spec.namespace, c.spec.name) in secrets else c
        for c in result.credentials
    )
    return replace(result, credentials=credentials)
