"""Credentials of Gateway API listeners: ``tls.certificateRefs`` and frontend validation
``caCertificateRefs``, with ReferenceGrant deciding what a Gateway may read across
namespaces (§3). A refused reference is a finding, never a credential."""

from __future__ import annotations

from dataclasses import replace

from rotator.apis import CACERT_SUFFIX, GATEWAY_API_GROUP
from rotator.discover.collect import MUTUAL_MODES, Collector
from rotator.findings import finding
from rotator.model import Finding, Inventory, KubeGateway, Listener, Reference, SecretObjectRef


def granted(inv: Inventory, from_ns: str, to_ns: str, kind: str, name: str) -> bool:
    """Is a Gateway in ``from_ns`` allowed to read ``kind``/``name`` in ``to_ns``?"""
    if from_ns == to_ns:
        return True
    for grant in inv.reference_grants:
        if grant.namespace != to_ns:
            continue
        if not any(
            f.group == GATEWAY_API_GROUP and f.kind == "Gateway" and f.namespace == from_ns for f in grant.from_
        ):
            continue
        if any(t.group in ("", "core") and t.kind == kind and t.name in (None, name) for t in grant.to):
            return True
    return False


def _kube_mode(listener: Listener) -> str:
    option = listener.options.get("gateway.istio.io/tls-terminate-mode", "").upper()
    return option if option else "SIMPLE"


def discover_gateway_api(gw: KubeGateway, inv: Inventory, col: Collector) -> None:
    for listener in gw.listeners:
        if listener.tls_mode is None:
            continue
        if listener.tls_mode.lower() == "passthrough":
            if listener.certificate_refs:
                col.findings.append(
                    finding(
                        "credential-ignored",
                        f"{gw.ref} listener {listener.name!r} is Passthrough; its certificateRefs are ignored.",
                        gw.ref,
                    )
                )
            continue
        mode = _kube_mode(listener)
        if mode.startswith("ISTIO_"):
            continue  # the workload's own mesh certificate
        frontend = _frontend_for(gw, listener)
        if frontend is not None:
            ca_refs, fmode = frontend
            mode = "OPTIONAL_MUTUAL" if fmode == "AllowInsecureFallback" else "MUTUAL"
        else:
            ca_refs = ()
        ref = Reference(
            group=GATEWAY_API_GROUP,
            kind="Gateway",
            namespace=gw.namespace,
            name=gw.name,
            listener=listener.name,
            port=listener.port,
            mode=mode,
            hosts=(listener.hostname or "*",),
        )
        secret_refs: list[SecretObjectRef] = []
        if len(listener.certificate_refs) > 2:
            col.findings.append(
                finding(
                    "unsupported-reference",
                    f"{gw.ref} listener {listener.name!r} has {len(listener.certificate_refs)} certificateRefs; "
                    "Istio serves at most 2 (one RSA, one ECDSA).",
                    gw.ref,
                    severity="warning",
                )
            )
        for cref in listener.certificate_refs:
            if cref.group not in ("", "core") or cref.kind != "Secret":
                col.findings.append(
                    finding(
                        "unsupported-reference",
                        f"{gw.ref} listener {listener.name!r}: certificateRef {cref.group or 'core'}/{cref.kind} "
                        f"{cref.name!r} is not a core Secret; Istio marks the listener InvalidCertificateRef.",
                        gw.ref,
                    )
                )
                continue
            secret_refs.append(cref)
            _add_kube_ref(gw, listener, cref, "Secret", cref.name, "server", ref, inv, col)
        if ca_refs:
            if len(ca_refs) > 1:
                col.findings.append(
                    finding(
                        "unsupported-reference",
                        f"{gw.ref}: {len(ca_refs)} caCertificateRefs; Istio supports only one and uses the first.",
                        gw.ref,
                        severity="warning",
                    )
                )
            ca = ca_refs[0]
            if ca.kind not in ("ConfigMap", "Secret") or ca.group not in ("", "core"):
                col.findings.append(
                    finding(
                        "unsupported-reference",
                        f"{gw.ref}: caCertificateRef kind {ca.kind!r} is not a ConfigMap or Secret.",
                        gw.ref,
                    )
                )
            elif ca.kind == "ConfigMap":
                _add_kube_ref(gw, listener, ca, "ConfigMap", ca.name, "client-ca", ref, inv, col)
            else:
                _add_kube_ref(
                    gw,
                    listener,
                    ca,
                    "Secret",
                    _ca_secret(inv, ca.namespace or gw.namespace, ca.name),
                    "client-ca",
                    ref,
                    inv,
                    col,
                )
        elif mode in MUTUAL_MODES and secret_refs:
            base = secret_refs[0]
            _add_kube_ref(
                gw,
                listener,
                base,
                "Secret",
                _ca_secret(inv, base.namespace or gw.namespace, base.name),
                "client-ca",
                ref,
                inv,
                col,
            )


def _ca_secret(inv: Inventory, ns: str, name: str) -> str:
    separate = name + CACERT_SUFFIX
    return separate if inv.secret(ns, separate) is not None else name


def _frontend_for(gw: KubeGateway, listener: Listener) -> tuple[tuple[SecretObjectRef, ...], str] | None:
    if listener.ca_refs:
        return listener.ca_refs, "AllowValidOnly"
    per_port = [f for f in gw.frontend if f.port is not None and f.port == listener.port]
    default = [f for f in gw.frontend if f.port is None]
    chosen = per_port or default
    if not chosen or not chosen[0].ca_refs:
        return None
    return chosen[0].ca_refs, chosen[0].mode


def _add_kube_ref(
    gw: KubeGateway,
    listener: Listener,
    obj: SecretObjectRef,
    kind: str,
    name: str,
    role: str,
    ref: Reference,
    inv: Inventory,
    col: Collector,
) -> None:
    ns = obj.namespace or gw.namespace
    extra: list[Finding] = []
    if not granted(inv, gw.namespace, ns, kind, obj.name):
        extra.append(
            finding(
                "reference-not-permitted",
                f"{gw.ref} listener {listener.name!r} references {kind} {ns}/{obj.name} across namespaces, "
                f"and no ReferenceGrant in {ns!r} allows Gateways from {gw.namespace!r}; Istio sets "
                "ResolvedRefs=False (RefNotPermitted) and does not program the listener.",
                gw.ref,
            )
        )
    col.add(kind, ns, name, role, replace(ref), *extra)
