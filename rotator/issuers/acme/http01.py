"""HTTP-01: a built-in responder for /.well-known/acme-challenge/, and, in a cluster, a
temporary Istio VirtualService that routes that path on the Gateway to rotator.

The ``httpsRedirect: true`` trap: a Gateway whose port-80 server redirects everything
to HTTPS (the seed's does) answers the CA's challenge request with a 301 before any
route applies. ACME CAs follow the redirect to https://host/… and do not check the
certificate there, so the temporary VirtualService is bound to the Gateway (all of its
servers for that host): the redirected request then reaches rotator through the HTTPS
server. That needs an HTTPS server for the host on the same Gateway; without one,
use DNS-01 (docs/issuers.md).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rotator.issuers.base import IssuerError
from rotator.kube.api import ApiError, KubeAPI, ResourceType

PREFIX = "/.well-known/acme-challenge/"
VIRTUAL_SERVICES = ResourceType("networking.istio.io", "v1", "virtualservices", "VirtualService")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the CA validates from several vantage points at once
    tokens: dict[str, str]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        token = self.path[len(PREFIX) :] if self.path.startswith(PREFIX) else None
        body = self.server.tokens.get(token or "")
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # key authorizations are not secrets, but request noise does not belong in logs


class HTTP01Responder:
    """Binds its port only when an order needs it: building issuers (a dry run's
    preflight, a daemon's start) must not take a port or fail because it is taken."""

    def __init__(self, listen: str) -> None:
        host, _, port = listen.rpartition(":")
        self.address = (host or "0.0.0.0", int(port))
        self.tokens: dict[str, str] = {}
        self.server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1]) if self.server is not None else self.address[1]

    def start(self) -> None:
        with self._lock:
            if self.server is None:
                try:
                    self.server = _Server(self.address, _Handler)
                except OSError as exc:
                    where = f"{self.address[0]}:{self.address[1]}"
                    raise IssuerError(f"HTTP-01 responder cannot listen on {where}: {exc}") from exc
                self.server.tokens = self.tokens
                self._thread = threading.Thread(target=self.server.serve_forever, name="http01", daemon=True)
                self._thread.start()

    def add(self, token: str, key_authorization: str) -> None:
        self.tokens[token] = key_authorization

    def remove(self, token: str) -> None:
        self.tokens.pop(token, None)

    def close(self) -> None:
        with self._lock:
            if self.server is not None:
                self.server.shutdown()
                self.server.server_close()
                self.server = None


def route_name(host: str, nonce: str = "") -> str:
    """Per host, and with a nonce per order: a sweep of a dead order's route can then
    never delete a live order's route for the same host."""
    base = "rotator-acme-" + hashlib.sha256(host.encode()).hexdigest()[:16]
    return f"{base}-{nonce}" if nonce else base


def challenge_route(
    host: str, gateways: list[str], namespace: str, service_host: str, service_port: int, name: str | None = None
) -> dict[str, Any]:
    """A VirtualService sending only the challenge path for ``host`` on those Gateways to rotator."""
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {
            "name": name or route_name(host),
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "rotator"},
        },
        "spec": {
            "hosts": [host],
            "gateways": sorted(gateways),
            "http": [
                {
                    "match": [{"uri": {"prefix": PREFIX}}],
                    "route": [{"destination": {"host": service_host, "port": {"number": service_port}}}],
                }
            ],
        },
    }


class ClusterRoutes:
    """Creates and always removes the temporary VirtualServices."""

    def __init__(self, api: KubeAPI, namespace: str, service_host: str, service_port: int) -> None:
        self.api = api
        self.namespace = namespace
        self.service_host = service_host
        self.service_port = service_port

    def name_for(self, host: str) -> str:
        return route_name(host, secrets.token_hex(3))

    def add(self, host: str, gateways: list[str], name: str) -> None:
        body = challenge_route(host, gateways, self.namespace, self.service_host, self.service_port, name)
        try:
            self.api.create(VIRTUAL_SERVICES, self.namespace, body)
        except ApiError as exc:
            if exc.status != 409:
                raise
            # Only a retry of this very order can have made this name: replace it (create
            # and delete are all the RBAC rotator needs for these).
            self.api.delete(VIRTUAL_SERVICES, self.namespace, name)
            self.api.create(VIRTUAL_SERVICES, self.namespace, body)

    def remove(self, name: str) -> None:
        delete_route(self.api, self.namespace, name)


def delete_route(api: KubeAPI, namespace: str, name: str) -> None:
    """Also for a sweep, which knows only what the journal recorded (a gone route is fine)."""
    api.delete(VIRTUAL_SERVICES, namespace, name)
