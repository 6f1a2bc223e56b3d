"""The pending Secret ``<name>-rotator-pending``: claim, safety net and leftovers.

Before ordering a certificate for a Secret, a pass *claims* the order by creating the
pending Secret (a create is atomic: of two passes at once, exactly one succeeds), so a
second pass that runs uncoordinated (no Lease, or a Lease it cannot read) sees the
order in flight instead of ordering again. Once issued, the certificate is kept there
until it is written, so a pass that dies in between loses nothing: the next pass writes
that certificate instead of ordering anew. After the write the pending Secret goes.

A pending Secret holds a live private key, so leftovers (a DELETE that failed, a pod
killed between the write and the delete, a claim whose pass died) are swept.
"""

from __future__ import annotations

import base64
import os
import socket
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from rotator.apply.secret_bodies import LABEL_MANAGED_BY, Material, label_value
from rotator.apply.validate import Rejected, Validated, validate
from rotator.checks import certs
from rotator.checks.families import select_server_keys
from rotator.config.schema import ACMEIssuerConfig, Config
from rotator.issuers.base import Issued
from rotator.kube.api import SECRETS, ApiError, KubeAPI
from rotator.kube.secret_data import decoded
from rotator.model import Reference
from rotator.util.logs import get_logger
from rotator.util.timeutil import parse_duration, rfc3339

PENDING_LABEL = "rotator.io/pending-for"
PENDING_ANN_FOR = "rotator.io/pending-for"  # the full Secret name (the label may be hashed)
PENDING_ANN_SANS = "rotator.io/pending-sans"
PENDING_ANN_ISSUER = "rotator.io/pending-issuer"
PENDING_ANN_CLAIMED_BY = "rotator.io/claimed-by"
PENDING_ANN_CLAIMED_AT = "rotator.io/claimed-at"
SUFFIX = "-rotator-pending"
# At least this, and at least twice the longest order the issuers allow (ACME timeout
# plus DNS propagation): a claim older than that belongs to a pass that died.
CLAIM_TTL = timedelta(minutes=15)


def pending_name(name: str) -> str:
    return f"{name[:230]}{SUFFIX}"


def default_identity() -> str:
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}/{os.getpid()}"


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _annotations(obj: dict[str, Any]) -> dict[str, str]:
    ann = _meta(obj).get("annotations")
    return ann if isinstance(ann, dict) else {}


def _material(obj: dict[str, Any]) -> Material | None:
    try:
        data = decoded(obj, strict=True)
    except ValueError:
        return None
    family = select_server_keys(data)
    return None if family is None else Material(data[family[0]], data[family[1]])


def _serial(material: Material) -> str | None:
    bundle = certs.parse_bundle(material.chain_pem)
    return format(bundle.certs[0].serial_number, "x") if bundle.certs else None


def _time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def secret_of(pending: dict[str, Any]) -> str:
    """The Secret a pending Secret is for."""
    name = str(_meta(pending).get("name", ""))
    return _annotations(pending).get(PENDING_ANN_FOR) or name.removesuffix(SUFFIX)


class PendingStore:
    def __init__(
        self,
        api: KubeAPI,
        clock: Callable[[], datetime],
        identity: str | None = None,
        dead: Iterable[str] = (),
        ttl: timedelta = CLAIM_TTL,
    ) -> None:
        self.ttl = max(ttl, CLAIM_TTL)  # never shorter than the longest order may take
        self.api = api
        self.clock = clock
        self.identity = identity or default_identity()
        self.dead = frozenset(dead)  # holders known to be gone (their Lease was taken over)
        self.log = get_logger("rotator.renewal")

    # -- the claim ----------------------------------------------------------------------

    def claim(self, ns: str, name: str) -> str | None:
        """Take the order for ``ns/name``: None when this pass holds it now, else why not
        (another pass's claim, fresh). A claim that cannot be made for an API error is
        not a reason to stop: the renewal goes on, as before claims existed."""
        body = self._body(
            ns, name, {PENDING_ANN_CLAIMED_BY: self.identity, PENDING_ANN_CLAIMED_AT: rfc3339(self.clock())}
        )
        try:
            for _attempt in range(3):
                existing = self.api.get(SECRETS, ns, pending_name(name))
                if existing is None:
                    try:
                        self.api.create(SECRETS, ns, body, retry=False)
                        return None
                    except ApiError as exc:
                        if exc.status == 409 or exc.transient:
                            continue  # someone created it meanwhile, or our response was lost: look
                        raise
                why = self._held_elsewhere(existing)
                if why is not None:
                    return why
                body["metadata"]["resourceVersion"] = _meta(existing).get("resourceVersion")
                body["type"] = existing.get("type") or "Opaque"  # a Secret's type is immutable
                if body["type"] == "kubernetes.io/tls":
                    body["data"] = existing.get("data") or {}
                try:
                    self.api.update(SECRETS, ns, body)
                    return None
                except ApiError as exc:
                    if exc.status == 409:
                        continue
                    raise
        except ApiError as exc:
            self.log.warning("could not claim the order", namespace=ns, secret=name, error=str(exc))
            return None
        return f"Secret {ns}/{pending_name(name)} changed under every attempt to claim it"

    def _held_elsewhere(self, existing: dict[str, Any]) -> str | None:
        ann = _annotations(existing)
        holder = ann.get(PENDING_ANN_CLAIMED_BY, "")
        at = _time(ann.get(PENDING_ANN_CLAIMED_AT, ""))
        if not holder or holder == self.identity or holder in self.dead:
            return None  # unclaimed (an unusable old certificate), ours, or a dead pass's
        if at is None or self.clock() - at >= self.ttl:
            return None  # a pass that died: no order takes this long
        return (
            f"another rotator pass ({holder}) is ordering this certificate since {rfc3339(at)} "
            f"(claim in Secret {_meta(existing).get('namespace')}/{_meta(existing).get('name')}); not ordering twice"
        )

    # -- the safety net -------------------------------------------------------------------

    def keep(self, ns: str, name: str, issued: Issued, sans: Sequence[str]) -> bool:
        """Store the issued certificate in the pending Secret; True when it is there."""
        # still claimed: until the write is done, another pass must neither order again nor
        # overwrite this certificate with a claim of its own
        claim = {PENDING_ANN_CLAIMED_BY: self.identity, PENDING_ANN_CLAIMED_AT: rfc3339(self.clock())}
        body = self._body(ns, name, {PENDING_ANN_SANS: ",".join(sans), PENDING_ANN_ISSUER: issued.issuer, **claim})
        body["data"] = {
            "tls.crt": base64.b64encode(issued.chain_pem).decode(),
            "tls.key": base64.b64encode(issued.key_pem).decode(),
        }
        try:
            for _attempt in range(3):
                existing = self.api.get(SECRETS, ns, pending_name(name))
                try:
                    if existing is None:
                        self.api.create(SECRETS, ns, body, retry=False)
                    else:
                        body["metadata"]["resourceVersion"] = _meta(existing).get("resourceVersion")
                        body["type"] = existing.get("type") or "Opaque"
                        self.api.update(SECRETS, ns, body)
                    return True
                except ApiError as exc:
                    if exc.status != 409 and not exc.transient:
                        raise
                    # 409: a lost response of our own write, or another writer: read it back
                    if self.holds(ns, name, issued.serial):
                        return True
        except ApiError as exc:
            # Not fatal: the write may still succeed; only the safety net is missing.
            self.log.warning("could not keep the pending certificate", namespace=ns, secret=name, error=str(exc))
            return False
        return self.holds(ns, name, issued.serial)

    def unclaim(self, ns: str, name: str) -> None:
        """Keep the certificate, give up the claim: a pass that stops before writing (it
        lost the Lease, SIGTERM) lets the next pass write it at once, not after the TTL."""
        try:
            obj = self.api.get(SECRETS, ns, pending_name(name))
            if obj is None or _annotations(obj).get(PENDING_ANN_CLAIMED_BY) != self.identity:
                return
            meta = dict(_meta(obj))
            meta["annotations"] = {
                k: v for k, v in _annotations(obj).items() if k not in (PENDING_ANN_CLAIMED_BY, PENDING_ANN_CLAIMED_AT)
            }
            meta.pop("managedFields", None)
            self.api.update(SECRETS, ns, {**obj, "metadata": meta})
        except ApiError as exc:
            self.log.warning("pending certificate still claimed", namespace=ns, secret=name, error=str(exc))

    def holds(self, ns: str, name: str, serial: str) -> bool:
        try:
            obj = self.api.get(SECRETS, ns, pending_name(name))
        except ApiError:
            return False
        material = _material(obj) if obj is not None else None
        return material is not None and _serial(material) == serial

    def usable(
        self, ns: str, name: str, sans: tuple[str, ...], references: tuple[Reference, ...], now: datetime
    ) -> tuple[Issued, Validated] | None:
        """A certificate an earlier pass ordered and did not write, if it still fits; with
        it validated, so the writer does not inspect it again."""
        try:
            obj = self.api.get(SECRETS, ns, pending_name(name))
        except ApiError:
            return None
        material = _material(obj) if obj is not None else None
        if obj is None or material is None:
            return None  # nothing, or only a claim
        if self._held_elsewhere(obj) is not None:
            return None  # a live pass is about to write it; claim() says so
        issuer = _annotations(obj).get(PENDING_ANN_ISSUER, "")
        checked = validate(Material(material.chain_pem, material.key_pem, issuer), references, now)
        if isinstance(checked, Rejected):
            return None  # expired or no longer covering the hosts: order anew
        have = set(_annotations(obj).get(PENDING_ANN_SANS, "").split(","))
        if not set(sans) <= have:
            return None
        leaf = certs.parse_bundle(material.chain_pem).certs[0]
        serial = format(leaf.serial_number, "x")
        return Issued(material.chain_pem, material.key_pem, serial, certs.not_after(leaf), issuer), checked

    def drop(self, ns: str, name: str) -> bool:
        try:
            self.api.delete(SECRETS, ns, pending_name(name))
        except ApiError as exc:
            self.log.warning("pending certificate not removed", namespace=ns, secret=name, error=str(exc))
            return False
        return True

    # -- leftovers --------------------------------------------------------------------------

    def sweep(self, namespaces: Iterable[str], serial_of: Callable[[str, str], str | None]) -> list[str]:
        """Delete leftovers: a certificate the Secret already holds (the pass died after the
        write), an expired certificate, a claim of a dead pass. A certificate still waiting
        to be written stays: it is the next pass's safety net. Returns what was removed."""
        removed: list[str] = []
        now = self.clock()
        for ns in sorted(set(namespaces)):
            try:
                found = list(self.api.items(SECRETS, ns, label_selector=PENDING_LABEL))
            except ApiError as exc:
                self.log.warning("pending Secrets not swept", namespace=ns, error=str(exc))
                continue
            for obj in found:
                pname = str(_meta(obj).get("name", ""))
                if not pname.endswith(SUFFIX):
                    continue
                why = self._leftover(obj, ns, serial_of, now)
                if why is None:
                    continue
                try:
                    self.api.delete(SECRETS, ns, pname)
                except ApiError as exc:
                    self.log.warning("leftover pending Secret not removed", namespace=ns, secret=pname, error=str(exc))
                    continue
                self.log.info("leftover pending Secret removed", namespace=ns, secret=pname, why=why)
                removed.append(f"{ns}/{pname}")
        return removed

    def _leftover(
        self, obj: dict[str, Any], ns: str, serial_of: Callable[[str, str], str | None], now: datetime
    ) -> str | None:
        material = _material(obj)
        if material is None:
            at = _time(_annotations(obj).get(PENDING_ANN_CLAIMED_AT, ""))
            if _annotations(obj).get(PENDING_ANN_CLAIMED_BY, "") in self.dead:
                return "a claim of a pass that died holding the Lease"
            return "a claim older than the claim TTL" if at is None or now - at >= self.ttl else None
        bundle = certs.parse_bundle(material.chain_pem)
        if not bundle.certs:
            return "holds no usable certificate"
        if certs.not_after(bundle.certs[0]) <= now:
            return "its certificate has expired"
        if serial_of(ns, secret_of(obj)) == format(bundle.certs[0].serial_number, "x"):
            return "the Secret already holds its certificate"
        return None

    def _body(self, ns: str, name: str, annotations: dict[str, str]) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": pending_name(name),
                "namespace": ns,
                "labels": {PENDING_LABEL: label_value(name), LABEL_MANAGED_BY: "rotator"},
                "annotations": {PENDING_ANN_FOR: name, **annotations},
            },
            # Opaque: expiry exporters and Istio look at kubernetes.io/tls Secrets; a claim
            # has no keys yet, and a Secret's type cannot change later.
            "type": "Opaque",
            "data": {},
        }


def longest_order(config: Config) -> timedelta:
    """The longest one order may take under this config (ACME timeout plus DNS-01
    propagation): a claim lives twice that, so a live pass's claim never lapses mid-order."""
    longest = timedelta(0)
    for cfg in config.issuers.values():
        if not isinstance(cfg, ACMEIssuerConfig):
            continue  # a CA key pair signs at once
        total = parse_duration(cfg.timeout)
        if cfg.dns01 is not None:
            total += parse_duration(cfg.dns01.propagation_timeout)
        longest = max(longest, total)
    return longest
