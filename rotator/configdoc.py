"""Renders docs/configuration.md from the pydantic models, so the reference cannot drift.

python -m rotator.configdoc > docs/configuration.md
"""

from __future__ import annotations

import sys
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel

from rotator.config import ACMEIssuerConfig, CAIssuerConfig, Config

HEADER = """# Configuration reference

Generated from `rotator/config.py` by `python -m rotator.configdoc`; a test fails when
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


def render() -> str:
    parts = [HEADER]
    parts += _section("Top level", Config, "")
    for name, field in Config.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            parts += _section(f"`{name}`", ann, f"{name}.")
    parts += _section("`rules[]`", Config.model_fields["rules"].annotation.__args__[0], "rules[].")  # type: ignore[union-attr]
    parts += _section("`issuers.<name>` with `type: ca`", CAIssuerConfig, "")
    parts += _section("`issuers.<name>` with `type: acme`", ACMEIssuerConfig, "")
    return "\n".join(parts)


if __name__ == "__main__":
    sys.stdout.write(render())
