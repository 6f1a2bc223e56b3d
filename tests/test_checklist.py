"""The seed checklist (rotator/discover/wiring.py) against Istio's routing rules (reference note §6, §7).

Each rule has a case that must produce the finding and one that must not; the cases are
built as manifests and fed through the real inventory parser.
"""

from __future__ import annotations

from typing import Any

import pytest

from rotator.discover import wiring as checklist
from rotator.discover.collect import DiscoveryOptions
from rotator.model import Finding
from tests.support import factory as f

HOST = "app.example.com"


def check(*objects: dict[str, Any], scope: bool = False) -> list[Finding]:
    return checklist.check(f.inventory(*objects), DiscoveryOptions(scope_gateway_to_namespace=scope))


def coded(found: list[Finding], code: str) -> list[Finding]:
    return [x for x in found if x.code == code]


def gw(
    name: str = "gw",
    namespace: str = "istio-system",
    hosts: tuple[str, ...] = (HOST,),
    port: int = 443,
    selector: dict[str, str] | None = None,
    bind: str | None = None,
) -> dict[str, Any]:
    server = f.server(list(hosts), f"{name}-tls", port=port)
    if bind is not None:
        server["bind"] = bind
    return f.gateway(name, [server], namespace=namespace, selector=selector)


def route(host: str, subset: str = "", mirror: dict[str, str] | None = None) -> dict[str, Any]:
    dest: dict[str, Any] = {"host": host}
    if subset:
        dest["subset"] = subset
    out: dict[str, Any] = {"route": [{"destination": dest}]}
    if mirror is not None:
        out["mirror"] = mirror
    return out


# --- vs-gateway-not-found (IST0101 "gateway") --------------------------------------


@pytest.mark.parametrize(
    ("vs_ns", "ref"),
    [
        ("istio-system", "gw"),
        ("apps", "istio-system/gw"),
        ("istio-system", "./gw"),
        ("apps", "gw.istio-system.svc.cluster.local"),
    ],
    ids=["short-name-in-vs-namespace", "ns-slash-name", "dot-slash-name", "legacy-fqdn"],
)
def test_vs_gateway_reference_that_resolves_to_a_gateway_is_fine(vs_ns: str, ref: str) -> None:
    found = check(f.ingress(), gw(), f.virtual_service("vs", vs_ns, [HOST], [ref]))
    assert coded(found, "vs-gateway-not-found") == []


def test_vs_short_gateway_name_resolves_in_the_vs_namespace_not_the_gateway_namespace() -> None:
    found = check(f.ingress(), gw(), f.virtual_service("vs", "apps", [HOST], ["gw"]))
    [missing] = coded(found, "vs-gateway-not-found")
    assert missing.severity == "error"
    assert "apps/gw" in missing.message
    assert missing.object is not None and (missing.object.namespace, missing.object.name) == ("apps", "vs")


def test_vs_gateway_in_a_namespace_without_that_gateway_is_not_found() -> None:
    found = check(f.ingress(), gw(), f.virtual_service("vs", "apps", [HOST], ["other/gw"]))
    assert len(coded(found, "vs-gateway-not-found")) == 1


def test_vs_mesh_gateway_is_not_a_gateway_reference() -> None:
    found = check(f.ingress(), gw(), f.virtual_service("vs", "apps", [HOST], ["mesh", "istio-system/gw"]))
    assert coded(found, "vs-gateway-not-found") == []


def test_vs_gateway_must_be_a_classic_gateway() -> None:
    kube = f.kube_gateway("web", "apps", [f.listener("https", HOST, [{"name": "web-tls"}])])
    found = check(kube, f.virtual_service("vs", "apps", [HOST], ["web"]))
    assert len(coded(found, "vs-gateway-not-found")) == 1


# --- vs-host-not-in-gateway (IST0132, §7.2) ----------------------------------------


def test_vs_host_served_by_its_gateway_is_fine() -> None:
    found = check(f.ingress(), gw(), f.virtual_service("vs", "apps", [HOST], ["istio-system/gw"]))
    assert coded(found, "vs-host-not-in-gateway") == []


def test_vs_host_not_served_by_its_gateway_is_a_warning() -> None:
    found = check(f.ingress(), gw(), f.virtual_service("vs", "apps", ["other.example.com"], ["istio-system/gw"]))
    [miss] = coded(found, "vs-host-not-in-gateway")
    assert miss.severity == "warning"
    assert "other.example.com" in miss.message


def test_namespaced_server_host_only_applies_to_virtual_services_in_that_namespace() -> None:
    gateway = gw(hosts=(f"apps/{HOST}",))
    same = check(f.ingress(), gateway, f.virtual_service("vs", "apps", [HOST], ["istio-system/gw"]))
    other = check(f.ingress(), gateway, f.virtual_service("vs", "shop", [HOST], ["istio-system/gw"]))
    assert coded(same, "vs-host-not-in-gateway") == []
    assert len(coded(other, "vs-host-not-in-gateway")) == 1


def test_dot_slash_server_host_applies_to_the_gateway_namespace_only() -> None:
    gateway = gw(hosts=(f"./{HOST}",))
    same = check(f.ingress(), gateway, f.virtual_service("vs", "istio-system", [HOST], ["gw"]))
    other = check(f.ingress(), gateway, f.virtual_service("vs", "apps", [HOST], ["istio-system/gw"]))
    assert coded(same, "vs-host-not-in-gateway") == []
    assert len(coded(other, "vs-host-not-in-gateway")) == 1


def test_star_slash_server_host_applies_to_every_namespace() -> None:
    found = check(f.ingress(), gw(hosts=(f"*/{HOST}",)), f.virtual_service("vs", "apps", [HOST], ["istio-system/gw"]))
    assert coded(found, "vs-host-not-in-gateway") == []


@pytest.mark.parametrize("vs_host", ["a.example.com", "a.b.example.com", "*.example.com", "*.a.example.com"])
def test_wildcard_server_host_matches_any_number_of_labels_like_istio(vs_host: str) -> None:
    found = check(
        f.ingress(), gw(hosts=("*.example.com",)), f.virtual_service("vs", "apps", [vs_host], ["istio-system/gw"])
    )
    assert coded(found, "vs-host-not-in-gateway") == []


@pytest.mark.parametrize("vs_host", ["example.com", "a.example.org", "a.example.COM"])
def test_wildcard_server_host_does_not_match_its_bare_suffix_other_domains_or_other_case(vs_host: str) -> None:
    found = check(
        f.ingress(), gw(hosts=("*.example.com",)), f.virtual_service("vs", "apps", [vs_host], ["istio-system/gw"])
    )
    assert len(coded(found, "vs-host-not-in-gateway")) == 1


def test_wildcard_vs_host_matches_a_concrete_server_host() -> None:
    found = check(f.ingress(), gw(), f.virtual_service("vs", "apps", ["*.example.com"], ["istio-system/gw"]))
    assert coded(found, "vs-host-not-in-gateway") == []


def test_catch_all_server_host_serves_every_vs_host() -> None:
    found = check(
        f.ingress(), gw(hosts=("*",)), f.virtual_service("vs", "apps", ["anything.test"], ["istio-system/gw"])
    )
    assert coded(found, "vs-host-not-in-gateway") == []


def test_vs_host_check_is_skipped_for_missing_gateways_and_mesh() -> None:
    found = check(f.ingress(), gw(), f.virtual_service("vs", "apps", ["other.example.com"], ["mesh", "nope"]))
    assert coded(found, "vs-host-not-in-gateway") == []
    assert len(coded(found, "vs-gateway-not-found")) == 1


def test_vs_host_is_reported_per_gateway_that_does_not_serve_it() -> None:
    found = check(
        f.ingress(),
        gw("gw-a", hosts=("a.example.com",)),
        gw("gw-b", hosts=("b.example.com",), port=8443),
        f.virtual_service("vs", "istio-system", ["a.example.com"], ["gw-a", "gw-b"]),
    )
    [miss] = coded(found, "vs-host-not-in-gateway")
    assert "gw-b" in miss.message


# --- subset-not-defined (IST0101 "host+subset") ------------------------------------


def test_defined_subset_is_fine() -> None:
    found = check(
        f.destination_rule("reviews", "apps", "reviews", ["v1", "v2"]),
        f.virtual_service("vs", "apps", [HOST], http=[route("reviews", "v2")]),
    )
    assert coded(found, "subset-not-defined") == []


def test_undefined_subset_is_an_error_naming_the_defined_ones() -> None:
    found = check(
        f.destination_rule("reviews", "apps", "reviews", ["v1"]),
        f.virtual_service("vs", "apps", [HOST], http=[route("reviews", "v3")]),
    )
    [err] = coded(found, "subset-not-defined")
    assert err.severity == "error"
    assert "'v3'" in err.message and "v1" in err.message


def test_route_without_subset_needs_no_destination_rule() -> None:
    found = check(f.virtual_service("vs", "apps", [HOST], http=[route("reviews")]))
    assert coded(found, "subset-not-defined") == []


def test_short_host_resolves_in_the_vs_namespace_not_the_destination_rule_namespace() -> None:
    found = check(
        f.destination_rule("reviews", "apps", "reviews", ["v1"]),
        f.virtual_service("vs", "shop", [HOST], http=[route("reviews", "v1")]),
    )
    [err] = coded(found, "subset-not-defined")
    assert "reviews.shop.svc.cluster.local" in err.message


@pytest.mark.parametrize("vs_host", ["reviews.apps.svc.cluster.local", "reviews.apps"])
def test_qualified_vs_host_matches_a_short_destination_rule_host_in_its_namespace(vs_host: str) -> None:
    found = check(
        f.destination_rule("reviews", "apps", "reviews", ["v1"]),
        f.virtual_service("vs", "shop", [HOST], http=[route(vs_host, "v1")]),
    )
    assert coded(found, "subset-not-defined") == []


def test_fqdn_destination_rule_host_in_another_namespace_defines_the_subset() -> None:
    found = check(
        f.destination_rule("reviews", "mesh-config", "reviews.apps.svc.cluster.local", ["v1"]),
        f.virtual_service("vs", "apps", [HOST], http=[route("reviews", "v1")]),
    )
    assert coded(found, "subset-not-defined") == []


def test_short_destination_rule_host_resolves_in_the_destination_rule_namespace() -> None:
    found = check(
        f.destination_rule("reviews", "mesh-config", "reviews", ["v1"]),
        f.virtual_service("vs", "apps", [HOST], http=[route("reviews", "v1")]),
    )
    assert len(coded(found, "subset-not-defined")) == 1


def test_mirror_subset_must_be_defined_too() -> None:
    dr = f.destination_rule("reviews", "apps", "reviews", ["v1"])
    bad = check(
        dr, f.virtual_service("vs", "apps", [HOST], http=[route("reviews", "v1", {"host": "reviews", "subset": "v9"})])
    )
    good = check(
        dr, f.virtual_service("vs", "apps", [HOST], http=[route("reviews", "v1", {"host": "reviews", "subset": "v1"})])
    )
    [err] = coded(bad, "subset-not-defined")
    assert "mirror" in err.message and "'v9'" in err.message
    assert coded(good, "subset-not-defined") == []


def test_mirrors_list_subsets_must_be_defined_too() -> None:
    http = [{**route("reviews", "v1"), "mirrors": [{"destination": {"host": "reviews", "subset": "shadow"}}]}]
    found = check(
        f.destination_rule("reviews", "apps", "reviews", ["v1"]),
        f.virtual_service("vs", "apps", [HOST], http=http),
    )
    [err] = coded(found, "subset-not-defined")
    assert "'shadow'" in err.message


def test_same_undefined_subset_used_twice_is_reported_once() -> None:
    found = check(f.virtual_service("vs", "apps", [HOST], http=[route("reviews", "v2"), route("reviews", "v2")]))
    assert len(coded(found, "subset-not-defined")) == 1


def test_subsets_are_merged_across_destination_rules_for_the_same_host() -> None:
    found = check(
        f.destination_rule("reviews-a", "apps", "reviews", ["v1"]),
        f.destination_rule("reviews-b", "apps", "reviews.apps.svc.cluster.local", ["v2"]),
        f.virtual_service("vs", "apps", [HOST], http=[route("reviews", "v1"), route("reviews", "v2")]),
    )
    assert coded(found, "subset-not-defined") == []


# --- conflicting-gateways (IST0145, §7.2.6) ----------------------------------------


def test_same_port_same_host_same_workloads_conflict() -> None:
    found = check(f.ingress(), gw("gw-a"), gw("gw-b"))
    [conflict] = coded(found, "conflicting-gateways")
    assert conflict.severity == "error"
    assert HOST in conflict.message and "443" in conflict.message


def test_conflict_is_reported_once_per_port_and_host() -> None:
    found = check(f.ingress(), gw("gw-a", hosts=(HOST, "b.example.com")), gw("gw-b", hosts=(HOST, "b.example.com")))
    assert len(coded(found, "conflicting-gateways")) == 2


def test_different_ports_do_not_conflict() -> None:
    found = check(f.ingress(), gw("gw-a", port=443), gw("gw-b", port=8443))
    assert coded(found, "conflicting-gateways") == []


def test_different_hosts_do_not_conflict() -> None:
    found = check(f.ingress(), gw("gw-a", hosts=("a.example.com",)), gw("gw-b", hosts=("b.example.com",)))
    assert coded(found, "conflicting-gateways") == []


def test_overlapping_but_not_identical_wildcard_hosts_do_not_conflict() -> None:
    found = check(f.ingress(), gw("gw-a", hosts=("*.example.com",)), gw("gw-b", hosts=(HOST,)))
    assert coded(found, "conflicting-gateways") == []


def test_gateways_on_disjoint_workloads_do_not_conflict() -> None:
    found = check(
        f.deployment("ingress-a", "ingress-a", {"istio": "ingress-a"}),
        f.deployment("ingress-b", "ingress-b", {"istio": "ingress-b"}),
        gw("gw-a", selector={"istio": "ingress-a"}),
        gw("gw-b", selector={"istio": "ingress-b"}),
    )
    assert coded(found, "conflicting-gateways") == []


def test_gateways_sharing_one_workload_conflict_even_with_different_selectors() -> None:
    found = check(
        f.deployment("ingress", "istio-system", {"istio": "ingressgateway", "tier": "edge"}),
        gw("gw-a", selector={"istio": "ingressgateway"}),
        gw("gw-b", selector={"tier": "edge"}),
    )
    assert len(coded(found, "conflicting-gateways")) == 1


def test_without_workloads_contained_selectors_conflict_and_disjoint_ones_do_not() -> None:
    overlapping = check(
        gw("gw-a", selector={"istio": "ingressgateway"}),
        gw("gw-b", selector={"istio": "ingressgateway", "tier": "edge"}),
    )
    disjoint = check(gw("gw-a", selector={"istio": "ingress-a"}), gw("gw-b", selector={"istio": "ingress-b"}))
    assert len(coded(overlapping, "conflicting-gateways")) == 1
    assert coded(disjoint, "conflicting-gateways") == []


def test_different_bind_addresses_do_not_conflict() -> None:
    found = check(f.ingress(), gw("gw-a", bind="10.0.0.1"), gw("gw-b", bind="10.0.0.2"))
    assert coded(found, "conflicting-gateways") == []


def test_star_slash_host_is_the_same_host_as_the_bare_name() -> None:
    found = check(f.ingress(), gw("gw-a", hosts=(f"*/{HOST}",)), gw("gw-b", hosts=(HOST,)))
    assert len(coded(found, "conflicting-gateways")) == 1


def test_dot_slash_hosts_in_different_gateway_namespaces_do_not_conflict() -> None:
    # ./h becomes <gateway namespace>/h before istiod compares hosts (§7.1).
    found = check(
        f.ingress(),
        gw("gw-a", namespace="team-a", hosts=(f"./{HOST}",)),
        gw("gw-b", namespace="team-b", hosts=(f"./{HOST}",)),
    )
    assert coded(found, "conflicting-gateways") == []


def test_dot_slash_host_equals_the_gateway_namespace_prefix() -> None:
    found = check(
        f.ingress(),
        gw("gw-a", namespace="team-a", hosts=(f"./{HOST}",)),
        gw("gw-b", namespace="team-a", hosts=(f"team-a/{HOST}",)),
    )
    assert len(coded(found, "conflicting-gateways")) == 1


def test_conflict_names_the_younger_gateway_as_the_one_dropped() -> None:
    older = gw("zz-old")
    older["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    younger = gw("aa-new")
    younger["metadata"]["creationTimestamp"] = "2026-05-01T00:00:00Z"
    [conflict] = coded(check(f.ingress(), younger, older), "conflicting-gateways")
    assert conflict.object is not None and conflict.object.name == "aa-new"


def test_scope_gateway_to_namespace_separates_gateways_in_different_namespaces() -> None:
    objects = (
        f.ingress("ns-a"),
        f.ingress("ns-b"),
        gw("gw-a", namespace="ns-a"),
        gw("gw-b", namespace="ns-b"),
    )
    assert len(coded(check(*objects), "conflicting-gateways")) == 1
    assert coded(check(*objects, scope=True), "conflicting-gateways") == []


# --- the checklist in the pipeline -------------------------------------------------


def test_pipeline_reports_checklist_findings_alongside_credentials() -> None:
    result = f.run(
        f.ingress(),
        gw(),
        f.secret("gw-tls", leaf=f.make_leaf([HOST])),
        f.virtual_service(
            "vs", "apps", ["other.example.com"], ["istio-system/gw", "missing"], http=[route("svc", "v1")]
        ),
    )
    assert f.codes(result) == ["subset-not-defined", "vs-gateway-not-found", "vs-host-not-in-gateway"]
    assert f.cred(result, "gw-tls").state == "ok"


def test_clean_configuration_has_no_checklist_findings() -> None:
    found = check(
        f.ingress(),
        gw(),
        f.destination_rule("svc", "apps", "svc", ["v1"]),
        f.virtual_service("vs", "apps", [HOST], ["istio-system/gw"], http=[route("svc", "v1")]),
    )
    assert found == []


def test_tls_conflict_says_the_certificate_is_lost_and_http_conflict_does_not() -> None:
    [tls] = coded(check(f.ingress(), gw("gw-a"), gw("gw-b")), "conflicting-gateways")
    assert "certificate included" in tls.message
    http_a = f.gateway("http-a", [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": [HOST]}])
    http_b = f.gateway("http-b", [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": [HOST]}])
    [plain] = coded(check(f.ingress(), http_a, http_b), "conflicting-gateways")
    assert "certificate" not in plain.message and "IST0145" in plain.message
