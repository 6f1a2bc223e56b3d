"""Turns raw Kubernetes objects into the typed, plain inventory the core works on.

This is the one place that knows the wire shapes of the kinds rotator reads. Any
object with a wrong shape becomes an ``invalid-manifest`` finding naming the object and
its source, and is left out; nothing here raises on bad input.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rotator.apis import GATEWAY_API_GROUP, ISTIO_GROUP
from rotator.discover.wire.core import WORKLOAD_KINDS, parse_config_map, parse_controller, parse_pod, parse_secret
from rotator.discover.wire.fields import Malformed
from rotator.discover.wire.gateway_api import GATEWAY_API_VERSIONS, parse_kube_gateway, parse_reference_grant
from rotator.discover.wire.istio import (
    ISTIO_VERSIONS,
    parse_destination_rule,
    parse_istio_gateway,
    parse_virtual_service,
)
from rotator.findings import finding
from rotator.model import Finding, Inventory, ObjectRef, RawObject, Source


def build_inventory(
    objects: Iterable[RawObject],
    default_namespace: str = "default",
    workloads_known: bool | None = None,
) -> tuple[Inventory, list[Finding]]:
    """Parse every object it understands; ``workloads_known`` defaults to "any workload seen"."""
    buckets: dict[str, list[Any]] = {
        k: []
        for k in (
            "istio_gateways",
            "kube_gateways",
            "virtual_services",
            "destination_rules",
            "reference_grants",
            "secrets",
            "config_maps",
            "workloads",
        )
    }
    findings: list[Finding] = []
    unreadable: dict[tuple[str, str, str], tuple[str, str]] = {}
    seen_workload_objects = False
    given: dict[tuple[str, str, str, str], str] = {}  # (group, kind, namespace, name) -> where
    for raw in objects:
        body = raw.body
        api_version = body.get("apiVersion")
        kind = body.get("kind")
        meta = body.get("metadata")
        label = _label(body, raw.source, default_namespace)
        if not isinstance(kind, str) or not isinstance(api_version, str):
            findings.append(
                finding(
                    "invalid-manifest",
                    f"{raw.source}: object without a string apiVersion and kind",
                    ObjectRef("File", "", str(raw.source)),
                )
            )
            continue
        group, _, version = api_version.rpartition("/")
        parser = _parser_for(group, version, kind)
        if parser is None:
            continue  # unknown kinds are not our business
        if kind in WORKLOAD_KINDS:
            seen_workload_objects = True
        try:
            if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
                raise Malformed("metadata.name: required string")
            namespace = meta.get("namespace") or default_namespace
            if not isinstance(namespace, str):
                raise Malformed("metadata.namespace: expected a string")
            identity = (group, kind, namespace, meta["name"])
            if identity in given:
                # the same object twice (a file and its copy, two overlapping folders):
                # counted once, or every finding about it would be doubled
                findings.append(
                    finding(
                        "duplicate-object",
                        f"{raw.source}: {kind} {namespace}/{meta['name']} was given already ({given[identity]}); "
                        "this copy is ignored.",
                        ObjectRef(kind, namespace, meta["name"]),
                    )
                )
                continue
            given[identity] = str(raw.source)
            bucket, obj = parser(body, meta, namespace, raw.source)
        except Exception as exc:  # Malformed, or a parser bug: is this object's finding, never the pass's end
            message = (
                f"{raw.source}: {label}: {exc}"
                if isinstance(exc, Malformed)
                else (f"{raw.source}: {label}: could not be read ({type(exc).__name__}: {str(exc)[:200]})")
            )
            ref = ObjectRef(kind, _ns_of(meta, default_namespace), _name_of(meta) or str(raw.source))
            findings.append(finding("invalid-manifest", message, ref))
            if kind in ("Secret", "ConfigMap") and _name_of(meta):
                # It exists but could not be read: say so on its credential, never "not found".
                unreadable[(kind, ref.namespace, ref.name)] = ("invalid-manifest", message)
            continue
        if isinstance(obj, tuple):  # a parser may return (object, non-fatal findings)
            obj, extra = obj
            findings.extend(extra)
        buckets[bucket].append(obj)
    inventory = Inventory(
        istio_gateways=tuple(buckets["istio_gateways"]),
        kube_gateways=tuple(buckets["kube_gateways"]),
        virtual_services=tuple(buckets["virtual_services"]),
        destination_rules=tuple(buckets["destination_rules"]),
        reference_grants=tuple(buckets["reference_grants"]),
        secrets=tuple(buckets["secrets"]),
        config_maps=tuple(buckets["config_maps"]),
        workloads=tuple(buckets["workloads"]),
        workloads_known=seen_workload_objects if workloads_known is None else workloads_known,
        unreadable=unreadable,
    )
    return inventory, findings


def _label(body: dict[str, Any], source: Source, default_ns: str) -> str:
    meta = body.get("metadata")
    kind = body.get("kind") if isinstance(body.get("kind"), str) else "object"
    name = _name_of(meta)
    if name:
        return f"{kind} {_ns_of(meta, default_ns)}/{name}"
    return f"{kind} (unnamed)"


def _name_of(meta: Any) -> str:
    if isinstance(meta, dict) and isinstance(meta.get("name"), str):
        return str(meta["name"])
    return ""


def _ns_of(meta: Any, default_ns: str) -> str:
    if isinstance(meta, dict) and isinstance(meta.get("namespace"), str) and meta["namespace"]:
        return str(meta["namespace"])
    return default_ns


def _parser_for(group: str, version: str, kind: str) -> Any:
    if group == ISTIO_GROUP and version in ISTIO_VERSIONS:
        return {
            "Gateway": parse_istio_gateway,
            "VirtualService": parse_virtual_service,
            "DestinationRule": parse_destination_rule,
        }.get(kind)
    if group == GATEWAY_API_GROUP and version in GATEWAY_API_VERSIONS:
        return {"Gateway": parse_kube_gateway, "ReferenceGrant": parse_reference_grant}.get(kind)
    if group == "" and version == "v1":
        return {"Secret": parse_secret, "ConfigMap": parse_config_map, "Pod": parse_pod}.get(kind)
    if group == "apps" and version == "v1" and kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}:
        return parse_controller
    return None
