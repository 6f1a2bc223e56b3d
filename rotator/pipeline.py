"""The check pass: discover → inspect → plan, over an inventory, as of ``now``.

The same function serves manifests on disk, the live cluster and the daemon: only
the way the inventory is obtained differs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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


@dataclass(frozen=True)
class Inspected:
    """A pass after discovery and inspection, before planning: what planning needs, kept
    so that planning again (with the edges' facts) does not discover or inspect again."""

    credentials: tuple[Credential, ...]
    findings: tuple[Finding, ...]
    failed: frozenset[int] = frozenset()  # inspection raised: reported as is, never planned


def inspect_all(
    inv: Inventory, config: Config, now: datetime, input_findings: list[Finding] | tuple[Finding, ...] = ()
) -> Inspected:
    """Discover every credential, inspect each, run the checklist: one look at the inventory."""
    options = DiscoveryOptions(scope_gateway_to_namespace=config.discovery.scope_gateway_to_namespace)
    specs, discovery_findings = discover(inv, options)
    inspect_options = InspectOptions(client_ca_warning=parse_duration(config.renewal.client_ca_warning))
    looked = [_inspected(spec, inv, now, inspect_options) for spec in specs]
    credentials = tuple(c for c, _ in looked)
    failed = frozenset(i for i, (_, ok) in enumerate(looked) if not ok)
    try:
        advice = tuple(checklist.check(inv, options))
    except Exception as exc:
        advice = (internal_error("the checklist", ObjectRef("Checklist", "", "seed"), exc),)
    return Inspected(credentials, tuple(input_findings) + tuple(discovery_findings) + advice, failed)


def plan_all(
    inspected: Inspected, inv: Inventory, config: Config, now: datetime, facts: PlanFacts = NO_FACTS
) -> CheckResult:
    """Plan every inspected credential; pure, so it may run again with new ``facts``."""
    credentials = tuple(
        c if i in inspected.failed else _planned(c, inv, config, now, facts)
        for i, c in enumerate(inspected.credentials)
    )
    return CheckResult(evaluated_at=now, credentials=credentials, findings=inspected.findings)


def run_check(
    inv: Inventory,
    config: Config,
    now: datetime,
    input_findings: list[Finding] | tuple[Finding, ...] = (),
    facts: PlanFacts = NO_FACTS,
) -> CheckResult:
    """``facts``: what the edges found out (who issued each certificate, ARI windows,
    back-off): with them a dry run plans what the real pass does."""
    return plan_all(inspect_all(inv, config, now, input_findings), inv, config, now, facts)


def _inspected(spec: CredentialSpec, inv: Inventory, now: datetime, options: InspectOptions) -> tuple[Credential, bool]:
    """A failure in inspection is a finding on this credential alone (and it is not
    planned: an ``invalid`` credential nobody could read is never renewed)."""
    obj = ObjectRef(spec.kind, spec.namespace, spec.name)
    try:
        return inspect(spec, inv, now, options), True
    except Exception as exc:
        return Credential(spec, None, "invalid", (*spec.findings, internal_error("inspection", obj, exc))), False


def _planned(cred: Credential, inv: Inventory, config: Config, now: datetime, facts: PlanFacts) -> Credential:
    try:
        return plan(cred, inv, config, now, facts)
    except Exception as exc:
        obj = ObjectRef(cred.spec.kind, cred.spec.namespace, cred.spec.name)
        return replace(cred, findings=(*cred.findings, internal_error("planning", obj, exc)))


def _credential(
    spec: CredentialSpec, inv: Inventory, config: Config, now: datetime, options: InspectOptions, facts: PlanFacts
) -> Credential:
    """Inspect and plan one credential; a failure in either is a finding on it alone."""
    cred, ok = _inspected(spec, inv, now, options)
    return _planned(cred, inv, config, now, facts) if ok else cred


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
