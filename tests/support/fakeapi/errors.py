"""`Status` objects shaped like the real API server's.

The point of the fake is that the client's error handling is exercised by the same bytes a
real cluster would send: the `kubernetes` client maps the HTTP code to an exception class and
callers read `reason`, `message` and `details` out of the body, so each helper here mirrors the
matching constructor in `k8s.io/apimachinery/pkg/api/errors` (message wording included).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

#: HTTP code → the `reason` the real server puts in a Status for it.
REASONS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiError(Exception):
    """An error the handler turns into a Status response (or a plain body, for the rare non-Status cases)."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        *,
        headers: Iterable[tuple[str, str]] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = dict(details) if details else None
        self.headers = list(headers)
        self.metadata = dict(metadata) if metadata else {}

    def status(self) -> dict[str, Any]:
        """The wire form, with the real server's key order and its habit of omitting empty fields."""
        doc: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": self.metadata, "status": "Failure"}
        if self.message:
            doc["message"] = self.message
        if self.reason:
            doc["reason"] = self.reason
        if self.details:
            doc["details"] = self.details
        doc["code"] = self.code
        return doc


def qualified(group: str, resource: str) -> str:
    """`schema.GroupResource.String()`: `secrets` for core, `gateways.networking.istio.io` otherwise."""
    return f"{resource}.{group}" if group else resource


def _details(group: str, kind: str, name: str | None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if name:
        out["name"] = name
    if group:
        out["group"] = group
    if kind:
        out["kind"] = kind
    out.update({k: v for k, v in extra.items() if v})
    return out


def not_found(group: str, resource: str, name: str) -> ApiError:
    """`errors.NewNotFound`: `secrets "x" not found`, details.kind is the *resource* (plural)."""
    return ApiError(
        404, "NotFound", f'{qualified(group, resource)} "{name}" not found', _details(group, resource, name)
    )


def path_not_found() -> ApiError:
    """What the server's final not-found handler answers for a path no API serves (e.g. a missing CRD)."""
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def already_exists(group: str, resource: str, name: str) -> ApiError:
    """`errors.NewAlreadyExists`."""
    msg = f'{qualified(group, resource)} "{name}" already exists'
    return ApiError(409, "AlreadyExists", msg, _details(group, resource, name))


CONFLICT_MODIFIED = "the object has been modified; please apply your changes to the latest version and try again"


def conflict(group: str, resource: str, name: str, why: str = CONFLICT_MODIFIED) -> ApiError:
    """`errors.NewConflict`: the optimistic-concurrency failure every read-modify-write loop must handle."""
    msg = f'Operation cannot be fulfilled on {qualified(group, resource)} "{name}": {why}'
    return ApiError(409, "Conflict", msg, _details(group, resource, name))


def forbidden(group: str, resource: str, name: str | None, why: str) -> ApiError:
    """`errors.NewForbidden` as used by the authorization filter."""
    if not resource:
        msg = f"forbidden: {why}"
    elif name:
        msg = f'{qualified(group, resource)} "{name}" is forbidden: {why}'
    else:
        msg = f"{qualified(group, resource)} is forbidden: {why}"
    return ApiError(403, "Forbidden", msg, _details(group, resource, name))


def invalid(group: str, kind: str, name: str, errors: list[Any]) -> ApiError:
    """`errors.NewInvalid`: details.kind is the *Kind* here, and causes list each field error."""
    texts: list[str] = []
    for e in errors:
        if str(e) not in texts:
            texts.append(str(e))
    agg = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    qkind = f"{kind}.{group}" if group else kind
    causes = [e.cause() for e in errors]
    return ApiError(422, "Invalid", f'{qkind} "{name}" is invalid: {agg}', _details(group, kind, name, causes=causes))


def bad_request(message: str) -> ApiError:
    """`errors.NewBadRequest` (no details)."""
    return ApiError(400, "BadRequest", message)


def internal(message: str) -> ApiError:
    """`errors.NewInternalError`."""
    return ApiError(500, "InternalError", f"Internal error occurred: {message}", {"causes": [{"message": message}]})


def too_many_requests(retry_after: int) -> ApiError:
    """The priority-and-fairness filter's 429, with the Retry-After header clients back off on."""
    return ApiError(
        429,
        "TooManyRequests",
        "Too many requests, please try again later.",
        {"retryAfterSeconds": retry_after},
        headers=[("Retry-After", str(retry_after))],
    )


def unsupported_media_type(accepted: Iterable[str]) -> ApiError:
    """415 as the patch handler sends it for a patch type the resource cannot take."""
    msg = "the body of the request was in an unknown format - accepted media types include: " + ", ".join(accepted)
    return ApiError(415, "UnsupportedMediaType", msg)


def method_not_allowed(message: str = "the server does not allow this method on the requested resource") -> ApiError:
    """405 for verbs the fake (or the resource) does not serve."""
    return ApiError(405, "MethodNotAllowed", message)


def expired(message: str, continue_token: str) -> ApiError:
    """410 for a continue token whose snapshot is gone, carrying the inconsistent-continue token."""
    return ApiError(410, "Expired", message, metadata={"continue": continue_token})


def unauthorized() -> ApiError:
    """401 exactly as the authentication filter writes it."""
    return ApiError(401, "Unauthorized", "Unauthorized")


def generic(code: int, message: str | None = None, retry_after: int | None = None) -> ApiError:
    """A Status for an injected fault of any code, with the reason and wording the real server uses for it."""
    reason = REASONS.get(code, "")
    details: dict[str, Any] = {}
    headers: list[tuple[str, str]] = []
    if retry_after is not None:
        details["retryAfterSeconds"] = retry_after
        headers.append(("Retry-After", str(retry_after)))
    if message is None:
        message = {
            429: "Too many requests, please try again later.",
            500: "Internal error occurred: injected fault",
            503: "the server is currently unable to handle the request",
            504: "the server was unable to return a response in the time allotted, but may still be processing "
            "the request",
            409: f"Operation cannot be fulfilled: {CONFLICT_MODIFIED}",
            403: "forbidden: injected fault",
            401: "Unauthorized",
            404: "the server could not find the requested resource",
        }.get(code, f"injected fault ({code})")
    if code == 500:
        details.setdefault("causes", [{"message": "injected fault"}])
    return ApiError(code, reason, message, details, headers=headers)


def to_json(obj: Any) -> bytes:
    """Compact JSON like Go's encoder (no spaces), UTF-8."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
