"""Label and field selectors with the real server's grammar and semantics.

The subtle parts are the ones callers trip over: `!=` and `notin` also match objects that lack
the label, `in`/`=` require it, a label selector syntax error and an unsupported field label are
both 400 BadRequest, and each field selector is checked against the type's own list of labels.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_PREFIX = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_KEY_RE = re.compile(rf"^(({_PREFIX})/)?{_NAME}$")
_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_KEY_CHARS = r"[A-Za-z0-9./_-]+"
_TERM_SET = re.compile(rf"^\s*(?P<key>{_KEY_CHARS})\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)\s*$")
_TERM_CMP = re.compile(rf"^\s*(?P<key>{_KEY_CHARS})\s*(?P<op>==|=|!=|>|<)\s*(?P<value>[^\s=!<>(),]*)\s*$")
_TERM_EXISTS = re.compile(rf"^\s*(?P<not>!)?\s*(?P<key>{_KEY_CHARS})\s*$")


class SelectorError(ValueError):
    """A selector the server would refuse with 400 BadRequest."""


@dataclass(frozen=True)
class Requirement:
    """One comma-separated clause of a label selector."""

    key: str
    op: str  # "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op == "in":
            return present and labels[self.key] in self.values
        if self.op == "notin":
            return not present or labels[self.key] not in self.values
        if not present:
            return False
        try:
            have, want = int(labels[self.key]), int(self.values[0])
        except ValueError:
            return False
        return have > want if self.op == "gt" else have < want


def _check_key(key: str) -> None:
    if not _KEY_RE.match(key) or len(key.rpartition("/")[2]) > 63:
        raise SelectorError(
            f'unable to parse requirement: key: Invalid value: "{key}": name part must consist of alphanumeric '
            "characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        )


def _check_value(key: str, value: str) -> None:
    if not _VALUE_RE.match(value) or len(value) > 63:
        raise SelectorError(
            f'unable to parse requirement: values[0][{key}]: Invalid value: "{value}": a valid label must be an '
            "empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character"
        )


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    depth, start = 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def parse_label_selector(text: str) -> list[Requirement]:
    """Parse `a=b,c!=d,e in (x,y),f notin (z),g,!h,n>3` into requirements (all must match)."""
    if not text.strip():
        return []
    reqs: list[Requirement] = []
    for term in _split_top_level(text):
        if m := _TERM_SET.match(term):
            key = m["key"]
            values = tuple(v.strip() for v in m["values"].split(",")) if m["values"].strip() else ()
            if not values:
                raise SelectorError(
                    "unable to parse requirement: for 'in', 'notin' operators, values set can't be empty"
                )
            _check_key(key)
            for v in values:
                _check_value(key, v)
            reqs.append(Requirement(key, m["op"], values))
        elif m := _TERM_CMP.match(term):
            key, op, value = m["key"], m["op"], m["value"]
            _check_key(key)
            if op in (">", "<"):
                try:
                    int(value)
                except ValueError:
                    raise SelectorError(
                        f"unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer: {value}"
                    ) from None
                reqs.append(Requirement(key, "gt" if op == ">" else "lt", (value,)))
                continue
            _check_value(key, value)
            reqs.append(Requirement(key, "notin" if op == "!=" else "in", (value,)))
        elif m := _TERM_EXISTS.match(term):
            _check_key(m["key"])
            reqs.append(Requirement(m["key"], "!" if m["not"] else "exists"))
        else:
            stripped = term.strip() or "end of string"
            raise SelectorError(f"unable to parse requirement: found '{stripped}', expected: identifier")
    return reqs


def selector_from_label_selector(sel: Mapping[str, Any] | None) -> list[Requirement] | None:
    """A `metav1.LabelSelector` (matchLabels + matchExpressions) as requirements; None matches nothing."""
    if sel is None:
        return None
    reqs = [Requirement(k, "in", (str(v),)) for k, v in (sel.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in sel.get("matchExpressions") or []:
        reqs.append(Requirement(expr["key"], ops[expr["operator"]], tuple(expr.get("values") or ())))
    return reqs


def labels_match(reqs: list[Requirement], labels: Mapping[str, str] | None) -> bool:
    labels = labels or {}
    return all(r.matches(labels) for r in reqs)


@dataclass(frozen=True)
class FieldRequirement:
    """One clause of a field selector, already mapped to the storage path it reads."""

    label: str
    path: tuple[str, ...]
    negate: bool
    value: str

    def matches(self, obj: Mapping[str, Any]) -> bool:
        cur: Any = obj
        for part in self.path:
            cur = cur.get(part) if isinstance(cur, Mapping) else None
        if cur is None:
            have = ""
        elif isinstance(cur, bool):
            have = "true" if cur else "false"
        else:
            have = str(cur)
        return (have != self.value) if self.negate else (have == self.value)


def _split_unescaped(text: str, sep: str) -> list[str]:
    out: list[str] = []
    buf: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            buf.append("\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == sep:
            out.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    out.append("".join(buf))
    return out


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def parse_field_selector(
    text: str, labels: Mapping[str, str], unsupported: Callable[[str], str]
) -> list[FieldRequirement]:
    """Parse `metadata.name=x,type!=y`; a label the type does not index raises with the server's wording."""
    if not text.strip():
        return []
    reqs: list[FieldRequirement] = []
    for term in _split_unescaped(text, ","):
        m = re.match(r"^(?P<key>[^=!]+?)(?P<op>==|!=|=)(?P<value>.*)$", term)
        if not m:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        key = m["key"].strip()
        if key not in labels:
            raise SelectorError(unsupported(key))
        reqs.append(FieldRequirement(key, tuple(labels[key].split(".")), m["op"] == "!=", _unescape(m["value"])))
    return reqs


def exact_name(reqs: list[FieldRequirement]) -> str | None:
    """`metadata.name=x` in a list request: the real RequestInfo uses it as the name RBAC checks."""
    for r in reqs:
        if r.label == "metadata.name" and not r.negate:
            return r.value
    return None
