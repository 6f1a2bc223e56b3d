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

import base64
import fnmatch
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import requests
from acme import challenges, client, errors, messages
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from josepy.json_util import field as jose_field
from josepy.jwa import ES256, RS256
from josepy.jwk import JWK, JWKEC, JWKRSA

from rotator.checks import certs
from rotator.config.schema import ACMEIssuerConfig
from rotator.issuers.base import Issued, IssueRequest, IssuerError
from rotator.issuers.dns01 import Record, RFC2136Solver, split_hostport
from rotator.issuers.http01 import ClusterRoutes, HTTP01Responder, delete_route
from rotator.issuers.journal import Artefact, ChallengeJournal, give_up
from rotator.kube.api import SECRETS, KubeAPI
from rotator.kube.secret_refs import SecretRefError, read_value
from rotator.model import Finding
from rotator.util import pki
from rotator.util.logs import get_logger
from rotator.util.timeutil import parse_duration

T = TypeVar("T")
USER_AGENT = "rotator (+https://github.com/rotator-dev/rotator)"
BAD_NONCE_RETRIES = 10  # each retry carries the fresh nonce of the error; cheap
ACCOUNT_KEY = "account.key"


class _Network(client.ClientNetwork):
    """Keeps the last response so a rateLimited error can honour its Retry-After (the
    library raises before its caller sees the headers)."""

    last_response: requests.Response | None = None

    def _send_request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        response = super()._send_request(method, url, *args, **kwargs)
        self.last_response = response
        return response


def retry_after_seconds(response: requests.Response | None) -> float | None:
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - datetime.now(when.tzinfo)).total_seconds())


class NewOrderWithReplaces(messages.NewOrder):
    """RFC 9773 §5: ``replaces`` names the certificate this order renews."""

    replaces: str = jose_field("replaces", omitempty=True)


def offers(directory: messages.Directory, field: str) -> bool:
    """Directory has no ``in``: it iterates by index and raises KeyError on the first."""
    try:
        directory[field]
    except KeyError:
        return False
    return True


def ari_cert_id(cert: x509.Certificate) -> str:
    """base64url(AKI keyIdentifier) '.' base64url(DER serial), RFC 9773 §4.1."""
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier or b""
    serial = cert.serial_number
    raw = serial.to_bytes((serial.bit_length() + 8) // 8, "big", signed=True)

    def b64(b: bytes) -> str:
        return base64.urlsafe_b64encode(b).decode().rstrip("=")

    return f"{b64(aki)}.{b64(raw)}"


def make_csr(key: Any, sans: tuple[str, ...]) -> bytes:
    names = pki.general_names(sans)
    cn = next((s for s in sans if len(s) <= 64), None)
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else []))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
    )
    algo = None if not hasattr(key, "curve") and not hasattr(key, "key_size") else hashes.SHA256()
    return builder.sign(key, algo).public_bytes(serialization.Encoding.PEM)


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
            net = _Network(jwk, alg=ES256 if is_ec else RS256, verify_ssl=verify, user_agent=USER_AGENT)
            try:
                directory = messages.Directory.from_json(net.get(self.cfg.directory).json())
            except (requests.RequestException, ValueError, errors.Error) as exc:
                raise IssuerError(f"ACME directory {self.cfg.directory} unreachable: {exc}") from exc
            acme = client.ClientV2(directory, net)
            self._register(acme, jwk, directory)
            self._client = acme
            return acme

    def _register(self, acme: client.ClientV2, jwk: JWK, directory: messages.Directory) -> None:
        if not self.cfg.terms_agreed:
            raise IssuerError(f"issuer {self.name}: set terms_agreed: true to accept the CA's terms of service")
        eab = None
        if self.cfg.eab_key_id and self._eab_hmac is not None:
            eab = messages.ExternalAccountBinding.from_data(
                account_public_key=jwk.public_key(),
                kid=self.cfg.eab_key_id,
                hmac_key=self._eab_hmac(),
                directory=directory,
            )
        reg = messages.NewRegistration.from_data(
            email=self.cfg.email, terms_of_service_agreed=True, external_account_binding=eab
        )
        try:
            self._with_nonce_retry(lambda: acme.new_account(reg))
        except errors.ConflictError as exc:  # the key is already registered: use that account
            acme.net.account = messages.RegistrationResource(uri=exc.location, body=messages.Registration())
        except messages.Error as exc:
            raise IssuerError(f"issuer {self.name}: account registration refused: {exc}") from exc

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
        with self._challenges(acme, pending, request) as answered:
            for authz in answered:
                self._poll_authorization(acme, authz, deadline)
        order = self._with_nonce_retry(lambda: acme.begin_finalization(order))
        fullchain = self._poll_order(acme, order, deadline)
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
        order = NewOrderWithReplaces(identifiers=_identifiers(csr), replaces=ari_cert_id(replaces))
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
        leftovers = self.journal.stale(self.name)
        if not leftovers:
            return
        done: list[str] = []
        failed: list[str] = []
        solver: RFC2136Solver | None = None
        current_server = self.cfg.dns01.nameserver if self.cfg.dns01 is not None else None
        for item in leftovers:
            a = item.artefact
            if a is None:
                self.log.warning("dropping a malformed challenge journal entry", key=item.key[:200])
                done.append(item.key)
                continue
            try:
                if a.kind == "txt":
                    if a.server != current_server:
                        # A delete sent elsewhere would "succeed" and leave the record.
                        raise IssuerError(f"the record is on {a.server or 'an unknown server'}, not {current_server}")
                    solver = solver or self._dns_solver()
                    solver.cleanup([(a.name, a.value)])
                elif a.kind == "route" and self.api is not None:
                    delete_route(self.api, a.namespace, a.name)
                else:
                    raise IssuerError(f"no way to remove a {a.kind!r} artefact here")
                done.append(item.key)
            except Exception as exc:
                if give_up(item, self.clock()):
                    self.log.warning(
                        "giving up on a leftover challenge artefact; remove it by hand",
                        kind=a.kind,
                        name=a.name,
                        error=str(exc),
                    )
                    done.append(item.key)
                else:
                    self.log.warning(
                        "leftover challenge artefact not removed", kind=a.kind, name=a.name, error=str(exc)
                    )
                    failed.append(item.key)
        if done:
            self.log.info("removed leftovers of an interrupted order", issuer=self.name, count=len(done))
        self._strike(done)
        if failed:
            self.journal.failed(failed)

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

    def _poll_authorization(
        self, acme: client.ClientV2, authz: messages.AuthorizationResource, deadline: float
    ) -> None:
        while True:
            response = self._with_nonce_retry(lambda: acme._post_as_get(authz.uri))
            body = messages.Authorization.from_json(response.json())
            if body.status == messages.STATUS_VALID:
                return
            if body.status == messages.STATUS_INVALID:
                detail = "; ".join(str(c.error) for c in body.challenges if c.error is not None)
                raise IssuerError(f"authorization for {body.identifier.value} failed: {detail or 'invalid'}")
            self._wait(response, deadline, f"authorization for {body.identifier.value}")

    def _poll_order(self, acme: client.ClientV2, order: messages.OrderResource, deadline: float) -> str:
        while True:
            response = self._with_nonce_retry(lambda: acme._post_as_get(order.uri))
            body = messages.Order.from_json(response.json())
            if body.status == messages.STATUS_VALID and body.certificate:
                cert = self._with_nonce_retry(partial(acme._post_as_get, body.certificate))
                return str(cert.text)
            if body.status == messages.STATUS_INVALID:
                raise IssuerError(f"order failed: {body.error}")
            self._wait(response, deadline, "order")

    def _wait(self, response: requests.Response, deadline: float, what: str) -> None:
        remaining = deadline - self.monotonic()
        if remaining <= 0:
            raise IssuerError(f"timed out waiting for the {what}")
        delay = self.poll
        retry_after = response.headers.get("Retry-After")
        if retry_after:
            with suppress(ValueError):
                delay = max(delay, float(retry_after))
        self.sleep(min(delay, remaining))

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
        """Read-only checks that a renewal would fail on, so they show before one is due:
        the directory answers, an EAB the CA requires is configured, the TSIG key is
        readable and the nameserver is authoritative for the zone. Creates nothing (no
        account, no record), so it is safe in a dry run."""
        from rotator.findings import finding
        from rotator.model import ObjectRef

        obj = ObjectRef("Issuer", "", self.name)
        problems: list[str] = []
        if not self.cfg.terms_agreed:
            problems.append("terms_agreed is false: the CA's terms of service must be accepted")
        verify: Any = self.cfg.ca_bundle or True
        try:
            directory = _fetch_json(self.cfg.directory, verify, self.monotonic)
            if not isinstance(directory, dict) or "newOrder" not in directory:
                raise ValueError("not an ACME directory (no newOrder)")
        except (requests.RequestException, ValueError) as exc:
            problems.append(f"ACME directory {self.cfg.directory} unreachable: {type(exc).__name__}: {exc}")
            directory = {}
        meta = directory.get("meta") or {}
        if isinstance(meta, dict) and meta.get("externalAccountRequired") and not self.cfg.eab_key_id:
            problems.append("the CA requires External Account Binding: set eab_key_id and eab_hmac")
        if self.cfg.solver == "dns01" and self.cfg.dns01 is not None:
            problems += self._dns01_health()
        return [finding("issuer-unavailable", f"issuer {self.name}: {p}", obj) for p in problems]

    def _dns01_health(self) -> list[str]:
        import dns.exception
        import dns.flags
        import dns.message
        import dns.query
        import dns.rdatatype

        d = self.cfg.dns01
        assert d is not None
        if self._tsig_secret is not None:
            try:
                self._tsig_secret()
            except IssuerError as exc:
                return [f"the TSIG key is unreadable: {exc}"]
        if not d.zone:
            return []  # found per name by SOA lookups at issuance
        host, port = split_hostport(d.nameserver)
        try:
            answer = dns.query.udp(dns.message.make_query(d.zone, dns.rdatatype.SOA), host, port=port, timeout=3)
        except (dns.exception.DNSException, OSError) as exc:
            return [f"nameserver {d.nameserver} does not answer: {type(exc).__name__}: {exc}"]
        if not (answer.flags & dns.flags.AA) or not any(r.rdtype == dns.rdatatype.SOA for r in answer.answer):
            return [f"nameserver {d.nameserver} is not authoritative for zone {d.zone}"]
        return []

    def renewal_window(self, cert: x509.Certificate) -> tuple[datetime, datetime] | None:
        """ARI's suggested window, or None when the CA does not offer ARI (or it fails)."""
        if not self.cfg.ari:
            return None
        # Unauthenticated GETs only (RFC 9773 §4.2): no account is created, so a dry run
        # may ask too.
        verify: Any = self.cfg.ca_bundle or True
        try:
            if self._directory_doc is None:
                self._directory_doc = _fetch_json(self.cfg.directory, verify, self.monotonic)
            base = (self._directory_doc or {}).get("renewalInfo") if isinstance(self._directory_doc, dict) else None
            if not isinstance(base, str) or not base:
                return None
            info = messages.RenewalInfo.from_json(
                _fetch_json(base.rstrip("/") + "/" + ari_cert_id(cert), verify, self.monotonic)
            )
        except Exception as exc:
            self.log.info("no renewal info", issuer=self.name, error=f"{type(exc).__name__}: {exc}")
            return None
        return info.suggested_window.start, info.suggested_window.end


def _fetch_json(url: str, verify: Any, monotonic: Callable[[], float], limit: float = 15.0) -> Any:
    """GET a small JSON document within ``limit`` seconds in all: a server that trickles
    its answer must not hold a pass (requests' timeout is per read, not per request)."""
    deadline = monotonic() + limit
    with requests.get(url, timeout=(5, 10), verify=verify, headers={"User-Agent": USER_AGENT}, stream=True) as r:
        r.raise_for_status()
        body = b""
        for chunk in r.iter_content(8192):
            body += chunk
            if len(body) > 1_000_000:
                raise ValueError("answer larger than 1 MB")
            if monotonic() > deadline:
                raise ValueError(f"no complete answer within {limit:.0f} s")
    return json.loads(body)


def _identifiers(csr_pem: bytes) -> list[messages.Identifier]:
    csr = x509.load_pem_x509_csr(csr_pem)
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    out = [messages.Identifier(typ=messages.IDENTIFIER_FQDN, value=n) for n in san.get_values_for_type(x509.DNSName)]
    out += [
        messages.Identifier(typ=messages.IDENTIFIER_IP, value=str(ip)) for ip in san.get_values_for_type(x509.IPAddress)
    ]
    return out


def ari_jitter(cert: x509.Certificate) -> float:
    from rotator.plan.ari import ari_jitter as jitter

    return jitter(format(cert.serial_number, "x"))


def ari_due(window: tuple[datetime, datetime], cert: x509.Certificate, now: datetime) -> bool:
    """The planning rule (``plan.ari.ari_due``), for an x509 certificate."""
    from rotator.plan.ari import ari_due as due

    return due(window, format(cert.serial_number, "x"), now)


def account_key_store(name: str, cfg: ACMEIssuerConfig, api: KubeAPI | None) -> Callable[[], bytes]:
    """The account key: from its Secret or file, created (ECDSA P-256) on first use and reused."""

    def load() -> bytes:
        if cfg.account_key_file:
            path = Path(cfg.account_key_file)
            if path.exists():
                return path.read_bytes()
            pem = pki.key_pem(pki.new_key("ecdsa-p256"))
            path.write_bytes(pem)
            path.chmod(0o600)
            return pem
        if api is None:
            raise IssuerError(f"issuer {name}: the ACME account key needs a cluster (or account_key_file)")
        ref = cfg.account_secret or f"rotator/rotator-acme-{name}"
        ns, _, secret = ref.partition("/")
        obj = api.get(SECRETS, ns, secret)
        if obj is not None and ACCOUNT_KEY in (obj.get("data") or {}):
            return base64.b64decode(obj["data"][ACCOUNT_KEY])
        pem = pki.key_pem(pki.new_key("ecdsa-p256"))
        api.create(
            SECRETS,
            ns,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": {
                    "name": secret,
                    "namespace": ns,
                    "labels": {"app.kubernetes.io/managed-by": "rotator"},
                    "annotations": {"rotator.io/acme-directory": cfg.directory},
                },
                "data": {ACCOUNT_KEY: base64.b64encode(pem).decode()},
            },
        )
        return pem

    return load
