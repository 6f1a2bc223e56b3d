"""A Secret's ``data`` as bytes: the one place the API's base64 encoding is undone.

Everything rotator writes or compares works on bytes; the wire holds base64. Reading
the inventory (``discover.wire.core``) decodes strictly and reports a key it cannot
decode as a finding; every other reader — the writer, rollback, pending claims, issuer
secrets — goes through here, so "what does this Secret hold" has one answer."""

from __future__ import annotations

import base64
from typing import Any


def decoded(secret: dict[str, Any] | None, strict: bool = False) -> dict[str, bytes]:
    """Each key's bytes. A value that is not base64 reads as empty (it cannot be a usable
    certificate or key), or, with ``strict``, raises ValueError naming the key."""
    out: dict[str, bytes] = {}
    data = (secret or {}).get("data") or {}
    if not isinstance(data, dict):
        if strict:
            raise ValueError("data is not a mapping")
        return out
    for k, v in data.items():
        try:
            out[str(k)] = base64.b64decode(v or "")
        except (ValueError, TypeError) as exc:
            if strict:
                raise ValueError(f"key {k!r} is not base64: {exc}") from exc
            out[str(k)] = b""
    return out
