"""Reads the live cluster into the same ``Inventory`` the manifest loader builds.

Efficiency rules (issue: never read every Secret of a cluster):
- routing objects are LISTed cluster-wide once per kind, paginated;
- gateway pods are LISTed by each distinct Gateway selector, never all pods;
- Secrets are read only in namespaces that need them, and only the names discovery
  asks for (``Wanted``: the reader fetches, discovery decides): a few GETs, or one
  paginated LIST of the namespace when that is cheaper (decided from the server's
  ``remainingItemCount``). Helm release and service-account token Secrets, which
  istiod never reads, are filtered out server-side.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from rotator.apis import GATEWAY_API_GROUP, GATEWAY_LABEL_KEYS, ISTIO_GROUP
from rotator.discover.wire.inventory import build_inventory
from rotator.findings import finding
from rotator.kube.api import CONFIGMAPS, PODS, SECRETS, ApiError, KubeAPI, ResourceType
from rotator.model import Finding, Inventory, ObjectRef, RawObject, Source

ISTIO_KINDS = (("gateways", "Gateway"), ("virtualservices", "VirtualService"), ("destinationrules", "DestinationRule"))
GATEWAY_API_KINDS = (("gateways", "Gateway"), ("referencegrants", "ReferenceGrant"))
# istiod's informer never sees these (§2.7); filtering them server-side also skips the
# largest Secrets in most clusters (Helm releases).
SECRET_FIELD_SELECTOR = "type!=helm.sh/release.v1,type!=kubernetes.io/service-account-token"


@dataclass
class ReadResult:
    inventory: Inventory
    findings: list[Finding] = field(default_factory=list)
    served: dict[str, str] = field(default_factory=dict)  # group -> version read
    # findings of the pod reads, reported after the credentials' (the report's order)
    late_findings: list[Finding] = field(default_factory=list)


def pick_version(served: list[str] | None, preferred: Iterable[str]) -> str | None:
    if not served:
        return None
    for v in preferred:
        if v in served:
            return v
    return None


def _source(rt: ResourceType) -> Source:
    return Source(f"cluster:{rt.label}", 0)


@dataclass(frozen=True)
class Wanted:
    """The credentials to fetch, decided by discovery: the reader fetches, it does not choose.

    ``fallbacks``: (namespace, name, other namespaces) for server Secrets that, when they
    are missing where Istio reads them, are looked for where the usual mistake puts them.
    """

    secrets: dict[str, frozenset[str]] = field(default_factory=dict)
    config_maps: frozenset[tuple[str, str]] = frozenset()
    fallbacks: tuple[tuple[str, str, tuple[str, ...]], ...] = ()


def read_routing(api: KubeAPI, page_size: int = 500) -> ReadResult:
    """Gateways, routes and gateway pods: what discovery needs to know which Secrets matter."""
    result = ReadResult(Inventory())
    raws: list[RawObject] = []
    groups = api.api_groups()

    istio_v = pick_version(groups.get(ISTIO_GROUP), ("v1", "v1beta1", "v1alpha3"))
    if istio_v:
        result.served[ISTIO_GROUP] = istio_v
        for plural, kind in ISTIO_KINDS:
            rt = ResourceType(ISTIO_GROUP, istio_v, plural, kind)
            raws += [RawObject(_source(rt), o) for o in api.items(rt, limit=page_size)]
    gw_versions = groups.get(GATEWAY_API_GROUP) or []
    for plural, kind in GATEWAY_API_KINDS:
        # ReferenceGrant is served at v1beta1 by older CRD bundles, Gateway at v1: ask
        # discovery which version serves each plural instead of guessing.
        version = next((v for v in _ordered(gw_versions) if plural in api.resources(GATEWAY_API_GROUP, v)), None)
        if version is None:
            continue
        result.served.setdefault(GATEWAY_API_GROUP, version)
        rt = ResourceType(GATEWAY_API_GROUP, version, plural, kind)
        raws += [RawObject(_source(rt), o) for o in api.items(rt, limit=page_size)]

    pods, pod_findings = _gateway_pods(api, raws, page_size)
    raws += pods
    result.inventory, result.findings = build_inventory(raws, workloads_known=True)
    result.late_findings = pod_findings
    return result


def read_credentials(api: KubeAPI, routing: ReadResult, wanted: Wanted, page_size: int = 500) -> ReadResult:
    """``routing`` completed with the Secrets and ConfigMaps ``wanted`` names, and nothing else."""
    raws: list[RawObject] = []
    refused: dict[tuple[str, str, str], tuple[str, str]] = {}
    found: set[tuple[str, str]] = set()
    for ns in sorted(wanted.secrets):
        got = _secrets_in(api, ns, set(wanted.secrets[ns]), page_size, refused)
        found |= {(ns, r.body["metadata"]["name"]) for r in got}
        raws += got
    # Second phase, only for server Secrets that are missing: the usual mistake is a copy
    # next to the Gateway resource (secret-wrong-namespace). Looking there only when
    # needed keeps rotator out of namespaces it has no business reading.
    hints: dict[str, set[str]] = defaultdict(set)
    for ns, name, elsewhere in wanted.fallbacks:
        if (ns, name) in found or ("Secret", ns, name) in refused:
            continue
        for other in elsewhere:
            hints[other].add(name)
    for ns in sorted(hints):
        raws += _secrets_in(api, ns, hints[ns], page_size, {})  # a refusal here only loses the hint
    for ns, name in sorted(wanted.config_maps):
        try:
            cm = api.get(CONFIGMAPS, ns, name)
        except ApiError as exc:
            if exc.status != 403:
                raise
            refused[("ConfigMap", ns, name)] = ("access-denied", str(exc))
            continue
        if cm is not None:
            raws.append(RawObject(_source(CONFIGMAPS), cm))
    content, content_findings = build_inventory(raws, workloads_known=True)
    partial = routing.inventory
    inventory = replace(
        partial,
        secrets=content.secrets,
        config_maps=content.config_maps,
        unreadable={**partial.unreadable, **content.unreadable, **refused},
    )
    return ReadResult(inventory, routing.findings + content_findings + routing.late_findings, dict(routing.served))


def _ordered(versions: list[str]) -> list[str]:
    return sorted(versions, key=lambda v: {"v1": 0, "v1beta1": 1}.get(v, 2))


_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def _valid_selector(sel: dict[str, Any]) -> bool:
    return all(
        isinstance(k, str) and isinstance(v, str) and _LABEL_KEY.match(k) and len(v) <= 63 and _LABEL_VALUE.match(v)
        for k, v in sel.items()
    )


def _gateway_pods(api: KubeAPI, raws: list[RawObject], page_size: int) -> tuple[list[RawObject], list[Finding]]:
    """Gateway pods, with one LIST per distinct label key (``key in (v1, v2, …)``), not per Gateway.

    Selectors are grouped by their first key, so 200 Gateways selecting ``istio=<x>`` cost
    one request; pods are then matched exactly by discovery. Only namespace and labels
    are kept. A selector the API server could never parse becomes a finding on its
    Gateway instead of failing the whole read.
    """
    findings: list[Finding] = []
    by_key: dict[str, set[str]] = {}
    exists: set[str] = set()
    for raw in raws:
        body = raw.body
        if body.get("kind") != "Gateway" or not str(body.get("apiVersion", "")).startswith(ISTIO_GROUP):
            continue
        sel = (body.get("spec") or {}).get("selector")
        if isinstance(sel, dict) and sel:
            if not _valid_selector(sel):
                meta = body.get("metadata") or {}
                ref = ObjectRef("Gateway", str(meta.get("namespace", "")), str(meta.get("name", "")))
                findings.append(
                    finding(
                        "invalid-manifest",
                        f"{ref}: spec.selector {sel!r} is not a valid label selector; no pod can match it.",
                        ref,
                    )
                )
                continue
            key = sorted(sel)[0]
            by_key.setdefault(key, set()).add(sel[key])
        else:
            exists.update(GATEWAY_LABEL_KEYS)  # an empty selector picks every gateway pod
    queries = [f"{k} in ({','.join(sorted(v))})" for k, v in sorted(by_key.items())] + sorted(exists)
    seen: dict[tuple[str, str], RawObject] = {}
    for query in queries:
        for pod in api.items(PODS, label_selector=query, limit=page_size):
            meta = pod.get("metadata") or {}
            slim = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": meta.get("name"),
                    "namespace": meta.get("namespace"),
                    "labels": meta.get("labels") or {},
                },
            }
            seen[(str(meta.get("namespace")), str(meta.get("name")))] = RawObject(_source(PODS), slim)
    return list(seen.values()), findings


def _secrets_in(
    api: KubeAPI,
    namespace: str,
    names: set[str],
    page_size: int,
    refused: dict[tuple[str, str, str], tuple[str, str]],
) -> list[RawObject]:
    """The named Secrets of one namespace, by whichever costs fewer requests."""
    try:
        if len(names) <= 2:
            return _get_each(api, namespace, names)
        # The API server omits remainingItemCount when a selector is set, so the size
        # probe goes without one (it may count Helm releases too: an overestimate is safe).
        try:
            probe = next(api.list_pages(SECRETS, namespace, limit=1))
        except ApiError as exc:
            if exc.status != 403:
                raise
            return _get_each(api, namespace, names)  # a grant of get without list still works
        meta = probe.get("metadata") or {}
        remaining = meta.get("remainingItemCount")
        if remaining is None and meta.get("continue"):
            remaining = len(names) * page_size  # unknown size: assume large, prefer GETs
        total = len(probe.get("items") or []) + int(remaining or 0)
        if math.ceil(total / page_size) >= len(names):
            return _get_each(api, namespace, names)
        out = []
        for item in api.items(SECRETS, namespace, field_selector=SECRET_FIELD_SELECTOR, limit=page_size):
            if (item.get("metadata") or {}).get("name") in names:
                out.append(RawObject(_source(SECRETS), item))
        # Names the filtered LIST did not return: usually absent, rarely of a type istiod
        # ignores. A GET tells which, so the report matches the one from manifests.
        missing = names - {r.body["metadata"]["name"] for r in out}
        return out + _get_each(api, namespace, missing)
    except ApiError as exc:
        if exc.status != 403:
            raise
        # One refused namespace never stops the others; each credential there says why.
        refused.update({("Secret", namespace, n): ("access-denied", str(exc)) for n in names})
        return []


def _get_each(api: KubeAPI, namespace: str, names: set[str]) -> list[RawObject]:
    out = []
    for name in sorted(names):
        obj = api.get(SECRETS, namespace, name)
        if obj is not None:
            out.append(RawObject(_source(SECRETS), obj))
    return out
