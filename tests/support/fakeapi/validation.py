"""Decoding and validation in the order, and with the wording, of the real server.

Two stages matter to a client because they fail differently:

* *decoding* (JSON → typed object) fails with **400 BadRequest** — a Secret value that is not
  base64 (`Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input
  byte 4`), a MicroTime without exactly six fractional digits, an unknown field under
  `fieldValidation=Strict`;
* *validation* fails with **422 Invalid** and field causes — a `kubernetes.io/tls` Secret
  without `tls.crt`, a bad name or label, a changed immutable field.

Only what rotator's objects can hit is modelled; see docs/testing-fake-apiserver.md.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import ApiError, bad_request
from .kinds import OBJECT_META_FIELDS, ResourceKind

MAX_SECRET_SIZE = 1024 * 1024
_MAP_FIELDS = frozenset({"data", "binaryData", "stringData"})
MAX_ANNOTATIONS_SIZE = 256 * 1024

_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_CONFIG_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")
_QUALIFIED_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
    "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
CONFIG_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
    "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)
QUALIFIED_NAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
    "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)

_TYPE_TEXT = {
    "Required": "Required value",
    "Invalid": "Invalid value",
    "Forbidden": "Forbidden",
    "TooLong": "Too long",
    "NotSupported": "Unsupported value",
    "Duplicate": "Duplicate value",
}
_OMIT = object()


class RawValue(str):
    """A bad value Go prints with %#v rather than %q (e.g. `0x0` for an unset resourceVersion)."""


@dataclass(frozen=True)
class FieldError:
    """`field.Error`: renders as `data[tls.crt]: Required value` and as a Status cause."""

    type: str
    field: str
    value: Any = _OMIT
    detail: str = ""

    def body(self) -> str:
        text = _TYPE_TEXT[self.type]
        if self.type in ("Invalid", "NotSupported", "Duplicate") and self.value is not _OMIT:
            v = self.value
            if v is None:
                text += ": null"
            elif isinstance(v, RawValue):
                text += f": {v}"
            elif isinstance(v, bool):
                text += f": {str(v).lower()}"
            elif isinstance(v, int | float):
                text += f": {v}"
            else:
                text += f": {json.dumps(str(v), ensure_ascii=False)}"
        if self.detail:
            text += f": {self.detail}"
        return text

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"

    def cause(self) -> dict[str, str]:
        return {"reason": f"FieldValue{self.type}", "message": self.body(), "field": self.field}


# ---------------------------------------------------------------- decoding


def _decode_error(rk: ResourceKind, version: str, why: str) -> ApiError:
    if not rk.builtin:
        return bad_request(why)
    return bad_request(f'{rk.kind} in version "{version}" cannot be handled as a {rk.kind}: {why}')


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if value is None:
        return "null"
    return "object"


def go_base64_error(text: str) -> int | None:
    """Offset Go's `base64.StdEncoding` reports for `text`, or None if it decodes."""
    clean = text.replace("\r", "").replace("\n", "")
    try:
        base64.b64decode(clean, validate=True)
        return None
    except (binascii.Error, ValueError):
        pass
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    for i, ch in enumerate(text):
        if ch in "\r\n":
            continue
        if ch == "=":
            return i
        if ch not in alphabet:
            return i
    return len(text) - len(clean) % 4


def parse_time(value: str, micro: bool) -> datetime | None:
    """Go's `time.Parse` with RFC3339 (Time) or RFC3339Micro (MicroTime: exactly six fractional digits)."""
    if micro:
        m = re.match(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\.(\d{6})(Z|[+-]\d{2}:\d{2})$", value)
    else:
        m = re.match(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$", value)
    if not m:
        return None
    frac = (m[2] or "0")[:6].ljust(6, "0")
    zone = "+00:00" if m[3] == "Z" else m[3]
    try:
        return datetime.fromisoformat(f"{m[1]}.{frac}{zone}").astimezone(UTC)
    except ValueError:
        return None


def format_time(value: datetime, micro: bool) -> str:
    """How the server writes Time (`...:05Z`, second precision) and MicroTime (`...:05.000000Z`) back."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


def _time_error(value: str, micro: bool) -> str:
    layout = "2006-01-02T15:04:05.000000Z07:00" if micro else "2006-01-02T15:04:05Z07:00"
    m = re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", value)
    if m and micro:
        return f'parsing time "{value}" as "{layout}": cannot parse "{value[m.end() :]}" as ".000000"'
    if m:
        return f'parsing time "{value}" as "{layout}": cannot parse "{value[m.end() :]}" as "Z07:00"'
    return f'parsing time "{value}" as "{layout}": cannot parse "{value}" as "2006"'


def _normalise_times(rk: ResourceKind, version: str, obj: dict[str, Any]) -> None:
    for path, kind in rk.time_fields:
        parts = path.split(".")
        parent: Any = obj
        for p in parts[:-1]:
            parent = parent.get(p) if isinstance(parent, dict) else None
        if not isinstance(parent, dict) or parent.get(parts[-1]) is None:
            continue
        raw = parent[parts[-1]]
        micro = kind == "MicroTime"
        if not isinstance(raw, str):
            why = f"json: cannot unmarshal {_json_type(raw)} into Go struct field {rk.kind}.{path} of type string"
            raise _decode_error(rk, version, why)
        parsed = parse_time(raw, micro)
        if parsed is None:
            raise _decode_error(rk, version, _time_error(raw, micro))
        parent[parts[-1]] = format_time(parsed, micro)


def _check_string_map(rk: ResourceKind, version: str, value: Any, where: str, go_type: str = "string") -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        why = f"json: cannot unmarshal {_json_type(value)} into Go struct field {where} of type map[string]{go_type}"
        raise _decode_error(rk, version, why)
    for v in value.values():
        if not isinstance(v, str):
            raise _decode_error(
                rk, version, f"json: cannot unmarshal {_json_type(v)} into Go struct field {where} of type {go_type}"
            )


def decode(
    rk: ResourceKind, version: str, body: Any, *, strict: bool, require_type_meta: bool = True
) -> tuple[dict[str, Any], list[str]]:
    """Body → stored shape (no apiVersion/kind), plus unknown-field warnings.  Raises 400 like the server."""
    expected = rk.api_version(version)
    if not isinstance(body, dict):
        raise bad_request(
            f"the object provided is unrecognized (must be of type {rk.kind}): couldn't get version/kind; "
            f"json parse error: json: cannot unmarshal {_json_type(body)} into Go value of type struct"
        )
    api_version, kind = body.get("apiVersion"), body.get("kind")
    if not rk.builtin and require_type_meta:
        raw = json.dumps(body, separators=(",", ":"))
        if not kind:
            raise bad_request(f"Object 'Kind' is missing in '{raw}'")
        if not api_version:
            raise bad_request(f"Object 'apiVersion' is missing in '{raw}'")
    if api_version and api_version != expected:
        raise bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version ({expected})"
        )
    if kind and kind != rk.kind:
        raise bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rk.kind})")

    obj = {k: v for k, v in body.items() if k not in ("apiVersion", "kind")}
    unknown: list[str] = []
    if rk.known_fields is not None:
        for key in list(obj):
            if key not in rk.known_fields:
                unknown.append(key)
                del obj[key]
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    if not isinstance(meta, dict):
        why = f"json: cannot unmarshal {_json_type(meta)} into Go struct field {rk.kind}.metadata of type v1.ObjectMeta"
        raise _decode_error(rk, version, why)
    meta = obj["metadata"] = dict(meta)
    for key in list(meta):
        if key not in OBJECT_META_FIELDS:
            unknown.append(f"metadata.{key}")
            del meta[key]
    for key in ("name", "generateName", "namespace", "uid", "resourceVersion"):
        if key in meta and meta[key] is not None and not isinstance(meta[key], str):
            why = (
                f"json: cannot unmarshal {_json_type(meta[key])} into Go struct field "
                f"ObjectMeta.metadata.{key} of type string"
            )
            raise _decode_error(rk, version, why)
    _check_string_map(rk, version, meta.get("labels"), "ObjectMeta.metadata.labels")
    _check_string_map(rk, version, meta.get("annotations"), "ObjectMeta.metadata.annotations")
    # Go's omitempty: null, {} and [] in ObjectMeta (and null in typed objects) are the same as absent.
    for key in [k for k, v in meta.items() if v is None or v == {} or v == []]:
        del meta[key]
    if rk.builtin:
        for key in [k for k, v in obj.items() if v is None or (k in _MAP_FIELDS and v == {})]:
            del obj[key]
    if unknown and strict:
        raise _decode_error(rk, version, "strict decoding error: " + ", ".join(f'unknown field "{u}"' for u in unknown))

    if rk.builtin:
        if rk.kind == "Secret":
            _check_string_map(rk, version, obj.get("data"), "Secret.data", "[]uint8")
            _check_string_map(rk, version, obj.get("stringData"), "Secret.stringData")
            for value in (obj.get("data") or {}).values():
                offset = go_base64_error(value)
                if offset is not None:
                    raise _decode_error(rk, version, f"illegal base64 data at input byte {offset}")
        elif rk.kind == "ConfigMap":
            _check_string_map(rk, version, obj.get("data"), "ConfigMap.data")
            _check_string_map(rk, version, obj.get("binaryData"), "ConfigMap.binaryData", "[]uint8")
            for value in (obj.get("binaryData") or {}).values():
                offset = go_base64_error(value)
                if offset is not None:
                    raise _decode_error(rk, version, f"illegal base64 data at input byte {offset}")
        elif rk.kind == "Lease":
            spec = obj.get("spec") or {}
            for key in ("leaseDurationSeconds", "leaseTransitions"):
                v = spec.get(key)
                if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                    why = (
                        f"json: cannot unmarshal {_json_type(v)} into Go struct field LeaseSpec.spec.{key} "
                        "of type int32"
                    )
                    raise _decode_error(rk, version, why)
        _normalise_times(rk, version, obj)
    return obj, [f'unknown field "{u}"' for u in unknown]


# ---------------------------------------------------------------- defaulting (registry strategies)


def prepare(rk: ResourceKind, obj: dict[str, Any], *, create: bool) -> None:
    """What PrepareForCreate/PrepareForUpdate and the v1 conversion do before validation."""
    meta = obj.setdefault("metadata", {})
    if rk.kind == "Secret" and rk.group == "":
        string_data = obj.pop("stringData", None) or {}
        if string_data:
            data = dict(obj.get("data") or {})
            for key, value in string_data.items():
                data[key] = base64.b64encode(value.encode()).decode()
            obj["data"] = data
        if not obj.get("type"):
            obj["type"] = "Opaque"
    elif rk.kind == "Namespace":
        labels = dict(meta.get("labels") or {})
        labels["kubernetes.io/metadata.name"] = meta.get("name", "")
        meta["labels"] = labels
        if create:
            obj["spec"] = {"finalizers": ["kubernetes"], **(obj.get("spec") or {})}
            obj["status"] = {"phase": "Active"}


# ---------------------------------------------------------------- validation


def _qualified_name_errors(value: str) -> list[str]:
    prefix, sep, name = value.rpartition("/")
    msgs: list[str] = []
    if sep and not prefix:
        msgs.append("prefix part must be non-empty")
    elif sep and (len(prefix) > 253 or not _SUBDOMAIN_RE.match(prefix)):
        msgs.append("prefix part " + SUBDOMAIN_MSG)
    if not name:
        msgs.append("name part must be non-empty")
    elif len(name) > 63:
        msgs.append("name part must be no more than 63 characters")
    elif not _QUALIFIED_NAME_RE.match(name):
        msgs.append(QUALIFIED_NAME_MSG)
    return msgs


def _name_errors(rk: ResourceKind, name: str) -> list[str]:
    if rk.kind == "Namespace":
        if len(name) > 63:
            return ["must be no more than 63 characters"]
        return [] if _LABEL_RE.match(name) else [LABEL_MSG]
    if rk.is_event:
        bad = [f"may not contain '{c}'" for c in ("/", "%") if c in name]
        return [f"may not be '{name}'"] if name in (".", "..") else bad
    if len(name) > 253:
        return ["must be no more than 253 characters"]
    return [] if _SUBDOMAIN_RE.match(name) else [SUBDOMAIN_MSG]


def validate_meta(rk: ResourceKind, obj: dict[str, Any]) -> list[FieldError]:
    """ObjectMeta rules every type shares: name, namespace, labels, annotations."""
    errs: list[FieldError] = []
    meta = obj.get("metadata") or {}
    name = meta.get("name") or ""
    if not name:
        errs.append(FieldError("Required", "metadata.name", detail="name or generateName is required"))
    else:
        errs += [FieldError("Invalid", "metadata.name", name, m) for m in _name_errors(rk, name)]
    generate = meta.get("generateName") or ""
    if generate:
        # ValidateObjectMeta checks generateName as a name prefix: only a trailing '-' is
        # masked (NameIsDNSSubdomain(prefix=true)), so "app-tls." is refused.
        masked = generate[:-1] if generate.endswith("-") else generate
        if masked and not _SUBDOMAIN_RE.match(masked):
            errs.append(FieldError("Invalid", "metadata.generateName", generate, SUBDOMAIN_MSG))
    ns = meta.get("namespace") or ""
    if rk.namespaced and ns and not _LABEL_RE.match(ns):
        errs.append(FieldError("Invalid", "metadata.namespace", ns, LABEL_MSG))
    for key, value in (meta.get("labels") or {}).items():
        errs += [FieldError("Invalid", "metadata.labels", key, m) for m in _qualified_name_errors(key)]
        if len(value) > 63:
            errs.append(FieldError("Invalid", "metadata.labels", value, "must be no more than 63 characters"))
        elif not _LABEL_VALUE_RE.match(value):
            errs.append(FieldError("Invalid", "metadata.labels", value, LABEL_VALUE_MSG))
    annotations = meta.get("annotations") or {}
    for key in annotations:
        errs += [FieldError("Invalid", "metadata.annotations", key, m) for m in _qualified_name_errors(key.lower())]
    if sum(len(k) + len(v) for k, v in annotations.items()) > MAX_ANNOTATIONS_SIZE:
        errs.append(
            FieldError("TooLong", "metadata.annotations", detail=f"must have at most {MAX_ANNOTATIONS_SIZE} bytes")
        )
    return errs


def _config_key_errors(key: str) -> list[str]:
    msgs = [] if _CONFIG_KEY_RE.match(key) else [CONFIG_KEY_MSG]
    if key == ".":
        msgs.append("must not be '.'")
    elif key == "..":
        msgs.append("must not be '..'")
    elif key.startswith(".."):
        msgs.append("must not start with '..'")
    return msgs


def _decoded_size(data: dict[str, str]) -> int:
    return sum(len(k) + len(base64.b64decode(v)) for k, v in data.items())


def _validate_secret(obj: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    data: dict[str, str] = obj.get("data") or {}
    for key in data:
        errs += [FieldError("Invalid", f"data[{key}]", key, m) for m in _config_key_errors(key)]
    if _decoded_size(data) > MAX_SECRET_SIZE:
        errs.append(FieldError("TooLong", "data", detail=f"must have at most {MAX_SECRET_SIZE} bytes"))
    kind = obj.get("type")
    required: tuple[str, ...] = ()
    if kind == "kubernetes.io/tls":
        required = ("tls.crt", "tls.key")
    elif kind == "kubernetes.io/dockerconfigjson":
        required = (".dockerconfigjson",)
    elif kind == "kubernetes.io/dockercfg":
        required = (".dockercfg",)
    elif kind == "kubernetes.io/ssh-auth":
        required = ("ssh-privatekey",)
    elif kind == "kubernetes.io/basic-auth" and "username" not in data and "password" not in data:
        required = ("username", "password")
    elif kind == "kubernetes.io/service-account-token":
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if not annotations.get("kubernetes.io/service-account.name"):
            errs.append(FieldError("Required", "metadata.annotations[kubernetes.io/service-account.name]"))
    errs += [FieldError("Required", f"data[{key}]") for key in required if key not in data]
    return errs


def _validate_configmap(obj: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    data: dict[str, str] = obj.get("data") or {}
    binary: dict[str, str] = obj.get("binaryData") or {}
    for key in data:
        errs += [FieldError("Invalid", f"data[{key}]", key, m) for m in _config_key_errors(key)]
    for key in binary:
        errs += [FieldError("Invalid", f"binaryData[{key}]", key, m) for m in _config_key_errors(key)]
        if key in data:
            errs.append(FieldError("Invalid", f"binaryData[{key}]", key, "duplicate of key present in data"))
    size = sum(len(k) + len(v) for k, v in data.items()) + _decoded_size(binary)
    if size > MAX_SECRET_SIZE:
        errs.append(FieldError("TooLong", "", detail=f"must have at most {MAX_SECRET_SIZE} bytes"))
    return errs


def _validate_lease(obj: dict[str, Any]) -> list[FieldError]:
    spec = obj.get("spec") or {}
    errs: list[FieldError] = []
    if spec.get("leaseDurationSeconds") is not None and spec["leaseDurationSeconds"] <= 0:
        errs.append(
            FieldError("Invalid", "spec.leaseDurationSeconds", spec["leaseDurationSeconds"], "must be greater than 0")
        )
    if spec.get("leaseTransitions") is not None and spec["leaseTransitions"] < 0:
        errs.append(
            FieldError(
                "Invalid", "spec.leaseTransitions", spec["leaseTransitions"], "must be greater than or equal to 0"
            )
        )
    return errs


def _validate_event(obj: dict[str, Any], strict: bool) -> list[FieldError]:
    """`ValidateEventCreate`: legacy rules always, the strict events.k8s.io/v1 rules for that API.

    `obj` is core-shaped, so field paths use the core names (`involvedObject`, `message`) even for
    events.k8s.io, exactly as the real messages do.
    """
    errs: list[FieldError] = []
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace") or ""
    involved = obj.get("involvedObject") or {}
    inv_ns = involved.get("namespace") or ""
    if not obj.get("eventTime"):
        if (not inv_ns and ns not in ("", "default")) or (inv_ns and ns != inv_ns):
            errs.append(FieldError("Invalid", "involvedObject.namespace", inv_ns, "does not match event.namespace"))
    else:
        if not inv_ns and ns not in ("default", "kube-system"):
            errs.append(FieldError("Invalid", "involvedObject.namespace", inv_ns, "does not match event.namespace"))
        controller = obj.get("reportingComponent") or ""
        if not controller:
            errs.append(FieldError("Required", "reportingController"))
        else:
            errs += [
                FieldError("Invalid", "reportingController", controller, m) for m in _qualified_name_errors(controller)
            ]
        for key, limit in (("reportingInstance", 128), ("action", 128), ("reason", 128)):
            value = obj.get(key) or ""
            if not value:
                errs.append(FieldError("Required", key))
            elif len(value) > limit:
                errs.append(FieldError("Invalid", key, "", f"can have at most {limit} characters"))
        if len(obj.get("message") or "") > 1024:
            errs.append(FieldError("Invalid", "message", "", "can have at most 1024 characters"))
    if not strict:
        return errs
    series = obj.get("series")
    if series is not None:
        if (series.get("count") or 0) < 2:
            errs.append(FieldError("Invalid", "series.count", "", "should be at least 2"))
        if not series.get("lastObservedTime"):
            errs.append(FieldError("Required", "series.lastObservedTime"))
    if not obj.get("eventTime"):
        errs.append(FieldError("Required", "eventTime"))
    if obj.get("type") not in ("Normal", "Warning"):
        errs.append(FieldError("Invalid", "type", "", f"has invalid value: {obj.get('type') or ''}"))
    for key in ("firstTimestamp", "lastTimestamp", "count", "source"):
        if obj.get(key):
            errs.append(FieldError("Invalid", key, "", "needs to be unset"))
    return errs


def validate(rk: ResourceKind, version: str, obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    """Validation for create (`old is None`) or update, returning the field errors the server would."""
    errs = validate_meta(rk, obj)
    if rk.builtin and rk.group == "" and rk.kind == "Secret":
        errs += _validate_secret(obj)
    elif rk.kind == "ConfigMap":
        errs += _validate_configmap(obj)
    elif rk.kind == "Lease":
        errs += _validate_lease(obj)
    elif rk.is_event:
        strict = rk.group == "events.k8s.io"
        errs += _validate_event(obj, strict)
        if old is not None and strict:
            for key in (
                "involvedObject",
                "reason",
                "message",
                "source",
                "firstTimestamp",
                "lastTimestamp",
                "count",
                "type",
                "eventTime",
                "action",
                "related",
                "reportingComponent",
                "reportingInstance",
            ):
                if obj.get(key) != old.get(key):
                    errs.append(FieldError("Invalid", key, obj.get(key), "field is immutable"))
    if old is None:
        return errs
    new_uid = (obj.get("metadata") or {}).get("uid")
    old_uid = (old.get("metadata") or {}).get("uid")
    if new_uid and new_uid != old_uid:
        errs.append(FieldError("Invalid", "metadata.uid", new_uid, "field is immutable"))
    if rk.kind in ("Secret", "ConfigMap") and rk.group == "":
        if old.get("immutable") is True:
            if obj.get("immutable") is not True:
                errs.append(FieldError("Forbidden", "immutable", detail="field is immutable when `immutable` is set"))
            for key in ("data", "binaryData"):
                if (obj.get(key) or {}) != (old.get(key) or {}):
                    errs.append(FieldError("Forbidden", key, detail="field is immutable when `immutable` is set"))
        if rk.kind == "Secret" and obj.get("type") != old.get("type"):
            errs.append(FieldError("Invalid", "type", obj.get("type"), "field is immutable"))
    return errs
