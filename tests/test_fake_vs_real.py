"""tests/support/fakeapi checked against the real kube-apiserver: one request sequence —
every verb and path rotator uses, including its errors — run as rotator's ServiceAccount
under deploy/'s RBAC against both, and the answers compared: status, reason, and the
shape of each object (its top-level and metadata fields). The fake stays for fault
injection the real server cannot do; this keeps it honest about everything else."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from rotator.kube.api import EVENTS, SECRETS, ApiError, KubeAPI, connect
from rotator.kube.events import event_body
from rotator.kube.leader import LEASES
from tests.support import kube, realkube
from tests.support.factory import b64
from tests.support.fakeapi import FakeCluster

pytestmark = pytest.mark.realkube
NS = "istio-system"
# Fields a server fills in that depend on its own bookkeeping, not on the protocol.
VOLATILE = {"managedFields"}


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import os

    why = realkube.missing()
    if why is not None:
        if os.environ.get("ROTATOR_REALKUBE") == "required":
            pytest.fail(why)
        pytest.skip(why)
    return realkube.make_golden(tmp_path_factory.mktemp("golden") / "g")


def tls_secret(name: str, data: dict[str, bytes] | None = None) -> dict[str, Any]:
    payload = data if data is not None else {"tls.crt": b"c", "tls.key": b"k"}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": NS, "labels": {"app.kubernetes.io/managed-by": "rotator"}},
        "data": {k: b64(v) for k, v in payload.items()},
    }


def shape(obj: Any) -> tuple[Any, ...]:
    if not isinstance(obj, dict):
        return (type(obj).__name__,)
    meta = obj.get("metadata") or {}
    return (
        obj.get("apiVersion"),
        obj.get("kind"),
        tuple(sorted(set(obj) - VOLATILE)),
        tuple(sorted(set(meta) - VOLATILE)),
    )


def sequence(api: KubeAPI) -> list[tuple[str, Any]]:
    """The requests rotator makes, in the order a pass makes them, with each answer."""
    out: list[tuple[str, Any]] = []

    def step(name: str, call: Callable[[], Any]) -> Any:
        try:
            value = call()
        except ApiError as exc:
            out.append((name, ("error", exc.status, exc.reason)))
            return None
        out.append((name, ("ok", shape(value))))
        return value

    step(
        "get a missing Secret",
        lambda: api.request("GET", SECRETS.path(NS, "nope"), verb="get", resource="secrets", namespace=NS, name="nope"),
    )
    created = step("create a Secret", lambda: api.create(SECRETS, NS, tls_secret("a-tls")))
    step("create it again", lambda: api.create(SECRETS, NS, tls_secret("a-tls")))
    current = step("get it", lambda: api.get(SECRETS, NS, "a-tls"))
    assert created is not None and current is not None
    stale = {**current, "metadata": {**current["metadata"]}}
    fresh = step("update it", lambda: api.update(SECRETS, NS, {**current, "data": {**current["data"], "x": b64("1")}}))
    out.append(
        (
            "update changes resourceVersion",
            fresh is not None and fresh["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"],
        )
    )
    step("update with a stale resourceVersion", lambda: api.update(SECRETS, NS, stale))
    step(
        "create an invalid TLS Secret (no tls.key)",
        lambda: api.create(SECRETS, NS, tls_secret("bad-tls", {"tls.crt": b"c"})),
    )
    step("create a Secret with a bad name", lambda: api.create(SECRETS, NS, tls_secret("Bad_Name")))
    for i in range(4):
        api.create(SECRETS, NS, tls_secret(f"page-{i}-tls"))
    pages = list(api.list_pages(SECRETS, NS, limit=2))
    out.append(("list with limit=2: pages", len(pages)))
    out.append(("list with limit=2: items", sorted(i["metadata"]["name"] for p in pages for i in p.get("items") or [])))
    out.append(("list page shape", shape(pages[0])))
    out.append(("list item shape", shape((pages[0].get("items") or [{}])[0])))
    out.append(("list page metadata", sorted(set(pages[0].get("metadata") or {}))))
    step(
        "list with a label selector",
        lambda: api.request(
            "GET",
            SECRETS.path(NS),
            verb="list",
            resource="secrets",
            namespace=NS,
            query={"labelSelector": "app.kubernetes.io/managed-by=rotator", "limit": "500"},
        ),
    )
    step("delete it", lambda: api.delete(SECRETS, NS, "page-0-tls"))
    step(
        "delete it again",
        lambda: api.request(
            "DELETE", SECRETS.path(NS, "page-0-tls"), verb="delete", resource="secrets", namespace=NS, name="page-0-tls"
        ),
    )
    step("get a Secret where RBAC allows none", lambda: api.get(SECRETS, "kube-system", "x"))
    step(
        "list Secrets cluster-wide",
        lambda: api.request("GET", SECRETS.path(None), verb="list", resource="secrets", query={"limit": "1"}),
    )
    event = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"generateName": "a-tls.", "namespace": NS},
        "eventTime": "2026-12-07T12:00:00.000000Z",
        "reportingController": "rotator.io/rotator",
        "reportingInstance": "rotator-test",
        "action": "Rotate",
        "reason": "Rotated",
        "type": "Normal",
        "note": "rotated",
        "regarding": {"apiVersion": "v1", "kind": "Secret", "namespace": NS, "name": "a-tls"},
    }
    step("create an Event with a generateName ending in '.'", lambda: api.create(EVENTS, NS, event))
    body = event_body(created, "Rotated", "Rotate", "rotated", "Normal", datetime.now(UTC), "rotator-test")
    step("create rotator's Event", lambda: api.create(EVENTS, NS, body))
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "rotator-leader", "namespace": "rotator"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15},
    }
    made = step("create the Lease", lambda: api.create(LEASES, "rotator", lease))
    got = step("get the Lease", lambda: api.get(LEASES, "rotator", "rotator-leader"))
    assert made is not None and got is not None
    step(
        "renew the Lease",
        lambda: api.update(LEASES, "rotator", {**got, "spec": {**got["spec"], "holderIdentity": "b"}}),
    )
    step("renew it from a stale read", lambda: api.update(LEASES, "rotator", got))
    step(
        "list Leases (not granted)",
        lambda: api.request("GET", LEASES.path("rotator"), verb="list", resource="leases", namespace="rotator"),
    )
    return out


@pytest.fixture
def real_api(golden: Path, tmp_path: Path) -> Iterator[KubeAPI]:
    with realkube.real_cluster(golden, tmp_path / "real") as c:
        c.kubectl("create", "namespace", NS)
        c.kubectl("apply", "--server-side", "-k", str(kube.ROOT / "deploy/overlays/cronjob"))
        yield KubeAPI(connect(str(c.kubeconfig(tmp_path / "kc", c.token()))), sleep=lambda s: None)


def test_the_fake_answers_rotators_requests_as_the_real_server_does(real_api: KubeAPI, tmp_path: Path) -> None:
    real = sequence(real_api)
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake:
        fake_answers = sequence(KubeAPI(connect(str(fake.kubeconfig(tmp_path / "fake-kc"))), sleep=lambda s: None))
    differences = [(name, r, f) for (name, r), (_, f) in zip(real, fake_answers, strict=True) if r != f]
    assert differences == []
