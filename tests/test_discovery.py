"""Discovery follows Istio's credential resolution rules (reference note §1, §2, §3.3-3.4, §5).

Each test builds real manifests (and real certificates where the state matters) and
checks which credentials discovery reports, where, and with which findings.
"""

from __future__ import annotations

from typing import Any

import pytest

from rotator.discover.collect import DiscoveryOptions, parse_credential_name
from rotator.discover.credentials import discover
from rotator.model import CheckResult, CredentialSpec, Finding
from tests.support import factory as f

HOST = "app.example.com"
GW_API = "gateway.networking.k8s.io"
ISSUER_CFG: dict[str, Any] = {
    "issuers": {"ca": {"type": "ca", "secret": "issuers/ca"}},
    "rules": [{"issuer": "ca"}],
}


def keys(result: CheckResult) -> list[tuple[str, str, str, str]]:
    return sorted(c.spec.key for c in result.credentials)


def findings_coded(result: CheckResult, code: str) -> list[Finding]:
    """Findings that are not attached to a credential (discovery and checklist)."""
    return [x for x in result.findings if x.code == code]


def ca_pem() -> str:
    return f.default_ca().pem().decode()


def ca_secret(name: str, namespace: str = "istio-system", key: str = "cacert") -> dict[str, Any]:
    return f.secret(name, namespace, data={key: f.default_ca().pem()}, type_="Opaque")


def tls_secret(name: str, namespace: str = "istio-system", **data: bytes) -> dict[str, Any]:
    return f.secret(name, namespace, data=data or None, leaf=f.make_leaf([HOST]))


def workload(kind: str, name: str, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "labels": labels}}
    obj = f.deployment(name, namespace, labels)
    obj["kind"] = kind
    return obj


def specs(*objects: dict[str, Any], scope: bool = False) -> tuple[list[CredentialSpec], list[Finding]]:
    return discover(f.inventory(*objects), DiscoveryOptions(scope_gateway_to_namespace=scope))


# --- modes (§1.2) ------------------------------------------------------------------


def test_simple_server_reads_its_credential_name() -> None:
    result = f.run(f.ingress(), f.gateway("gw", [f.server([HOST], "app-tls")]), tls_secret("app-tls"))
    assert keys(result) == [("Secret", "istio-system", "app-tls", "server")]
    c = f.cred(result, "app-tls")
    assert c.state == "ok"
    assert [r.mode for r in c.spec.references] == ["SIMPLE"]
    assert f.codes(result) == []


@pytest.mark.parametrize("mode", ["MUTUAL", "OPTIONAL_MUTUAL"])
def test_mutual_modes_read_the_server_credential_and_a_client_ca(mode: str) -> None:
    result = f.run(
        f.ingress(),
        f.gateway("gw", [f.server([HOST], "app-tls", mode=mode)]),
        tls_secret("app-tls"),
        ca_secret("app-tls-cacert"),
    )
    assert keys(result) == [
        ("Secret", "istio-system", "app-tls", "server"),
        ("Secret", "istio-system", "app-tls-cacert", "client-ca"),
    ]
    assert f.cred(result, "app-tls-cacert", "client-ca").state == "ok"
    assert {r.mode for c in result.credentials for r in c.spec.references} == {mode}


def test_simple_server_ignores_ca_keys_and_cacert_secret() -> None:
    result = f.run(
        f.ingress(),
        f.gateway("gw", [f.server([HOST], "app-tls", mode="SIMPLE")]),
        tls_secret("app-tls", **{"ca.crt": f.default_ca().pem()}),
        ca_secret("app-tls-cacert"),
    )
    assert keys(result) == [("Secret", "istio-system", "app-tls", "server")]


def test_tls_block_without_mode_is_passthrough_and_its_credential_is_ignored() -> None:
    result = f.run(f.ingress(), f.gateway("gw", [f.server([HOST], "app-tls", mode=None)]), tls_secret("app-tls"))
    assert result.credentials == ()
    [ignored] = findings_coded(result, "credential-ignored")
    assert ignored.severity == "warning"
    assert "no mode" in ignored.message and "PASSTHROUGH" in ignored.message
    assert f.codes(result) == ["credential-ignored"]


@pytest.mark.parametrize("mode", ["PASSTHROUGH", "AUTO_PASSTHROUGH"])
def test_explicit_passthrough_modes_ignore_the_credential_with_a_warning(mode: str) -> None:
    result = f.run(f.ingress(), f.gateway("gw", [f.server([HOST], "app-tls", mode=mode)]), tls_secret("app-tls"))
    assert result.credentials == ()
    [ignored] = findings_coded(result, "credential-ignored")
    assert ignored.severity == "warning"
    assert mode in ignored.message


@pytest.mark.parametrize("mode", [None, "PASSTHROUGH", "AUTO_PASSTHROUGH"])
def test_passthrough_server_without_credential_reports_nothing(mode: str | None) -> None:
    result = f.run(f.ingress(), f.gateway("gw", [f.server([HOST], None, mode=mode, protocol="TLS")]))
    assert result.credentials == ()
    assert f.codes(result) == []


def test_passthrough_server_with_only_ca_cert_credential_name_is_still_ignored() -> None:
    result = f.run(
        f.ingress(),
        f.gateway("gw", [f.server([HOST], None, mode="PASSTHROUGH", caCertCredentialName="x-cacert")]),
    )
    assert result.credentials == ()
    assert f.codes(result) == ["credential-ignored"]


def test_istio_mutual_with_credential_name_is_an_error_and_reads_no_secret() -> None:
    result = f.run(
        f.ingress(), f.gateway("gw", [f.server([HOST], "app-tls", mode="ISTIO_MUTUAL")]), tls_secret("app-tls")
    )
    assert result.credentials == ()
    [ignored] = findings_coded(result, "credential-ignored")
    assert ignored.severity == "error"
    assert "ISTIO_MUTUAL" in ignored.message


def test_istio_mutual_without_credentials_reports_nothing() -> None:
    result = f.run(f.ingress(), f.gateway("gw", [f.server([HOST], None, mode="ISTIO_MUTUAL")]))
    assert result.credentials == ()
    assert f.codes(result) == []


def test_plain_http_server_with_only_https_redirect_yields_nothing() -> None:
    http = f.server([HOST], None, mode=None, port=80, name="http", protocol="HTTP", httpsRedirect=True)
    result = f.run(f.ingress(), f.gateway("gw", [http]))
    assert result.credentials == ()
    assert f.codes(result) == []


def test_server_without_tls_block_yields_nothing() -> None:
    plain = {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": [HOST]}
    result = f.run(f.ingress(), f.gateway("gw", [plain]))
    assert result.credentials == ()
    assert f.codes(result) == []


def test_unknown_tls_mode_is_an_invalid_manifest_not_a_credential() -> None:
    result = f.run(f.ingress(), f.gateway("gw", [f.server([HOST], "app-tls", mode="STRICT")]), tls_secret("app-tls"))
    assert result.credentials == ()
    assert f.codes(result) == ["invalid-manifest"]


def test_file_mounted_certificates_are_not_secret_credentials() -> None:
    files = f.server([HOST], None, serverCertificate="/etc/certs/tls.crt", privateKey="/etc/certs/tls.key")
    result = f.run(f.ingress(), f.gateway("gw", [files]))
    assert result.credentials == ()
    assert f.codes(result) == []


# --- credentialName / credentialNames (§1.2.8, §1.3) -------------------------------


def test_credential_names_make_every_certificate_a_credential() -> None:
    dual = f.server([HOST], None, credentialNames=["app-rsa", "app-ec"])
    result = f.run(f.ingress(), f.gateway("gw", [dual]), tls_secret("app-rsa"), tls_secret("app-ec"))
    assert keys(result) == [
        ("Secret", "istio-system", "app-ec", "server"),
        ("Secret", "istio-system", "app-rsa", "server"),
    ]
    assert all(c.state == "ok" for c in result.credentials)


def test_mutual_credential_names_take_the_client_ca_only_from_the_first_name() -> None:
    dual = f.server([HOST], None, mode="MUTUAL", credentialNames=["app-rsa", "app-ec"])
    result = f.run(
        f.ingress(),
        f.gateway("gw", [dual]),
        tls_secret("app-rsa"),
        tls_secret("app-ec"),
        ca_secret("app-rsa-cacert"),
        ca_secret("app-ec-cacert"),
    )
    client_cas = [c.spec.name for c in result.credentials if c.spec.role == "client-ca"]
    assert client_cas == ["app-rsa-cacert"]


def test_mutual_credential_names_fall_back_to_ca_keys_of_the_first_secret_only() -> None:
    dual = f.server([HOST], None, mode="MUTUAL", credentialNames=["app-rsa", "app-ec"])
    result = f.run(
        f.ingress(),
        f.gateway("gw", [dual]),
        tls_secret("app-rsa", **{"ca.crt": f.default_ca().pem()}),
        tls_secret("app-ec", **{"ca.crt": f.default_ca().pem()}),
    )
    client_cas = [c.spec.name for c in result.credentials if c.spec.role == "client-ca"]
    assert client_cas == ["app-rsa"]


@pytest.mark.parametrize(
    "spelling",
    ["app-tls", "kubernetes://app-tls", "kubernetes://istio-system/app-tls", "istio-system/app-tls"],
)
def test_credential_name_spellings_that_resolve_in_the_workload_namespace(spelling: str) -> None:
    result = f.run(f.ingress(), f.gateway("gw", [f.server([HOST], spelling)]), tls_secret("app-tls"))
    assert keys(result) == [("Secret", "istio-system", "app-tls", "server")]
    c = f.cred(result, "app-tls")
    assert c.state == "ok"
    assert f.codes(c) == []


@pytest.mark.parametrize("spelling", ["apps/app-tls", "kubernetes://apps/app-tls"])
def test_cross_namespace_credential_name_is_refused_and_never_renewed(spelling: str) -> None:
    expired = f.make_leaf([HOST], nb=-100, na=-1)
    result = f.run(
        f.ingress(),
        f.gateway("gw", [f.server([HOST], spelling)]),
        f.secret("app-tls", "istio-system", leaf=expired),
        f.secret("app-tls", "apps", leaf=expired),
        cfg=ISSUER_CFG,
    )
    c = f.cred(result, "app-tls", namespace="istio-system")
    assert "cross-namespace-reference" in f.codes(c)
    [cross] = [x for x in c.findings if x.code == "cross-namespace-reference"]
    assert cross.severity == "error"
    assert c.state == "invalid"
    # expired, and an issuer matches: still not renewed, because a new cert cannot fix the reference
    assert c.action == "skip"
    assert "cross-namespace-reference" in c.reason


@pytest.mark.parametrize("spelling", ["apps/app-tls", "kubernetes://apps/app-tls"])
def test_cross_namespace_credential_name_with_secret_only_in_the_named_namespace(spelling: str) -> None:
    result = f.run(
        f.ingress(),
        f.gateway("gw", [f.server([HOST], spelling)]),
        f.secret("app-tls", "apps", leaf=f.make_leaf([HOST], nb=-100, na=-1)),
        cfg=ISSUER_CFG,
    )
    c = f.cred(result, "app-tls")
    assert c.spec.namespace == "istio-system"
    assert "cross-namespace-reference" in f.codes(c)
    assert c.state != "ok"
    assert c.action == "skip"


def test_client_ca_of_a_cross_namespace_credential_is_refused_too() -> None:
    result = f.run(
        f.ingress(),
        f.gateway("gw", [f.server([HOST], "apps/app-tls", mode="MUTUAL")]),
        tls_secret("app-tls", **{"ca.crt": f.default_ca().pem()}),
    )
    ca = f.cred(result, "app-tls", "client-ca")
    assert "cross-namespace-reference" in f.codes(ca)
    assert ca.state == "invalid"


def test_client_ca_of_a_same_namespace_prefixed_credential_is_fine() -> None:
    result = f.run(
        f.ingress(),
        f.gateway("gw", [f.server([HOST], "kubernetes://istio-system/app-tls", mode="MUTUAL")]),
        tls_secret("app-tls", **{"ca.crt": f.default_ca().pem()}),
    )
    ca = f.cred(result, "app-tls", "client-ca")
    assert f.codes(ca) == []
    assert ca.state == "ok"


def test_same_namespace_prefix_is_not_a_cross_namespace_reference() -> None:
    result = f.run(f.ingress(), f.gateway("gw", [f.server([HOST], "istio-system/app-tls")]), tls_secret("app-tls"))
    assert "cross-namespace-reference" not in f.codes(result)


@pytest.mark.parametrize("spelling", ["builtin://", "sds://external-provider"])
@pytest.mark.parametrize("mode", ["SIMPLE", "MUTUAL"])
def test_builtin_and_sds_credentials_are_not_secrets(spelling: str, mode: str) -> None:
    result = f.run(f.ingress(), f.gateway("gw", [f.server([HOST], spelling, mode=mode)]))
    assert result.credentials == ()
    assert f.codes(result) == []


def test_builtin_server_credential_still_reads_an_explicit_ca_cert_credential_name() -> None:
    server = f.server([HOST], "builtin://", mode="MUTUAL", caCertCredentialName="clients-cacert")
    result = f.run(f.ingress(), f.gateway("gw", [server]), ca_secret("clients-cacert"))
    assert keys(result) == [("Secret", "istio-system", "clients-cacert", "client-ca")]


def test_server_credential_named_like_a_cacert_is_flagged() -> None:
    result = f.run(f.ingress(), f.gateway("gw", [f.server([HOST], "app-cacert")]), tls_secret("app-cacert"))
    c = f.cred(result, "app-cacert")
    assert "cacert-name-for-server" in f.codes(c)
    assert c.state == "invalid"


def test_server_credential_not_ending_in_cacert_is_not_flagged() -> None:
    result = f.run(f.ingress(), f.gateway("gw", [f.server([HOST], "cacert-app")]), tls_secret("cacert-app"))
    assert "cacert-name-for-server" not in f.codes(result)


@pytest.mark.parametrize(
    ("value", "scheme", "namespace", "name"),
    [
        ("app", "kubernetes", None, "app"),
        ("ns/app", "kubernetes", "ns", "app"),
        ("kubernetes://app", "kubernetes", None, "app"),
        ("kubernetes://ns/app", "kubernetes", "ns", "app"),
        ("kubernetes-gateway://ns/app", "kubernetes-gateway", "ns", "app"),
        ("configmap://ns/ca", "configmap", "ns", "ca"),
        ("builtin://", "builtin", None, ""),
        ("sds://provider", "sds", None, "provider"),
    ],
)
def test_parse_credential_name_understands_istio_spellings(
    value: str, scheme: str, namespace: str | None, name: str
) -> None:
    parsed = parse_credential_name(value)
    assert (parsed.scheme, parsed.namespace, parsed.name) == (scheme, namespace, name)


# --- client CA lookup (§3.3, §3.4) -------------------------------------------------


def test_separate_cacert_secret_wins_over_ca_keys_in_the_main_secret() -> None:
    result = f.run(
        f.ingress(),
        f.gateway("gw", [f.server([HOST], "app-tls", mode="MUTUAL")]),
        tls_secret("app-tls", **{"ca.crt": f.default_ca().pem()}),
        ca_secret("app-tls-cacert"),
    )
    assert [c.spec.name for c in result.credentials if c.spec.role == "client-ca"] == ["app-tls-cacert"]


def test_cacert_secret_without_ca_keys_has_no_fallback_to_the_main_secret() -> None:
    result = f.run(
        f.ingress(),
        f.gateway("gw", [f.server([HOST], "app-tls", mode="MUTUAL")]),
        tls_secret("app-tls", **{"ca.crt": f.default_ca().pem()}),
        f.secret("app-tls-cacert", data={"unrelated": b"x"}, type_="Opaque"),
    )
    assert [c.spec.name for c in result.credentials if c.spec.role == "client-ca"] == ["app-tls-cacert"]
    ca = f.cred(result, "app-tls-cacert", "client-ca")
    assert "client-ca-missing" in f.codes(ca)
    assert ca.state == "missing"


@pytest.mark.parametrize("key", ["cacert", "ca.crt"])
def test_without_cacert_secret_the_main_secret_supplies_the_client_ca(key: str) -> None:
    result = f.run(
        f.ingress(),
        f.gateway("gw", [f.server([HOST], "app-tls", mode="MUTUAL")]),
        tls_secret("app-tls", **{key: f.default_ca().pem()}),
    )
    ca = f.cred(result, "app-tls", "client-ca")
    assert ca.state == "ok"
    assert f.codes(ca) == []


def test_main_secret_without_ca_keys_reports_client_ca_missing() -> None:
    result = f.run(f.ingress(), f.gateway("gw", [f.server([HOST], "app-tls", mode="MUTUAL")]), tls_secret("app-tls"))
    ca = f.cred(result, "app-tls", "client-ca")
    assert "client-ca-missing" in f.codes(ca)


def test_cacert_secret_in_another_namespace_does_not_count() -> None:
    result = f.run(
        f.ingress(),
        f.gateway("gw", [f.server([HOST], "app-tls", mode="MUTUAL")]),
        tls_secret("app-tls", **{"ca.crt": f.default_ca().pem()}),
        ca_secret("app-tls-cacert", "apps"),
    )
    assert [c.spec.key for c in result.credentials if c.spec.role == "client-ca"] == [
        ("Secret", "istio-system", "app-tls", "client-ca")
    ]


def test_ca_cert_credential_name_with_cacert_suffix_reads_that_secret_and_overrides_the_default() -> None:
    server = f.server([HOST], "app-tls", mode="MUTUAL", caCertCredentialName="clients-cacert")
    result = f.run(
        f.ingress(),
        f.gateway("gw", [server]),
        tls_secret("app-tls"),
        ca_secret("app-tls-cacert"),
        ca_secret("clients-cacert"),
    )
    assert [c.spec.name for c in result.credentials if c.spec.role == "client-ca"] == ["clients-cacert"]
    assert "unsupported-reference" not in f.codes(result)


def test_ca_cert_credential_name_with_cacert_suffix_falls_back_to_the_base_secret() -> None:
    server = f.server([HOST], "app-tls", mode="MUTUAL", caCertCredentialName="clients-cacert")
    result = f.run(f.ingress(), f.gateway("gw", [server]), tls_secret("app-tls"), ca_secret("clients"))
    ca = f.cred(result, "clients", "client-ca")
    assert ca.state == "ok"
    assert [c.spec.name for c in result.credentials if c.spec.role == "client-ca"] == ["clients"]


def test_ca_cert_credential_name_without_cacert_suffix_is_an_unsupported_reference_warning() -> None:
    server = f.server([HOST], "app-tls", mode="MUTUAL", caCertCredentialName="clients")
    result = f.run(f.ingress(), f.gateway("gw", [server]), tls_secret("app-tls"), ca_secret("clients"))
    ca = f.cred(result, "clients", "client-ca")
    [warn] = [x for x in ca.findings if x.code == "unsupported-reference"]
    assert warn.severity == "warning"


def test_ca_cert_credential_name_as_configmap_may_cross_namespaces() -> None:
    server = f.server([HOST], "app-tls", mode="MUTUAL", caCertCredentialName="configmap://pki/client-ca")
    result = f.run(
        f.ingress(),
        f.gateway("gw", [server]),
        tls_secret("app-tls"),
        f.config_map("client-ca", "pki", {"ca.crt": ca_pem()}),
    )
    assert [c.spec.key for c in result.credentials if c.spec.role == "client-ca"] == [
        ("ConfigMap", "pki", "client-ca", "client-ca")
    ]
    ca = f.cred(result, "client-ca", "client-ca")
    assert ca.state == "ok"
    assert f.codes(ca) == []
    assert "cross-namespace-reference" not in f.codes(result)


def test_missing_configmap_client_ca_is_reported() -> None:
    server = f.server([HOST], "app-tls", mode="MUTUAL", caCertCredentialName="configmap://pki/client-ca")
    result = f.run(f.ingress(), f.gateway("gw", [server]), tls_secret("app-tls"))
    ca = f.cred(result, "client-ca", "client-ca")
    assert ca.spec.kind == "ConfigMap"
    assert "client-ca-missing" in f.codes(ca)


# --- namespaces (§2) ---------------------------------------------------------------


def test_secret_is_expected_in_the_workload_namespace_not_the_gateway_namespace() -> None:
    result = f.run(
        f.ingress("ingress-a"),
        f.gateway("gw", [f.server([HOST], "app-tls")], namespace="default"),
        tls_secret("app-tls", "default"),
    )
    assert keys(result) == [("Secret", "ingress-a", "app-tls", "server")]
    c = f.cred(result, "app-tls")
    assert c.state == "missing"
    assert "secret-wrong-namespace" in f.codes(c)


def test_gateway_selecting_workloads_in_two_namespaces_needs_the_secret_in_both() -> None:
    result = f.run(
        f.ingress("ingress-a"),
        f.ingress("ingress-b"),
        f.gateway("gw", [f.server([HOST], "app-tls")], namespace="default"),
        tls_secret("app-tls", "ingress-a"),
    )
    assert keys(result) == [
        ("Secret", "ingress-a", "app-tls", "server"),
        ("Secret", "ingress-b", "app-tls", "server"),
    ]
    assert f.cred(result, "app-tls", namespace="ingress-a").state == "ok"
    assert f.cred(result, "app-tls", namespace="ingress-b").state == "missing"


def test_mutual_gateway_in_two_namespaces_needs_a_client_ca_in_each() -> None:
    result = f.run(
        f.ingress("ingress-a"),
        f.ingress("ingress-b"),
        f.gateway("gw", [f.server([HOST], "app-tls", mode="MUTUAL")], namespace="default"),
        ca_secret("app-tls-cacert", "ingress-a"),
    )
    assert sorted(c.spec.key for c in result.credentials if c.spec.role == "client-ca") == [
        ("Secret", "ingress-a", "app-tls-cacert", "client-ca"),
        ("Secret", "ingress-b", "app-tls", "client-ca"),
    ]


@pytest.mark.parametrize("kind", ["Pod", "Deployment", "StatefulSet", "DaemonSet"])
def test_every_workload_kind_places_the_secret(kind: str) -> None:
    result = f.run(
        workload(kind, "ingress", "edge", {"istio": "ingressgateway"}),
        f.gateway("gw", [f.server([HOST], "app-tls")], namespace="default"),
    )
    assert keys(result) == [("Secret", "edge", "app-tls", "server")]
    assert "selector-no-workload" not in f.codes(result)


def test_selector_matches_workloads_with_extra_labels_but_not_missing_ones() -> None:
    result = f.run(
        workload("Deployment", "a", "ingress-a", {"istio": "ingressgateway", "app": "edge"}),
        workload("Deployment", "b", "ingress-b", {"istio": "ingressgateway"}),
        f.gateway("gw", [f.server([HOST], "app-tls")], selector={"istio": "ingressgateway", "app": "edge"}),
    )
    assert keys(result) == [("Secret", "ingress-a", "app-tls", "server")]


def test_scope_gateway_to_namespace_limits_workloads_to_the_gateway_namespace() -> None:
    objects = (
        f.ingress("ingress-a"),
        f.ingress("ingress-b"),
        f.gateway("gw", [f.server([HOST], "app-tls")], namespace="ingress-a"),
    )
    unscoped = f.run(*objects)
    scoped = f.run(*objects, cfg={"discovery": {"scope_gateway_to_namespace": True}})
    assert [k[1] for k in keys(unscoped)] == ["ingress-a", "ingress-b"]
    assert [k[1] for k in keys(scoped)] == ["ingress-a"]


def test_scoped_gateway_without_workloads_in_its_namespace_has_no_workload() -> None:
    result = f.run(
        f.ingress("ingress-a"),
        f.gateway("gw", [f.server([HOST], "app-tls")], namespace="default"),
        cfg={"discovery": {"scope_gateway_to_namespace": True}},
    )
    assert keys(result) == [("Secret", "default", "app-tls", "server")]
    [none] = findings_coded(result, "selector-no-workload")
    assert "'default'" in none.message


def test_no_workload_objects_at_all_gives_one_info_finding_and_assumes_gateway_namespaces() -> None:
    result = f.run(
        f.gateway("gw-a", [f.server([HOST], "a-tls")], namespace="ns-a"),
        f.gateway("gw-b", [f.server(["b.example.com"], "b-tls")], namespace="ns-b", selector={"app": "other"}),
    )
    assert keys(result) == [("Secret", "ns-a", "a-tls", "server"), ("Secret", "ns-b", "b-tls", "server")]
    [info] = findings_coded(result, "no-workloads")
    assert info.severity == "info"
    assert findings_coded(result, "selector-no-workload") == []


def test_no_workloads_finding_is_absent_when_workloads_are_present() -> None:
    result = f.run(f.ingress(), f.gateway("gw", [f.server([HOST], "app-tls")]), tls_secret("app-tls"))
    assert findings_coded(result, "no-workloads") == []


def test_no_workloads_finding_is_absent_without_classic_gateways() -> None:
    result = f.run(f.kube_gateway("web", "web", [f.listener("https", HOST, [{"name": "web-tls"}])]))
    assert findings_coded(result, "no-workloads") == []


def test_workloads_present_but_none_matching_is_a_selector_error() -> None:
    result = f.run(
        f.ingress(labels={"istio": "other-gateway"}),
        f.gateway("gw", [f.server([HOST], "app-tls")], namespace="default"),
    )
    [err] = findings_coded(result, "selector-no-workload")
    assert err.severity == "error"
    assert err.object is not None and err.object.name == "gw"
    assert keys(result) == [("Secret", "default", "app-tls", "server")]
    assert findings_coded(result, "no-workloads") == []


def test_selector_no_workload_is_reported_once_per_unmatched_gateway_only() -> None:
    result = f.run(
        f.ingress(),
        f.gateway("matched", [f.server([HOST], "app-tls")]),
        f.gateway("unmatched", [f.server([HOST], "app-tls", port=8443)], selector={"istio": "eastwest"}),
    )
    assert [x.object.name for x in findings_coded(result, "selector-no-workload") if x.object] == ["unmatched"]


# --- one Secret, many references ---------------------------------------------------


def test_secret_shared_by_gateways_is_one_credential_with_all_references_and_hosts() -> None:
    result = f.run(
        f.ingress(),
        f.gateway("gw-a", [f.server(["a.example.com"], "shared-tls")]),
        f.gateway("gw-b", [f.server(["apps/b.example.com", "a.example.com"], "shared-tls", port=8443)]),
        f.secret("shared-tls", leaf=f.make_leaf(["a.example.com", "b.example.com"])),
    )
    assert keys(result) == [("Secret", "istio-system", "shared-tls", "server")]
    c = f.cred(result, "shared-tls")
    assert [(r.name, r.port) for r in c.spec.references] == [("gw-a", 443), ("gw-b", 8443)]
    assert set(c.spec.hosts) == {"a.example.com", "b.example.com"}
    assert len(c.spec.hosts) == 2


def test_reference_records_gateway_listener_mode_and_hosts() -> None:
    found, _ = specs(
        f.ingress(),
        f.gateway("gw", [f.server(["./app.example.com"], "app-tls", mode="OPTIONAL_MUTUAL", name="https-app")]),
    )
    server = next(s for s in found if s.role == "server")
    [ref] = server.references
    assert (ref.group, ref.kind, ref.namespace, ref.name) == ("networking.istio.io", "Gateway", "istio-system", "gw")
    assert (ref.listener, ref.port, ref.mode, ref.hosts) == ("https-app", 443, "OPTIONAL_MUTUAL", (HOST,))


# --- Gateway API (§5) --------------------------------------------------------------


def kgw(listeners: list[dict[str, Any]], namespace: str = "web", **kw: Any) -> dict[str, Any]:
    return f.kube_gateway("web", namespace, listeners, **kw)


def test_gateway_api_certificate_ref_defaults_to_the_gateway_namespace() -> None:
    result = f.run(
        f.ingress(),  # workload namespaces do not matter for Gateway API
        kgw([f.listener("https", HOST, [{"name": "web-tls"}])]),
        tls_secret("web-tls", "web"),
    )
    assert keys(result) == [("Secret", "web", "web-tls", "server")]
    c = f.cred(result, "web-tls")
    assert c.state == "ok"
    [ref] = c.spec.references
    assert (ref.group, ref.listener, ref.mode, ref.hosts) == (GW_API, "https", "SIMPLE", (HOST,))


def test_gateway_api_cross_namespace_ref_without_grant_is_not_permitted() -> None:
    result = f.run(
        kgw([f.listener("https", HOST, [{"name": "web-tls", "namespace": "certs"}])]),
        tls_secret("web-tls", "certs"),
    )
    c = f.cred(result, "web-tls", namespace="certs")
    assert "reference-not-permitted" in f.codes(c)
    assert c.state == "invalid"


@pytest.mark.parametrize("to_name", [None, "web-tls"])
def test_gateway_api_cross_namespace_ref_allowed_by_a_matching_reference_grant(to_name: str | None) -> None:
    result = f.run(
        kgw([f.listener("https", HOST, [{"name": "web-tls", "namespace": "certs"}])]),
        tls_secret("web-tls", "certs"),
        f.reference_grant("allow-web", "certs", from_ns="web", to_name=to_name),
    )
    c = f.cred(result, "web-tls", namespace="certs")
    assert f.codes(c) == []
    assert c.state == "ok"


@pytest.mark.parametrize(
    "grant",
    [
        f.reference_grant("other-name", "certs", from_ns="web", to_name="status-tls"),
        f.reference_grant("other-from", "certs", from_ns="elsewhere"),
        f.reference_grant("wrong-kind", "certs", from_ns="web", kind="ConfigMap"),
        f.reference_grant("wrong-place", "web", from_ns="web"),
    ],
    ids=["to-name-differs", "from-other-namespace", "grants-configmaps", "grant-in-gateway-namespace"],
)
def test_gateway_api_cross_namespace_ref_with_a_non_matching_grant_is_not_permitted(grant: dict[str, Any]) -> None:
    result = f.run(
        kgw([f.listener("https", HOST, [{"name": "web-tls", "namespace": "certs"}])]),
        tls_secret("web-tls", "certs"),
        grant,
    )
    assert "reference-not-permitted" in f.codes(f.cred(result, "web-tls", namespace="certs"))


def test_gateway_api_listener_without_hostname_serves_every_host() -> None:
    result = f.run(kgw([f.listener("https", None, [{"name": "web-tls"}])]), tls_secret("web-tls", "web"))
    assert f.cred(result, "web-tls").spec.hosts == ("*",)


def test_gateway_api_passthrough_listener_ignores_its_certificate_refs() -> None:
    result = f.run(kgw([f.listener("tls", HOST, [{"name": "web-tls"}], mode="Passthrough")]))
    assert result.credentials == ()
    [ignored] = findings_coded(result, "credential-ignored")
    assert ignored.severity == "warning"


def test_gateway_api_passthrough_listener_without_refs_reports_nothing() -> None:
    result = f.run(kgw([f.listener("tls", HOST, [], mode="Passthrough")]))
    assert result.credentials == ()
    assert f.codes(result) == []


def test_gateway_api_listener_without_tls_reads_nothing() -> None:
    result = f.run(kgw([{"name": "http", "port": 80, "protocol": "HTTP", "hostname": HOST}]))
    assert result.credentials == ()
    assert f.codes(result) == []


@pytest.mark.parametrize(
    "ref",
    [{"kind": "ConfigMap", "name": "web-tls"}, {"group": "example.com", "kind": "Secret", "name": "web-tls"}],
    ids=["configmap-kind", "non-core-group"],
)
def test_gateway_api_non_secret_certificate_ref_is_unsupported(ref: dict[str, Any]) -> None:
    result = f.run(kgw([f.listener("https", HOST, [ref, {"name": "good-tls"}])]), tls_secret("good-tls", "web"))
    assert keys(result) == [("Secret", "web", "good-tls", "server")]
    [bad] = findings_coded(result, "unsupported-reference")
    assert bad.severity == "error"


def test_gateway_api_core_group_alias_is_a_secret_reference() -> None:
    ref = {"group": "core", "kind": "Secret", "name": "web-tls"}
    result = f.run(kgw([f.listener("https", HOST, [ref])]), tls_secret("web-tls", "web"))
    assert keys(result) == [("Secret", "web", "web-tls", "server")]
    assert f.codes(result) == []


def test_gateway_api_more_than_two_certificate_refs_is_warned() -> None:
    refs = [{"name": "a-tls"}, {"name": "b-tls"}, {"name": "c-tls"}]
    result = f.run(kgw([f.listener("https", HOST, refs)]))
    [warn] = findings_coded(result, "unsupported-reference")
    assert warn.severity == "warning"
    two = f.run(kgw([f.listener("https", HOST, refs[:2])]))
    assert findings_coded(two, "unsupported-reference") == []


@pytest.mark.parametrize("mode", ["MUTUAL", "OPTIONAL_MUTUAL"])
def test_gateway_api_mutual_option_reads_the_cacert_secret_when_it_exists(mode: str) -> None:
    opts = {"gateway.istio.io/tls-terminate-mode": mode}
    result = f.run(
        kgw([f.listener("https", HOST, [{"name": "web-tls"}], options=opts)]),
        tls_secret("web-tls", "web"),
        ca_secret("web-tls-cacert", "web"),
    )
    ca = f.cred(result, "web-tls-cacert", "client-ca")
    assert ca.spec.namespace == "web"
    assert ca.state == "ok"
    assert [r.mode for r in ca.spec.references] == [mode]


def test_gateway_api_mutual_option_falls_back_to_the_certificate_secret() -> None:
    opts = {"gateway.istio.io/tls-terminate-mode": "MUTUAL"}
    result = f.run(
        kgw([f.listener("https", HOST, [{"name": "web-tls"}], options=opts)]),
        tls_secret("web-tls", "web", **{"ca.crt": f.default_ca().pem()}),
    )
    assert f.cred(result, "web-tls", "client-ca").state == "ok"


def test_gateway_api_without_mutual_option_reads_no_client_ca() -> None:
    result = f.run(
        kgw([f.listener("https", HOST, [{"name": "web-tls"}])]),
        tls_secret("web-tls", "web"),
        ca_secret("web-tls-cacert", "web"),
    )
    assert [c.spec.role for c in result.credentials] == ["server"]


@pytest.mark.parametrize("mode", ["ISTIO_SIMPLE", "ISTIO_MUTUAL"])
def test_gateway_api_istio_mesh_cert_options_read_no_secret(mode: str) -> None:
    opts = {"gateway.istio.io/tls-terminate-mode": mode}
    result = f.run(kgw([f.listener("https", HOST, [], options=opts)]))
    assert result.credentials == ()


def frontend(ca: str, mode: str | None = None, per_port: dict[int, str] | None = None) -> dict[str, Any]:
    def validation(name: str) -> dict[str, Any]:
        v: dict[str, Any] = {"caCertificateRefs": [{"group": "", "kind": "ConfigMap", "name": name}]}
        if mode:
            v["mode"] = mode
        return {"validation": v}

    front: dict[str, Any] = {"default": validation(ca)}
    if per_port:
        front["perPort"] = [{"port": p, "tls": validation(n)} for p, n in per_port.items()]
    return {"frontend": front}


def test_gateway_api_frontend_validation_reads_a_configmap_client_ca_in_mutual_mode() -> None:
    result = f.run(
        kgw([f.listener("https", HOST, [{"name": "web-tls"}])], spec_tls=frontend("client-ca")),
        tls_secret("web-tls", "web"),
        f.config_map("client-ca", "web", {"ca.crt": ca_pem()}),
    )
    assert keys(result) == [
        ("ConfigMap", "web", "client-ca", "client-ca"),
        ("Secret", "web", "web-tls", "server"),
    ]
    ca = f.cred(result, "client-ca", "client-ca")
    assert ca.state == "ok"
    assert [r.mode for r in ca.spec.references] == ["MUTUAL"]
    assert [r.mode for r in f.cred(result, "web-tls").spec.references] == ["MUTUAL"]


def test_gateway_api_frontend_allow_insecure_fallback_is_optional_mutual() -> None:
    result = f.run(
        kgw(
            [f.listener("https", HOST, [{"name": "web-tls"}])], spec_tls=frontend("client-ca", "AllowInsecureFallback")
        ),
        tls_secret("web-tls", "web"),
        f.config_map("client-ca", "web", {"ca.crt": ca_pem()}),
    )
    assert [r.mode for r in f.cred(result, "client-ca", "client-ca").spec.references] == ["OPTIONAL_MUTUAL"]


def test_gateway_api_frontend_per_port_overrides_the_default() -> None:
    listeners = [
        f.listener("https", HOST, [{"name": "web-tls"}], port=443),
        f.listener("https-admin", "admin.example.com", [{"name": "admin-tls"}], port=8443),
    ]
    result = f.run(
        kgw(listeners, spec_tls=frontend("default-ca", per_port={8443: "admin-ca"})),
        f.config_map("default-ca", "web", {"ca.crt": ca_pem()}),
        f.config_map("admin-ca", "web", {"ca.crt": ca_pem()}),
    )
    default_ca = f.cred(result, "default-ca", "client-ca")
    admin_ca = f.cred(result, "admin-ca", "client-ca")
    assert [r.listener for r in default_ca.spec.references] == ["https"]
    assert [r.listener for r in admin_ca.spec.references] == ["https-admin"]


def test_gateway_api_frontend_configmap_in_another_namespace_needs_a_configmap_grant() -> None:
    spec_tls = {
        "frontend": {
            "default": {"validation": {"caCertificateRefs": [{"kind": "ConfigMap", "name": "ca", "namespace": "pki"}]}}
        }
    }
    gw = kgw([f.listener("https", HOST, [{"name": "web-tls"}])], spec_tls=spec_tls)
    objs = (gw, tls_secret("web-tls", "web"), f.config_map("ca", "pki", {"ca.crt": ca_pem()}))
    denied = f.run(*objs, f.reference_grant("secrets-only", "pki", from_ns="web"))
    allowed = f.run(*objs, f.reference_grant("configmaps", "pki", from_ns="web", kind="ConfigMap"))
    assert "reference-not-permitted" in f.codes(f.cred(denied, "ca", "client-ca"))
    assert f.codes(f.cred(allowed, "ca", "client-ca")) == []


def test_credential_name_and_credential_names_together_are_flagged() -> None:
    from rotator.discover.credentials import discover

    gw = f.gateway("gw", [f.server(["a.example.com"], "one", credentialNames=["two"])])
    specs, found = discover(f.inventory(f.ingress(), gw))
    assert [s.name for s in specs] == ["two"]
    (hit,) = [x for x in found if x.code == "invalid-manifest"]
    assert "both credentialName and credentialNames" in hit.message and "test.yaml#2" in hit.message


def test_gateways_sharing_a_selector_are_matched_against_the_pods_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thousands of Gateways usually share a handful of selectors: matching each Gateway
    against every gateway pod was O(gateways × pods) (a million calls at 5,000 × 200)."""
    import rotator.discover.routing as routing

    calls = 0
    real = routing.selector_matches

    def counting(selector: Any, labels: Any) -> bool:
        nonlocal calls
        calls += 1
        return real(selector, labels)

    monkeypatch.setattr(routing, "selector_matches", counting)
    pods = [f.deployment(f"ingress-{i}", f"ns-{i % 5}", {"istio": "ingressgateway"}) for i in range(40)]
    gateways = [f.gateway(f"gw-{i}", [f.server([f"h{i}.example.com"], f"tls-{i}")]) for i in range(200)]
    inv = f.inventory(*pods, *gateways)
    specs, _ = discover(inv)
    assert calls <= 40 * 2  # one selector: each pod matched once (twice would still be linear)
    assert {s.namespace for s in specs} == {f"ns-{i}" for i in range(5)}
    assert len(specs) == 200 * 5
