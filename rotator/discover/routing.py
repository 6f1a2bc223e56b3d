"""Which workloads run a classic Gateway, and which VirtualServices bind to it.

Istio reads a Gateway's Secrets in the namespace of the workload that serves it (§2.1),
and a server's hosts reach traffic only through VirtualServices bound to the Gateway; both
answers are needed by discovery (where to look, which hosts to cover) and the checklist."""

from __future__ import annotations

from collections.abc import Iterable

from rotator.apis import GATEWAY_LABEL_KEYS
from rotator.discover.collect import DiscoveryOptions
from rotator.hosts import istio_intersection, strip_namespace
from rotator.model import Inventory, IstioGateway, VirtualService, Workload


def selector_matches(selector: dict[str, str] | None, labels: dict[str, str]) -> bool:
    if not selector:
        return any(k in labels for k in GATEWAY_LABEL_KEYS)
    return all(labels.get(k) == v for k, v in selector.items())


# The last inventory's selections: thousands of Gateways usually share a handful of
# selectors, and matching each against every gateway pod was O(gateways × pods). Keyed by
# the workloads tuple itself (kept here, so its id cannot be reused while cached).
_last: tuple[tuple[Workload, ...], dict[tuple[object, ...], list[Workload]]] = ((), {})


def selected_workloads(gw: IstioGateway, inv: Inventory, options: DiscoveryOptions) -> list[Workload]:
    global _last
    workloads, memo = _last
    if workloads is not inv.workloads:
        workloads, memo = inv.workloads, {}
        _last = (workloads, memo)
    scope = gw.namespace if options.scope_gateway_to_namespace else None
    key = (None if gw.selector is None else tuple(sorted(gw.selector.items())), scope)
    if key not in memo:
        memo[key] = [
            w for w in workloads if selector_matches(gw.selector, w.labels) and (scope is None or w.namespace == scope)
        ]
    return list(memo[key])


def workload_namespaces(gw: IstioGateway, inv: Inventory, options: DiscoveryOptions) -> list[str]:
    """Where Istio will look for this Gateway's Secrets (§2.1–2.2).

    Without workload objects in the input, or when the selector matches none (reported
    by the checklist), the Gateway's own namespace is the best available guess.
    """
    if not inv.workloads_known:
        return [gw.namespace]
    namespaces = sorted({w.namespace for w in selected_workloads(gw, inv, options)})
    return namespaces or [gw.namespace]


def resolve_gateway_name(value: str, vs_namespace: str) -> tuple[str, str] | None:
    """A VirtualService ``gateways`` entry as (namespace, name); None for the mesh."""
    if value == "mesh":
        return None
    ns, slash, name = value.partition("/")
    if slash:
        return (vs_namespace if ns == "." else ns, name)
    if "." in value:  # legacy name.namespace[.svc.cluster.local]
        parts = value.split(".")
        return (parts[1], parts[0])
    return (vs_namespace, value)


def virtual_services_by_gateway(inv: Inventory) -> dict[tuple[str, str], list[VirtualService]]:
    """VirtualServices indexed by the (namespace, name) of each Gateway they bind to: built once."""
    index: dict[tuple[str, str], list[VirtualService]] = {}
    for vs in inv.virtual_services:
        keys = {resolve_gateway_name(g, vs.namespace) for g in vs.gateways}
        for key in keys:
            if key is not None:
                index.setdefault(key, []).append(vs)
    return index


def server_host_applies(server_host: str, gateway_ns: str, vs_ns: str) -> tuple[bool, str]:
    """Does ``server_host`` accept VirtualServices from ``vs_ns``? Returns (applies, dns name)."""
    ns, dns = strip_namespace(server_host)
    if ns == ".":
        ns = gateway_ns
    return ns in ("*", vs_ns), dns


def route_hosts(gw_ns: str, hosts: Iterable[str], services: Iterable[VirtualService]) -> tuple[str, ...]:
    out: dict[str, None] = {}
    hosts = list(hosts)
    for vs in services:
        for vh in vs.hosts:
            for sh in hosts:
                applies, dns = server_host_applies(sh, gw_ns, vs.namespace)
                if applies:
                    inter = istio_intersection(dns, vh)
                    if inter is not None:
                        out.setdefault(inter, None)
    return tuple(out)
