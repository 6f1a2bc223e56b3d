"""Read-only checks of an ACME issuer that a renewal would fail on, so they show in every
pass before one is due: the directory answers, an EAB the CA requires is configured, the
TSIG key is readable and the nameserver is authoritative for the zone. They create nothing
(no account, no record), so they are safe in a dry run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

from rotator.config.schema import ACMEIssuerConfig
from rotator.issuers.acme.client import fetch_json
from rotator.issuers.acme.dns01 import split_hostport
from rotator.issuers.base import IssuerError
from rotator.model import Finding


def issuer_health(
    name: str,
    cfg: ACMEIssuerConfig,
    tsig_secret: Callable[[], str] | None,
    monotonic: Callable[[], float],
) -> list[Finding]:
    """Read-only checks that a renewal would fail on, so they show before one is due:
    the directory answers, an EAB the CA requires is configured, the TSIG key is
    readable and the nameserver is authoritative for the zone. Creates nothing (no
    account, no record), so it is safe in a dry run."""
    from rotator.findings import finding
    from rotator.model import ObjectRef

    obj = ObjectRef("Issuer", "", name)
    problems: list[str] = []
    if not cfg.terms_agreed:
        problems.append("terms_agreed is false: the CA's terms of service must be accepted")
    verify: Any = cfg.ca_bundle or True
    try:
        directory = fetch_json(cfg.directory, verify, monotonic)
        if not isinstance(directory, dict) or "newOrder" not in directory:
            raise ValueError("not an ACME directory (no newOrder)")
    except (requests.RequestException, ValueError) as exc:
        problems.append(f"ACME directory {cfg.directory} unreachable: {type(exc).__name__}: {exc}")
        directory = {}
    meta = directory.get("meta") or {}
    if isinstance(meta, dict) and meta.get("externalAccountRequired") and not cfg.eab_key_id:
        problems.append("the CA requires External Account Binding: set eab_key_id and eab_hmac")
    if cfg.solver == "dns01" and cfg.dns01 is not None:
        problems += _dns01_health(cfg, tsig_secret)
    return [finding("issuer-unavailable", f"issuer {name}: {p}", obj) for p in problems]


def _dns01_health(cfg: ACMEIssuerConfig, tsig_secret: Callable[[], str] | None) -> list[str]:
    import dns.exception
    import dns.flags
    import dns.message
    import dns.query
    import dns.rdatatype

    d = cfg.dns01
    assert d is not None
    if tsig_secret is not None:
        try:
            tsig_secret()
        except IssuerError as exc:
            return [f"the TSIG key is unreadable: {exc}"]
    if not d.zone:
        return []  # found per name by SOA lookups at issuance
    host, port = split_hostport(d.nameserver)
    try:
        answer = dns.query.udp(dns.message.make_query(d.zone, dns.rdatatype.SOA), host, port=port, timeout=3)
    except (dns.exception.DNSException, OSError) as exc:
        return [f"nameserver {d.nameserver} does not answer: {type(exc).__name__}: {exc}"]
    if not (answer.flags & dns.flags.AA) or not any(r.rdtype == dns.rdatatype.SOA for r in answer.answer):
        return [f"nameserver {d.nameserver} is not authoritative for zone {d.zone}"]
    return []
