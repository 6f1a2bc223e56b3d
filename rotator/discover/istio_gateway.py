"""Credentials of classic ``networking.istio.io`` Gateways: ``credentialName`` and
``credentialNames`` of SIMPLE and MUTUAL servers, their client-CA bundles (``-cacert``,
``caCertCredentialName``, the ``cacert`` key) and where istiod looks for each (§1, §2)."""

from __future__ import annotations

from rotator.apis import CACERT_SUFFIX, ISTIO_GROUP
from rotator.discover.collect import (
    MUTUAL_MODES,
    PASSTHROUGH_MODES,
    SECRET_MODES,
    Collector,
    DiscoveryOptions,
    parse_credential_name,
)
from rotator.discover.routing import route_hosts, workload_namespaces
from rotator.findings import finding
from rotator.hosts import strip_namespace
from rotator.model import Finding, Inventory, IstioGateway, IstioServer, Reference, VirtualService


def discover_istio(
    gw: IstioGateway,
    inv: Inventory,
    options: DiscoveryOptions,
    col: Collector,
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
    gw: IstioGateway, server: IstioServer, raw: str, ns: str, ref: Reference, col: Collector
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
    col: Collector,
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
