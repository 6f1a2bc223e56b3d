"""A journal of the challenge artefacts an ACME order puts into the world.

DNS-01 TXT records and HTTP-01's temporary VirtualServices are removed in a ``finally``
block, which a killed pod never reaches (a node drain, an OOM kill, the Job's
``activeDeadlineSeconds``). So each artefact is written down *before* it is created,
with the moment after which no order can still be using it, and struck off after it is
removed; a later pass removes whatever is still written down past that moment. The
journal lives in rotator's state ConfigMap, so it outlives the pod that died.

Artefacts are unique per order (a TXT value is a fresh key authorization digest; a
route has a fresh name), so removing a stale one can never touch a live order's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from rotator.kube.state import Entry, StateStore

# An artefact that could not be removed is dropped (with a warning) once removal has
# failed for this long, over at least GIVE_UP_ATTEMPTS sweeps: the zone or the route
# has most likely been reconfigured away.
GIVE_UP_AFTER = timedelta(days=7)
GIVE_UP_ATTEMPTS = 3


@dataclass(frozen=True)
class Artefact:
    """A TXT ``value`` at ``name`` on ``server`` (kind "txt"), or the challenge route
    ``name`` in ``namespace`` for host ``value`` (kind "route")."""

    issuer: str
    kind: str
    name: str
    value: str = ""
    namespace: str = ""
    server: str = ""

    @property
    def key(self) -> str:
        return "|".join((self.issuer, self.kind, self.namespace, self.name, self.value))

    def entry(self, at: datetime, expires: datetime) -> Entry:
        return {
            "issuer": self.issuer,
            "kind": self.kind,
            "name": self.name,
            "value": self.value,
            "namespace": self.namespace,
            "server": self.server,
            "at": at.isoformat(),
            "expires": expires.isoformat(),
        }

    @classmethod
    def from_entry(cls, entry: Entry) -> Artefact | None:
        try:
            return cls(
                str(entry["issuer"]),
                str(entry["kind"]),
                str(entry["name"]),
                str(entry.get("value", "")),
                str(entry.get("namespace", "")),
                str(entry.get("server", "")),
            )
        except (KeyError, TypeError):
            return None


def _when(text: object, now: datetime) -> datetime:
    """Unreadable or naive times count as long past: a broken entry must not block sweeps."""
    try:
        when = datetime.fromisoformat(str(text))
    except ValueError:
        return datetime.min.replace(tzinfo=now.tzinfo)
    return when if when.tzinfo is not None else datetime.min.replace(tzinfo=now.tzinfo)


@dataclass(frozen=True)
class Leftover:
    key: str
    artefact: Artefact | None  # None: the entry is malformed
    attempts: int
    failing_since: datetime | None


def stale(doc: dict[str, Entry], issuer: str, now: datetime) -> list[Leftover]:
    """This issuer's entries past their expiry, and malformed ones (pure: the sweep's decision)."""
    out = []
    for key, entry in sorted(doc.items()):
        artefact = Artefact.from_entry(entry) if isinstance(entry, dict) else None
        if artefact is not None and (artefact.issuer != issuer or _when(entry.get("expires"), now) > now):
            continue
        if artefact is None and not key.startswith(f"{issuer}|"):
            continue
        failing = entry.get("failing_since") if isinstance(entry, dict) else None
        out.append(
            Leftover(
                key,
                artefact,
                int(entry.get("attempts", 0)) if isinstance(entry, dict) else 0,
                _when(failing, now) if failing else None,
            )
        )
    return out


def give_up(leftover: Leftover, now: datetime) -> bool:
    return (
        leftover.failing_since is not None
        and now - leftover.failing_since >= GIVE_UP_AFTER
        and leftover.attempts >= GIVE_UP_ATTEMPTS
    )


class ChallengeJournal:
    def __init__(self, store: StateStore, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock

    def record(self, artefacts: Iterable[Artefact], lifetime: timedelta) -> None:
        """One write for all of an order's artefacts, before any is created."""
        items = list(artefacts)
        if not items:
            return
        at = self.clock()

        def add(doc: dict[str, Entry]) -> dict[str, Entry]:
            doc.update({a.key: a.entry(at, at + lifetime) for a in items})
            return doc

        self.store.update_all(add)

    def strike(self, keys: Iterable[str]) -> None:
        gone = set(keys)
        if not gone:
            return

        def remove(doc: dict[str, Entry]) -> dict[str, Entry]:
            return {k: v for k, v in doc.items() if k not in gone}

        self.store.update_all(remove)

    def failed(self, keys: Iterable[str]) -> None:
        """Count a failed removal, remembering when they started failing."""
        failing = set(keys)
        if not failing:
            return
        now = self.clock().isoformat()

        def mark(doc: dict[str, Entry]) -> dict[str, Entry]:
            for key in failing & set(doc):
                entry = doc[key]
                entry["attempts"] = int(entry.get("attempts", 0)) + 1
                entry.setdefault("failing_since", now)
            return doc

        self.store.update_all(mark)

    def stale(self, issuer: str) -> list[Leftover]:
        return stale(self.store.all(), issuer, self.clock())
