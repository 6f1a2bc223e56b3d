"""Safe Secret writes (rollback, which writes under the same rules, is ``apply.rollback``).

A rotation is exactly one update of the Secret, made only after the candidate passed
the same checks ``rotator check`` applies, with the ``resourceVersion`` that was read
(so a concurrent writer causes a re-read, never an overwrite), and after a backup of
the previous version exists. Istio hot-reloads the Secret; a bad write would leave a
classic gateway on a stale certificate or drop a Gateway API listener, so nothing here
writes what it has not validated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from rotator.apply.secret_bodies import (
    ANN_BACKUP_OF,
    ANN_BACKUP_RV,
    LABEL_BACKUP_OF,
    Material,
    backup_order,
    backup_secret,
    copy_ca_keys,
    holds_ca,
    label_value,
    leaf_facts,
    new_secret,
    safe_stem,
    serial_in,
    updated_secret,
)
from rotator.apply.validate import Rejected, Validated, validate
from rotator.kube.api import SECRETS, ApiError, KubeAPI
from rotator.kube.events import EventRecorder
from rotator.model import Finding, Reference
from rotator.plan import ownership
from rotator.util.logs import get_logger

Status = Literal["rotated", "created", "unchanged", "skipped", "failed", "rolled-back"]


@dataclass(frozen=True)
class Outcome:
    namespace: str
    name: str
    status: Status
    message: str
    backup: str | None = None
    serial: str | None = None
    findings: tuple[Finding, ...] = ()


class SecretWriter:
    def __init__(
        self,
        api: KubeAPI,
        clock: Callable[[], datetime],
        events: EventRecorder | None = None,
        retention: int = 3,
        max_conflicts: int = 5,
    ) -> None:
        self.api = api
        self.clock = clock
        self.events = events
        self.retention = max(1, retention)
        self.max_conflicts = max_conflicts
        self.log = get_logger("rotator.writer")

    def backups(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """rotator's backups of one Secret, newest first."""
        items = self.api.items(SECRETS, namespace, label_selector=f"{LABEL_BACKUP_OF}={label_value(name)}")
        own = [b for b in items if ((b.get("metadata") or {}).get("annotations") or {}).get(ANN_BACKUP_OF) == name]
        return sorted(own, key=backup_order, reverse=True)

    def _backup_for(self, rv: str, existing: list[dict[str, Any]]) -> str | None:
        for b in existing:
            if ((b.get("metadata") or {}).get("annotations") or {}).get(ANN_BACKUP_RV) == rv:
                return str(b["metadata"]["name"])
        return None

    def ensure_backup(self, current: dict[str, Any], existing: list[dict[str, Any]]) -> str:
        """A backup of exactly the version about to be replaced, created once.

        The create is not retried blindly (a lost response would leave a duplicate);
        after a transient failure the backups are listed again to see if it landed.
        """
        meta = current.get("metadata") or {}
        rv = str(meta.get("resourceVersion", ""))
        found = self._backup_for(rv, existing)
        if found:
            return found
        ns, name = meta["namespace"], meta["name"]
        last: ApiError | None = None
        for _ in range(3):
            try:
                created = self.api.create(SECRETS, ns, backup_secret(current, self.clock()), retry=False)
                return str(created["metadata"]["name"])
            except ApiError as exc:
                last = exc
                if not exc.transient:
                    break
                found = self._backup_for(rv, self.backups(ns, name))
                if found:
                    return found
        assert last is not None
        # Named for what failed: the backup (a quota on Secrets, an admission webhook on
        # its labels), not the Secret it was for, which was never touched.
        raise ApiError(
            last.status,
            last.reason,
            f"could not create the backup of Secret {ns}/{name}; not updating it without one. "
            f"Server said: {last.message}",
            "create",
            "secrets",
            ns,
            f"{safe_stem(name)}-rotator-backup-…",
        )

    def prune(self, namespace: str, name: str) -> None:
        """Best effort: a failed prune never turns a done rotation into a failure."""
        try:
            for old in self.backups(namespace, name)[self.retention :]:
                self.api.delete(SECRETS, namespace, old["metadata"]["name"])
        except ApiError as exc:
            self.log.warning("backups not pruned", namespace=namespace, secret=name, error=str(exc))

    def event(self, obj: dict[str, Any], reason: str, action: str, note: str, warning: bool = False) -> None:
        if self.events is not None:
            self.events.record(obj, reason, action, note, warning)

    def write(
        self,
        namespace: str,
        name: str,
        candidate: Material | Validated,
        references: Sequence[Reference] = (),
        still_needed: Callable[[dict[str, Any]], bool] | None = None,
        read_version: str | None = None,
        sibling: dict[str, Any] | None = None,
    ) -> Outcome:
        """Rotate one Secret copy; returns what happened, never raises for API trouble.

        Raw ``Material`` is validated here for ``references`` (a ``Validated`` already was).
        ``read_version`` is the resourceVersion the plan was made from. If the Secret
        changed since (or a write conflicts), rotator re-reads and asks ``still_needed``;
        without that callback it does not overwrite a Secret it has not seen.
        """
        checked = self._validated(candidate, references)
        if isinstance(checked, Rejected):
            return self._rejected(checked, [(namespace, name)])[0]
        return self._write_validated(namespace, name, checked, still_needed, read_version, sibling)

    def _validated(self, candidate: Material | Validated, references: Sequence[Reference]) -> Validated | Rejected:
        return candidate if isinstance(candidate, Validated) else validate(candidate, references, self.clock())

    def _rejected(self, rejected: Rejected, copies: Sequence[tuple[str, str]]) -> list[Outcome]:
        for ns, name in copies:
            stub = {"kind": "Secret", "metadata": {"namespace": ns, "name": name}}
            message = f"new certificate rejected before writing: {rejected.note}"
            self.event(stub, "RotationFailed", "Validate", message, warning=True)
        return [
            Outcome(ns, name, "failed", f"validation failed: {rejected.note}", findings=rejected.findings)
            for ns, name in copies
        ]

    def _write_validated(
        self,
        namespace: str,
        name: str,
        checked: Validated,
        still_needed: Callable[[dict[str, Any]], bool] | None,
        read_version: str | None,
        sibling: dict[str, Any] | None,
    ) -> Outcome:
        stub = {"kind": "Secret", "metadata": {"namespace": namespace, "name": name}}
        serial, _ = leaf_facts(checked.material.chain_pem)
        try:
            outcome = self._write(namespace, name, checked, serial, still_needed, read_version, sibling)
        except ApiError as exc:
            outcome = Outcome(namespace, name, "failed", str(exc), serial=serial)
        if outcome.status == "failed":
            self.event(stub, "RotationFailed", "Update", outcome.message, warning=True)
        return outcome

    def _write(
        self,
        namespace: str,
        name: str,
        checked: Validated,
        serial: str,
        still_needed: Callable[[dict[str, Any]], bool] | None,
        read_version: str | None,
        sibling: dict[str, Any] | None,
    ) -> Outcome:
        material = checked.material  # only validated material reaches the API
        sent = False  # an update went out; its response may have been lost
        backup: str | None = None
        for attempt in range(self.max_conflicts):
            current = self.api.get(SECRETS, namespace, name)
            if current is None:
                refused = ownership.name_refusal(name)
                if refused is not None:
                    return Outcome(namespace, name, "failed", f"refused to create Secret {namespace}/{name}: {refused}")
                if read_version:  # it existed when planned: someone deleted it meanwhile
                    return Outcome(namespace, name, "skipped", "deleted since it was read; re-planned next pass")
                body = copy_ca_keys(new_secret(namespace, name, material, self.clock()), sibling)
                try:
                    created = self.api.create(SECRETS, namespace, body)
                except ApiError as exc:
                    if exc.status == 409:  # created meanwhile: read it and decide again
                        read_version = read_version or "created-concurrently"
                        continue
                    raise
                self.event(created, "Rotated", "Create", f"created with certificate serial {serial}")
                return Outcome(namespace, name, "created", "Secret created", serial=serial)
            why = ownership.hard_refusal(
                name, str(current.get("type") or ""), (current.get("data") or {}).keys(), holds_ca(current)
            )
            if why is not None:  # re-checked on what was just read: it may have changed since the plan
                return Outcome(namespace, name, "failed", f"refused to write Secret {namespace}/{name}: {why}")
            holds = serial_in(current)
            if holds == serial:
                if sent:  # our update landed though its response did not
                    return self._done(current, namespace, name, serial, backup)
                return Outcome(namespace, name, "unchanged", "already holds this certificate", serial=serial)
            rv = str((current.get("metadata") or {}).get("resourceVersion", ""))
            changed = attempt > 0 or (read_version is not None and rv != read_version)
            if changed and (still_needed is None or not still_needed(current)):
                return Outcome(
                    namespace, name, "skipped", "changed by another writer since it was read; nothing overwritten"
                )
            backup = self.ensure_backup(current, self.backups(namespace, name))
            try:
                sent = True
                updated = self.api.update(SECRETS, namespace, updated_secret(current, material, self.clock()))
            except ApiError as exc:
                if exc.status == 409:
                    self.log.info("conflict; re-reading", namespace=namespace, secret=name, attempt=attempt + 1)
                    continue
                if exc.transient:
                    # Retries are spent; maybe it was applied all the same: look once.
                    after = self.api.get(SECRETS, namespace, name)
                    if after is not None and serial_in(after) == serial:
                        return self._done(after, namespace, name, serial, backup)
                raise
            return self._done(updated, namespace, name, serial, backup)
        return Outcome(
            namespace, name, "failed", f"gave up after {self.max_conflicts} conflicting writes", serial=serial
        )

    def _done(self, updated: dict[str, Any], namespace: str, name: str, serial: str, backup: str | None) -> Outcome:
        self.prune(namespace, name)
        self.event(
            updated,
            "Rotated",
            "Update",
            f"rotated to certificate serial {serial}; previous version kept in Secret {backup}",
        )
        return Outcome(namespace, name, "rotated", "Secret updated", backup=backup, serial=serial)

    def write_copies(
        self,
        copies: Sequence[tuple[str, str]],
        candidate: Material | Validated,
        references: Sequence[Reference] = (),
        still_needed: Callable[[dict[str, Any]], bool] | None = None,
        read_versions: dict[tuple[str, str], str] | None = None,
    ) -> list[Outcome]:
        """The same certificate into every namespace Istio reads it from (§2.2).

        Each gateway pod reads only its own namespace, so all copies must carry the same
        certificate. Kubernetes has no multi-object transaction: the copies are written
        one by one, each safely, and a copy that fails is reported (and still different,
        so the next pass retries it) without undoing the others, which are valid. The
        candidate is validated once for all of them.
        """
        checked = self._validated(candidate, references)
        if isinstance(checked, Rejected):
            return self._rejected(checked, copies)
        sibling: dict[str, Any] | None = None
        out = []
        for ns, name in copies:
            version = (read_versions or {}).get((ns, name))
            if sibling is None:
                try:
                    sibling = self.api.get(SECRETS, ns, name) if version else None
                except ApiError:
                    sibling = None
            out.append(self._write_validated(ns, name, checked, still_needed, version, sibling))
        return out
