"""One pass against a live cluster: read → plan → (renew). Shared by `rotator check` and
the daemon, so a CronJob and a daemon can never behave differently."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from rotator.config.schema import Config
from rotator.issuers.base import Issuer
from rotator.kube.api import KubeAPI
from rotator.model import CheckResult, Finding, Inventory
from rotator.plan.selection import Selection


def state_store(api: KubeAPI, config: Config, field: str = "renewal.json") -> Any:
    from rotator.kube.state import ConfigMapState

    return ConfigMapState(api, config.renewal.state_namespace, config.renewal.state_configmap, field)


def plan_with_facts(
    inventory: Inventory,
    config: Config,
    now: datetime,
    findings: Sequence[Finding],
    issuers: Mapping[str, Any],
    state: Any,
    ari: bool = True,
    forced: frozenset[str] = frozenset(),
) -> CheckResult:
    """Plan, ask the edges what the plan depends on, and plan again with the answers: the
    dry run and the real pass then decide alike (issuer change, ARI window, back-off)."""
    from rotator.pipeline import inspect_all, plan_all
    from rotator.plan.facts import gather

    inspected = inspect_all(inventory, config, now, tuple(findings))  # once: planning twice is cheap
    first = plan_all(inspected, inventory, config, now)
    facts = replace(gather(first, inventory, issuers, state, ari=ari, forced=forced), forced=forced)
    return plan_all(inspected, inventory, config, now, facts)


def renew(
    result: CheckResult,
    inventory: Inventory,
    config: Config,
    api: KubeAPI,
    clock: Callable[[], datetime],
    may_write: Callable[[], bool] = lambda: True,
    issuers: Mapping[str, Issuer] | None = None,
    narrowed: bool = False,
) -> CheckResult:
    """Run the plan's renewals; their outcomes and findings join the report."""
    from rotator.apply.renewer import Renewer
    from rotator.apply.secret_writer import SecretWriter
    from rotator.issuers.factory import build_issuers
    from rotator.kube.events import EventRecorder

    built = issuers if issuers is not None else build_issuers(config, api, clock)
    writer = SecretWriter(api, clock, EventRecorder(api, clock), retention=config.renewal.backup_retention)
    state = state_store(api, config)
    renewer = Renewer(api, config, built, writer, state, clock, may_write=may_write)
    if may_write():
        for issuer in built.values():  # leftovers of orders a killed pod left behind
            issuer.sweep()
    outcomes = renewer.run(result, inventory, sweep=not narrowed)
    applied = [f for o in outcomes for f in o.findings]
    if config.verify.enabled:
        applied += verify_served(result, outcomes, config)
    after = world_after(result, inventory, outcomes, config, api, clock())
    return attach(replace(after, renewals=tuple(outcomes)), applied, tuple(issuer_health(result, built, clock)))


def world_after(
    result: CheckResult,
    inventory: Inventory,
    outcomes: Sequence[Any],
    config: Config,
    api: KubeAPI,
    now: datetime,
) -> CheckResult:
    """The report of a real pass shows each credential as it is after the pass: the Secrets
    rotator wrote are read back and inspected again (one GET per copy written), so a
    renewed credential shows its new certificate and only the findings that still hold."""
    from rotator.discover.wire.inventory import build_inventory
    from rotator.kube.api import SECRETS, ApiError
    from rotator.model import RawObject, Source
    from rotator.pipeline import reinspect

    written = {copy for o in outcomes if o.status == "renewed" for copy in (o.copies or (f"{o.namespace}/{o.name}",))}
    if not written:
        return result
    raws = []
    for copy in sorted(written):
        ns, _, name = copy.partition("/")
        try:
            obj = api.get(SECRETS, ns, name)
        except ApiError:
            continue  # the report keeps what was planned for it; the renewal says what was done
        if obj is not None:
            raws.append(RawObject(Source(f"secrets/{ns}/{name}", 0), obj))
    fresh, _ = build_inventory(raws, workloads_known=True)
    refreshed = {(s.namespace, s.name) for s in fresh.secrets}
    secrets = tuple(s for s in inventory.secrets if (s.namespace, s.name) not in refreshed) + fresh.secrets
    return reinspect(result, replace(inventory, secrets=secrets), config, now, refreshed)


def attach(result: CheckResult, findings: Sequence[Finding], general: tuple[Finding, ...]) -> CheckResult:
    """Findings of the apply stage go on their credential (docs/findings.md); only those
    about no credential (an issuer's health) are top-level."""
    by_secret: dict[tuple[str, str], list[Finding]] = {}
    loose: list[Finding] = list(general)
    servers = {(c.spec.namespace, c.spec.name) for c in result.credentials if c.spec.role == "server"}
    for f in findings:
        key = (f.object.namespace, f.object.name) if f.object is not None else None
        if key in servers and f.object is not None and f.object.kind == "Secret":
            by_secret.setdefault(key, []).append(f)
        else:
            loose.append(f)
    credentials = tuple(
        replace(c, findings=c.findings + tuple(by_secret.get((c.spec.namespace, c.spec.name), [])))
        if c.spec.role == "server"
        else c
        for c in result.credentials
    )
    return replace(result, credentials=credentials, findings=result.findings + tuple(loose))


def issuer_health(result: CheckResult, issuers: Mapping[str, Any], clock: Callable[[], datetime]) -> list[Finding]:
    """Every issuer a credential is assigned to, due or not: a CA that expires next month
    or an ACME directory that moved must show before the renewal that needs it."""
    from rotator.findings import finding
    from rotator.model import ObjectRef

    names = sorted({c.issuer for c in result.credentials if c.issuer and c.issuer in issuers})
    out: list[Finding] = []
    for name in names:
        try:
            out += issuers[name].health(clock())
        except Exception as exc:  # a 403 or 503 reading a CA Secret is a finding, never a failed pass
            message = f"issuer {name}: health check failed: {type(exc).__name__}: {exc}"
            out.append(finding("issuer-unavailable", message, ObjectRef("Issuer", "", name)))
    return out


def verify_served(result: CheckResult, outcomes: list[Any], config: Config) -> list[Finding]:
    """For each rotated copy: does its gateway serve the new serial? (``not-served`` if not)."""
    from rotator.apply.verify import verify
    from rotator.util.timeutil import parse_duration

    refs = {(c.spec.namespace, c.spec.name): c.spec.references for c in result.credentials if c.spec.role == "server"}
    out: list[Finding] = []
    for o in outcomes:
        if o.status != "renewed" or not o.serial:
            continue
        for copy in o.copies:
            ns, _, name = copy.partition("/")
            out += verify(
                ns,
                name,
                o.serial,
                refs.get((ns, name), ()),
                config.verify.address,
                parse_duration(config.verify.timeout),
                parse_duration(config.verify.interval),
            )
    return out


def live_pass(
    api: KubeAPI,
    config: Config,
    clock: Callable[[], datetime],
    dry_run: bool,
    may_write: Callable[[], bool] = lambda: True,
    issuers: Mapping[str, Issuer] | None = None,
    selection: Selection | None = None,
    forced: frozenset[str] = frozenset(),
    progress: Callable[[str], None] = lambda phase: None,
) -> tuple[CheckResult, Inventory]:
    """``selection``: the credentials this pass is about (-n, -l, one Secret); ``forced``:
    "namespace/name" of Secrets to renew now whether due or not (``rotator renew``)."""
    from rotator.discover.cluster import read_cluster
    from rotator.discover.collect import DiscoveryOptions
    from rotator.issuers.factory import build_issuers
    from rotator.plan.selection import ALL, narrow

    selection = selection or ALL
    options = DiscoveryOptions(scope_gateway_to_namespace=config.discovery.scope_gateway_to_namespace)
    progress("reading the cluster")
    read = read_cluster(api, options)
    built = issuers if issuers is not None else build_issuers(config, api, clock)
    progress(
        f"planning ({len(read.inventory.secrets)} Secrets, {len(read.inventory.istio_gateways)} + "
        f"{len(read.inventory.kube_gateways)} Gateways)"
    )
    result = plan_with_facts(
        read.inventory, config, clock(), read.findings, built, state_store(api, config), forced=forced
    )
    result = narrow(result, read.inventory, selection)
    if not dry_run:
        progress(f"renewing {sum(1 for c in result.credentials if c.action == 'renew')} credential(s)")
        result = renew(result, read.inventory, config, api, clock, may_write, built, narrowed=selection.narrows)
        if config.pagerduty is not None or config.webhooks:
            # A pass that may not write (another holder has the Lease) still pages what it
            # sees: an expired Secret is an outage whoever should have renewed it. A
            # narrowed pass (-n, -l) did not look at the rest: it never resolves either.
            progress("alerting")
            counts = alert(result, config, api, clock, escalate_only=not may_write() or selection.narrows)
            # zero counts too: every configured sink's series exists from its first pass
            result = replace(result, notifications=tuple((s, r, n) for (s, r), n in sorted(counts.items())))
    return result, read.inventory


def alert(
    result: CheckResult,
    config: Config,
    api: KubeAPI,
    clock: Callable[[], datetime],
    escalate_only: bool = False,
) -> dict[tuple[str, str], int]:
    """PagerDuty and webhooks, after renewals: an outage of either never fails or delays a
    rotation, and one sink's trouble never stops the other. Returns (sink, result) counts.

    Open not-served alerts are probed first, so what is sent is what is true now; the
    alert stage itself never probes."""
    from rotator.apply.verify import still_not_served
    from rotator.report.alerts.sinks import build_sinks, notify_all

    sinks = build_sinks(config, api, clock)
    if config.verify.enabled and sinks.built:
        probed = still_not_served(result, sinks.open_alerts(), config.verify)
        result = replace(result, findings=result.findings + tuple(probed))
    return notify_all(result, sinks, escalate_only)
