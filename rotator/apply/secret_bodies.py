"""The Secret bodies rotator writes, as pure functions of what is there and what is new.

An update keeps every key, label and annotation it does not own; a backup is an Opaque
copy (so expiry exporters skip it) that remembers the original's metadata; the rotation
annotations say what was written, when and by which issuer. No I/O: the writer sends
these bodies, and tests read them without a cluster.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rotator.checks import certs
from rotator.checks.families import select_server_keys
from rotator.kube.secret_data import decoded
from rotator.plan import ownership
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


@dataclass(frozen=True)
class Material:
    """A new credential: the chain (leaf first) and its private key, PEM."""

    chain_pem: bytes
    key_pem: bytes
    issuer: str = ""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


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
            previous_serial = leaf_facts(decoded(current)[family[0]])[0]
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


def backup_order(backup: dict[str, Any]) -> tuple[str, int]:
    meta = backup.get("metadata") or {}
    ann = meta.get("annotations") or {}
    try:
        rv = int(meta.get("resourceVersion") or 0)
    except ValueError:
        rv = 0
    return (str(ann.get(ANN_BACKUP_AT, "")), rv)


def holds_ca(secret: dict[str, Any]) -> bool:
    """Is the certificate the Secret serves a CA's? (then its key is a CA key)"""
    data = decoded(secret)
    family = select_server_keys(data)
    if family is None:
        return False
    bundle = certs.parse_bundle(data[family[0]])
    return bool(bundle.certs) and certs.is_ca(bundle.certs[0])


def serial_in(secret: dict[str, Any]) -> str | None:
    """Serial of the leaf the Secret actually holds (not what its annotations claim)."""
    data = decoded(secret)
    family = select_server_keys(data)
    if family is None:
        return None
    try:
        return leaf_facts(data[family[0]])[0]
    except (ValueError, IndexError):
        return None


def copy_ca_keys(body: dict[str, Any], sibling: dict[str, Any] | None) -> dict[str, Any]:
    """A new copy in another gateway namespace gets the sibling's client CA: the CA is not
    ours to choose, but a MUTUAL server there needs the same one to work at all."""
    if sibling is None:
        return body
    for key in ("ca.crt", "cacert", "ca.crl", "crl"):
        value = (sibling.get("data") or {}).get(key)
        if value:
            body["data"][key] = value
    return body


def saved_metadata(backup: dict[str, Any]) -> dict[str, Any]:
    import json

    raw = ((backup.get("metadata") or {}).get("annotations") or {}).get(ANN_BACKUP_METADATA, "{}")
    try:
        saved = json.loads(raw)
    except ValueError:
        return {}
    return saved if isinstance(saved, dict) else {}
