"""JSON merge patch (RFC 7386) and JSON patch (RFC 6902) over plain JSON values.

Strategic merge patch is deliberately *not* implemented: it is applied as a merge patch after
dropping its `$`-directives (see docs/testing-fake-apiserver.md).  For the objects rotator
patches (Secret data, labels, annotations) the two agree; they differ for lists merged by key
(containers by name, ports...), which the fake would replace wholesale.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

T = TypeVar("T")


class PatchError(ValueError):
    """A patch that parsed but cannot be applied (the server answers 422)."""


class PatchFormatError(ValueError):
    """A patch document that is not a valid patch at all (the server answers 400)."""


def clone(value: T) -> T:
    """Deep copy for JSON-shaped data; several times faster than `copy.deepcopy` (no memo)."""
    v: Any = value
    if type(v) is dict:
        return cast(T, {k: clone(x) for k, x in v.items()})
    if type(v) is list:
        return cast(T, [clone(x) for x in v])
    return value


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, `null` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return clone(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strip_strategic_directives(patch: Any) -> Any:
    """Remove `$patch`, `$retainKeys`, `$setElementOrder/...` and `$deleteFromPrimitiveList/...` keys."""
    if isinstance(patch, dict):
        return {k: strip_strategic_directives(v) for k, v in patch.items() if not k.startswith("$")}
    if isinstance(patch, list):
        return [strip_strategic_directives(v) for v in patch if not (isinstance(v, dict) and "$patch" in v)]
    return patch


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f'JSON pointer must be empty or start with a "/": {path!r}')
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], token: str, path: str, *, for_add: bool = False) -> int:
    if for_add and token == "-":
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f"Unable to access invalid index: {token}: {path}")
    idx = int(token)
    limit = len(container) if for_add else len(container) - 1
    if idx > limit:
        raise PatchError(f"Unable to access invalid index: {idx}: {path}")
    return idx


def _parent(doc: Any, tokens: list[str], op: str, path: str) -> Any:
    cur = doc
    for token in tokens[:-1]:
        if isinstance(cur, dict) and token in cur:
            cur = cur[token]
        elif isinstance(cur, list):
            cur = cur[_index(cur, token, path)]
        else:
            raise PatchError(f'{op} operation does not apply: doc is missing path: "{path}": missing value')
    return cur


def _get(doc: Any, path: str, op: str) -> Any:
    cur = doc
    for token in _pointer(path):
        if isinstance(cur, dict) and token in cur:
            cur = cur[token]
        elif isinstance(cur, list):
            cur = cur[_index(cur, token, path)]
        else:
            raise PatchError(f'{op} operation does not apply: doc is missing path: "{path}": missing value')
    return cur


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return clone(value)
    parent = _parent(doc, tokens, "add", path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = clone(value)
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, path, for_add=True), clone(value))
    else:
        raise PatchError(f'add operation does not apply: doc is missing path: "{path}": missing value')
    return doc


def _remove(doc: Any, path: str, op: str = "remove") -> tuple[Any, Any]:
    tokens = _pointer(path)
    if not tokens:
        raise PatchError(f"{op} operation does not apply: cannot remove the whole document")
    parent = _parent(doc, tokens, op, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f'{op} operation does not apply: doc is missing path: "{path}": missing value')
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, last, path))
    raise PatchError(f'{op} operation does not apply: doc is missing path: "{path}": missing value')


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 on a copy of `doc`.  Malformed operations raise PatchFormatError, failed ones PatchError."""
    if not isinstance(ops, list):
        raise PatchFormatError("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = clone(doc)
    for op in ops:
        if not isinstance(op, dict) or not isinstance(op.get("op"), str) or not isinstance(op.get("path"), str):
            raise PatchFormatError(f"invalid JSON patch operation: {op!r}")
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"{kind} operation does not apply: missing value")
        if kind == "add":
            doc = _add(doc, path, op["value"])
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            tokens = _pointer(path)
            if not tokens:
                doc = clone(op["value"])
                continue
            parent = _parent(doc, tokens, "replace", path)
            last = tokens[-1]
            if isinstance(parent, dict) and last in parent:
                parent[last] = clone(op["value"])
            elif isinstance(parent, list):
                parent[_index(parent, last, path)] = clone(op["value"])
            else:
                raise PatchError(f'replace operation does not apply: doc is missing key: "{path}": missing value')
        elif kind in ("move", "copy"):
            source = op.get("from")
            if not isinstance(source, str):
                raise PatchFormatError(f"{kind} operation is missing 'from'")
            if kind == "move":
                doc, value = _remove(doc, source, "move")
            else:
                value = clone(_get(doc, source, "copy"))
            doc = _add(doc, path, value)
        elif kind == "test":
            if _get(doc, path, "test") != op["value"]:
                raise PatchError(f'testing value "{path}" failed: test failed')
        else:
            raise PatchFormatError(f"Unexpected kind: {kind}")
    return doc
