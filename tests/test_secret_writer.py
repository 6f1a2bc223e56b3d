"""Safe Secret writes and rollback against the fake API server (real client, real socket).

Every scenario ends by checking what Istio would load: the stored Secret must inspect
clean, whatever faults were injected.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time

from rotator.apply.rollback import restore
from rotator.apply.secret_bodies import ANN_BACKUP_OF, ANN_ROLLED_BACK_AT, ANN_SERIAL, LABEL_BACKUP_OF, Material
from rotator.apply.secret_writer import SecretWriter
from rotator.checks.inspect import InspectOptions, inspect
from rotator.cli import main
from rotator.findings import INVALID
from rotator.kube.api import KubeAPI
from rotator.kube.events import EventRecorder
from rotator.model import CredentialSpec, Inventory, Reference, Secret
from tests.support import factory as f
from tests.support import kube
from tests.support.fakeapi import FakeCluster

NS, NAME, HOST = "istio-system", "app-tls", "app.example.com"
REF = Reference("networking.istio.io", "Gateway", NS, "gw", "https", 443, "SIMPLE", (HOST,))


def material(hosts: tuple[str, ...] = (HOST,), nb: float = -1, na: float = 90) -> Material:
    leaf = f.make_leaf(list(hosts), nb=nb, na=na)
    return Material(leaf.cert_pem(), leaf.key_pem(), "test-ca")


def data_of(obj: dict[str, Any]) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}


def assert_serves(cluster: FakeCluster, name: str = NAME) -> dict[str, Any]:
    """The stored Secret is one Istio can load for HOST (no invalidating findings)."""
    obj = cluster.get("v1", "Secret", NS, name)
    assert obj is not None
    secret = Secret(NS, name, obj.get("type", "Opaque"), data_of(obj))
    spec = CredentialSpec("Secret", NS, name, "server", (REF,))
    cred = inspect(spec, Inventory(secrets=(secret,)), f.NOW, InspectOptions())
    bad = [x for x in cred.findings if x.code in INVALID | {"cert-expired", "host-not-covered"}]
    assert not bad, bad
    return obj


class Env:
    def __init__(self, cluster: FakeCluster, api: KubeAPI) -> None:
        self.cluster = cluster
        self.api = api
        self.writer = SecretWriter(api, lambda: f.NOW, EventRecorder(api, lambda: f.NOW, "test"), retention=3)

    def secret_requests(self, method: str) -> list[Any]:
        return [r for r in self.cluster.requests if r.resource == "secrets" and r.method == method]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as cluster:
        original = f.make_leaf([HOST], nb=-80, na=5)
        kube.seed_object(
            cluster,
            f.secret(
                NAME,
                leaf=original,
                data={"ca.crt": f.make_ca("Client CA").pem(), "tls.ocsp-staple": b"old staple", "extra": b"keep me"},
                annotations={"team": "edge"},
            ),
        )
        obj = cluster.get("v1", "Secret", NS, NAME)
        assert obj is not None
        obj["metadata"]["labels"] = {"app": "web"}
        cluster.add(obj)
        yield Env(cluster, kube.api(cluster.kubeconfig(tmp_path / "kc")))
        assert cluster.errors == []


def test_rotation_is_one_complete_update_after_a_backup(env: Env) -> None:
    before = env.cluster.get("v1", "Secret", NS, NAME)
    assert before is not None
    new = material()
    out = env.writer.write(NS, NAME, new, [REF])
    assert out.status == "rotated" and out.backup
    puts = env.secret_requests("PUT")
    assert [r.name for r in puts] == [NAME]  # exactly one write of the Secret
    posts = env.secret_requests("POST")
    assert env.cluster.requests.index(posts[0]) < env.cluster.requests.index(puts[0])  # backup first
    after = assert_serves(env.cluster)
    got = data_of(after)
    assert got["tls.crt"] == new.chain_pem and got["tls.key"] == new.key_pem
    assert "tls.ocsp-staple" not in got  # removed in the same write
    assert got["ca.crt"] == data_of(before)["ca.crt"] and got["extra"] == b"keep me"
    assert after["type"] == "kubernetes.io/tls"
    assert after["metadata"]["labels"] == {"app": "web"}
    ann = after["metadata"]["annotations"]
    assert ann["team"] == "edge" and ann[ANN_SERIAL] == out.serial
    backup = env.cluster.get("v1", "Secret", NS, out.backup)
    # the credential's keys, and only those: what rotator does not own is never copied
    assert backup is not None and data_of(backup) == {k: v for k, v in data_of(before).items() if k != "extra"}
    assert backup["metadata"]["annotations"][ANN_BACKUP_OF] == NAME
    events = [r for r in env.cluster.requests if r.api_group == "events.k8s.io" and r.method == "POST"]
    assert len(events) == 1 and events[0].body["reason"] == "Rotated"
    assert events[0].body["regarding"]["name"] == NAME


def test_cert_key_family_is_kept_and_the_shadowed_pair_removed(env: Env) -> None:
    stale = f.make_leaf([HOST], nb=-100, na=-1)
    current = f.make_leaf([HOST], nb=-80, na=5)
    kube.seed_object(
        env.cluster,
        f.secret(
            "generic",
            type_="Opaque",
            data={
                "cert": current.cert_pem(),
                "key": current.key_pem(),
                "tls.crt": stale.cert_pem(),
                "tls.key": stale.key_pem(),
            },
        ),
    )
    new = material()
    assert env.writer.write(NS, "generic", new, [REF]).status == "rotated"
    got = data_of(assert_serves(env.cluster, "generic"))
    assert set(got) == {"cert", "key"} and got["cert"] == new.chain_pem


def test_tls_typed_secret_keeps_both_families_in_step(env: Env) -> None:
    current = f.make_leaf([HOST], nb=-80, na=5)
    kube.seed_object(
        env.cluster, f.secret("typed", data={"cert": current.cert_pem(), "key": current.key_pem()}, leaf=current)
    )
    new = material()
    assert env.writer.write(NS, "typed", new, [REF]).status == "rotated"
    got = data_of(assert_serves(env.cluster, "typed"))
    assert got["cert"] == got["tls.crt"] == new.chain_pem and got["key"] == got["tls.key"] == new.key_pem


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (lambda: material(hosts=("other.example.com",)), "host-not-covered"),
        (lambda: material(nb=-100, na=-1), "cert-expired"),
        (lambda: Material(material().chain_pem, f.make_leaf([HOST]).key_pem()), "key-mismatch"),
        (lambda: Material(b"garbage", material().key_pem), "invalid-pem"),
    ],
)
def test_a_candidate_that_fails_validation_is_never_written(env: Env, bad: Any, code: str) -> None:
    before = env.cluster.get("v1", "Secret", NS, NAME)
    out = env.writer.write(NS, NAME, bad(), [REF])
    assert out.status == "failed" and code in [x.code for x in out.findings]
    assert env.secret_requests("PUT") == [] and env.secret_requests("POST") == []
    assert env.cluster.get("v1", "Secret", NS, NAME) == before
    events = [r.body for r in env.cluster.requests if r.api_group == "events.k8s.io"]
    assert [e["reason"] for e in events] == ["RotationFailed"] and events[0]["type"] == "Warning"


def test_concurrent_writer_causes_a_reread_not_an_overwrite(env: Env) -> None:
    theirs = material(na=120)

    def other_writer(cluster: FakeCluster, _req: Any) -> None:
        obj = cluster.get("v1", "Secret", NS, NAME)
        assert obj is not None
        obj["data"]["tls.crt"] = base64.b64encode(theirs.chain_pem).decode()
        obj["data"]["tls.key"] = base64.b64encode(theirs.key_pem).decode()
        cluster.add(obj)

    env.cluster.fault(method="PUT", path_contains=f"/secrets/{NAME}", before=other_writer, times=1)
    seen: list[bytes] = []

    def still_needed(current: dict[str, Any]) -> bool:
        seen.append(data_of(current)["tls.crt"])
        return False  # the other writer already rotated it

    out = env.writer.write(NS, NAME, material(), [REF], still_needed=still_needed)
    assert out.status == "skipped"
    assert seen == [theirs.chain_pem]  # re-read, re-checked
    assert data_of(assert_serves(env.cluster))["tls.crt"] == theirs.chain_pem  # theirs kept


def test_conflict_then_success_when_still_needed(env: Env) -> None:
    def touch(cluster: FakeCluster, _req: Any) -> None:
        obj = cluster.get("v1", "Secret", NS, NAME)
        assert obj is not None
        obj["metadata"].setdefault("annotations", {})["touched"] = "yes"
        cluster.add(obj)

    env.cluster.fault(method="PUT", path_contains=f"/secrets/{NAME}", before=touch, times=1)
    new = material()
    out = env.writer.write(NS, NAME, new, [REF], still_needed=lambda _c: True)
    assert out.status == "rotated"
    after = assert_serves(env.cluster)
    assert data_of(after)["tls.crt"] == new.chain_pem
    assert after["metadata"]["annotations"]["touched"] == "yes"  # their change survived ours
    assert [r.status for r in env.secret_requests("PUT")] == [409, 200]


def test_conflict_storm_gives_up_and_leaves_the_secret_valid(env: Env) -> None:
    before = env.cluster.get("v1", "Secret", NS, NAME)
    env.cluster.fault(method="PUT", path_contains=f"/secrets/{NAME}", status=409, times=50)
    out = env.writer.write(NS, NAME, material(), [REF], still_needed=lambda _c: True)
    assert out.status == "failed" and "conflicting writes" in out.message
    reasons = [r.body["reason"] for r in env.cluster.requests if r.api_group == "events.k8s.io"]
    assert reasons == ["RotationFailed"]
    after = env.cluster.get("v1", "Secret", NS, NAME)
    assert after is not None and before is not None and data_of(after) == data_of(before)
    assert len(env.secret_requests("PUT")) == env.writer.max_conflicts


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 500},
        {"status": 503},
        {"status": 429, "retry_after": 1},
        {"drop_connection": True},
        {"delay": 0.05},
    ],
)
def test_transient_faults_on_the_write_are_retried_and_nothing_is_lost(env: Env, fault: dict[str, Any]) -> None:
    env.cluster.fault(method="PUT", path_contains=f"/secrets/{NAME}", times=1, **fault)
    new = material()
    out = env.writer.write(NS, NAME, new, [REF])
    assert out.status == "rotated", out
    assert data_of(assert_serves(env.cluster))["tls.crt"] == new.chain_pem
    assert out.backup and env.cluster.get("v1", "Secret", NS, out.backup) is not None


def test_persistent_failure_leaves_the_old_secret_and_reports(env: Env) -> None:
    before = env.cluster.get("v1", "Secret", NS, NAME)
    env.cluster.fault(method="PUT", path_contains=f"/secrets/{NAME}", status=500, times=100)
    out = env.writer.write(NS, NAME, material(), [REF])
    assert out.status == "failed" and "500" in out.message
    after = env.cluster.get("v1", "Secret", NS, NAME)
    assert after is not None and before is not None and data_of(after) == data_of(before)
    assert_serves_old = data_of(after)["tls.crt"]
    assert assert_serves_old == data_of(before)["tls.crt"]


def test_writing_the_same_certificate_twice_is_idempotent(env: Env) -> None:
    new = material()
    assert env.writer.write(NS, NAME, new, [REF]).status == "rotated"
    env.cluster.reset_requests()
    assert env.writer.write(NS, NAME, new, [REF]).status == "unchanged"
    assert env.secret_requests("PUT") == [] and env.secret_requests("POST") == []


def test_missing_secret_is_created(env: Env) -> None:
    new = material()
    assert env.writer.write(NS, "brand-new", new, [REF]).status == "created"
    obj = assert_serves(env.cluster, "brand-new")
    assert obj["type"] == "kubernetes.io/tls"


def test_backups_are_bounded(env: Env) -> None:
    for _ in range(5):
        assert env.writer.write(NS, NAME, material(), [REF]).status == "rotated"
    backups = env.writer.backups(NS, NAME)
    assert len(backups) == 3
    assert all(b["metadata"]["labels"][LABEL_BACKUP_OF] == NAME for b in backups)


def test_rollback_restores_exactly_and_can_itself_be_undone(env: Env) -> None:
    original = env.cluster.get("v1", "Secret", NS, NAME)
    assert original is not None
    new = material()
    env.writer.write(NS, NAME, new, [REF])
    out = restore(env.writer, NS, NAME, [REF])
    assert out.status == "rolled-back", out
    restored = env.cluster.get("v1", "Secret", NS, NAME)
    assert restored is not None and data_of(restored) == data_of(original)
    assert ANN_ROLLED_BACK_AT in restored["metadata"]["annotations"]
    assert restored["metadata"]["labels"] == {"app": "web"}
    reasons = [r.body["reason"] for r in env.cluster.requests if r.api_group == "events.k8s.io"]
    assert reasons == ["Rotated", "RolledBack"]
    # the rotated version was backed up before the rollback, so undo works
    again = restore(env.writer, NS, NAME, [REF])
    assert again.status == "rolled-back"
    restored_again = env.cluster.get("v1", "Secret", NS, NAME)
    assert restored_again is not None and data_of(restored_again)["tls.crt"] == new.chain_pem


def test_rollback_refuses_a_backup_that_fails_validation(env: Env) -> None:
    env.writer.write(NS, NAME, material(), [REF])
    env.cluster.reset_requests()
    later = SecretWriter(env.api, lambda: f.t(30))  # the backed-up certificate expired by then
    out = restore(later, NS, NAME, [REF])
    assert out.status == "failed" and "cert-expired" in out.message
    assert env.secret_requests("PUT") == []


def test_rollback_with_nothing_to_restore(env: Env) -> None:
    out = restore(env.writer, NS, NAME, [REF])
    assert out.status == "failed" and "no backup" in out.message


def test_rbac_in_deploy_is_exactly_sufficient(tmp_path: Path) -> None:
    """A full pass (read, rotate with pruning, events, rollback) needs every rule and no more."""
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as cluster:
        kube.seed_object(cluster, f.ingress())
        kube.seed_object(
            cluster,
            f.gateway(
                "gw", [f.server([HOST], NAME, mode="MUTUAL", caCertCredentialName="configmap://istio-system/ca")]
            ),
        )
        kube.seed_object(cluster, f.config_map("ca", NS, {"ca.crt": f.make_ca().pem().decode()}))
        for i in range(3):  # enough names for a LIST to be cheaper than GETs
            kube.seed_object(cluster, f.gateway(f"gw{i}", [f.server([f"h{i}.example.com"], f"s{i}")]))
            kube.seed_object(cluster, f.secret(f"s{i}", leaf=f.make_leaf([f"h{i}.example.com"])))
        kube.seed_object(cluster, f.secret(NAME, leaf=f.make_leaf([HOST], nb=-80, na=5)))
        kc = cluster.kubeconfig(tmp_path / "kc")
        assert main(
            ["check", "--dry-run", "-o", "json", "--kubeconfig", str(kc), "--log-level", "error", "--at", "2026-06-01"],
            stdout=io.StringIO(),
        ) in (0, 1)
        api = kube.api(kc)
        writer = SecretWriter(api, lambda: f.NOW, EventRecorder(api, lambda: f.NOW, "t"), retention=1)
        assert writer.write(NS, NAME, material(), [REF]).status == "rotated"
        assert writer.write(NS, NAME, material(), [REF]).status == "rotated"  # prunes the first backup
        assert restore(writer, NS, NAME, [REF]).status == "rolled-back"
        # rotator's own namespace: the issuer's CA Secret, the ACME account key, the state
        from rotator.config.schema import ACMEIssuerConfig
        from rotator.issuers.acme.account import account_key_store
        from rotator.kube.secret_refs import secret_data
        from rotator.kube.state import ConfigMapState

        kube.seed_object(cluster, f.secret("internal-ca", "rotator", data={"tls.crt": b"x", "tls.key": b"y"}))
        assert set(secret_data(api, "rotator/internal-ca")) == {"tls.crt", "tls.key"}
        acme = ACMEIssuerConfig(type="acme", directory="https://acme.example/dir", solver="http01", http01={})
        key = account_key_store("le", acme, api)()
        assert account_key_store("le", acme, api)() == key  # created once, then read
        state = ConfigMapState(api, "rotator", "rotator-state", "renewal.json")
        state.update(f"{NS}/{NAME}", lambda _old: {"failures": 1})
        state.update(f"{NS}/{NAME}", lambda old: {"failures": (old or {}).get("failures", 0) + 1})
        assert state.get(f"{NS}/{NAME}") == {"failures": 2}
        from rotator.issuers.acme.http01 import ClusterRoutes

        routes = ClusterRoutes(api, "rotator", "rotator.rotator.svc.cluster.local", 8089)
        name = routes.name_for(HOST)
        routes.add(HOST, [f"{NS}/gw"], name)
        routes.add(HOST, [f"{NS}/gw"], name)  # a retry of the same order replaces its route
        routes.remove(name)
        from rotator.kube.leader import one_pass_lease

        with one_pass_lease(api, "rotator", "rotator-leader", "check/test", lambda: f.NOW) as may_write:
            assert may_write()  # created, renewed, then released: get/create/update
        assert cluster.denied() == []
        assert cluster.unused_rules() == []


@freeze_time(f.NOW)  # the command reads the clock; the fixtures' certificates are dated around f.NOW
def test_rollback_command(env: Env, tmp_path: Path) -> None:
    original = env.cluster.get("v1", "Secret", NS, NAME)
    assert original is not None
    kube.seed_object(env.cluster, f.ingress())
    kube.seed_object(env.cluster, f.gateway("gw", [f.server([HOST], NAME)]))
    env.writer.write(NS, NAME, material(), [REF])
    kc = str(env.cluster.kubeconfig(tmp_path / "kc2"))
    out = io.StringIO()
    assert main(["rollback", f"{NS}/{NAME}", "--list", "--kubeconfig", kc], stdout=out) == 0
    assert "rotator-backup" in out.getvalue()
    out = io.StringIO()
    assert main(["rollback", f"{NS}/{NAME}", "--dry-run", "--kubeconfig", kc], stdout=out) == 0
    assert "would restore" in out.getvalue()
    out = io.StringIO()
    assert main(["rollback", f"{NS}/{NAME}", "--kubeconfig", kc, "--log-level", "error"], stdout=out) == 0
    restored = env.cluster.get("v1", "Secret", NS, NAME)
    assert restored is not None and data_of(restored) == data_of(original)
    assert main(["rollback", "no-slash", "--kubeconfig", kc], stdout=io.StringIO()) == 3


def test_key_material_never_reaches_logs_or_events(env: Env, capsys: Any) -> None:
    from rotator.util import logs

    logs.configure("debug", "json")
    new = material()
    env.writer.write(NS, NAME, new, [REF])
    env.writer.write(NS, NAME, material(hosts=("x.example.org",)), [REF])  # a failing one too
    captured = capsys.readouterr()
    bodies = " ".join(str(r.body) for r in env.cluster.requests if r.api_group == "events.k8s.io")
    key_lines = [ln for ln in new.key_pem.decode().splitlines() if "-----" not in ln]
    for text in (captured.out, captured.err, bodies):
        assert "PRIVATE KEY" not in text
        assert not any(line in text for line in key_lines)


def test_every_namespace_copy_gets_the_same_certificate(tmp_path: Path) -> None:
    """Gateway pods in two namespaces each read their own copy (§2.2): both move together."""
    with FakeCluster(rbac_manifests=kube.deploy_rbac(("ingress-b",))) as cluster:
        for ns in (NS, "ingress-b"):
            kube.seed_object(cluster, f.secret(NAME, namespace=ns, leaf=f.make_leaf([HOST], nb=-80, na=5)))
        api = kube.api(cluster.kubeconfig(tmp_path / "kc"))
        writer = SecretWriter(api, lambda: f.NOW)
        new = material()
        cluster.fault(method="PUT", path_contains=f"/namespaces/ingress-b/secrets/{NAME}", status=500, times=100)
        outcomes = writer.write_copies([(NS, NAME), ("ingress-b", NAME)], new, [REF])
        assert [o.status for o in outcomes] == ["rotated", "failed"]
        cluster.clear_faults()
        # the next pass finishes the lagging copy; the rotated one is left alone
        outcomes = writer.write_copies([(NS, NAME), ("ingress-b", NAME)], new, [REF])
        assert [o.status for o in outcomes] == ["unchanged", "rotated"]
        serials = {
            ns: (cluster.get("v1", "Secret", ns, NAME) or {})["metadata"]["annotations"][ANN_SERIAL]
            for ns in (NS, "ingress-b")
        }
        assert len(set(serials.values())) == 1
        bad = writer.write_copies([(NS, NAME), ("ingress-b", NAME)], material(hosts=("x.example.org",)), [REF])
        assert [o.status for o in bad] == ["failed", "failed"]
        assert all("host-not-covered" in o.message for o in bad)


def test_without_a_recheck_a_conflict_never_overwrites(env: Env) -> None:
    """The safe default: a Secret that changed under us is left alone, not overwritten."""

    def touch(cluster: FakeCluster, _req: Any) -> None:
        obj = cluster.get("v1", "Secret", NS, NAME)
        assert obj is not None
        cluster.add(obj)  # any write bumps the resourceVersion

    before = env.cluster.get("v1", "Secret", NS, NAME)
    env.cluster.fault(method="PUT", path_contains=f"/secrets/{NAME}", before=touch, times=1)
    out = env.writer.write(NS, NAME, material(), [REF])
    assert out.status == "skipped" and "nothing overwritten" in out.message
    after = env.cluster.get("v1", "Secret", NS, NAME)
    assert after is not None and before is not None and data_of(after) == data_of(before)


def test_a_secret_changed_since_the_plan_read_it_is_rechecked(env: Env) -> None:
    planned = env.cluster.get("v1", "Secret", NS, NAME)
    assert planned is not None
    env.cluster.add(planned)  # someone wrote after the plan was made
    rv = planned["metadata"]["resourceVersion"]
    assert env.writer.write(NS, NAME, material(), [REF], read_version=rv).status == "skipped"
    assert env.secret_requests("PUT") == []
    seen: list[str] = []
    out = env.writer.write(
        NS,
        NAME,
        material(),
        [REF],
        read_version=rv,
        still_needed=lambda c: seen.append(c["metadata"]["resourceVersion"]) or True,
    )
    assert out.status == "rotated" and seen and seen[0] != rv


def test_two_writers_at_once_rotate_once(env: Env) -> None:
    import threading

    rv = (env.cluster.get("v1", "Secret", NS, NAME) or {})["metadata"]["resourceVersion"]
    results: list[str] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        writer = SecretWriter(env.api, lambda: f.NOW)
        barrier.wait()
        results.append(writer.write(NS, NAME, material(), [REF], read_version=rv).status)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["rotated", "skipped"]
    assert [r.status for r in env.secret_requests("PUT") if r.status == 200] == [200]


def test_an_update_applied_before_the_connection_dropped_counts_as_rotated(env: Env) -> None:
    def apply_then_drop(cluster: FakeCluster, req: Any) -> None:
        cluster.add(req.body)  # the server applied it; the client never hears back

    env.cluster.fault(method="PUT", path_contains=f"/secrets/{NAME}", before=apply_then_drop, drop_connection=True)
    new = material()
    out = env.writer.write(NS, NAME, new, [REF])
    assert out.status == "rotated" and out.backup
    assert data_of(assert_serves(env.cluster))["tls.crt"] == new.chain_pem
    reasons = [r.body["reason"] for r in env.cluster.requests if r.api_group == "events.k8s.io"]
    assert reasons == ["Rotated"]


def test_a_lost_backup_response_does_not_duplicate_the_backup(env: Env) -> None:
    def create_then_drop(cluster: FakeCluster, req: Any) -> None:
        body = dict(req.body)
        body["metadata"] = {**body["metadata"], "name": body["metadata"]["generateName"] + "lost1"}
        cluster.add(body)

    env.cluster.fault(method="POST", resource="secrets", before=create_then_drop, drop_connection=True)
    assert env.writer.write(NS, NAME, material(), [REF]).status == "rotated"
    assert len(env.writer.backups(NS, NAME)) == 1


def test_failed_pruning_does_not_fail_a_rotation(env: Env) -> None:
    env.writer.write(NS, NAME, material(), [REF])
    env.cluster.fault(method="DELETE", resource="secrets", status=500, times=100)
    env.writer.retention = 1
    out = env.writer.write(NS, NAME, material(), [REF])
    assert out.status == "rotated"


def test_annotations_are_not_trusted_over_data(env: Env) -> None:
    new = material()
    env.writer.write(NS, NAME, new, [REF])
    obj = env.cluster.get("v1", "Secret", NS, NAME)
    assert obj is not None
    other = f.make_leaf([HOST])
    obj["data"]["tls.crt"] = base64.b64encode(other.cert_pem()).decode()
    obj["data"]["tls.key"] = base64.b64encode(other.key_pem()).decode()
    env.cluster.add(obj)  # by hand, keeping rotator's annotations
    assert env.writer.write(NS, NAME, new, [REF]).status == "rotated"


def test_rollback_restores_only_the_certificate_and_key(env: Env) -> None:
    env.writer.write(NS, NAME, material(), [REF])
    obj = env.cluster.get("v1", "Secret", NS, NAME)
    assert obj is not None
    new_ca = f.make_ca("Newer Client CA").pem()
    obj["data"]["ca.crt"] = base64.b64encode(new_ca).decode()
    obj["data"]["added-later"] = base64.b64encode(b"x").decode()
    env.cluster.add(obj)
    assert restore(env.writer, NS, NAME, [REF]).status == "rolled-back"
    got = data_of(env.cluster.get("v1", "Secret", NS, NAME) or {})
    assert got["ca.crt"] == new_ca and got["added-later"] == b"x"  # not ours to roll back


def test_rollback_of_a_deleted_secret_restores_its_metadata(env: Env) -> None:
    original = env.cluster.get("v1", "Secret", NS, NAME)
    assert original is not None
    env.writer.write(NS, NAME, material(), [REF])
    env.cluster.remove("v1", "Secret", NS, NAME)
    out = restore(env.writer, NS, NAME, [REF])
    assert out.status == "rolled-back"
    back = env.cluster.get("v1", "Secret", NS, NAME)
    assert back is not None and data_of(back)["tls.crt"] == data_of(original)["tls.crt"]
    assert back["metadata"]["labels"] == {"app": "web"} and back["metadata"]["annotations"]["team"] == "edge"
    reasons = [r.body["reason"] for r in env.cluster.requests if r.api_group == "events.k8s.io"]
    assert reasons[-1] == "RolledBack"


def test_long_names_make_valid_backup_and_event_names(env: Env) -> None:
    from rotator.apply.secret_bodies import safe_stem
    from rotator.kube.events import event_name

    name = ("a" * 199) + "." + ("b" * 53)
    assert len(name) == 253
    stem = safe_stem(name)
    assert not stem.endswith((".", "-"))
    ev = event_name("app-tls", f.NOW)
    assert ev.startswith("app-tls.") and ev == ev.lower()


def test_backups_are_opaque_and_restore_the_original_type(env: Env) -> None:
    out = env.writer.write(NS, NAME, material(), [REF])
    backup = env.cluster.get("v1", "Secret", NS, out.backup or "")
    assert backup is not None and backup["type"] == "Opaque"  # expiry exporters watch kubernetes.io/tls
    env.cluster.remove("v1", "Secret", NS, NAME)
    assert restore(env.writer, NS, NAME, [REF]).status == "rolled-back"
    assert (env.cluster.get("v1", "Secret", NS, NAME) or {})["type"] == "kubernetes.io/tls"


def test_events_are_rate_limited_per_secret_and_reason(env: Env) -> None:
    bad = material(hosts=("other.example.org",))
    for _ in range(3):
        env.writer.write(NS, NAME, bad, [REF])
    reasons = [r.body["reason"] for r in env.cluster.requests if r.api_group == "events.k8s.io"]
    assert reasons == ["RotationFailed"]  # one per 10 minutes, not one per attempt
    assert env.writer.write(NS, NAME, material(), [REF]).status == "rotated"
    reasons = [r.body["reason"] for r in env.cluster.requests if r.api_group == "events.k8s.io"]
    assert reasons == ["RotationFailed", "Rotated"]  # another reason is recorded


def test_rollback_restores_every_namespace_copy_to_the_same_certificate_or_none(tmp_path: Path) -> None:
    """Gateway pods in two namespaces read their own copies; a rollback of one must not
    leave the other gateway serving a different certificate."""
    with FakeCluster(rbac_manifests=kube.deploy_rbac(("ingress-b",))) as cluster:
        kube.seed_object(cluster, f.ingress())
        kube.seed_object(cluster, f.ingress("ingress-b"))
        kube.seed_object(cluster, f.gateway("gw", [f.server([HOST], NAME)]))
        original = f.make_leaf([HOST], nb=-80, na=5)
        for ns in (NS, "ingress-b"):
            kube.seed_object(cluster, f.secret(NAME, namespace=ns, leaf=original))
        kc = str(cluster.kubeconfig(tmp_path / "kc"))
        api = kube.api(cluster.kubeconfig(tmp_path / "kc2"))
        writer = SecretWriter(api, lambda: f.NOW)
        assert [o.status for o in writer.write_copies([(NS, NAME), ("ingress-b", NAME)], material(), [REF])] == [
            "rotated",
            "rotated",
        ]

        def serial(ns: str) -> str:
            return str((cluster.get("v1", "Secret", ns, NAME) or {})["metadata"]["annotations"].get(ANN_SERIAL, ""))

        def data(ns: str) -> dict[str, Any]:
            return dict((cluster.get("v1", "Secret", ns, NAME) or {})["data"])

        rotated = serial(NS)
        assert serial("ingress-b") == rotated
        out = io.StringIO()
        with freeze_time(f.NOW):  # the command reads the clock; the certificates are dated around f.NOW
            assert main(["rollback", f"{NS}/{NAME}", "--kubeconfig", kc, "--log-level", "error"], stdout=out) == 0
        assert out.getvalue().count("rolled-back") == 2, out.getvalue()
        for ns in (NS, "ingress-b"):
            assert base64.b64decode(data(ns)["tls.crt"]) == original.cert_pem()

        # A copy with no backup of the chosen certificate: nothing is restored anywhere.
        writer.write_copies([(NS, NAME), ("ingress-b", NAME)], material(), [REF])
        for b in writer.backups("ingress-b", NAME):
            cluster.remove("v1", "Secret", "ingress-b", b["metadata"]["name"])
        before = {ns: data(ns) for ns in (NS, "ingress-b")}
        out = io.StringIO()
        with freeze_time(f.NOW):
            assert main(["rollback", f"{NS}/{NAME}", "--kubeconfig", kc, "--log-level", "error"], stdout=out) == 2
        assert "ingress-b" in out.getvalue() and "nothing was restored" in out.getvalue()
        assert {ns: data(ns) for ns in (NS, "ingress-b")} == before

        out = io.StringIO()
        args = ["rollback", f"{NS}/{NAME}", "--this-copy-only", "--kubeconfig", kc, "--log-level", "error"]
        with freeze_time(f.NOW):
            assert main(args, stdout=out) == 0
        assert data(NS) != before[NS] and data("ingress-b") == before["ingress-b"]
        assert cluster.denied() == []
