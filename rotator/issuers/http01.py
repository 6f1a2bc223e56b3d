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
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rotator.cluster.api import ApiError, KubeAPI, ResourceType

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
    def __init__(self, listen: str) -> None:
        host, _, port = listen.rpartition(":")
        self.server = _Server((host or "0.0.0.0", int(port)), _Handler)
        self.server.tokens = {}
        self._thread = threading.Thread(target=self.server.serve_forever, name="http01", daemon=True)
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        with self._lock:
            if not self._thread.is_alive():
                self._thread.start()

    def add(self, token: str, key_authorization: str) -> None:
        self.server.tokens[token] = key_authorization

    def remove(self, token: str) -> None:
        self.server.tokens.pop(token, None)

    def close(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for serve_forever, which may never have started
            self.server.shutdown()
        self.server.server_close()


def route_name(host: str) -> str:
    return "rotator-acme-" + hashlib.sha256(host.encode()).hexdigest()[:16]


def challenge_route(
    host: str, gateways: list[str], namespace: str, service_host: str, service_port: int
) -> dict[str, Any]:
    """A VirtualService sending only the challenge path for ``host`` on those Gateways to rotator."""
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {
            "name": route_name(host),
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

    def add(self, host: str, gateways: list[str]) -> None:
        body = challenge_route(host, gateways, self.namespace, self.service_host, self.service_port)
        try:
            self.api.create(VIRTUAL_SERVICES, self.namespace, body)
        except ApiError as exc:
            if exc.status != 409:
                raise
            # A leftover from a pass that died mid-way: replace it (create/delete is all
            # the RBAC rotator needs for these).
            self.api.delete(VIRTUAL_SERVICES, self.namespace, body["metadata"]["name"])
            self.api.create(VIRTUAL_SERVICES, self.namespace, body)

    def remove(self, host: str) -> None:
        self.api.delete(VIRTUAL_SERVICES, self.namespace, route_name(host))
