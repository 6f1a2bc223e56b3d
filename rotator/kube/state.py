"""Small persistent state that must outlive a CronJob pod: renewal back-off (and, later,
alert state). Kept as JSON in one ConfigMap owned by rotator, updated with optimistic
concurrency so two writers never lose each other's entries."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any, Protocol

from rotator.kube.api import CONFIGMAPS, ApiError, KubeAPI

Entry = dict[str, Any]


class StateStore(Protocol):
    def get(self, key: str) -> Entry | None: ...

    def all(self) -> dict[str, Entry]: ...

    def update_all(self, change: Callable[[dict[str, Entry]], dict[str, Entry]]) -> None:
        """Replace the whole document atomically (one write for many entries)."""

    def update(self, key: str, change: Callable[[Entry | None], Entry | None]) -> Entry | None:
        """Apply ``change`` to one entry atomically; returning None deletes it."""


class MemoryState:
    def __init__(self) -> None:
        self.data: dict[str, Entry] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Entry | None:
        with self._lock:
            return dict(self.data[key]) if key in self.data else None

    def all(self) -> dict[str, Entry]:
        with self._lock:
            return {k: dict(v) for k, v in self.data.items()}

    def update_all(self, change: Callable[[dict[str, Entry]], dict[str, Entry]]) -> None:
        with self._lock:
            self.data = change({k: dict(v) for k, v in self.data.items()})

    def update(self, key: str, change: Callable[[Entry | None], Entry | None]) -> Entry | None:
        with self._lock:
            new = change(dict(self.data[key]) if key in self.data else None)
            if new is None:
                self.data.pop(key, None)
            else:
                self.data[key] = new
            return new


class ConfigMapState:
    """Entries under one data key of a ConfigMap (``renewal.json``), created on first write."""

    def __init__(self, api: KubeAPI, namespace: str, name: str, field: str, attempts: int = 8) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.field = field
        self.attempts = attempts
        self._lock = threading.Lock()  # one writer per process; the resourceVersion guards the rest

    def _read(self) -> tuple[dict[str, Any] | None, dict[str, Entry]]:
        cm = self.api.get(CONFIGMAPS, self.namespace, self.name)
        if cm is None:
            return None, {}
        try:
            doc = json.loads((cm.get("data") or {}).get(self.field) or "{}")
        except ValueError:
            doc = {}  # a hand-edited, broken document is replaced, not fatal
        return cm, doc if isinstance(doc, dict) else {}

    def get(self, key: str) -> Entry | None:
        _, doc = self._read()
        value = doc.get(key)
        return value if isinstance(value, dict) else None

    def all(self) -> dict[str, Entry]:
        return {k: v for k, v in self._read()[1].items() if isinstance(v, dict)}

    def update_all(self, change: Callable[[dict[str, Entry]], dict[str, Entry]]) -> None:
        result: dict[str, Entry] = {}

        def whole(doc: dict[str, Entry]) -> dict[str, Entry] | None:
            nonlocal result
            result = change(doc)
            return result

        self._write(whole)

    def update(self, key: str, change: Callable[[Entry | None], Entry | None]) -> Entry | None:
        box: dict[str, Entry | None] = {"new": None}

        def one(doc: dict[str, Entry]) -> dict[str, Entry] | None:
            old = doc.get(key)
            new = change(old if isinstance(old, dict) else None)
            box["new"] = new
            if new is None:
                if key not in doc:
                    return None  # nothing to write
                doc.pop(key)
            else:
                doc[key] = new
            return doc

        self._write(one)
        return box["new"]

    def _write(self, change: Callable[[dict[str, Entry]], dict[str, Entry] | None]) -> None:
        with self._lock:
            for _ in range(self.attempts):
                cm, doc = self._read()
                new_doc = change(doc)
                if new_doc is None:
                    return
                doc = new_doc
                text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
                try:
                    if cm is None:
                        self.api.create(
                            CONFIGMAPS,
                            self.namespace,
                            {
                                "apiVersion": "v1",
                                "kind": "ConfigMap",
                                "metadata": {
                                    "name": self.name,
                                    "namespace": self.namespace,
                                    "labels": {"app.kubernetes.io/managed-by": "rotator"},
                                },
                                "data": {self.field: text},
                            },
                        )
                    else:
                        cm.setdefault("data", {})[self.field] = text
                        self.api.update(CONFIGMAPS, self.namespace, cm)
                    return
                except ApiError as exc:
                    if exc.status != 409:
                        raise
            raise ApiError(
                409, "Conflict", "state ConfigMap kept changing", "update", "configmaps", self.namespace, self.name
            )
