"""Parsers for Gateway API (``gateway.networking.k8s.io``) Gateways and ReferenceGrants."""

from __future__ import annotations

from typing import Any

from rotator.discover.wire.fields import Parsed, as_item, as_list, as_map, as_port, as_str, as_str_map
from rotator.model import (
    FrontendValidation,
    GrantFrom,
    GrantTo,
    KubeGateway,
    Listener,
    ReferenceGrant,
    SecretObjectRef,
    Source,
)

GATEWAY_API_VERSIONS = frozenset({"v1", "v1beta1"})


def obj_ref(value: Any, path: str, default_kind: str) -> SecretObjectRef:
    r = as_map(value, path)
    ns = r.get("namespace")
    return SecretObjectRef(
        group=as_str(r.get("group"), f"{path}.group"),
        kind=as_str(r.get("kind"), f"{path}.kind", default_kind),
        namespace=None if ns in (None, "") else as_str(ns, f"{path}.namespace"),
        name=as_str(r.get("name"), f"{path}.name"),
    )


def parse_kube_gateway(body: dict[str, Any], meta: dict[str, Any], ns: str, source: Source) -> Parsed:
    spec = as_map(body.get("spec"), "spec")
    listeners = []
    for i, lst in enumerate(as_list(spec.get("listeners"), "spec.listeners")):
        path = f"spec.listeners[{i}]"
        lst = as_item(lst, path)
        tls_raw = lst.get("tls")
        tls = None if tls_raw is None else as_map(tls_raw, f"{path}.tls")
        refs: tuple[SecretObjectRef, ...] = ()
        ca_refs: tuple[SecretObjectRef, ...] = ()
        options: dict[str, str] = {}
        mode: str | None = None
        if tls is not None:
            mode = as_str(tls.get("mode"), f"{path}.tls.mode", "Terminate")
            refs = tuple(
                obj_ref(r, f"{path}.tls.certificateRefs[{j}]", "Secret")
                for j, r in enumerate(as_list(tls.get("certificateRefs"), f"{path}.tls.certificateRefs"))
            )
            options = as_str_map(tls.get("options"), f"{path}.tls.options")
            fv = as_map(tls.get("frontendValidation"), f"{path}.tls.frontendValidation")
            ca_refs = tuple(
                obj_ref(r, f"{path}.tls.frontendValidation.caCertificateRefs[{j}]", "ConfigMap")
                for j, r in enumerate(
                    as_list(fv.get("caCertificateRefs"), f"{path}.tls.frontendValidation.caCertificateRefs")
                )
            )
        listeners.append(
            Listener(
                name=as_str(lst.get("name"), f"{path}.name"),
                port=as_port(lst.get("port"), f"{path}.port"),
                protocol=as_str(lst.get("protocol"), f"{path}.protocol").upper(),
                hostname=as_str(lst.get("hostname"), f"{path}.hostname"),
                tls_mode=mode,
                certificate_refs=refs,
                options=options,
                ca_refs=ca_refs,
            )
        )
    frontend: list[FrontendValidation] = []
    front = as_map(as_map(spec.get("tls"), "spec.tls").get("frontend"), "spec.tls.frontend")

    def _validation(v: Any, path: str, port: int | None) -> None:
        val = as_map(as_map(v, path).get("validation"), f"{path}.validation")
        if not val:
            return
        frontend.append(
            FrontendValidation(
                port=port,
                ca_refs=tuple(
                    obj_ref(r, f"{path}.validation.caCertificateRefs[{j}]", "ConfigMap")
                    for j, r in enumerate(as_list(val.get("caCertificateRefs"), f"{path}.validation.caCertificateRefs"))
                ),
                mode=as_str(val.get("mode"), f"{path}.validation.mode", "AllowValidOnly"),
            )
        )

    if front.get("default") is not None:
        _validation(front["default"], "spec.tls.frontend.default", None)
    for j, pp in enumerate(as_list(front.get("perPort"), "spec.tls.frontend.perPort")):
        pp = as_item(pp, f"spec.tls.frontend.perPort[{j}]")
        _validation(
            pp.get("tls"),
            f"spec.tls.frontend.perPort[{j}].tls",
            as_port(pp.get("port"), f"spec.tls.frontend.perPort[{j}].port"),
        )
    return "kube_gateways", KubeGateway(
        namespace=ns,
        name=meta["name"],
        gateway_class=as_str(spec.get("gatewayClassName"), "spec.gatewayClassName"),
        listeners=tuple(listeners),
        frontend=tuple(frontend),
        source=source,
    )


def parse_reference_grant(body: dict[str, Any], meta: dict[str, Any], ns: str, source: Source) -> Parsed:
    spec = as_map(body.get("spec"), "spec")
    froms = []
    for i, f in enumerate(as_list(spec.get("from"), "spec.from")):
        f = as_item(f, f"spec.from[{i}]")
        froms.append(
            GrantFrom(
                group=as_str(f.get("group"), f"spec.from[{i}].group"),
                kind=as_str(f.get("kind"), f"spec.from[{i}].kind"),
                namespace=as_str(f.get("namespace"), f"spec.from[{i}].namespace"),
            )
        )
    tos = []
    for i, t in enumerate(as_list(spec.get("to"), "spec.to")):
        t = as_item(t, f"spec.to[{i}]")
        name = t.get("name")
        tos.append(
            GrantTo(
                group=as_str(t.get("group"), f"spec.to[{i}].group"),
                kind=as_str(t.get("kind"), f"spec.to[{i}].kind"),
                name=None if name in (None, "") else as_str(name, f"spec.to[{i}].name"),
            )
        )
    return "reference_grants", ReferenceGrant(ns, meta["name"], tuple(froms), tuple(tos))
