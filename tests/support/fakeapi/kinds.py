"""The resource types the fake serves, with the per-type behaviour the real server hard-codes.

Each entry records what a test can observe from the outside: the URL plural, scope, the
versions served, which subresources exist, whether list items carry apiVersion/kind (compiled-in
types don't, custom resources do), which field selectors are accepted, whether `metadata.generation`
is tracked, and the quirks of deletion and update.  Keeping them as data means a new type is one
entry, not a new code path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Verbs the real server advertises for an ordinary resource in discovery.
STANDARD_VERBS: tuple[str, ...] = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")

#: Metadata-only field selectors, the default for every type (and the only ones custom resources get).
META_FIELDS: Mapping[str, str] = {"metadata.name": "metadata.name", "metadata.namespace": "metadata.namespace"}

#: ObjectMeta fields the server knows; anything else in `metadata` is dropped with a warning.
OBJECT_META_FIELDS: frozenset[str] = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)

_EVENT_CORE_FIELDS = frozenset(
    {
        "involvedObject",
        "reason",
        "message",
        "source",
        "firstTimestamp",
        "lastTimestamp",
        "count",
        "type",
        "eventTime",
        "series",
        "action",
        "related",
        "reportingComponent",
        "reportingInstance",
    }
)
_EVENT_V1_FIELDS = frozenset(
    {
        "eventTime",
        "series",
        "reportingController",
        "reportingInstance",
        "action",
        "reason",
        "regarding",
        "related",
        "note",
        "type",
        "deprecatedSource",
        "deprecatedFirstTimestamp",
        "deprecatedLastTimestamp",
        "deprecatedCount",
    }
)

#: core/v1 Event field name → events.k8s.io/v1 field name; both APIs share one storage, like the real server.
EVENT_CORE_TO_V1: Mapping[str, str] = {
    "involvedObject": "regarding",
    "message": "note",
    "source": "deprecatedSource",
    "firstTimestamp": "deprecatedFirstTimestamp",
    "lastTimestamp": "deprecatedLastTimestamp",
    "count": "deprecatedCount",
    "reportingComponent": "reportingController",
}
EVENT_V1_TO_CORE: Mapping[str, str] = {v: k for k, v in EVENT_CORE_TO_V1.items()}


@dataclass(frozen=True)
class Subresource:
    """A subresource such as `status` or `log`, with the verbs discovery advertises for it."""

    name: str
    verbs: tuple[str, ...]


@dataclass(frozen=True)
class ResourceKind:
    """One served resource type.  Behaviour flags mirror the registry strategy of the real type."""

    group: str
    versions: tuple[str, ...]  # served versions, preferred first
    kind: str
    plural: str
    singular: str
    namespaced: bool = True
    builtin: bool = True  # compiled-in type (typed decoding, list items without apiVersion/kind)
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[Subresource, ...] = ()
    generation: bool = False  # metadata.generation tracked (bumped on non-metadata, non-status changes)
    storage: str = ""  # storage key; two kinds with the same key share objects (core and events.k8s.io Events)
    field_labels: Mapping[str, str] = field(default_factory=lambda: dict(META_FIELDS))
    field_label_message: str = "default"  # "default" (meta-only wording) or "unsupported" (`field label not supported`)
    create_on_update: bool = False  # PUT on a missing object creates it
    unconditional_update: bool = True  # PUT without metadata.resourceVersion allowed
    return_deleted: bool = False  # DELETE answers with the object instead of a Status
    known_fields: frozenset[str] | None = None  # top-level fields of a compiled-in type; others are pruned
    time_fields: tuple[tuple[str, str], ...] = ()  # (dotted path, "Time" | "MicroTime") checked and normalised

    @property
    def storage_key(self) -> str:
        return self.storage or f"{self.group}/{self.plural}"

    @property
    def has_status(self) -> bool:
        return any(s.name == "status" for s in self.subresources)

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version

    @property
    def is_event(self) -> bool:
        return self.storage_key == "events"

    def subresource(self, name: str) -> Subresource | None:
        return next((s for s in self.subresources if s.name == name), None)


_STATUS = Subresource("status", ("get", "patch", "update"))
_TYPE_META = frozenset({"apiVersion", "kind", "metadata"})

KINDS: tuple[ResourceKind, ...] = (
    ResourceKind(
        "",
        ("v1",),
        "Secret",
        "secrets",
        "secret",
        field_labels={**META_FIELDS, "type": "type"},
        field_label_message="unsupported",
        known_fields=_TYPE_META | {"data", "stringData", "type", "immutable"},
    ),
    ResourceKind(
        "",
        ("v1",),
        "ConfigMap",
        "configmaps",
        "configmap",
        short_names=("cm",),
        known_fields=_TYPE_META | {"data", "binaryData", "immutable"},
    ),
    ResourceKind(
        "",
        ("v1",),
        "Pod",
        "pods",
        "pod",
        short_names=("po",),
        categories=("all",),
        subresources=(_STATUS, Subresource("log", ("get",))),
        field_labels={
            **META_FIELDS,
            "spec.nodeName": "spec.nodeName",
            "spec.restartPolicy": "spec.restartPolicy",
            "spec.schedulerName": "spec.schedulerName",
            "spec.serviceAccountName": "spec.serviceAccountName",
            "spec.hostNetwork": "spec.hostNetwork",
            "status.phase": "status.phase",
            "status.podIP": "status.podIP",
            "status.nominatedNodeName": "status.nominatedNodeName",
        },
        field_label_message="unsupported",
        return_deleted=True,
        known_fields=_TYPE_META | {"spec", "status"},
    ),
    ResourceKind(
        "",
        ("v1",),
        "Namespace",
        "namespaces",
        "namespace",
        namespaced=False,
        short_names=("ns",),
        subresources=(_STATUS, Subresource("finalize", ("update",))),
        field_labels={"metadata.name": "metadata.name", "status.phase": "status.phase"},
        field_label_message="unsupported",
        return_deleted=True,
        known_fields=_TYPE_META | {"spec", "status"},
    ),
    ResourceKind(
        "",
        ("v1",),
        "Event",
        "events",
        "event",
        short_names=("ev",),
        storage="events",
        field_labels={
            **META_FIELDS,
            "involvedObject.kind": "involvedObject.kind",
            "involvedObject.namespace": "involvedObject.namespace",
            "involvedObject.name": "involvedObject.name",
            "involvedObject.uid": "involvedObject.uid",
            "involvedObject.apiVersion": "involvedObject.apiVersion",
            "involvedObject.resourceVersion": "involvedObject.resourceVersion",
            "involvedObject.fieldPath": "involvedObject.fieldPath",
            "reason": "reason",
            "reportingComponent": "reportingComponent",
            "source": "source.component",
            "type": "type",
        },
        field_label_message="unsupported",
        create_on_update=True,
        known_fields=_TYPE_META | _EVENT_CORE_FIELDS,
        time_fields=(
            ("firstTimestamp", "Time"),
            ("lastTimestamp", "Time"),
            ("eventTime", "MicroTime"),
            ("series.lastObservedTime", "MicroTime"),
        ),
    ),
    ResourceKind(
        "events.k8s.io",
        ("v1",),
        "Event",
        "events",
        "event",
        short_names=("ev",),
        storage="events",
        field_labels={
            **META_FIELDS,
            "regarding.kind": "involvedObject.kind",
            "regarding.namespace": "involvedObject.namespace",
            "regarding.name": "involvedObject.name",
            "regarding.uid": "involvedObject.uid",
            "regarding.apiVersion": "involvedObject.apiVersion",
            "regarding.resourceVersion": "involvedObject.resourceVersion",
            "regarding.fieldPath": "involvedObject.fieldPath",
            "reason": "reason",
            "reportingController": "reportingComponent",
            "type": "type",
        },
        field_label_message="unsupported",
        create_on_update=True,
        known_fields=_TYPE_META | _EVENT_V1_FIELDS,
        time_fields=(
            ("deprecatedFirstTimestamp", "Time"),
            ("deprecatedLastTimestamp", "Time"),
            ("eventTime", "MicroTime"),
            ("series.lastObservedTime", "MicroTime"),
        ),
    ),
    *(
        ResourceKind(
            "apps",
            ("v1",),
            kind,
            plural,
            plural[:-1],
            short_names=(short,),
            categories=("all",),
            subresources=(_STATUS,),
            generation=True,
            known_fields=_TYPE_META | {"spec", "status"},
        )
        for kind, plural, short in (
            ("Deployment", "deployments", "deploy"),
            ("StatefulSet", "statefulsets", "sts"),
            ("DaemonSet", "daemonsets", "ds"),
        )
    ),
    ResourceKind(
        "coordination.k8s.io",
        ("v1",),
        "Lease",
        "leases",
        "lease",
        known_fields=_TYPE_META | {"spec"},
        time_fields=(("spec.acquireTime", "MicroTime"), ("spec.renewTime", "MicroTime")),
    ),
    *(
        ResourceKind(
            "networking.istio.io",
            ("v1", "v1beta1", "v1alpha3"),
            kind,
            plural,
            plural[:-1],
            builtin=False,
            short_names=(short,),
            categories=("istio-io", "networking-istio-io"),
            subresources=(_STATUS,),
            generation=True,
            unconditional_update=False,
        )
        for kind, plural, short in (
            ("Gateway", "gateways", "gw"),
            ("VirtualService", "virtualservices", "vs"),
            ("DestinationRule", "destinationrules", "dr"),
        )
    ),
    ResourceKind(
        "gateway.networking.k8s.io",
        ("v1", "v1beta1"),
        "Gateway",
        "gateways",
        "gateway",
        builtin=False,
        short_names=("gtw",),
        categories=("gateway-api",),
        subresources=(_STATUS,),
        generation=True,
        unconditional_update=False,
    ),
    ResourceKind(
        "gateway.networking.k8s.io",
        ("v1", "v1beta1"),
        "ReferenceGrant",
        "referencegrants",
        "referencegrant",
        builtin=False,
        short_names=("refgrant",),
        categories=("gateway-api",),
        generation=True,
        unconditional_update=False,
    ),
)


class Registry:
    """Lookups over the served kinds, minus the groups a test disabled to emulate a missing CRD."""

    def __init__(self, disabled_groups: frozenset[str] | set[str]) -> None:
        self.kinds = tuple(k for k in KINDS if k.group not in disabled_groups)
        self.by_url: dict[tuple[str, str, str], ResourceKind] = {}
        self.by_kind: dict[tuple[str, str], ResourceKind] = {}
        self.group_versions: dict[str, list[str]] = {}
        for k in self.kinds:
            self.by_kind[(k.group, k.kind)] = k
            for v in k.versions:
                self.by_url[(k.group, v, k.plural)] = k
                gv = self.group_versions.setdefault(k.group, [])
                if v not in gv:
                    gv.append(v)

    def serves(self, group: str, version: str) -> bool:
        return version in self.group_versions.get(group, ())

    def lookup(self, group: str, version: str, plural: str) -> ResourceKind | None:
        return self.by_url.get((group, version, plural))

    def for_api_version(self, api_version: str, kind: str) -> tuple[ResourceKind, str]:
        """(kind, version) for an `apiVersion`/`kind` pair, as used by the seeding helpers."""
        group, _, version = api_version.rpartition("/")
        rk = self.by_kind.get((group, kind))
        if rk is None or version not in rk.versions:
            raise KeyError(f"{api_version} {kind} is not served by this fake cluster")
        return rk, version


def event_to_view(stored: Mapping[str, Any], rk: ResourceKind) -> dict[str, Any]:
    """Render a stored (core-shaped) Event for the API it is read through.

    The real server stores one internal Event and converts per request; Go also emits its
    non-omitempty zero values (`eventTime: null`, `source: {}`...), which clients' models rely on.
    """
    if rk.group == "events.k8s.io":
        out: dict[str, Any] = {}
        for key, value in stored.items():
            out[EVENT_CORE_TO_V1.get(key, key)] = value
        out.setdefault("eventTime", None)
        out.setdefault("deprecatedSource", {})
        out.setdefault("deprecatedFirstTimestamp", None)
        out.setdefault("deprecatedLastTimestamp", None)
        return out
    out = dict(stored)
    out.setdefault("involvedObject", {})
    out.setdefault("source", {})
    out.setdefault("firstTimestamp", None)
    out.setdefault("lastTimestamp", None)
    out.setdefault("eventTime", None)
    out.setdefault("reportingComponent", "")
    out.setdefault("reportingInstance", "")
    return out


def event_from_view(obj: Mapping[str, Any], rk: ResourceKind) -> dict[str, Any]:
    """The inverse of `event_to_view`: the core-shaped form kept in storage (zero values dropped)."""
    mapping = EVENT_V1_TO_CORE if rk.group == "events.k8s.io" else {}
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if value is None or value == {} or value == "":
            continue
        out[mapping.get(key, key)] = value
    return out
