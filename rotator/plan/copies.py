"""Copies of one Secret: Istio reads a classic Gateway's Secret in every namespace that
runs a selected gateway pod, so those copies are planned, ordered and written together,
with the SANs every copy's Gateways need. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from rotator.hosts import covered, strip_namespace
from rotator.model import (
    Credential,
    CredentialSpec,
    Reference,
)


def group_copies(credentials: Sequence[Credential]) -> list[list[Credential]]:
    """Renewals, with the copies of one Secret (same name, same Gateway servers) grouped.

    Istio reads a classic Gateway's Secret in every namespace that runs a selected pod:
    those copies must carry the same certificate, so they get one issuance.
    """
    groups: dict[tuple[str, tuple[Reference, ...]] | None, list[Credential]] = {}
    for c in credentials:
        if c.action != "skip" and copy_key(c.spec) is not None:
            groups.setdefault(copy_key(c.spec), []).append(c)
    return [sorted(g, key=lambda c: c.spec.namespace) for g in groups.values() if any(c.action == "renew" for c in g)]


def copy_key(spec: CredentialSpec) -> tuple[str, tuple[Reference, ...]] | None:
    """Copies of one server Secret share this: the same name read by the same Gateway
    servers, each in its own gateway namespace. None for what has no copies."""
    return (spec.name, spec.references) if spec.role == "server" and spec.kind == "Secret" else None


def sans_for(copies: Sequence[Credential]) -> tuple[str, ...]:
    """Hosts the Gateways serve on the credential plus the current SANs; '*' is never a SAN."""
    out: dict[str, None] = {}
    for c in copies:
        for ref in c.trusted_references():
            for h in ref.hosts:
                host = strip_namespace(h)[1].lower().rstrip(".")
                if host and host != "*":
                    out.setdefault(host, None)
        if c.certificate is not None:
            for san in c.certificate.sans:
                out.setdefault(san.lower(), None)
    return tuple(out)


def required_coverage(references: tuple[Reference, ...], sans: tuple[str, ...]) -> tuple[Reference, ...]:
    """The references a candidate is validated against, with routed names the planned SANs
    cannot cover dropped (server hosts always stay)."""
    return tuple(
        replace(r, route_hosts=tuple(h for h in r.route_hosts if covered(strip_namespace(h)[1], sans)))
        for r in references
    )
