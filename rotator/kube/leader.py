"""Leader election on a ``coordination.k8s.io/v1`` Lease, with client-go's semantics.

Only the leader renews and writes. A leader that cannot renew its claim within the
renew deadline stops writing at once (``is_leader()`` turns false before its Lease can
expire), so two replicas never rotate the same Secret. Time comes from an injected
clock; the loop thread is the only part that sleeps.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from rotator.kube.api import ApiError, KubeAPI, ResourceType
from rotator.util.logs import get_logger

LEASES = ResourceType("coordination.k8s.io", "v1", "leases", "Lease")


def _micro(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


class LeaderElector:
    def __init__(
        self,
        api: KubeAPI,
        namespace: str,
        name: str,
        identity: str,
        clock: Callable[[], datetime],
        lease_duration: timedelta = timedelta(seconds=15),
        renew_deadline: timedelta = timedelta(seconds=10),
        retry_period: timedelta = timedelta(seconds=2),
        on_change: Callable[[bool], None] | None = None,
        server_clock: Callable[[], datetime | None] | None = None,
        skew_tolerance: timedelta | None = None,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.clock = clock
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.on_change = on_change
        # A one-shot pass also trusts the API server's time: a claim whose renewTime lies
        # more than leaseDuration + tolerance (clock skew between the holder's node and the
        # API server) behind the server's clock is dead, without waiting to observe it.
        self.server_clock = server_clock
        self.skew_tolerance = skew_tolerance if skew_tolerance is not None else lease_duration
        self._valid_until: datetime | None = None  # leadership ends here unless renewed
        # client-go's rule: another holder's claim is judged by when *we* saw its record
        # change, on our own clock, never by the renewTime it wrote (clocks differ).
        self._observed: tuple[str, str, str] | None = None  # (holder, renewTime, resourceVersion)
        self._observed_at: datetime | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.last_error: ApiError | None = None  # of the last attempt: why it could not tell
        self.holder = ""  # who holds the Lease, as last seen
        self.took_over_from = ""  # the holder whose expired claim we took, if any
        self.log = get_logger("rotator.leader")

    def is_leader(self) -> bool:
        with self._lock:
            return self._valid_until is not None and self.clock() < self._valid_until

    def _set(self, until: datetime | None) -> None:
        with self._lock:
            was = self._valid_until is not None and self.clock() < self._valid_until
            self._valid_until = until
            now_leader = until is not None and self.clock() < until
        if was != now_leader:
            self.log.info("leadership changed", leader=now_leader, identity=self.identity, lease=self.name)
            if self.on_change is not None:
                self.on_change(now_leader)

    def try_acquire_or_renew(self) -> bool:
        """One attempt: take a free or expired Lease, or renew ours. True while leader."""
        if self._stop.is_set():  # released (or releasing): never take it back
            return False
        now = self.clock()
        self.last_error = None
        try:
            lease = self.api.get(LEASES, self.namespace, self.name)
            if lease is None:
                self.api.create(LEASES, self.namespace, self._body(None, now, transitions=0, acquired=now))
                self._set(now + self.renew_deadline)
                return True
            spec = lease.get("spec") or {}
            holder = spec.get("holderIdentity") or ""
            self.holder = holder
            record = (holder, str(spec.get("renewTime")), str((lease.get("metadata") or {}).get("resourceVersion")))
            if record != self._observed:
                self._observed, self._observed_at = record, now
            duration = timedelta(seconds=int(spec.get("leaseDurationSeconds") or self.lease_duration.total_seconds()))
            assert self._observed_at is not None
            expired = now >= self._observed_at + duration or self._stale_by_server_time(spec, duration)
            if holder != self.identity and holder and not expired:
                self._set(None)
                return False
            if holder and holder != self.identity:
                self.took_over_from = holder
            transitions = int(spec.get("leaseTransitions") or 0) + (0 if holder == self.identity else 1)
            acquired = _parse(spec.get("acquireTime")) if holder == self.identity else now
            self.api.update(LEASES, self.namespace, self._body(lease, now, transitions, acquired or now))
            self._set(now + self.renew_deadline)
            return True
        except ApiError as exc:
            self.last_error = exc
            if exc.status == 409:
                # Someone else wrote the Lease: they won this round. Stop writing now rather
                # than at our deadline.
                self._set(None)
                return False
            # Anything else: we cannot prove our claim; we stay leader only until the renew
            # deadline runs out (client-go's behaviour).
            self.log.warning("lease not renewed", error=str(exc))
            if not self.is_leader():
                self._set(None)
            return self.is_leader()

    @property
    def observed(self) -> tuple[str, str, str] | None:
        """The other holder's record as last seen: a change means it is alive."""
        return self._observed

    def _stale_by_server_time(self, spec: dict[str, Any], duration: timedelta) -> bool:
        if self.server_clock is None:
            return False
        server_now, renewed = self.server_clock(), _parse(str(spec.get("renewTime") or ""))
        if server_now is None or renewed is None:
            return False
        return server_now >= renewed + duration + self.skew_tolerance

    def _body(
        self, lease: dict[str, Any] | None, now: datetime, transitions: int, acquired: datetime
    ) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if lease is not None:
            meta = {**lease.get("metadata", {}), **meta}
            meta.pop("managedFields", None)
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": meta,
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.lease_duration.total_seconds()),
                "acquireTime": _micro(acquired),
                "renewTime": _micro(now),
                "leaseTransitions": transitions,
            },
        }

    def release(self) -> None:
        """Give the Lease up on shutdown so a follower takes over without waiting it out."""
        self._stop.set()
        if not self.is_leader():
            return
        self._set(None)
        try:
            lease = self.api.get(LEASES, self.namespace, self.name)
            if lease is not None and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                body = self._body(
                    lease, self.clock(), int((lease.get("spec") or {}).get("leaseTransitions") or 0), self.clock()
                )
                body["spec"]["holderIdentity"] = ""
                body["spec"]["leaseDurationSeconds"] = 1
                self.api.update(LEASES, self.namespace, body)
        except ApiError as exc:
            self.log.warning("lease not released", error=str(exc))

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                self.try_acquire_or_renew()
                self._stop.wait(self.retry_period.total_seconds())

        self._thread = threading.Thread(target=loop, name="leader-election", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


class PassLease:
    """What a one-shot pass knows about the Lease: call it for ``may_write``."""

    def __init__(self, state: str, elector: LeaderElector, stop: threading.Event) -> None:
        self.state = state  # "leader", "follower" (someone else holds it) or "uncoordinated"
        self.holder = elector.holder
        self.identity = elector.identity
        # A pass that took the Lease over from a dead holder knows that holder's per-Secret
        # claims (rotator.apply.pending) are dead too, without waiting out their TTL.
        self.took_over_from = (elector.took_over_from,) if state == "leader" and elector.took_over_from else ()
        self.lease = f"{elector.namespace}/{elector.name}"
        self._elector = elector
        self._stop = stop

    def __call__(self) -> bool:
        if self._stop.is_set():  # SIGTERM: no new issuance or write from here on
            return False
        if self.state == "uncoordinated":
            return True
        return self.state == "leader" and self._elector.is_leader()


@contextmanager
def one_pass_lease(
    api: KubeAPI,
    namespace: str,
    name: str,
    identity: str,
    clock: Callable[[], datetime],
    lease_duration: timedelta = timedelta(seconds=15),
    renew_deadline: timedelta = timedelta(seconds=10),
    retry_period: timedelta = timedelta(seconds=2),
    sleep: Callable[[float], None] = time.sleep,
    stop: threading.Event | None = None,
) -> Iterator[PassLease]:
    """For a pass outside the daemon (the CronJob, an operator's ``rotator check``): take
    the daemon's Lease for the length of the pass, so the two never renew the same
    credential at once. Yields a ``PassLease`` (call it for ``may_write``).

    A pass looks once, so the observe-for-leaseDuration rule alone would never see a dead
    holder's claim expire (a pass killed while holding it would block every later pass).
    So the claim also expires by the API server's clock (``renewTime + leaseDuration +
    tolerance``), and a claim that still looks fresh is watched for at most one lease
    duration: a live holder renews within its retry period, a dead one does not.

    Held by a live holder: the pass plans and alerts but does not write. The Lease cannot
    be read at all (no RBAC for it, an old install): the pass runs uncoordinated, as
    before, and says so."""
    stop = stop or threading.Event()
    elector = LeaderElector(
        api,
        namespace,
        name,
        identity,
        clock,
        lease_duration,
        renew_deadline,
        retry_period,
        server_clock=api.server_now,
    )
    log = get_logger("rotator.leader")
    acquired = elector.try_acquire_or_renew()
    watched = False  # a foreign holder was seen: an API error later does not make the pass uncoordinated
    if not acquired and _contended(elector):
        watched = True
        first, deadline = elector.observed, clock() + lease_duration + retry_period
        log.info(
            "the Lease looks held; watching it for one lease duration",
            lease=f"{namespace}/{name}",
            holder=elector.holder,
        )
        while not stop.is_set() and clock() < deadline:
            sleep(retry_period.total_seconds())
            acquired = elector.try_acquire_or_renew()
            if acquired or not _contended(elector) or elector.observed != first:
                break  # ours now, an error, or the holder renewed: it is alive
    if acquired:
        elector.start()  # keep it renewed while the pass runs
        try:
            yield PassLease("leader", elector, stop)
        finally:
            elector.stop()
            elector.release()
        return
    if not watched and elector.last_error is not None and elector.last_error.status != 409:
        log.warning(
            "cannot take the Lease; running without coordination",
            lease=f"{namespace}/{name}",
            error=str(elector.last_error),
        )
        yield PassLease("uncoordinated", elector, stop)
        return
    log.warning(
        "another rotator holds the Lease: this pass plans and alerts but does not renew",
        lease=f"{namespace}/{name}",
        holder=elector.holder,
    )
    yield PassLease("follower", elector, stop)


def _contended(elector: LeaderElector) -> bool:
    """Not ours because someone else holds it (rather than an API error)."""
    return elector.last_error is None or elector.last_error.status == 409
