"""The Kubernetes API seam: raw JSON requests through the official client, with retries.

rotator uses the ``kubernetes`` package for what it is good at (kubeconfig and
in-cluster auth, TLS, connection pooling) and skips its model classes: responses are
decoded with ``json.loads`` straight from the socket (``_preload_content=False`` in
effect), which is several times faster on large Secret lists and keeps memory flat.
Everything above this module sees plain dicts and ``ApiError``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

from rotator.util.retry import RetryPolicy, default_sleep

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class ApiError(Exception):
    """A refused or failed API call, naming the verb and the resource so a 403 is actionable."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        verb: str,
        resource: str,
        namespace: str | None = None,
        name: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.message = message
        self.verb = verb
        self.resource = resource
        self.namespace = namespace
        self.name = name
        self.retry_after = retry_after
        super().__init__(str(self))

    def __str__(self) -> str:
        target = self.resource + (f" {self.name!r}" if self.name else "")
        where = f" in namespace {self.namespace!r}" if self.namespace else " (cluster-wide)"
        if self.status == 403:
            return (
                f"forbidden: the API server refused {self.verb} on {target}{where}; grant the verb "
                f"{self.verb!r} on {self.resource!r} to the identity rotator runs as (deploy/ has its RBAC). "
                f"Server said: {self.message}"
            )
        if self.status == 0:
            return f"{self.verb} {target}{where} failed: {self.message}"
        return f"{self.verb} {target}{where} failed: HTTP {self.status} {self.reason}: {self.message}"

    @property
    def transient(self) -> bool:
        return self.status == 0 or self.status in RETRYABLE_STATUS


@dataclass
class ApiStats:
    requests: int = 0
    retries: int = 0
    by_verb: dict[str, int] = field(default_factory=dict)
    by_result: dict[tuple[str, str], int] = field(default_factory=dict)  # (verb, "2xx"/"404"/"error"...)

    def count(self, verb: str) -> None:
        self.requests += 1
        self.by_verb[verb] = self.by_verb.get(verb, 0) + 1

    def result(self, verb: str, outcome: str) -> None:
        key = (verb, outcome)
        self.by_result[key] = self.by_result.get(key, 0) + 1


@dataclass(frozen=True)
class ResourceType:
    """Where a kind lives in the REST tree."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def label(self) -> str:
        return f"{self.group}/{self.plural}" if self.group else self.plural

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace is not None and self.namespaced:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name, safe='')}"
        return base


SECRETS = ResourceType("", "v1", "secrets", "Secret")
CONFIGMAPS = ResourceType("", "v1", "configmaps", "ConfigMap")
PODS = ResourceType("", "v1", "pods", "Pod")
EVENTS = ResourceType("events.k8s.io", "v1", "events", "Event")


class KubeAPI:
    """Small, typed-by-convention access to the API server; every call is counted and retried."""

    def __init__(
        self,
        api_client: Any,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = default_sleep,
        timeout: float = 30.0,
    ) -> None:
        self.client = api_client
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.timeout = timeout
        self.stats = ApiStats()
        self._resources: dict[str, set[str]] = {}
        # server Date minus our clock, from the last response that carried one: a one-shot
        # pass judges another holder's Lease by the API server's time, not by its own.
        self._skew: timedelta | None = None

    def server_now(self) -> datetime | None:
        """The API server's time now (1 s resolution), or None before any dated response."""
        skew = self._skew
        return None if skew is None else datetime.now(UTC) + skew

    def _note_date(self, value: str | None) -> None:
        if not value:
            return
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return
        if when.tzinfo is None:
            return
        self._skew = when - datetime.now(UTC)

    # -- transport ------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        verb: str,
        resource: str,
        namespace: str | None = None,
        name: str | None = None,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        retry: bool = True,
    ) -> Any:
        """One logical call: retried on 429/5xx/connection errors, never on 4xx.

        ``retry=False`` for calls that must not be repeated blindly (a create with
        generateName would duplicate if its response was lost) or are not worth waiting for.
        """
        last: ApiError | None = None
        for attempt in range(self.retry.attempts if retry else 1):
            if attempt:
                self.stats.retries += 1
                self.sleep(self.retry.delay(attempt - 1, last.retry_after if last else None))
            try:
                return self._once(method, path, verb, resource, namespace, name, query, body, content_type)
            except ApiError as exc:
                if not exc.transient:
                    raise
                last = exc
        assert last is not None
        raise last

    def _once(
        self,
        method: str,
        path: str,
        verb: str,
        resource: str,
        namespace: str | None,
        name: str | None,
        query: dict[str, str] | None,
        body: Any,
        content_type: str,
    ) -> Any:
        import urllib3

        self.stats.count(verb)
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        params = self.client.param_serialize(
            method=method,
            resource_path=path,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.client.call_api(*params, _request_timeout=self.timeout)
            data = response.read()
        except urllib3.exceptions.HTTPError as exc:  # reset, timeout, refused: transient
            self.stats.result(verb, "network-error")
            raise ApiError(
                0, "ConnectionError", type(exc).__name__ + ": " + str(exc)[:200], verb, resource, namespace, name
            ) from exc
        except Exception as exc:  # the client wraps SSL errors in ApiException(status=0)
            if getattr(exc, "status", None) == 0:
                raise ApiError(0, "ConnectionError", str(exc)[:200], verb, resource, namespace, name) from exc
            raise
        status = response.status
        self._note_date(response.getheader("Date"))
        self.stats.result(verb, "2xx" if 200 <= status < 300 else str(status))
        if 200 <= status < 300:
            return json.loads(data) if data else None
        try:
            payload = json.loads(data)
        except ValueError:
            payload = {}
        message = payload.get("message") if isinstance(payload, dict) else None
        reason = payload.get("reason") if isinstance(payload, dict) else None
        retry_after = response.getheader("Retry-After")
        try:
            ra = float(retry_after) if retry_after is not None else None
        except ValueError:
            ra = None
        raise ApiError(
            status,
            reason or str(response.reason),
            message or data[:200].decode("utf-8", "replace"),
            verb,
            resource,
            namespace,
            name,
            ra,
        )

    # -- verbs ----------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist (404 is an answer, not an error)."""
        try:
            obj = self.request(
                "GET", rt.path(namespace, name), verb="get", resource=rt.label, namespace=namespace, name=name
            )
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return _with_type(obj, rt)

    def list_pages(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int = 500,
    ) -> Iterator[dict[str, Any]]:
        """Each page of a paginated LIST (``limit``/``continue``), so memory stays one page deep."""
        token = ""
        selectors = {}
        if label_selector:
            selectors["labelSelector"] = label_selector
        if field_selector:
            selectors["fieldSelector"] = field_selector
        while True:
            query = {"limit": str(limit), **selectors}
            if token:
                query["continue"] = token
            try:
                page = self.request(
                    "GET", rt.path(namespace), verb="list", resource=rt.label, namespace=namespace, query=query
                )
            except ApiError as exc:
                if exc.status != 410 or not token:
                    raise
                # 410 Expired: the continue token outlived the server's history (a slow
                # pass, a busy etcd). Like client-go's reflector, fall back to one full list
                # without pagination (items() drops what earlier pages returned already).
                yield self._full_list(rt, namespace, selectors, exc)
                return
            yield page
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                return

    def _full_list(
        self, rt: ResourceType, namespace: str | None, selectors: dict[str, str], expired: ApiError
    ) -> dict[str, Any]:
        try:
            page: dict[str, Any] = self.request(
                "GET", rt.path(namespace), verb="list", resource=rt.label, namespace=namespace, query=selectors
            )
        except ApiError as exc:
            raise ApiError(
                exc.status,
                exc.reason,
                f"the paginated list expired ({expired.message}) and one full list without pagination failed "
                f"too: {exc.message}",
                "list",
                rt.label,
                namespace,
            ) from exc
        return page

    def items(self, rt: ResourceType, namespace: str | None = None, **kw: Any) -> Iterator[dict[str, Any]]:
        """Every item across pages, with apiVersion/kind filled in (core LISTs omit them).

        De-duplicated: a pagination restarted after 410 Expired returns earlier items again.
        """
        seen: set[tuple[str, str]] = set()
        for page in self.list_pages(rt, namespace, **kw):
            for item in page.get("items") or []:
                meta = item.get("metadata") or {}
                key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
                if key in seen:
                    continue
                seen.add(key)
                yield _with_type(item, rt)

    def create(
        self, rt: ResourceType, namespace: str | None, body: dict[str, Any], retry: bool = True
    ) -> dict[str, Any]:
        name = (body.get("metadata") or {}).get("name") or (body.get("metadata") or {}).get("generateName")
        return _with_type(
            self.request(
                "POST",
                rt.path(namespace),
                verb="create",
                resource=rt.label,
                namespace=namespace,
                name=name,
                body=body,
                retry=retry,
            ),
            rt,
        )

    def update(self, rt: ResourceType, namespace: str | None, body: dict[str, Any]) -> dict[str, Any]:
        """PUT with the body's resourceVersion: the server answers 409 if anyone wrote since."""
        name = body["metadata"]["name"]
        return _with_type(
            self.request(
                "PUT",
                rt.path(namespace, name),
                verb="update",
                resource=rt.label,
                namespace=namespace,
                name=name,
                body=body,
            ),
            rt,
        )

    def delete(self, rt: ResourceType, namespace: str | None, name: str) -> None:
        try:
            self.request(
                "DELETE", rt.path(namespace, name), verb="delete", resource=rt.label, namespace=namespace, name=name
            )
        except ApiError as exc:
            if exc.status != 404:
                raise

    def api_groups(self) -> dict[str, list[str]]:
        """Served groups and their versions, preferred first; one request (``GET /apis``)."""
        doc = self.request("GET", "/apis", verb="get", resource="apis")
        out: dict[str, list[str]] = {}
        for g in doc.get("groups") or []:
            preferred = (g.get("preferredVersion") or {}).get("version")
            versions = [v.get("version") for v in g.get("versions") or [] if v.get("version")]
            versions.sort(key=lambda v: (v != preferred,))
            out[g.get("name", "")] = versions
        return out

    def resources(self, group: str, version: str) -> set[str]:
        key = f"{group}/{version}"
        if key not in self._resources:
            doc = self.request("GET", f"/apis/{key}", verb="get", resource=f"apis/{key}")
            self._resources[key] = {
                r.get("name", "") for r in doc.get("resources") or [] if "/" not in r.get("name", "")
            }
        return self._resources[key]


def _with_type(obj: Any, rt: ResourceType) -> dict[str, Any]:
    if isinstance(obj, dict):
        obj.setdefault("apiVersion", rt.api_version)
        obj.setdefault("kind", rt.kind)
    return obj  # type: ignore[no-any-return]


def connect(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """An ``ApiClient`` configured like kubectl: in-cluster first, else the kubeconfig.

    Explicit ``--kubeconfig``/``--context`` win; otherwise the service-account token
    when running in a pod, else ``$KUBECONFIG`` / ``~/.kube/config``.
    """
    import os

    from kubernetes import client, config

    explicit = kubeconfig is not None or context is not None or bool(os.environ.get("KUBECONFIG"))
    if not explicit and os.environ.get("KUBERNETES_SERVICE_HOST"):
        cfg = client.Configuration()
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    else:
        cfg = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, client_configuration=cfg
        )
    cfg.retries = False  # rotator's own retry loop is the only one: bounded and visible
    return client.ApiClient(configuration=cfg)
