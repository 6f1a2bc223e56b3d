"""A pass outside the daemon (the CronJob, an operator's `rotator check`) takes the
daemon's Lease for its length: never two renewers at once. Fake API server with the
RBAC from deploy/."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rotator.cli import main
from rotator.cluster.leader import LeaderElector, one_pass_lease
from tests import factory as f
from tests import kube
from tests.fakeapi import FakeCluster
from tests.test_renewal import CA, NAME, config_file, now, secret_data

LEASE = ("coordination.k8s.io/v1", "Lease", "rotator", "rotator-leader")


def seed(fake: FakeCluster, ca: CA) -> None:
    kube.seed_object(fake, f.ingress())
    kube.seed_object(fake, f.gateway("gw", [f.server(["app.example.com"], NAME)]))
    crt, key, _ = ca.leaf(["app.example.com"], days_left=5)  # due
    kube.seed_object(fake, f.secret(NAME, data={"tls.crt": crt, "tls.key": key}))
    kube.seed_object(fake, ca.secret())


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[FakeCluster, Path]]:
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake:
        seed(fake, CA())
        yield fake, fake.kubeconfig(tmp_path / "kc")
        assert fake.errors == []


def run(kc: Path, cfg: Path) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    code = main(
        ["check", "-o", "json", "--log-level", "error", "--kubeconfig", str(kc), "--config", str(cfg)], stdout=out
    )
    return code, json.loads(out.getvalue())


def daemon(api: Any, identity: str = "rotator-daemon-7d9f8-x2x4q") -> LeaderElector:
    return LeaderElector(api, "rotator", "rotator-leader", identity, now)


def test_check_does_not_renew_while_the_daemon_holds_the_lease(cluster: Any, tmp_path: Path) -> None:
    fake, kc = cluster
    holder = daemon(kube.api(kc))
    assert holder.try_acquire_or_renew()
    before = secret_data(fake)
    code, doc = run(kc, config_file(tmp_path))
    (cred,) = [c for c in doc["credentials"] if c["name"] == NAME]
    assert cred["renewal"]["status"] == "skipped" and "not the leader" in cred["renewal"]["message"]
    assert secret_data(fake) == before
    spec = (fake.get(*LEASE) or {})["spec"]
    assert spec["holderIdentity"] == holder.identity  # untouched
    assert code == 1  # the plan still shows the renewal due


def test_check_takes_the_free_lease_for_its_pass_and_gives_it_back(cluster: Any, tmp_path: Path) -> None:
    fake, kc = cluster
    code, doc = run(kc, config_file(tmp_path))
    assert doc["credentials"][0]["renewal"]["status"] == "renewed" and code == 0
    order = [(r.method, r.resource, r.name) for r in fake.requests if r.resource in ("leases", "secrets")]
    write = order.index(("PUT", "secrets", NAME))
    assert ("POST", "leases", None) in order[:write]  # created (taken) before the write
    assert order[-1] == ("PUT", "leases", "rotator-leader")  # released after it
    spec = (fake.get(*LEASE) or {})["spec"]
    assert spec["holderIdentity"] == "" and spec["leaseDurationSeconds"] == 1
    assert daemon(kube.api(kc)).try_acquire_or_renew()  # the daemon takes over at once
    assert fake.denied() == []


def test_while_a_pass_holds_the_lease_the_daemon_stands_by(cluster: Any) -> None:
    _fake, kc = cluster
    api = kube.api(kc)
    with one_pass_lease(api, "rotator", "rotator-leader", "check/ops-laptop/1", now) as may_write:
        assert may_write()
        assert daemon(api).try_acquire_or_renew() is False
    assert daemon(api).try_acquire_or_renew() is True


def test_without_rbac_for_the_lease_the_pass_runs_uncoordinated_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rbac = [d for d in kube.deploy_rbac() if "leader" not in d["metadata"]["name"]]  # an install from before
    with FakeCluster(rbac_manifests=rbac) as fake:
        seed(fake, CA())
        out = io.StringIO()
        kc = fake.kubeconfig(tmp_path / "kc")
        code = main(
            [
                "check",
                "-o",
                "json",
                "--log-format",
                "json",
                "--kubeconfig",
                str(kc),
                "--config",
                str(config_file(tmp_path)),
            ],
            stdout=out,
        )
        assert json.loads(out.getvalue())["credentials"][0]["renewal"]["status"] == "renewed" and code == 0
        assert [d.resource for d in fake.denied()] == ["leases"]
    assert "cannot take the Lease; running without coordination" in capsys.readouterr().err
