"""Kubernetes Events (``events.k8s.io/v1``) on the Secrets rotator touches.

Best effort by design: an Event that cannot be written is logged and never fails or
delays a rotation (Events are a courtesy to ``kubectl describe``, not a record).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from rotator.kube.api import EVENTS, ApiError, KubeAPI
from rotator.util.logs import get_logger

CONTROLLER = "rotator.io/rotator"
NOTE_LIMIT = 1024  # the API rejects longer notes


def micro_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_name(secret_name: str, now: datetime) -> str:
    """``<name>.<hex nanoseconds>`` like client-go: events.k8s.io/v1 validates names strictly
    (a generateName ending in '.' is refused with 422)."""
    stem = secret_name[:200].rstrip(".-") or "secret"
    return f"{stem}.{int(now.timestamp() * 1e9):x}{os.urandom(2).hex()}"


def _clip(text: str, limit: int) -> str:
    """Cut to ``limit`` UTF-8 bytes (the API counts bytes), never inside a character."""
    data = text.encode()
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


def event_body(
    regarding: dict[str, Any], reason: str, action: str, note: str, type_: str, now: datetime, instance: str
) -> dict[str, Any]:
    meta = regarding.get("metadata") or {}
    name = str(meta.get("name", "secret"))
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": event_name(name, now), "namespace": meta.get("namespace")},
        "eventTime": micro_time(now),
        "reportingController": CONTROLLER,
        "reportingInstance": instance[:128],
        "action": action,
        "reason": reason,
        "type": type_,
        "note": _clip(note, NOTE_LIMIT),
        "regarding": {
            "apiVersion": "v1",
            "kind": regarding.get("kind", "Secret"),
            "namespace": meta.get("namespace"),
            "name": name,
            **({"uid": meta["uid"]} if meta.get("uid") else {}),
            **({"resourceVersion": meta["resourceVersion"]} if meta.get("resourceVersion") else {}),
        },
    }


class EventRecorder:
    """Records Events, at most one per (object, reason) per ``min_interval``: a Secret
    failing every pass must not flood the namespace's Events."""

    def __init__(
        self,
        api: KubeAPI,
        clock: Callable[[], datetime],
        instance: str | None = None,
        min_interval: timedelta = timedelta(minutes=10),
    ) -> None:
        self.api = api
        self.clock = clock
        self.min_interval = min_interval
        self._last: dict[tuple[str, str, str], datetime] = {}
        self.instance = instance or os.environ.get("POD_NAME") or socket.gethostname()
        self.log = get_logger("rotator.events")

    def record(self, regarding: dict[str, Any], reason: str, action: str, note: str, warning: bool = False) -> None:
        meta = regarding.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")), reason)
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.min_interval:
            return
        self._last[key] = now
        body = event_body(
            regarding, reason, action, note, "Warning" if warning else "Normal", self.clock(), self.instance
        )
        ns = body["metadata"]["namespace"]
        try:
            self.api.create(EVENTS, ns, body, retry=False)  # a courtesy: never hold up a rotation
        except ApiError as exc:
            self.log.warning("event not recorded", reason=reason, namespace=ns, error=str(exc))
