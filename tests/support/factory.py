"""Builds real certificates, Secrets and manifests for tests.

Everything is made with rotator.util.pki (real keys, real signatures) so tests exercise the
same parsing paths as production data. Manifests are plain dicts, fed through the real
loader/inventory where a test is about the whole pipeline.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509

from rotator.config.load import parse_config
from rotator.config.schema import Config
from rotator.discover.files import RawObject
from rotator.discover.wire.inventory import build_inventory
from rotator.model import Inventory, Source
from rotator.util import pki

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def t(days: float) -> datetime:
    """A time ``days`` from NOW (negative for the past)."""
    return NOW + timedelta(days=days)


@dataclass
class CA:
    cert: x509.Certificate
    key: Any

    def pem(self) -> bytes:
        return pki.cert_pem(self.cert)


def make_ca(
    name: str = "Test Root CA",
    nb: float = -365,
    na: float = 3650,
    parent: CA | None = None,
    algo: pki.KeyAlgorithm = "ecdsa-p256",
) -> CA:
    key = pki.new_key(algo)
    cert = pki.build_certificate(
        subject_cn=name,
        public_key=key.public_key(),
        not_before=t(nb),
        not_after=t(na),
        issuer_cert=parent.cert if parent else None,
        issuer_key=parent.key if parent else key,
        is_ca=True,
    )
    return CA(cert, key)


@dataclass
class Leaf:
    cert: x509.Certificate
    key: Any
    chain: tuple[x509.Certificate, ...] = ()

    def cert_pem(self) -> bytes:
        return pki.cert_pem(self.cert, *self.chain)

    def key_pem(self) -> bytes:
        return pki.key_pem(self.key)


_DEFAULT_CA: CA | None = None


def default_ca() -> CA:
    global _DEFAULT_CA
    if _DEFAULT_CA is None:
        _DEFAULT_CA = make_ca()
    return _DEFAULT_CA


def make_leaf(
    sans: list[str] | tuple[str, ...] = ("app.example.com",),
    nb: float = -10,
    na: float = 80,
    ca: CA | None = None,
    algo: pki.KeyAlgorithm = "ecdsa-p256",
    chain: bool = True,
    cn: str | None = None,
) -> Leaf:
    ca = ca or default_ca()
    key = pki.new_key(algo)
    cert = pki.build_certificate(
        subject_cn=cn or (sans[0] if sans else "no-san"),
        public_key=key.public_key(),
        not_before=t(nb),
        not_after=t(na),
        issuer_cert=ca.cert,
        issuer_key=ca.key,
        sans=list(sans),
    )
    return Leaf(cert, key, (ca.cert,) if chain else ())


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def secret(
    name: str,
    namespace: str = "istio-system",
    data: dict[str, bytes] | None = None,
    leaf: Leaf | None = None,
    annotations: dict[str, str] | None = None,
    type_: str = "kubernetes.io/tls",
    owners: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    payload = dict(data or {})
    if leaf is not None:
        payload.setdefault("tls.crt", leaf.cert_pem())
        payload.setdefault("tls.key", leaf.key_pem())
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        meta["annotations"] = annotations
    if owners:
        meta["ownerReferences"] = owners
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "type": type_,
        "data": {k: b64(v) for k, v in payload.items()},
    }


def config_map(name: str, namespace: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": data}


def deployment(name: str, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"template": {"metadata": {"labels": labels}}},
    }


def ingress(namespace: str = "istio-system", labels: dict[str, str] | None = None) -> dict[str, Any]:
    return deployment("istio-ingressgateway", namespace, labels or {"istio": "ingressgateway"})


def server(
    hosts: list[str],
    credential: str | None = None,
    mode: str | None = "SIMPLE",
    port: int = 443,
    name: str = "https",
    protocol: str = "HTTPS",
    **tls: Any,
) -> dict[str, Any]:
    block: dict[str, Any] = dict(tls)
    if mode is not None:
        block["mode"] = mode
    if credential is not None:
        block["credentialName"] = credential
    return {"port": {"number": port, "name": name, "protocol": protocol}, "hosts": hosts, "tls": block}


def gateway(
    name: str,
    servers: list[dict[str, Any]],
    namespace: str = "istio-system",
    selector: dict[str, str] | None = None,
    version: str = "v1",
) -> dict[str, Any]:
    spec: dict[str, Any] = {"servers": servers}
    spec["selector"] = {"istio": "ingressgateway"} if selector is None else selector
    return {
        "apiVersion": f"networking.istio.io/{version}",
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def virtual_service(
    name: str, namespace: str, hosts: list[str], gateways: list[str] | None = None, http: list[Any] | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {"hosts": hosts}
    if gateways is not None:
        spec["gateways"] = gateways
    if http is not None:
        spec["http"] = http
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def destination_rule(name: str, namespace: str, host: str, subsets: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"host": host, "subsets": [{"name": s, "labels": {"version": s}} for s in subsets]},
    }


def kube_gateway(
    name: str, namespace: str, listeners: list[dict[str, Any]], spec_tls: dict[str, Any] | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {"gatewayClassName": "istio", "listeners": listeners}
    if spec_tls is not None:
        spec["tls"] = spec_tls
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def listener(
    name: str,
    hostname: str | None,
    refs: list[dict[str, Any]] | None = None,
    mode: str = "Terminate",
    port: int = 443,
    options: dict[str, str] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "port": port, "protocol": "HTTPS"}
    if hostname is not None:
        out["hostname"] = hostname
    tls: dict[str, Any] = {"mode": mode, "certificateRefs": refs or []}
    if options:
        tls["options"] = options
    out["tls"] = tls
    return out


def reference_grant(
    name: str, namespace: str, from_ns: str, kind: str = "Secret", to_name: str | None = None
) -> dict[str, Any]:
    to: dict[str, Any] = {"group": "", "kind": kind}
    if to_name:
        to["name"] = to_name
    return {
        "apiVersion": "gateway.networking.k8s.io/v1beta1",
        "kind": "ReferenceGrant",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": from_ns}], "to": [to]},
    }


def inventory(*objects: dict[str, Any], workloads_known: bool | None = None) -> Inventory:
    raws = [RawObject(Source("test.yaml", i), o) for i, o in enumerate(objects)]
    inv, findings = build_inventory(raws, workloads_known=workloads_known)
    assert not findings, findings
    return inv


def config(data: dict[str, Any] | None = None) -> Config:
    return parse_config(data or {})


def run(*objects: dict[str, Any], cfg: dict[str, Any] | None = None, now: datetime = NOW, **kw: Any):  # type: ignore[no-untyped-def]
    """The whole pipeline on ``objects``; returns the CheckResult."""
    from rotator.pipeline import run_check

    return run_check(inventory(*objects, **kw), config(cfg), now)


def codes(items) -> list[str]:  # type: ignore[no-untyped-def]
    """Finding codes of a CheckResult, a Credential, or a list of findings."""
    if hasattr(items, "credentials"):
        return sorted([f.code for f in items.findings] + [f.code for c in items.credentials for f in c.findings])
    if hasattr(items, "findings"):
        return sorted(f.code for f in items.findings)
    return sorted(f.code for f in items)


def cred(result, name: str, role: str = "server", namespace: str | None = None):  # type: ignore[no-untyped-def]
    matches = [
        c
        for c in result.credentials
        if c.spec.name == name and c.spec.role == role and (namespace is None or c.spec.namespace == namespace)
    ]
    assert len(matches) == 1, f"expected one {role} credential {name}, got {[c.spec.key for c in matches]}"
    return matches[0]


def rfc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- helpers for inspection and policy tests ---------------------------------------


def chain_of(leaf: Leaf, *parents: CA) -> Leaf:
    """The same leaf and key served with an explicit chain (in the given order)."""
    return Leaf(leaf.cert, leaf.key, tuple(p.cert for p in parents))


def encrypted_key_pem(key: Any, password: bytes = b"hunter2") -> bytes:
    """A PKCS#8 PEM key encrypted with ``password``, which Istio cannot load."""
    from cryptography.hazmat.primitives import serialization

    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password),
        )
    )


def ocsp_response(cert: x509.Certificate, issuer: CA, this_update: float = -1, next_update: float = 6) -> bytes:
    """A real DER OCSP response, signed by ``issuer``, saying ``cert`` is good."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509 import ocsp

    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=cert,
            issuer=issuer.cert,
            algorithm=hashes.SHA1(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=t(this_update),
            next_update=t(next_update),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, issuer.cert)
    )
    return builder.sign(issuer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
