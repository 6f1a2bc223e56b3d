"""No wasted orders, no duplicates, no leftovers, and errors that say what failed.

Issue 10, items 4 and 5, against the fake API server with deploy/'s RBAC: each test
plays one fault and checks what was issued, what was written and what the report says.
"""

from __future__ import annotations

import base64
import threading
from pathlib import Path
from typing import Any

import pytest

from rotator.apply.pending import CLAIM_TTL, PENDING_ANN_CLAIMED_AT, PENDING_ANN_CLAIMED_BY, PENDING_LABEL, pending_name
from rotator.kube.api import SECRETS, ApiError
from tests.support import factory as f
from tests.support import kube
from tests.support.fakeapi import FakeCluster
from tests.support.world import (
    CA,
    HOST,
    NAME,
    NS,
    now,
    plan_from_cluster,
    renewer_for,
    secret_data,
    seed_two_namespace_world,
)

# --- item 4: wasted issuance and duplicates ---------------------------------------------------


def test_a_secret_rotator_may_not_read_is_never_ordered_for(tmp_path: Path) -> None:
    """The gateway runs in `edge`, where rotator has no Secret Role: 403 on every read."""
    ca = CA()
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake:
        kube.seed_object(fake, f.ingress("edge"))
        kube.seed_object(fake, f.gateway("gw", [f.server([HOST], NAME)], namespace="edge"))
        crt, key, _ = ca.leaf([HOST], days_left=1)
        kube.seed_object(fake, f.secret(NAME, "edge", data={"tls.crt": crt, "tls.key": key}))
        kube.seed_object(fake, ca.secret())
        kc = fake.kubeconfig(tmp_path / "kc")
        renewer, issuer, config = renewer_for(fake, kc, ca)
        for _pass in range(3):  # every back-off period, as before: never an order
            result, inv = plan_from_cluster(kc, config, now())
            (cred,) = [c for c in result.credentials if c.spec.name == NAME]
            assert cred.action == "skip" and cred.state == "invalid"
            assert "access-denied" in {x.code for x in cred.findings}
            assert renewer.run(result, inv) == []
        assert issuer.calls == []
        assert [r for r in fake.requests if r.resource == "secrets" and r.method != "GET"] == []


def test_two_uncoordinated_passes_order_each_certificate_once(tmp_path: Path) -> None:
    """No Lease between them: the second pass starts while the first is ordering."""
    ca = CA()
    names = [f"app{i}-tls" for i in range(10)]
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake:
        kube.seed_object(fake, f.ingress())
        kube.seed_object(fake, ca.secret())
        servers = []
        for i, name in enumerate(names):
            crt, key, _ = ca.leaf([f"app{i}.example.com"], days_left=3)
            kube.seed_object(fake, f.secret(name, data={"tls.crt": crt, "tls.key": key}))
            servers.append(f.server([f"app{i}.example.com"], name, name=f"https-{i}", port=1000 + i))
        kube.seed_object(fake, f.gateway("gw", servers))
        kc = fake.kubeconfig(tmp_path / "kc")
        first, first_issuer, config = renewer_for(fake, kc, ca)
        second, second_issuer, _ = renewer_for(fake, kc, ca)
        first.pending.identity, second.pending.identity = "cronjob-pod/1", "ops-laptop/2"
        plan = plan_from_cluster(kc, config, now())  # both planned from the same reading
        outcomes: dict[str, list[Any]] = {}
        inner = first_issuer.inner.issue

        def issue_then_let_the_other_pass_run(request: Any) -> Any:
            if "second" not in outcomes:
                outcomes["second"] = []
                t = threading.Thread(target=lambda: outcomes["second"].extend(second.run(*plan)))
                t.start()
                t.join()
            return inner(request)

        first_issuer.inner.issue = issue_then_let_the_other_pass_run
        outcomes["first"] = first.run(*plan)
        ordered = sorted(first_issuer.calls + second_issuer.calls)
        assert ordered == sorted(names)  # each certificate ordered exactly once, by one pass or the other
        by_name: dict[str, list[str]] = {}
        for o in outcomes["first"] + outcomes["second"]:
            by_name.setdefault(o.name, []).append(o.status)
        assert all(sorted(v) == ["renewed", "skipped"] for v in by_name.values()), by_name
        skipped = [o.message for o in outcomes["first"] + outcomes["second"] if o.status == "skipped"]
        # the other pass saw the order in flight, or (it finished meanwhile) the new certificate
        assert skipped and all(
            "is ordering this certificate" in m or "renewed by another writer since this pass read it" in m
            for m in skipped
        ), skipped
        for name in names:  # every Secret rotated, and no pending Secret (a live key) left behind
            assert secret_data(fake, name)["tls.crt"] != plan[1].secret(NS, name).data["tls.crt"]
            assert fake.get("v1", "Secret", NS, pending_name(name)) is None
        assert fake.denied() == []


def test_a_claim_of_a_dead_pass_is_taken_over_after_its_ttl(tmp_path: Path) -> None:
    ca = CA()
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake:
        seed_one(fake, ca)
        stale = (now() - CLAIM_TTL).strftime("%Y-%m-%dT%H:%M:%SZ")
        kube.seed_object(fake, claim(NAME, "dead-pod/9", stale))
        kc = fake.kubeconfig(tmp_path / "kc")
        renewer, issuer, config = renewer_for(fake, kc, ca)
        result, inv = plan_from_cluster(kc, config, now())
        (outcome,) = renewer.run(result, inv)
        assert outcome.status == "renewed" and issuer.calls == [NAME]
        assert fake.get("v1", "Secret", NS, pending_name(NAME)) is None


# --- item 5: leftovers -----------------------------------------------------------------------------


def seed_one(fake: FakeCluster, ca: CA, days_left: float = 3) -> bytes:
    kube.seed_object(fake, f.ingress())
    kube.seed_object(fake, f.gateway("gw", [f.server([HOST], NAME)]))
    crt, key, _ = ca.leaf([HOST], days_left=days_left)
    kube.seed_object(fake, f.secret(NAME, data={"tls.crt": crt, "tls.key": key}))
    kube.seed_object(fake, ca.secret())
    return crt


def claim(name: str, holder: str, at: str) -> dict[str, Any]:
    body = f.secret(pending_name(name), type_="Opaque")
    body["metadata"]["labels"] = {PENDING_LABEL: name}
    body["metadata"]["annotations"] = {PENDING_ANN_CLAIMED_BY: holder, PENDING_ANN_CLAIMED_AT: at}
    return body


def pending_with(name: str, crt: bytes, key: bytes) -> dict[str, Any]:
    body = f.secret(pending_name(name), data={"tls.crt": crt, "tls.key": key}, type_="Opaque")
    body["metadata"]["labels"] = {PENDING_LABEL: name}
    body["metadata"]["annotations"] = {"rotator.io/pending-sans": HOST, "rotator.io/pending-issuer": "internal"}
    return body


def test_a_pending_secret_left_after_a_finished_rotation_is_swept(tmp_path: Path) -> None:
    """Killed between the update and the delete: the Secret holds the new certificate, and
    the pending Secret with its live private key would stay forever."""
    ca = CA()
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake:
        seed_one(fake, ca)
        crt, key, _ = ca.leaf([HOST], days_left=60)
        kube.seed_object(fake, f.secret(NAME, data={"tls.crt": crt, "tls.key": key}))  # the write landed
        kube.seed_object(fake, pending_with(NAME, crt, key))  # the delete did not
        waiting_crt, waiting_key, _ = ca.leaf(["other.example.com"], days_left=60)
        kube.seed_object(fake, f.secret("other-tls", data={"tls.crt": crt, "tls.key": key}))
        kube.seed_object(fake, pending_with("other-tls", waiting_crt, waiting_key))  # still to be written
        expired_crt, expired_key, _ = ca.leaf(["gone.example.com"], days_left=-1)
        kube.seed_object(fake, pending_with("gone-tls", expired_crt, expired_key))
        kube.seed_object(fake, claim("dead-tls", "dead/1", "2020-01-01T00:00:00Z"))
        kc = fake.kubeconfig(tmp_path / "kc")
        renewer, issuer, config = renewer_for(fake, kc, ca)
        result, inv = plan_from_cluster(kc, config, now())
        assert renewer.run(result, inv) == []  # nothing is due: the sweep runs all the same
        left = sorted(
            s["metadata"]["name"] for s in fake.list("v1", "Secret", NS) if "pending" in s["metadata"]["name"]
        )
        assert left == [pending_name("other-tls")]  # the safety net of a renewal not yet written stays
        assert issuer.calls == []


def test_a_pending_certificate_the_secret_already_holds_is_not_reported_as_a_renewal(tmp_path: Path) -> None:
    """The plan was made before an earlier pass's write landed: reusing its pending
    certificate writes nothing, and the report must not claim a renewal."""
    ca = CA()
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake:
        seed_one(fake, ca)
        kc = fake.kubeconfig(tmp_path / "kc")
        renewer, issuer, config = renewer_for(fake, kc, ca)
        result, inv = plan_from_cluster(kc, config, now())  # planned from the old certificate
        crt, key, _ = ca.leaf([HOST], days_left=60)
        kube.seed_object(fake, f.secret(NAME, data={"tls.crt": crt, "tls.key": key}))  # then the other write lands
        kube.seed_object(fake, pending_with(NAME, crt, key))
        renewer.sweep = lambda *a: []  # type: ignore[method-assign]  # the sweep ran before that write
        (outcome,) = renewer.run(result, inv)
        assert outcome.status != "renewed" and "nothing written" in outcome.message
        assert issuer.calls == [] and secret_data(fake)["tls.crt"] == crt
        assert fake.get("v1", "Secret", NS, pending_name(NAME)) is None


def test_a_lost_response_on_the_pending_write_is_read_back(tmp_path: Path) -> None:
    """The update of the pending Secret landed but its response was lost: the retry gets
    409. That is kept, not "not kept": a failing write then keeps it for the next pass."""
    ca = CA()
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake:
        seed_one(fake, ca)
        kc = fake.kubeconfig(tmp_path / "kc")
        renewer, issuer, config = renewer_for(fake, kc, ca)

        def apply_then_drop(cluster: FakeCluster, req: Any) -> None:
            body = dict(req.body)
            cluster.add(body)

        fake.fault(method="PUT", name=pending_name(NAME), before=apply_then_drop, drop_connection=True)
        fake.fault(method="PUT", name=NAME, status=500, times=1000)  # and the write itself fails
        result, inv = plan_from_cluster(kc, config, now())
        (outcome,) = renewer.run(result, inv)
        assert outcome.status == "failed" and "kept in Secret" in outcome.message, outcome.message
        fake.clear_faults()
        (again,) = renewer.run(*plan_from_cluster(kc, config, now()))
        assert again.status == "renewed" and again.reused_pending and issuer.calls == [NAME]


@pytest.mark.parametrize("status,times,renewed", [(503, 1000, False), (403, 1000, False), (403, 2, True)])
def test_a_ca_secret_that_cannot_be_read_is_renewal_failed_with_the_api_s_words(
    tmp_path: Path, status: int, times: int, renewed: bool
) -> None:
    ca = CA()
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake:
        seed_one(fake, ca)
        kc = fake.kubeconfig(tmp_path / "kc")
        from rotator.apply.renewer import Renewer
        from rotator.config.load import parse_config
        from rotator.issuers.factory import build_issuers
        from rotator.kube.state import MemoryState

        api = kube.api(kc)
        api.sleep = lambda s: None  # the back-off's length is not under test
        config = parse_config(
            {
                "issuers": {"internal": {"type": "ca", "secret": "rotator/internal-ca"}},
                "rules": [{"issuer": "internal"}],
            }
        )
        from rotator.apply.secret_writer import SecretWriter

        renewer = Renewer(api, config, build_issuers(config, api, now), SecretWriter(api, now), MemoryState(), now)
        fake.fault(method="GET", name="internal-ca", status=status, times=times)
        (outcome,) = renewer.run(*plan_from_cluster(kc, config, now()))
        if renewed:
            assert outcome.status == "renewed"
            return
        assert outcome.status == "failed" and "internal error" not in outcome.message
        assert "cannot read Secret rotator/internal-ca" in outcome.message  # the API's words follow
        assert ("forbidden" if status == 403 else f"HTTP {status}") in outcome.message
        assert {x.code for x in outcome.findings} == {"renewal-failed"}
        assert fake.get("v1", "Secret", NS, pending_name(NAME)) is None  # the claim was released


def test_continue_tokens_that_always_expire_fall_back_to_one_full_list(tmp_path: Path) -> None:
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake:
        for i in range(7):
            kube.seed_object(fake, f.secret(f"s{i}", leaf=f.make_leaf([f"s{i}.example.com"])))
        api = kube.api(fake.kubeconfig(tmp_path / "kc"))
        fake.fault(method="GET", resource="secrets", path_contains="continue=", status=410, times=1000)
        got = [s["metadata"]["name"] for s in api.items(SECRETS, NS, limit=2)]
        assert sorted(got) == [f"s{i}" for i in range(7)] and len(got) == 7
        lists = [r for r in fake.requests if r.resource == "secrets" and r.method == "GET"]
        assert "limit" not in lists[-1].query  # the fallback: one list, no pagination
        api.sleep = lambda s: None  # the retries' back-off is not under test
        fake.clear_faults()  # now the fallback fails too: the first page, then expired, then 503s
        fake.fault(method="GET", resource="secrets", path_contains="continue=", status=410, times=1000)
        fake.fault(method="GET", resource="secrets", path_contains="limit=", status=None, times=1)
        fake.fault(method="GET", resource="secrets", status=503, times=1000)
        with pytest.raises(ApiError) as err:
            list(api.items(SECRETS, NS, limit=2))
        assert "paginated list expired" in str(err.value) and "full list without pagination failed" in str(err.value)


def test_a_failed_backup_names_the_backup_not_the_secret(tmp_path: Path) -> None:
    from rotator.apply.secret_bodies import Material
    from rotator.apply.secret_writer import SecretWriter
    from rotator.kube.events import EventRecorder
    from rotator.model import Reference

    ca = CA()
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake:
        before = seed_one(fake, ca)
        api = kube.api(fake.kubeconfig(tmp_path / "kc"))
        writer = SecretWriter(api, now, EventRecorder(api, now))
        fake.fault(method="POST", resource="secrets", path_contains="", status=403, times=1)
        crt, key, _ = ca.leaf([HOST], days_left=60)
        from rotator.util import pki

        ref = Reference("networking.istio.io", "Gateway", NS, "gw", "https", 443, "SIMPLE", (HOST,))
        out = writer.write(NS, NAME, Material(crt + pki.cert_pem(ca.cert), key), [ref])
        assert out.status == "failed"
        assert f"{NAME}-rotator-backup-" in out.message and f"backup of Secret {NS}/{NAME}" in out.message
        assert f"secrets '{NAME}' " not in out.message  # the Secret itself was never the failing object
        assert base64.b64decode((fake.get("v1", "Secret", NS, NAME) or {})["data"]["tls.crt"]) == before


def test_a_claim_lasts_at_least_twice_the_longest_order_the_config_allows() -> None:
    from datetime import timedelta

    from rotator.apply.pending import longest_order
    from rotator.config.load import parse_config

    acme = {
        "type": "acme",
        "directory": "https://acme.test/dir",
        "terms_agreed": True,
        "solver": "http01",
        "http01": {"listen": "0.0.0.0:8089"},
    }
    slow = parse_config({"issuers": {"le": {**acme, "timeout": "1h"}}})
    assert longest_order(slow) == timedelta(hours=1)
    fake_api: Any = object()
    from rotator.apply.pending import PendingStore

    store = PendingStore(fake_api, now, "me", ttl=2 * longest_order(slow))
    claim = {"metadata": {"annotations": {PENDING_ANN_CLAIMED_BY: "other/1", PENDING_ANN_CLAIMED_AT: _ago(90)}}}
    assert store._held_elsewhere(claim) is not None  # 90 minutes into a 2-hour order: still theirs
    quick = PendingStore(fake_api, now, "me")
    assert quick._held_elsewhere(claim) is None  # the 15-minute floor for quick issuers


def _ago(minutes: int) -> str:
    from datetime import timedelta

    return (now() - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_pending_certificate_only_half_written_to_its_copies_is_kept(tmp_path: Path) -> None:
    """Copies in two gateway namespaces: the first got the new certificate, the second's
    write failed. The pending Secret is still the second's safety net."""
    ca = CA()
    with FakeCluster(rbac_manifests=kube.deploy_rbac(("ingress-b",))) as fake:
        seed_two_namespace_world(fake, ca)
        new_crt, new_key, _ = ca.leaf([HOST], days_left=60)
        old_crt, old_key, _ = ca.leaf([HOST], days_left=3)
        # the lead copy (first namespace in order) got it; the other's write failed
        kube.seed_object(fake, f.secret(NAME, "ingress-b", data={"tls.crt": new_crt, "tls.key": new_key}))
        kube.seed_object(fake, f.secret(NAME, NS, data={"tls.crt": old_crt, "tls.key": old_key}))
        pending = pending_with(NAME, new_crt, new_key)
        pending["metadata"]["namespace"] = "ingress-b"  # kept beside the lead copy
        kube.seed_object(fake, pending)
        kc = fake.kubeconfig(tmp_path / "kc")
        renewer, issuer, config = renewer_for(
            fake, kc, ca, rules=[{"issuer": "internal", "gateway_namespaces": ["edge"]}]
        )
        result, inv = plan_from_cluster(kc, config, now())
        assert renewer.sweep(result, inv) == []  # not swept ...
        (outcome,) = renewer.run(result, inv)
        assert outcome.status == "renewed" and issuer.calls == []  # ... and written to the lagging copy, no new order
        assert secret_data(fake, ns=NS)["tls.crt"] == new_crt
