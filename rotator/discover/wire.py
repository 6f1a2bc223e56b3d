"""Turns raw Kubernetes objects into the typed, plain inventory the core works on.

This is the one place that knows the wire shapes of the kinds rotator reads. Any
object with a wrong shape becomes an ``invalid-manifest`` finding naming the object and
its source, and is left out; nothing here raises on bad input.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from typing import Any

from rotator.apis import GATEWAY_API_GROUP, ISTIO_GROUP
from rotator.findings import finding
from rotator.model import (
    ConfigMap,
    DestinationRule,
    Finding,
    FrontendValidation,
    GrantFrom,
    GrantTo,
    Inventory,
    IstioGateway,
    IstioServer,
    KubeGateway,
    Listener,
    ObjectRef,
    OwnerRef,
    RawObject,
    ReferenceGrant,
    RouteDestination,
    Secret,
    SecretObjectRef,
    Source,
    VirtualService,
    Workload,
)

ISTIO_VERSIONS = frozenset({"v1alpha3", "v1beta1", "v1"})
GATEWAY_API_VERSIONS = frozenset({"v1", "v1beta1"})
WORKLOAD_KINDS = frozenset({"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"})


class Malformed(Exception):
    """A field has the wrong type; the message names the field path."""


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


# --- typed field access ------------------------------------------------------------


def _map(value: Any, path: str, default: dict[str, Any] | None = None) -> dict[str, Any]:
    if value is None:
        return {} if default is None else default
    if not isinstance(value, dict):
        raise Malformed(f"{path}: expected a mapping, got {type(value).__name__}")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Malformed(f"{path}: expected a list, got {type(value).__name__}")
    return value


def _str(value: Any, path: str, default: str = "") -> str:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Malformed(f"{path}: expected a string, got {type(value).__name__}")
    return str(value)


def _port(value: Any, path: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Malformed(f"{path}: expected an integer port, got {value!r}")
    return value


def _str_map(value: Any, path: str) -> dict[str, str]:
    m = _map(value, path)
    return {str(k): _str(v, f"{path}.{k}") for k, v in m.items()}


def _meta_map(value: Any, path: str, where: str, ref: ObjectRef, problems: list[Finding]) -> dict[str, str]:
    """Labels/annotations: scalar values are coerced (with a finding), so one unquoted
    ``true`` does not make rotator forget a Secret or a gateway workload exists."""
    out: dict[str, str] = {}
    for k, v in _map(value, path).items():
        if isinstance(v, bool):
            out[str(k)] = "true" if v else "false"
        elif isinstance(v, int | float) or v is None:
            out[str(k)] = "" if v is None else str(v)
        else:
            out[str(k)] = _str(v, f"{path}.{k}")
            continue
        problems.append(
            finding(
                "invalid-manifest",
                f"{where}: {ref}: {path}.{k} must be a string (quote it); read as {out[str(k)]!r}",
                ref,
                severity="warning",
            )
        )
    return out


def _str_list(value: Any, path: str) -> tuple[str, ...]:
    items = _list(value, path)
    for i, v in enumerate(items):
        if v is None:
            raise Malformed(f"{path}[{i}]: expected a string, got null")
    return tuple(_str(v, f"{path}[{i}]") for i, v in enumerate(items))


def _item(value: Any, path: str) -> dict[str, Any]:
    """A list element that must be a mapping (``servers: [null]`` is an error, not nothing)."""
    if not isinstance(value, dict):
        raise Malformed(f"{path}: expected a mapping, got {'null' if value is None else type(value).__name__}")
    return value


def _tls_block(value: Any, path: str) -> dict[str, Any] | None:
    """A server's tls block with the credential fields type-checked (the rest is passed through)."""
    if value is None:
        return None
    tls = _map(value, path)
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


# --- per-kind parsers --------------------------------------------------------------

Parsed = tuple[str, Any]


def _parser_for(group: str, version: str, kind: str) -> Any:
    if group == ISTIO_GROUP and version in ISTIO_VERSIONS:
        return {"Gateway": _istio_gateway, "VirtualService": _virtual_service, "DestinationRule": _dest_rule}.get(kind)
    if group == GATEWAY_API_GROUP and version in GATEWAY_API_VERSIONS:
        return {"Gateway": _kube_gateway, "ReferenceGrant": _reference_grant}.get(kind)
    if group == "" and version == "v1":
        return {"Secret": _secret, "ConfigMap": _config_map, "Pod": _pod}.get(kind)
    if group == "apps" and version == "v1" and kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}:
        return _controller
    return None


def _istio_gateway(body: dict[str, Any], meta: dict[str, Any], ns: str, source: Source) -> Parsed:
    spec = _map(body.get("spec"), "spec")
    selector_raw = spec.get("selector")
    selector = None if selector_raw is None else _str_map(selector_raw, "spec.selector")
    servers = []
    for i, s in enumerate(_list(spec.get("servers"), "spec.servers")):
        path = f"spec.servers[{i}]"
        s = _item(s, path)
        port = _map(s.get("port"), f"{path}.port")
        tls = _tls_block(s.get("tls"), f"{path}.tls")
        servers.append(
            IstioServer(
                index=i,
                port=_port(port.get("number"), f"{path}.port.number"),
                port_name=_str(port.get("name"), f"{path}.port.name"),
                protocol=_str(port.get("protocol"), f"{path}.port.protocol").upper(),
                bind=_str(s.get("bind"), f"{path}.bind"),
                hosts=_str_list(s.get("hosts"), f"{path}.hosts"),
                tls=tls,
            )
        )
    return "istio_gateways", IstioGateway(
        namespace=ns,
        name=meta["name"],
        selector=selector,
        servers=tuple(servers),
        creation=_str(meta.get("creationTimestamp"), "metadata.creationTimestamp"),
        source=source,
    )


def _virtual_service(body: dict[str, Any], meta: dict[str, Any], ns: str, source: Source) -> Parsed:
    spec = _map(body.get("spec"), "spec")
    dests: list[RouteDestination] = []
    for proto in ("http", "tls", "tcp"):
        for i, route in enumerate(_list(spec.get(proto), f"spec.{proto}")):
            rpath = f"spec.{proto}[{i}]"
            route = _item(route, rpath)
            for j, rd in enumerate(_list(route.get("route"), f"{rpath}.route")):
                rd = _item(rd, f"{rpath}.route[{j}]")
                d = _map(rd.get("destination"), f"{rpath}.route[{j}].destination")
                dests.append(
                    RouteDestination(
                        host=_str(d.get("host"), f"{rpath}.route[{j}].destination.host"),
                        subset=_str(d.get("subset"), f"{rpath}.route[{j}].destination.subset"),
                        via="route",
                    )
                )
            # (destination, its field path), so an error names the mirror it is in
            mirrors = [(route.get("mirror"), f"{rpath}.mirror")] if route.get("mirror") is not None else []
            for k, m in enumerate(_list(route.get("mirrors"), f"{rpath}.mirrors")):
                mpath = f"{rpath}.mirrors[{k}].destination"
                mirrors.append((_map(m, f"{rpath}.mirrors[{k}]").get("destination"), mpath))
            for m, mpath in mirrors:
                m = _map(m, mpath)
                dests.append(
                    RouteDestination(
                        host=_str(m.get("host"), f"{mpath}.host"),
                        subset=_str(m.get("subset"), f"{mpath}.subset"),
                        via="mirror",
                    )
                )
    return "virtual_services", VirtualService(
        namespace=ns,
        name=meta["name"],
        hosts=_str_list(spec.get("hosts"), "spec.hosts"),
        gateways=_str_list(spec.get("gateways"), "spec.gateways"),
        destinations=tuple(dests),
        source=source,
    )


def _dest_rule(body: dict[str, Any], meta: dict[str, Any], ns: str, source: Source) -> Parsed:
    spec = _map(body.get("spec"), "spec")
    subsets = tuple(
        _str(_item(s, f"spec.subsets[{i}]").get("name"), f"spec.subsets[{i}].name")
        for i, s in enumerate(_list(spec.get("subsets"), "spec.subsets"))
    )
    return "destination_rules", DestinationRule(
        namespace=ns,
        name=meta["name"],
        host=_str(spec.get("host"), "spec.host"),
        subsets=subsets,
        source=source,
    )


def _obj_ref(value: Any, path: str, default_kind: str) -> SecretObjectRef:
    r = _map(value, path)
    ns = r.get("namespace")
    return SecretObjectRef(
        group=_str(r.get("group"), f"{path}.group"),
        kind=_str(r.get("kind"), f"{path}.kind", default_kind),
        namespace=None if ns in (None, "") else _str(ns, f"{path}.namespace"),
        name=_str(r.get("name"), f"{path}.name"),
    )


def _kube_gateway(body: dict[str, Any], meta: dict[str, Any], ns: str, source: Source) -> Parsed:
    spec = _map(body.get("spec"), "spec")
    listeners = []
    for i, lst in enumerate(_list(spec.get("listeners"), "spec.listeners")):
        path = f"spec.listeners[{i}]"
        lst = _item(lst, path)
        tls_raw = lst.get("tls")
        tls = None if tls_raw is None else _map(tls_raw, f"{path}.tls")
        refs: tuple[SecretObjectRef, ...] = ()
        ca_refs: tuple[SecretObjectRef, ...] = ()
        options: dict[str, str] = {}
        mode: str | None = None
        if tls is not None:
            mode = _str(tls.get("mode"), f"{path}.tls.mode", "Terminate")
            refs = tuple(
                _obj_ref(r, f"{path}.tls.certificateRefs[{j}]", "Secret")
                for j, r in enumerate(_list(tls.get("certificateRefs"), f"{path}.tls.certificateRefs"))
            )
            options = _str_map(tls.get("options"), f"{path}.tls.options")
            fv = _map(tls.get("frontendValidation"), f"{path}.tls.frontendValidation")
            ca_refs = tuple(
                _obj_ref(r, f"{path}.tls.frontendValidation.caCertificateRefs[{j}]", "ConfigMap")
                for j, r in enumerate(
                    _list(fv.get("caCertificateRefs"), f"{path}.tls.frontendValidation.caCertificateRefs")
                )
            )
        listeners.append(
            Listener(
                name=_str(lst.get("name"), f"{path}.name"),
                port=_port(lst.get("port"), f"{path}.port"),
                protocol=_str(lst.get("protocol"), f"{path}.protocol").upper(),
                hostname=_str(lst.get("hostname"), f"{path}.hostname"),
                tls_mode=mode,
                certificate_refs=refs,
                options=options,
                ca_refs=ca_refs,
            )
        )
    frontend: list[FrontendValidation] = []
    front = _map(_map(spec.get("tls"), "spec.tls").get("frontend"), "spec.tls.frontend")

    def _validation(v: Any, path: str, port: int | None) -> None:
        val = _map(_map(v, path).get("validation"), f"{path}.validation")
        if not val:
            return
        frontend.append(
            FrontendValidation(
                port=port,
                ca_refs=tuple(
                    _obj_ref(r, f"{path}.validation.caCertificateRefs[{j}]", "ConfigMap")
                    for j, r in enumerate(_list(val.get("caCertificateRefs"), f"{path}.validation.caCertificateRefs"))
                ),
                mode=_str(val.get("mode"), f"{path}.validation.mode", "AllowValidOnly"),
            )
        )

    if front.get("default") is not None:
        _validation(front["default"], "spec.tls.frontend.default", None)
    for j, pp in enumerate(_list(front.get("perPort"), "spec.tls.frontend.perPort")):
        pp = _item(pp, f"spec.tls.frontend.perPort[{j}]")
        _validation(
            pp.get("tls"),
            f"spec.tls.frontend.perPort[{j}].tls",
            _port(pp.get("port"), f"spec.tls.frontend.perPort[{j}].port"),
        )
    return "kube_gateways", KubeGateway(
        namespace=ns,
        name=meta["name"],
        gateway_class=_str(spec.get("gatewayClassName"), "spec.gatewayClassName"),
        listeners=tuple(listeners),
        frontend=tuple(frontend),
        source=source,
    )


def _reference_grant(body: dict[str, Any], meta: dict[str, Any], ns: str, source: Source) -> Parsed:
    spec = _map(body.get("spec"), "spec")
    froms = []
    for i, f in enumerate(_list(spec.get("from"), "spec.from")):
        f = _item(f, f"spec.from[{i}]")
        froms.append(
            GrantFrom(
                group=_str(f.get("group"), f"spec.from[{i}].group"),
                kind=_str(f.get("kind"), f"spec.from[{i}].kind"),
                namespace=_str(f.get("namespace"), f"spec.from[{i}].namespace"),
            )
        )
    tos = []
    for i, t in enumerate(_list(spec.get("to"), "spec.to")):
        t = _item(t, f"spec.to[{i}]")
        name = t.get("name")
        tos.append(
            GrantTo(
                group=_str(t.get("group"), f"spec.to[{i}].group"),
                kind=_str(t.get("kind"), f"spec.to[{i}].kind"),
                name=None if name in (None, "") else _str(name, f"spec.to[{i}].name"),
            )
        )
    return "reference_grants", ReferenceGrant(ns, meta["name"], tuple(froms), tuple(tos))


def _decode_data(
    body: dict[str, Any], ref: ObjectRef, source: Source, binary_key: str = "data"
) -> tuple[dict[str, bytes], list[Finding]]:
    """``data`` is base64 and wins over nothing; ``stringData`` is merged over it, as the API server does."""
    out: dict[str, bytes] = {}
    problems: list[Finding] = []
    for k, v in _map(body.get(binary_key), binary_key).items():
        if v is None:
            out[str(k)] = b""
            continue
        if not isinstance(v, str):
            raise Malformed(f"{binary_key}.{k}: expected a base64 string, got {type(v).__name__}")
        try:
            out[str(k)] = base64.b64decode("".join(v.split()), validate=True)
        except (binascii.Error, ValueError):
            problems.append(
                finding(
                    "invalid-manifest",
                    f"{source}: {ref}: {binary_key}.{k} is not valid base64; the key is left out",
                    ref,
                )
            )
    return out, problems


def _secret(body: dict[str, Any], meta: dict[str, Any], ns: str, source: Source) -> Parsed:
    ref = ObjectRef("Secret", ns, meta["name"])
    data, problems = _decode_data(body, ref, source)
    labels = _meta_map(meta.get("labels"), "metadata.labels", str(source), ref, problems)
    annotations = _meta_map(meta.get("annotations"), "metadata.annotations", str(source), ref, problems)
    for k, v in _map(body.get("stringData"), "stringData").items():
        data[str(k)] = _str(v, f"stringData.{k}").encode()
    owners = []
    for i, o in enumerate(_list(meta.get("ownerReferences"), "metadata.ownerReferences")):
        opath = f"metadata.ownerReferences[{i}]"
        o = _map(o, opath)
        owners.append(
            OwnerRef(
                api_version=_str(o.get("apiVersion"), f"{opath}.apiVersion"),
                kind=_str(o.get("kind"), f"{opath}.kind"),
                name=_str(o.get("name"), f"{opath}.name"),
            )
        )
    secret = Secret(
        namespace=ns,
        name=meta["name"],
        type=_str(body.get("type"), "type", "Opaque"),
        data=data,
        labels=labels,
        annotations=annotations,
        owners=tuple(owners),
        resource_version=_str(meta.get("resourceVersion"), "metadata.resourceVersion"),
        source=source,
        invalid_base64=tuple(
            sorted(str(k) for k, v in _map(body.get("data"), "data").items() if isinstance(v, str) and not _is_b64(v))
        ),
    )
    return "secrets", (secret, problems)


def _is_b64(value: str) -> bool:
    try:
        base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _config_map(body: dict[str, Any], meta: dict[str, Any], ns: str, source: Source) -> Parsed:
    ref = ObjectRef("ConfigMap", ns, meta["name"])
    data = {str(k): _str(v, f"data.{k}").encode() for k, v in _map(body.get("data"), "data").items()}
    binary, problems = _decode_data(body, ref, source, "binaryData")
    data.update(binary)
    return "config_maps", (ConfigMap(ns, meta["name"], data, source), problems)


def _pod(body: dict[str, Any], meta: dict[str, Any], ns: str, source: Source) -> Parsed:
    problems: list[Finding] = []
    ref = ObjectRef("Pod", ns, meta["name"])
    labels = _meta_map(meta.get("labels"), "metadata.labels", str(source), ref, problems)
    return "workloads", (Workload("Pod", ns, meta["name"], labels), problems)


def _controller(body: dict[str, Any], meta: dict[str, Any], ns: str, source: Source) -> Parsed:
    spec = _map(body.get("spec"), "spec")
    template = _map(spec.get("template"), "spec.template")
    tmeta = _map(template.get("metadata"), "spec.template.metadata")
    problems: list[Finding] = []
    ref = ObjectRef(str(body["kind"]), ns, meta["name"])
    labels = _meta_map(tmeta.get("labels"), "spec.template.metadata.labels", str(source), ref, problems)
    return "workloads", (Workload(str(body["kind"]), ns, meta["name"], labels), problems)
