"""Asks the edges what planning needs to know, and hands it over as plain data.

A dry run must plan what the real pass will do. Three things the plan depends on live
outside the inventory: who issued the current certificate (a CA issuer's public
certificate, an ACME issuer's ``accept_issuers``), the CA's suggested renewal window
(ACME ARI, an unauthenticated GET) and the back-off after failed orders (rotator's
state ConfigMap). All three are reads, so a dry run asks them too; nothing here writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cryptography import x509

from rotator.checks import certs
from rotator.checks.families import select_server_keys
from rotator.issuers.base import IssuerError
from rotator.kube.state import StateStore
from rotator.model import Backoff, CheckResult, Credential, Inventory, IssuerCheck, PlanFacts
from rotator.util.logs import get_logger


def leaf_of(cred: Credential, inv: Inventory) -> x509.Certificate | None:
    secret = inv.secret(cred.spec.namespace, cred.spec.name)
    if secret is None:
        return None
    family = select_server_keys(secret.data)
    if family is None:
        return None
    bundle = certs.parse_bundle(secret.data[family[0]])
    return bundle.certs[0] if bundle.certs else None


def _key(cred: Credential) -> str:
    return f"{cred.spec.namespace}/{cred.spec.name}"


def gather(
    result: CheckResult,
    inv: Inventory,
    issuers: Mapping[str, Any],
    state: StateStore | None,
    ari: bool = True,
    forced: frozenset[str] = frozenset(),
) -> PlanFacts:
    """Facts for a first plan's credentials (the plan says which issuer each one has)."""
    from rotator.plan.copies import group_copies

    log = get_logger("rotator.plan")
    owned: dict[str, IssuerCheck] = {}
    windows: dict[str, tuple[datetime, datetime]] = {}
    for cred in result.credentials:
        issuer = issuers.get(cred.issuer or "")
        if issuer is None or cred.spec.role != "server" or cred.certificate is None:
            continue
        leaf = leaf_of(cred, inv)
        if leaf is None:
            continue
        window = None
        if ari and cred.action == "none" and cred.state == "ok":
            try:
                window = issuer.renewal_window(leaf)
            except Exception as exc:
                log.info("no renewal info", issuer=cred.issuer, error=f"{type(exc).__name__}: {exc}")
            if window is not None:
                windows[_key(cred)] = window
        # whatever the second plan may renew: due now, forced (rotator renew), an ARI window
        if cred.action == "renew" or _key(cred) in forced or window is not None:
            try:
                owned[_key(cred)] = IssuerCheck(bool(issuer.owns(leaf)))
            except IssuerError as exc:
                owned[_key(cred)] = IssuerCheck(None, str(exc))
            except Exception as exc:  # never a failed plan: "cannot tell", said in the reason
                owned[_key(cred)] = IssuerCheck(None, f"{type(exc).__name__}: {exc}")
    backoff: dict[str, Backoff] = {}
    if state is not None:
        for group in group_copies(result.credentials):
            lead = group[0]
            try:
                entry = state.get(_key(lead)) or {}
            except Exception as exc:  # an unreadable state ConfigMap: the renewer re-checks
                log.info("back-off state not readable", error=f"{type(exc).__name__}: {exc}")
                break
            when = _time(str(entry.get("next_attempt", "")))
            if when is None:
                continue
            b = Backoff(when, int(entry.get("failures") or 0), str(entry.get("last_error") or ""))
            for cred in group:  # copies in other namespaces share their lead's back-off
                backoff[_key(cred)] = b
    return PlanFacts(issuers=owned, ari=windows, backoff=backoff)


def _time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
