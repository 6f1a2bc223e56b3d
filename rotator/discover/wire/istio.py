"""Parsers for ``networking.istio.io`` Gateways, VirtualServices and DestinationRules."""

from __future__ import annotations

from typing import Any

from rotator.discover.wire.fields import (
    Malformed,
    Parsed,
    as_item,
    as_list,
    as_map,
    as_port,
    as_str,
    as_str_list,
    as_str_map,
)
from rotator.model import DestinationRule, IstioGateway, IstioServer, RouteDestination, Source, VirtualService

ISTIO_VERSIONS = frozenset({"v1alpha3", "v1beta1", "v1"})


def tls_block(value: Any, path: str) -> dict[str, Any] | None:
    """A server's tls block with the credential fields type-checked (the rest is passed through)."""
    if value is None:
        return None
    tls = as_map(value, path)
    for key in ("mode", "credentialName", "caCertCredentialName"):
        if tls.get(key) is not None and not isinstance(tls[key], str):
            raise Malformed(f"{path}.{key}: expected a string, got {type(tls[key]).__name__}")
    if tls.get("credentialNames") is not None:
        names = tls["credentialNames"]
        if not isinstance(names, list):
            raise Malformed(f"{path}.credentialNames: expected a list of names, got {type(names).__name__}")
        for i, n in enumerate(names):
            if not isinstance(n, str):
                raise Malformed(f"{path}.credentialNames[{i}]: expected a string, got {type(n).__name__}")
    return tls


def parse_istio_gateway(body: dict[str, Any], meta: dict[str, Any], ns: str, source: Source) -> Parsed:
    spec = as_map(body.get("spec"), "spec")
    selector_raw = spec.get("selector")
    selector = None if selector_raw is None else as_str_map(selector_raw, "spec.selector")
    servers = []
    for i, s in enumerate(as_list(spec.get("servers"), "spec.servers")):
        path = f"spec.servers[{i}]"
        s = as_item(s, path)
        port = as_map(s.get("port"), f"{path}.port")
        tls = tls_block(s.get("tls"), f"{path}.tls")
        servers.append(
            IstioServer(
                index=i,
                port=as_port(port.get("number"), f"{path}.port.number"),
                port_name=as_str(port.get("name"), f"{path}.port.name"),
                protocol=as_str(port.get("protocol"), f"{path}.port.protocol").upper(),
                bind=as_str(s.get("bind"), f"{path}.bind"),
                hosts=as_str_list(s.get("hosts"), f"{path}.hosts"),
                tls=tls,
            )
        )
    return "istio_gateways", IstioGateway(
        namespace=ns,
        name=meta["name"],
        selector=selector,
        servers=tuple(servers),
        creation=as_str(meta.get("creationTimestamp"), "metadata.creationTimestamp"),
        source=source,
    )


def parse_virtual_service(body: dict[str, Any], meta: dict[str, Any], ns: str, source: Source) -> Parsed:
    spec = as_map(body.get("spec"), "spec")
    dests: list[RouteDestination] = []
    for proto in ("http", "tls", "tcp"):
        for i, route in enumerate(as_list(spec.get(proto), f"spec.{proto}")):
            rpath = f"spec.{proto}[{i}]"
            route = as_item(route, rpath)
            for j, rd in enumerate(as_list(route.get("route"), f"{rpath}.route")):
                rd = as_item(rd, f"{rpath}.route[{j}]")
                d = as_map(rd.get("destination"), f"{rpath}.route[{j}].destination")
                dests.append(
                    RouteDestination(
                        host=as_str(d.get("host"), f"{rpath}.route[{j}].destination.host"),
                        subset=as_str(d.get("subset"), f"{rpath}.route[{j}].destination.subset"),
                        via="route",
                    )
                )
            # (destination, its field path), so an error names the mirror it is in
            mirrors = [(route.get("mirror"), f"{rpath}.mirror")] if route.get("mirror") is not None else []
            for k, m in enumerate(as_list(route.get("mirrors"), f"{rpath}.mirrors")):
                mpath = f"{rpath}.mirrors[{k}].destination"
                mirrors.append((as_map(m, f"{rpath}.mirrors[{k}]").get("destination"), mpath))
            for m, mpath in mirrors:
                m = as_map(m, mpath)
                dests.append(
                    RouteDestination(
                        host=as_str(m.get("host"), f"{mpath}.host"),
                        subset=as_str(m.get("subset"), f"{mpath}.subset"),
                        via="mirror",
                    )
                )
    return "virtual_services", VirtualService(
        namespace=ns,
        name=meta["name"],
        hosts=as_str_list(spec.get("hosts"), "spec.hosts"),
        gateways=as_str_list(spec.get("gateways"), "spec.gateways"),
        destinations=tuple(dests),
        source=source,
    )


def parse_destination_rule(body: dict[str, Any], meta: dict[str, Any], ns: str, source: Source) -> Parsed:
    spec = as_map(body.get("spec"), "spec")
    subsets = tuple(
        as_str(as_item(s, f"spec.subsets[{i}]").get("name"), f"spec.subsets[{i}].name")
        for i, s in enumerate(as_list(spec.get("subsets"), "spec.subsets"))
    )
    return "destination_rules", DestinationRule(
        namespace=ns,
        name=meta["name"],
        host=as_str(spec.get("host"), "spec.host"),
        subsets=subsets,
        source=source,
    )
