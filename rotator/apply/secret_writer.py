"""Safe Secret writes and rollback.

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
    ANN_BACKUP_TYPE,
    ANN_RENEWAL,
    ANN_ROLLED_BACK_AT,
    LABEL_BACKUP_OF,
    OCSP_KEY,
    ROTATION_ANNOTATIONS,
    TLS_FAMILY,
    Material,
    backup_order,
    backup_secret,
    copy_ca_keys,
    decoded,
    holds_ca,
    label_value,
    leaf_facts,
    new_secret,
    safe_stem,
    saved_metadata,
    serial_in,
    updated_secret,
)
from rotator.apply.validate import Rejected, Validated, validate
from rotator.checks.families import select_server_keys
from rotator.kube.api import SECRETS, ApiError, KubeAPI
from rotator.kube.events import EventRecorder
from rotator.model import Finding, Reference
from rotator.plan import ownership
from rotator.util.logs import get_logger
from rotator.util.timeutil import rfc3339

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

    def _ensure_backup(self, current: dict[str, Any], existing: list[dict[str, Any]]) -> str:
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

    def _prune(self, namespace: str, name: str) -> None:
        """Best effort: a failed prune never turns a done rotation into a failure."""
        try:
            for old in self.backups(namespace, name)[self.retention :]:
                self.api.delete(SECRETS, namespace, old["metadata"]["name"])
        except ApiError as exc:
            self.log.warning("backups not pruned", namespace=namespace, secret=name, error=str(exc))

    def _event(self, obj: dict[str, Any], reason: str, action: str, note: str, warning: bool = False) -> None:
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
            self._event(stub, "RotationFailed", "Validate", message, warning=True)
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
            self._event(stub, "RotationFailed", "Update", outcome.message, warning=True)
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
                self._event(created, "Rotated", "Create", f"created with certificate serial {serial}")
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
            backup = self._ensure_backup(current, self.backups(namespace, name))
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
        self._prune(namespace, name)
        self._event(
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

    def backup_with_serial(self, namespace: str, name: str, serial: str) -> str | None:
        """The newest backup of this Secret holding that certificate: how a copy in another
        gateway namespace is rolled back to the same certificate as the one named."""
        return next((b["metadata"]["name"] for b in self.backups(namespace, name) if serial_in(b) == serial), None)

    def rollback(
        self,
        namespace: str,
        name: str,
        references: Sequence[Reference],
        to: str | None = None,
        dry_run: bool = False,
        hold: bool = False,
    ) -> Outcome:
        """Restore the certificate and key of the newest (or the named) backup, under the
        same safety rules as a rotation; everything else in the Secret stays as it is now.
        ``hold``: also pause its renewal (``rotator.io/renewal: paused``), or the next pass
        would renew the restored certificate away at once."""
        stub = {"kind": "Secret", "metadata": {"namespace": namespace, "name": name}}
        try:
            outcome = self._rollback(namespace, name, references, to, dry_run, hold)
        except ApiError as exc:
            outcome = Outcome(namespace, name, "failed", str(exc))
        if outcome.status == "failed" and not dry_run:
            self._event(stub, "RollbackFailed", "Rollback", outcome.message, warning=True)
        return outcome

    def _rollback(
        self, namespace: str, name: str, references: Sequence[Reference], to: str | None, dry_run: bool, hold: bool
    ) -> Outcome:
        for _attempt in range(self.max_conflicts):
            backups = self.backups(namespace, name)
            current = self.api.get(SECRETS, namespace, name)
            why = (
                ownership.hard_refusal(
                    name, str(current.get("type") or ""), current.get("data") or {}, holds_ca(current)
                )
                if current
                else ownership.name_refusal(name)
            )
            if why is not None:
                return Outcome(namespace, name, "failed", f"refused to write Secret {namespace}/{name}: {why}")
            current_serial = serial_in(current) if current else None
            if to is not None:
                chosen = next((b for b in backups if b["metadata"]["name"] == to), None)
                if chosen is None:
                    return Outcome(namespace, name, "failed", f"no backup named {to!r} of Secret {namespace}/{name}")
            else:
                # the newest backup holding a different certificate than the one served now
                chosen = next((b for b in backups if serial_in(b) != current_serial), None)
                if chosen is None:
                    return Outcome(namespace, name, "failed", f"no backup of Secret {namespace}/{name} to restore")
            data = decoded(chosen)
            family = select_server_keys(data)
            if family is None:
                return Outcome(namespace, name, "failed", f"backup {chosen['metadata']['name']} has no usable keys")
            material = Material(data[family[0]], data[family[1]])
            checked = validate(material, references, self.clock(), family)
            if isinstance(checked, Rejected):
                return Outcome(
                    namespace,
                    name,
                    "failed",
                    f"backup {chosen['metadata']['name']} failed validation: {checked.note}",
                    findings=checked.findings,
                )
            serial, _ = leaf_facts(material.chain_pem)
            label = chosen["metadata"]["name"]
            if dry_run:
                return Outcome(namespace, name, "rolled-back", f"would restore {label}", backup=label, serial=serial)
            restored_ann = {
                k: v for k, v in ((chosen["metadata"].get("annotations") or {}).items()) if k in ROTATION_ANNOTATIONS
            }
            restored_ann[ANN_ROLLED_BACK_AT] = rfc3339(self.clock())
            if hold:
                restored_ann[ANN_RENEWAL] = "paused"
            backup_data = dict(chosen.get("data") or {})
            cert_keys = ("cert", "key", *TLS_FAMILY, OCSP_KEY)  # restored; everything else stays as now
            if current is None:
                saved = saved_metadata(chosen)
                body = {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "type": (chosen["metadata"].get("annotations") or {}).get(ANN_BACKUP_TYPE, "Opaque"),
                    "metadata": {
                        "name": name,
                        "namespace": namespace,
                        "labels": saved.get("labels", {}),
                        "annotations": {**saved.get("annotations", {}), **restored_ann},
                    },
                    "data": backup_data,
                }
                try:
                    created = self.api.create(SECRETS, namespace, body)
                except ApiError as exc:
                    if exc.status == 409:
                        continue
                    raise
                self._event(
                    created, "RolledBack", "Rollback", f"re-created with certificate serial {serial} from {label}"
                )
                return Outcome(namespace, name, "rolled-back", f"re-created from {label}", backup=label, serial=serial)
            self._ensure_backup(current, backups)  # the rollback itself can be undone
            meta = dict(current["metadata"])
            ann = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in ROTATION_ANNOTATIONS}
            ann.update(restored_ann)
            meta["annotations"] = ann
            meta.pop("managedFields", None)
            new_data = {k: v for k, v in (current.get("data") or {}).items() if k not in cert_keys}
            new_data.update({k: v for k, v in backup_data.items() if k in cert_keys})
            body = {**current, "metadata": meta, "data": new_data}
            try:
                updated = self.api.update(SECRETS, namespace, body)
            except ApiError as exc:
                if exc.status == 409:
                    continue
                raise
            self._prune(namespace, name)
            self._event(updated, "RolledBack", "Rollback", f"restored certificate serial {serial} from {label}")
            return Outcome(namespace, name, "rolled-back", f"restored {label}", backup=label, serial=serial)
        return Outcome(namespace, name, "failed", f"gave up after {self.max_conflicts} conflicting writes")
