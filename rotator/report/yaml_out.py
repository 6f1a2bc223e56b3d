"""YAML for the report document, written directly.

The document is JSON-shaped (mappings, lists, strings, numbers, booleans, null), so a
small block-style writer is enough, and it is ~10× faster than PyYAML's representer,
which was most of ``-o yaml``'s cost at thousands of credentials (even with libyaml
emitting). Strings are plain where YAML reads them back as the same string, and
JSON-quoted (valid YAML double-quoted scalars) everywhere else."""

from __future__ import annotations

import json
import re
from typing import Any, TextIO

# A plain scalar YAML 1.1 and 1.2 both read back as this very string: no indicator
# first, no ": " or " #" inside, not a number, boolean, null or timestamp look-alike.
_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./@()+-]*( [A-Za-z0-9_./@()+-]+)*\Z")
_RESERVED = re.compile(
    r"(?i:y|n|yes|no|true|false|on|off|null|~|nan|inf|\.nan|\.inf)\Z|[-+]?[0-9._]+\Z|[0-9]{4}-[0-9]{2}-[0-9]{2}"
)


def scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    text = str(value)
    if _PLAIN.match(text) and not _RESERVED.match(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def dump(value: Any, out: TextIO) -> None:
    lines: list[str] = []
    _node(value, 0, lines)
    # In pieces: a reader that leaves early (`| head`) is then noticed as a broken pipe
    # inside the command, which exits 0 for it; one huge write may not notice at all.
    for i in range(0, len(lines), 1024):
        out.write("\n".join(lines[i : i + 1024]) + "\n")
    out.flush()


def _node(value: Any, indent: int, lines: list[str]) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            lines.append(pad + "{}")
            return
        for k, v in value.items():
            _entry(pad + scalar(k) + ":", v, indent, lines)
    elif isinstance(value, list):
        if not value:
            lines.append(pad + "[]")
            return
        for item in value:
            if isinstance(item, dict) and item:
                first = len(lines)
                _node(item, indent + 2, lines)
                lines[first] = pad + "- " + lines[first][indent + 2 :]
            elif isinstance(item, list) and item:
                lines.append(pad + "-")
                _node(item, indent + 2, lines)
            else:
                lines.append(pad + "- " + _inline(item))
    else:
        lines.append(pad + scalar(value))


def _entry(head: str, value: Any, indent: int, lines: list[str]) -> None:
    if isinstance(value, dict) and value:
        lines.append(head)
        _node(value, indent + 2, lines)
    elif isinstance(value, list) and value:
        lines.append(head)
        _node(value, indent, lines)  # a block sequence may sit at its key's indentation
    else:
        lines.append(head + " " + _inline(value))


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return scalar(value)
