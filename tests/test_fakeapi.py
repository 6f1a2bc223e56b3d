"""The fake API server, tested through the real `kubernetes` client over a real socket.

These tests pin the protocol details rotator's own tests will rely on: if the fake drifted from
the real server (a status code, a message, list item shape, pagination), tests written against
it would pass for the wrong reason.  Each test says which behaviour of the real server it pins.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
import yaml
from kubernetes import client, config
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import (
    ApiException,
    BadRequestException,
    ConflictException,
    ForbiddenException,
    NotFoundException,
    ServiceException,
    UnauthorizedException,
    UnprocessableEntityException,
)

from tests.support.fakeapi import FakeCluster, Request

SA = "system:serviceaccount:rotator:rotator"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret(name: str, namespace: str = "istio-system", **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if "labels" in extra:
        meta["labels"] = extra.pop("labels")
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque", "data": {"k": b64("v")}, **extra}


def gateway(name: str, namespace: str = "istio-system", version: str = "v1") -> dict[str, Any]:
    return {
        "apiVersion": f"networking.istio.io/{version}",
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"istio": "ingressgateway"}, "servers": []},
    }


def status_of(exc: ApiException) -> dict[str, Any]:
    body = json.loads(exc.body)
    assert isinstance(body, dict)
    return body


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    with FakeCluster() as c:
        yield c
    assert c.errors == [], c.errors[0]


def api_for(cluster: FakeCluster, tmp_path: Path, token: str | None = None) -> ApiClient:
    path = cluster.kubeconfig(tmp_path / f"kubeconfig-{token or 'sa'}", token=token)
    return config.new_client_from_config(config_file=str(path))


@pytest.fixture
def api(cluster: FakeCluster, tmp_path: Path) -> Iterator[ApiClient]:
    with api_for(cluster, tmp_path) as a:
        yield a


@pytest.fixture
def core(api: ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def custom(api: ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


# ---------------------------------------------------------------- connection, auth


def test_kubeconfig_points_the_real_client_at_the_fake(cluster: FakeCluster, tmp_path: Path) -> None:
    path = cluster.kubeconfig(tmp_path / "kc", context="ci")
    doc = yaml.safe_load(path.read_text())
    assert doc["current-context"] == "ci"
    assert doc["clusters"][0]["cluster"]["server"] == cluster.url
    assert cluster.url.startswith("http://127.0.0.1:")
    with config.new_client_from_config(config_file=str(path)) as api:
        assert client.VersionApi(api).get_code().git_version.startswith("v1.")
    (req,) = cluster.requests
    assert (req.method, req.path, req.status, req.user, req.verb) == ("GET", "/version/", 200, SA, "get")


def test_missing_or_wrong_token_is_401(cluster: FakeCluster, tmp_path: Path) -> None:
    with api_for(cluster, tmp_path, token="wrong") as api, pytest.raises(UnauthorizedException) as err:
        client.CoreV1Api(api).list_namespaced_secret("default")
    assert status_of(err.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    http = urllib3.PoolManager()
    assert http.request("GET", cluster.url + "/api/v1/namespaces/default/secrets").status == 401
    assert [r.user for r in cluster.requests] == [None, None]


def test_keep_alive_reuses_one_connection_and_every_response_has_content_length(cluster: FakeCluster) -> None:
    pool = urllib3.HTTPConnectionPool("127.0.0.1", int(cluster.url.rsplit(":", 1)[1]), maxsize=1)
    headers = {"Authorization": f"Bearer {cluster.token}"}
    statuses = []
    for path in ("/api", "/api/v1/namespaces/x/secrets/missing", "/api/v1/namespaces/x/secrets", "/apis"):
        resp = pool.request("GET", path, headers=headers)
        statuses.append(resp.status)
        assert int(resp.headers["Content-Length"]) == len(resp.data)
        assert resp.headers["Content-Type"] == "application/json"
    assert statuses == [200, 404, 200, 200]
    assert pool.num_connections == 1


# ---------------------------------------------------------------- CRUD


def test_secret_crud_round_trip(cluster: FakeCluster, core: client.CoreV1Api) -> None:
    created = core.create_namespaced_secret("istio-system", secret("cert", labels={"app": "gw"}))
    meta = created.metadata
    assert meta.namespace == "istio-system" and meta.uid and meta.creation_timestamp is not None
    assert created.data == {"k": b64("v")} and created.type == "Opaque"
    assert cluster.requests[-1].status == 201

    read = core.read_namespaced_secret("cert", "istio-system")
    assert (read.api_version, read.kind) == ("v1", "Secret")
    read.data["k"] = b64("v2")
    replaced = core.replace_namespaced_secret("cert", "istio-system", read)
    assert int(replaced.metadata.resource_version) > int(meta.resource_version)
    assert replaced.metadata.uid == meta.uid

    patched = core.patch_namespaced_secret("cert", "istio-system", {"metadata": {"annotations": {"rotated": "yes"}}})
    assert patched.metadata.annotations == {"rotated": "yes"} and patched.data == {"k": b64("v2")}
    assert cluster.requests[-1].headers["Content-Type"] == "application/strategic-merge-patch+json"

    gone = core.delete_namespaced_secret("cert", "istio-system")
    assert gone["status"] == "Success" and gone["details"]["name"] == "cert" and gone["details"]["kind"] == "secrets"
    with pytest.raises(NotFoundException) as err:
        core.read_namespaced_secret("cert", "istio-system")
    assert status_of(err.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'secrets "cert" not found',
        "reason": "NotFound",
        "details": {"name": "cert", "kind": "secrets"},
        "code": 404,
    }
    with pytest.raises(NotFoundException):
        core.delete_namespaced_secret("cert", "istio-system")
    with pytest.raises(NotFoundException):
        core.replace_namespaced_secret("cert", "istio-system", secret("cert"))


def test_string_data_is_merged_into_data_and_type_defaults_to_opaque(core: client.CoreV1Api) -> None:
    body = {"metadata": {"name": "s"}, "data": {"a": b64("1")}, "stringData": {"b": "2"}}
    created = core.create_namespaced_secret("default", body)
    assert created.data == {"a": b64("1"), "b": b64("2")} and created.string_data is None
    assert created.type == "Opaque"


def test_create_existing_is_409_already_exists_and_generate_name_picks_a_name(core: client.CoreV1Api) -> None:
    core.create_namespaced_secret("istio-system", secret("dup"))
    with pytest.raises(ConflictException) as err:
        core.create_namespaced_secret("istio-system", secret("dup"))
    body = status_of(err.value)
    assert (body["reason"], body["message"]) == ("AlreadyExists", 'secrets "dup" already exists')
    generated = core.create_namespaced_secret("istio-system", {"metadata": {"generateName": "rotated-"}})
    assert generated.metadata.name.startswith("rotated-") and len(generated.metadata.name) == len("rotated-") + 5


def test_create_rejects_resource_version_and_namespace_mismatch(core: client.CoreV1Api) -> None:
    with pytest.raises(ServiceException) as err:
        core.create_namespaced_secret("istio-system", {"metadata": {"name": "x", "resourceVersion": "5"}})
    assert status_of(err.value)["message"] == (
        "Internal error occurred: resourceVersion should not be set on objects to be created"
    )
    with pytest.raises(BadRequestException) as err2:
        core.create_namespaced_secret("istio-system", secret("x", namespace="other"))
    assert "does not match the namespace sent on the request" in status_of(err2.value)["message"]


def test_stale_resource_version_is_409_conflict(cluster: FakeCluster, core: client.CoreV1Api) -> None:
    core.create_namespaced_secret("istio-system", secret("cert"))
    mine = core.read_namespaced_secret("cert", "istio-system")
    theirs = core.read_namespaced_secret("cert", "istio-system")
    theirs.data = {"k": b64("theirs")}
    core.replace_namespaced_secret("cert", "istio-system", theirs)
    mine.data = {"k": b64("mine")}
    with pytest.raises(ConflictException) as err:
        core.replace_namespaced_secret("cert", "istio-system", mine)
    assert status_of(err.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'Operation cannot be fulfilled on secrets "cert": the object has been modified; '
        "please apply your changes to the latest version and try again",
        "reason": "Conflict",
        "details": {"name": "cert", "kind": "secrets"},
        "code": 409,
    }
    # A merge patch carrying a resourceVersion is a precondition too.
    with pytest.raises(ConflictException):
        core.patch_namespaced_secret(
            "cert", "istio-system", {"metadata": {"resourceVersion": mine.metadata.resource_version}}
        )
    assert cluster.get("v1", "Secret", "istio-system", "cert")["data"] == {"k": b64("theirs")}  # type: ignore[index]


def test_noop_update_does_not_bump_resource_version(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_secret("default", secret("s", namespace="default"))
    again = core.replace_namespaced_secret("s", "default", created)
    assert again.metadata.resource_version == created.metadata.resource_version
    patched = core.patch_namespaced_secret("s", "default", {"data": {"k": b64("v")}, "metadata": {"labels": {}}})
    assert patched.metadata.resource_version == created.metadata.resource_version


def test_name_mismatch_on_update_is_400_like_the_real_check_name(core: client.CoreV1Api) -> None:
    core.create_namespaced_secret("default", secret("a", namespace="default"))
    with pytest.raises(BadRequestException) as err:
        core.replace_namespaced_secret("a", "default", secret("b", namespace="default"))
    assert status_of(err.value)["message"] == "the name of the object (b) does not match the name on the URL (a)"


def test_bad_base64_is_400_and_tls_secret_without_key_is_422(core: client.CoreV1Api) -> None:
    with pytest.raises(BadRequestException) as err:
        core.create_namespaced_secret("default", {"metadata": {"name": "x"}, "data": {"tls.crt": "not base64!"}})
    assert status_of(err.value)["message"] == (
        'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 3'
    )
    tls = {"metadata": {"name": "tls"}, "type": "kubernetes.io/tls", "data": {"tls.crt": b64("c")}}
    with pytest.raises(UnprocessableEntityException) as err2:
        core.create_namespaced_secret("default", tls)
    assert status_of(err2.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'Secret "tls" is invalid: data[tls.key]: Required value',
        "reason": "Invalid",
        "details": {
            "name": "tls",
            "kind": "Secret",
            "causes": [{"reason": "FieldValueRequired", "message": "Required value", "field": "data[tls.key]"}],
        },
        "code": 422,
    }
    with pytest.raises(UnprocessableEntityException) as err3:
        core.create_namespaced_secret("default", {"metadata": {"name": "Bad_Name"}})
    assert (
        'metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain' in status_of(err3.value)["message"]
    )


def test_secret_type_and_immutable_data_cannot_change(core: client.CoreV1Api) -> None:
    core.create_namespaced_secret("default", {"metadata": {"name": "i"}, "immutable": True, "data": {"k": b64("1")}})
    with pytest.raises(UnprocessableEntityException) as err:
        core.patch_namespaced_secret("i", "default", {"data": {"k": b64("2")}})
    assert "data: Forbidden: field is immutable when `immutable` is set" in status_of(err.value)["message"]
    with pytest.raises(UnprocessableEntityException) as err2:
        core.patch_namespaced_secret("i", "default", {"type": "kubernetes.io/tls"})
    assert 'type: Invalid value: "kubernetes.io/tls": field is immutable' in status_of(err2.value)["message"]


def test_json_patch_and_merge_patch(cluster: FakeCluster, core: client.CoreV1Api) -> None:
    created = core.create_namespaced_secret("default", secret("p", namespace="default", labels={"a": "1"}))
    rv = created.metadata.resource_version
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "add", "path": "/metadata/labels/rotated~1by", "value": "rotator"},
        {"op": "replace", "path": "/data/k", "value": b64("new")},
    ]
    patched = core.patch_namespaced_secret("p", "default", ops)
    assert cluster.requests[-1].headers["Content-Type"] == "application/json-patch+json"
    assert patched.metadata.labels == {"a": "1", "rotated/by": "rotator"} and patched.data == {"k": b64("new")}
    with pytest.raises(UnprocessableEntityException) as err:  # the same test op now fails: optimistic locking
        core.patch_namespaced_secret("p", "default", ops)
    assert (
        status_of(err.value)["details"]["causes"][0]["message"]
        == 'testing value "/metadata/resourceVersion" failed: test failed'
    )
    merged = core.patch_namespaced_secret(
        "p", "default", {"metadata": {"labels": {"a": None}}}, _content_type="application/merge-patch+json"
    )
    assert merged.metadata.labels == {"rotated/by": "rotator"}


def test_delete_preconditions_and_finalizers(cluster: FakeCluster, core: client.CoreV1Api) -> None:
    s = core.create_namespaced_secret("default", {"metadata": {"name": "f", "finalizers": ["example.com/hold"]}})
    with pytest.raises(ConflictException) as err:
        core.delete_namespaced_secret("f", "default", body={"preconditions": {"resourceVersion": "1"}})
    assert "Precondition failed: ResourceVersion in precondition: 1" in status_of(err.value)["message"]
    held = core.delete_namespaced_secret("f", "default", body={"preconditions": {"uid": s.metadata.uid}})
    assert held["metadata"]["deletionTimestamp"]  # finalizer pending: answered with the object
    assert cluster.get("v1", "Secret", "default", "f") is not None
    core.patch_namespaced_secret("f", "default", {"metadata": {"finalizers": None}})
    assert cluster.get("v1", "Secret", "default", "f") is None


def test_dry_run_validates_without_storing(cluster: FakeCluster, core: client.CoreV1Api) -> None:
    out = core.create_namespaced_secret("default", secret("d", namespace="default"), dry_run="All")
    assert out.metadata.name == "d" and cluster.get("v1", "Secret", "default", "d") is None


def test_unknown_fields_are_dropped_with_a_warning_or_refused_when_strict(cluster: FakeCluster) -> None:
    # The 37.x client refuses unknown fields in dict bodies itself (pydantic extra="forbid"), so use urllib3.
    http = urllib3.PoolManager()
    headers = {"Authorization": f"Bearer {cluster.token}", "Content-Type": "application/json"}
    url = cluster.url + "/api/v1/namespaces/default/secrets"
    body = {"metadata": {"name": "u", "colour": "red"}, "spec": {}}
    resp = http.request("POST", url, body=json.dumps(body), headers=headers)
    assert resp.status == 201
    assert resp.headers.get_all("Warning") == [
        '299 - "unknown field \\"spec\\""',
        '299 - "unknown field \\"metadata.colour\\""',
    ]
    assert "spec" not in json.loads(resp.data) and "colour" not in json.loads(resp.data)["metadata"]
    body["metadata"]["name"] = "v"
    strict = http.request("POST", url + "?fieldValidation=Strict", body=json.dumps(body), headers=headers)
    assert strict.status == 400
    assert json.loads(strict.data)["message"] == (
        'Secret in version "v1" cannot be handled as a Secret: strict decoding error: '
        'unknown field "spec", unknown field "metadata.colour"'
    )


# ---------------------------------------------------------------- custom resources


def test_custom_resource_crud_is_served_under_every_version(
    cluster: FakeCluster, custom: client.CustomObjectsApi
) -> None:
    g = "networking.istio.io"
    created = custom.create_namespaced_custom_object(g, "v1", "istio-system", "gateways", gateway("gw"))
    assert created["metadata"]["generation"] == 1 and created["metadata"]["resourceVersion"]
    old = custom.get_namespaced_custom_object(g, "v1alpha3", "istio-system", "gateways", "gw")
    assert old["apiVersion"] == "networking.istio.io/v1alpha3" and old["metadata"]["uid"] == created["metadata"]["uid"]
    listed = custom.list_namespaced_custom_object(g, "v1beta1", "istio-system", "gateways")
    assert listed["kind"] == "GatewayList" and listed["apiVersion"] == "networking.istio.io/v1beta1"
    assert [(i["apiVersion"], i["kind"]) for i in listed["items"]] == [("networking.istio.io/v1beta1", "Gateway")]

    labelled = custom.patch_namespaced_custom_object(
        g, "v1", "istio-system", "gateways", "gw", {"metadata": {"labels": {"a": "b"}}}
    )
    assert labelled["metadata"]["generation"] == 1  # metadata changes do not bump generation
    spec = custom.patch_namespaced_custom_object(
        g, "v1", "istio-system", "gateways", "gw", {"spec": {"servers": [{"port": {"number": 443}}]}}
    )
    assert spec["metadata"]["generation"] == 2
    assert cluster.requests[-1].headers["Content-Type"] == "application/merge-patch+json"

    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object(
            g,
            "v1",
            "istio-system",
            "gateways",
            "gw",
            {"spec": {}},
            _content_type="application/strategic-merge-patch+json",
        )
    assert err.value.status == 415

    no_rv = gateway("gw")
    with pytest.raises(UnprocessableEntityException) as err2:
        custom.replace_namespaced_custom_object(g, "v1", "istio-system", "gateways", "gw", no_rv)
    assert status_of(err2.value)["message"] == (
        'Gateway.networking.istio.io "gw" is invalid: '
        "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
    )
    spec["spec"]["servers"] = []
    spec["status"] = {"ignored": True}  # the main resource ignores status: it has a status subresource
    replaced = custom.replace_namespaced_custom_object(g, "v1", "istio-system", "gateways", "gw", spec)
    assert "status" not in replaced and replaced["metadata"]["generation"] == 3
    with_status = custom.patch_namespaced_custom_object_status(
        g, "v1", "istio-system", "gateways", "gw", {"status": {"ok": 1}}
    )
    assert with_status["status"] == {"ok": 1} and with_status["metadata"]["generation"] == 3

    with pytest.raises(NotFoundException) as err3:
        custom.get_namespaced_custom_object(g, "v1", "istio-system", "gateways", "missing")
    assert status_of(err3.value)["details"] == {"name": "missing", "group": g, "kind": "gateways"}
    gone = custom.delete_namespaced_custom_object(g, "v1", "istio-system", "gateways", "gw")
    assert gone["status"] == "Success" and gone["details"]["group"] == g
    assert cluster.list("networking.istio.io/v1", "Gateway") == []


def test_custom_resource_body_must_carry_kind_and_matching_api_version(custom: client.CustomObjectsApi) -> None:
    g = "gateway.networking.k8s.io"
    body = {"metadata": {"name": "x"}, "spec": {}}
    with pytest.raises(BadRequestException) as err:
        custom.create_namespaced_custom_object(g, "v1", "default", "referencegrants", body)
    assert status_of(err.value)["message"].startswith("Object 'Kind' is missing in")
    wrong = {"apiVersion": f"{g}/v1beta1", "kind": "ReferenceGrant", **body}
    with pytest.raises(BadRequestException) as err2:
        custom.create_namespaced_custom_object(g, "v1", "default", "referencegrants", wrong)
    assert "does not match the expected API version" in status_of(err2.value)["message"]


def test_core_list_items_lack_api_version_and_kind_but_custom_items_have_them(
    cluster: FakeCluster, core: client.CoreV1Api, custom: client.CustomObjectsApi
) -> None:
    cluster.add(secret("a"))
    cluster.add(gateway("gw"))
    raw = json.loads(core.list_namespaced_secret("istio-system", _preload_content=False).data)
    assert (raw["kind"], raw["apiVersion"]) == ("SecretList", "v1")
    assert set(raw["metadata"]) == {"resourceVersion"}
    assert "apiVersion" not in raw["items"][0] and "kind" not in raw["items"][0]
    single = json.loads(core.read_namespaced_secret("a", "istio-system", _preload_content=False).data)
    assert (single["apiVersion"], single["kind"]) == ("v1", "Secret")
    crs = json.loads(
        custom.list_namespaced_custom_object(
            "networking.istio.io", "v1", "istio-system", "gateways", _preload_content=False
        ).data
    )
    assert (crs["items"][0]["apiVersion"], crs["items"][0]["kind"]) == ("networking.istio.io/v1", "Gateway")


# ---------------------------------------------------------------- lists


def test_pagination_with_limit_continue_and_remaining_item_count(cluster: FakeCluster, core: client.CoreV1Api) -> None:
    names = [f"s-{i:04d}" for i in range(1234)]
    for i, name in enumerate(names):
        cluster.add(secret(name, namespace=f"ns-{i % 3}"))
    seen: list[tuple[str, str]] = []
    remaining: list[int | None] = []
    token = None
    while True:
        page = core.list_secret_for_all_namespaces(limit=500, _continue=token)
        seen += [(s.metadata.namespace, s.metadata.name) for s in page.items]
        remaining.append(page.metadata.remaining_item_count)
        token = page.metadata.var_continue
        if token is None:
            break
        cluster.add(secret("zz-added-mid-list", namespace="ns-0"))  # not in this consistent list
    assert remaining == [734, 234, None]
    assert seen == sorted((f"ns-{i % 3}", n) for i, n in enumerate(names))
    namespaced = core.list_namespaced_secret("ns-1", limit=100)
    assert len(namespaced.items) == 100 and namespaced.metadata.remaining_item_count == 411 - 100


def test_continue_token_after_compaction_is_410_with_an_inconsistent_token(
    cluster: FakeCluster, core: client.CoreV1Api
) -> None:
    for i in range(5):
        cluster.add(secret(f"s{i}"))
    first = core.list_namespaced_secret("istio-system", limit=2)
    cluster.compact()
    with pytest.raises(ApiException) as err:
        core.list_namespaced_secret("istio-system", limit=2, _continue=first.metadata.var_continue)
    body = status_of(err.value)
    assert (err.value.status, body["reason"]) == (410, "Expired") and body["metadata"]["continue"]
    rest = core.list_namespaced_secret("istio-system", limit=10, _continue=body["metadata"]["continue"])
    assert [s.metadata.name for s in rest.items] == ["s2", "s3", "s4"]
    with pytest.raises(BadRequestException):
        core.list_namespaced_secret("istio-system", _continue="garbage")


def test_label_selectors(cluster: FakeCluster, core: client.CoreV1Api) -> None:
    cluster.add(secret("a", labels={"app": "gw", "tier": "edge"}))
    cluster.add(secret("b", labels={"app": "gw"}))
    cluster.add(secret("c", labels={"app": "db", "tier": "core"}))
    cluster.add(secret("d"))

    def names(selector: str) -> list[str]:
        return [s.metadata.name for s in core.list_namespaced_secret("istio-system", label_selector=selector).items]

    assert names("app=gw") == ["a", "b"]
    assert names("app==gw,tier=edge") == ["a"]
    assert names("app!=gw") == ["c", "d"]  # != also matches objects without the label
    assert names("tier in (edge, core)") == ["a", "c"]
    assert names("tier notin (edge)") == ["b", "c", "d"]
    assert names("tier") == ["a", "c"]
    assert names("!tier") == ["b", "d"]
    assert names("app in (gw),!tier") == ["b"]
    paged = core.list_namespaced_secret("istio-system", label_selector="app", limit=1)
    assert paged.metadata.var_continue and paged.metadata.remaining_item_count is None  # unknown with selectors
    with pytest.raises(BadRequestException) as err:
        names("app in ()")
    assert status_of(err.value)["message"].startswith("unable to parse requirement")


def test_field_selectors(cluster: FakeCluster, core: client.CoreV1Api, custom: client.CustomObjectsApi) -> None:
    cluster.add(secret("a"))
    cluster.add({**secret("tls"), "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}})
    cluster.add(secret("a", namespace="other"))

    def names(selector: str, namespace: str | None = "istio-system") -> list[str]:
        if namespace is None:
            items = core.list_secret_for_all_namespaces(field_selector=selector).items
        else:
            items = core.list_namespaced_secret(namespace, field_selector=selector).items
        return [f"{s.metadata.namespace}/{s.metadata.name}" for s in items]

    assert names("metadata.name=a", None) == ["istio-system/a", "other/a"]
    assert names("metadata.namespace==other", None) == ["other/a"]
    assert names("type=kubernetes.io/tls") == ["istio-system/tls"]
    assert names("type!=kubernetes.io/tls,metadata.name!=zzz") == ["istio-system/a"]
    with pytest.raises(BadRequestException) as err:
        names("spec.foo=bar")
    assert status_of(err.value)["message"] == "field label not supported: spec.foo"
    with pytest.raises(BadRequestException) as err2:
        custom.list_namespaced_custom_object("networking.istio.io", "v1", "x", "gateways", field_selector="spec.x=1")
    assert status_of(err2.value)["message"] == (
        '"spec.x" is not a known field selector: only "metadata.name", "metadata.namespace"'
    )


def test_thousands_of_secrets_page_in_order_quickly(cluster: FakeCluster, core: client.CoreV1Api) -> None:
    for i in range(5000):
        cluster.add(secret(f"s-{i:05d}", namespace=f"ns-{i % 7}"))
    start, total, token = time.perf_counter(), 0, None
    while True:
        raw = core.list_secret_for_all_namespaces(limit=500, _continue=token, _preload_content=False)
        page = json.loads(raw.data)
        total += len(page["items"])
        token = page["metadata"].get("continue")
        if not token:
            break
    assert total == 5000
    assert time.perf_counter() - start < 10  # generous: ~0.2 s on a laptop; catches O(n) work per page


# ---------------------------------------------------------------- discovery


def test_discovery_documents(cluster: FakeCluster, api: ApiClient) -> None:
    versions = client.CoreApi(api).get_api_versions()
    assert versions.versions == ["v1"]
    core_resources = {r.name: r for r in client.CoreV1Api(api).get_api_resources().resources}
    assert core_resources["secrets"].namespaced and core_resources["secrets"].kind == "Secret"
    assert not core_resources["namespaces"].namespaced
    assert core_resources["pods/log"].verbs == ["get"]
    groups = {g.name: g for g in client.ApisApi(api).get_api_versions().groups}
    assert groups["networking.istio.io"].preferred_version.version == "v1"
    assert [v.version for v in groups["networking.istio.io"].versions] == ["v1", "v1beta1", "v1alpha3"]
    assert {"apps", "events.k8s.io", "coordination.k8s.io", "gateway.networking.k8s.io"} <= set(groups)
    assert client.CoordinationV1Api(api).get_api_resources().resources[0].name == "leases"
    istio = api.call_api(
        "GET", cluster.url + "/apis/networking.istio.io/v1alpha3", {"Authorization": f"Bearer {cluster.token}"}
    )
    istio.read()
    doc = json.loads(istio.data)
    assert {r["name"] for r in doc["resources"]} >= {
        "gateways",
        "virtualservices",
        "destinationrules",
        "gateways/status",
    }
    gw = next(r for r in doc["resources"] if r["name"] == "gateways")
    assert gw["shortNames"] == ["gw"] and gw["singularName"] == "gateway"


def test_disabled_group_is_absent_from_discovery_and_404s(tmp_path: Path) -> None:
    with FakeCluster(disabled_groups={"networking.istio.io"}) as cluster, api_for(cluster, tmp_path) as api:
        groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
        assert "networking.istio.io" not in groups and "gateway.networking.k8s.io" in groups
        custom = client.CustomObjectsApi(api)
        with pytest.raises(NotFoundException) as err:
            custom.list_namespaced_custom_object("networking.istio.io", "v1", "istio-system", "gateways")
        assert status_of(err.value) == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "the server could not find the requested resource",
            "reason": "NotFound",
            "code": 404,
        }
        with pytest.raises(NotFoundException):
            custom.get_api_resources("networking.istio.io", "v1")
        with pytest.raises(KeyError):
            cluster.add(gateway("gw"))


# ---------------------------------------------------------------- RBAC

RBAC_YAML = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: rotator-read}
rules:
- apiGroups: [networking.istio.io]
  resources: [gateways, virtualservices]
  verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: rotator-read}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: rotator-read}
subjects: [{kind: ServiceAccount, name: rotator, namespace: rotator}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: rotator-secrets}
rules:
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: rotator-secrets, namespace: istio-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: rotator-secrets}
subjects: [{kind: ServiceAccount, name: rotator, namespace: rotator}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: rotator-lock, namespace: rotator}
rules:
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  resourceNames: [rotator-lock]
  verbs: [get, list, update]
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: rotator-lock, namespace: rotator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: rotator-lock}
subjects: [{kind: ServiceAccount, name: rotator}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: rotator, namespace: rotator}
"""


@pytest.fixture
def rbac_cluster() -> Iterator[FakeCluster]:
    with FakeCluster(rbac_manifests=list(yaml.safe_load_all(RBAC_YAML))) as c:
        c.add(secret("cert"))
        c.add(secret("cert", namespace="default"))
        c.add(gateway("gw"))
        c.add({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "rotator"}, "spec": {}})
        c.add(
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": "rotator-lock", "namespace": "rotator"},
            }
        )
        c.add(
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": "other", "namespace": "rotator"},
            }
        )
        yield c
    assert c.errors == []


def test_rbac_allows_what_the_roles_grant(rbac_cluster: FakeCluster, tmp_path: Path) -> None:
    rbac_cluster.pod_logs[("rotator", "p")] = "hello\n"
    with api_for(rbac_cluster, tmp_path) as api:
        custom, core, leases = client.CustomObjectsApi(api), client.CoreV1Api(api), client.CoordinationV1Api(api)
        assert custom.list_cluster_custom_object("networking.istio.io", "v1", "gateways")["items"]
        assert core.read_namespaced_secret("cert", "istio-system").metadata.name == "cert"
        assert leases.read_namespaced_lease("rotator-lock", "rotator").metadata.name == "rotator-lock"
        assert core.read_namespaced_pod_log("p", "rotator") == "hello\n"
        # A list filtered to one name is authorised as that name, as the real RequestInfo does.
        assert leases.list_namespaced_lease("rotator", field_selector="metadata.name=rotator-lock").items
        assert client.ApisApi(api).get_api_versions().groups  # discovery: any authenticated user
    allowed = [r.allowed_by for r in rbac_cluster.requests if r.resource]
    assert allowed[0] == ("ClusterRole rotator-read: list networking.istio.io/gateways",)
    assert allowed[1] == ("ClusterRole rotator-secrets: get secrets",)
    assert allowed[2] == ("Role rotator/rotator-lock: get coordination.k8s.io/leases [rotator-lock]",)
    assert rbac_cluster.denied() == []
    assert rbac_cluster.unused_rules() == [
        "ClusterRole rotator-read: get networking.istio.io/gateways",
        "ClusterRole rotator-read: get networking.istio.io/virtualservices",
        "ClusterRole rotator-read: list networking.istio.io/virtualservices",
        "ClusterRole rotator-secrets: list secrets",
        "ClusterRole rotator-secrets: update secrets",
        "Role rotator/rotator-lock: update coordination.k8s.io/leases [rotator-lock]",
    ]


def test_rbac_denials_have_the_real_message_shape(rbac_cluster: FakeCluster, tmp_path: Path) -> None:
    with api_for(rbac_cluster, tmp_path) as api:
        core, leases = client.CoreV1Api(api), client.CoordinationV1Api(api)
        with pytest.raises(ForbiddenException) as err:
            core.read_namespaced_secret("cert", "default")  # RoleBinding only covers istio-system
        assert status_of(err.value) == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": f'secrets "cert" is forbidden: User "{SA}" cannot get resource "secrets" in API group "" '
            'in the namespace "default"',
            "reason": "Forbidden",
            "details": {"name": "cert", "kind": "secrets"},
            "code": 403,
        }
        with pytest.raises(ForbiddenException) as err2:
            core.list_secret_for_all_namespaces()
        assert status_of(err2.value)["message"] == (
            f'secrets is forbidden: User "{SA}" cannot list resource "secrets" in API group "" at the cluster scope'
        )
        with pytest.raises(ForbiddenException):  # resourceNames cannot restrict list...
            leases.list_namespaced_lease("rotator")
        with pytest.raises(ForbiddenException):  # ...and only names what they name
            leases.read_namespaced_lease("other", "rotator")
        with pytest.raises(ForbiddenException) as err3:  # pods/log does not grant pods
            core.read_namespaced_pod("p", "rotator")
        assert 'cannot get resource "pods" in API group ""' in status_of(err3.value)["message"]
        with pytest.raises(ForbiddenException) as err4:
            client.CustomObjectsApi(api).get_namespaced_custom_object(
                "gateway.networking.k8s.io", "v1", "istio-system", "gateways", "x"
            )
        assert status_of(err4.value)["details"] == {
            "name": "x",
            "group": "gateway.networking.k8s.io",
            "kind": "gateways",
        }
    denied = rbac_cluster.denied()
    assert [(r.verb, r.resource, r.namespace, r.name) for r in denied] == [
        ("get", "secrets", "default", "cert"),
        ("list", "secrets", None, None),
        ("list", "leases", "rotator", None),
        ("get", "leases", "rotator", "other"),
        ("get", "pods", "rotator", "p"),
        ("get", "gateways", "istio-system", "x"),
    ]
    assert all(r.status == 403 and r.user == SA for r in denied)


def test_admin_token_bypasses_rbac_and_other_users_can_be_added(rbac_cluster: FakeCluster, tmp_path: Path) -> None:
    with api_for(rbac_cluster, tmp_path, token=rbac_cluster.admin_token) as api:
        assert client.CoreV1Api(api).list_secret_for_all_namespaces().items
    rbac_cluster.add_user("other-token", "system:serviceaccount:other:other")
    with api_for(rbac_cluster, tmp_path, token="other-token") as api, pytest.raises(ForbiddenException):
        client.CustomObjectsApi(api).list_cluster_custom_object("networking.istio.io", "v1", "gateways")
    assert rbac_cluster.requests[0].user == "kubernetes-admin"
    assert len(rbac_cluster.unused_rules()) == 11  # neither admin nor the other user exercised any rule


def test_binding_to_a_missing_role_is_reported_in_the_denial() -> None:
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "ghost"},
            "roleRef": {"kind": "ClusterRole", "name": "ghost"},
            "subjects": [{"kind": "ServiceAccount", "name": "rotator", "namespace": "rotator"}],
        }
    ]
    with FakeCluster(rbac_manifests=docs) as cluster:
        resp = urllib3.PoolManager().request(
            "GET", cluster.url + "/api/v1/namespaces/x/secrets", headers={"Authorization": "Bearer rotator-token"}
        )
    assert resp.status == 403
    assert json.loads(resp.data)["message"].endswith(': RBAC: clusterrole.rbac.authorization.k8s.io "ghost" not found')


def test_without_manifests_everything_is_allowed(cluster: FakeCluster, core: client.CoreV1Api) -> None:
    core.list_secret_for_all_namespaces()
    assert cluster.unused_rules() == [] and cluster.denied() == []


# ---------------------------------------------------------------- faults


def test_fault_500_once_then_normal(cluster: FakeCluster, core: client.CoreV1Api) -> None:
    cluster.fault(verb="list", resource="secrets", status=500)
    with pytest.raises(NotFoundException):  # a get does not match, so it does not consume the fault
        core.read_namespaced_secret("missing", "default")
    with pytest.raises(ServiceException) as err:
        core.list_namespaced_secret("default")
    body = status_of(err.value)
    assert (body["code"], body["reason"]) == (500, "InternalError")
    assert core.list_namespaced_secret("default").items == []
    assert [(r.status, r.faulted) for r in cluster.requests] == [(404, False), (500, True), (200, False)]


def test_fault_429_carries_retry_after(cluster: FakeCluster, core: client.CoreV1Api) -> None:
    cluster.fault(method="POST", status=429, retry_after=7)
    with pytest.raises(ApiException) as err:  # POST: urllib3 does not retry, the caller sees the 429
        core.create_namespaced_secret("default", secret("s", namespace="default"))
    assert err.value.status == 429 and err.value.headers["Retry-After"] == "7"
    body = status_of(err.value)
    assert body["reason"] == "TooManyRequests" and body["details"] == {"retryAfterSeconds": 7}
    assert body["message"] == "Too many requests, please try again later."
    # GET: urllib3's default Retry honours Retry-After on 413/429/503 and retries by itself.
    cluster.fault(verb="list", status=429, retry_after=0)
    assert core.list_namespaced_secret("default").items == []
    assert [r.status for r in cluster.requests[-2:]] == [429, 200]
    cluster.fault(verb="list", status=429, retry_after=0, times=4)  # original + urllib3's 3 retries
    with pytest.raises(ApiException) as err2:
        core.list_namespaced_secret("default")
    assert err2.value.status == 429
    assert [r.status for r in cluster.requests[-4:]] == [429] * 4


def test_fault_503_and_injected_conflict_and_forbidden(cluster: FakeCluster, core: client.CoreV1Api) -> None:
    cluster.add(secret("s", namespace="default"))
    cluster.fault(method="POST", status=503, retry_after=2)
    cluster.fault(verb="update", status=409)
    cluster.fault(verb="get", status=403)
    with pytest.raises(ServiceException) as err:
        core.create_namespaced_secret("default", secret("t", namespace="default"))
    assert err.value.status == 503 and err.value.headers["Retry-After"] == "2"
    assert status_of(err.value)["reason"] == "ServiceUnavailable"
    with pytest.raises(ForbiddenException) as err2:
        core.read_namespaced_secret("s", "default")
    assert status_of(err2.value)["message"].startswith('secrets "s" is forbidden: User "system:serviceaccount:')
    with pytest.raises(ConflictException) as err3:
        core.replace_namespaced_secret("s", "default", secret("s", namespace="default"))
    assert status_of(err3.value)["message"].startswith('Operation cannot be fulfilled on secrets "s"')
    assert cluster.denied() == []  # injected 403s are not RBAC denials


def test_dropped_connection_surfaces_as_urllib3_errors(cluster: FakeCluster, core: client.CoreV1Api) -> None:
    cluster.fault(method="POST", drop_connection=True)
    with pytest.raises(urllib3.exceptions.ProtocolError):  # POST is not retried by urllib3
        core.create_namespaced_secret("default", secret("x", namespace="default"))
    assert cluster.get("v1", "Secret", "default", "x") is None

    cluster.fault(verb="list", drop_connection=True)  # once: urllib3's default Retry(3) retries the GET
    assert core.list_namespaced_secret("default").items == []
    assert [r.status for r in cluster.requests[-2:]] == [0, 200]

    cluster.fault(verb="list", drop_connection=True, times=4)  # original + 3 retries
    with pytest.raises(urllib3.exceptions.MaxRetryError) as err:
        core.list_namespaced_secret("default")
    assert isinstance(err.value.reason, urllib3.exceptions.ProtocolError)


def test_delay_fault(cluster: FakeCluster, core: client.CoreV1Api) -> None:
    cluster.fault(verb="list", delay=0.1)
    start = time.perf_counter()
    core.list_namespaced_secret("default")
    assert time.perf_counter() - start >= 0.1
    cluster.fault(method="POST", delay=0.1)
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        core.create_namespaced_secret("default", secret("slow", namespace="default"), _request_timeout=0.02)


def test_before_hook_plays_a_concurrent_writer(cluster: FakeCluster, core: client.CoreV1Api) -> None:
    cluster.add(secret("cert"))
    seen: list[Request] = []

    def concurrent_writer(c: FakeCluster, req: Request) -> None:
        seen.append(req)
        current = c.get("v1", "Secret", req.namespace, req.name or "")
        assert current is not None
        current["metadata"].setdefault("annotations", {})["writer"] = "other"
        c.add(current)

    mine = core.read_namespaced_secret("cert", "istio-system")
    cluster.fault(verb="update", resource="secrets", before=concurrent_writer)
    mine.data = {"k": b64("mine")}
    with pytest.raises(ConflictException):
        core.replace_namespaced_secret("cert", "istio-system", mine)
    assert [(r.method, r.namespace, r.name) for r in seen] == [("PUT", "istio-system", "cert")]
    fresh = core.read_namespaced_secret("cert", "istio-system")  # the retry a correct client performs
    fresh.data = {"k": b64("mine")}
    done = core.replace_namespaced_secret("cert", "istio-system", fresh)
    assert done.metadata.annotations == {"writer": "other"} and done.data == {"k": b64("mine")}


def test_a_hook_that_raises_becomes_a_500_and_is_recorded() -> None:
    with FakeCluster() as cluster:

        def boom(c: FakeCluster, r: Request) -> None:
            raise RuntimeError("hook failed")

        cluster.fault(before=boom)
        http = urllib3.PoolManager()
        resp = http.request("GET", cluster.url + "/api", headers={"Authorization": "Bearer admin-token"})
        assert resp.status == 500 and "hook failed" in cluster.errors[0]
        assert cluster.requests[0].error is not None


# ---------------------------------------------------------------- other APIs


def test_events_share_storage_between_events_v1_and_core_v1(cluster: FakeCluster, api: ApiClient) -> None:
    events, core = client.EventsV1Api(api), client.CoreV1Api(api)
    now = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
    body = {
        "metadata": {"generateName": "cert-"},
        "eventTime": now,
        "reportingController": "rotator.example.com/rotator",
        "reportingInstance": "rotator-0",
        "action": "Rotate",
        "reason": "Rotated",
        "type": "Normal",
        "note": "rotated istio-system/cert",
        "regarding": {"kind": "Secret", "namespace": "istio-system", "name": "cert"},
    }
    created = events.create_namespaced_event("istio-system", body)
    assert created.event_time == now and created.regarding.name == "cert"
    legacy = core.list_namespaced_event("istio-system", field_selector="involvedObject.name=cert").items
    assert [(e.message, e.reporting_component, e.involved_object.kind) for e in legacy] == [
        ("rotated istio-system/cert", "rotator.example.com/rotator", "Secret")
    ]
    raw = json.loads(events.list_namespaced_event("istio-system", _preload_content=False).data)
    assert raw["items"][0]["eventTime"] == "2026-01-02T03:04:05.678901Z"
    with pytest.raises(UnprocessableEntityException) as err:
        events.create_namespaced_event("istio-system", {**body, "reportingController": "", "type": "Info"})
    assert re.fullmatch(
        r'Event\.events\.k8s\.io "cert-[a-z0-9]{5}" is invalid: \[reportingController: Required value, '
        r'type: Invalid value: "": has invalid value: Info\]',
        status_of(err.value)["message"],
    )


def test_leases_and_the_micro_time_format(cluster: FakeCluster, api: ApiClient) -> None:
    leases = client.CoordinationV1Api(api)
    renew = dt.datetime(2026, 1, 1, 12, 0, 0, 1, tzinfo=dt.UTC)
    spec = {"holderIdentity": "rotator-0", "leaseDurationSeconds": 15, "renewTime": renew}
    lease = leases.create_namespaced_lease("rotator", {"metadata": {"name": "lock"}, "spec": spec})
    assert lease.spec.renew_time == renew
    stale = leases.read_namespaced_lease("lock", "rotator")
    lease.spec.holder_identity = "rotator-1"
    leases.replace_namespaced_lease("lock", "rotator", lease)
    with pytest.raises(ConflictException):
        leases.replace_namespaced_lease("lock", "rotator", stale)
    # Go's MicroTime needs exactly six fractional digits; Python omits them for whole seconds.
    whole = {"metadata": {"name": "l2"}, "spec": {"renewTime": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)}}
    with pytest.raises(BadRequestException) as err:
        leases.create_namespaced_lease("rotator", whole)
    assert status_of(err.value)["message"] == (
        'Lease in version "v1" cannot be handled as a Lease: parsing time "2026-01-01T00:00:00+00:00" as '
        '"2006-01-02T15:04:05.000000Z07:00": cannot parse "+00:00" as ".000000"'
    )


def test_namespaces_are_cluster_scoped_and_deleting_one_removes_its_objects(
    cluster: FakeCluster, core: client.CoreV1Api
) -> None:
    ns = core.create_namespace({"metadata": {"name": "team"}})
    assert ns.status.phase == "Active" and ns.metadata.labels == {"kubernetes.io/metadata.name": "team"}
    core.create_namespaced_secret("team", secret("s", namespace="team"))
    assert cluster.requests[-1].namespace == "team"
    assert [n.metadata.name for n in core.list_namespace().items] == ["team"]
    core.delete_namespace("team")
    assert cluster.list("v1", "Secret", "team") == [] and cluster.list("v1", "Namespace") == []


def test_watch_is_refused_and_delete_collection_works(cluster: FakeCluster, core: client.CoreV1Api) -> None:
    for name in ("a", "b", "c"):
        cluster.add(secret(name, labels={"drop": "yes"} if name != "c" else {}))
    with pytest.raises(ApiException) as err:
        core.list_namespaced_secret("istio-system", watch=True)
    assert err.value.status == 405
    core.delete_collection_namespaced_secret("istio-system", label_selector="drop=yes")
    assert [s["metadata"]["name"] for s in cluster.list("v1", "Secret")] == ["c"]


# ---------------------------------------------------------------- seeding helpers and concurrency


def test_add_get_list_helpers(cluster: FakeCluster) -> None:
    first = cluster.add({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}})
    assert first["metadata"]["namespace"] == "default" and first["apiVersion"] == "v1"
    again = cluster.add({**first, "data": {"a": "2"}})
    assert again["metadata"]["uid"] == first["metadata"]["uid"]
    assert int(again["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    stored = cluster.get("v1", "ConfigMap", None, "c")
    assert stored is not None and stored["data"] == {"a": "2"}
    stored["data"]["a"] = "mutated"  # a copy: the store is unaffected
    assert cluster.get("v1", "ConfigMap", "default", "c")["data"] == {"a": "2"}  # type: ignore[index]
    cluster.add(gateway("gw", version="v1alpha3"))
    assert [g["apiVersion"] for g in cluster.list("networking.istio.io/v1beta1", "Gateway", "istio-system")] == [
        "networking.istio.io/v1beta1"
    ]
    assert cluster.remove("v1", "ConfigMap", None, "c") and cluster.get("v1", "ConfigMap", None, "c") is None
    with pytest.raises(KeyError):
        cluster.add({"apiVersion": "v9", "kind": "Nope", "metadata": {"name": "x"}})


def test_concurrent_clients_get_distinct_resource_versions(cluster: FakeCluster, tmp_path: Path) -> None:
    api = api_for(cluster, tmp_path)
    core = client.CoreV1Api(api)
    versions: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for i in range(20):
            s = core.create_namespaced_secret("default", secret(f"w{n}-{i}", namespace="default"))
            with lock:
                versions.append(s.metadata.resource_version)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    api.close()
    assert len(versions) == len(set(versions)) == 120
    assert len(cluster.list("v1", "Secret", "default")) == 120
    cluster.reset_requests()
    assert cluster.requests == []


def test_generate_name_is_validated_as_a_prefix_like_the_real_server(tmp_path: Path) -> None:
    import kubernetes

    with FakeCluster() as cluster:
        api = kubernetes.client.CoreV1Api(
            kubernetes.config.new_client_from_config(
                config_file=str(cluster.kubeconfig(tmp_path / "k", token="admin-token"))
            )
        )
        body = {"metadata": {"generateName": "app-tls.", "namespace": "default"}, "data": {}}
        with pytest.raises(kubernetes.client.ApiException) as info:
            api.create_namespaced_secret("default", body)
        assert info.value.status == 422
        ok = api.create_namespaced_secret("default", {"metadata": {"generateName": "app-tls-"}, "data": {}})
        assert ok.metadata.name.startswith("app-tls-")
