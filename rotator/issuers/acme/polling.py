"""Polling an authorization or an order until it settles, within one deadline for the order.

rotator polls itself, fast and bounded, because the library's ``poll_and_finalize`` sleeps
whole seconds; a CA's Retry-After is honoured but never beyond the deadline."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from typing import Any

import requests
from acme import client, messages

from rotator.issuers.base import IssuerError


@dataclass
class Poller:
    acme: client.ClientV2
    retry: Callable[[Callable[[], Any]], Any]  # the issuer's badNonce-retrying call
    sleep: Callable[[float], None]
    monotonic: Callable[[], float]
    interval: float
    deadline: float

    def authorization(self, authz: messages.AuthorizationResource) -> None:
        while True:
            response = self.retry(lambda: self.acme._post_as_get(authz.uri))
            body = messages.Authorization.from_json(response.json())
            if body.status == messages.STATUS_VALID:
                return
            if body.status == messages.STATUS_INVALID:
                detail = "; ".join(str(c.error) for c in body.challenges if c.error is not None)
                raise IssuerError(f"authorization for {body.identifier.value} failed: {detail or 'invalid'}")
            self._wait(response, f"authorization for {body.identifier.value}")

    def order(self, order: messages.OrderResource) -> str:
        """The full chain PEM once the order is valid."""
        while True:
            response = self.retry(lambda: self.acme._post_as_get(order.uri))
            body = messages.Order.from_json(response.json())
            if body.status == messages.STATUS_VALID and body.certificate:
                cert = self.retry(partial(self.acme._post_as_get, body.certificate))
                return str(cert.text)
            if body.status == messages.STATUS_INVALID:
                raise IssuerError(f"order failed: {body.error}")
            self._wait(response, "order")

    def _wait(self, response: requests.Response, what: str) -> None:
        remaining = self.deadline - self.monotonic()
        if remaining <= 0:
            raise IssuerError(f"timed out waiting for the {what}")
        delay = self.interval
        retry_after = response.headers.get("Retry-After")
        if retry_after:
            with suppress(ValueError):
                delay = max(delay, float(retry_after))
        self.sleep(min(delay, remaining))
