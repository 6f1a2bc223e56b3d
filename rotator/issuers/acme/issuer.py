"""The ACME issuer (RFC 8555) on the ``acme`` library, certbot's protocol implementation.

What rotator adds around the library, because production needs it:
- its own fast, bounded polling of authorizations and orders (the library's
  ``poll_and_finalize`` sleeps whole seconds), honouring Retry-After;
- ``badNonce`` retried a few times (the library retries once; pebble rejects 5 %);
- ``rateLimited`` surfaced as an IssuerError the renewal flow turns into a long back-off;
- authorizations that are already valid skipped; challenge records always cleaned up;
- ARI (RFC 9773): the suggested window read from ``renewalInfo``, and ``replaces`` sent
  on the new order; absent ARI is not an error;
- the account key kept in a Kubernetes Secret (created on first use, reused), EAB.
"""

from __future__ import annotations

import fnmatch
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar

import requests
from acme import challenges, client, errors, messages
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from josepy.jwa import ES256, RS256
from josepy.jwk import JWK, JWKEC, JWKRSA

from rotator.checks import certs
from rotator.config.schema import ACMEIssuerConfig
from rotator.issuers.acme.account import account_key_store, register_account
from rotator.issuers.acme.client import (
    BAD_NONCE_RETRIES,
    USER_AGENT,
    NewOrderWithReplaces,
    RecordingNetwork,
    fetch_json,
    make_csr,
    offers,
    order_identifiers,
    retry_after_seconds,
)
from rotator.issuers.acme.dns01 import Record, RFC2136Solver
from rotator.issuers.acme.health import issuer_health
from rotator.issuers.acme.http01 import ClusterRoutes, HTTP01Responder
from rotator.issuers.acme.journal import Artefact, ChallengeJournal
from rotator.issuers.acme.polling import Poller
from rotator.issuers.acme.renewal_info import ari_cert_id
from rotator.issuers.acme.sweep import sweep_leftovers
from rotator.issuers.base import Issued, IssueRequest, IssuerError
from rotator.kube.api import KubeAPI
from rotator.kube.secret_refs import SecretRefError, read_value
from rotator.model import Finding
from rotator.util import pki
from rotator.util.logs import get_logger
from rotator.util.timeutil import parse_duration

T = TypeVar("T")


class ACMEIssuer:
    def __init__(
        self,
        name: str,
        cfg: ACMEIssuerConfig,
        api: KubeAPI | None,
        clock: Callable[[], datetime],
        account_key_loader: Callable[[], bytes],
        eab_hmac: Callable[[], str] | None = None,
        tsig_secret: Callable[[], str] | None = None,
        responder: HTTP01Responder | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        poll: float = 0.05,
        journal: ChallengeJournal | None = None,
    ) -> None:
        self.name = name
        self.cfg = cfg
        self.api = api
        self.clock = clock
        self._account_key_loader = account_key_loader
        self._eab_hmac = eab_hmac
        self._tsig_secret = tsig_secret
        self.responder = responder
        self.sleep = sleep
        self.monotonic = monotonic
        self._directory_doc: Any = None  # the directory as read for ARI (no account needed)
        self.poll = poll
        self.journal = journal
        self._last_sweep: float | None = None
        self._lock_sweep = threading.Lock()
        self.timeout = parse_duration(cfg.timeout).total_seconds()
        self._client: client.ClientV2 | None = None
        self._lock = threading.Lock()
        self.log = get_logger("rotator.acme")
        self.stats = {"orders": 0, "bad_nonce_retries": 0}
        self.requests: dict[str, int] = {}  # result -> count, for rotator_acme_requests_total
        self._count_lock = threading.Lock()  # not self._lock: _connect holds that while registering

    # -- construction ---------------------------------------------------------------

    @classmethod
    def from_config(
        cls,
        name: str,
        cfg: ACMEIssuerConfig,
        api: KubeAPI | None,
        clock: Callable[[], datetime],
        journal: ChallengeJournal | None = None,
    ) -> ACMEIssuer:
        def eab() -> str:
            assert cfg.eab_hmac is not None
            try:
                return read_value(cfg.eab_hmac, api).decode()
            except SecretRefError as exc:
                raise IssuerError(str(exc)) from exc

        def tsig() -> str:
            assert cfg.dns01 is not None
            try:
                return read_value(cfg.dns01.tsig_secret, api).decode()
            except SecretRefError as exc:
                raise IssuerError(str(exc)) from exc

        responder = HTTP01Responder(cfg.http01.listen) if cfg.solver == "http01" and cfg.http01 else None
        return cls(
            name,
            cfg,
            api,
            clock,
            account_key_store(name, cfg, api),
            eab if cfg.eab_hmac else None,
            tsig if cfg.dns01 else None,
            responder,
            journal=journal,
        )

    def _connect(self) -> client.ClientV2:
        with self._lock:
            if self._client is not None:
                return self._client
            key = serialization.load_pem_private_key(self._account_key_loader(), None)
            is_ec = isinstance(key, ec.EllipticCurvePrivateKey)
            jwk: JWK = JWKEC(key=key) if is_ec else JWKRSA(key=key)
            # requests accepts a CA bundle path where the library's annotation says bool
            verify: Any = self.cfg.ca_bundle or True
            net = RecordingNetwork(jwk, alg=ES256 if is_ec else RS256, verify_ssl=verify, user_agent=USER_AGENT)
            try:
                directory = messages.Directory.from_json(net.get(self.cfg.directory).json())
            except (requests.RequestException, ValueError, errors.Error) as exc:
                raise IssuerError(f"ACME directory {self.cfg.directory} unreachable: {exc}") from exc
            acme = client.ClientV2(directory, net)
            register_account(acme, jwk, directory, self.name, self.cfg, self._eab_hmac, self._with_nonce_retry)
            self._client = acme
            return acme

    # -- the Issuer interface -------------------------------------------------------

    def issue(self, request: IssueRequest) -> Issued:
        try:
            return self._issue(request)
        except IssuerError:
            raise
        except messages.Error as exc:
            net = self._client.net if self._client is not None else None
            retry_after = retry_after_seconds(getattr(net, "last_response", None))
            raise IssuerError(
                f"ACME error: {exc}", retry_after=retry_after, rate_limited=exc.code == "rateLimited"
            ) from exc
        except errors.ConflictError as exc:
            raise IssuerError(f"ACME conflict at {exc.location}") from exc
        except (errors.Error, requests.RequestException) as exc:
            raise IssuerError(f"ACME request failed: {type(exc).__name__}: {exc}") from exc

    def _issue(self, request: IssueRequest) -> Issued:
        acme = self._connect()
        self.sweep()
        key = pki.new_key(request.key_algorithm)
        csr = make_csr(key, request.sans)
        deadline = self.monotonic() + self.timeout
        try:
            order = self._with_nonce_retry(lambda: self._new_order(acme, csr, request.replaces))
        except (messages.Error, errors.ConflictError) as exc:
            if request.replaces is None or not self.cfg.ari:
                raise
            # The CA refused `replaces` (already replaced, or not its certificate): a plain
            # order is always acceptable, and ARI is advice, never a reason to fail.
            self.log.info("order without replaces", issuer=self.name, reason=f"{type(exc).__name__}: {exc}")
            order = self._with_nonce_retry(lambda: self._new_order(acme, csr, None))
        self.stats["orders"] += 1
        pending = [a for a in order.authorizations if a.body.status != messages.STATUS_VALID]
        poller = Poller(acme, self._with_nonce_retry, self.sleep, self.monotonic, self.poll, deadline)
        with self._challenges(acme, pending, request) as answered:
            for authz in answered:
                poller.authorization(authz)
        order = self._with_nonce_retry(lambda: acme.begin_finalization(order))
        fullchain = poller.order(order)
        chain = certs.parse_bundle(fullchain.encode())
        if not chain.certs:
            raise IssuerError("the CA returned no certificate")
        leaf = chain.certs[0]
        return Issued(
            fullchain.encode(),
            pki.key_pem(key, pkcs1=request.pkcs1),
            format(leaf.serial_number, "x"),
            certs.not_after(leaf),
            self.name,
        )

    def _new_order(
        self, acme: client.ClientV2, csr: bytes, replaces: x509.Certificate | None
    ) -> messages.OrderResource:
        if not (self.cfg.ari and replaces is not None and offers(acme.directory, "renewalInfo")):
            return acme.new_order(csr)
        order = NewOrderWithReplaces(identifiers=order_identifiers(csr), replaces=ari_cert_id(replaces))
        response = acme._post(acme.directory["newOrder"], order)
        body = messages.Order.from_json(response.json())
        authorizations = [acme._authzr_from_response(acme._post_as_get(url), uri=url) for url in body.authorizations]
        return messages.OrderResource(
            body=body, uri=response.headers.get("Location"), authorizations=authorizations, csr_pem=csr
        )

    @contextmanager
    def _challenges(
        self, acme: client.ClientV2, authzs: list[messages.AuthorizationResource], request: IssueRequest
    ) -> Iterator[list[messages.AuthorizationResource]]:
        """Set up every challenge, answer them, and always clean up."""
        chosen: list[tuple[messages.AuthorizationResource, messages.ChallengeBody]] = []
        records: list[Record] = []
        tokens: list[str] = []
        routes: list[str] = []
        ctype = challenges.DNS01 if self.cfg.solver == "dns01" else challenges.HTTP01
        for authz in authzs:
            challb = next((c for c in authz.body.challenges if isinstance(c.chall, ctype)), None)
            domain = authz.body.identifier.value
            if challb is None:
                raise IssuerError(
                    f"the CA offers no {ctype.typ} challenge for {domain}"
                    + (" (wildcards need dns-01)" if authz.body.wildcard else "")
                )
            chosen.append((authz, challb))
        solver = self._dns_solver() if ctype is challenges.DNS01 else None
        routes_api = self._routes()
        server = self.cfg.dns01.nameserver if self.cfg.dns01 is not None else ""
        planned: dict[str, str] = {}  # host -> this order's route name
        recorded = False
        try:
            for authz, challb in chosen:
                domain = authz.body.identifier.value
                if solver is not None:
                    validation = challb.chall.validation(acme.net.key)
                    records.append((challb.chall.validation_domain_name(domain), validation))
                else:
                    assert self.responder is not None
                    _response, validation = challb.chall.response_and_validation(acme.net.key)
                    self.responder.start()
                    self.responder.add(challb.chall.encode("token"), validation)
                    tokens.append(challb.chall.encode("token"))
                    if routes_api is not None and request.gateways and domain not in planned:
                        planned[domain] = routes_api.name_for(domain)
            assert routes_api is not None or not planned
            namespace = routes_api.namespace if routes_api is not None else ""
            artefacts = [Artefact(self.name, "txt", fqdn, value, server=server) for fqdn, value in records]
            artefacts += [Artefact(self.name, "route", name, host, namespace) for host, name in planned.items()]
            self._record(artefacts)  # written down before anything exists
            recorded = True
            for host, name in planned.items():
                assert routes_api is not None
                routes.append(name)  # before add: a half-made route is removed too
                routes_api.add(host, list(request.gateways), name)
            if solver is not None and records:
                solver.present(records)
                solver.wait(records)
            for _authz, challb in chosen:
                self._answer(acme, challb)
            yield [a for a, _ in chosen]
        finally:
            removed: list[str] = []
            if solver is not None and records and recorded:
                try:
                    solver.cleanup(records)  # by value: harmless for values never added
                    removed += [Artefact(self.name, "txt", f, v, server=server).key for f, v in records]
                except IssuerError as exc:
                    self.log.warning("TXT cleanup failed; a later pass retries", error=str(exc))
            for t in tokens:
                assert self.responder is not None
                self.responder.remove(t)
            by_name = {name: host for host, name in planned.items()}
            for name in routes:
                try:
                    assert routes_api is not None
                    routes_api.remove(name)
                    removed.append(Artefact(self.name, "route", name, by_name[name], routes_api.namespace).key)
                except Exception as exc:
                    self.log.warning("challenge route not removed; a later pass retries", route=name, error=str(exc))
            self._strike(removed)

    def _lifetime(self) -> timedelta:
        """How long an order may use its artefacts: its own timeout, the DNS propagation
        wait (counted separately) and a margin for slow networks, twice over."""
        propagation = parse_duration(self.cfg.dns01.propagation_timeout) if self.cfg.dns01 else timedelta(0)
        return 2 * (timedelta(seconds=self.timeout) + propagation) + timedelta(minutes=1)

    def _record(self, artefacts: list[Artefact]) -> None:
        if self.journal is None or not artefacts:
            return
        try:
            self.journal.record(artefacts, self._lifetime())
        except Exception as exc:
            # Unrecorded artefacts would outlive a killed pod unnoticed: no order without it.
            raise IssuerError(f"cannot record the challenge in rotator's state: {exc}") from exc

    def _strike(self, keys: list[str]) -> None:
        if self.journal is None or not keys:
            return
        try:
            self.journal.strike(keys)
        except Exception as exc:
            self.log.warning("challenge journal not updated; a later pass sweeps", error=str(exc))

    def sweep(self) -> None:
        """Remove what an order that died put into DNS or the cluster: only artefacts past
        the lifetime their order recorded, each unique to its order, so live orders are
        never touched. At most once per order timeout; never raises."""
        if self.journal is None:
            return
        with self._lock_sweep:
            now = self.monotonic()
            if self._last_sweep is not None and now - self._last_sweep < self.timeout:
                return
            self._last_sweep = now
        try:
            self._sweep()
        except Exception as exc:
            self.log.warning("challenge sweep failed; the next pass retries", issuer=self.name, error=str(exc))

    def _sweep(self) -> None:
        assert self.journal is not None
        current_server = self.cfg.dns01.nameserver if self.cfg.dns01 is not None else None
        sweep_leftovers(self.journal, self.name, current_server, self._dns_solver, self.api, self.clock(), self.log)

    def _answer(self, acme: client.ClientV2, challb: messages.ChallengeBody) -> None:
        self._with_nonce_retry(lambda: acme.answer_challenge(challb, challb.response(acme.net.key)))

    def _dns_solver(self) -> RFC2136Solver:
        d = self.cfg.dns01
        if d is None or self._tsig_secret is None:
            raise IssuerError(f"issuer {self.name}: dns01 is not configured")
        return RFC2136Solver(
            d.nameserver,
            d.tsig_key_name,
            self._tsig_secret(),
            d.tsig_algorithm,
            d.zone,
            parse_duration(d.propagation_timeout).total_seconds(),
            sleep=self.sleep,
            monotonic=self.monotonic,
        )

    def _routes(self) -> ClusterRoutes | None:
        h = self.cfg.http01
        if self.cfg.solver != "http01" or h is None or not h.service_host or self.api is None:
            return None
        return ClusterRoutes(self.api, h.virtual_service_namespace, h.service_host, h.service_port)

    def _count(self, result: str) -> None:
        with self._count_lock:
            self.requests[result] = self.requests.get(result, 0) + 1

    def _with_nonce_retry(self, call: Callable[[], T]) -> T:
        for attempt in range(BAD_NONCE_RETRIES):
            try:
                value = call()
                self._count("ok")
                return value
            except messages.Error as exc:
                self._count(exc.code or "error")
                if exc.code != "badNonce" or attempt == BAD_NONCE_RETRIES - 1:
                    raise
            except errors.BadNonce:
                self._count("badNonce")
                if attempt == BAD_NONCE_RETRIES - 1:
                    raise
            except requests.RequestException:
                self._count("network-error")
                raise
            self.stats["bad_nonce_retries"] += 1
        raise AssertionError("unreachable")

    def owns(self, cert: x509.Certificate) -> bool:
        issuer_cn = ", ".join(
            a.value for a in cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME) if isinstance(a.value, str)
        )
        return any(fnmatch.fnmatchcase(issuer_cn, g) for g in self.cfg.accept_issuers)

    def health(self, now: datetime) -> list[Finding]:
        """Read-only checks that a renewal would fail on (see ``acme.health``)."""
        return issuer_health(self.name, self.cfg, self._tsig_secret, self.monotonic)

    def renewal_window(self, cert: x509.Certificate) -> tuple[datetime, datetime] | None:
        """ARI's suggested window, or None when the CA does not offer ARI (or it fails)."""
        if not self.cfg.ari:
            return None
        # Unauthenticated GETs only (RFC 9773 §4.2): no account is created, so a dry run
        # may ask too.
        verify: Any = self.cfg.ca_bundle or True
        try:
            if self._directory_doc is None:
                self._directory_doc = fetch_json(self.cfg.directory, verify, self.monotonic)
            base = (self._directory_doc or {}).get("renewalInfo") if isinstance(self._directory_doc, dict) else None
            if not isinstance(base, str) or not base:
                return None
            info = messages.RenewalInfo.from_json(
                fetch_json(base.rstrip("/") + "/" + ari_cert_id(cert), verify, self.monotonic)
            )
        except Exception as exc:
            self.log.info("no renewal info", issuer=self.name, error=f"{type(exc).__name__}: {exc}")
            return None
        return info.suggested_window.start, info.suggested_window.end
