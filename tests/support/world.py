"""The world most cluster tests share: a test CA, a config file, a renewer wired to the
fake API server, and a plan read from it."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509

from rotator.apply.renewer import Renewer
from rotator.apply.secret_writer import SecretWriter
from rotator.config.load import parse_config
from rotator.issuers.base import Issued, IssueRequest, IssuerError
from rotator.issuers.ca import CAIssuer, load_material
from rotator.kube.state import MemoryState
from rotator.pipeline import run_check
from rotator.util import pki
from tests.support import factory as f
from tests.support import kube
from tests.support.fakeapi import FakeCluster

NS, NAME, HOST = "istio-system", "app-tls", "app.example.com"


def now() -> datetime:
    return datetime.now(UTC)


class CA:
    def __init__(self, cn: str = "Rotator Test Root") -> None:
        self.key = pki.new_key()
        self.cert = pki.build_certificate(
            subject_cn=cn,
            public_key=self.key.public_key(),
            not_before=now() - timedelta(days=10),
            not_after=now() + timedelta(days=900),
            issuer_cert=None,
            issuer_key=self.key,
            is_ca=True,
        )

    def leaf(self, hosts: list[str], days_left: float, lifetime: float = 90) -> tuple[bytes, bytes, x509.Certificate]:
        key = pki.new_key()
        cert = pki.build_certificate(
            subject_cn=hosts[0],
            public_key=key.public_key(),
            not_before=now() - timedelta(days=lifetime - days_left),
            not_after=now() + timedelta(days=days_left),
            issuer_cert=self.cert,
            issuer_key=self.key,
            sans=hosts,
        )
        return pki.cert_pem(cert), pki.key_pem(key), cert

    def secret(self, name: str = "internal-ca", namespace: str = "rotator") -> dict[str, Any]:
        return f.secret(name, namespace, data={"tls.crt": pki.cert_pem(self.cert), "tls.key": pki.key_pem(self.key)})


def config_file(tmp: Path, **extra: Any) -> Path:
    cfg = {
        "issuers": {"internal": {"type": "ca", "secret": "rotator/internal-ca", "validity": "720h"}},
        "rules": [{"issuer": "internal", "hosts": ["*.example.com", "example.com"]}],
        "renewal": {"concurrency": 4},
    }
    cfg.update(extra)
    p = tmp / "rotator.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def secret_data(cluster: FakeCluster, name: str = NAME, ns: str = NS) -> dict[str, bytes]:
    obj = cluster.get("v1", "Secret", ns, name)
    assert obj is not None
    return {k: base64.b64decode(v) for k, v in obj["data"].items()}


class Counting:
    """Wraps an issuer to count orders and to fail for chosen names."""

    def __init__(self, inner: Any, fail_for: set[str] | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls: list[str] = []
        self.fail_for = fail_for or set()

    def issue(self, request: IssueRequest) -> Issued:
        self.calls.append(request.name)
        if request.name in self.fail_for:
            raise IssuerError(f"refused {request.name} (test)")
        issued: Issued = self.inner.issue(request)
        return issued

    def owns(self, cert: x509.Certificate) -> bool:
        return bool(self.inner.owns(cert))

    def health(self, when: datetime) -> list[Any]:
        return list(self.inner.health(when))

    def renewal_window(self, cert: x509.Certificate) -> None:
        return None

    @property
    def requests(self) -> dict[str, int]:
        return dict(self.inner.requests)

    def sweep(self) -> None:
        self.inner.sweep()


def renewer_for(
    fake: FakeCluster,
    kc: Path,
    ca: CA,
    state: Any = None,
    clock: Any = now,
    fail_for: set[str] | None = None,
    **cfg: Any,
) -> tuple[Renewer, Counting, Any]:
    api = kube.api(kc)
    config = parse_config(
        {
            "issuers": {"internal": {"type": "ca", "secret": "rotator/internal-ca"}},
            "rules": [{"issuer": "internal"}],
            **cfg,
        }
    )
    issuer = Counting(
        CAIssuer(
            "internal",
            lambda: load_material(pki.cert_pem(ca.cert), pki.key_pem(ca.key), "t"),
            timedelta(days=30),
            clock,
        ),
        fail_for,
    )
    renewer = Renewer(api, config, {"internal": issuer}, SecretWriter(api, clock), state or MemoryState(), clock)  # type: ignore[dict-item]
    return renewer, issuer, config


def plan_from_cluster(kc: Path, config: Any, when: datetime) -> tuple[Any, Any]:
    from rotator.discover.cluster import read_cluster

    inv = read_cluster(kube.api(kc)).inventory
    return run_check(inv, config, when), inv


def seed_two_namespace_world(fake: FakeCluster, ca: CA) -> None:
    """Gateway gw in "edge" whose pods run in NS and "ingress-b": Istio reads NAME in both,
    so rotator keeps two copies on one certificate. The CA's Secret too; no copies yet."""
    kube.seed_object(fake, f.ingress())
    kube.seed_object(fake, f.ingress("ingress-b"))
    kube.seed_object(fake, f.gateway("gw", [f.server([HOST], NAME)], namespace="edge"))
    kube.seed_object(fake, ca.secret())
