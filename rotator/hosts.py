"""Host name matching, in the two dialects that meet at a gateway.

Istio routes with suffix wildcards that span any number of labels (``*.a.com`` matches
``x.y.a.com``), while TLS clients accept a SAN wildcard for exactly one label. A
gateway can therefore route a name its certificate cannot serve; the coverage check
must use the strict TLS rule, and the routing checks the Istio one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable


def strip_namespace(host: str) -> tuple[str, str]:
    """Split an Istio ``[namespace/]dnsName`` host into (namespace, name); namespace "*" if absent."""
    ns, sep, name = host.partition("/")
    if not sep:
        return "*", host
    return ns, name


def is_wildcard(host: str) -> bool:
    return host.startswith("*")


def istio_matches(a: str, b: str) -> bool:
    """Istio ``host.Name.Matches``: either side may be a multi-label suffix wildcard; case-sensitive."""
    if is_wildcard(a):
        if is_wildcard(b):
            if len(a) > len(b):
                return a[1:].endswith(b[1:])
            return b[1:].endswith(a[1:])
        return b.endswith(a[1:])
    if is_wildcard(b):
        return a.endswith(b[1:])
    return a == b


def istio_subset_of(a: str, b: str) -> bool:
    """Istio ``host.Name.SubsetOf``: every name ``a`` matches is matched by ``b``."""
    if is_wildcard(b):
        if is_wildcard(a):
            return a[1:].endswith(b[1:])
        return a.endswith(b[1:])
    if is_wildcard(a):
        return False
    return a == b


def istio_intersection(a: str, b: str) -> str | None:
    """The more specific of two matching hosts, as Istio builds the route domain."""
    if not istio_matches(a, b):
        return None
    return a if istio_subset_of(a, b) else b


def normalize_dns(host: str) -> str:
    """Lower-case A-label form, for comparisons clients make case-insensitively."""
    host = host.strip().rstrip(".").lower()
    if host.isascii():
        return host
    labels = []
    for label in host.split("."):
        try:
            labels.append(label.encode("idna").decode("ascii") if label and label != "*" else label)
        except UnicodeError:
            labels.append(label)
    return ".".join(labels)


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def san_covers(san: str, host: str) -> bool:
    """RFC 6125 §6.4.3: does one SAN entry let a client accept ``host``?

    A SAN wildcard stands for exactly one whole left-most label; partial-label or
    inner wildcards never match. A wildcard host (``*.d``) is covered only by the same
    wildcard SAN, because clients may ask for any one name under it.
    """
    san_n, host_n = normalize_dns(san), normalize_dns(host)
    ip = _ip(host_n)
    if ip is not None:
        other = _ip(san_n)
        return other is not None and other == ip
    if san_n == host_n:
        return "*" not in san_n[1:] and not (san_n.startswith("*") and not san_n.startswith("*."))
    if is_wildcard(host_n):
        return False
    if not san_n.startswith("*.") or "*" in san_n[2:]:
        return False
    first, dot, rest = host_n.partition(".")
    return bool(first) and bool(dot) and rest == san_n[2:]


def covered(host: str, dns_sans: Iterable[str], ip_sans: Iterable[str] | None = None) -> bool:
    """Is ``host`` acceptable to a client, given the certificate's SANs by type?

    TLS clients match an IP host only against iPAddress SANs, never a dNSName that
    happens to spell an address. When ``ip_sans`` is None the SANs are untyped strings
    (as users write them) and an address-looking entry counts as an IP SAN.
    """
    dns = list(dns_sans)
    if ip_sans is None:
        return any(san_covers(s, host) for s in dns)
    ip = _ip(normalize_dns(host))
    if ip is not None:
        return any(_ip(s) == ip for s in ip_sans)
    return any(san_covers(s, host) for s in dns)


def coverage_targets(server_hosts: Iterable[str], route_hosts: Iterable[str]) -> list[tuple[str, str]]:
    """Names a certificate must cover for one server, each with the reason it is needed.

    Follows the reference note's §7.3: plain hosts must be covered; a wildcard server
    host needs the same wildcard SAN, and each routed name two or more labels below it
    needs its own coverage; ``*`` defers to the routed names.
    """
    routes = [strip_namespace(h)[1] for h in route_hosts]
    targets: dict[str, str] = {}
    for raw in server_hosts:
        host = strip_namespace(raw)[1]
        if host == "*":
            for r in routes:
                if r != "*":
                    targets.setdefault(r, "routed through the catch-all server host '*'")
        elif is_wildcard(host):
            targets.setdefault(host, "server host")
            suffix = host[1:]  # ".d"
            for r in routes:
                # A narrower wildcard route (``*.b.d`` under ``*.d``) counts too: the names
                # it routes are two labels below ``d``, out of reach of a ``*.d`` SAN.
                if not r.endswith(suffix):
                    continue
                depth = r[: -len(suffix)].count(".") + 1
                if depth >= 2:
                    targets.setdefault(r, f"routed under '{host}', which a one-label TLS wildcard cannot serve")
        else:
            targets.setdefault(host, "server host")
    return list(targets.items())
