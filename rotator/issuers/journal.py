"""A journal of the challenge artefacts an ACME order puts into the world.

DNS-01 TXT records and HTTP-01's temporary VirtualServices are removed in a ``finally``
block, which a killed pod never reaches (a node drain, an OOM kill, the Job's
``activeDeadlineSeconds``). So each artefact is written down *before* it is created and
struck off after it is removed; a later pass removes whatever is still written down once
no order could still be using it. The journal lives in rotator's state ConfigMap, so it
outlives the pod that died.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from rotator.state import Entry, StateStore

# An entry that could not be removed for this long is dropped (with a warning): the
# zone or route it names has most likely been reconfigured away.
GIVE_UP_AFTER = timedelta(days=7)


@dataclass(frozen=True)
class Artefact:
    """A TXT value at a name (``kind="txt"``) or a challenge route for a host (``"route"``)."""

    issuer: str
    kind: str
    name: str
    value: str = ""

    @property
    def key(self) -> str:
        return "|".join((self.issuer, self.kind, self.name, self.value))

    def entry(self, at: datetime) -> Entry:
        return {"issuer": self.issuer, "kind": self.kind, "name": self.name, "value": self.value, "at": at.isoformat()}

    @classmethod
    def from_entry(cls, entry: Entry) -> Artefact | None:
        try:
            return cls(str(entry["issuer"]), str(entry["kind"]), str(entry["name"]), str(entry.get("value", "")))
        except (KeyError, TypeError):
            return None


def stale(doc: dict[str, Entry], issuer: str, now: datetime, max_age: timedelta) -> list[tuple[Artefact, datetime]]:
    """This issuer's artefacts older than any order could be (pure: the sweep's decision)."""
    out = []
    for entry in doc.values():
        artefact = Artefact.from_entry(entry)
        try:
            at = datetime.fromisoformat(str(entry.get("at")))
        except ValueError:
            at = datetime.min.replace(tzinfo=now.tzinfo)  # unreadable: old enough
        if artefact is not None and artefact.issuer == issuer and now - at > max_age:
            out.append((artefact, at))
    return sorted(out, key=lambda pair: pair[0].key)


class ChallengeJournal:
    def __init__(self, store: StateStore, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock

    def record(self, artefacts: Iterable[Artefact]) -> None:
        """One write for all of an order's artefacts, before any is created."""
        items = list(artefacts)
        if not items:
            return
        at = self.clock()

        def add(doc: dict[str, Entry]) -> dict[str, Entry]:
            doc.update({a.key: a.entry(at) for a in items})
            return doc

        self.store.update_all(add)

    def strike(self, artefacts: Iterable[Artefact]) -> None:
        keys = {a.key for a in artefacts}
        if not keys:
            return

        def remove(doc: dict[str, Entry]) -> dict[str, Entry]:
            return {k: v for k, v in doc.items() if k not in keys}

        self.store.update_all(remove)

    def stale(self, issuer: str, max_age: timedelta) -> list[tuple[Artefact, datetime]]:
        return stale(self.store.all(), issuer, self.clock(), max_age)
