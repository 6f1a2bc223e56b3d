"""The configuration's schema: every setting, its default and its validation.

Pydantic with ``extra="forbid"`` everywhere: a misspelt key is an error naming its
path, never a silently ignored setting that leaves a certificate unrenewed.
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rotator.apis import GATEWAY_API_GROUP
from rotator.util.timeutil import RenewBefore, parse_duration, parse_renew_before


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_renew_before(value: str | None) -> str | None:
    if value is not None:
        parse_renew_before(str(value))
    return value


def _check_duration(value: str) -> str:
    parse_duration(str(value))
    return value


def _check_optional_duration(value: str | None) -> str | None:
    return value if value is None else _check_duration(value)


def _check_cron(value: str | None) -> str | None:
    """A crontab the scheduler can run, checked when the config loads (not at start-up)."""
    if value is None:
        return None
    from apscheduler.triggers.cron import CronTrigger

    from rotator.util.timeutil import crontab_fields

    CronTrigger(**crontab_fields(value), timezone="UTC")  # ValueError: a config error naming the field
    return value


def _check_listen(value: str) -> str:
    from rotator.util.timeutil import parse_listen

    parse_listen(value)
    return value


class RenewalConfig(_Strict):
    renew_before: str | None = Field(
        default=None,
        description="Renew this long before expiry: a duration (720h, 30d) or a percentage of the "
        "certificate's lifetime (33%). Default: one third of the lifetime.",
    )
    client_ca_warning: str = Field(
        default="30d", description="Warn when a client CA certificate expires within this duration."
    )
    concurrency: int = Field(default=4, ge=1, le=64, description="Credentials renewed at once.")
    key_algorithm: Literal["ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096"] | None = Field(
        default=None, description="Key type of renewed certificates; default: the current key's type, else ecdsa-p256."
    )
    backoff_initial: str = Field(default="5m", description="Wait after a first failed renewal; doubles each time.")
    backoff_max: str = Field(default="24h", description="Longest wait between failed renewals.")
    state_namespace: str = Field(
        default="rotator",
        description="rotator's own namespace: its state ConfigMap, and the default for the Lease, ACME account "
        "keys and HTTP-01 routes.",
    )
    state_configmap: str = Field(default="rotator-state", description="Name of that ConfigMap.")
    backup_retention: int = Field(default=3, ge=1, le=50, description="Backups kept per Secret for rollback.")

    check_renew_before = field_validator("renew_before")(_check_renew_before)
    check_client_ca_warning = field_validator("client_ca_warning", "backoff_initial", "backoff_max")(_check_duration)


class Rule(_Strict):
    """Chooses an issuer for a credential; the first rule whose every selector matches wins."""

    issuer: str = Field(description="Name of an entry in `issuers`.")
    namespaces: list[str] = Field(default_factory=list, description="Namespace globs; empty matches any.")
    secrets: list[str] = Field(default_factory=list, description="Secret name globs; empty matches any.")
    hosts: list[str] = Field(
        default_factory=list,
        description="Host globs; every host the credential serves must match one. Empty matches any.",
    )
    renew_before: str | None = Field(default=None, description="Overrides `renewal.renew_before`.")
    allow_issuer_change: bool = Field(
        default=False, description="Allow moving a certificate issued by another CA to this issuer."
    )
    gateway_namespaces: list[str] = Field(
        default_factory=list,
        description="Namespace globs of the Gateways that may cause issuance under this rule, besides the "
        "Secret's own namespace (and Gateway API references a ReferenceGrant admits). Empty: only those. "
        "A classic Gateway in any namespace can name a Secret of the gateway workload's namespace, so this "
        "is what keeps a tenant's Gateway from minting certificates for its hosts (docs/security.md).",
    )
    create: bool = Field(
        default=False,
        description="Create a referenced Secret that does not exist yet. Off: a missing Secret is reported, "
        "never created.",
    )
    allow_keys: list[str] = Field(
        default_factory=list,
        description="Globs of Secret keys besides the TLS ones that rotator may leave in place while it "
        "rotates the certificate (they are kept, never copied into backups). Without a match such a Secret "
        "is not written.",
    )

    check_renew_before = field_validator("renew_before")(_check_renew_before)

    def untrusted(self, secret_namespace: str, gateway_namespaces: Iterable[tuple[str, str]]) -> list[str]:
        """Of the referencing Gateways' (group, namespace), those this rule does not trust.

        Trusted: a Gateway in the Secret's own namespace (whoever may create it there owns
        the namespace); a Gateway API Gateway elsewhere, whose reference the Secret
        namespace's ReferenceGrant consented to (a refused one never gets this far);
        a namespace matching ``gateway_namespaces``."""
        out: set[str] = set()
        for group, namespace in gateway_namespaces:
            if namespace == secret_namespace or group == GATEWAY_API_GROUP:
                continue
            if any(fnmatch.fnmatchcase(namespace, g) for g in self.gateway_namespaces):
                continue
            out.add(namespace)
        return sorted(out)

    def matches(self, namespace: str, name: str, hosts: tuple[str, ...]) -> bool:
        if self.namespaces and not any(fnmatch.fnmatchcase(namespace, g) for g in self.namespaces):
            return False
        if self.secrets and not any(fnmatch.fnmatchcase(name, g) for g in self.secrets):
            return False
        if self.hosts:
            if not hosts:
                return False
            return all(any(fnmatch.fnmatchcase(h.lower(), g.lower()) for g in self.hosts) for h in hosts)
        return True


class SecretKeyRef(_Strict):
    """A value held in a Kubernetes Secret (in-cluster) or a file (local use)."""

    secret: str | None = Field(default=None, description="`namespace/name` of a Secret.")
    key: str | None = Field(default=None, description="Key in that Secret.")
    file: str | None = Field(default=None, description="Or a file path (e.g. a mounted Secret).")
    env: str | None = Field(default=None, description="Or an environment variable name.")

    @model_validator(mode="after")
    def _one_source(self) -> SecretKeyRef:
        sources = [x for x in (self.secret, self.file, self.env) if x]
        if len(sources) != 1:
            raise ValueError("give exactly one of secret (with key), file or env")
        if self.secret and (not self.key or "/" not in self.secret):
            raise ValueError("secret must be namespace/name, with key")
        return self


class CAIssuerConfig(_Strict):
    type: Literal["ca"]
    secret: str | None = Field(
        default=None,
        description="`namespace/name` of a Secret with the CA in tls.crt (then any intermediates) and its "
        "key in tls.key.",
    )
    cert_file: str | None = Field(default=None, description="CA certificate (and intermediates) file, for local use.")
    key_file: str | None = Field(default=None, description="CA key file, for local use.")
    validity: str = Field(default="2160h", description="Lifetime of issued certificates (capped at the CA's).")
    client_auth: bool = Field(default=False, description="Add the clientAuth extended key usage.")
    warn_before: str = Field(default="720h", description="Report issuer-ca-expiring this long before the CA expires.")

    check_validity = field_validator("validity", "warn_before")(_check_duration)

    @model_validator(mode="after")
    def _source(self) -> CAIssuerConfig:
        if bool(self.secret) == bool(self.cert_file or self.key_file):
            raise ValueError("give either secret or cert_file + key_file")
        if not self.secret and not (self.cert_file and self.key_file):
            raise ValueError("cert_file and key_file go together")
        return self


class DNS01Config(_Strict):
    nameserver: str = Field(description="Authoritative server for RFC 2136 updates, `host:port` (port 53 default).")
    zone: str | None = Field(default=None, description="Zone to update; default: found by SOA lookup.")
    tsig_key_name: str = Field(description="TSIG key name.")
    tsig_algorithm: str = Field(default="hmac-sha256", description="TSIG algorithm (BIND spelling).")
    tsig_secret: SecretKeyRef = Field(description="The base64 TSIG secret.")
    propagation_timeout: str = Field(default="120s", description="Give up waiting for the TXT record after this.")

    check_timeout = field_validator("propagation_timeout")(_check_duration)


class HTTP01Config(_Strict):
    listen: str = Field(default="0.0.0.0:8089", description="Where the built-in responder listens.")
    service_host: str | None = Field(
        default=None,
        description="In a cluster: rotator's Service DNS name; rotator then binds a temporary VirtualService "
        "to the Gateway routing /.well-known/acme-challenge/ to it.",
    )
    service_port: int = Field(default=8089, description="Port of that Service.")
    virtual_service_namespace: str = Field(
        default="rotator", description="Where the temporary VirtualService goes. Default: `renewal.state_namespace`."
    )


class ACMEIssuerConfig(_Strict):
    type: Literal["acme"]
    directory: str = Field(description="ACME directory URL.")
    email: str | None = Field(default=None, description="Contact e-mail for the ACME account.")
    terms_agreed: bool = Field(default=False, description="You agree to the CA's terms of service (required).")
    eab_key_id: str | None = Field(default=None, description="External Account Binding key id.")
    eab_hmac: SecretKeyRef | None = Field(default=None, description="External Account Binding HMAC key (base64url).")
    account_secret: str | None = Field(
        default=None,
        description="`namespace/name` of the Secret holding the account key; created on first use. Default "
        "`<renewal.state_namespace>/rotator-acme-<issuer>`.",
    )
    account_key_file: str | None = Field(default=None, description="Or a file for the account key (local use).")
    ca_bundle: str | None = Field(default=None, description="CA bundle to trust the ACME server (private CAs).")
    solver: Literal["dns01", "http01"] = Field(default="dns01", description="Challenge type; wildcards need dns01.")
    dns01: DNS01Config | None = None
    http01: HTTP01Config | None = None
    ari: bool = Field(default=True, description="Use ACME Renewal Information (RFC 9773) when offered.")
    timeout: str = Field(default="300s", description="Give up on one order after this.")
    accept_issuers: list[str] = Field(
        default_factory=list,
        description="Issuer CN globs of certificates this CA issued before rotator managed them (no issuer-change).",
    )

    check_timeout = field_validator("timeout")(_check_duration)

    @model_validator(mode="after")
    def _solver(self) -> ACMEIssuerConfig:
        if self.solver == "dns01" and self.dns01 is None:
            raise ValueError("solver dns01 needs a dns01 section")
        if self.solver == "http01" and self.http01 is None:
            raise ValueError("solver http01 needs an http01 section")
        if bool(self.eab_key_id) != bool(self.eab_hmac):
            raise ValueError("eab_key_id and eab_hmac go together")
        return self


IssuerConfig = Annotated[CAIssuerConfig | ACMEIssuerConfig, Field(discriminator="type")]


class DiscoveryConfig(_Strict):
    default_namespace: str = Field(
        default="default", description="Namespace of manifests that do not set metadata.namespace."
    )
    scope_gateway_to_namespace: bool = Field(
        default=False, description="Mirror istiod's PILOT_SCOPE_GATEWAY_TO_NAMESPACE."
    )


class LeaseConfig(_Strict):
    name: str = Field(default="rotator-leader", description="Lease used for leader election.")
    namespace: str = Field(default="rotator", description="Namespace of the Lease. Default: `renewal.state_namespace`.")
    duration: str = Field(default="15s", description="How long a leader's claim lasts (client-go default 15s).")
    renew_deadline: str = Field(default="10s", description="A leader that cannot renew within this stops writing.")
    retry_period: str = Field(default="2s", description="How often candidates and the leader try the Lease.")

    check = field_validator("duration", "renew_deadline", "retry_period")(_check_duration)


class DaemonConfig(_Strict):
    interval: str | None = Field(default="1h", description="Run a pass this often (ignored when `cron` is set).")
    cron: str | None = Field(
        default=None,
        description="Or a crontab expression (`17 */6 * * *`), UTC; weekdays as in crontab (0 and 7 are "
        "Sunday). Checked when the config loads.",
    )
    jitter: str = Field(default="60s", description="Random delay added to each run, so replicas and clusters spread.")
    misfire_grace: str = Field(default="10m", description="A run missed by less than this still happens.")
    listen: str = Field(default="0.0.0.0:9090", description="Address of /metrics, /healthz and /readyz.")
    leader_election: bool = Field(default=True, description="Only the Lease holder renews and writes.")
    lease: LeaseConfig = Field(default_factory=LeaseConfig)
    ready_after_failure: str = Field(
        default="2h", description="/readyz fails when no pass has succeeded for this long after a failure."
    )
    shutdown_timeout: str = Field(default="60s", description="On SIGTERM, wait this long for the pass in flight.")

    check = field_validator("interval", "jitter", "misfire_grace", "ready_after_failure", "shutdown_timeout")(
        _check_optional_duration
    )
    check_cron = field_validator("cron")(_check_cron)
    check_listen = field_validator("listen")(_check_listen)


class VerifyConfig(_Strict):
    """Post-renewal verification: Istio pushes Secrets over SDS, and users report gateways
    that kept serving the old certificate; rotator checks what is actually served."""

    enabled: bool = Field(default=False, description="Check the served certificate after each rotation.")
    address: str = Field(
        default="istio-ingressgateway.{namespace}.svc.cluster.local:{port}",
        description="Where to connect; `{namespace}` is the Secret's (gateway workload's) namespace, `{port}` the "
        "server's port.",
    )
    timeout: str = Field(default="60s", description="Report not-served when the new serial is not served by then.")
    interval: str = Field(default="2s", description="Time between attempts.")

    check = field_validator("timeout", "interval")(_check_duration)


class PagerDutyConfig(_Strict):
    routing_key: SecretKeyRef = Field(
        description="The 32-character Events API v2 integration key (env, file or Secret)."
    )
    region: Literal["us", "eu"] = Field(default="us", description="events.pagerduty.com or events.eu.pagerduty.com.")
    url: str | None = Field(default=None, description="Full base URL instead of the region (tests, proxies).")
    critical_window_percent: float = Field(
        default=20, gt=0, lt=100, description="Page when at most this share of the lifetime is left and renewal failed."
    )
    critical_window: str = Field(default="7d", description="... or when at most this long is left.")
    rate_per_minute: int = Field(
        default=100, ge=1, le=120, description="Events per minute per key (PagerDuty allows ~120); the rest wait."
    )
    change_events: bool = Field(default=False, description="Send a change event for each successful rotation.")
    client_url: str | None = Field(default=None, description="Link from the alert back to your dashboard.")
    timeout: str = Field(default="15s", description="Per request.")
    attempts: int = Field(default=4, ge=1, le=10, description="Tries per event on 429, 5xx and network errors.")

    check = field_validator("critical_window", "timeout")(_check_duration)


class WebhookConfig(_Strict):
    """A generic JSON webhook with PagerDuty's state machine: one `trigger` per state
    change, every `resolve` delivered (docs/alerting.md#webhooks)."""

    name: str = Field(
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=40, description="Names the webhook in logs and state."
    )
    url: str = Field(pattern=r"^https?://", description="Where events are POSTed (https unless `allow_http`).")
    allow_http: bool = Field(
        default=False, description="Allow an http:// URL: the token and signature then travel in clear."
    )
    secret: SecretKeyRef | None = Field(
        default=None, description="HMAC-SHA256 key: requests carry `X-Rotator-Signature-256: sha256=<hex>` of the body."
    )
    authorization: SecretKeyRef | None = Field(
        default=None, description="Sent as the `Authorization` header (e.g. `Bearer <token>`)."
    )
    ca_bundle: str | None = Field(default=None, description="CA bundle to trust the receiver (private CAs).")
    critical_window_percent: float = Field(
        default=20, gt=0, lt=100, description="Alert when at most this share of the lifetime is left, renewal failed."
    )
    critical_window: str = Field(default="7d", description="... or when at most this long is left.")
    rotations: bool = Field(default=False, description="Also send a `rotated` event for each successful rotation.")
    rate_per_minute: int = Field(default=60, ge=1, le=6000, description="Events per minute; the rest wait.")
    timeout: str = Field(default="10s", description="Per request.")
    attempts: int = Field(default=4, ge=1, le=10, description="Tries per event on 429, 5xx and network errors.")

    check = field_validator("critical_window", "timeout")(_check_duration)

    @model_validator(mode="after")
    def _https(self) -> WebhookConfig:
        if self.url.startswith("http://") and not self.allow_http:
            raise ValueError(f"webhook {self.name}: {self.url} is plain http; use https, or set allow_http: true")
        return self


class LoggingConfig(_Strict):
    level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Log level; `--log-level` overrides it."
    )
    format: Literal["auto", "console", "json"] = Field(
        default="auto", description="`console` on a terminal, `json` otherwise, when `auto`; `--log-format` overrides."
    )


class Config(_Strict):
    cluster_name: str = Field(default="default", description="Names this cluster in reports and alerts.")
    renewal: RenewalConfig = Field(default_factory=RenewalConfig, description="When to renew.")
    issuers: dict[str, IssuerConfig] = Field(
        default_factory=dict, description="Named certificate issuers (CA key pair or ACME), chosen by `rules`."
    )
    rules: list[Rule] = Field(default_factory=list, description="Which issuer renews which credential.")
    discovery: DiscoveryConfig = Field(default_factory=DiscoveryConfig, description="How Gateways are read.")
    logging: LoggingConfig = Field(default_factory=LoggingConfig, description="Log output on stderr.")
    verify: VerifyConfig = Field(default_factory=VerifyConfig, description="Post-renewal verification.")
    pagerduty: PagerDutyConfig | None = Field(default=None, description="PagerDuty Events API v2 alerting.")
    webhooks: list[WebhookConfig] = Field(
        default_factory=list, description="Generic JSON webhooks, alerted like PagerDuty."
    )
    daemon: DaemonConfig = Field(
        default_factory=DaemonConfig, description="`rotator daemon`: schedule, endpoints, leader election."
    )

    @model_validator(mode="before")
    @classmethod
    def _home_namespace_defaults(cls, data: Any) -> Any:
        """Installed outside the namespace `rotator`, one setting must move all of rotator's own
        objects: its RBAC grants them in a single namespace, so a Lease or account key left
        behind in `rotator` would be a 403 at 3 a.m."""
        if not isinstance(data, dict) or not isinstance(data.get("renewal"), dict):
            return data
        home = data["renewal"].get("state_namespace")
        if not isinstance(home, str) or not home:
            return data
        data = copy.deepcopy(data)
        daemon = data.setdefault("daemon", {})
        if isinstance(daemon, dict) and isinstance(daemon.setdefault("lease", {}), dict):
            daemon["lease"].setdefault("namespace", home)
        issuers = data.get("issuers")
        for name, issuer in issuers.items() if isinstance(issuers, dict) else ():
            if not isinstance(issuer, dict) or issuer.get("type") != "acme":
                continue
            if not issuer.get("account_secret") and not issuer.get("account_key_file"):
                issuer["account_secret"] = f"{home}/rotator-acme-{name}"
            if isinstance(issuer.get("http01"), dict):
                issuer["http01"].setdefault("virtual_service_namespace", home)
        return data

    @model_validator(mode="after")
    def _webhook_names_unique(self) -> Config:
        names = [w.name for w in self.webhooks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"webhooks: names must be unique (each keeps its own alert state): {', '.join(dupes)}")
        return self

    @model_validator(mode="after")
    def _rules_name_issuers(self) -> Config:
        for i, rule in enumerate(self.rules):
            if rule.issuer not in self.issuers:
                known = ", ".join(sorted(self.issuers)) or "none defined"
                raise ValueError(f"rules[{i}].issuer: unknown issuer {rule.issuer!r} (issuers: {known})")
        return self

    def renew_before(self) -> RenewBefore | None:
        return parse_renew_before(self.renewal.renew_before) if self.renewal.renew_before else None
