"""Host matching: Istio's routing dialect and the TLS client's SAN dialect (reference §7)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rotator.hosts import (
    coverage_targets,
    covered,
    is_wildcard,
    istio_intersection,
    istio_matches,
    istio_subset_of,
    normalize_dns,
    san_covers,
    strip_namespace,
)

# --- strategies ----------------------------------------------------------------------

LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,12}[a-z0-9])?", fullmatch=True)
# The last label is alphabetic, as every real TLD is, so no generated name is an IP address.
TLD = st.from_regex(r"[a-z]{2,6}", fullmatch=True)
DOMAIN = st.builds(lambda labels, tld: ".".join([*labels, tld]), st.lists(LABEL, max_size=3), TLD)
ISTIO_HOST = st.one_of(st.just("*"), DOMAIN.map(lambda d: "*." + d), DOMAIN)
# Anything at all, to check the Istio functions are total and keep their algebra on odd input.
ANY_HOST = st.one_of(ISTIO_HOST, st.text(max_size=12), st.text(alphabet="*.abc", max_size=8))


# --- strip_namespace / is_wildcard ---------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("app.example.com", ("*", "app.example.com")),
        ("prod/app.example.com", ("prod", "app.example.com")),
        ("./app.example.com", (".", "app.example.com")),
        ("*/app.example.com", ("*", "app.example.com")),
        ("*/*", ("*", "*")),
        ("ns/*.example.com", ("ns", "*.example.com")),
    ],
)
def test_strip_namespace(raw: str, expected: tuple[str, str]) -> None:
    assert strip_namespace(raw) == expected


def test_is_wildcard() -> None:
    assert is_wildcard("*")
    assert is_wildcard("*.example.com")
    assert not is_wildcard("example.com")
    assert not is_wildcard("a.*.example.com")


# --- Istio matching (reference §7.2.3) ----------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("*.example.com", "a.example.com", True),
        # multi-label suffix wildcard: broader than a TLS SAN wildcard
        ("*.example.com", "a.b.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "badexample.com", False),
        ("*", "anything.at.all", True),
        ("*", "*.example.com", True),
        ("*", "*", True),
        ("*.com", "*.foo.com", True),
        ("*.foo.com", "*.com", True),
        ("*.foo.com", "*.bar.com", False),
        ("*.foo.com", "*.foo.com", True),
        ("a.example.com", "a.example.com", True),
        ("a.example.com", "b.example.com", False),
        # case-sensitive, unlike TLS
        ("a.facebook.com", "*.facebook.COM", False),
        ("A.example.com", "a.example.com", False),
    ],
)
def test_istio_matches(a: str, b: str, expected: bool) -> None:
    assert istio_matches(a, b) is expected
    assert istio_matches(b, a) is expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("a.example.com", "*.example.com", True),
        ("a.b.example.com", "*.example.com", True),
        ("*.b.example.com", "*.example.com", True),
        ("*.example.com", "*.b.example.com", False),
        ("*.example.com", "a.example.com", False),  # a wildcard is never inside a plain name
        ("*.example.com", "*.example.com", True),
        ("a.example.com", "a.example.com", True),
        ("a.example.com", "b.example.com", False),
        ("x.y", "*", True),
        ("*.com", "*", True),
        ("*", "*", True),
        ("*", "*.com", False),
        ("example.com", "*.example.com", False),
        ("a.example.COM", "*.example.com", False),
    ],
)
def test_istio_subset_of(a: str, b: str, expected: bool) -> None:
    assert istio_subset_of(a, b) is expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("*.example.com", "a.example.com", "a.example.com"),
        ("a.example.com", "*.example.com", "a.example.com"),
        ("*.com", "*.foo.com", "*.foo.com"),
        ("*", "x.y.com", "x.y.com"),
        ("*", "*.y.com", "*.y.com"),
        ("*", "*", "*"),
        ("a.com", "a.com", "a.com"),
        ("a.com", "b.com", None),
        ("*.example.com", "example.com", None),
        ("*.foo.com", "*.bar.com", None),
    ],
)
def test_istio_intersection(a: str, b: str, expected: str | None) -> None:
    assert istio_intersection(a, b) == expected
    assert istio_intersection(b, a) == expected


@given(ANY_HOST, ANY_HOST)
def test_istio_matches_is_symmetric(a: str, b: str) -> None:
    assert istio_matches(a, b) == istio_matches(b, a)


@given(ANY_HOST)
def test_istio_matches_and_subset_are_reflexive(a: str) -> None:
    assert istio_matches(a, a)
    assert istio_subset_of(a, a)


@given(ANY_HOST, ANY_HOST)
def test_subset_implies_matches(a: str, b: str) -> None:
    if istio_subset_of(a, b):
        assert istio_matches(a, b)


@given(ISTIO_HOST, ISTIO_HOST)
def test_matching_hosts_are_nested(a: str, b: str) -> None:
    """For well-formed hosts, two hosts match exactly when one contains the other."""
    assert istio_matches(a, b) == (istio_subset_of(a, b) or istio_subset_of(b, a))


@given(ANY_HOST, ANY_HOST)
def test_intersection_is_the_narrower_host(a: str, b: str) -> None:
    inter = istio_intersection(a, b)
    assert (inter is None) == (not istio_matches(a, b))
    assert istio_intersection(b, a) == inter
    if inter is not None:
        assert inter in (a, b)
        assert istio_subset_of(inter, a)
        assert istio_subset_of(inter, b)


@given(DOMAIN)
def test_star_matches_and_contains_every_host(d: str) -> None:
    for h in (d, "*." + d):
        assert istio_matches("*", h)
        assert istio_subset_of(h, "*")
        assert not istio_subset_of("*", h)


@given(LABEL, LABEL, DOMAIN)
def test_istio_wildcard_spans_labels(a: str, b: str, d: str) -> None:
    assert istio_matches("*." + d, f"{a}.{d}")
    assert istio_matches("*." + d, f"{a}.{b}.{d}")
    assert not istio_matches("*." + d, d)


# --- SAN coverage (reference §7.3, RFC 6125 §6.4.3) ---------------------------------


@pytest.mark.parametrize(
    ("san", "host", "expected"),
    [
        ("app.example.com", "app.example.com", True),
        ("app.example.com", "other.example.com", False),
        ("*.example.com", "a.example.com", True),
        ("*.example.com", "example.com", False),  # never the bare domain
        ("*.example.com", "a.b.example.com", False),  # exactly one label
        ("*.example.com", ".example.com", False),  # the label must be non-empty
        ("*.b.example.com", "a.b.example.com", True),
        # partial-label and inner wildcards never match
        ("f*.example.com", "foo.example.com", False),
        ("*o.example.com", "foo.example.com", False),
        ("f*o.example.com", "foo.example.com", False),
        ("a.*.example.com", "a.b.example.com", False),
        ("*.*.example.com", "a.b.example.com", False),
        ("*", "example.com", False),
        ("*", "localhost", False),
        # case-insensitive
        ("APP.Example.COM", "app.example.com", True),
        ("app.example.com", "App.EXAMPLE.com", True),
        ("*.EXAMPLE.com", "Www.example.COM", True),
        # trailing dot (absolute names)
        ("app.example.com.", "app.example.com", True),
        ("app.example.com", "app.example.com.", True),
        ("*.example.com.", "a.example.com", True),
        ("*.example.com", "a.example.com.", True),
        # IDN: u-label host against A-label SAN, either way round
        ("xn--bcher-kva.example", "bücher.example", True),
        ("bücher.example", "xn--bcher-kva.example", True),
        ("*.xn--bcher-kva.example", "shop.bücher.example", True),
        ("xn--bcher-kva.example", "BÜCHER.example", True),
        ("xn--bcher-kva.example", "bucher.example", False),
        # IP addresses: IP SAN against IP host only, compared as addresses
        ("10.0.0.1", "10.0.0.1", True),
        ("10.0.0.2", "10.0.0.1", False),
        ("*.0.0.1", "10.0.0.1", False),
        ("2001:db8::1", "2001:DB8:0:0:0:0:0:1", True),
        ("::1", "[::1]", True),
        ("10.0.0.1", "host.example.com", False),
        ("host.example.com", "10.0.0.1", False),
        # wildcard hosts need the same wildcard SAN
        ("*.example.com", "*.example.com", True),
        ("*.EXAMPLE.com", "*.example.com", True),
        ("*.example.com", "*.a.example.com", False),
        ("a.example.com", "*.example.com", False),
        ("*.com", "*.example.com", False),
        ("*", "*", False),
        ("f*.example.com", "f*.example.com", False),
        ("a.*.example.com", "a.*.example.com", False),
    ],
)
def test_san_covers(san: str, host: str, expected: bool) -> None:
    assert san_covers(san, host) is expected


def test_normalize_dns() -> None:
    assert normalize_dns(" App.Example.COM. ") == "app.example.com"
    assert normalize_dns("Bücher.Example") == "xn--bcher-kva.example"
    assert normalize_dns("*.bücher.example") == "*.xn--bcher-kva.example"


def test_covered() -> None:
    sans = ["example.com", "*.example.com"]
    assert covered("example.com", sans)
    assert covered("www.example.com", sans)
    assert not covered("a.b.example.com", sans)
    assert not covered("example.com", [])


@given(LABEL, DOMAIN)
def test_wildcard_san_covers_exactly_one_label(label: str, d: str) -> None:
    assert san_covers("*." + d, f"{label}.{d}")
    assert san_covers("*." + d.upper(), f"{label}.{d}")
    assert not san_covers("*." + d, f"x.{label}.{d}")
    assert not san_covers("*." + d, d)


@given(DOMAIN)
def test_san_equal_to_plain_host_covers_it(host: str) -> None:
    assert san_covers(host, host)
    assert san_covers(host.upper(), host)
    assert san_covers(host + ".", host)


@given(LABEL, LABEL, DOMAIN)
def test_partial_label_wildcard_never_covers(prefix: str, rest: str, d: str) -> None:
    san = f"{prefix}*.{d}"
    assert not san_covers(san, f"{prefix}{rest}.{d}")
    assert not san_covers(san, f"{prefix}.{d}")
    assert not san_covers(f"{rest}.*.{d}", f"{rest}.{prefix}.{d}")


@given(ISTIO_HOST, ISTIO_HOST)
def test_tls_coverage_is_narrower_than_istio_matching(san: str, host: str) -> None:
    """Whatever a SAN lets a client accept, Istio would also route to that server host."""
    if san_covers(san, host):
        assert istio_matches(san, host)


@given(st.text(max_size=20), st.text(max_size=20))
def test_san_covers_is_total(san: str, host: str) -> None:
    assert san_covers(san, host) in (True, False)


# --- coverage targets (reference §7.3 steps 1-4) ------------------------------------

ONE_LABEL_REASON = "one-label TLS wildcard"


def test_plain_server_host_is_the_target_and_namespace_is_stripped() -> None:
    assert coverage_targets(["prod/app.example.com"], []) == [("app.example.com", "server host")]


def test_plain_server_host_ignores_routes() -> None:
    assert [h for h, _ in coverage_targets(["app.example.com"], ["app.example.com", "x.y.z"])] == ["app.example.com"]


def test_wildcard_server_host_needs_its_wildcard_and_each_deep_route() -> None:
    targets = dict(
        coverage_targets(
            ["*.example.com"],
            ["a.example.com", "a.b.example.com", "*.b.example.com", "*.example.com", "ns/c.d.example.com", "x.com"],
        )
    )
    assert targets["*.example.com"] == "server host"
    # one label below: the *.example.com SAN serves it, nothing more to require
    assert "a.example.com" not in targets
    assert ONE_LABEL_REASON in targets["a.b.example.com"]
    assert ONE_LABEL_REASON in targets["c.d.example.com"]
    # a narrower wildcard route reaches names two labels down; *.example.com cannot serve them
    assert ONE_LABEL_REASON in targets["*.b.example.com"]
    assert "x.com" not in targets
    assert list(targets) == ["*.example.com", "a.b.example.com", "*.b.example.com", "c.d.example.com"]


def test_deep_wildcard_route_is_reported_uncovered_by_the_parent_wildcard() -> None:
    sans = ["*.example.com"]
    missing = [h for h, _ in coverage_targets(["*.example.com"], ["*.b.example.com"]) if not covered(h, sans)]
    assert missing == ["*.b.example.com"]
    assert all(covered(h, ["*.example.com", "*.b.example.com"]) for h, _ in coverage_targets(["*.example.com"], []))


def test_catch_all_server_host_defers_to_routes() -> None:
    targets = coverage_targets(["*"], ["a.example.com", "*", "*.example.com", "ns/b.example.com"])
    assert [h for h, _ in targets] == ["a.example.com", "*.example.com", "b.example.com"]
    assert all("'*'" in why for _, why in targets)
    assert coverage_targets(["*/*"], []) == []


def test_targets_are_deduplicated_across_server_hosts() -> None:
    targets = coverage_targets(["a.example.com", "ns/a.example.com", "*"], ["a.example.com"])
    assert targets == [("a.example.com", "server host")]


@given(DOMAIN, st.lists(st.one_of(ISTIO_HOST, st.builds(lambda a, b, d: f"{a}.{b}.{d}", LABEL, LABEL, DOMAIN))))
def test_wildcard_targets_are_exactly_what_its_san_cannot_serve(d: str, routes: list[str]) -> None:
    server = "*." + d
    targets = dict(coverage_targets([server], routes))
    assert targets[server] == "server host"
    for r in routes:
        # a route the *.d SAN cannot serve but Istio sends through this server must be a target
        narrower = r != server and istio_subset_of(r, server)
        if narrower and not san_covers(server, r):
            assert r in targets
    for t in targets:
        assert t == server or (t in routes and not san_covers(server, t))


def test_ip_host_is_covered_only_by_an_ip_address_san_when_types_are_known() -> None:
    # A dNSName that spells an address does not satisfy TLS clients for that IP.
    assert not covered("10.0.0.1", ["10.0.0.1"], [])
    assert covered("10.0.0.1", [], ["10.0.0.1"])
    assert covered("2001:db8::1", [], ["2001:db8:0:0::1"])
    # DNS hosts are never matched against IP SANs.
    assert not covered("app.example.com", [], ["10.0.0.1"])
    assert covered("app.example.com", ["*.example.com"], ["10.0.0.1"])
