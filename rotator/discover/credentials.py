"""Finds every credential the Gateways read, following Istio's own resolution rules.

Pure: an ``Inventory`` in, credential specs and findings out. The rules (with their
sources) are in the reference note ``istio-gateway-credentials.md``; the section numbers
in comments point there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from rotator.apis import CACERT_SUFFIX, GATEWAY_API_GROUP, GATEWAY_LABEL_KEYS, ISTIO_GROUP
from rotator.findings import finding, internal_error
from rotator.hosts import istio_intersection, strip_namespace
from rotator.model import (
    CredentialSpec,
    Finding,
    Inventory,
    IstioGateway,
    IstioServer,
    KubeGateway,
    Listener,
    ObjectRef,
    Reference,
    SecretObjectRef,
    VirtualService,
    Workload,
)

SECRET_MODES = frozenset({"SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL"})
MUTUAL_MODES = frozenset({"MUTUAL", "OPTIONAL_MUTUAL"})
PASSTHROUGH_MODES = frozenset({"PASSTHROUGH", "AUTO_PASSTHROUGH"})


# Findings about the input as a whole still name an object, as the report contract asks.
INPUT_GATEWAYS = ObjectRef("Input", "", "gateways")
INPUT_WORKLOADS = ObjectRef("Input", "", "workloads")


@dataclass(frozen=True)
class DiscoveryOptions:
    # Mirrors istiod's PILOT_SCOPE_GATEWAY_TO_NAMESPACE (§2.2).
    scope_gateway_to_namespace: bool = False


@dataclass(frozen=True)
class CredentialName:
    scheme: str  # "kubernetes", "kubernetes-gateway", "configmap", "builtin", "sds"
    namespace: str | None
    name: str


def parse_credential_name(value: str) -> CredentialName:
    """Istio's ``credentialName`` spellings (§1.3)."""
    scheme, sep, rest = value.partition("://")
    if not sep:
        scheme, rest = "kubernetes", value
    ns, slash, name = rest.partition("/")
    if not slash:
        return CredentialName(scheme, None, rest)
    return CredentialName(scheme, ns, name)


# --- workloads ---------------------------------------------------------------------


def selector_matches(selector: dict[str, str] | None, labels: dict[str, str]) -> bool:
    if not selector:
        return any(k in labels for k in GATEWAY_LABEL_KEYS)
    return all(labels.get(k) == v for k, v in selector.items())


def selected_workloads(gw: IstioGateway, inv: Inventory, options: DiscoveryOptions) -> list[Workload]:
    return [
        w
        for w in inv.workloads
        if selector_matches(gw.selector, w.labels)
        and (not options.scope_gateway_to_namespace or w.namespace == gw.namespace)
    ]


def workload_namespaces(gw: IstioGateway, inv: Inventory, options: DiscoveryOptions) -> list[str]:
    """Where Istio will look for this Gateway's Secrets (§2.1–2.2).

    Without workload objects in the input, or when the selector matches none (reported
    by the checklist), the Gateway's own namespace is the best available guess.
    """
    if not inv.workloads_known:
        return [gw.namespace]
    namespaces = sorted({w.namespace for w in selected_workloads(gw, inv, options)})
    return namespaces or [gw.namespace]


# --- VirtualService binding (§7.2) -------------------------------------------------


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


# --- accumulation ------------------------------------------------------------------


@dataclass
class _Acc:
    references: dict[Reference, None] = field(default_factory=dict)
    findings: dict[Finding, None] = field(default_factory=dict)


@dataclass
class _Collector:
    specs: dict[tuple[str, str, str, str], _Acc] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    def add(self, kind: str, ns: str, name: str, role: str, ref: Reference, *extra: Finding) -> None:
        acc = self.specs.setdefault((kind, ns, name, role), _Acc())
        acc.references.setdefault(ref, None)
        for f in extra:
            acc.findings.setdefault(f, None)

    def result(self) -> list[CredentialSpec]:
        out = []
        for (kind, ns, name, role), acc in sorted(self.specs.items()):
            refs = tuple(sorted(acc.references, key=lambda r: (r.namespace, r.name, r.port or 0, r.listener)))
            out.append(
                CredentialSpec(
                    kind=kind,  # type: ignore[arg-type]
                    namespace=ns,
                    name=name,
                    role=role,  # type: ignore[arg-type]
                    references=refs,
                    findings=tuple(acc.findings),
                )
            )
        return out


def discover(inv: Inventory, options: DiscoveryOptions | None = None) -> tuple[list[CredentialSpec], list[Finding]]:
    options = options or DiscoveryOptions()
    col = _Collector()
    if not inv.istio_gateways and not inv.kube_gateways:
        col.findings.append(
            finding(
                "no-gateways",
                "the input has no Istio or Gateway API Gateway: no credential was checked. Check the input "
                "(files, namespace, kubeconfig context).",
                INPUT_GATEWAYS,
            )
        )
    if inv.istio_gateways and not inv.workloads_known:
        col.findings.append(
            finding(
                "no-workloads",
                "the input has no Pods, Deployments, StatefulSets or DaemonSets, so gateway workload "
                "namespaces are unknown: each classic Gateway's Secrets are checked in the Gateway's own "
                "namespace. Add the gateway Deployment to the input (or read the live cluster) to check "
                "where Istio really looks.",
                INPUT_WORKLOADS,
            )
        )
    by_gateway = virtual_services_by_gateway(inv)
    for gw in inv.istio_gateways:
        try:
            _discover_istio(gw, inv, options, col, by_gateway.get((gw.namespace, gw.name), []))
        except Exception as exc:  # one Gateway's surprise must not hide the others' credentials
            col.findings.append(internal_error("discovery", gw.ref, exc))
    for kgw in inv.kube_gateways:
        try:
            _discover_kube(kgw, inv, col)
        except Exception as exc:
            col.findings.append(internal_error("discovery", kgw.ref, exc))
    return col.result(), col.findings


def _discover_istio(
    gw: IstioGateway,
    inv: Inventory,
    options: DiscoveryOptions,
    col: _Collector,
    services: list[VirtualService],
) -> None:
    namespaces = workload_namespaces(gw, inv, options)
    for server in gw.servers:
        if server.tls is None:
            continue
        tls = server.tls
        mode_raw = tls.get("mode")
        mode = str(mode_raw).upper() if mode_raw else "PASSTHROUGH"
        names = _credential_names(tls)
        if tls.get("credentialName") and tls.get("credentialNames"):
            col.findings.append(
                finding(
                    "invalid-manifest",
                    f"{_where(gw)}: {gw.ref} server {server.port_name or server.index} sets both credentialName and "
                    "credentialNames; istiod rejects the Gateway (only one certificate source may be set). "
                    "rotator reads credentialNames.",
                    gw.ref,
                )
            )
        ca_name = tls.get("caCertCredentialName")
        ca_name = str(ca_name) if ca_name else None
        where = f"server {server.port_name or server.index} (port {server.port})"
        if mode in PASSTHROUGH_MODES:
            if names or ca_name:
                why = "the tls block sets no mode, which means PASSTHROUGH" if not mode_raw else f"mode {mode}"
                col.findings.append(
                    finding(
                        "credential-ignored",
                        f"{gw.ref} {where} names credential {', '.join(names or [ca_name or ''])!r}, but "
                        f"{why}: Istio does not terminate TLS there and ignores the certificate. "
                        "Set mode: SIMPLE (or MUTUAL) to serve it.",
                        gw.ref,
                    )
                )
            continue
        if mode == "ISTIO_MUTUAL":
            if names or ca_name:
                col.findings.append(
                    finding(
                        "credential-ignored",
                        f"{gw.ref} {where}: ISTIO_MUTUAL uses the mesh certificate and rejects credentialName; "
                        "istiod refuses this Gateway. Remove the credential or use MUTUAL.",
                        gw.ref,
                        severity="error",
                    )
                )
            continue
        if mode not in SECRET_MODES:
            col.findings.append(finding("invalid-manifest", f"{gw.ref} {where}: unknown TLS mode {mode_raw!r}", gw.ref))
            continue
        if not names:
            continue  # file-mounted certificates: not Secrets, not ours to rotate
        hosts = tuple(dict.fromkeys(strip_namespace(h)[1] for h in server.hosts))
        for ns in namespaces:
            ref = Reference(
                group=ISTIO_GROUP,
                kind="Gateway",
                namespace=gw.namespace,
                name=gw.name,
                listener=server.port_name or f"servers[{server.index}]",
                port=server.port,
                mode=mode,
                hosts=hosts,
                route_hosts=route_hosts(gw.namespace, server.hosts, services),
            )
            for raw in names:
                _add_istio_server_credential(gw, server, raw, ns, ref, col)
            if mode in MUTUAL_MODES:
                _add_istio_client_ca(gw, names[0], ca_name, ns, ref, inv, col)


def _where(gw: IstioGateway) -> str:
    return str(gw.source) if gw.source else "cluster"


def _credential_names(tls: dict[str, object]) -> list[str]:
    plural = tls.get("credentialNames")
    if isinstance(plural, list) and plural:
        return [str(n) for n in plural if n]
    single = tls.get("credentialName")
    return [str(single)] if single else []


def _add_istio_server_credential(
    gw: IstioGateway, server: IstioServer, raw: str, ns: str, ref: Reference, col: _Collector
) -> None:
    cred = parse_credential_name(raw)
    extra: list[Finding] = []
    if cred.scheme in ("builtin", "sds"):
        return  # the workload's own certificate or an external SDS server: no Secret
    if cred.scheme == "kubernetes-gateway":
        # (§2.3) read from the config cluster, authorised by ReferenceGrant; undocumented for classic.
        col.add("Secret", cred.namespace or gw.namespace, cred.name, "server", ref)
        return
    if cred.scheme != "kubernetes":
        col.findings.append(
            finding("unsupported-reference", f"{gw.ref}: credentialName {raw!r} has an unknown scheme", gw.ref)
        )
        return
    if cred.namespace is not None and cred.namespace != ns:
        extra.append(
            finding(
                "cross-namespace-reference",
                f"{gw.ref} names credential {raw!r} in namespace {cred.namespace!r}, but its gateway workload "
                f"runs in {ns!r}; istiod refuses cross-namespace credentials for classic Gateways. Use "
                f"credentialName: {cred.name} and keep the Secret in {ns!r}.",
                gw.ref,
            )
        )
    if cred.name.endswith(CACERT_SUFFIX):
        extra.append(
            finding(
                "cacert-name-for-server",
                f"{gw.ref}: server credential {raw!r} ends in '-cacert'; istiod treats such names as CA-only "
                "and never sends the certificate and key. Rename the Secret.",
                gw.ref,
            )
        )
    col.add("Secret", ns, cred.name, "server", ref, *extra)


def _add_istio_client_ca(
    gw: IstioGateway,
    base_raw: str,
    ca_name: str | None,
    ns: str,
    ref: Reference,
    inv: Inventory,
    col: _Collector,
) -> None:
    """Where MUTUAL finds its client CA (§3.3, §3.4)."""
    extra: list[Finding] = []
    if ca_name:
        if ca_name.startswith("configmap://"):
            cm = parse_credential_name(ca_name)
            col.add("ConfigMap", cm.namespace or gw.namespace, cm.name, "client-ca", ref)
            return
        cred = parse_credential_name(ca_name)
        if cred.namespace is not None and cred.namespace != ns and cred.scheme == "kubernetes":
            extra.append(
                finding(
                    "cross-namespace-reference",
                    f"{gw.ref}: caCertCredentialName {ca_name!r} names namespace {cred.namespace!r}, but the "
                    f"gateway workload runs in {ns!r}.",
                    gw.ref,
                )
            )
        name = cred.name
        if not name.endswith(CACERT_SUFFIX):
            extra.append(
                finding(
                    "unsupported-reference",
                    f"{gw.ref}: caCertCredentialName {ca_name!r} does not end in '-cacert'; istiod fetches such "
                    "a name as a certificate and key, not a CA bundle. Use '<name>-cacert' or "
                    "'configmap://<namespace>/<name>'.",
                    gw.ref,
                    severity="warning",
                )
            )
            col.add("Secret", ns, name, "client-ca", ref, *extra)
            return
        base = name[: -len(CACERT_SUFFIX)]
    else:
        base_cred = parse_credential_name(base_raw)
        if base_cred.scheme in ("builtin", "sds"):
            # builtin://-cacert is the mesh root (ROOTCA) and sds://<x>-cacert comes from the
            # external SDS server (§1.3): neither is a Secret in the workload namespace.
            return
        if base_cred.namespace is not None and base_cred.namespace != ns:
            # The CA resource inherits the server's namespace (kubernetes://ns/name-cacert), so
            # istiod refuses it for the same reason as the certificate (§2.3).
            extra.append(
                finding(
                    "cross-namespace-reference",
                    f"{gw.ref}: the client CA for credential {base_raw!r} is read from namespace "
                    f"{base_cred.namespace!r}, but the gateway workload runs in {ns!r}.",
                    gw.ref,
                )
            )
        base = base_cred.name
    separate = base + CACERT_SUFFIX
    # A Secret named <base>-cacert wins, with no fallback even if it lacks the keys (§3.3).
    target = separate if inv.secret(ns, separate) is not None else base
    col.add("Secret", ns, target, "client-ca", ref, *extra)


# --- Gateway API (§5) --------------------------------------------------------------


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


def _discover_kube(gw: KubeGateway, inv: Inventory, col: _Collector) -> None:
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
    col: _Collector,
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
