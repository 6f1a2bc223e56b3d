"""Plain data passed between the pipeline stages.

Every stage (discovery, inspection, policy, report) is a pure function over these
frozen dataclasses, so the same core serves manifests on disk, a live cluster and tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Literal

from rotator.apis import ISTIO_GROUP

Severity = Literal["critical", "error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("critical", "error", "warning", "info")
Role = Literal["server", "client-ca"]
State = Literal["ok", "due", "expired", "invalid", "missing"]
STATES: tuple[State, ...] = ("ok", "due", "expired", "invalid", "missing")
Action = Literal["none", "renew", "skip"]


@dataclass(frozen=True, order=True)
class ObjectRef:
    """Names a Kubernetes object (or an input file) in findings."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    message: str
    object: ObjectRef | None = None


@dataclass(frozen=True)
class Source:
    """Where an object came from, so every message can point the user at it."""

    path: str
    document: int  # 0-based index of the YAML document in the file

    def __str__(self) -> str:
        """``file.yaml#2``: the second document of the file, counted from 1 as people do."""
        return f"{self.path}#{self.document + 1}"


@dataclass(frozen=True)
class RawObject:
    """A Kubernetes object as decoded JSON/YAML, with where it came from."""

    source: Source
    body: dict[str, Any]


# --- inventory objects -------------------------------------------------------------


@dataclass(frozen=True)
class OwnerRef:
    api_version: str
    kind: str
    name: str


@dataclass(frozen=True)
class Secret:
    namespace: str
    name: str
    type: str
    data: dict[str, bytes]
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    owners: tuple[OwnerRef, ...] = ()
    resource_version: str = ""
    source: Source | None = None
    invalid_base64: tuple[str, ...] = ()  # keys of `data` that are not base64 (left out of `data`)

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef("Secret", self.namespace, self.name)


@dataclass(frozen=True)
class ConfigMap:
    namespace: str
    name: str
    data: dict[str, bytes]
    source: Source | None = None

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef("ConfigMap", self.namespace, self.name)


@dataclass(frozen=True)
class Workload:
    """A Pod or a pod controller; only its namespace and pod labels matter to Istio."""

    kind: str
    namespace: str
    name: str
    labels: dict[str, str]


@dataclass(frozen=True)
class IstioServer:
    index: int
    port: int | None
    port_name: str
    protocol: str
    bind: str
    hosts: tuple[str, ...]
    tls: dict[str, Any] | None


@dataclass(frozen=True)
class IstioGateway:
    namespace: str
    name: str
    selector: dict[str, str] | None
    servers: tuple[IstioServer, ...]
    creation: str = ""
    source: Source | None = None

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef("Gateway", self.namespace, self.name)


@dataclass(frozen=True)
class RouteDestination:
    host: str
    subset: str
    via: str  # "route" or "mirror", for the message


@dataclass(frozen=True)
class VirtualService:
    namespace: str
    name: str
    hosts: tuple[str, ...]
    gateways: tuple[str, ...]
    destinations: tuple[RouteDestination, ...]
    source: Source | None = None

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef("VirtualService", self.namespace, self.name)


@dataclass(frozen=True)
class DestinationRule:
    namespace: str
    name: str
    host: str
    subsets: tuple[str, ...]
    source: Source | None = None


@dataclass(frozen=True)
class SecretObjectRef:
    group: str
    kind: str
    namespace: str | None
    name: str


@dataclass(frozen=True)
class Listener:
    name: str
    port: int | None
    protocol: str
    hostname: str
    tls_mode: str | None  # None: no tls block
    certificate_refs: tuple[SecretObjectRef, ...]
    options: dict[str, str]
    ca_refs: tuple[SecretObjectRef, ...] = ()  # pre-v1.5 listener frontendValidation


@dataclass(frozen=True)
class FrontendValidation:
    port: int | None  # None: spec.tls.frontend.default
    ca_refs: tuple[SecretObjectRef, ...]
    mode: str


@dataclass(frozen=True)
class KubeGateway:
    """A Gateway API ``gateway.networking.k8s.io`` Gateway."""

    namespace: str
    name: str
    gateway_class: str
    listeners: tuple[Listener, ...]
    frontend: tuple[FrontendValidation, ...] = ()
    source: Source | None = None

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef("Gateway", self.namespace, self.name)


@dataclass(frozen=True)
class GrantFrom:
    group: str
    kind: str
    namespace: str


@dataclass(frozen=True)
class GrantTo:
    group: str
    kind: str
    name: str | None


@dataclass(frozen=True)
class ReferenceGrant:
    namespace: str
    name: str
    from_: tuple[GrantFrom, ...]
    to: tuple[GrantTo, ...]


@dataclass(frozen=True)
class Inventory:
    """Everything the pipeline needs, however it was obtained (files or API)."""

    istio_gateways: tuple[IstioGateway, ...] = ()
    kube_gateways: tuple[KubeGateway, ...] = ()
    virtual_services: tuple[VirtualService, ...] = ()
    destination_rules: tuple[DestinationRule, ...] = ()
    reference_grants: tuple[ReferenceGrant, ...] = ()
    secrets: tuple[Secret, ...] = ()
    config_maps: tuple[ConfigMap, ...] = ()
    workloads: tuple[Workload, ...] = ()
    # True when the input said nothing about workloads (pure Gateway files).
    workloads_known: bool = True
    # (kind, namespace, name) -> (finding code, message) for objects that exist but could
    # not be read (an RBAC refusal, a malformed manifest): inspection reports that
    # instead of a misleading "not found".
    unreadable: dict[tuple[str, str, str], tuple[str, str]] = field(default_factory=dict)

    @cached_property
    def _secrets_by_key(self) -> dict[tuple[str, str], Secret]:
        return {(s.namespace, s.name): s for s in self.secrets}

    @cached_property
    def _config_maps_by_key(self) -> dict[tuple[str, str], ConfigMap]:
        return {(c.namespace, c.name): c for c in self.config_maps}

    def secret(self, namespace: str, name: str) -> Secret | None:
        return self._secrets_by_key.get((namespace, name))

    def config_map(self, namespace: str, name: str) -> ConfigMap | None:
        return self._config_maps_by_key.get((namespace, name))

    def secrets_named(self, name: str) -> list[Secret]:
        """Same-named Secrets in any namespace: explains a missing one."""
        return [s for s in self.secrets if s.name == name]


# --- discovery and inspection results ----------------------------------------------


@dataclass(frozen=True)
class Reference:
    """One Gateway server or listener that reads a credential."""

    group: str
    kind: str
    namespace: str
    name: str
    listener: str
    port: int | None
    mode: str
    hosts: tuple[str, ...]
    # Hosts actually routed through this server (VirtualService intersections);
    # used for SAN coverage, not part of the report contract.
    route_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class CredentialSpec:
    """What discovery knows before looking inside the Secret."""

    kind: Literal["Secret", "ConfigMap"]
    namespace: str
    name: str
    role: Role
    references: tuple[Reference, ...]
    findings: tuple[Finding, ...] = ()

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.kind, self.namespace, self.name, self.role)

    @property
    def hosts(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for ref in self.references:
            for h in ref.hosts:
                seen.setdefault(h, None)
        return tuple(seen)


@dataclass(frozen=True)
class CertificateInfo:
    subject: str
    issuer: str
    serial: str
    sans: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    key_type: str
    chain_length: int
    is_ca: bool = False


@dataclass(frozen=True)
class Credential:
    spec: CredentialSpec
    certificate: CertificateInfo | None
    state: State
    findings: tuple[Finding, ...]
    key_family: tuple[str, str] | None = None
    renew_at: datetime | None = None
    action: Action = "none"
    reason: str = ""
    issuer: str | None = None
    # Namespaces of referencing classic Gateways the chosen rule does not trust: their
    # hosts are left out of any certificate rotator issues (docs/security.md).
    untrusted: tuple[str, ...] = ()

    def trusted_references(self) -> tuple[Reference, ...]:
        return tuple(r for r in self.spec.references if not is_untrusted(r, self.untrusted))


def is_untrusted(ref: Reference, namespaces: tuple[str, ...]) -> bool:
    return ref.group == ISTIO_GROUP and ref.namespace in namespaces


@dataclass(frozen=True)
class IssuerCheck:
    """Did the assigned issuer issue the current certificate? ``owned`` None: it could not
    tell (its CA Secret could not be read), and ``why`` says so."""

    owned: bool | None
    why: str = ""


@dataclass(frozen=True)
class Backoff:
    next_attempt: datetime
    failures: int
    last_error: str


@dataclass(frozen=True)
class PlanFacts:
    """What the edges found out for planning, as plain data (keys are "namespace/name"),
    so a dry run plans exactly what the real pass will do, and the plan stays a pure
    function. Empty when nothing could be asked (offline manifests)."""

    issuers: dict[str, IssuerCheck] = field(default_factory=dict)
    ari: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)  # the CA's suggested window
    backoff: dict[str, Backoff] = field(default_factory=dict)
    forced: frozenset[str] = frozenset()  # renew now, due or not (`rotator renew`)


NO_FACTS = PlanFacts()


@dataclass(frozen=True)
class RenewalOutcome:
    namespace: str
    name: str
    status: Literal["renewed", "failed", "skipped", "backoff"]
    message: str
    issuer: str | None = None
    serial: str | None = None
    not_after: datetime | None = None
    copies: tuple[str, ...] = ()
    reused_pending: bool = False
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class CheckResult:
    evaluated_at: datetime
    credentials: tuple[Credential, ...]
    findings: tuple[Finding, ...]
    renewals: tuple[RenewalOutcome, ...] = ()
    # (sink, result, count) of this pass's alert deliveries: ("pagerduty", "failed", 2).
    # For metrics: alerting that silently fails must show somewhere else than in itself.
    notifications: tuple[tuple[str, str, int], ...] = ()

    def renewals_by_copy(self) -> dict[str, RenewalOutcome]:
        """This pass's renewal outcome of each Secret copy, by "namespace/name": one order
        covers every namespace copy of a Secret."""
        out: dict[str, RenewalOutcome] = {}
        for o in self.renewals:
            for copy in o.copies or (f"{o.namespace}/{o.name}",):
                out[copy] = o
        return out
