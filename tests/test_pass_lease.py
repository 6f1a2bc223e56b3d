"""A pass outside the daemon (the CronJob, an operator's `rotator check`) takes the
daemon's Lease for its length: never two renewers at once. Fake API server with the
RBAC from deploy/."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rotator.cli import main
from rotator.kube.leader import LEASES, LeaderElector, one_pass_lease
from tests.support import factory as f
from tests.support import kube
from tests.support.fakeapi import FakeCluster
from tests.support.world import CA, NAME, config_file, now, secret_data

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


FAST_LEASE = {"lease": {"retry_period": "0.1s"}}  # the pass watches a fresh claim this often


def renews_meanwhile(fake: FakeCluster, holder: LeaderElector) -> None:
    """The holder is alive: between the pass's looks at the Lease, its renewTime moves."""

    def bump(cluster: FakeCluster, _req: Any) -> None:
        lease = cluster.get(*LEASE)
        assert lease is not None
        lease["spec"]["renewTime"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        cluster.add({"apiVersion": LEASE[0], "kind": "Lease", **lease})

    fake.fault(method="GET", resource="leases", times=1000, before=bump)


def test_check_does_not_renew_while_the_daemon_holds_the_lease(cluster: Any, tmp_path: Path) -> None:
    fake, kc = cluster
    holder = daemon(kube.api(kc))
    assert holder.try_acquire_or_renew()
    renews_meanwhile(fake, holder)
    before = secret_data(fake)
    code, doc = run(kc, config_file(tmp_path, daemon=FAST_LEASE))
    (cred,) = [c for c in doc["credentials"] if c["name"] == NAME]
    assert cred["renewal"]["status"] == "skipped" and "not the leader" in cred["renewal"]["message"]
    assert holder.identity in cred["renewal"]["message"]  # says who renews instead
    assert secret_data(fake) == before
    spec = (fake.get(*LEASE) or {})["spec"]
    assert spec["holderIdentity"] == holder.identity  # untouched
    assert code == 1  # the plan still shows the renewal due
    fake.clear_faults()


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


ROOT = Path(__file__).resolve().parent.parent
PD_KEY = "R0TAT0RTESTR0UT1NGKEY0000000001"[:31] + "9"


def lease_cluster(fake: FakeCluster, ca: CA) -> dict[str, bytes]:
    """Two due Secrets rotator renews, one expired Secret no rule covers (pages)."""
    kube.seed_object(fake, f.ingress())
    servers = [f.server([f"{n}.example.com"], f"{n}-tls") for n in ("a", "b")]
    servers.append(f.server(["legacy.other.org"], "legacy-tls"))
    kube.seed_object(fake, f.gateway("gw", servers))
    for n, days in (("a", -1), ("b", 5)):  # expired yesterday; due
        crt, key, _ = ca.leaf([f"{n}.example.com"], days_left=days)
        kube.seed_object(fake, f.secret(f"{n}-tls", data={"tls.crt": crt, "tls.key": key}))
    kube.seed_object(fake, f.secret("legacy-tls", leaf=f.make_leaf(["legacy.other.org"], nb=-400, na=-1)))
    kube.seed_object(fake, ca.secret())
    return {n: secret_data(fake, f"{n}-tls")["tls.crt"] for n in ("a", "b", "legacy")}


def pd_config(tmp_path: Path, url: str) -> Path:
    return config_file(
        tmp_path,
        cluster_name="prod",
        pagerduty={"routing_key": {"env": "ROTATOR_TEST_PD_KEY"}, "url": url},
        daemon=FAST_LEASE,
    )


def check_cmd(kc: Path, cfg: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "rotator",
        "check",
        "--exit-codes",
        "job",
        "-o",
        "json",
        "--log-format",
        "json",
        "--kubeconfig",
        str(kc),
        "--config",
        str(cfg),
    ]


def test_a_pass_killed_holding_the_lease_does_not_block_the_next_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.pdserver import PagerDutyDouble

    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake, PagerDutyDouble() as pd:
        before = lease_cluster(fake, CA())
        kc, cfg = fake.kubeconfig(tmp_path / "kc"), pd_config(tmp_path, pd.url)
        env = {**os.environ, "ROTATOR_TEST_PD_KEY": PD_KEY}
        proc = subprocess.Popen(
            check_cmd(kc, cfg), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

        def kill(_cluster: FakeCluster, _req: Any) -> None:  # the node dies as the pass starts writing
            os.kill(proc.pid, signal.SIGKILL)

        fake.fault(method="POST", resource="secrets", times=1)  # its first claim lands ...
        fake.fault(method="POST", resource="secrets", before=kill, status=503)  # ... then the node dies
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        dead = (fake.get(*LEASE) or {})["spec"]
        assert dead["holderIdentity"].startswith("check/")  # the dead pass still "holds" it
        claims = [s for s in fake.list("v1", "Secret", "istio-system") if s["metadata"]["name"].endswith("-pending")]
        assert len(claims) == 1  # and one per-Secret claim, fresh: it must not block the next pass either
        assert {n: secret_data(fake, f"{n}-tls")["tls.crt"] for n in before} == before and pd.events == []

        # The next CronJob pass, a schedule later: the API server's clock is past the claim.
        fake.clock_offset = 120.0
        monkeypatch.setenv("ROTATOR_TEST_PD_KEY", PD_KEY)
        out = io.StringIO()
        code = main(check_cmd(kc, cfg)[3:], stdout=out)
        doc = json.loads(out.getvalue())
        status = {c["name"]: (c.get("renewal") or {}).get("status") for c in doc["credentials"]}
        assert status == {"a-tls": "renewed", "b-tls": "renewed", "legacy-tls": None}
        for n in ("a", "b"):
            assert secret_data(fake, f"{n}-tls")["tls.crt"] != before[n]
        triggers = [e for e in pd.events if e["event_action"] == "trigger"]
        assert [e["payload"]["custom_details"]["secret"] for e in triggers] == ["legacy-tls"]
        assert triggers[0]["payload"]["severity"] == "critical"
        assert code == 1  # legacy-tls is expired and nobody renews it: the Job says so
        spec = (fake.get(*LEASE) or {})["spec"]
        assert spec["holderIdentity"] == "" and int(spec["leaseTransitions"]) >= 1  # taken over, released
        assert [
            s for s in fake.list("v1", "Secret", "istio-system") if s["metadata"]["name"].endswith("-pending")
        ] == []
        assert fake.denied() == [] and fake.errors == []


def test_a_pass_that_finds_a_live_holder_pages_and_fails_the_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.pdserver import PagerDutyDouble

    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake, PagerDutyDouble() as pd:
        before = lease_cluster(fake, CA())
        kc, cfg = fake.kubeconfig(tmp_path / "kc"), pd_config(tmp_path, pd.url)
        holder = daemon(kube.api(kc))
        assert holder.try_acquire_or_renew()
        renews_meanwhile(fake, holder)
        monkeypatch.setenv("ROTATOR_TEST_PD_KEY", PD_KEY)
        out = io.StringIO()
        code = main(check_cmd(kc, cfg)[3:], stdout=out)
        doc = json.loads(out.getvalue())
        assert {n: secret_data(fake, f"{n}-tls")["tls.crt"] for n in before} == before  # nothing written
        paged = {e["payload"]["custom_details"]["secret"]: e["payload"]["severity"] for e in pd.events}
        # the expired ones, and b: five days left, inside the critical window, and the
        # holder has not renewed it: whoever should have, it is about to be an outage
        assert paged == {"a-tls": "critical", "legacy-tls": "critical", "b-tls": "error"}
        assert all(e["event_action"] == "trigger" for e in pd.events)
        skipped = [c["renewal"]["message"] for c in doc["credentials"] if c.get("renewal")]
        assert skipped and all(holder.identity in m for m in skipped)
        assert code == 1  # never 0 with an expired Secret left un-renewed
        assert (fake.get(*LEASE) or {})["spec"]["holderIdentity"] == holder.identity
        fake.clear_faults()
        assert fake.denied() == [] and fake.errors == []


def test_sigterm_stops_the_pass_before_its_next_write_and_releases_the_lease(tmp_path: Path) -> None:
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake:
        before = lease_cluster(fake, CA())
        kc = fake.kubeconfig(tmp_path / "kc")
        cfg = config_file(tmp_path, renewal={"concurrency": 1}, daemon=FAST_LEASE)
        proc = subprocess.Popen(check_cmd(kc, cfg), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def term(_cluster: FakeCluster, _req: Any) -> None:  # a node drain, mid-renewal
            proc.send_signal(signal.SIGTERM)

        fake.fault(method="POST", resource="secrets", before=term, delay=0.5)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 3, err[-2000:]
        assert "terminated (SIGTERM)" in err
        spec = (fake.get(*LEASE) or {})["spec"]
        assert spec["holderIdentity"] == ""  # released: the next pass or the daemon starts at once
        after = {n: secret_data(fake, f"{n}-tls")["tls.crt"] for n in before}
        assert after == before  # stopped before writing; nothing half-done
        # The next pass starts at once: the stopped pass gave up its claims, so nothing
        # waits for a claim TTL, and a certificate it had ordered is written, not re-ordered.
        out = io.StringIO()
        main(check_cmd(kc, cfg)[3:], stdout=out)
        status = {c["name"]: (c.get("renewal") or {}).get("status") for c in json.loads(out.getvalue())["credentials"]}
        assert status["a-tls"] == "renewed" and status["b-tls"] == "renewed", status
        assert fake.denied() == [] and fake.errors == []


class FakeClock:
    """Time that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        # from the real now: the fake API server's Date header (the server's clock) is real
        self.t = datetime.now(UTC)
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += timedelta(seconds=seconds)


def test_a_claim_that_looks_fresh_but_never_changes_is_taken_after_one_lease_duration(cluster: Any) -> None:
    """No server time to go by (a proxy drops Date): the pass watches the claim for one
    lease duration on its own clock, as client-go would, instead of giving up."""
    fake, kc = cluster
    clock = FakeClock()
    dead = LeaderElector(kube.api(kc), "rotator", "rotator-leader", "check/killed/1", clock)
    assert dead.try_acquire_or_renew()  # then the process dies: nobody renews
    api = kube.api(kc)
    api.server_now = lambda: None  # type: ignore[method-assign]
    with one_pass_lease(api, "rotator", "rotator-leader", "check/next/2", clock, sleep=clock.sleep) as may_write:
        assert may_write.state == "leader" and may_write()
        assert 15 <= sum(clock.slept) <= 17  # bounded: one lease duration and one retry period at most
    assert (fake.get(*LEASE) or {})["spec"]["holderIdentity"] == ""


def test_a_live_holder_is_seen_within_one_retry_period_and_left_alone(cluster: Any) -> None:
    fake, kc = cluster
    clock = FakeClock()
    live = LeaderElector(kube.api(kc), "rotator", "rotator-leader", "rotator-daemon-0", clock)
    assert live.try_acquire_or_renew()
    api = kube.api(kc)

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        assert live.try_acquire_or_renew()  # the daemon renews while the pass watches

    with one_pass_lease(api, "rotator", "rotator-leader", "check/cron/3", clock, sleep=sleep) as may_write:
        assert may_write.state == "follower" and not may_write() and may_write.holder == "rotator-daemon-0"
    assert clock.slept == [2.0]
    assert (fake.get(*LEASE) or {})["spec"]["holderIdentity"] == "rotator-daemon-0"


def test_server_time_decides_a_dead_claim_at_once(cluster: Any) -> None:
    fake, kc = cluster
    clock = FakeClock()
    assert LeaderElector(kube.api(kc), "rotator", "rotator-leader", "check/killed/1", clock).try_acquire_or_renew()
    api = kube.api(kc)
    api.server_now = lambda: clock() + timedelta(seconds=31)  # type: ignore[method-assign]
    slept: list[float] = []
    with one_pass_lease(api, "rotator", "rotator-leader", "check/next/2", clock, sleep=slept.append) as may_write:
        assert may_write.state == "leader"
    assert slept == []  # no wait: renewTime + 15 s + 15 s tolerance is past by the server's clock
    api.server_now = lambda: clock() + timedelta(seconds=29)  # type: ignore[method-assign]
    assert LeaderElector(kube.api(kc), "rotator", "rotator-leader", "other", clock).try_acquire_or_renew()
    stale = LeaderElector(api, "rotator", "rotator-leader", "check/x/3", clock, server_clock=api.server_now)
    assert stale.try_acquire_or_renew() is False  # within the tolerance: still the holder's
    del fake


def test_the_api_reads_the_server_clock_from_the_date_header(cluster: Any) -> None:
    fake, kc = cluster
    api = kube.api(kc)
    assert api.server_now() is None
    fake.clock_offset = 3600.0
    api.get(LEASES, "rotator", "nothing")
    got = api.server_now()
    assert got is not None and abs((got - datetime.now(UTC)).total_seconds() - 3600) < 3


def test_an_api_error_while_watching_a_live_holder_never_makes_the_pass_uncoordinated(cluster: Any) -> None:
    fake, kc = cluster
    clock = FakeClock()
    assert LeaderElector(kube.api(kc), "rotator", "rotator-leader", "rotator-daemon-0", clock).try_acquire_or_renew()
    api = kube.api(kc)
    api.sleep = lambda s: None
    fake.fault(method="GET", resource="leases", times=1)  # the first look: a fresh foreign holder
    fake.fault(method="GET", resource="leases", status=503, times=1000)  # then the API server stumbles
    with one_pass_lease(api, "rotator", "rotator-leader", "check/cron/4", clock, sleep=clock.sleep) as may_write:
        assert may_write.state == "follower" and not may_write()  # never "uncoordinated" next to a live daemon
    fake.clear_faults()
    assert (fake.get(*LEASE) or {})["spec"]["holderIdentity"] == "rotator-daemon-0"
