"""Typed access to fields of a raw object: each accessor either returns the shape asked
for or raises ``Malformed`` naming the field path, so a parser reads like the schema and
a wrong shape becomes one ``invalid-manifest`` finding, never a crash."""

from __future__ import annotations

from typing import Any

from rotator.findings import finding
from rotator.model import Finding, ObjectRef


class Malformed(Exception):
    """A field has the wrong type; the message names the field path."""


def as_map(value: Any, path: str, default: dict[str, Any] | None = None) -> dict[str, Any]:
    if value is None:
        return {} if default is None else default
    if not isinstance(value, dict):
        raise Malformed(f"{path}: expected a mapping, got {type(value).__name__}")
    return value


def as_list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Malformed(f"{path}: expected a list, got {type(value).__name__}")
    return value


def as_str(value: Any, path: str, default: str = "") -> str:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Malformed(f"{path}: expected a string, got {type(value).__name__}")
    return str(value)


def as_port(value: Any, path: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Malformed(f"{path}: expected an integer port, got {value!r}")
    return value


def as_str_map(value: Any, path: str) -> dict[str, str]:
    m = as_map(value, path)
    return {str(k): as_str(v, f"{path}.{k}") for k, v in m.items()}


def meta_map(value: Any, path: str, where: str, ref: ObjectRef, problems: list[Finding]) -> dict[str, str]:
    """Labels/annotations: scalar values are coerced (with a finding), so one unquoted
    ``true`` does not make rotator forget a Secret or a gateway workload exists."""
    out: dict[str, str] = {}
    for k, v in as_map(value, path).items():
        if isinstance(v, bool):
            out[str(k)] = "true" if v else "false"
        elif isinstance(v, int | float) or v is None:
            out[str(k)] = "" if v is None else str(v)
        else:
            out[str(k)] = as_str(v, f"{path}.{k}")
            continue
        problems.append(
            finding(
                "invalid-manifest",
                f"{where}: {ref}: {path}.{k} must be a string (quote it); read as {out[str(k)]!r}",
                ref,
                severity="warning",
            )
        )
    return out


def as_str_list(value: Any, path: str) -> tuple[str, ...]:
    items = as_list(value, path)
    for i, v in enumerate(items):
        if v is None:
            raise Malformed(f"{path}[{i}]: expected a string, got null")
    return tuple(as_str(v, f"{path}[{i}]") for i, v in enumerate(items))


def as_item(value: Any, path: str) -> dict[str, Any]:
    """A list element that must be a mapping (``servers: [null]`` is an error, not nothing)."""
    if not isinstance(value, dict):
        raise Malformed(f"{path}: expected a mapping, got {'null' if value is None else type(value).__name__}")
    return value


Parsed = tuple[str, Any]
