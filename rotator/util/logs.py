"""structlog set-up: console on a terminal, JSON lines otherwise, secrets redacted.

Redaction is a processor in the chain, so no call site can forget it: PEM private
keys, and fields named like credentials, never reach a log line.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

SENSITIVE_FIELDS = frozenset(
    {"private_key", "key_pem", "token", "routing_key", "password", "hmac", "hmac_key", "secret_data", "tsig_secret"}
)
_PEM_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.DOTALL)
REDACTED = "[redacted]"


def _scrub(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        return _PEM_KEY.sub("[redacted private key]", value) if "PRIVATE KEY" in value else value
    if isinstance(value, dict):
        return {k: (REDACTED if is_sensitive(str(k)) else _scrub(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    # Anything else (a dataclass holding Secret data, an exception, a set) is printed by
    # the renderer with repr(), which would carry a key in it: scrub that text instead.
    text = repr(value)
    return _scrub(text) if "PRIVATE KEY" in text else value


SENSITIVE_SUFFIXES = ("_token", "_password", "_hmac", "_private_key", "_routing_key", "authorization")


def is_sensitive(name: str) -> bool:
    """Field names that carry credentials: exact names, plus suffixes like ``api_token``.

    Deliberately not every name containing "key" or "secret": ``key_type`` and a Secret's
    ``namespace/name`` are what an operator needs in a log line.
    """
    n = name.lower()
    return n in SENSITIVE_FIELDS or n.endswith(SENSITIVE_SUFFIXES)


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for k in list(event):
        event[k] = REDACTED if is_sensitive(k) else _scrub(event[k])
    return event


class _Stderr:
    """sys.stderr looked up at each write, so a replaced stderr (tests, daemons) is honoured."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure(level: str = "info", fmt: str = "auto", stream: TextIO | None = None, color: bool | None = None) -> None:
    """``color``: True/False from --color; None: a terminal without NO_COLOR (no-color.org)."""
    import os

    import structlog

    out: Any = stream or _Stderr()
    if fmt == "auto":
        fmt = "console" if out.isatty() else "json"
    colors = color if color is not None else (out.isatty() and not os.environ.get("NO_COLOR"))
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=colors) if fmt == "console" else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            # Before redact: a traceback's exception message can quote key material.
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


def new_run_id() -> str:
    """Bind a fresh run id to every log line of this pass (structlog contextvars)."""
    import uuid

    import structlog

    run_id = uuid.uuid4().hex[:12]
    structlog.contextvars.bind_contextvars(run_id=run_id)
    return run_id


def get_logger(name: str = "rotator") -> Any:
    import structlog

    return structlog.get_logger(name)
