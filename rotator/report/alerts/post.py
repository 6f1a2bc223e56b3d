"""One JSON POST, delivered with a bounded budget: shared by PagerDuty and webhooks.

Retries only what may succeed later (429, 5xx, resets, timeouts), with exponential
backoff and jitter, honouring a Retry-After in seconds up to the policy's cap; a 4xx is
final and its body is logged (clipped). Nothing secret is logged: bodies carry routing
keys and are never printed, headers carry signatures and tokens and are never printed.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from rotator import __version__
from rotator.util.logs import get_logger
from rotator.util.retry import RetryPolicy, default_sleep


def _retry_after(exc: urllib.error.HTTPError) -> float | None:
    value = exc.headers.get("Retry-After") if exc.headers else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the policy's own backoff is close enough


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib would re-send a redirected POST as a bodiless GET to any host, with our
    Authorization and signature headers: a lost alert counted as delivered, and
    credentials handed to whoever answered. A 3xx is a failed delivery instead."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class JSONPoster:
    def __init__(
        self,
        base_url: str,
        service: str,
        timeout: float = 15.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = default_sleep,
        accepted: Callable[[int], bool] = lambda status: 200 <= status < 300,
        headers: Callable[[bytes], dict[str, str]] | None = None,
        ca_bundle: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.service = service
        self.timeout = timeout
        self.retry = retry or RetryPolicy(attempts=4, base=0.5, cap=8.0, retry_after_cap=30.0)
        self.sleep = sleep
        self.accepted = accepted
        self.headers = headers
        context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else None
        self.opener = urllib.request.build_opener(_NoRedirect, urllib.request.HTTPSHandler(context=context))
        self.monotonic = monotonic
        self.log = get_logger(f"rotator.{service.split()[0].lower()}")

    def post(self, path: str, body: dict[str, Any], kind: str, deadline: float | None = None) -> bool:
        """True once the receiver accepted. Bounded by ``attempts`` and by ``deadline``
        (monotonic): no retry waits past it. A 4xx (or a redirect) is final and logged."""
        data = json.dumps(body, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": f"rotator/{__version__}"}
        if self.headers is not None:
            headers.update(self.headers(data))
        wait: float | None = None
        for attempt in range(self.retry.attempts):
            if attempt:
                pause = self.retry.delay(attempt - 1, wait)
                if deadline is not None and self.monotonic() + pause > deadline:
                    self.log.error(f"{self.service} event not delivered within this pass's budget", kind=kind)
                    return False
                self.sleep(pause)
            wait = None
            req = urllib.request.Request(self.base_url + path, data=data, method="POST", headers=headers)
            try:
                with self.opener.open(req, timeout=self.timeout) as resp:
                    if self.accepted(resp.status):
                        return True
                    self.log.warning(f"unexpected {self.service} answer", status=resp.status, kind=kind)
                    return False
            except urllib.error.HTTPError as exc:
                text = exc.read().decode("utf-8", "replace")[:2000]
                if exc.code == 429 or exc.code >= 500:
                    wait = _retry_after(exc)
                    self.log.warning(f"{self.service} busy; retrying", status=exc.code, kind=kind, attempt=attempt + 1)
                    continue
                self.log.error(f"{self.service} rejected the event", status=exc.code, kind=kind, body=text)
                return False
            except (OSError, ValueError, http.client.HTTPException) as exc:  # resets, timeouts, garbage
                self.log.warning(
                    f"{self.service} unreachable; retrying", error=type(exc).__name__, kind=kind, attempt=attempt + 1
                )
                continue
        self.log.error(f"{self.service} event not delivered; will retry next pass", kind=kind)
        return False
