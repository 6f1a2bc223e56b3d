"""Reads what a ``SecretKeyRef`` points at: a key of a Secret, a file, or an env variable.

Issuers (CA key pairs, EAB and TSIG keys) and alert sinks (routing keys, signing secrets)
all name their credentials this way; one reader means one set of error messages, which
name the source and never the value.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rotator.config.schema import SecretKeyRef
from rotator.kube.api import SECRETS, ApiError, KubeAPI
from rotator.kube.secret_data import decoded


class SecretRefError(Exception):
    """The credential cannot be read; the message names where it was looked for."""


def read_value(ref: SecretKeyRef, api: KubeAPI | None) -> bytes:
    """The bytes a SecretKeyRef points at; errors name the source, never the value."""
    if ref.file:
        try:
            return Path(ref.file).read_bytes().strip()
        except OSError as exc:
            raise SecretRefError(f"cannot read {ref.file}: {exc.strerror or exc}") from exc
    if ref.env:
        value = os.environ.get(ref.env)
        if not value:
            raise SecretRefError(f"environment variable {ref.env} is not set")
        return value.strip().encode()
    assert ref.secret and ref.key
    data = secret_data(api, ref.secret)
    if ref.key not in data:
        raise SecretRefError(f"Secret {ref.secret} has no key {ref.key!r}")
    return data[ref.key].strip()


def secret_data(api: KubeAPI | None, ref: str) -> dict[str, bytes]:
    if api is None:
        raise SecretRefError(f"Secret {ref} needs a cluster connection")
    ns, _, name = ref.partition("/")
    obj = _read_with_retry(api, ns, name, ref)
    if obj is None:
        raise SecretRefError(f"Secret {ref} not found")
    return decoded(obj)


FORBIDDEN_RETRIES = 2  # a 403 can be RBAC still propagating after an install


def _read_with_retry(api: KubeAPI, ns: str, name: str, ref: str) -> dict[str, Any] | None:
    """The issuer's Secret. 5xx and 429 are retried by the API seam; a 403 is retried a
    little too, with back-off. What still fails is an SecretRefError carrying the API's words,
    so the renewal is ``renewal-failed`` (and backs off) rather than a crash."""
    for attempt in range(FORBIDDEN_RETRIES + 1):
        try:
            return api.get(SECRETS, ns, name)
        except ApiError as exc:
            if exc.status == 403 and attempt < FORBIDDEN_RETRIES:
                api.sleep(api.retry.delay(attempt))
                continue
            raise SecretRefError(f"cannot read Secret {ref}: {exc}") from exc
    return None  # pragma: no cover - the loop always returns or raises
