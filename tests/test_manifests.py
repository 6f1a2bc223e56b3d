"""Reading manifests (rotator.discover.files) and turning them into the inventory (rotator.discover.wire)."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from rotator.discover.files import InputError, LoadResult, RawObject, expand_paths, load, parse_text
from rotator.discover.wire.inventory import build_inventory
from rotator.model import Finding, Inventory, Source
from tests.support import factory as f


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def dump(*docs: Any) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)


def names(result: LoadResult) -> list[str]:
    return [o.body["metadata"]["name"] for o in result.objects]


def sources(result: LoadResult) -> list[str]:
    return [str(o.source) for o in result.objects]


def parse(text: str, name: str = "in.yaml") -> LoadResult:
    result = LoadResult()
    parse_text(text, name, result)
    return result


def build(*docs: Any, default_namespace: str = "default") -> tuple[Inventory, list[Finding]]:
    raws = [RawObject(Source("test.yaml", i), d) for i, d in enumerate(docs)]
    return build_inventory(raws, default_namespace=default_namespace)


CM = f.config_map("cm", "istio-system", {"ca.crt": "x"})


# --- YAML streams --------------------------------------------------------------------


def test_multi_document_yaml_keeps_order_and_document_index(tmp_path: Path) -> None:
    p = write(tmp_path / "all.yaml", dump(f.secret("s1"), f.gateway("gw", []), CM))
    result = load([str(p)])
    assert result.errors == []
    assert names(result) == ["s1", "gw", "cm"]
    assert sources(result) == [f"{p}#1", f"{p}#2", f"{p}#3"]


def test_document_markers_and_empty_documents() -> None:
    text = "---\n" + dump(f.secret("a")) + "---\n# only a comment\n---\n---\n" + dump(f.secret("b")) + "---\n"
    result = parse(text)
    assert result.errors == []
    assert names(result) == ["a", "b"]
    # empty documents are skipped but still counted, like yaml.safe_load_all does
    assert sources(result) == ["in.yaml#1", "in.yaml#4"]
    assert len(list(yaml.safe_load_all(text))) == 5


def test_leading_comment_header_does_not_shift_document_indices() -> None:
    text = "# Copyright header\n# more header\n\n---\n" + dump(f.secret("a")) + "---\n" + dump(f.secret("b"))
    result = parse(text)
    assert names(result) == ["a", "b"]
    assert sources(result) == ["in.yaml#1", "in.yaml#2"]


def test_content_on_the_document_marker_line() -> None:
    result = parse("--- {apiVersion: v1, kind: Secret, metadata: {name: a}}\n--- {kind: x}\n")
    assert result.errors == []
    assert [o.body.get("kind") for o in result.objects] == ["Secret", "x"]
    assert sources(result) == ["in.yaml#1", "in.yaml#2"]


def test_crlf_line_endings() -> None:
    text = dump(f.secret("a")).replace("\n", "\r\n") + "---\r\n" + dump(f.secret("b")).replace("\n", "\r\n")
    result = parse(text)
    assert result.errors == []
    assert names(result) == ["a", "b"]


def test_broken_document_in_the_middle_is_reported_and_neighbours_load(tmp_path: Path) -> None:
    broken = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: [unclosed\n"
    p = write(tmp_path / "mixed.yaml", dump(f.secret("before")) + "---\n" + broken + "---\n" + dump(f.secret("after")))
    result = load([str(p)])
    assert names(result) == ["before", "after"]
    assert sources(result) == [f"{p}#1", f"{p}#3"]
    assert len(result.errors) == 1
    err = result.errors[0]
    assert err.source == Source(str(p), 1)
    assert str(err.source) == f"{p}#2"
    assert "invalid YAML" in err.message
    # a line of the file (as an editor shows it): the flow sequence runs off the end of the document
    first = dump(f.secret("before")).count("\n") + 2  # the broken document's first line
    assert f"line {first + 4}," in err.message


def test_broken_first_and_last_documents() -> None:
    text = "a: b: c\n---\n" + dump(f.secret("mid")) + "---\nkey: 'unterminated\n"
    result = parse(text)
    assert names(result) == ["mid"]
    assert [str(e.source) for e in result.errors] == ["in.yaml#1", "in.yaml#3"]
    assert "line 1" in result.errors[0].message


def test_tab_indentation_error_names_line() -> None:
    result = parse(dump(f.secret("ok")) + "---\nmetadata:\n\tname: x\n")
    assert names(result) == ["ok"]
    assert len(result.errors) == 1
    assert str(result.errors[0].source) == "in.yaml#2"
    tab_line = dump(f.secret("ok")).count("\n") + 3  # the file's line, not the document's
    assert f"line {tab_line}," in result.errors[0].message


@pytest.mark.parametrize(
    "text",
    [
        "a: !!int abc\n",
        "a: !!float x\n",
        "a: !!timestamp 2020-13-45\n",
        "[" * 5000,
        '{"a":' * 5000,
        "a: !!python/object:os.system x\n",
        "? [a]\n: b\n",
    ],
)
def test_pathological_documents_are_errors_not_exceptions(text: str) -> None:
    result = parse(dump(f.secret("ok")) + "---\n" + text)
    assert names(result) == ["ok"]
    assert len(result.errors) == 1
    assert str(result.errors[0].source) == "in.yaml#2"
    assert result.errors[0].message.startswith("invalid YAML")


@pytest.mark.parametrize(
    ("text", "what"),
    [("- a\n- b\n", "a list"), ("just text\n", "a string"), ("42\n", "a number"), ("true\n", "a boolean")],
)
def test_non_mapping_document(text: str, what: str) -> None:
    result = parse(dump(f.secret("ok")) + "---\n" + text)
    assert names(result) == ["ok"]
    assert len(result.errors) == 1
    assert str(result.errors[0].source) == "in.yaml#2"
    assert "expected a Kubernetes object" in result.errors[0].message
    assert what in result.errors[0].message


def test_unquoted_timestamps_stay_strings() -> None:
    """Kubernetes' YAML decoder keeps them as strings; a datetime would make the Gateway invalid."""
    gw = f.gateway("gw", [f.server(["a.example.com"], "a-tls")])
    text = dump(gw).replace("metadata:\n", "metadata:\n  creationTimestamp: 2024-01-02T03:04:05Z\n", 1)
    text += "---\n" + dump(f.config_map("cm", "ns", {"day": "x"})).replace("day: x", "day: 2024-01-02")
    result = parse(text)
    assert result.objects[0].body["metadata"]["creationTimestamp"] == "2024-01-02T03:04:05Z"
    inv, findings = build_inventory(result.objects)
    assert findings == []
    assert inv.istio_gateways[0].creation == "2024-01-02T03:04:05Z"
    assert inv.config_maps[0].data == {"day": b"2024-01-02"}


# --- Lists ----------------------------------------------------------------------------


def test_kind_list_items_are_objects_with_the_list_source() -> None:
    doc = {"apiVersion": "v1", "kind": "List", "items": [f.secret("s1"), f.gateway("gw", [])]}
    result = parse(dump(f.secret("first"), doc))
    assert result.errors == []
    assert names(result) == ["first", "s1", "gw"]
    assert sources(result) == ["in.yaml#1", "in.yaml#2", "in.yaml#2"]


def test_typed_list_items() -> None:
    doc = {"apiVersion": "v1", "kind": "SecretList", "metadata": {}, "items": [f.secret("a"), f.secret("b")]}
    result = parse(dump(doc))
    assert names(result) == ["a", "b"]
    inv, findings = build_inventory(result.objects)
    assert findings == []
    assert [s.name for s in inv.secrets] == ["a", "b"]


def test_non_mapping_list_item_is_reported_and_others_kept() -> None:
    doc = {"apiVersion": "v1", "kind": "List", "items": [f.secret("a"), "oops", f.secret("b")]}
    result = parse(dump(doc))
    assert names(result) == ["a", "b"]
    assert len(result.errors) == 1
    assert str(result.errors[0].source) == "in.yaml#1"
    assert "List item 1" in result.errors[0].message
    assert "a string" in result.errors[0].message


# --- JSON -----------------------------------------------------------------------------


def test_json_object_file(tmp_path: Path) -> None:
    p = write(tmp_path / "secret.json", json.dumps(f.secret("js"), indent=2))
    result = load([str(p)])
    assert result.errors == []
    assert names(result) == ["js"]
    assert sources(result) == [f"{p}#1"]


def test_json_list_file(tmp_path: Path) -> None:
    doc = {"apiVersion": "v1", "kind": "List", "items": [f.secret("a"), CM]}
    p = write(tmp_path / "list.json", json.dumps(doc))
    result = load([str(p)])
    assert result.errors == []
    assert names(result) == ["a", "cm"]


def test_json_top_level_array_is_reported(tmp_path: Path) -> None:
    p = write(tmp_path / "array.json", json.dumps([f.secret("a")]))
    result = load([str(p)])
    assert result.objects == []
    assert len(result.errors) == 1
    assert "a list" in result.errors[0].message


def test_broken_json_is_reported(tmp_path: Path) -> None:
    p = write(tmp_path / "broken.json", '{"apiVersion": "v1", "kind": ')
    result = load([str(p)])
    assert result.objects == []
    assert [str(e.source) for e in result.errors] == [f"{p}#1"]


# --- stdin, files and folders ----------------------------------------------------------


def test_stdin() -> None:
    result = load(["-"], stdin=io.StringIO(dump(f.secret("a"), f.secret("b"))))
    assert names(result) == ["a", "b"]
    assert sources(result) == ["<stdin>#1", "<stdin>#2"]


def test_stdin_json() -> None:
    result = load(["-"], stdin=io.StringIO(json.dumps(f.secret("a"))))
    assert names(result) == ["a"]


def test_stdin_unavailable() -> None:
    with pytest.raises(InputError, match="standard input"):
        load(["-"])


def test_repeated_paths_keep_command_line_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "b.yaml", dump(f.secret("from-b")))
    write(tmp_path / "a.yaml", dump(f.secret("from-a")))
    write(tmp_path / "dir" / "c.yml", dump(f.secret("from-c")))
    monkeypatch.chdir(tmp_path)
    seen: list[str] = []
    result = load(["b.yaml", "a.yaml", "dir"], stdin=io.StringIO(""), progress=seen.append)
    assert names(result) == ["from-b", "from-a", "from-c"]
    # relative paths are reported relative, as the user typed them
    assert sources(result) == ["b.yaml#1", "a.yaml#1", "dir/c.yml#1"]
    assert seen == ["b.yaml", "a.yaml", "dir/c.yml"]


def test_folder_is_walked_recursively_for_manifest_suffixes_in_sorted_order(tmp_path: Path) -> None:
    root = tmp_path / "manifests"
    for rel in ["z.yaml", "a/b/deep.YML", "a/x.Json", "m.yml", "UPPER.YAML"]:
        write(root / rel, json.dumps(f.secret(Path(rel).stem.lower())))
    for rel in ["notes.txt", "README.md", "old.yaml.bak", "a/kustomization", "yaml", "a/b/c.jsonl"]:
        write(root / rel, "apiVersion: v1\nkind: Secret\nmetadata: {name: must-not-load}\n")
    (root / "dir.yaml").mkdir()  # a folder with a manifest suffix is walked, not read

    expected = sorted(str(root / rel) for rel in ["z.yaml", "a/b/deep.YML", "a/x.Json", "m.yml", "UPPER.YAML"])
    assert expand_paths([str(root)]) == expected
    result = load([str(root)])
    assert result.errors == []
    assert "must-not-load" not in names(result)
    assert [o.source.path for o in result.objects] == expected


def test_file_given_explicitly_is_read_whatever_its_suffix(tmp_path: Path) -> None:
    p = write(tmp_path / "manifest.txt", dump(f.secret("txt")))
    assert names(load([str(p)])) == ["txt"]


def test_missing_path_raises_naming_it(tmp_path: Path) -> None:
    good = write(tmp_path / "good.yaml", dump(f.secret("a")))
    missing = tmp_path / "nope" / "gone.yaml"
    with pytest.raises(InputError) as info:
        load([str(good), str(missing)])
    assert str(missing) in str(info.value)
    assert "no such file" in str(info.value)


def test_undecodable_file_is_reported_and_the_other_files_still_load(tmp_path: Path) -> None:
    write(tmp_path / "a-binary.yaml", b"\xff\xfe\x00\x81garbage")
    write(
        tmp_path / "b-latin1.yaml", "# caf\xe9\napiVersion: v1\nkind: Secret\nmetadata: {name: x}\n".encode("latin-1")
    )
    write(tmp_path / "c-good.yaml", b"apiVersion: v1\nkind: Secret\nmetadata: {name: ok}\n")
    result = load([str(tmp_path)])
    assert [o.body["metadata"]["name"] for o in result.objects] == ["ok"]
    assert sorted(e.source.path.rsplit("/", 1)[-1] for e in result.errors) == ["a-binary.yaml", "b-latin1.yaml"]
    assert all("not UTF-8" in e.message for e in result.errors)


def test_bad_tag_values_never_crash_and_never_echo_the_value() -> None:
    secret_text = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg"
    text = (
        'apiVersion: v1\nkind: Secret\nmetadata: {name: a}\nstringData: {tls.key: !!int "' + secret_text + '"}\n'
        '---\napiVersion: v1\nkind: Secret\nmetadata: {name: b}\ndata: {a: !!timestamp "2024-13-99x"}\n'
        "---\napiVersion: v1\nkind: Secret\nmetadata: {name: c}\n"
    )
    result = LoadResult()
    parse_text(text, "t.yaml", result)
    assert [o.body["metadata"]["name"] for o in result.objects] == ["c"]
    assert [e.source.document for e in result.errors] == [0, 1]
    assert not any(secret_text[:12] in e.message for e in result.errors)


# --- inventory: kinds we ignore --------------------------------------------------------


def test_unknown_kinds_and_api_versions_are_ignored_silently() -> None:
    inv, findings = build(
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {}},  # would be malformed if we parsed it
        {"apiVersion": "example.com/v1", "kind": "Gateway", "metadata": {"name": "other"}, "spec": "junk"},
        {"apiVersion": "networking.istio.io/v2", "kind": "Gateway", "metadata": {"name": "future"}},
        {"apiVersion": "apps/v2", "kind": "Deployment", "metadata": {"name": "d"}},
        {"apiVersion": "v2", "kind": "Secret", "metadata": {"name": "s"}},
        {"apiVersion": "networking.istio.io/v1", "kind": "Sidecar", "metadata": {"name": "sc"}},
        f.secret("kept"),
    )
    assert findings == []
    assert [s.name for s in inv.secrets] == ["kept"]
    assert inv.istio_gateways == ()
    assert inv.workloads == ()


def test_object_without_api_version_or_kind_is_reported() -> None:
    inv, findings = build({"metadata": {"name": "x"}}, {"apiVersion": 1, "kind": "Secret"}, f.secret("kept"))
    assert [x.code for x in findings] == ["invalid-manifest", "invalid-manifest"]
    assert "test.yaml#1" in findings[0].message
    assert "test.yaml#2" in findings[1].message
    assert [s.name for s in inv.secrets] == ["kept"]


# --- inventory: malformed objects ------------------------------------------------------

GOOD_GW = f.gateway("good-gw", [f.server(["a.example.com"], "a-tls")])


def _gw(name: str, **spec: Any) -> dict[str, Any]:
    gw = f.gateway(name, [f.server(["a.example.com"], "a-tls")])
    gw["spec"].update(spec)
    return gw


def _bad_port() -> dict[str, Any]:
    gw = f.gateway("bad-port", [f.server(["a.example.com"], "a-tls")])
    gw["spec"]["servers"][0]["port"]["number"] = "443"
    return gw


def _no_name() -> dict[str, Any]:
    s = f.secret("x")
    del s["metadata"]["name"]
    return s


def test_malformed_objects_are_findings_naming_source_object_and_field(tmp_path: Path) -> None:
    docs = [
        f.secret("good-secret", data={"tls.crt": b"c"}),
        _gw("servers-not-list", servers={"port": 443}),
        GOOD_GW,
        _bad_port(),
        _no_name(),
        _gw("selector-not-map", selector=["istio", "ingressgateway"]),
        f.config_map("good-cm", "istio-system", {"ca.crt": "x"}),
    ]
    p = write(tmp_path / "in.yaml", dump(*docs))
    loaded = load([str(p)])
    assert loaded.errors == []
    inv, findings = build_inventory(loaded.objects)
    assert all(x.code == "invalid-manifest" and x.severity == "error" for x in findings)
    messages = [x.message for x in findings]
    assert len(messages) == 4
    assert messages[0].startswith(f"{p}#2: Gateway istio-system/servers-not-list: spec.servers:")
    assert "expected a list" in messages[0]
    assert messages[1].startswith(f"{p}#4: Gateway istio-system/bad-port: spec.servers[0].port.number:")
    assert "'443'" in messages[1]
    assert messages[2].startswith(f"{p}#5: Secret (unnamed): metadata.name:")
    assert messages[3].startswith(f"{p}#6: Gateway istio-system/selector-not-map: spec.selector:")
    assert findings[0].object is not None and findings[0].object.name == "servers-not-list"
    assert findings[0].object.kind == "Gateway" and findings[0].object.namespace == "istio-system"
    # everything else is still there
    assert [g.name for g in inv.istio_gateways] == ["good-gw"]
    assert [s.name for s in inv.secrets] == ["good-secret"]
    assert [c.name for c in inv.config_maps] == ["good-cm"]


def test_invalid_base64_drops_only_that_key() -> None:
    s = f.secret("app-tls", data={"tls.crt": b"cert", "tls.key": b"key"})
    s["data"]["tls.key"] = "not base64!!"
    inv, findings = build(f.secret("other"), s)
    assert [x.code for x in findings] == ["invalid-manifest"]
    msg = findings[0].message
    assert msg.startswith("test.yaml#2: Secret istio-system/app-tls: data.tls.key")
    assert "base64" in msg
    secret = inv.secret("istio-system", "app-tls")
    assert secret is not None
    assert secret.data == {"tls.crt": b"cert"}
    assert inv.secret("istio-system", "other") is not None


def _with(obj: dict[str, Any], *path_and_value: Any) -> dict[str, Any]:
    *path, value = path_and_value
    node = obj
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return obj


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        (_with(f.secret("s"), "data", "tls.crt", 5), "data.tls.crt"),
        (_with(f.secret("s"), "data", ["a"]), "data:"),
        (_with(f.secret("s"), "stringData", {"k": ["x"]}), "stringData.k"),
        (_with(f.secret("s"), "metadata", "labels", {"a": True}), "metadata.labels.a"),
        (_with(f.secret("s"), "metadata", "ownerReferences", [{"kind": ["x"]}]), "metadata.ownerReferences[0].kind"),
        (_with(f.secret("s"), "metadata", "ownerReferences", ["x"]), "metadata.ownerReferences[0]:"),
        (_with(f.secret("s"), "metadata", "namespace", 7), "metadata.namespace"),
        (_with(f.config_map("c", "ns", {}), "data", {"k": {"x": 1}}), "data.k"),
        (_with(f.config_map("c", "ns", {}), "binaryData", {"k": 1}), "binaryData.k"),
        (_with(GOOD_GW | {}, "spec", "nope"), "spec:"),
        (_gw("g", servers=["x"]), "spec.servers[0]:"),
        (_gw("g", servers=[{"hosts": "a.example.com"}]), "spec.servers[0].hosts"),
        (_gw("g", servers=[{"hosts": [["a"]]}]), "spec.servers[0].hosts[0]"),
        (_gw("g", servers=[{"tls": "SIMPLE"}]), "spec.servers[0].tls"),
        (_gw("g", servers=[{"port": {"number": True}}]), "spec.servers[0].port.number"),
        (_gw("g", selector={"istio": {"x": 1}}), "spec.selector.istio"),
        (
            f.virtual_service("vs", "ns", ["a"], http=[{"mirrors": [{"destination": "x"}]}]),
            "spec.http[0].mirrors[0].destination",
        ),
        (f.virtual_service("vs", "ns", ["a"], http=[{"mirror": {"host": ["h"]}}]), "spec.http[0].mirror.host"),
        (
            f.virtual_service("vs", "ns", ["a"], http=[{"route": [{"destination": 1}]}]),
            "spec.http[0].route[0].destination",
        ),
        (f.destination_rule("dr", "ns", "h", ["v1"]) | {"spec": {"subsets": "v1"}}, "spec.subsets"),
        (
            f.kube_gateway("kg", "ns", [], spec_tls={"frontend": {"perPort": [{"port": "443", "tls": {}}]}}),
            "spec.tls.frontend.perPort[0].port",
        ),
        (
            f.kube_gateway("kg", "ns", [f.listener("l", "h", refs=["x"])]),  # type: ignore[list-item]
            "spec.listeners[0].tls.certificateRefs[0]",
        ),
        (f.reference_grant("rg", "ns", "other") | {"spec": {"to": [{"name": 5.5j}]}}, "spec.to[0].name"),
        (
            _with(f.deployment("d", "ns", {}), "spec", "template", "metadata", "labels", ["x"]),
            "spec.template.metadata.labels",
        ),
    ],
)
def test_malformed_field_paths(obj: dict[str, Any], field: str) -> None:
    inv, findings = build(f.secret("bystander"), obj)
    assert [x.code for x in findings] == ["invalid-manifest"], findings
    msg = findings[0].message
    name = obj["metadata"]["name"]
    assert msg.startswith(f"test.yaml#2: {obj['kind']} ")
    assert f"/{name}: " in msg
    assert field in msg
    assert inv.secret("istio-system", "bystander") is not None


# --- inventory: contents -----------------------------------------------------------------


def test_secret_data_and_string_data() -> None:
    s = f.secret("s", data={"tls.crt": b"from-data", "tls.key": b"key-from-data"}, type_="kubernetes.io/tls")
    s["stringData"] = {"tls.key": "key-from-stringData", "ca.crt": "ca"}
    s["data"]["wrapped"] = "aGVs\n bG8g\nd29y bGQ="  # base64 wrapped over lines, as some tools write it
    s["data"]["empty"] = None
    inv, findings = build(s)
    assert findings == []
    secret = inv.secret("istio-system", "s")
    assert secret is not None
    assert secret.type == "kubernetes.io/tls"
    assert secret.data == {
        "tls.crt": b"from-data",
        "tls.key": b"key-from-stringData",  # stringData wins, as the API server merges it
        "ca.crt": b"ca",
        "wrapped": b"hello world",
        "empty": b"",
    }
    assert secret.source == Source("test.yaml", 0)


def test_secret_defaults_and_metadata() -> None:
    s = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "s",
            "labels": {"app": "web", "n": 1},
            "annotations": {"rotator.io/renew-before": "720h"},
            "ownerReferences": [{"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "name": "c"}],
            "resourceVersion": "42",
        },
    }
    inv, findings = build(s)
    # an unquoted number in a label is coerced, with a warning naming the field
    assert [(x.code, x.severity) for x in findings] == [("invalid-manifest", "warning")]
    assert "metadata.labels.n" in findings[0].message
    (secret,) = inv.secrets
    assert secret.type == "Opaque"
    assert secret.data == {}
    assert secret.labels == {"app": "web", "n": "1"}
    assert secret.annotations == {"rotator.io/renew-before": "720h"}
    assert [(o.api_version, o.kind, o.name) for o in secret.owners] == [("cert-manager.io/v1", "Certificate", "c")]
    assert secret.resource_version == "42"


def test_config_map_data_and_binary_data() -> None:
    cm = f.config_map("cm", "ns", {"ca.crt": "PEM TEXT"})
    cm["binaryData"] = {"bin": f.b64(b"\x00\x01binary")}
    inv, findings = build(cm)
    assert findings == []
    config_map = inv.config_map("ns", "cm")
    assert config_map is not None
    assert config_map.data == {"ca.crt": b"PEM TEXT", "bin": b"\x00\x01binary"}


def test_config_map_bad_binary_data_is_a_finding() -> None:
    cm = f.config_map("cm", "ns", {"a": "x"})
    cm["binaryData"] = {"bin": "%%%"}
    inv, findings = build(cm)
    assert [x.code for x in findings] == ["invalid-manifest"]
    assert "ConfigMap ns/cm" in findings[0].message
    assert "binaryData.bin" in findings[0].message
    config_map = inv.config_map("ns", "cm")
    assert config_map is not None and config_map.data == {"a": b"x"}


def test_namespace_defaulting() -> None:
    no_ns = f.secret("s")
    del no_ns["metadata"]["namespace"]
    empty_ns = f.gateway("gw", [])
    empty_ns["metadata"]["namespace"] = ""
    bad = _gw("bad", servers="x")
    del bad["metadata"]["namespace"]
    inv, findings = build(no_ns, empty_ns, f.secret("explicit", namespace="prod"), bad, default_namespace="team-a")
    assert [(s.namespace, s.name) for s in inv.secrets] == [("team-a", "s"), ("prod", "explicit")]
    assert [(g.namespace, g.name) for g in inv.istio_gateways] == [("team-a", "gw")]
    assert "Gateway team-a/bad" in findings[0].message
    assert findings[0].object is not None and findings[0].object.namespace == "team-a"
    inv_default, _ = build(no_ns)
    assert inv_default.secrets[0].namespace == "default"


def test_istio_gateway_fields() -> None:
    gw = f.gateway(
        "gw",
        [f.server(["ns/a.example.com", "b.example.com"], "a-tls", protocol="https"), {"port": {"number": 80}}],
        version="v1beta1",
    )
    gw["metadata"]["creationTimestamp"] = "2024-01-01T00:00:00Z"
    inv, findings = build(gw)
    assert findings == []
    (g,) = inv.istio_gateways
    assert g.selector == {"istio": "ingressgateway"}
    assert g.creation == "2024-01-01T00:00:00Z"
    first, second = g.servers
    assert (first.index, first.port, first.port_name, first.protocol) == (0, 443, "https", "HTTPS")
    assert first.hosts == ("ns/a.example.com", "b.example.com")
    assert first.tls == {"mode": "SIMPLE", "credentialName": "a-tls"}
    assert (second.index, second.port, second.hosts, second.tls) == (1, 80, (), None)


def test_gateway_without_selector_has_none() -> None:
    gw = f.gateway("gw", [])
    del gw["spec"]["selector"]
    inv, _ = build(gw)
    assert inv.istio_gateways[0].selector is None


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet", "DaemonSet"])
def test_controller_template_labels_become_workloads(kind: str) -> None:
    d = f.deployment("ingress", "istio-system", {"istio": "ingressgateway", "app": "gw"})
    d["kind"] = kind
    d["metadata"]["labels"] = {"not": "these"}
    inv, findings = build(d)
    assert findings == []
    assert inv.workloads_known is True
    (w,) = inv.workloads
    assert (w.kind, w.namespace, w.name) == (kind, "istio-system", "ingress")
    assert w.labels == {"istio": "ingressgateway", "app": "gw"}


def test_pod_labels_become_workloads() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "gw-ns", "labels": {"istio": "ingressgateway"}},
        "spec": {"containers": []},
    }
    inv, findings = build(pod)
    assert findings == []
    assert [(w.kind, w.namespace, w.labels) for w in inv.workloads] == [("Pod", "gw-ns", {"istio": "ingressgateway"})]
    assert inv.workloads_known is True


def test_workloads_known_false_without_workload_kinds() -> None:
    inv, _ = build(f.gateway("gw", []), f.secret("s"), CM)
    assert inv.workloads == ()
    assert inv.workloads_known is False


def test_workloads_known_true_even_when_the_workload_is_malformed() -> None:
    bad = f.deployment("d", "ns", {})
    bad["spec"] = "junk"
    inv, findings = build(f.gateway("gw", []), bad)
    assert [x.code for x in findings] == ["invalid-manifest"]
    assert inv.workloads == ()
    assert inv.workloads_known is True


def test_workloads_known_can_be_forced() -> None:
    raws = [RawObject(Source("t", 0), f.gateway("gw", []))]
    assert build_inventory(raws, workloads_known=True)[0].workloads_known is True
    raws.append(RawObject(Source("t", 1), f.ingress()))
    assert build_inventory(raws, workloads_known=False)[0].workloads_known is False


def test_end_to_end_from_folder(tmp_path: Path) -> None:
    leaf = f.make_leaf(["app.example.com"])
    write(tmp_path / "gw" / "gateway.yaml", dump(f.gateway("gw", [f.server(["app.example.com"], "app-tls")])))
    write(tmp_path / "secrets" / "app.json", json.dumps(f.secret("app-tls", leaf=leaf)))
    write(tmp_path / "workloads.yml", dump({"apiVersion": "v1", "kind": "List", "items": [f.ingress()]}))
    loaded = load([str(tmp_path)])
    inv, findings = build_inventory(loaded.objects)
    assert loaded.errors == [] and findings == []
    secret = inv.secret("istio-system", "app-tls")
    assert secret is not None and secret.data["tls.key"] == leaf.key_pem()
    assert [g.name for g in inv.istio_gateways] == ["gw"]
    assert inv.workloads_known is True


# --- fuzz-ish ---------------------------------------------------------------------------

FRAGMENTS = [
    "---\n",
    "--- ",
    "...\n",
    "# c\n",
    "%YAML 1.1\n",
    "apiVersion: v1\n",
    "apiVersion: networking.istio.io/v1\n",
    "apiVersion: gateway.networking.k8s.io/v1\n",
    "apiVersion: apps/v1\n",
    "kind: Secret\n",
    "kind: Gateway\n",
    "kind: List\n",
    "kind: ConfigMap\n",
    "kind: Deployment\n",
    "metadata:\n",
    "  name: x\n",
    "  namespace: [\n",
    "spec:\n",
    "  servers:\n",
    "  - port: {number: '443'}\n",
    "    hosts: [a, {b: c}]\n",
    "data: {k: '!!'}\n",
    "stringData: {k: 1}\n",
    "items:\n",
    "- a\n",
    "- {kind: Secret}\n",
    "\t",
    ": ",
    "{",
    "}",
    "[",
    "]",
    "'",
    '"',
    "&a ",
    "*a ",
    "!!int x\n",
    "!!binary x\n",
    "? ",
    "|\n",
    "2024-01-01\n",
    "\n",
    " ",
    "-",
]

YAML_ISH = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=5)), max_size=30).map("".join)

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=6))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=20,
)
KNOWN_KEYS = ["metadata", "spec", "data", "stringData", "binaryData", "name", "namespace", "servers", "port"]
KNOWN_KEYS += ["number", "hosts", "tls", "selector", "labels", "listeners", "certificateRefs", "template", "items"]
KNOWN_KEYS += ["http", "route", "destination", "mirror", "mirrors", "subsets", "from", "to", "frontend", "perPort"]
KNOWN_KEYS += ["ownerReferences", "annotations", "validation", "caCertificateRefs", "options", "hostname"]
NESTED = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=4)), inner, max_size=5),
    ),
    max_leaves=30,
)
OBJECTS = st.fixed_dictionaries(
    {
        "apiVersion": st.sampled_from(
            [
                "v1",
                "apps/v1",
                "networking.istio.io/v1",
                "networking.istio.io/v1beta1",
                "networking.istio.io/v1alpha3",
                "gateway.networking.k8s.io/v1",
                "gateway.networking.k8s.io/v1beta1",
            ]
        ),
        "kind": st.sampled_from(
            [
                "Secret",
                "ConfigMap",
                "Pod",
                "Deployment",
                "StatefulSet",
                "DaemonSet",
                "ReplicaSet",
                "Gateway",
                "VirtualService",
                "DestinationRule",
                "ReferenceGrant",
                "List",
                "Unknown",
            ]
        ),
    },
    optional={
        "metadata": st.one_of(
            NESTED, st.fixed_dictionaries({"name": st.text(min_size=1, max_size=4)}, optional={"namespace": NESTED})
        ),
        "spec": NESTED,
        "data": NESTED,
        "stringData": NESTED,
        "binaryData": NESTED,
        "items": NESTED,
    },
)


def _check_inventory(objects: list[RawObject]) -> None:
    inv, findings = build_inventory(objects)
    assert isinstance(inv, Inventory)
    for x in findings:
        assert x.code == "invalid-manifest"
        assert x.message


@settings(deadline=None, max_examples=300)
@given(YAML_ISH)
def test_parse_text_never_raises_on_yaml_ish_text(text: str) -> None:
    for name in ("fuzz.yaml", "fuzz.json"):
        result = LoadResult()
        parse_text(text, name, result)
        assert all(isinstance(o.body, dict) for o in result.objects)
        assert all(e.source.path == name and e.message for e in result.errors)
        _check_inventory(result.objects)


@settings(deadline=None)
@given(st.text(max_size=200))
def test_parse_text_never_raises_on_any_text(text: str) -> None:
    result = LoadResult()
    parse_text(text, "fuzz.yaml", result)
    _check_inventory(result.objects)


@settings(deadline=None, max_examples=300)
@given(st.lists(st.one_of(OBJECTS, st.dictionaries(st.text(max_size=6), VALUES, max_size=4)), max_size=6))
def test_build_inventory_never_raises_on_arbitrary_objects(objects: list[dict[str, Any]]) -> None:
    raws = [RawObject(Source("fuzz.yaml", i), o) for i, o in enumerate(objects)]
    inv, findings = build_inventory(raws)
    for x in findings:
        assert x.code in ("invalid-manifest", "duplicate-object")  # the same object twice is said, not doubled
        assert "fuzz.yaml#" in x.message
    parsed = len(inv.secrets + inv.config_maps + inv.workloads) + len(inv.istio_gateways) + len(inv.kube_gateways)
    parsed += len(inv.virtual_services) + len(inv.destination_rules) + len(inv.reference_grants)
    assert parsed <= len(objects)


@settings(deadline=None)
@given(st.lists(OBJECTS, min_size=1, max_size=4))
def test_objects_survive_a_yaml_and_json_round_trip(objects: list[dict[str, Any]]) -> None:
    """Whatever we can build from dicts, we can build the same from their YAML and JSON text."""
    try:
        text = yaml.safe_dump_all(objects)
        as_json = [json.dumps(o, allow_nan=False) for o in objects]
    except (ValueError, yaml.YAMLError):
        return  # NaN and friends have no JSON form
    from_text = parse(text, "rt.yaml")
    direct = [RawObject(Source("rt.yaml", i), o) for i, o in enumerate(objects)]
    a, b = build_inventory(from_text.objects)[0], build_inventory(_flatten_lists(direct))[0]
    # unreadable messages quote the YAML/JSON form of the bad value; compare which objects
    assert dataclasses.replace(a, unreadable={}) == dataclasses.replace(b, unreadable={})
    assert a.unreadable.keys() == b.unreadable.keys()
    for j in as_json:
        _check_inventory(parse(j, "rt.json").objects)


def _flatten_lists(raws: list[RawObject]) -> list[RawObject]:
    out: list[RawObject] = []
    for r in raws:
        items = r.body.get("items")
        if r.body["kind"].endswith("List") and isinstance(items, list):
            out.extend(RawObject(r.source, i) for i in items if isinstance(i, dict))
        else:
            out.append(r)
    return out


@pytest.mark.parametrize(
    ("tls", "field"),
    [
        ({"mode": "SIMPLE", "credentialName": {"a": "b"}}, "tls.credentialName"),
        ({"mode": "SIMPLE", "credentialNames": [["a"], 5]}, "tls.credentialNames[0]"),
        ({"mode": "SIMPLE", "credentialNames": "single"}, "tls.credentialNames"),
        ({"mode": "MUTUAL", "credentialName": "x", "caCertCredentialName": ["x"]}, "tls.caCertCredentialName"),
        ({"mode": 1, "credentialName": "x"}, "tls.mode"),
    ],
)
def test_wrong_types_in_the_tls_block_are_named(tls: dict[str, Any], field: str) -> None:
    gw = f.gateway(
        "gw", [{"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": ["a.b.c"], "tls": tls}]
    )
    inv, findings = build(gw)
    assert inv.istio_gateways == ()
    (hit,) = findings
    assert hit.code == "invalid-manifest" and field in hit.message and "Gateway istio-system/gw" in hit.message


@pytest.mark.parametrize("servers", [[None], [{"port": {"number": 443}, "hosts": [None]}]])
def test_null_list_elements_are_errors_not_empty_values(servers: list[Any]) -> None:
    _, findings = build(f.gateway("gw", servers))
    assert [x.code for x in findings] == ["invalid-manifest"]
    assert "null" in findings[0].message


def alias_bomb(doublings: int) -> str:
    """A Gateway whose servers list is 2**doublings servers written as one, through aliases."""
    lines = [
        "apiVersion: networking.istio.io/v1",
        "kind: Gateway",
        "metadata: {name: bomb, namespace: istio-system}",
        "x0: &s0 {port: {number: 443, name: https, protocol: HTTPS}, hosts: [a.example.com], "
        "tls: {mode: SIMPLE, credentialName: a}}",
    ]
    lines += [f"x{i}: &s{i} [*s{i - 1}, *s{i - 1}]" for i in range(1, doublings + 1)]
    lines.append(f"spec: {{selector: {{istio: ingressgateway}}, servers: *s{doublings}}}")
    return "\n".join(lines) + "\n"


def test_alias_amplification_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    """A million servers from a file of a few lines: refused, quickly, naming the file."""
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb(20) + "---\n" + yaml.safe_dump(f.secret("ok", leaf=f.make_leaf())))
    result = load([str(bomb)])
    assert [o.body["metadata"]["name"] for o in result.objects] == ["ok"]  # the next document still loads
    (err,) = result.errors
    assert err.source == Source(str(bomb), 0)
    assert "refused: YAML aliases expand this document" in err.message and "limit 100,000" in err.message
    recursive = LoadResult()
    parse_text("a: &x [*x]\n", "rec.yaml", recursive)
    assert "recursive" in recursive.errors[0].message


def test_ordinary_anchors_and_merge_keys_still_load() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: &m {name: x, namespace: default}\ndata: {a: &v hello, b: *v}\n"
    result = LoadResult()
    parse_text(text + "---\n" + alias_bomb(10), "ok.yaml", result)  # 1,024 servers: fine
    assert result.errors == [] and len(result.objects) == 2
    assert result.objects[0].body["data"] == {"a": "hello", "b": "hello"}


def test_a_large_document_without_aliases_is_not_mistaken_for_amplification() -> None:
    """`kubectl get secrets -A -o yaml` with managedFields: many scalars, no aliases."""
    items = [f.secret(f"s{i}", leaf=None, data={"a": b"x", "b": b"y"}) for i in range(20_000)]
    text = "# YAML (flow style), parsed by the YAML loader\n" + json.dumps(
        {"apiVersion": "v1", "kind": "List", "items": items}
    )
    result = LoadResult()
    parse_text(text, "big.yaml", result)
    assert result.errors == [] and len(result.objects) == 20_000


def test_duplicate_keys_are_refused_with_the_file_lines() -> None:
    """kubectl's strict decoding: a server with two `tls:` keys is an error, not the second one."""
    text = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n"
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g, namespace: x}\nspec:\n"
        "  servers:\n  - port: {number: 443, name: h, protocol: HTTPS}\n    hosts: [a.example.com]\n"
        "    tls: {mode: SIMPLE, credentialName: a}\n    tls: {mode: SIMPLE, credentialName: b}\n"
    )
    result = parse(text)
    assert names(result) == ["a"]
    (err,) = result.errors
    assert str(err.source) == "in.yaml#2"
    assert "duplicate key 'tls' (first at line 12)" in err.message and "line 13," in err.message
    merged = parse("base: &b {x: 1}\nother:\n  <<: *b\n  x: 2\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: m}\n")
    assert merged.errors == [] and merged.objects[0].body["other"] == {"x": 2}  # a merge may override
