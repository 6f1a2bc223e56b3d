"""Safe Secret writes and rollback.

A rotation is exactly one update of the Secret, made only after the candidate passed
the same checks ``rotator check`` applies, with the ``resourceVersion`` that was read
(so a concurrent writer causes a re-read, never an overwrite), and after a backup of
the previous version exists. Istio hot-reloads the Secret; a bad write would leave a
classic gateway on a stale certificate or drop a Gateway API listener, so nothing here
writes what it has not validated.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from rotator import findings
from rotator.checks import certs
from rotator.checks.inspect import InspectOptions, inspect, select_server_keys
from rotator.kube.api import SECRETS, ApiError, KubeAPI
from rotator.kube.events import EventRecorder
from rotator.model import CredentialSpec, Finding, Inventory, Reference, Secret
from rotator.plan import ownership
from rotator.util.logs import get_logger
from rotator.util.timeutil import rfc3339

ANN_ROTATED_AT = "rotator.io/rotated-at"
ANN_SERIAL = "rotator.io/serial"
ANN_NOT_AFTER = "rotator.io/not-after"
ANN_ISSUER = "rotator.io/issued-by"
ANN_PREVIOUS_SERIAL = "rotator.io/previous-serial"
ANN_ROLLED_BACK_AT = "rotator.io/rolled-back-at"
ANN_RENEWAL = "rotator.io/renewal"  # "paused": rotator plans skip for it (cert-manager's renewal.policy: Disabled)
ROTATION_ANNOTATIONS = (ANN_ROTATED_AT, ANN_SERIAL, ANN_NOT_AFTER, ANN_ISSUER, ANN_PREVIOUS_SERIAL, ANN_ROLLED_BACK_AT)
LABEL_BACKUP_OF = "rotator.io/backup-of"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
ANN_BACKUP_OF = "rotator.io/backup-of"
ANN_BACKUP_AT = "rotator.io/backup-at"
ANN_BACKUP_RV = "rotator.io/backup-resource-version"
ANN_BACKUP_METADATA = "rotator.io/backup-metadata"  # the original labels and annotations, JSON
ANN_BACKUP_TYPE = "rotator.io/backup-type"  # backups are Opaque, so expiry exporters skip them
OCSP_KEY = "tls.ocsp-staple"
TLS_FAMILY = ("tls.crt", "tls.key")

Status = Literal["rotated", "created", "unchanged", "skipped", "failed", "rolled-back"]


@dataclass(frozen=True)
class Material:
    """A new credential: the chain (leaf first) and its private key, PEM."""

    chain_pem: bytes
    key_pem: bytes
    issuer: str = ""


@dataclass(frozen=True)
class Outcome:
    namespace: str
    name: str
    status: Status
    message: str
    backup: str | None = None
    serial: str | None = None
    findings: tuple[Finding, ...] = ()


# --- pure parts --------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def decoded(secret: dict[str, Any]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for k, v in (secret.get("data") or {}).items():
        try:
            out[k] = base64.b64decode(v or "")
        except ValueError:
            out[k] = b""
    return out


def validate(
    material: Material, references: Sequence[Reference], now: datetime, family: tuple[str, str] = TLS_FAMILY
) -> list[Finding]:
    """The checks ``rotator check`` makes, run on the candidate before it is written."""
    spec = CredentialSpec("Secret", "candidate", "candidate", "server", tuple(references))
    candidate = Secret(
        "candidate", "candidate", "kubernetes.io/tls", {family[0]: material.chain_pem, family[1]: material.key_pem}
    )
    cred = inspect(spec, Inventory(secrets=(candidate,)), now, InspectOptions(verify_signatures=True))
    return [f for f in cred.findings if f.code in findings.BLOCKS_WRITE]


def leaf_facts(chain_pem: bytes) -> tuple[str, str]:
    """(serial hex, not-after RFC 3339) of the first certificate."""
    bundle = certs.parse_bundle(chain_pem)
    leaf = bundle.certs[0]
    return format(leaf.serial_number, "x"), rfc3339(certs.not_after(leaf))


def safe_stem(name: str, limit: int = 200) -> str:
    """A prefix of ``name`` that can start a longer DNS-subdomain name (no trailing '.' or '-')."""
    return name[:limit].rstrip(".-") or "secret"


def label_value(name: str) -> str:
    """A Secret name as a label value (63 chars, alphanumeric ends), hashed when it does not fit."""
    if len(name) <= 63 and re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", name):
        return name
    return "h-" + hashlib.sha256(name.encode()).hexdigest()[:40]


def updated_secret(current: dict[str, Any], material: Material, now: datetime) -> dict[str, Any]:
    """The whole new Secret: one update carrying chain, key and staple removal together.

    Keeps the Secret's type, labels, unrelated keys and its client CA (``ca.crt`` /
    ``cacert`` decide who may connect: not ours to change). Writes the key family Istio
    reads (§3.1) and removes the shadowed one, except that a ``kubernetes.io/tls`` Secret
    must keep ``tls.crt``/``tls.key``, which then get the same new material.
    """
    data = dict(current.get("data") or {})
    family = select_server_keys(decoded(current)) or TLS_FAMILY
    previous_serial = ""
    if family[0] in data:
        try:
            previous_serial = leaf_facts(base64.b64decode(data[family[0]]))[0]
        except (ValueError, IndexError):
            previous_serial = ""
    data[family[0]] = b64(material.chain_pem)
    data[family[1]] = b64(material.key_pem)
    other = TLS_FAMILY if family == ("cert", "key") else ("cert", "key")
    for key in other:
        if key in data:
            if current.get("type") == "kubernetes.io/tls" and key in TLS_FAMILY:
                data[key] = b64(material.chain_pem if key == "tls.crt" else material.key_pem)
            else:
                del data[key]
    data.pop(OCSP_KEY, None)  # a staple for the old certificate makes Envoy reject the new one (§3.5)
    serial, not_after = leaf_facts(material.chain_pem)
    meta = dict(current.get("metadata") or {})
    annotations = dict(meta.get("annotations") or {})
    annotations.pop(ANN_ROLLED_BACK_AT, None)
    annotations.update({ANN_ROTATED_AT: rfc3339(now), ANN_SERIAL: serial, ANN_NOT_AFTER: not_after})
    if material.issuer:
        annotations[ANN_ISSUER] = material.issuer
    if previous_serial:
        annotations[ANN_PREVIOUS_SERIAL] = previous_serial
    meta["annotations"] = annotations
    meta.pop("managedFields", None)
    return {**current, "metadata": meta, "data": data}


def new_secret(namespace: str, name: str, material: Material, now: datetime) -> dict[str, Any]:
    serial, not_after = leaf_facts(material.chain_pem)
    annotations = {ANN_ROTATED_AT: rfc3339(now), ANN_SERIAL: serial, ANN_NOT_AFTER: not_after}
    if material.issuer:
        annotations[ANN_ISSUER] = material.issuer
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": annotations,
            "labels": {LABEL_MANAGED_BY: "rotator"},
        },
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": b64(material.chain_pem), "tls.key": b64(material.key_pem)},
    }


def backup_secret(current: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A full copy of the version about to be replaced, findable by label, never referenced by Istio."""
    import json

    meta = current.get("metadata") or {}
    name = str(meta["name"])
    saved = {"labels": meta.get("labels") or {}, "annotations": meta.get("annotations") or {}}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "generateName": f"{safe_stem(name)}-rotator-backup-",
            "namespace": meta.get("namespace"),
            "labels": {LABEL_BACKUP_OF: label_value(name), LABEL_MANAGED_BY: "rotator"},
            "annotations": {
                ANN_BACKUP_OF: name,
                ANN_BACKUP_AT: rfc3339(now),
                ANN_BACKUP_RV: str(meta.get("resourceVersion", "")),
                **{k: v for k, v in (meta.get("annotations") or {}).items() if k in ROTATION_ANNOTATIONS},
                ANN_BACKUP_METADATA: json.dumps(saved, sort_keys=True),
                ANN_BACKUP_TYPE: str(current.get("type", "Opaque")),
            },
        },
        "type": "Opaque",
        "data": ownership.backup_data(current.get("data") or {}),
    }


def _backup_order(backup: dict[str, Any]) -> tuple[str, int]:
    meta = backup.get("metadata") or {}
    ann = meta.get("annotations") or {}
    try:
        rv = int(meta.get("resourceVersion") or 0)
    except ValueError:
        rv = 0
    return (str(ann.get(ANN_BACKUP_AT, "")), rv)


# --- the imperative shell ----------------------------------------------------------


def _holds_ca(secret: dict[str, Any]) -> bool:
    """Is the certificate the Secret serves a CA's? (then its key is a CA key)"""
    data = decoded(secret)
    family = select_server_keys(data)
    if family is None:
        return False
    bundle = certs.parse_bundle(data[family[0]])
    return bool(bundle.certs) and certs.is_ca(bundle.certs[0])


def _serial_in(secret: dict[str, Any]) -> str | None:
    """Serial of the leaf the Secret actually holds (not what its annotations claim)."""
    data = decoded(secret)
    family = select_server_keys(data)
    if family is None:
        return None
    try:
        return leaf_facts(data[family[0]])[0]
    except (ValueError, IndexError):
        return None


def _copy_ca_keys(body: dict[str, Any], sibling: dict[str, Any] | None) -> dict[str, Any]:
    """A new copy in another gateway namespace gets the sibling's client CA: the CA is not
    ours to choose, but a MUTUAL server there needs the same one to work at all."""
    if sibling is None:
        return body
    for key in ("ca.crt", "cacert", "ca.crl", "crl"):
        value = (sibling.get("data") or {}).get(key)
        if value:
            body["data"][key] = value
    return body


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
        return sorted(own, key=_backup_order, reverse=True)

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
        material: Material,
        references: Sequence[Reference],
        still_needed: Callable[[dict[str, Any]], bool] | None = None,
        read_version: str | None = None,
        sibling: dict[str, Any] | None = None,
    ) -> Outcome:
        """Rotate one Secret copy; returns what happened, never raises for API trouble.

        ``read_version`` is the resourceVersion the plan was made from. If the Secret
        changed since (or a write conflicts), rotator re-reads and asks ``still_needed``;
        without that callback it does not overwrite a Secret it has not seen.
        """
        now = self.clock()
        stub = {"kind": "Secret", "metadata": {"namespace": namespace, "name": name}}
        problems = validate(material, references, now)
        if problems:
            note = "; ".join(f"{f.code}: {f.message}" for f in problems)
            self._event(
                stub, "RotationFailed", "Validate", f"new certificate rejected before writing: {note}", warning=True
            )
            return Outcome(namespace, name, "failed", f"validation failed: {note}", findings=tuple(problems))
        serial, _ = leaf_facts(material.chain_pem)
        try:
            outcome = self._write(namespace, name, material, serial, still_needed, read_version, sibling)
        except ApiError as exc:
            outcome = Outcome(namespace, name, "failed", str(exc), serial=serial)
        if outcome.status == "failed":
            self._event(stub, "RotationFailed", "Update", outcome.message, warning=True)
        return outcome

    def _write(
        self,
        namespace: str,
        name: str,
        material: Material,
        serial: str,
        still_needed: Callable[[dict[str, Any]], bool] | None,
        read_version: str | None,
        sibling: dict[str, Any] | None,
    ) -> Outcome:
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
                body = _copy_ca_keys(new_secret(namespace, name, material, self.clock()), sibling)
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
                name, str(current.get("type") or ""), (current.get("data") or {}).keys(), _holds_ca(current)
            )
            if why is not None:  # re-checked on what was just read: it may have changed since the plan
                return Outcome(namespace, name, "failed", f"refused to write Secret {namespace}/{name}: {why}")
            holds = _serial_in(current)
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
                    if after is not None and _serial_in(after) == serial:
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
        material: Material,
        references: Sequence[Reference],
        still_needed: Callable[[dict[str, Any]], bool] | None = None,
        read_versions: dict[tuple[str, str], str] | None = None,
    ) -> list[Outcome]:
        """The same certificate into every namespace Istio reads it from (§2.2).

        Each gateway pod reads only its own namespace, so all copies must carry the same
        certificate. Kubernetes has no multi-object transaction: the copies are written
        one by one, each safely, and a copy that fails is reported (and still different,
        so the next pass retries it) without undoing the others, which are valid.
        """
        problems = validate(material, references, self.clock())
        if problems:
            note = "; ".join(f"{f.code}: {f.message}" for f in problems)
            for ns, name in copies:
                stub = {"kind": "Secret", "metadata": {"namespace": ns, "name": name}}
                self._event(
                    stub, "RotationFailed", "Validate", f"new certificate rejected before writing: {note}", warning=True
                )
            return [
                Outcome(ns, name, "failed", f"validation failed: {note}", findings=tuple(problems))
                for ns, name in copies
            ]
        sibling: dict[str, Any] | None = None
        out = []
        for ns, name in copies:
            version = (read_versions or {}).get((ns, name))
            if sibling is None:
                try:
                    sibling = self.api.get(SECRETS, ns, name) if version else None
                except ApiError:
                    sibling = None
            out.append(self.write(ns, name, material, references, still_needed, version, sibling))
        return out

    def backup_with_serial(self, namespace: str, name: str, serial: str) -> str | None:
        """The newest backup of this Secret holding that certificate: how a copy in another
        gateway namespace is rolled back to the same certificate as the one named."""
        return next((b["metadata"]["name"] for b in self.backups(namespace, name) if _serial_in(b) == serial), None)

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
                    name, str(current.get("type") or ""), current.get("data") or {}, _holds_ca(current)
                )
                if current
                else ownership.name_refusal(name)
            )
            if why is not None:
                return Outcome(namespace, name, "failed", f"refused to write Secret {namespace}/{name}: {why}")
            current_serial = _serial_in(current) if current else None
            if to is not None:
                chosen = next((b for b in backups if b["metadata"]["name"] == to), None)
                if chosen is None:
                    return Outcome(namespace, name, "failed", f"no backup named {to!r} of Secret {namespace}/{name}")
            else:
                # the newest backup holding a different certificate than the one served now
                chosen = next((b for b in backups if _serial_in(b) != current_serial), None)
                if chosen is None:
                    return Outcome(namespace, name, "failed", f"no backup of Secret {namespace}/{name} to restore")
            data = decoded(chosen)
            family = select_server_keys(data)
            if family is None:
                return Outcome(namespace, name, "failed", f"backup {chosen['metadata']['name']} has no usable keys")
            material = Material(data[family[0]], data[family[1]])
            problems = validate(material, references, self.clock(), family)
            if problems:
                note = "; ".join(f"{f.code}: {f.message}" for f in problems)
                return Outcome(
                    namespace,
                    name,
                    "failed",
                    f"backup {chosen['metadata']['name']} failed validation: {note}",
                    findings=tuple(problems),
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
                saved = _saved_metadata(chosen)
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


def _saved_metadata(backup: dict[str, Any]) -> dict[str, Any]:
    import json

    raw = ((backup.get("metadata") or {}).get("annotations") or {}).get(ANN_BACKUP_METADATA, "{}")
    try:
        saved = json.loads(raw)
    except ValueError:
        return {}
    return saved if isinstance(saved, dict) else {}
