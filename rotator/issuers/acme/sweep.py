"""Removing what an interrupted order left in DNS or the cluster, from the journal's record.

Only artefacts past the lifetime their order recorded are touched, each unique to its
order, so a live order's records are never removed. An artefact that cannot be removed is
retried by later passes until ``journal.give_up`` says to leave it to a person."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from rotator.issuers.acme.dns01 import RFC2136Solver
from rotator.issuers.acme.http01 import delete_route
from rotator.issuers.acme.journal import ChallengeJournal, give_up
from rotator.issuers.base import IssuerError
from rotator.kube.api import KubeAPI


def sweep_leftovers(
    journal: ChallengeJournal,
    issuer: str,
    current_server: str | None,
    dns_solver: Callable[[], RFC2136Solver],
    api: KubeAPI | None,
    now: datetime,
    log: Any,
) -> None:
    leftovers = journal.stale(issuer)
    if not leftovers:
        return
    done: list[str] = []
    failed: list[str] = []
    solver: RFC2136Solver | None = None
    for item in leftovers:
        a = item.artefact
        if a is None:
            log.warning("dropping a malformed challenge journal entry", key=item.key[:200])
            done.append(item.key)
            continue
        try:
            if a.kind == "txt":
                if a.server != current_server:
                    # A delete sent elsewhere would "succeed" and leave the record.
                    raise IssuerError(f"the record is on {a.server or 'an unknown server'}, not {current_server}")
                solver = solver or dns_solver()
                solver.cleanup([(a.name, a.value)])
            elif a.kind == "route" and api is not None:
                delete_route(api, a.namespace, a.name)
            else:
                raise IssuerError(f"no way to remove a {a.kind!r} artefact here")
            done.append(item.key)
        except Exception as exc:
            if give_up(item, now):
                log.warning(
                    "giving up on a leftover challenge artefact; remove it by hand",
                    kind=a.kind,
                    name=a.name,
                    error=str(exc),
                )
                done.append(item.key)
            else:
                log.warning("leftover challenge artefact not removed", kind=a.kind, name=a.name, error=str(exc))
                failed.append(item.key)
    if done:
        log.info("removed leftovers of an interrupted order", issuer=issuer, count=len(done))
        journal.strike(done)
    if failed:
        journal.failed(failed)
