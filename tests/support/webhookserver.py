"""A webhook receiver on 127.0.0.1 that holds rotator to its documented contract
(docs/alerting.md#webhooks, schema rotator.webhook/v1): it checks every body field by
field, verifies the HMAC signature in constant time and the Authorization header,
models open and resolved alerts by id, and injects 429 (with Retry-After), 5xx and
connection resets."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support import localhttp

COMMON = {"schema": str, "event": str, "id": str, "cluster": str, "timestamp": str, "text": str}
BY_EVENT: dict[str, dict[str, type | tuple[type, ...]]] = {
    "trigger": {
        "severity": str,
        "summary": str,
        "class": str,
        "target": str,
        "gateways": list,
        "details": dict,
    },
    "resolve": {"target": str, "class": (str, type(None))},
    "rotated": {
        "target": str,
        "issuer": str,
        "serial": str,
        "not_after": (str, type(None)),
        "copies": list,
    },
}


def validate(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return ["body is not a JSON object"]
    errs = []
    event = body.get("event")
    fields = {**COMMON, **BY_EVENT.get(str(event), {})}
    for name, kind in fields.items():
        if name not in body:
            errs.append(f"missing {name}")
        elif not isinstance(body[name], kind):
            errs.append(f"{name} has the wrong type")
    extra = set(body) - set(fields)
    if extra:
        errs.append(f"undocumented fields {sorted(extra)}")
    if body.get("schema") != "rotator.webhook/v1":
        errs.append("unknown schema")
    if event not in BY_EVENT:
        errs.append(f"unknown event {event!r}")
    if event == "trigger" and body.get("severity") not in ("critical", "error"):
        errs.append("severity must be critical or error")
    try:
        datetime.fromisoformat(str(body.get("timestamp")).replace("Z", "+00:00"))
    except ValueError:
        errs.append("timestamp is not ISO 8601")
    if len(str(body.get("text", ""))) > 3000:
        errs.append("text too long")
    return errs


class WebhookDouble:
    def __init__(self, secret: bytes | None = None, authorization: str | None = None) -> None:
        self.secret = secret
        self.authorization = authorization
        self.open: dict[str, dict[str, Any]] = {}
        self.resolved: list[str] = []
        self.accepted: list[dict[str, Any]] = []
        self.rejected: list[tuple[int, str]] = []
        self.deliveries: list[str] = []  # X-Rotator-Delivery of every request that arrived
        self.faults: list[int | str] = []  # answer these first: a status, or "reset"
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return localhttp.url(self.server) + "/hooks/rotator"

    def __enter__(self) -> WebhookDouble:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with double.lock:
                    double.deliveries.append(self.headers.get("X-Rotator-Delivery", ""))
                    fault = double.faults.pop(0) if double.faults else None
                if fault == "reset":
                    self.connection.close()
                    return
                if isinstance(fault, int):
                    return self._reply(fault, "injected", {"Retry-After": "2"} if fault == 429 else {})
                if self.path != "/hooks/rotator":
                    return self._reply(404, "no such hook")
                if self.headers.get("Content-Type") != "application/json":
                    return self._reply(415, "JSON only")
                if double.secret is not None:
                    want = "sha256=" + hmac.new(double.secret, raw, hashlib.sha256).hexdigest()
                    if not hmac.compare_digest(want, self.headers.get("X-Rotator-Signature-256", "")):
                        return self._reply(401, "bad signature")
                if double.authorization is not None and self.headers.get("Authorization") != double.authorization:
                    return self._reply(403, "bad token")
                try:
                    body = json.loads(raw)
                except ValueError:
                    return self._reply(400, "not JSON")
                errs = validate(body)
                if errs:
                    return self._reply(422, "; ".join(errs))
                with double.lock:
                    double.accepted.append(body)
                    if body["event"] == "trigger":
                        double.open[body["id"]] = body
                    elif body["event"] == "resolve" and body["id"] in double.open:
                        del double.open[body["id"]]
                        double.resolved.append(body["id"])
                self._reply(204, "")

            def _reply(self, code: int, text: str, headers: dict[str, str] | None = None) -> None:
                if code >= 400:
                    with double.lock:
                        double.rejected.append((code, text))
                data = text.encode()
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if data:
                    self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._serving = localhttp.serve(Handler)
        self.server = self._serving.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._serving.__exit__(None, None, None)
