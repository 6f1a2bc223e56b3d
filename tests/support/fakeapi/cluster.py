"""`FakeCluster`: an in-process HTTP server speaking the Kubernetes REST protocol, for tests only.

Why a fake server rather than mocking the client: rotator talks to the cluster through the
official `kubernetes` client, whose behaviour (URL building, retries, pagination, exception
classes, strict pydantic models that reject unknown response fields) is part of what must work.
A fake at the HTTP layer keeps all of it real and lets tests inject the failures a cluster
produces: stale resourceVersions, 429 with Retry-After, 5xx, dropped connections, RBAC denials.

Design notes
------------
* Objects are stored without apiVersion/kind and are never mutated after being stored: every
  write stores a fresh copy.  Reads can therefore serialise stored objects directly (no deep
  copy per request), and a LIST snapshot is just the sorted key list plus a shallow dict copy.
* The sorted key index per storage is cached and dropped on write; a paginated LIST registers
  its snapshot under the list's resourceVersion so continue tokens see a consistent list, like
  etcd's MVCC reads.  `compact()` drops the snapshots to produce the 410 a client must handle.
* One re-entrant lock guards the store, the request log and the fault queue; JSON encoding and
  `before` hooks run outside it.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import builtins
import contextlib
import hashlib
import json
import random
import socket
import threading
import time
import traceback
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from . import errors as E
from .errors import ApiError, to_json
from .kinds import STANDARD_VERBS, Registry, ResourceKind, event_from_view, event_to_view
from .patch import PatchError, PatchFormatError, clone, json_patch, merge_patch, strip_strategic_directives
from .rbac import RBAC, Atom, Attributes, User, forbidden_reason
from .selectors import (
    FieldRequirement,
    Requirement,
    SelectorError,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)
from .validation import FieldError, RawValue, decode, format_time, prepare, validate

JSON = "application/json"
SNAPSHOTS_KEPT = 32
EXPIRED_MESSAGE = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new list "
    "without the continue parameter, or use the continue token in this response to retrieve the remainder of the "
    "results. Continuing with the provided token results in an inconsistent list - objects that were created, "
    "modified, or deleted between the time the first chunk was returned and now may show up in the list."
)
_PUBLIC_PATHS = ("/api", "/apis", "/openapi", "/version", "/healthz", "/livez", "/readyz")
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"

#: (HTTP status, body, Content-Type, extra headers)
_Response = tuple[int, bytes, str, list[tuple[str, str]]]


@dataclass
class Request:
    """One request as the server saw it; `status` is 0 when the connection was dropped without a response."""

    method: str
    path: str
    query: dict[str, str]
    status: int = 0
    user: str | None = None
    verb: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str | None = None
    name: str | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    denied: bool = False  # refused by RBAC (not by an injected 403)
    faulted: bool = False  # an injected fault matched this request
    allowed_by: tuple[str, ...] = ()  # RBAC atoms that allowed it (rendered like unused_rules())
    error: str | None = None  # traceback if the fake (or a `before` hook) raised


@dataclass
class _Fault:
    method: str | None
    path_contains: str | None
    verb: str | None
    resource: str | None
    status: int | None
    times: int
    retry_after: int | None
    drop_connection: bool
    delay: float
    before: Callable[[FakeCluster, Request], None] | None
    name: str | None = None

    def matches(self, req: Request, target: str) -> bool:
        if self.method is not None and self.method.upper() != req.method:
            return False
        if self.name is not None and self.name != req.name:
            return False
        if self.path_contains is not None and self.path_contains not in target:
            return False
        if self.verb is not None and self.verb != req.verb:
            return False
        combined = f"{req.resource}/{req.subresource}" if req.subresource else req.resource
        return self.resource is None or self.resource in (req.resource, combined)


@dataclass
class _Info:
    """`request.RequestInfo`, parsed the way the real server does it."""

    resource_request: bool
    verb: str
    path: str
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""


@dataclass
class _Snapshot:
    keys: list[str]
    objs: dict[str, dict[str, Any]]


def _valid_path_segment(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "%" not in name


def _exact_name_from_field_selector(text: str) -> str:
    for term in text.split(","):
        for op in ("==", "="):
            key, sep, value = term.partition(op)
            if sep and key.strip() == "metadata.name" and not key.endswith("!"):
                return value if _valid_path_segment(value) else ""
    return ""


def parse_request_info(method: str, path: str, query: Mapping[str, str]) -> _Info:
    """Split a URL into verb/group/version/resource/namespace/name as `RequestInfoFactory` does."""
    segs = [unquote(s) for s in path.strip("/").split("/")] if path.strip("/") else []
    non_resource = _Info(False, method.lower(), path)
    if not segs or segs[0] not in ("api", "apis"):
        return non_resource
    if segs[0] == "api":
        if len(segs) < 3:
            return non_resource
        group, version, rest = "", segs[1], segs[2:]
    else:
        if len(segs) < 4:
            return non_resource
        group, version, rest = segs[1], segs[2], segs[3:]
    verb = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(
        method, method.lower()
    )
    if rest[0] == "watch":  # deprecated /watch/ prefix
        verb, rest = "watch", rest[1:]
        if not rest:
            return non_resource
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in ("status", "finalize"):
            rest = rest[2:]
    info = _Info(True, verb, path, group, version, rest[0], namespace=namespace)
    if len(rest) >= 2:
        info.name = rest[1]
    if len(rest) >= 3:
        info.subresource = rest[2]
    if not info.name and verb == "get":
        info.verb = "watch" if query.get("watch") in ("true", "1") else "list"
        info.name = _exact_name_from_field_selector(query.get("fieldSelector", ""))
    elif not info.name and verb == "delete":
        info.verb = "deletecollection"
    return info


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not block shutdown
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, cluster: FakeCluster) -> None:
        self.cluster = cluster
        self.live: set[socket.socket] = set()
        self.live_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.live_lock:
            self.live.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.live_lock:
            self.live.discard(request)
        super().shutdown_request(request)

    def close_live(self) -> None:
        with self.live_lock:
            live = list(self.live)
        for sock in live:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as urllib3's pool expects
    disable_nagle_algorithm = True  # small responses must not wait for delayed ACKs
    server: _Server

    def _dispatch(self) -> None:
        self.server.cluster._serve(self)

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header, on the fake's own clock: a test moves the server's time, not ours."""
        return super().date_time_string(
            time.time() + self.server.cluster.clock_offset if timestamp is None else timestamp
        )

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr line."""


class FakeCluster:
    """A fake Kubernetes API server on 127.0.0.1 plus helpers to seed, inspect and sabotage it.

    Use as a context manager; `kubeconfig()` writes a file the real client can load.
    """

    def __init__(
        self,
        rbac_manifests: builtins.list[dict[str, Any]] | None = None,
        service_account: str = "system:serviceaccount:rotator:rotator",
        token: str = "rotator-token",
        admin_token: str = "admin-token",
        disabled_groups: set[str] | frozenset[str] = frozenset(),
    ) -> None:
        self.service_account = service_account
        self.token = token
        self.admin_token = admin_token
        self.url = ""
        self.clock_offset = 0.0  # seconds added to the server's time (its Date header)
        self.requests: builtins.list[Request] = []
        self.errors: builtins.list[str] = []  # tracebacks of exceptions raised inside the fake or a hook
        self.pod_logs: dict[tuple[str, str], str] = {}  # (namespace, pod) → text served at pods/log
        self.server_version: dict[str, str] = {
            "major": "1",
            "minor": "34",
            "gitVersion": "v1.34.1",
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2025-09-09T00:00:00Z",
            "goVersion": "go1.24.6",
            "compiler": "gc",
            "platform": "linux/amd64",
        }
        self._registry = Registry(frozenset(disabled_groups))
        self._rbac = RBAC(rbac_manifests) if rbac_manifests is not None else None
        self._used: set[Atom] = set()
        self._users: dict[str, User] = {}
        self.add_user(token, service_account, _service_account_groups(service_account))
        self.add_user(admin_token, "kubernetes-admin", ("kubeadm:cluster-admins", "system:authenticated"), admin=True)
        self._lock = threading.RLock()
        self._rv = 1000
        self._objects: dict[str, dict[str, dict[str, Any]]] = {}
        self._index: dict[str, _Snapshot] = {}
        self._snapshots: OrderedDict[tuple[str, int], _Snapshot] = OrderedDict()
        self._faults: builtins.list[_Fault] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> FakeCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Listen on an ephemeral port of 127.0.0.1 and serve from a daemon thread."""
        if self._server is not None:
            return
        self._server = _Server(self)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fakeapi", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close client connections still held open by keep-alive pools."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_live()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def kubeconfig(self, path: Path, token: str | None = None, context: str = "fake") -> Path:
        """Write a kubeconfig (server URL + bearer token) for `kubernetes.config.new_client_from_config`."""
        if not self.url:
            raise RuntimeError("start the FakeCluster (use it as a context manager) before writing a kubeconfig")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {"token": self.token if token is None else token}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context, "namespace": "default"}}],
            "current-context": context,
            "preferences": {},
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def add_user(self, token: str, name: str, groups: Iterable[str] = (), *, admin: bool = False) -> None:
        """Accept another bearer token (e.g. a second service account for an RBAC test)."""
        groups = tuple(groups)
        if "system:authenticated" not in groups:
            groups += ("system:authenticated",)
        self._users[token] = User(name, groups, admin)

    # ------------------------------------------------------------------ seeding and inspection

    def add(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store `obj` as-is (no auth, no validation), creating or replacing it; returns the stored copy.

        Sets resourceVersion (always bumped), uid and creationTimestamp (kept from an existing object
        unless given), and namespace "default" for namespaced kinds.  Replacing an existing object is
        how a `before` hook plays a concurrent writer.
        """
        rk, version = self._registry.for_api_version(obj.get("apiVersion", ""), obj.get("kind", ""))
        stored = clone({k: v for k, v in obj.items() if k not in ("apiVersion", "kind")})
        if rk.is_event:
            stored = event_from_view(stored, rk)
        meta = stored.setdefault("metadata", {})
        if not meta.get("name"):
            raise ValueError("metadata.name is required")
        if rk.namespaced:
            meta["namespace"] = meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        prepare(rk, stored, create=True)
        key = self._key(rk, meta.get("namespace", ""), meta["name"])
        with self._lock:
            old = self._objects.get(rk.storage_key, {}).get(key)
            old_meta = old["metadata"] if old else {}
            meta["uid"] = meta.get("uid") or old_meta.get("uid") or str(uuid.uuid4())
            meta["creationTimestamp"] = meta.get("creationTimestamp") or old_meta.get("creationTimestamp") or _now()
            if rk.generation:
                meta["generation"] = meta.get("generation") or (old_meta.get("generation", 0) + 1)
            meta["resourceVersion"] = self._next_rv()
            self._put(rk, key, stored)
            return clone(self._render(rk, version, stored))

    def remove(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        """Delete without auth or finalizers (test setup); True if something was deleted."""
        rk, _ = self._registry.for_api_version(api_version, kind)
        key = self._key(rk, namespace or "default", name)
        with self._lock:
            if key not in self._objects.get(rk.storage_key, {}):
                return False
            self._next_rv()
            self._drop(rk, key)
            return True

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """A deep copy of the stored object as the given apiVersion would serve it, or None."""
        rk, version = self._registry.for_api_version(api_version, kind)
        key = self._key(rk, namespace or "default", name)
        with self._lock:
            stored = self._objects.get(rk.storage_key, {}).get(key)
        return clone(self._render(rk, version, stored)) if stored is not None else None

    def list(self, api_version: str, kind: str, namespace: str | None = None) -> builtins.list[dict[str, Any]]:
        """Deep copies of all objects of a kind (in one namespace, or all), in the server's list order."""
        rk, version = self._registry.for_api_version(api_version, kind)
        with self._lock:
            snap = self._current_index(rk)
        lo, hi = self._range(rk, snap.keys, namespace or "")
        return [clone(self._render(rk, version, snap.objs[k])) for k in snap.keys[lo:hi]]

    def reset_requests(self) -> None:
        """Forget the request log (e.g. after seeding through the client)."""
        with self._lock:
            self.requests.clear()

    def denied(self) -> builtins.list[Request]:
        """Requests refused by RBAC (injected 403 faults are not included)."""
        with self._lock:
            return [r for r in self.requests if r.denied]

    def unused_rules(self) -> builtins.list[str]:
        """RBAC permissions (one verb × group × resource [× name]) no request was allowed by, in manifest order.

        Every Role and ClusterRole in the manifests counts, bound or not: a rule that cannot be
        exercised is as unnecessary as one that was not.
        """
        if self._rbac is None:
            return []
        with self._lock:
            used = set(self._used)
        out: builtins.list[str] = []
        for atom in self._rbac.atoms:
            text = atom.text()
            if atom not in used and text not in out:
                out.append(text)
        return out

    def fault(
        self,
        *,
        method: str | None = None,
        path_contains: str | None = None,
        verb: str | None = None,
        resource: str | None = None,
        status: int | None = None,
        times: int = 1,
        retry_after: int | None = None,
        drop_connection: bool = False,
        delay: float = 0.0,
        before: Callable[[FakeCluster, Request], None] | None = None,
        name: str | None = None,
    ) -> None:
        """Sabotage the next `times` matching requests (all given criteria must match;
        `name` is the object's exact name).

        Order of effects: `before(cluster, request)`, then `delay`, then either a dropped connection,
        a Status of `status` (429 defaults Retry-After to 1 s), or normal handling.  Faults apply after
        authentication and before RBAC; the first registered matching fault wins.  `path_contains`
        is matched against the path *and* query string.  `resource` may be `pods/log`-style.
        """
        if times < 1:
            raise ValueError("times must be at least 1")
        if status is not None and drop_connection:
            raise ValueError("a fault either answers with a status or drops the connection, not both")
        if status is not None and not 100 <= status <= 599:
            raise ValueError(f"bad HTTP status {status}")
        with self._lock:
            self._faults.append(
                _Fault(
                    method,
                    path_contains,
                    verb,
                    resource,
                    status,
                    times,
                    retry_after,
                    drop_connection,
                    delay,
                    before,
                    name,
                )
            )

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def compact(self) -> None:
        """Forget LIST snapshots, as etcd compaction does: outstanding continue tokens now get 410 Expired."""
        with self._lock:
            self._snapshots.clear()

    @property
    def resource_version(self) -> str:
        """The current global resourceVersion (bumped by every write)."""
        with self._lock:
            return str(self._rv)

    # ------------------------------------------------------------------ store internals (call with the lock held)

    @staticmethod
    def _key(rk: ResourceKind, namespace: str, name: str) -> str:
        return f"{namespace}/{name}" if rk.namespaced else name

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _put(self, rk: ResourceKind, key: str, obj: dict[str, Any]) -> None:
        self._objects.setdefault(rk.storage_key, {})[key] = obj
        self._index.pop(rk.storage_key, None)

    def _drop(self, rk: ResourceKind, key: str) -> None:
        self._objects.get(rk.storage_key, {}).pop(key, None)
        self._index.pop(rk.storage_key, None)

    def _stored(self, rk: ResourceKind, key: str) -> dict[str, Any] | None:
        return self._objects.get(rk.storage_key, {}).get(key)

    def _current_index(self, rk: ResourceKind) -> _Snapshot:
        snap = self._index.get(rk.storage_key)
        if snap is None:
            objs = dict(self._objects.get(rk.storage_key, {}))
            snap = self._index[rk.storage_key] = _Snapshot(sorted(objs), objs)
        return snap

    @staticmethod
    def _range(rk: ResourceKind, keys: builtins.list[str], namespace: str) -> tuple[int, int]:
        if not (rk.namespaced and namespace):
            return 0, len(keys)
        prefix = namespace + "/"
        return bisect.bisect_left(keys, prefix), bisect.bisect_left(keys, namespace + "0")  # "0" follows "/"

    @staticmethod
    def _render(rk: ResourceKind, version: str, stored: Mapping[str, Any], *, item: bool = False) -> dict[str, Any]:
        body = event_to_view(stored, rk) if rk.is_event else stored
        if item and rk.builtin:
            return body if isinstance(body, dict) else dict(body)  # serialised as-is: stored objects are immutable
        return {"apiVersion": rk.api_version(version), "kind": rk.kind, **body}

    # ------------------------------------------------------------------ HTTP

    def _serve(self, h: _Handler) -> None:
        split = urlsplit(h.path)
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        req = Request(method=h.command, path=split.path, query=query, headers=dict(h.headers.items()))
        try:
            raw = self._read_body(h)
        except (OSError, ValueError):
            h.close_connection = True
            return
        ctype = (h.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if raw:
            try:
                req.body = yaml.safe_load(raw) if "yaml" in ctype else json.loads(raw)
            except (ValueError, yaml.YAMLError):
                req.body = None
        status, payload, out_ctype = 500, b"", JSON
        headers: builtins.list[tuple[str, str]] = []
        try:
            info = parse_request_info(h.command, split.path, query)
            req.verb = info.verb
            if info.resource_request:
                req.api_group, req.api_version, req.resource = info.group, info.version, info.resource
                req.subresource = info.subresource
                req.namespace, req.name = info.namespace or None, info.name or None
            user = self._users.get(_bearer(h.headers.get("Authorization")))
            if user is None:
                raise E.unauthorized()
            req.user = user.name
            fault = self._take_fault(req, h.path)
            if fault is not None:
                req.faulted = True
                if fault.before is not None:
                    fault.before(self, req)
                if fault.delay:
                    time.sleep(fault.delay)
                if fault.drop_connection:
                    self._record(req)
                    h.close_connection = True
                    with contextlib.suppress(OSError):
                        h.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault.status is not None:
                    raise self._fault_error(fault, info, user)
            self._authorize(user, info, req)
            status, payload, out_ctype, headers = self._route(info, raw, ctype, query, req)
        except ApiError as exc:
            status, payload, out_ctype, headers = exc.code, to_json(exc.status()), JSON, exc.headers
        except Exception as exc:  # a bug in the fake or in a test's hook: answer 500, keep the traceback
            req.error = traceback.format_exc()
            with self._lock:
                self.errors.append(req.error)
            err = E.internal(f"fake API server error: {exc!r}")
            status, payload, out_ctype, headers = 500, to_json(err.status()), JSON, []
        req.status = status
        self._record(req)  # before answering, so a test sees the request as soon as the client returns
        self._write(h, status, payload, out_ctype, headers)

    @staticmethod
    def _read_body(h: _Handler) -> bytes:
        if (h.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            chunks: builtins.list[bytes] = []
            while True:
                size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(h.rfile.read(size))
                h.rfile.readline()
        length = int(h.headers.get("Content-Length") or 0)
        return h.rfile.read(length) if length else b""

    @staticmethod
    def _write(h: _Handler, status: int, payload: bytes, ctype: str, headers: builtins.list[tuple[str, str]]) -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", ctype)
            h.send_header("Content-Length", str(len(payload)))
            h.send_header("Audit-Id", str(uuid.uuid4()))
            h.send_header("Cache-Control", "no-cache, private")
            for name, value in headers:
                h.send_header(name, value)
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True

    def _record(self, req: Request) -> None:
        with self._lock:
            self.requests.append(req)

    def _take_fault(self, req: Request, target: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(req, target):
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _fault_error(self, fault: _Fault, info: _Info, user: User) -> ApiError:
        code = fault.status or 500
        name = info.name or ""
        if code == 429:
            return E.too_many_requests(fault.retry_after if fault.retry_after is not None else 1)
        if code == 409 and info.resource_request and name:
            err = E.conflict(info.group, info.resource, name)
        elif code == 404 and info.resource_request and name:
            err = E.not_found(info.group, info.resource, name)
        elif code == 403:
            attrs = self._attributes(user, info)
            err = E.forbidden(info.group, info.resource, name or None, forbidden_reason(attrs))
        else:
            return E.generic(code, retry_after=fault.retry_after)
        if fault.retry_after is not None:
            err.headers.append(("Retry-After", str(fault.retry_after)))
        return err

    # ------------------------------------------------------------------ authorization

    @staticmethod
    def _attributes(user: User, info: _Info) -> Attributes:
        return Attributes(
            user,
            info.verb,
            info.resource_request,
            info.group,
            info.version,
            info.resource,
            info.subresource,
            info.namespace,
            info.name,
            info.path,
        )

    def _authorize(self, user: User, info: _Info, req: Request) -> None:
        if user.admin or self._rbac is None:
            return
        attrs = self._attributes(user, info)
        if not info.resource_request:
            path = info.path.rstrip("/") or "/"
            if info.verb == "get" and any(path == p or path.startswith(p + "/") for p in _PUBLIC_PATHS):
                return  # system:discovery and system:public-info-viewer
            req.denied = True
            raise E.forbidden("", "", None, forbidden_reason(attrs))
        allowed, atoms, reason = self._rbac.authorize(attrs)
        if allowed:
            req.allowed_by = tuple(a.text() for a in atoms)
            with self._lock:
                self._used.update(atoms)
            return
        req.denied = True
        why = forbidden_reason(attrs) + (f": {reason}" if reason else "")
        raise E.forbidden(info.group, info.resource, info.name or None, why)

    # ------------------------------------------------------------------ routing

    def _route(self, info: _Info, raw: bytes, ctype: str, query: Mapping[str, str], req: Request) -> _Response:
        if not info.resource_request:
            if info.verb != "get":
                raise E.method_not_allowed()
            return self._discovery(info.path)
        rk = self._registry.lookup(info.group, info.version, info.resource)
        if rk is None:
            raise E.path_not_found()
        if info.namespace and not rk.namespaced and rk.kind != "Namespace":
            raise E.path_not_found()
        if rk.namespaced and not info.namespace and info.verb not in ("list", "watch"):
            if info.name:
                raise E.path_not_found()
            raise E.method_not_allowed()
        if info.subresource:
            sub = rk.subresource(info.subresource)
            if sub is None:
                raise E.path_not_found()
            if info.verb not in sub.verbs:
                raise E.method_not_allowed()
        namespace = info.namespace if rk.namespaced else ""
        version = info.version
        dry_run = query.get("dryRun")
        if dry_run not in (None, "All"):
            raise E.bad_request(f'Invalid dryRun value: "{dry_run}": supported values: "All"')
        strict = query.get("fieldValidation") == "Strict"
        verb = info.verb
        if verb == "get":
            return self._get(rk, version, namespace, info.name, info.subresource)
        if verb == "list":
            return self._list(rk, version, namespace, query)
        if verb == "watch":
            raise E.method_not_allowed("watch is not implemented by the fake API server (see docs)")
        if verb == "deletecollection":
            return self._delete_collection(rk, version, namespace, query, dry_run is not None)
        if verb == "create":
            if info.name:
                raise E.method_not_allowed()
            return self._create(rk, version, namespace, _parse_body(raw, ctype), strict, dry_run is not None)
        if verb == "update":
            body = _parse_body(raw, ctype)
            return self._update(rk, version, namespace, info.name, info.subresource, body, strict, dry_run is not None)
        if verb == "patch":
            return self._patch(
                rk, version, namespace, info.name, info.subresource, raw, ctype, strict, dry_run is not None
            )
        if verb == "delete":
            options = _parse_body(raw, ctype) if raw else {}
            return self._delete(
                rk, version, namespace, info.name, options if isinstance(options, dict) else {}, dry_run
            )
        raise E.method_not_allowed()

    def _ok(self, status: int, doc: Any, warnings: Iterable[str] = ()) -> _Response:
        headers = [("Warning", f"299 - {json.dumps(w)}") for w in warnings]
        return status, to_json(doc), JSON, headers

    # ------------------------------------------------------------------ discovery

    def _discovery(self, path: str) -> _Response:
        path = path.rstrip("/") or "/"
        parts = path.strip("/").split("/")
        port = self.url.rsplit(":", 1)[-1]
        if path in ("/healthz", "/livez", "/readyz"):
            return 200, b"ok", "text/plain; charset=utf-8", []
        if path == "/version":
            return self._ok(200, self.server_version)
        if path == "/api":
            cidrs = [{"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{port}"}]
            return self._ok(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": cidrs})
        if path == "/apis":
            groups = [self._api_group(g) for g in self._registry.group_versions if g]
            return self._ok(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        if parts[0] == "apis" and len(parts) == 2 and parts[1] in self._registry.group_versions:
            return self._ok(200, {"kind": "APIGroup", "apiVersion": "v1", **self._api_group(parts[1])})
        if parts[0] == "api" and len(parts) == 2 and self._registry.serves("", parts[1]):
            return self._ok(200, self._resource_list("", parts[1]))
        if parts[0] == "apis" and len(parts) == 3 and self._registry.serves(parts[1], parts[2]):
            return self._ok(200, self._resource_list(parts[1], parts[2]))
        raise E.path_not_found()

    def _api_group(self, group: str) -> dict[str, Any]:
        versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in self._registry.group_versions[group]]
        return {"name": group, "versions": versions, "preferredVersion": versions[0]}

    def _resource_list(self, group: str, version: str) -> dict[str, Any]:
        resources: builtins.list[dict[str, Any]] = []
        for rk in self._registry.kinds:
            if rk.group != group or version not in rk.versions:
                continue
            entry: dict[str, Any] = {
                "name": rk.plural,
                "singularName": rk.singular,
                "namespaced": rk.namespaced,
                "kind": rk.kind,
                "verbs": list(STANDARD_VERBS),
            }
            if rk.short_names:
                entry["shortNames"] = list(rk.short_names)
            if rk.categories:
                entry["categories"] = list(rk.categories)
            digest = hashlib.sha256(f"{rk.group}/{rk.versions[0]}/{rk.kind}".encode()).digest()[:8]
            entry["storageVersionHash"] = base64.b64encode(digest).decode()
            resources.append(entry)
            for sub in rk.subresources:
                resources.append(
                    {
                        "name": f"{rk.plural}/{sub.name}",
                        "singularName": "",
                        "namespaced": rk.namespaced,
                        "kind": rk.kind,
                        "verbs": list(sub.verbs),
                    }
                )
        gv = f"{group}/{version}" if group else version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}

    # ------------------------------------------------------------------ reads

    def _get(self, rk: ResourceKind, version: str, namespace: str, name: str, sub: str) -> _Response:
        with self._lock:
            stored = self._stored(rk, self._key(rk, namespace, name))
        if stored is None:
            raise E.not_found(rk.group, rk.plural, name)
        if sub == "log":
            return 200, self.pod_logs.get((namespace, name), "").encode(), "text/plain", []
        return self._ok(200, self._render(rk, version, stored))

    def _selectors(
        self, rk: ResourceKind, query: Mapping[str, str]
    ) -> tuple[builtins.list[Requirement], builtins.list[FieldRequirement]]:
        def unsupported(label: str) -> str:
            if rk.field_label_message == "unsupported":
                return f"field label not supported: {label}"
            return f'"{label}" is not a known field selector: only "metadata.name", "metadata.namespace"'

        try:
            labels = parse_label_selector(query.get("labelSelector", ""))
            fields = parse_field_selector(query.get("fieldSelector", ""), rk.field_labels, unsupported)
        except SelectorError as exc:
            raise E.bad_request(str(exc)) from None
        return labels, fields

    def _list(self, rk: ResourceKind, version: str, namespace: str, query: Mapping[str, str]) -> _Response:
        labels, fields = self._selectors(rk, query)
        try:
            limit = max(int(query.get("limit") or 0), 0)
        except ValueError:
            raise E.bad_request(f'invalid limit: "{query.get("limit")}"') from None
        token = query.get("continue") or ""
        start, token_rv = "", 0
        with self._lock:
            list_rv = self._rv
            if token:
                token_rv, start = _decode_continue(token)
                if token_rv == -1:
                    snap = self._current_index(rk)
                else:
                    found = self._snapshots.get((rk.storage_key, token_rv))
                    if found is None:
                        raise E.expired(EXPIRED_MESSAGE, _encode_continue(-1, start))
                    snap, list_rv = found, token_rv
            else:
                snap = self._current_index(rk)
        keys, objs = snap.keys, snap.objs
        lo, hi = self._range(rk, keys, namespace)
        i = bisect.bisect_left(keys, start, lo, hi) if start else lo
        items: builtins.list[dict[str, Any]] = []
        while i < hi and (not limit or len(items) < limit):
            obj = objs[keys[i]]
            i += 1
            meta = obj["metadata"]
            if labels and not labels_match(labels, meta.get("labels")):
                continue
            if fields and not all(f.matches(obj) for f in fields):
                continue
            items.append(self._render(rk, version, obj, item=True))
        list_meta: dict[str, Any] = {"resourceVersion": str(list_rv)}
        if limit and i < hi and len(items) == limit:
            if not token or token_rv != -1:
                with self._lock:
                    self._snapshots[(rk.storage_key, list_rv)] = snap
                    self._snapshots.move_to_end((rk.storage_key, list_rv))
                    while len(self._snapshots) > SNAPSHOTS_KEPT:
                        self._snapshots.popitem(last=False)
            list_meta["continue"] = _encode_continue(list_rv if not token or token_rv != -1 else -1, keys[i - 1] + "\0")
            if not labels and not fields:
                list_meta["remainingItemCount"] = hi - i
        doc = {"kind": f"{rk.kind}List", "apiVersion": rk.api_version(version), "metadata": list_meta, "items": items}
        return self._ok(200, doc)

    # ------------------------------------------------------------------ writes

    def _create(
        self, rk: ResourceKind, version: str, namespace: str, body: Any, strict: bool, dry_run: bool
    ) -> _Response:
        obj, warnings = decode(rk, version, body, strict=strict)
        if rk.is_event:
            obj = event_from_view(obj, rk)
        meta = obj.setdefault("metadata", {})
        if rk.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise E.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        with self._lock:
            stored = self._insert(rk, version, namespace, obj, dry_run)
        return self._ok(201, self._render(rk, version, stored), warnings)

    def _insert(
        self, rk: ResourceKind, version: str, namespace: str, obj: dict[str, Any], dry_run: bool
    ) -> dict[str, Any]:
        """BeforeCreate + storage create (lock held)."""
        meta = obj["metadata"]
        prepare(rk, obj, create=True)
        if not meta.get("name") and meta.get("generateName"):
            base = meta["generateName"][:58]
            meta["name"] = base + "".join(random.choice(_NAME_CHARS) for _ in range(5))
        for key in ("deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink"):
            meta.pop(key, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        if rk.generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if rk.has_status:
            if not rk.builtin:
                obj.pop("status", None)
            elif rk.group == "apps":
                obj["status"] = {}
            elif rk.kind == "Pod":
                obj["status"] = {"phase": "Pending"}
        errs = validate(rk, version, obj, None)
        if errs:
            raise E.invalid(rk.group, rk.kind, meta.get("name", ""), errs)
        if meta.get("resourceVersion"):
            raise E.internal("resourceVersion should not be set on objects to be created")
        key = self._key(rk, namespace, meta["name"])
        if self._stored(rk, key) is not None:
            raise E.already_exists(rk.group, rk.plural, meta["name"])
        if not dry_run:
            meta["resourceVersion"] = self._next_rv()
            self._put(rk, key, obj)
        return obj

    def _update(
        self,
        rk: ResourceKind,
        version: str,
        namespace: str,
        name: str,
        sub: str,
        body: Any,
        strict: bool,
        dry_run: bool,
    ) -> _Response:
        obj, warnings = decode(rk, version, body, strict=strict)
        if rk.is_event:
            obj = event_from_view(obj, rk)
        meta = obj.setdefault("metadata", {})
        _check_name(rk, meta, namespace, name)
        if rk.namespaced:
            meta["namespace"] = namespace
        with self._lock:
            old = self._stored(rk, self._key(rk, namespace, name))
            if old is None:
                if rk.create_on_update and not sub:
                    meta.pop("resourceVersion", None)
                    stored = self._insert(rk, version, namespace, obj, dry_run)
                    return self._ok(201, self._render(rk, version, stored), warnings)
                raise E.not_found(rk.group, rk.plural, name)
            stored = self._replace(rk, version, namespace, name, old, obj, sub, patch=False, dry_run=dry_run)
        return self._ok(200, self._render(rk, version, stored), warnings)

    def _replace(
        self,
        rk: ResourceKind,
        version: str,
        namespace: str,
        name: str,
        old: dict[str, Any],
        obj: dict[str, Any],
        sub: str,
        *,
        patch: bool,
        dry_run: bool,
    ) -> dict[str, Any]:
        """BeforeUpdate + GuaranteedUpdate for PUT and PATCH (lock held)."""
        old_meta = old["metadata"]
        rv = obj["metadata"].get("resourceVersion")
        if rv:
            if rv != old_meta.get("resourceVersion"):
                raise E.conflict(rk.group, rk.plural, name)
        elif not patch and not rk.unconditional_update:
            error = FieldError(
                "Invalid", "metadata.resourceVersion", RawValue("0x0"), "must be specified for an update"
            )
            raise E.invalid(rk.group, rk.kind, name, [error])
        if sub == "status":
            new = clone(old)
            if obj.get("status") is None:
                new.pop("status", None)
            else:
                new["status"] = obj["status"]
        else:
            new = obj
            if rk.has_status:
                if "status" in old:
                    new["status"] = old["status"]
                else:
                    new.pop("status", None)
            prepare(rk, new, create=False)
        meta = new["metadata"]
        meta["name"] = name
        if rk.namespaced:
            meta["namespace"] = namespace
        meta["uid"] = meta.get("uid") or old_meta.get("uid")
        for key in ("creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds"):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        meta.pop("managedFields", None)
        meta.pop("selfLink", None)
        meta["resourceVersion"] = old_meta["resourceVersion"]
        errs = validate(rk, version, new, old)
        if errs:
            raise E.invalid(rk.group, rk.kind, name, errs)
        if rk.generation and sub != "status" and _spec_of(new) != _spec_of(old):
            meta["generation"] = old_meta.get("generation", 0) + 1
        if new == old:
            return old  # no-op updates do not write, so resourceVersion does not move
        key = self._key(rk, namespace, name)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            if not dry_run:
                self._next_rv()
                self._drop(rk, key)
            return new
        if not dry_run:
            meta["resourceVersion"] = self._next_rv()
            self._put(rk, key, new)
        return new

    def _patch(
        self,
        rk: ResourceKind,
        version: str,
        namespace: str,
        name: str,
        sub: str,
        raw: bytes,
        ctype: str,
        strict: bool,
        dry_run: bool,
    ) -> _Response:
        accepted = ["application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"]
        if rk.builtin:
            accepted.append("application/strategic-merge-patch+json")
        if ctype.startswith("application/apply-patch"):
            raise ApiError(
                415, "UnsupportedMediaType", "server-side apply is not implemented by the fake API server (see docs)"
            )
        if ctype not in accepted:
            raise E.unsupported_media_type(accepted)
        try:
            patch_doc = json.loads(raw or b"null")
        except ValueError as exc:
            raise E.bad_request(f"error decoding patch: {exc}") from None
        with self._lock:
            old = self._stored(rk, self._key(rk, namespace, name))
            if old is None:
                raise E.not_found(rk.group, rk.plural, name)
            current = clone(self._render(rk, version, old))
            try:
                if ctype == "application/json-patch+json":
                    patched = json_patch(current, patch_doc)
                elif ctype == "application/strategic-merge-patch+json":
                    if not isinstance(patch_doc, dict):
                        raise E.bad_request("strategic merge patch must be a JSON object")
                    patched = merge_patch(current, strip_strategic_directives(patch_doc))
                else:
                    if not isinstance(patch_doc, dict):
                        raise E.bad_request("merge patch must be a JSON object")
                    patched = merge_patch(current, patch_doc)
            except PatchFormatError as exc:
                raise E.bad_request(str(exc)) from None
            except PatchError as exc:
                raise ApiError(
                    422,
                    "Invalid",
                    "the server rejected our request due to an error in our request",
                    {"causes": [{"reason": "UnexpectedServerResponse", "message": str(exc)}]},
                ) from None
            obj, warnings = decode(rk, version, patched, strict=strict)
            if rk.is_event:
                obj = event_from_view(obj, rk)
            _check_name(rk, obj.setdefault("metadata", {}), namespace, name)
            stored = self._replace(rk, version, namespace, name, old, obj, sub, patch=True, dry_run=dry_run)
        return self._ok(200, self._render(rk, version, stored), warnings)

    def _delete(
        self, rk: ResourceKind, version: str, namespace: str, name: str, options: Mapping[str, Any], dry_run: str | None
    ) -> _Response:
        dry = dry_run is not None or "All" in (options.get("dryRun") or [])
        key = self._key(rk, namespace, name)
        with self._lock:
            old = self._stored(rk, key)
            if old is None:
                raise E.not_found(rk.group, rk.plural, name)
            meta = old["metadata"]
            pre = options.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != meta.get("uid"):
                why = f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {meta.get('uid')}"
                raise E.conflict(rk.group, rk.plural, name, why)
            if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
                why = (
                    f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                    f"ResourceVersion in object meta: {meta.get('resourceVersion')}"
                )
                raise E.conflict(rk.group, rk.plural, name, why)
            result = self._delete_locked(rk, key, old, dry)
        if result is not None:
            return self._ok(200, self._render(rk, version, result))
        details: dict[str, Any] = {"name": name}
        if rk.group:
            details["group"] = rk.group
        details["kind"] = rk.plural
        details["uid"] = meta.get("uid")
        return self._ok(
            200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
        )

    def _delete_locked(self, rk: ResourceKind, key: str, old: dict[str, Any], dry: bool) -> dict[str, Any] | None:
        """Delete (or mark deleting, if finalizers remain); returns the object to answer with, or None for Status."""
        meta = old["metadata"]
        if meta.get("finalizers"):
            new = clone(old)
            new["metadata"].setdefault("deletionTimestamp", _now())
            new["metadata"].setdefault("deletionGracePeriodSeconds", 0)
            if not dry and new != old:
                new["metadata"]["resourceVersion"] = self._next_rv()
                self._put(rk, key, new)
            return new
        if rk.kind == "Namespace":
            gone = clone(old)
            gone["metadata"]["deletionTimestamp"] = _now()
            gone.setdefault("status", {})["phase"] = "Terminating"
            if not dry:
                self._next_rv()
                self._drop(rk, key)
                for other in self._registry.kinds:  # the namespace controller, instantly
                    if other.namespaced and other.storage_key in self._objects:
                        for k in [k for k in self._objects[other.storage_key] if k.startswith(meta["name"] + "/")]:
                            self._drop(other, k)
            return gone
        if not dry:
            self._next_rv()
            self._drop(rk, key)
        return clone(old) if rk.return_deleted else None

    def _delete_collection(
        self, rk: ResourceKind, version: str, namespace: str, query: Mapping[str, str], dry: bool
    ) -> _Response:
        labels, fields = self._selectors(rk, query)
        deleted: builtins.list[dict[str, Any]] = []
        with self._lock:
            snap = self._current_index(rk)
            lo, hi = self._range(rk, snap.keys, namespace)
            for key in snap.keys[lo:hi]:
                obj = snap.objs[key]
                if labels and not labels_match(labels, obj["metadata"].get("labels")):
                    continue
                if fields and not all(f.matches(obj) for f in fields):
                    continue
                result = self._delete_locked(rk, key, obj, dry)
                deleted.append(self._render(rk, version, result if result is not None else obj, item=True))
            list_rv = str(self._rv)
        doc = {
            "kind": f"{rk.kind}List",
            "apiVersion": rk.api_version(version),
            "metadata": {"resourceVersion": list_rv},
            "items": deleted,
        }
        return self._ok(200, doc)


# ---------------------------------------------------------------------- helpers


def _now() -> str:
    return format_time(datetime.now(UTC), micro=False)


def _service_account_groups(username: str) -> tuple[str, ...]:
    parts = username.split(":")
    if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
        return ("system:serviceaccounts", f"system:serviceaccounts:{parts[2]}", "system:authenticated")
    return ("system:authenticated",)


def _bearer(header: str | None) -> str:
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip()
    return "\0no-token"


def _parse_body(raw: bytes, ctype: str) -> Any:
    try:
        if "yaml" in ctype:
            return yaml.safe_load(raw)
        return json.loads(raw or b"null")
    except (ValueError, yaml.YAMLError) as exc:
        raise E.bad_request(f"couldn't get version/kind; json parse error: {exc}") from None


def _check_name(rk: ResourceKind, meta: Mapping[str, Any], namespace: str, name: str) -> None:
    """`checkName` in the update/patch handlers: 400, not 422, when the body disagrees with the URL."""
    if meta.get("name", "") != name:
        raise E.bad_request(
            f"the name of the object ({meta.get('name', '')}) does not match the name on the URL ({name})"
        )
    if rk.namespaced and meta.get("namespace") and meta["namespace"] != namespace:
        raise E.bad_request(
            f"the namespace of the object ({meta['namespace']}) does not match the namespace on the request "
            f"({namespace})"
        )


def _spec_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def _encode_continue(rv: int, start: str) -> str:
    doc = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start}, separators=(",", ":"))
    return base64.urlsafe_b64encode(doc.encode()).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[int, str]:
    try:
        doc = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if doc.get("v") != "meta.k8s.io/v1":
            raise ValueError(f"unknown version {doc.get('v')!r}")
        return int(doc["rv"]), str(doc["start"])
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise E.bad_request(f"continue key is not valid: {exc}") from None
