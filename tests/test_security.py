"""The threat model of docs/security.md, one test per row: who can cause what, and what
stops them. Real passes (`rotator check`) against the fake API server with deploy/'s RBAC."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rotator.cli import main
from tests.support import factory as f
from tests.support import kube
from tests.support.fakeapi import FakeCluster
from tests.support.world import CA, config_file, now

NS = "istio-system"
TENANT = "tenant-a"


@pytest.fixture
def fake() -> Iterator[FakeCluster]:
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as cluster:
        kube.seed_object(cluster, f.ingress())
        yield cluster
        # reads rotator's RBAC refuses (a tenant namespace) are expected; a refused write is not
        assert [d for d in cluster.denied() if d.method != "GET"] == [] and cluster.errors == []


def run(fake: FakeCluster, tmp_path: Path, **cfg: Any) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    kc = fake.kubeconfig(tmp_path / "kc")
    code = main(
        [
            "check",
            "-o",
            "json",
            "--log-level",
            "error",
            "--kubeconfig",
            str(kc),
            "--config",
            str(config_file(tmp_path, **cfg)),
        ],
        stdout=out,
    )
    return code, json.loads(out.getvalue())


def data(fake: FakeCluster, name: str, ns: str = NS) -> dict[str, bytes] | None:
    obj = fake.get("v1", "Secret", ns, name)
    return None if obj is None else {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}


def cred(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in doc["credentials"] if c["name"] == name)


def codes(c: dict[str, Any]) -> set[str]:
    return {x["code"] for x in c["findings"]}


def secret_writes(fake: FakeCluster) -> list[tuple[str, str | None]]:
    return [
        (r.method, r.name) for r in fake.requests if r.resource == "secrets" and r.method in ("POST", "PUT", "PATCH")
    ]


def istio_cacerts() -> dict[str, Any]:
    ca = CA("Mesh Root")
    from rotator.util import pki

    pem, key = pki.cert_pem(ca.cert), pki.key_pem(ca.key)
    return f.secret(
        "cacerts",
        NS,
        data={"ca-cert.pem": pem, "ca-key.pem": key, "root-cert.pem": pem, "cert-chain.pem": pem},
        type_="Opaque",
    )


# --- Gateway authors -------------------------------------------------------------------


def test_a_tenant_gateway_naming_cacerts_gets_no_write_and_no_copy_of_the_mesh_key(
    fake: FakeCluster, tmp_path: Path
) -> None:
    ca = CA()
    kube.seed_object(fake, ca.secret())
    kube.seed_object(fake, istio_cacerts())
    before = data(fake, "cacerts")
    kube.seed_object(fake, f.gateway("evil", [f.server(["mesh.example.com"], "cacerts")], namespace=TENANT))
    # even a rule that trusts the tenant and allows every key cannot make it rotator's
    _code, doc = run(fake, tmp_path, rules=[{"issuer": "internal", "gateway_namespaces": ["*"], "allow_keys": ["*"]}])
    c = cred(doc, "cacerts")
    assert c["action"] == "skip" and "not-owned" in codes(c)
    assert data(fake, "cacerts") == before
    assert secret_writes(fake) == []  # no update, no backup, no pending Secret
    holders = [s for s in fake.list("v1", "Secret") if "ca-key.pem" in (s.get("data") or {})]
    assert [s["metadata"]["name"] for s in holders] == ["cacerts"]


def test_a_tenant_gateway_cannot_mint_a_certificate_for_a_new_secret(fake: FakeCluster, tmp_path: Path) -> None:
    kube.seed_object(fake, CA().secret())
    kube.seed_object(fake, f.gateway("evil", [f.server(["bank.example.com"], "bank-tls")], namespace=TENANT))
    for rules in ([{"issuer": "internal", "hosts": ["*.example.com"]}], [{"issuer": "internal", "create": True}]):
        _code, doc = run(fake, tmp_path, rules=rules)
        c = cred(doc, "bank-tls")
        assert c["action"] == "skip" and "untrusted-gateway" in codes(c), c
        assert TENANT in next(x["message"] for x in c["findings"] if x["code"] == "untrusted-gateway")
    assert data(fake, "bank-tls") is None and secret_writes(fake) == []


def sans_of(pem: bytes) -> list[str]:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(pem)
    return sorted(
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    )


def test_a_tenant_gateway_can_neither_add_its_host_to_a_shared_certificate_nor_stop_its_renewal(
    fake: FakeCluster, tmp_path: Path
) -> None:
    ca = CA()
    kube.seed_object(fake, ca.secret())
    crt, key, _ = ca.leaf(["shop.example.com"], days_left=-1)  # expired: it must be renewed, tenant or not
    kube.seed_object(fake, f.secret("shop-tls", data={"tls.crt": crt, "tls.key": key}))
    kube.seed_object(fake, f.gateway("shop", [f.server(["shop.example.com"], "shop-tls")]))
    kube.seed_object(fake, f.gateway("evil", [f.server(["bank.example.com"], "shop-tls")], namespace=TENANT))
    _code, doc = run(fake, tmp_path, rules=[{"issuer": "internal", "hosts": ["shop.example.com"]}])
    c = cred(doc, "shop-tls")
    assert c["renewal"]["status"] == "renewed" and "untrusted-gateway" in codes(c)
    assert sans_of((data(fake, "shop-tls") or {})["tls.crt"]) == ["shop.example.com"]  # bank.example.com left out
    _code, again = run(fake, tmp_path, rules=[{"issuer": "internal", "hosts": ["shop.example.com"]}])
    assert cred(again, "shop-tls")["action"] == "none"  # and no order on every pass for the host it lacks


def test_a_ca_kept_as_a_tls_secret_is_never_overwritten_nor_copied(fake: FakeCluster, tmp_path: Path) -> None:
    """A trusted Gateway names a Secret holding a CA (its tls.key is the CA key): rotator's
    own issuer Secret, or another CA kept the cert-manager way."""
    ca = CA()
    kube.seed_object(fake, ca.secret())
    other = CA("Team CA")
    kube.seed_object(fake, other.secret("team-ca", NS))
    kube.seed_object(fake, ca.secret("internal-ca", NS))  # the issuer's CA, also in the gateway namespace
    servers = [
        f.server(["team.example.com"], "team-ca", name="a", port=443),
        f.server(["x.example.com"], "internal-ca", name="b", port=8443),
    ]
    kube.seed_object(fake, f.gateway("gw", servers))
    issuers = {"internal": {"type": "ca", "secret": f"{NS}/internal-ca", "validity": "720h"}}
    _code, doc = run(fake, tmp_path, issuers=issuers)
    for name in ("team-ca", "internal-ca"):
        c = cred(doc, name)
        assert c["action"] == "skip" and "not-owned" in codes(c), c
    assert secret_writes(fake) == []  # no update, no backup (which would copy the CA key)


def test_istio_s_ca_secret_is_never_created(fake: FakeCluster, tmp_path: Path) -> None:
    kube.seed_object(fake, CA().secret())
    kube.seed_object(fake, f.gateway("gw", [f.server(["mesh.example.com"], "cacerts")]))  # trusted: same namespace
    _code, doc = run(fake, tmp_path, rules=[{"issuer": "internal", "create": True}])
    c = cred(doc, "cacerts")
    assert c["action"] == "skip" and "not-owned" in codes(c)
    assert data(fake, "cacerts") is None and secret_writes(fake) == []


def test_a_tenant_route_under_a_shared_wildcard_neither_blocks_renewal_nor_wastes_orders(
    fake: FakeCluster, tmp_path: Path
) -> None:
    """A VirtualService anywhere routes x.y.example.com through the *.example.com server: a
    one-label wildcard cannot serve it, and rotator does not add routed names."""
    ca = CA()
    kube.seed_object(fake, ca.secret())
    crt, key, _ = ca.leaf(["*.example.com"], days_left=5)  # due
    kube.seed_object(fake, f.secret("wild-tls", data={"tls.crt": crt, "tls.key": key}))
    kube.seed_object(fake, f.gateway("wild", [f.server(["*.example.com"], "wild-tls")]))
    vs = f.virtual_service("deep", TENANT, ["x.y.example.com"], gateways=["istio-system/wild"])
    kube.seed_object(fake, vs)
    for _ in range(2):
        _code, doc = run(fake, tmp_path)
    c = cred(doc, "wild-tls")
    assert c["action"] == "none" and "host-not-covered" in codes(c)  # reported, not ordered for again
    writes = [r for r in fake.requests if r.resource == "secrets" and r.method == "PUT" and r.name == "wild-tls"]
    assert len(writes) == 1  # renewed once, in the first pass
    assert sans_of((data(fake, "wild-tls") or {})["tls.crt"]) == ["*.example.com"]


def test_a_rule_selects_by_the_gateway_namespace(fake: FakeCluster, tmp_path: Path) -> None:
    """The positive control: the platform team trusts the tenant's namespace explicitly."""
    ca = CA()
    kube.seed_object(fake, ca.secret())
    crt, key, _ = ca.leaf(["app.example.com"], days_left=5)
    kube.seed_object(fake, f.secret("app-tls", data={"tls.crt": crt, "tls.key": key}))
    kube.seed_object(fake, f.gateway("app", [f.server(["app.example.com"], "app-tls")], namespace=TENANT))
    rules = [
        {"issuer": "internal", "gateway_namespaces": ["team-*"]},  # matches the Secret, does not trust tenant-a
        {"issuer": "internal", "gateway_namespaces": ["tenant-*"], "hosts": ["*.example.com"]},
    ]
    _code, doc = run(fake, tmp_path, rules=rules)
    assert cred(doc, "app-tls")["renewal"]["status"] == "renewed"
    assert (data(fake, "app-tls") or {})["tls.crt"] != crt


def test_gateway_api_references_count_as_consented_by_the_reference_grant(tmp_path: Path) -> None:
    with FakeCluster(rbac_manifests=kube.deploy_rbac(("certs",))) as fake:
        grant_case(fake, tmp_path)
        assert fake.denied() == [] and fake.errors == []


def grant_case(fake: FakeCluster, tmp_path: Path) -> None:
    ca = CA()
    kube.seed_object(fake, ca.secret())
    crt, key, _ = ca.leaf(["web.example.com"], days_left=5)
    kube.seed_object(fake, f.secret("web-tls", "certs", data={"tls.crt": crt, "tls.key": key}))
    ref = [{"name": "web-tls", "namespace": "certs"}]
    kube.seed_object(fake, f.kube_gateway("web", "web", [f.listener("https", "web.example.com", ref)]))
    _code, doc = run(fake, tmp_path)
    assert cred(doc, "web-tls")["action"] == "skip" and "reference-not-permitted" in codes(cred(doc, "web-tls"))
    kube.seed_object(fake, f.reference_grant("allow-web", "certs", "web"))
    _code, doc = run(fake, tmp_path)
    assert cred(doc, "web-tls")["renewal"]["status"] == "renewed"


# --- Secret writers --------------------------------------------------------------------


def test_a_secret_of_another_type_is_never_written(fake: FakeCluster, tmp_path: Path) -> None:
    kube.seed_object(fake, CA().secret())
    leaf = f.make_leaf(["pull.example.com"], nb=-89, na=1)
    kube.seed_object(fake, f.secret("pull", leaf=leaf, type_="kubernetes.io/dockerconfigjson"))
    kube.seed_object(fake, f.gateway("gw", [f.server(["pull.example.com"], "pull")]))
    _code, doc = run(fake, tmp_path)
    c = cred(doc, "pull")
    assert c["action"] == "skip" and "not-owned" in codes(c) and secret_writes(fake) == []


def test_unknown_keys_stop_the_write_unless_allowed_and_never_reach_a_backup(fake: FakeCluster, tmp_path: Path) -> None:
    ca = CA()
    kube.seed_object(fake, ca.secret())
    crt, key, _ = ca.leaf(["db.example.com"], days_left=5)
    kube.seed_object(fake, f.secret("db-tls", data={"tls.crt": crt, "tls.key": key, "password": b"hunter2"}))
    kube.seed_object(fake, f.gateway("gw", [f.server(["db.example.com"], "db-tls")]))
    _code, doc = run(fake, tmp_path)
    assert cred(doc, "db-tls")["action"] == "skip" and "not-owned" in codes(cred(doc, "db-tls"))
    assert secret_writes(fake) == []
    _code, doc = run(fake, tmp_path, rules=[{"issuer": "internal", "allow_keys": ["password"]}])
    assert cred(doc, "db-tls")["renewal"]["status"] == "renewed"
    after = data(fake, "db-tls") or {}
    assert after["password"] == b"hunter2" and after["tls.crt"] != crt  # kept beside the new certificate
    backups = [s for s in fake.list("v1", "Secret", NS) if s["metadata"]["name"].startswith("db-tls-rotator-backup-")]
    assert len(backups) == 1 and "password" not in backups[0]["data"] and "tls.key" in backups[0]["data"]


def test_the_writer_refuses_a_secret_that_turned_into_a_ca_since_the_plan(tmp_path: Path) -> None:
    """A Secret writer swaps content between plan and write: the writer checks what it
    has just read, not what was planned."""
    from rotator.apply.secret_bodies import Material
    from rotator.apply.secret_writer import SecretWriter
    from rotator.kube.events import EventRecorder
    from rotator.model import Reference
    from rotator.util import pki

    ca = CA()
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake:
        crt, key, _ = ca.leaf(["app.example.com"], days_left=5)
        kube.seed_object(fake, f.secret("app-tls", data={"tls.crt": crt, "tls.key": key, "ca-key.pem": key}))
        api = kube.api(fake.kubeconfig(tmp_path / "kc"))
        writer = SecretWriter(api, now, EventRecorder(api, now))
        new_crt, new_key, _ = ca.leaf(["app.example.com"], days_left=60)
        ref = Reference("networking.istio.io", "Gateway", NS, "gw", "https", 443, "SIMPLE", ("app.example.com",))
        out = writer.write(NS, "app-tls", Material(new_crt + pki.cert_pem(ca.cert), new_key), [ref])
        assert out.status == "failed" and "CA private key" in out.message
        assert (data(fake, "app-tls") or {})["tls.crt"] == crt and secret_writes(fake) == []
