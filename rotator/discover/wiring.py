"""The user's checklist as findings: selectors, VirtualService binding, subsets, conflicts.

These mirror ``istioctl analyze`` (IST0101, IST0132, IST0145) where it is right, and
cover its gaps: every selected namespace, not just the first pod's (§6 of the note).
"""

from __future__ import annotations

from itertools import combinations

from rotator.discover.collect import DiscoveryOptions
from rotator.discover.routing import resolve_gateway_name, selected_workloads, selector_matches, server_host_applies
from rotator.findings import finding
from rotator.hosts import istio_matches, strip_namespace
from rotator.model import Finding, Inventory, IstioGateway

CLUSTER_SUFFIX = "svc.cluster.local"


def check(inv: Inventory, options: DiscoveryOptions | None = None) -> list[Finding]:
    options = options or DiscoveryOptions()
    out: list[Finding] = []
    out += selectors(inv, options)
    out += virtual_service_gateways(inv)
    out += virtual_service_hosts(inv)
    out += subsets(inv)
    out += conflicting_gateways(inv, options)
    return out


def selectors(inv: Inventory, options: DiscoveryOptions) -> list[Finding]:
    if not inv.workloads_known:
        return []  # said once by discovery ("no-workloads"), not once per Gateway
    out = []
    for gw in inv.istio_gateways:
        if not selected_workloads(gw, inv, options):
            sel = ", ".join(f"{k}={v}" for k, v in sorted((gw.selector or {}).items())) or "(empty)"
            scope = f" in namespace {gw.namespace!r}" if options.scope_gateway_to_namespace else ""
            out.append(
                finding(
                    "selector-no-workload",
                    f"{gw.ref}: selector {sel} matches no gateway workload{scope}; no proxy serves its servers "
                    "and its Secrets are checked in the Gateway's namespace only.",
                    gw.ref,
                )
            )
    return out


def _gateway_keys(inv: Inventory) -> set[tuple[str, str]]:
    return {(g.namespace, g.name) for g in inv.istio_gateways}


def virtual_service_gateways(inv: Inventory) -> list[Finding]:
    known = _gateway_keys(inv)
    out = []
    for vs in inv.virtual_services:
        for g in vs.gateways:
            key = resolve_gateway_name(g, vs.namespace)
            if key is not None and key not in known:
                out.append(
                    finding(
                        "vs-gateway-not-found",
                        f"{vs.ref} names gateway {g!r} (resolved to {key[0]}/{key[1]}), which does not exist; "
                        "its routes are not served there.",
                        vs.ref,
                    )
                )
    return out


def virtual_service_hosts(inv: Inventory) -> list[Finding]:
    out = []
    by_key = {(g.namespace, g.name): g for g in inv.istio_gateways}
    for vs in inv.virtual_services:
        for g in vs.gateways:
            key = resolve_gateway_name(g, vs.namespace)
            gw = by_key.get(key) if key else None
            if gw is None:
                continue
            for host in vs.hosts:
                if not _served(gw, host, vs.namespace):
                    out.append(
                        finding(
                            "vs-host-not-in-gateway",
                            f"{vs.ref}: host {host!r} matches no host of {gw.ref}; Istio drops it for that gateway.",
                            vs.ref,
                        )
                    )
    return out


def _served(gw: IstioGateway, host: str, vs_ns: str) -> bool:
    for server in gw.servers:
        for sh in server.hosts:
            applies, dns = server_host_applies(sh, gw.namespace, vs_ns)
            if applies and istio_matches(dns, host):
                return True
    return False


def fqdn(host: str, namespace: str) -> str:
    """A service host as Istio resolves it for subset lookup: short names in ``namespace``."""
    if "*" in host:
        return host
    parts = host.split(".")
    if len(parts) == 1:
        return f"{host}.{namespace}.{CLUSTER_SUFFIX}"
    if len(parts) == 2:
        return f"{host}.{CLUSTER_SUFFIX}"
    return host


def subsets(inv: Inventory) -> list[Finding]:
    defined: dict[str, set[str]] = {}
    for dr in inv.destination_rules:
        defined.setdefault(fqdn(dr.host, dr.namespace), set()).update(dr.subsets)
    out = []
    seen: set[tuple[str, str, str, str]] = set()
    for vs in inv.virtual_services:
        for d in vs.destinations:
            if not d.subset:
                continue
            host = fqdn(d.host, vs.namespace)
            key = (vs.namespace, vs.name, host, d.subset)
            if key in seen:
                continue
            seen.add(key)
            if d.subset not in defined.get(host, set()):
                have = sorted(defined.get(host, set()))
                out.append(
                    finding(
                        "subset-not-defined",
                        f"{vs.ref}: {d.via} destination {d.host!r} uses subset {d.subset!r}, which no "
                        f"DestinationRule for {host} defines"
                        + (f" (defined: {', '.join(have)})" if have else " (no DestinationRule for that host)")
                        + "; such requests fail with 503 (no healthy upstream).",
                        vs.ref,
                    )
                )
    return out


def _workload_keys(gw: IstioGateway, inv: Inventory, options: DiscoveryOptions) -> frozenset[tuple[str, str, str]]:
    return frozenset((w.kind, w.namespace, w.name) for w in selected_workloads(gw, inv, options))


def _overlap(
    a: IstioGateway,
    b: IstioGateway,
    inv: Inventory,
    workloads: dict[tuple[str, str], frozenset[tuple[str, str, str]]],
) -> bool:
    if inv.workloads_known and inv.workloads:
        return bool(workloads[(a.namespace, a.name)] & workloads[(b.namespace, b.name)])
    sa, sb = a.selector or {}, b.selector or {}
    # Without workloads: selectors overlap when one is contained in the other.
    return selector_matches(sa, sb) if len(sa) <= len(sb) else selector_matches(sb, sa)


def conflicting_gateways(inv: Inventory, options: DiscoveryOptions) -> list[Finding]:
    """Pairs of Gateways that claim the same (port, bind, host) on shared workloads.

    Servers are bucketed by (port, bind, host) first, so only Gateways that share a
    bucket are compared: linear in the number of servers, not quadratic in Gateways.
    Istio keeps the Gateway that sorts first by creationTimestamp, then name, then
    namespace (§7.2.6), so the other one is the one reported.
    """
    order = sorted(inv.istio_gateways, key=lambda g: (g.creation, g.name, g.namespace))
    rank = {(g.namespace, g.name): i for i, g in enumerate(order)}
    buckets: dict[tuple[int, str, str], dict[int, bool]] = {}
    for gw in order:
        for server in gw.servers:
            if server.port is None:
                continue
            for host in server.hosts:
                key = (server.port, server.bind, _norm(host, gw.namespace))
                holders = buckets.setdefault(key, {})
                i = rank[(gw.namespace, gw.name)]
                holders[i] = holders.get(i, False) or server.tls is not None
    workloads = (
        {(g.namespace, g.name): _workload_keys(g, inv, options) for g in order}
        if inv.workloads_known and inv.workloads
        else {}
    )
    clashes: dict[tuple[int, int], dict[tuple[int, str], bool]] = {}
    for (port, _bind, host), holders in buckets.items():
        if len(holders) < 2:
            continue
        for i, j in combinations(sorted(holders), 2):
            if _overlap(order[i], order[j], inv, workloads):
                pair = clashes.setdefault((i, j), {})
                pair[(port, host)] = pair.get((port, host), False) or (holders[i] and holders[j])
    out = []
    for (i, j), items in sorted(clashes.items()):
        a, b = order[i], order[j]
        for (port, host), tls in sorted(items.items()):
            # istiod drops duplicate TLS servers whole (§7.2.6); plain HTTP servers are
            # merged, so there the conflict is ambiguous routing, not a lost certificate.
            effect = (
                "Istio keeps the older one and drops the other's server, certificate included"
                if tls
                else "istioctl analyze reports IST0145 and which routes win is ambiguous"
            )
            out.append(
                finding(
                    "conflicting-gateways",
                    f"{b.ref} and {a.ref} both serve host {host!r} on port {port} for the same gateway "
                    f"workloads; {effect}.",
                    b.ref,
                )
            )
    return out


def _norm(host: str, gateway_ns: str) -> str:
    """istiod's sanitizeServerHostNamespace (§7.1), applied before it compares hosts.

    ``./h`` names the Gateway's own namespace, so the same ``./h`` in two namespaces is
    two different hosts, and ``./h`` equals ``<gateway ns>/h``; ``*/h`` is just ``h``.
    """
    ns, name = strip_namespace(host)
    if ns == "*":
        return name
    return f"{gateway_ns}/{name}" if ns == "." else host
