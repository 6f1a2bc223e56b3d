"""A PagerDuty Events API v2 test double on 127.0.0.1 (reference note §7).

It validates every request as the real API documents it, models open and resolved
alerts per (routing_key, dedup_key), and injects 429/5xx/connection resets.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support import localhttp

KEY = re.compile(r"^[A-Za-z0-9]+$")
SEVERITIES = {"critical", "error", "warning", "info"}


def validate_alert(body: Any) -> list[str]:
    errs: list[str] = []
    if not isinstance(body, dict):
        return ["Event object format is unrecognized"]
    rk = body.get("routing_key")
    if not isinstance(rk, str) or len(rk) != 32:
        errs.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    elif not KEY.match(rk):
        errs.append("'routing_key' cannot contain non-alphanumeric characters.")
    action = body.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        errs.append("'event_action' is invalid")
    dk = body.get("dedup_key")
    if dk is not None and (not isinstance(dk, str) or len(dk) > 255):
        errs.append("'dedup_key' is too long (maximum is 255 characters)")
    if action in ("acknowledge", "resolve") and not dk:
        errs.append("'dedup_key' is required for acknowledge and resolve")
    if action == "trigger":
        p = body.get("payload")
        if not isinstance(p, dict):
            errs.append("'payload' is missing or invalid")
        else:
            s = p.get("summary")
            if not isinstance(s, str) or not s:
                errs.append("'summary' is missing")
            elif len(s) > 1024:
                errs.append("'summary' is too long (maiximum is 1024 characters)")
            if not isinstance(p.get("source"), str) or not p.get("source"):
                errs.append("'source' is missing")
            if p.get("severity") not in SEVERITIES:
                errs.append(
                    "'payload.severity' is invalid (must be one of the following: 'critical', 'warning', "
                    "'error' or 'info')"
                )
            if "timestamp" in p:
                try:
                    datetime.fromisoformat(str(p["timestamp"]).replace("Z", "+00:00"))
                except ValueError:
                    errs.append("'timestamp' is invalid")
            for f in ("component", "group", "class"):
                if f in p and not isinstance(p[f], str):
                    errs.append(f"'{f}' must be a string")
            if "custom_details" in p and not isinstance(p["custom_details"], dict):
                errs.append("'custom_details' must be an object")
    for f in ("client", "client_url"):
        if f in body and not isinstance(body[f], str):
            errs.append(f"'{f}' must be a string")
    return errs


class PagerDutyDouble:
    def __init__(self) -> None:
        self.open: dict[tuple[str, str], list[dict[str, Any]]] = {}  # open alerts: their trigger log
        self.resolved: list[tuple[str, str]] = []
        self.events: list[dict[str, Any]] = []  # accepted, with arrival time
        self.requests: list[tuple[float, int, dict[str, Any] | None]] = []
        self.faults: list[int | str] = []  # statuses to answer next, or "reset"
        self.changes: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return localhttp.url(self.server)

    def __enter__(self) -> PagerDutyDouble:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with double.lock:
                    fault = double.faults.pop(0) if double.faults else None
                if fault == "reset":
                    self.connection.close()
                    return
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with double.lock:
                    double.requests.append((time.monotonic(), fault if isinstance(fault, int) else 0, body))
                if isinstance(fault, int):
                    self._reply(fault, {"status": "error"} if fault != 429 else None)
                    return
                if len(raw) > 512_000 or self.headers.get("Content-Type", "").split(";")[0] != "application/json":
                    self._reply(
                        400,
                        {
                            "status": "invalid event",
                            "message": "Event object is invalid",
                            "errors": ["body too large or not JSON"],
                        },
                    )
                    return
                if self.path == "/v2/change/enqueue":
                    self._change(body)
                    return
                if self.path != "/v2/enqueue":
                    self._reply(404, {"status": "not found"})
                    return
                errs = validate_alert(body)
                if errs:
                    self._reply(400, {"status": "invalid event", "message": "Event object is invalid", "errors": errs})
                    return
                key = body.get("dedup_key") or uuid.uuid4().hex
                ident = (body["routing_key"], key)
                with double.lock:
                    double.events.append({**body, "_at": time.monotonic()})
                    if body["event_action"] == "trigger":
                        double.open.setdefault(ident, []).append(body)
                    elif body["event_action"] == "resolve" and ident in double.open:
                        del double.open[ident]
                        double.resolved.append(ident)
                self._reply(202, {"status": "success", "message": "Event processed", "dedup_key": key})

            def _change(self, body: Any) -> None:
                rk = body.get("routing_key") if isinstance(body, dict) else None
                p = body.get("payload") if isinstance(body, dict) else None
                if (
                    not isinstance(rk, str)
                    or len(rk) != 32
                    or rk.startswith("R")
                    or not isinstance(p, dict)
                    or not p.get("summary")
                    or len(p["summary"]) > 1024
                    or "event_action" in body
                ):
                    self._reply(400, {"status": "invalid event", "message": "Event object is invalid", "errors": ["x"]})
                    return
                with double.lock:
                    double.changes.append(body)
                self._reply(202, {"status": "success", "message": "Change event processed"})

            def _reply(self, code: int, doc: dict[str, Any] | None) -> None:
                data = json.dumps(doc).encode() if doc is not None else b"429 - Request Limit Exceeded"
                self.send_response(code)
                self.send_header("Content-Type", "application/json" if doc is not None else "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._serving = localhttp.serve(Handler)
        self.server = self._serving.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._serving.__exit__(None, None, None)

    def max_in_window(self, seconds: float = 60) -> int:
        times = sorted(e["_at"] for e in self.events)
        best, j = 0, 0
        for i, t in enumerate(times):
            while t - times[j] >= seconds:
                j += 1
            best = max(best, i - j + 1)
        return best
