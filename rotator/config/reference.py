"""Renders docs/configuration.md from the pydantic models, so the reference cannot drift.

python -m rotator.config.reference > docs/configuration.md
"""

from __future__ import annotations

import sys
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel

from rotator.config.schema import ACMEIssuerConfig, CAIssuerConfig, Config

HEADER = """# Configuration reference

Generated from `rotator/config/schema.py` by `python -m rotator.config.reference`; a test fails when
this file and the models disagree. An example with comments is `config/rotator.yaml`.

rotator reads the file given by `--config` (or `$ROTATOR_CONFIG`). Unknown keys and
wrong types are errors that name the dotted path of the field, and `rotator` exits 3.

**Environment overrides.** Any field can be set with `ROTATOR_<PATH>`, nesting with a
double underscore: `ROTATOR_CLUSTER_NAME=prod`,
`ROTATOR_RENEWAL__RENEW_BEFORE=720h`, `ROTATOR_DISCOVERY__SCOPE_GATEWAY_TO_NAMESPACE=true`.
Booleans, lists and mappings are read as YAML (`true`, `[a, b]`); every other value is
taken literally, so `ROTATOR_CLUSTER_NAME=01` is the string `01`. Overrides win over the
file. `ROTATOR_CONFIG` names the file itself.

**Durations** are a number and a unit, `w`, `d`, `h`, `m` or `s`, combinable: `720h`,
`30d`, `1h30m`. **renew_before** also takes a percentage of the certificate's lifetime:
`33%`. Precedence: the Secret annotation `rotator.io/renew-before`, then the matching
rule's `renew_before`, then `renewal.renew_before`, then one third of the lifetime.
"""


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Annotated:
        return _type_name(args[0])
    if origin is None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return annotation.__name__
        return getattr(annotation, "__name__", str(annotation))
    if str(origin).endswith("Literal"):
        return " \\| ".join(f"`{a}`" for a in args)
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"map of {_type_name(args[0])} → {_type_name(args[1])}"
    names = [_type_name(a) for a in args if a is not type(None)]
    if len(names) == 1 and type(None) in args:
        return f"{names[0]} (optional)"
    return " or ".join(names)


def _section(title: str, model: type[BaseModel], prefix: str) -> list[str]:
    out = [f"## {title}", ""]
    doc = (model.__doc__ or "").strip()
    if doc and not doc.startswith("!!!"):
        out += [doc, ""]
    out += ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        default = (
            "required"
            if field.is_required()
            else (
                "`{}`"
                if field.default_factory is dict
                else "`[]`"
                if field.default_factory is list
                else "see below"
                if field.default_factory is not None
                else f"`{field.default!r}`"
            )
        )
        out.append(f"| `{prefix}{name}` | {_type_name(field.annotation)} | {default} | {field.description or ''} |")
    return [*out, ""]


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Sub-models behind a field, through Optional, list, dict and Annotated."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def _nested(model: type[BaseModel], prefix: str, seen: set[tuple[type[BaseModel], str]]) -> list[str]:
    """Every reachable model gets its own table, so no field is left undocumented."""
    out: list[str] = []
    for name, field in model.model_fields.items():
        for sub in _models_in(field.annotation):
            if sub in (CAIssuerConfig, ACMEIssuerConfig) or (sub, prefix + name) in seen:
                continue
            seen.add((sub, prefix + name))
            path = f"{prefix}{name}[]" if get_origin(field.annotation) is list else f"{prefix}{name}"
            out += _section(f"`{path}`", sub, f"{path}.")
            out += _nested(sub, f"{path}.", seen)
    return out


def render() -> str:
    seen: set[tuple[type[BaseModel], str]] = set()
    parts = [HEADER]
    parts += _section("Top level", Config, "")
    parts += _nested(Config, "", seen)
    for title, model in (("ca", CAIssuerConfig), ("acme", ACMEIssuerConfig)):
        parts += _section(f"`issuers.<name>` with `type: {title}`", model, "")
        parts += _nested(model, "issuers.<name>.", seen)
    return "\n".join(parts)


if __name__ == "__main__":
    sys.stdout.write(render())
