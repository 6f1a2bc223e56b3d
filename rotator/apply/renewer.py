"""Runs the plan: for each credential to renew, issue, validate, write, record.

The order of operations is what prevents issuance loops (Let's Encrypt allows 5
certificates per name set per week):
1. a failed order backs off exponentially (from minutes, capped), persisted in rotator's
   state ConfigMap so a CronJob's next pod honours it;
2. a certificate that was issued is first kept in a *pending* Secret, then written;
   if the write fails, the next pass writes the pending certificate instead of ordering
   again;
3. copies of one Secret in several gateway namespaces get one certificate.
Pure helpers (grouping, SANs, back-off arithmetic) come first; ``Renewer`` is the shell.
"""

from __future__ import annotations

import contextvars
import random
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

from cryptography import x509

from rotator.apis import ISTIO_GROUP
from rotator.apply.backoff import failure_entry, parse_time
from rotator.apply.pending import PendingStore, longest_order, pending_name
from rotator.apply.secret_bodies import Material
from rotator.apply.secret_writer import SecretWriter
from rotator.apply.validate import Rejected, validate
from rotator.checks import certs
from rotator.checks.families import select_server_keys
from rotator.checks.inspect import InspectOptions, inspect
from rotator.config.schema import Config
from rotator.findings import finding, internal_error
from rotator.issuers import keys
from rotator.issuers.base import Issuer, IssueRequest, IssuerError
from rotator.kube.api import SECRETS, ApiError, KubeAPI
from rotator.kube.secret_data import decoded
from rotator.kube.state import StateStore
from rotator.model import (
    CheckResult,
    Credential,
    Finding,
    Inventory,
    ObjectRef,
    RenewalOutcome,
    Secret,
)
from rotator.plan.copies import group_copies, required_coverage, sans_for
from rotator.plan.policy import plan
from rotator.util.logs import get_logger
from rotator.util.timeutil import parse_duration, rfc3339


class Renewer:
    def __init__(
        self,
        api: KubeAPI,
        config: Config,
        issuers: Mapping[str, Issuer],
        writer: SecretWriter,
        state: StateStore,
        clock: Callable[[], datetime],
        rng: Callable[[], float] = random.random,
        may_write: Callable[[], bool] = lambda: True,
        identity: str | None = None,
    ) -> None:
        self.may_write = may_write  # leader election: a replica that lost the Lease stops at once
        self.pending = PendingStore(
            api,
            clock,
            identity or getattr(may_write, "identity", None),
            getattr(may_write, "took_over_from", ()),
            ttl=2 * longest_order(config),
        )
        self.api = api
        self.config = config
        self.issuers = issuers
        self.writer = writer
        self.state = state
        self.clock = clock
        self.rng = rng
        self.log = get_logger("rotator.renewal")
        self.initial = parse_duration(config.renewal.backoff_initial)
        self.cap = parse_duration(config.renewal.backoff_max)

    def run(self, result: CheckResult, inv: Inventory, sweep: bool = True) -> list[RenewalOutcome]:
        """``sweep``: off for a narrowed pass (-n, -l, one Secret), which sees only some of
        the credentials and so cannot tell which leftovers are still needed."""
        if sweep and self.may_write():
            self.sweep(result, inv)
        groups = group_copies(result.credentials)
        if not groups:
            return []
        # Each worker runs in a copy of this context, so log lines keep the pass's run_id.
        ctx = contextvars.copy_context()
        pool = ThreadPoolExecutor(max_workers=self.config.renewal.concurrency, thread_name_prefix="renew")
        try:
            return list(pool.map(lambda g: ctx.copy().run(self._guarded, g, inv), groups))
        except BaseException:
            # SIGTERM or ^C in the main thread: credentials not started yet are not started;
            # those in flight see may_write() turn false at their next step.
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True)

    def _guarded(self, copies: list[Credential], inv: Inventory) -> RenewalOutcome:
        """One credential's failure never stops the others: any error becomes an outcome."""
        lead = copies[0]
        try:
            return self.renew(copies, inv)
        except Exception as exc:
            self.log.error(
                "renewal crashed",
                namespace=lead.spec.namespace,
                secret=lead.spec.name,
                error=f"{type(exc).__name__}: {exc}",
            )
            obj = ObjectRef("Secret", lead.spec.namespace, lead.spec.name)
            return RenewalOutcome(
                lead.spec.namespace,
                lead.spec.name,
                "failed",
                f"internal error: {type(exc).__name__}: {exc}",
                lead.issuer,
                copies=tuple(f"{c.spec.namespace}/{c.spec.name}" for c in copies),
                findings=(internal_error("renewal", obj, exc),),
            )

    def sweep(self, result: CheckResult, inv: Inventory) -> list[str]:
        """Leftover pending Secrets (live private keys) in the namespaces of this pass."""

        def serial_of(ns: str, name: str) -> str | None:
            """The serial the Secret holds, if every copy of it (other gateway namespaces,
            same name) holds it too: a pending certificate half written is still needed."""
            copies = {c.spec.namespace for c in result.credentials if c.spec.name == name and c.spec.role == "server"}
            serials = set()
            for where in copies | {ns}:
                chain, _ = _current(inv.secret(where, name))
                serials.add(format(chain[0].serial_number, "x") if chain else None)
            return serials.pop() if len(serials) == 1 else None

        namespaces = {
            c.spec.namespace for c in result.credentials if c.spec.kind == "Secret" and c.spec.role == "server"
        }
        try:
            return self.pending.sweep(namespaces, serial_of)
        except Exception as exc:  # a sweep never stops renewals
            self.log.warning("pending Secrets not swept", error=f"{type(exc).__name__}: {exc}")
            return []

    def key(self, cred: Credential) -> str:
        return f"{cred.spec.namespace}/{cred.spec.name}"

    def renew(self, copies: list[Credential], inv: Inventory) -> RenewalOutcome:
        lead = copies[0]
        ns, name = lead.spec.namespace, lead.spec.name
        names = tuple(f"{c.spec.namespace}/{c.spec.name}" for c in copies)
        if not self.may_write():
            holder = getattr(self.may_write, "holder", "") or "another replica"
            lease = getattr(self.may_write, "lease", "") or "the Lease"
            return RenewalOutcome(
                ns,
                name,
                "skipped",
                f"not the leader: {holder} holds {lease} and renews; nothing was written in this pass",
                lead.issuer,
                copies=names,
            )
        obj = ObjectRef("Secret", ns, name)
        issuer_name = lead.issuer
        issuer = self.issuers.get(issuer_name or "")
        if issuer is None:
            return _not_done("failed", "renewal-failed", f"issuer {issuer_name!r} is not available", lead, names)
        now = self.clock()
        entry = self.state.get(self.key(lead)) or {}
        next_attempt = parse_time(str(entry.get("next_attempt", "")))
        secret = inv.secret(ns, name)
        current_chain, current_key = _current(secret)
        current_cert = current_chain[0] if current_chain else None
        sans = sans_for(copies)
        # Trusted Gateways only; names merely routed under a wildcard that the new
        # certificate will not carry are reported, not required (the current one lacks
        # them too), or every order would be rejected and repeated.
        references = required_coverage(tuple(dict.fromkeys(r for c in copies for r in c.trusted_references())), sans)

        pending = self.pending.usable(ns, name, sans, references, now)
        if (
            pending is None
            and next_attempt is not None
            and now < next_attempt
            and not lead.reason.startswith("forced:")
        ):
            msg = (
                f"waiting after {entry.get('failures')} failed attempt(s) until {rfc3339(next_attempt)}; "
                f"last error: {entry.get('last_error')}"
            )
            return _not_done("backoff", "renewal-backoff", msg, lead, names)
        if current_cert is not None and pending is None:
            try:
                change = self._issuer_change(lead, secret, current_cert, issuer)
            except IssuerError as exc:  # its CA cannot be read: a failed renewal, in the API's words
                return self._failed(lead, names, exc, "issuer unavailable")
            if change is not None:
                return RenewalOutcome(
                    ns, name, "skipped", change.message, issuer_name, copies=names, findings=(change,)
                )
        kept = True  # a reused pending certificate is its own safety net
        if pending is not None:
            (issued, checked), reused = pending, True
        else:
            algorithm, pkcs1 = keys.choose(self.config.renewal.key_algorithm, current_key)
            gateways = tuple(sorted({f"{r.namespace}/{r.name}" for r in references if r.group == ISTIO_GROUP}))
            request = IssueRequest(ns, name, sans, algorithm, pkcs1, replaces=current_cert, gateways=gateways)
            # The claim first: a second pass running at the same time (no Lease between
            # them) sees this order in flight instead of placing its own.
            held = self.pending.claim(ns, name)
            if held is not None:
                return RenewalOutcome(ns, name, "skipped", held, issuer_name, copies=names)
            if self._renewed_meanwhile(ns, name, secret, lead, inv):
                self.pending.drop(ns, name)
                return RenewalOutcome(
                    ns,
                    name,
                    "skipped",
                    "renewed by another writer since this pass read it; nothing ordered",
                    issuer_name,
                    copies=names,
                )
            try:
                issued = issuer.issue(request)
            except IssuerError as exc:
                self.pending.drop(ns, name)  # release the claim
                return self._failed(lead, names, exc, "issuance failed")
            except BaseException:
                self.pending.drop(ns, name)
                raise
            reused = False
            # validated once, here: the writer takes only Validated material
            verdict = validate(Material(issued.chain_pem, issued.key_pem, issued.issuer), references, self.clock())
            if isinstance(verdict, Rejected):
                self.pending.drop(ns, name)
                return self._failed(
                    lead, names, IssuerError(f"issued certificate rejected: {verdict.note}"), "validation failed"
                )
            checked = verdict
            kept = self.pending.keep(ns, name, issued, sans)
        if not self.may_write():  # lost the Lease while ordering (or SIGTERM): the pending Secret keeps it
            self.pending.unclaim(ns, name)
            return RenewalOutcome(
                ns,
                name,
                "skipped",
                f"lost leadership before writing; the certificate waits in Secret {ns}/{pending_name(name)}",
                issued.issuer,
                issued.serial,
                issued.not_after,
                names,
                reused,
            )
        outcomes = self.writer.write_copies(
            [(c.spec.namespace, c.spec.name) for c in copies],
            checked,
            still_needed=lambda current: self._still_needed(current, lead, inv),
            # the versions the plan was made from: a change since then is re-checked, never overwritten
            read_versions={
                (c.spec.namespace, c.spec.name): sec.resource_version
                for c in copies
                if (sec := inv.secret(c.spec.namespace, c.spec.name)) is not None and sec.resource_version
            },
        )
        failed = [o for o in outcomes if o.status == "failed"]
        if failed:
            msg = "; ".join(f"{o.namespace}/{o.name}: {o.message}" for o in failed)
            if not kept:
                # No safety net: the next pass would order again, so back off like a failed
                # order (a loop here burns the CA's rate limits).
                return self._failed(
                    lead, names, IssuerError(f"issued certificate could not be written or kept: {msg}"), "write failed"
                )
            # No back-off and no new order: the certificate waits in the pending Secret.
            self.log.warning("write failed; certificate kept for the next pass", namespace=ns, secret=name, error=msg)
            return RenewalOutcome(
                ns,
                name,
                "failed",
                f"certificate issued but not written ({msg}); kept in "
                f"Secret {ns}/{pending_name(name)} for the next pass",
                issued.issuer,
                issued.serial,
                issued.not_after,
                names,
                reused,
                (finding("renewal-failed", f"{obj}: write failed: {msg}", obj),),
            )
        self.pending.drop(ns, name)
        self.state.update(self.key(lead), lambda _old: None)
        statuses = {o.status for o in outcomes}
        if statuses <= {"skipped"}:
            return RenewalOutcome(
                ns, name, "skipped", "rotated concurrently by another writer", issued.issuer, copies=names
            )
        if statuses <= {"skipped", "unchanged"}:
            # Every copy already held this certificate (an earlier pass wrote it and died
            # before removing the pending Secret): nothing was written, so no renewal is
            # reported.
            return RenewalOutcome(
                ns,
                name,
                "skipped",
                f"already holds certificate serial {issued.serial} (written by an earlier pass); nothing written",
                issued.issuer,
                issued.serial,
                issued.not_after,
                names,
                reused,
            )
        self.log.info(
            "renewed",
            namespace=ns,
            secret=name,
            issuer=issued.issuer,
            serial=issued.serial,
            not_after=rfc3339(issued.not_after),
            copies=len(copies),
            reused_pending=reused,
        )
        return RenewalOutcome(
            ns,
            name,
            "renewed",
            f"renewed by {issued.issuer}" + (" (from the pending certificate of an earlier pass)" if reused else ""),
            issued.issuer,
            issued.serial,
            issued.not_after,
            names,
            reused,
        )

    def _failed(self, lead: Credential, names: tuple[str, ...], exc: IssuerError, what: str) -> RenewalOutcome:
        ns, name = lead.spec.namespace, lead.spec.name
        now = self.clock()
        entry = self.state.update(
            self.key(lead), lambda old: failure_entry(old, now, exc, self.initial, self.cap, self.rng)
        )
        nxt = (entry or {}).get("next_attempt", "?")
        msg = f"{what}: {exc}; next attempt not before {nxt}"
        self.log.warning("renewal failed", namespace=ns, secret=name, error=str(exc), next_attempt=nxt)
        return _not_done("failed", "renewal-failed", msg, lead, names)

    def _issuer_change(
        self, cred: Credential, secret: Secret | None, cert: x509.Certificate, issuer: Issuer
    ) -> Finding | None:
        """A certificate from another CA is not silently moved (allow_issuer_change opts in)."""
        recorded = (secret.annotations if secret else {}).get("rotator.io/issued-by")
        if recorded == issuer.name or issuer.owns(cert):
            return None
        hosts = tuple(h for h in cred.spec.hosts if h != "*")
        if any(
            r.issuer == issuer.name and r.allow_issuer_change and r.matches(cred.spec.namespace, cred.spec.name, hosts)
            for r in self.config.rules
        ):
            return None  # the same rule as the plan's (policy.plan): any matching rule for this issuer
        obj = ObjectRef("Secret", cred.spec.namespace, cred.spec.name)
        was = recorded or cert.issuer.rfc4514_string()
        return finding(
            "issuer-change",
            f"{obj}: the current certificate was issued by {was}, not by issuer {issuer.name}; rotator does not "
            "move a credential to another CA on its own. Set allow_issuer_change: true on the rule to allow it.",
            obj,
        )

    def _renewed_meanwhile(self, ns: str, name: str, planned: Secret | None, lead: Credential, inv: Inventory) -> bool:
        """Holding the claim, look once more: a pass that finished this Secret between our
        read and our claim has released its claim already, and its certificate is in place."""
        if planned is None or not planned.resource_version:
            return False
        try:
            current = self.api.get(SECRETS, ns, name)
        except ApiError:
            return False  # the write re-checks on conflict anyway
        if current is None:
            return False
        rv = str((current.get("metadata") or {}).get("resourceVersion", ""))
        return rv != planned.resource_version and not self._still_needed(current, lead, inv)

    def _still_needed(self, current: dict[str, Any], lead: Credential, inv: Inventory) -> bool:
        """Re-check after a conflicting write: maybe someone already rotated it. A renewal
        that was not due by the Secret alone (``rotator renew``, an ARI window) is still
        needed as long as the Secret holds the certificate it was planned from."""
        if lead.reason.startswith(("forced:", "ari:")) and lead.certificate is not None:
            chain, _ = _current(_as_secret(current, lead))
            return bool(chain) and format(chain[0].serial_number, "x") == lead.certificate.serial
        data = decoded(current)
        meta = current.get("metadata") or {}
        secret = Secret(
            lead.spec.namespace,
            lead.spec.name,
            current.get("type", "Opaque"),
            data,
            annotations=dict(meta.get("annotations") or {}),
        )
        fresh = replace(inv, secrets=(secret,))
        now = self.clock()
        cred = plan(inspect(lead.spec, fresh, now, InspectOptions()), fresh, self.config, now)
        return cred.action == "renew"


def _as_secret(obj: dict[str, Any], lead: Credential) -> Secret:
    data = decoded(obj)
    return Secret(lead.spec.namespace, lead.spec.name, str(obj.get("type", "Opaque")), data)


def _current(secret: Secret | None) -> tuple[tuple[x509.Certificate, ...], bytes | None]:
    if secret is None:
        return (), None
    family = select_server_keys(secret.data)
    if family is None:
        return (), None
    return certs.parse_bundle(secret.data[family[0]]).certs, secret.data.get(family[1])


def _not_done(
    status: Literal["failed", "backoff"], code: str, msg: str, lead: Credential, names: tuple[str, ...]
) -> RenewalOutcome:
    """A renewal that did not happen, with the finding that says why on the Secret it concerns."""
    obj = ObjectRef("Secret", lead.spec.namespace, lead.spec.name)
    return RenewalOutcome(
        lead.spec.namespace,
        lead.spec.name,
        status,
        msg,
        lead.issuer,
        copies=names,
        findings=(finding(code, f"{obj}: {msg}", obj),),
    )
