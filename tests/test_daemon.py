"""`rotator daemon`: leader election between replicas, metrics, health, graceful stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from rotator.commands.daemon import Daemon
from rotator.config.load import parse_config
from rotator.issuers.ca import CAIssuer, load_material
from rotator.kube.leader import LeaderElector
from rotator.util import pki
from tests.support import factory as f
from tests.support import kube
from tests.support.fakeapi import FakeCluster
from tests.support.world import CA, Counting

ROOT = Path(__file__).resolve().parent.parent
NS, NAME, HOST = "istio-system", "app-tls", "app.example.com"


class Clock:
    def __init__(self) -> None:
        self.t = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


def seed(fake: FakeCluster, ca: CA) -> None:
    kube.seed_object(fake, f.ingress())
    kube.seed_object(fake, f.gateway("gw", [f.server([HOST], NAME)]))
    crt, key, _ = ca.leaf([HOST], days_left=5)
    kube.seed_object(
        fake, f.secret(NAME, data={"tls.crt": crt, "tls.key": key}, annotations={"rotator.io/issued-by": "internal"})
    )


def config() -> Any:
    return parse_config(
        {
            "issuers": {"internal": {"type": "ca", "secret": "rotator/internal-ca"}},
            "rules": [{"issuer": "internal"}],
            "daemon": {"jitter": "0s"},
        }
    )


def daemon(fake: FakeCluster, kc: Path, ca: CA, identity: str, clock: Clock, issuer: Counting) -> Daemon:
    return Daemon(kube.api(kc), config(), clock, identity=identity, issuers={"internal": issuer})


def counting(ca: CA, clock: Clock) -> Counting:
    return Counting(
        CAIssuer(
            "internal",
            lambda: load_material(pki.cert_pem(ca.cert), pki.key_pem(ca.key), "t"),
            timedelta(days=30),
            clock,
        )
    )


def test_two_replicas_never_rotate_the_same_secret_twice(tmp_path: Path) -> None:
    ca, clock = CA(), Clock()
    with FakeCluster(rbac_manifests=kube.deploy_rbac(overlay="daemon")) as fake:
        seed(fake, ca)
        kc = fake.kubeconfig(tmp_path / "kc")
        issuer = counting(ca, clock)
        a, b = daemon(fake, kc, ca, "a", clock, issuer), daemon(fake, kc, ca, "b", clock, issuer)
        assert a.elector is not None and b.elector is not None
        assert a.elector.try_acquire_or_renew() is True
        assert b.elector.try_acquire_or_renew() is False  # the Lease is held
        assert [a.run_pass(), b.run_pass()] == ["ok", "follower"]
        assert [a.run_pass(), b.run_pass()] == ["ok", "follower"]  # second pass: nothing due any more
        assert issuer.calls == [NAME]
        lease = fake.get("coordination.k8s.io/v1", "Lease", "rotator", "rotator-leader")
        assert lease is not None and lease["spec"]["holderIdentity"] == "a"
        assert fake.denied() == []


def test_a_leader_that_cannot_renew_stops_writing_and_another_takes_over(tmp_path: Path) -> None:
    ca, clock = CA(), Clock()
    with FakeCluster(rbac_manifests=kube.deploy_rbac(overlay="daemon")) as fake:
        seed(fake, ca)
        kc = fake.kubeconfig(tmp_path / "kc")
        issuer = counting(ca, clock)
        a, b = daemon(fake, kc, ca, "a", clock, issuer), daemon(fake, kc, ca, "b", clock, issuer)
        assert a.elector is not None and b.elector is not None
        a.elector.try_acquire_or_renew()
        clock.advance(11)  # past the 10 s renew deadline without renewing
        assert not a.is_leader()
        assert a.run_pass() == "follower"  # stops at once, even before the Lease expires
        assert b.elector.try_acquire_or_renew() is False  # first sight of A's record: wait a full Lease
        clock.advance(14)
        assert b.elector.try_acquire_or_renew() is False
        clock.advance(1)  # 15 s since B saw the record change, on B's own clock
        assert b.elector.try_acquire_or_renew() is True
        assert b.run_pass() == "ok" and issuer.calls == [NAME]
        lease = fake.get("coordination.k8s.io/v1", "Lease", "rotator", "rotator-leader")
        assert lease is not None and lease["spec"]["leaseTransitions"] == 1
        b.elector.release()  # on shutdown: a follower need not wait the Lease out
        assert a.elector.try_acquire_or_renew() is True


def test_metrics_follow_the_credentials_and_drop_vanished_ones(tmp_path: Path) -> None:
    ca, clock = CA(), Clock()
    with FakeCluster(rbac_manifests=kube.deploy_rbac(overlay="daemon")) as fake:
        seed(fake, ca)
        kc = fake.kubeconfig(tmp_path / "kc")
        d = daemon(fake, kc, ca, "a", clock, counting(ca, clock))
        assert d.elector is not None
        d.elector.try_acquire_or_renew()
        port = d.serve_http("127.0.0.1:0")
        try:
            assert d.run_pass() == "ok"
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
            assert "rotator_certificate_not_after_timestamp_seconds{" in text and f'secret="{NAME}"' in text
            assert 'rotator_renewals_total{issuer="internal",result="renewed"} 1.0' in text
            assert "rotator_credential_state{" in text and "rotator_leader 1.0" in text
            assert "rotator_last_successful_pass_timestamp_seconds" in text and "rotator_build_info" in text
            assert urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz").status == 200
            assert urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz").status == 200
            fake.remove("networking.istio.io/v1", "Gateway", NS, "gw")
            assert d.run_pass() == "ok"
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
            assert f'secret="{NAME}"' not in text  # no stale series for a credential that is gone
        finally:
            d.stop()


def test_readyz_fails_after_failing_passes_for_too_long(tmp_path: Path) -> None:
    ca, clock = CA(), Clock()
    with FakeCluster() as fake:
        kc = fake.kubeconfig(tmp_path / "kc")
        d = daemon(fake, kc, ca, "a", clock, counting(ca, clock))
        d.elector = None
        fake.fault(path_contains="/apis", status=500, times=1000)
        d.api.retry = d.api.retry.__class__(attempts=1)
        assert d.run_pass() == "failed"
        assert d.ready()[0] is True  # one failure is not yet unready
        clock.advance(3 * 3600)
        ok, why = d.ready()
        assert ok is False and "no successful pass" in why


@pytest.mark.skipif(os.name != "posix", reason="signals")
def test_sigterm_stops_the_daemon_cleanly(tmp_path: Path) -> None:
    ca = CA()
    with FakeCluster(rbac_manifests=kube.deploy_rbac(overlay="daemon")) as fake:
        seed(fake, ca)
        kube.seed_object(fake, ca.secret())
        kc = fake.kubeconfig(tmp_path / "kc")
        cfg = tmp_path / "rotator.yaml"
        cfg.write_text(
            yaml.safe_dump(
                {
                    "issuers": {"internal": {"type": "ca", "secret": "rotator/internal-ca"}},
                    "rules": [{"issuer": "internal"}],
                    "daemon": {"jitter": "0s", "interval": "1h"},
                }
            )
        )
        port = kube_free_port()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rotator",
                "daemon",
                "--kubeconfig",
                str(kc),
                "--config",
                str(cfg),
                "--listen",
                f"127.0.0.1:{port}",
                "--log-format",
                "json",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 30
            renewed = False
            while time.monotonic() < deadline and not renewed:
                time.sleep(0.2)
                try:
                    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1).read().decode()
                    renewed = 'result="renewed"} 1.0' in text
                except OSError:
                    continue
            assert renewed, "the daemon's first pass did not renew the due Secret"
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, err[-2000:]
        assert "stopping" in err and "PRIVATE KEY" not in err + out
        lease = fake.get("coordination.k8s.io/v1", "Lease", "rotator", "rotator-leader")
        assert lease is not None and lease["spec"]["holderIdentity"] == ""  # released for a fast takeover
        assert fake.denied() == []


def kube_free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_leader_elector_creates_the_lease_with_client_go_fields(tmp_path: Path) -> None:
    clock = Clock()
    with FakeCluster() as fake:
        e = LeaderElector(kube.api(fake.kubeconfig(tmp_path / "kc")), "rotator", "l", "me", clock)
        assert e.try_acquire_or_renew()
        spec = (fake.get("coordination.k8s.io/v1", "Lease", "rotator", "l") or {})["spec"]
        assert spec["holderIdentity"] == "me" and spec["leaseDurationSeconds"] == 15 and spec["leaseTransitions"] == 0
        assert spec["renewTime"].endswith("Z") and "." in spec["renewTime"]  # MicroTime


def test_cronjob_pass_pushes_its_metrics_to_a_pushgateway(tmp_path: Path) -> None:
    """A real HTTP server stands in for the Pushgateway: method, path and exposition body."""
    import io

    from rotator.cli import main
    from tests.support import localhttp

    got: list[tuple[str, str, str]] = []
    ca = CA()
    with localhttp.pushgateway(got) as gateway, FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake:
        seed(fake, ca)
        kc = fake.kubeconfig(tmp_path / "kc")
        args = ["check", "-o", "json", "--kubeconfig", str(kc), "--log-level", "error"]
        assert main([*args, "--dry-run", "--pushgateway", gateway], stdout=io.StringIO()) == 3  # a simulation
        assert got == []  # never pushed under the real job's group
        code = main([*args, "--pushgateway", gateway], stdout=io.StringIO())
    assert code == 1  # due, and no issuer configured in this world
    ((method, path, body),) = got
    assert method == "PUT" and path == "/metrics/job/rotator/cluster/default"
    assert f'secret="{NAME}"' in body and "rotator_credential_state" in body


def test_api_requests_are_counted_by_verb_and_result(tmp_path: Path) -> None:
    ca, clock = CA(), Clock()
    with FakeCluster(rbac_manifests=kube.deploy_rbac(overlay="daemon")) as fake:
        seed(fake, ca)
        d = daemon(fake, fake.kubeconfig(tmp_path / "kc"), ca, "a", clock, counting(ca, clock))
        d.elector = None
        fake.fault(resource="pods", status=500, times=1)
        assert d.run_pass() == "ok"
        text = d.metrics.render().decode()
        assert 'rotator_api_requests_total{result="500",verb="list"} 1.0' in text
        assert 'rotator_api_requests_total{result="2xx",verb="list"}' in text


def test_acme_requests_are_counted_through_a_daemon_pass(tmp_path: Path) -> None:
    from tests.support import acmeenv

    host = f"d.{acmeenv.ZONE}"
    ca = CA("Old CA")
    with acmeenv.bind(tmp_path) as bind, acmeenv.pebble(tmp_path, bind.port) as pebble, FakeCluster() as fake:
        kube.seed_object(fake, f.ingress())
        kube.seed_object(fake, f.gateway("gw", [f.server([host], NAME)]))
        crt, key, _ = ca.leaf([host], days_left=2)
        kube.seed_object(fake, f.secret(NAME, data={"tls.crt": crt, "tls.key": key}))
        (tmp_path / "tsig").write_text(bind.tsig_secret)
        cfg = parse_config(
            {
                "issuers": {
                    "pebble": {
                        "type": "acme",
                        "directory": pebble.directory,
                        "terms_agreed": True,
                        "ca_bundle": str(pebble.ca_file),
                        "account_key_file": str(tmp_path / "acct.key"),
                        "solver": "dns01",
                        "dns01": {
                            "nameserver": bind.nameserver,
                            "zone": acmeenv.ZONE,
                            "tsig_key_name": acmeenv.TSIG_NAME,
                            "tsig_secret": {"file": str(tmp_path / "tsig")},
                        },
                    }
                },
                "rules": [{"issuer": "pebble", "allow_issuer_change": True}],
                "daemon": {"leader_election": False},
            }
        )
        d = Daemon(kube.api(fake.kubeconfig(tmp_path / "kc")), cfg, lambda: datetime.now(UTC), identity="a")
        assert d.run_pass() == "ok"
        text = d.metrics.render().decode()
        assert 'rotator_renewals_total{issuer="pebble",result="renewed"} 1.0' in text
        ok = [
            ln for ln in text.splitlines() if ln.startswith('rotator_acme_requests_total{issuer="pebble",result="ok"}')
        ]
        assert ok and float(ok[0].split()[-1]) >= 5  # newAccount, newOrder, authz, challenge, finalize, polls, cert


def test_clock_skew_never_makes_two_leaders(tmp_path: Path) -> None:
    """B's clock runs 14 s ahead: it still waits a full Lease after it last saw A renew."""
    a_clock, b_clock = Clock(), Clock()
    b_clock.advance(14)
    with FakeCluster() as fake:
        api = kube.api(fake.kubeconfig(tmp_path / "kc"))
        a = LeaderElector(api, "rotator", "l", "a", a_clock)
        b = LeaderElector(api, "rotator", "l", "b", b_clock)
        assert a.try_acquire_or_renew()
        for _ in range(10):  # A renews every 2 s; B keeps trying
            a_clock.advance(2)
            b_clock.advance(2)
            assert a.try_acquire_or_renew() is True
            assert b.try_acquire_or_renew() is False
            assert not (a.is_leader() and b.is_leader())
        a.stop()  # A dies without releasing: B takes over one Lease after A's last renewal
        b_clock.advance(14)
        assert b.try_acquire_or_renew() is False
        b_clock.advance(2)
        assert b.try_acquire_or_renew() is True


def test_metrics_show_the_state_after_renewal_and_followers_export_no_credentials(tmp_path: Path) -> None:
    ca, clock = CA(), Clock()
    with FakeCluster(rbac_manifests=kube.deploy_rbac(overlay="daemon")) as fake:
        seed(fake, ca)
        kc = fake.kubeconfig(tmp_path / "kc")
        a = daemon(fake, kc, ca, "a", clock, counting(ca, clock))
        assert a.elector is not None
        a.elector.try_acquire_or_renew()
        assert a.run_pass() == "ok"
        text = a.metrics.render().decode()
        due = [ln for ln in text.splitlines() if ln.startswith("rotator_credential_state{") and 'state="due"' in ln]
        ok = [ln for ln in text.splitlines() if ln.startswith("rotator_credential_state{") and 'state="ok"' in ln]
        assert due and due[0].endswith(" 0.0") and ok[0].endswith(" 1.0")  # renewed: ok, not the stale "due"
        clock.advance(11)  # a stops being leader
        assert a.run_pass() == "follower"
        assert "rotator_credential_state{" not in a.metrics.render().decode()


def test_two_running_daemons_with_real_schedulers_rotate_once(tmp_path: Path) -> None:
    """Both replicas run for real (scheduler threads, election loops, wall clock)."""
    ca = CA()
    with FakeCluster(rbac_manifests=kube.deploy_rbac(overlay="daemon")) as fake:
        seed(fake, ca)
        kc = fake.kubeconfig(tmp_path / "kc")
        clock = lambda: datetime.now(UTC)  # noqa: E731 - the real clock, on purpose
        issuer = counting(ca, clock)  # type: ignore[arg-type]
        cfg = parse_config(
            {
                "issuers": {"internal": {"type": "ca", "secret": "rotator/internal-ca"}},
                "rules": [{"issuer": "internal"}],
                "daemon": {
                    "jitter": "0s",
                    "interval": "1s",
                    "lease": {"duration": "3s", "renew_deadline": "2s", "retry_period": "1s"},
                },
            }
        )
        replicas = [Daemon(kube.api(kc), cfg, clock, identity=n, issuers={"internal": issuer}) for n in "ab"]
        for d in replicas:
            d.start(first_run_in=0.5)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not issuer.calls:
                time.sleep(0.2)
            time.sleep(3)  # more passes on both replicas after the rotation
        finally:
            for d in replicas:
                d.stop()
        assert issuer.calls == [NAME]
        leaders = [d.identity for d in replicas if d.metrics.passes.labels("ok")._value.get() > 0]
        assert len(leaders) == 1
        backups = [s for s in fake.list("v1", "Secret", NS) if "rotator-backup" in s["metadata"]["name"]]
        assert len(backups) == 1
