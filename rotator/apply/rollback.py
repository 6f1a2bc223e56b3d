"""Rollback: restore a Secret (and its namespace copies) from rotator's own backups.

The same wall as a rotation: a backup is validated against the Gateways' references like
any candidate, the Secret is written with the ``resourceVersion`` that was read, and the
version it replaces is backed up first, so a rollback can itself be undone. Istio reads a
classic Gateway's Secret in each gateway namespace and rotator keeps those copies on one
certificate, so copies are restored together or not at all."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rotator.apply.secret_bodies import (
    ANN_BACKUP_TYPE,
    ANN_RENEWAL,
    ANN_ROLLED_BACK_AT,
    OCSP_KEY,
    ROTATION_ANNOTATIONS,
    TLS_FAMILY,
    Material,
    holds_ca,
    leaf_facts,
    saved_metadata,
    serial_in,
)
from rotator.apply.secret_writer import Outcome, SecretWriter
from rotator.apply.validate import Rejected, validate
from rotator.checks.families import select_server_keys
from rotator.kube.api import SECRETS, ApiError
from rotator.kube.secret_data import decoded
from rotator.model import CredentialSpec, Reference
from rotator.plan import ownership
from rotator.plan.copies import copy_key
from rotator.util.timeutil import rfc3339


def backup_with_serial(writer: SecretWriter, namespace: str, name: str, serial: str) -> str | None:
    """The newest backup of this Secret holding that certificate: how a copy in another
    gateway namespace is rolled back to the same certificate as the one named."""
    return next((b["metadata"]["name"] for b in writer.backups(namespace, name) if serial_in(b) == serial), None)


def restore(
    writer: SecretWriter,
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
        outcome = _restore(writer, namespace, name, references, to, dry_run, hold)
    except ApiError as exc:
        outcome = Outcome(namespace, name, "failed", str(exc))
    if outcome.status == "failed" and not dry_run:
        writer.event(stub, "RollbackFailed", "Rollback", outcome.message, warning=True)
    return outcome


@dataclass(frozen=True)
class Together:
    """The outcome of restoring a Secret with its copies: ``refused`` says why nothing
    was written (a copy without a backup of the same certificate, or a backup that fails
    validation); otherwise one outcome per copy."""

    outcomes: tuple[Outcome, ...] = ()
    refused: str | None = None


def copies_of(specs: Sequence[CredentialSpec], namespace: str, name: str) -> tuple[list[Reference], list[str]]:
    """The Gateways' references to this server Secret, and the other gateway namespaces
    holding a copy of it (the key renewals group copies by)."""
    primary = next((s for s in specs if (s.namespace, s.name, s.role) == (namespace, name, "server")), None)
    if primary is None:
        return [], []
    key = copy_key(primary)
    copies = sorted({s.namespace for s in specs if copy_key(s) == key and s.namespace != namespace})
    return list(primary.references), copies


def restore_together(
    writer: SecretWriter,
    namespace: str,
    name: str,
    references: Sequence[Reference],
    copies: Sequence[str],
    to: str | None,
    dry_run: bool,
    hold: bool,
) -> Together:
    """All or none: every copy is first checked (a dry run each) to have a backup of the
    same certificate that passes validation, and only then is anything written."""
    first = restore(writer, namespace, name, references, to=to, dry_run=True)
    if first.status != "rolled-back" or not first.serial:
        return Together(refused=f"{namespace}/{name}: {first.status}: {first.message}")
    plan = [(namespace, first.backup)]
    for ns in copies:
        backup = backup_with_serial(writer, ns, name, first.serial)
        if backup is None:
            return Together(
                refused=f"{ns}/{name}: failed: no backup holds serial {first.serial}; nothing was restored "
                "(--this-copy-only restores only the Secret named)"
            )
        check = restore(writer, ns, name, references, to=backup, dry_run=True)
        if check.status != "rolled-back":
            return Together(refused=f"{ns}/{name}: {check.status}: {check.message}; nothing was restored")
        plan.append((ns, backup))
    return Together(
        outcomes=tuple(
            restore(writer, ns, name, references, to=backup, dry_run=dry_run, hold=hold) for ns, backup in plan
        )
    )


def _restore(
    writer: SecretWriter,
    namespace: str,
    name: str,
    references: Sequence[Reference],
    to: str | None,
    dry_run: bool,
    hold: bool,
) -> Outcome:
    api = writer.api
    for _attempt in range(writer.max_conflicts):
        backups = writer.backups(namespace, name)
        current = api.get(SECRETS, namespace, name)
        why = (
            ownership.hard_refusal(name, str(current.get("type") or ""), current.get("data") or {}, holds_ca(current))
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
        checked = validate(material, references, writer.clock(), family)
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
        restored_ann[ANN_ROLLED_BACK_AT] = rfc3339(writer.clock())
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
                created = api.create(SECRETS, namespace, body)
            except ApiError as exc:
                if exc.status == 409:
                    continue
                raise
            writer.event(created, "RolledBack", "Rollback", f"re-created with certificate serial {serial} from {label}")
            return Outcome(namespace, name, "rolled-back", f"re-created from {label}", backup=label, serial=serial)
        writer.ensure_backup(current, backups)  # the rollback itself can be undone
        meta = dict(current["metadata"])
        ann = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in ROTATION_ANNOTATIONS}
        ann.update(restored_ann)
        meta["annotations"] = ann
        meta.pop("managedFields", None)
        new_data = {k: v for k, v in (current.get("data") or {}).items() if k not in cert_keys}
        new_data.update({k: v for k, v in backup_data.items() if k in cert_keys})
        body = {**current, "metadata": meta, "data": new_data}
        try:
            updated = api.update(SECRETS, namespace, body)
        except ApiError as exc:
            if exc.status == 409:
                continue
            raise
        writer.prune(namespace, name)
        writer.event(updated, "RolledBack", "Rollback", f"restored certificate serial {serial} from {label}")
        return Outcome(namespace, name, "rolled-back", f"restored {label}", backup=label, serial=serial)
    return Outcome(namespace, name, "failed", f"gave up after {writer.max_conflicts} conflicting writes")
