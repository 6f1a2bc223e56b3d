"""Loads the configuration: a YAML file, ``ROTATOR_*`` environment overrides, and errors
that name the file, the field and, for a typo, the key that was probably meant.

Kept apart from the schema so the schema stays a plain list of settings, and so loading
(file, environment) is the only part of configuration that touches the outside world.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from rotator.config.schema import Config

ENV_PREFIX = "ROTATOR_"


# Environment variables that are not config paths.
ENV_RESERVED = frozenset({"ROTATOR_CONFIG", "ROTATOR_E2E"})


class ConfigError(Exception):
    """Bad configuration; the message names the file and the field."""


def _set_path(tree: dict[str, Any], path: list[str], value: Any) -> None:
    node = tree
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """``ROTATOR_RENEWAL__RENEW_BEFORE=720h`` → ``{"renewal": {"renew_before": "720h"}}``."""
    return env_overrides_with_origin(environ)[0]


def env_overrides_with_origin(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The override tree, and which variable set each dotted path (for error messages).

    Only variables whose first segment names a top-level setting count: Kubernetes
    injects ``ROTATOR_SERVICE_HOST``, ``ROTATOR_PORT`` and friends for a Service called
    ``rotator``, and those must never abort a run. An empty value means "not set".
    """
    tree: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name in ENV_RESERVED or not raw.strip():
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p]
        if not path or path[0] not in Config.model_fields:
            continue
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        if not isinstance(value, bool | list | dict) and value is not None:
            # No setting is a number or a date: ROTATOR_CLUSTER_NAME=01 means the string
            # "01", not the integer 1 (which the string field would then reject).
            value = raw
        _set_path(tree, path, value)
        origin[".".join(path)] = name
    return tree, origin


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def load_config(path: str | None, environ: Mapping[str, str] | None = None) -> Config:
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    label = "defaults"
    if path:
        label = path
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: cannot read config: not UTF-8 text ({exc.reason})") from exc
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the config must be a mapping, got {type(loaded).__name__}")
        data = loaded
    overrides, origin = env_overrides_with_origin(environ)
    if overrides:
        data = _merge(data, overrides)
        label += " + ROTATOR_* environment"
    return parse_config(data, label, origin)


def parse_config(data: dict[str, Any], label: str = "config", origin: Mapping[str, str] | None = None) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = _format_loc(err["loc"], data)
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key" + _did_you_mean(str(err["loc"][-1]))
            elif msg.startswith("Value error, "):
                msg = msg[len("Value error, ") :]
            env = next((v for k, v in (origin or {}).items() if loc == k or loc.startswith(k + ".")), None)
            lines.append(f"  {loc}: {msg}" + (f" (from {env})" if env else ""))
        raise ConfigError(f"{label}: invalid configuration:\n" + "\n".join(lines)) from None


def _known_keys() -> set[str]:
    """Every key of every config section (the vocabulary a typo is matched against)."""
    seen: set[str] = set()
    stack: list[Any] = [Config]
    done: set[Any] = set()
    while stack:
        model = stack.pop()
        if model in done:
            continue
        done.add(model)
        for name, info in model.model_fields.items():
            seen.add(name)
            stack += _models_in(info.annotation)
    return seen


def _models_in(annotation: Any) -> list[Any]:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _did_you_mean(key: str) -> str:
    import difflib

    close = difflib.get_close_matches(key, sorted(_known_keys()), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _format_loc(loc: tuple[int | str, ...], data: Any) -> str:
    """``rules[0].issuer`` style, as the user wrote the file.

    Pydantic puts the discriminator value of a tagged union into the location
    (``issuers.x.ca.validity``); walk the input alongside and drop it, so the path is
    one the user can find.
    """
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and -len(node) <= part < len(node) else None
            continue
        if isinstance(node, dict) and part not in node and node.get("type") == part:
            continue  # the tag of a tagged union, not a key
        out += f".{part}" if out else part
        node = node.get(part) if isinstance(node, dict) else None
    return out or "(top level)"
