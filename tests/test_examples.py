"""The README demo: the bundled examples must keep showing the same realistic mix.

The demo pins its clock with --at 2026-12-01, so this fails only if the examples or
the rules change, never because the calendar moved on.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from rotator.config.load import load_config
from rotator.discover.files import load
from rotator.discover.wire.inventory import build_inventory
from rotator.pipeline import run_check

ROOT = Path(__file__).resolve().parent.parent
DEMO_AT = datetime(2026, 12, 1, tzinfo=UTC)  # the README demo's --at


def demo():  # type: ignore[no-untyped-def]
    loaded = load([str(ROOT / "examples")])
    assert loaded.errors == []
    inv, findings = build_inventory(loaded.objects)
    assert findings == []
    config = load_config(str(ROOT / "config/rotator.yaml"), environ={})
    return run_check(inv, config, DEMO_AT)


def test_demo_shows_each_state_and_action() -> None:
    result = demo()
    table = {(c.spec.namespace, c.spec.name, c.spec.role): (c.state, c.action) for c in result.credentials}
    assert table == {
        ("istio-system", "api-tls-secret", "server"): ("due", "renew"),
        ("istio-system", "mtls-credential", "server"): ("ok", "none"),
        ("istio-system", "mtls-credential-cacert", "client-ca"): ("ok", "none"),
        ("istio-system", "shop-tls", "server"): ("ok", "renew"),
        ("istio-system", "legacy-tls", "server"): ("expired", "skip"),
        ("istio-system", "admin-tls", "server"): ("missing", "skip"),
        ("partner-ingress", "partner-tls", "server"): ("due", "skip"),
        ("certs", "web-tls", "server"): ("ok", "none"),
        ("certs", "status-tls", "server"): ("invalid", "none"),
    }


def test_demo_shows_the_checklist_and_mtls_findings() -> None:
    result = demo()
    codes = sorted({f.code for f in result.findings} | {f.code for c in result.credentials for f in c.findings})
    for code in (
        "cert-renewal-due",
        "cert-expired",
        "host-not-covered",
        "client-ca-expiring",
        "secret-wrong-namespace",
        "reference-not-permitted",
        "credential-ignored",
        "managed-externally",
        "no-issuer",
        "shadowed-keys",
        "weak-key",
        "weak-signature",
        "subset-not-defined",
        "vs-host-not-in-gateway",
        "vs-gateway-not-found",
        "conflicting-gateways",
    ):
        assert code in codes, code


def test_seed_mtls_gateway_reads_its_secret_from_the_workload_namespace() -> None:
    result = demo()
    mtls = [c for c in result.credentials if c.spec.name.startswith("mtls-credential")]
    assert {c.spec.namespace for c in mtls} == {"istio-system"}
    assert all(r.namespace == "default" and r.name == "mtls-gateway" for c in mtls for r in c.spec.references)


def test_shared_secret_is_one_credential_with_both_gateways() -> None:
    result = demo()
    (api,) = [c for c in result.credentials if c.spec.name == "api-tls-secret"]
    assert {r.name for r in api.spec.references} == {"api-gateway", "api-gateway-v2"}
    assert set(api.spec.hosts) == {"api.example.com", "v2.api.example.com"}
