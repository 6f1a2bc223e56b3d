"""Parsers for the core kinds: Secrets (data decoded and checked here, once), ConfigMaps,
Pods and the controllers whose Pod templates say where a gateway runs."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from rotator.discover.wire.fields import Malformed, Parsed, as_list, as_map, as_str, meta_map
from rotator.findings import finding
from rotator.model import ConfigMap, Finding, ObjectRef, OwnerRef, Secret, Source, Workload

WORKLOAD_KINDS = frozenset({"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"})


def _decode_data(
    body: dict[str, Any], ref: ObjectRef, source: Source, binary_key: str = "data"
) -> tuple[dict[str, bytes], list[Finding]]:
    """``data`` is base64 and wins over nothing; ``stringData`` is merged over it, as the API server does."""
    out: dict[str, bytes] = {}
    problems: list[Finding] = []
    for k, v in as_map(body.get(binary_key), binary_key).items():
        if v is None:
            out[str(k)] = b""
            continue
        if not isinstance(v, str):
            raise Malformed(f"{binary_key}.{k}: expected a base64 string, got {type(v).__name__}")
        try:
            out[str(k)] = base64.b64decode("".join(v.split()), validate=True)
        except (binascii.Error, ValueError):
            problems.append(
                finding(
                    "invalid-manifest",
                    f"{source}: {ref}: {binary_key}.{k} is not valid base64; the key is left out",
                    ref,
                )
            )
    return out, problems


def parse_secret(body: dict[str, Any], meta: dict[str, Any], ns: str, source: Source) -> Parsed:
    ref = ObjectRef("Secret", ns, meta["name"])
    data, problems = _decode_data(body, ref, source)
    labels = meta_map(meta.get("labels"), "metadata.labels", str(source), ref, problems)
    annotations = meta_map(meta.get("annotations"), "metadata.annotations", str(source), ref, problems)
    for k, v in as_map(body.get("stringData"), "stringData").items():
        data[str(k)] = as_str(v, f"stringData.{k}").encode()
    owners = []
    for i, o in enumerate(as_list(meta.get("ownerReferences"), "metadata.ownerReferences")):
        opath = f"metadata.ownerReferences[{i}]"
        o = as_map(o, opath)
        owners.append(
            OwnerRef(
                api_version=as_str(o.get("apiVersion"), f"{opath}.apiVersion"),
                kind=as_str(o.get("kind"), f"{opath}.kind"),
                name=as_str(o.get("name"), f"{opath}.name"),
            )
        )
    secret = Secret(
        namespace=ns,
        name=meta["name"],
        type=as_str(body.get("type"), "type", "Opaque"),
        data=data,
        labels=labels,
        annotations=annotations,
        owners=tuple(owners),
        resource_version=as_str(meta.get("resourceVersion"), "metadata.resourceVersion"),
        source=source,
        invalid_base64=tuple(
            sorted(str(k) for k, v in as_map(body.get("data"), "data").items() if isinstance(v, str) and not _is_b64(v))
        ),
    )
    return "secrets", (secret, problems)


def _is_b64(value: str) -> bool:
    try:
        base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def parse_config_map(body: dict[str, Any], meta: dict[str, Any], ns: str, source: Source) -> Parsed:
    ref = ObjectRef("ConfigMap", ns, meta["name"])
    data = {str(k): as_str(v, f"data.{k}").encode() for k, v in as_map(body.get("data"), "data").items()}
    binary, problems = _decode_data(body, ref, source, "binaryData")
    data.update(binary)
    return "config_maps", (ConfigMap(ns, meta["name"], data, source), problems)


def parse_pod(body: dict[str, Any], meta: dict[str, Any], ns: str, source: Source) -> Parsed:
    problems: list[Finding] = []
    ref = ObjectRef("Pod", ns, meta["name"])
    labels = meta_map(meta.get("labels"), "metadata.labels", str(source), ref, problems)
    return "workloads", (Workload("Pod", ns, meta["name"], labels), problems)


def parse_controller(body: dict[str, Any], meta: dict[str, Any], ns: str, source: Source) -> Parsed:
    spec = as_map(body.get("spec"), "spec")
    template = as_map(spec.get("template"), "spec.template")
    tmeta = as_map(template.get("metadata"), "spec.template.metadata")
    problems: list[Finding] = []
    ref = ObjectRef(str(body["kind"]), ns, meta["name"])
    labels = meta_map(tmeta.get("labels"), "spec.template.metadata.labels", str(source), ref, problems)
    return "workloads", (Workload(str(body["kind"]), ns, meta["name"], labels), problems)
