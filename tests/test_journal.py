"""Challenge artefacts survive a killed pod only until the next order: TXT records in real
BIND9 (with real pebble), temporary VirtualServices in the fake API server with the
RBAC from deploy/."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rotator.issuers.acme.issuer import ACMEIssuer
from rotator.issuers.acme.journal import Artefact, ChallengeJournal, Leftover, give_up, stale
from rotator.issuers.base import IssueRequest, IssuerError
from rotator.kube.state import ConfigMapState, MemoryState
from tests.support import acmeenv, kube
from tests.support.acmeenv import txt
from tests.support.fakeapi import FakeCluster

ZONE = acmeenv.ZONE
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_only_this_issuers_expired_and_malformed_entries_are_stale() -> None:
    past, future = (T0 - timedelta(minutes=1)).isoformat(), (T0 + timedelta(minutes=1)).isoformat()
    doc = {
        "le|txt||_acme-challenge.x|v1": {
            "issuer": "le",
            "kind": "txt",
            "name": "_acme-challenge.x",
            "value": "v1",
            "expires": past,
        },
        "le|route|ns|r1|x": {
            "issuer": "le",
            "kind": "route",
            "name": "r1",
            "value": "x",
            "namespace": "ns",
            "expires": future,
        },  # a live order's
        "other|txt||_acme-challenge.y|v2": {
            "issuer": "other",
            "kind": "txt",
            "name": "_acme-challenge.y",
            "expires": past,
        },
        "le|route|ns|r2|z": {"issuer": "le", "kind": "route", "name": "r2", "expires": "garbled"},
        "le|broken": {"kind": "txt"},  # not an artefact at all: reported as malformed, never a crash
        "le|naive": {"issuer": "le", "kind": "txt", "name": "n", "expires": "2026-11-26T12:00:00"},
    }
    found = stale(doc, "le", T0)
    assert [(x.key, x.artefact is None) for x in found] == [
        ("le|broken", True),
        ("le|naive", False),
        ("le|route|ns|r2|z", False),
        ("le|txt||_acme-challenge.x|v1", False),
    ]


def test_giving_up_needs_both_time_and_attempts() -> None:
    art = Artefact("le", "txt", "n", "v")
    assert not give_up(Leftover("k", art, 0, None), T0)
    assert not give_up(Leftover("k", art, 10, T0 - timedelta(days=6)), T0)  # not long enough
    assert not give_up(Leftover("k", art, 1, T0 - timedelta(days=30)), T0)  # one failed sweep weeks later
    assert give_up(Leftover("k", art, 3, T0 - timedelta(days=7)), T0)


def test_record_strike_and_failed_keep_other_entries() -> None:
    store = MemoryState()
    clock = Clock()
    journal = ChallengeJournal(store, clock)
    a, b = Artefact("le", "txt", "n", "1"), Artefact("le", "txt", "n", "2")
    journal.record([a, b], timedelta(minutes=5))
    assert {e["value"] for e in store.all().values()} == {"1", "2"}
    journal.strike([a.key])
    assert [e["value"] for e in store.all().values()] == ["2"]
    journal.failed([b.key])
    clock.now += timedelta(hours=1)
    journal.failed([b.key])
    (entry,) = store.all().values()
    assert entry["attempts"] == 2 and entry["failing_since"] < clock.now.isoformat()  # the first failure is kept


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[acmeenv.Bind, acmeenv.Pebble, Path]]:
    tmp = tmp_path_factory.mktemp("journal")
    with acmeenv.bind(tmp) as bind, acmeenv.pebble(tmp, bind.port) as pebble:
        yield bind, pebble, tmp


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def dns_issuer(bind: acmeenv.Bind, pebble: acmeenv.Pebble, tmp: Path, journal: ChallengeJournal) -> ACMEIssuer:
    cfg = acmeenv.issuer_config(bind, pebble, tmp, account_key_file=str(tmp / "acct.key"))
    return ACMEIssuer.from_config("pebble", cfg, None, journal.clock, journal)


def request(host: str, gateways: tuple[str, ...] = ()) -> IssueRequest:
    return IssueRequest("istio-system", "app-tls", (host,), "ecdsa-p256", gateways=gateways)


def test_txt_records_of_an_order_whose_cleanup_never_ran_are_removed_by_a_later_order(
    servers: tuple[acmeenv.Bind, acmeenv.Pebble, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    bind, pebble, tmp = servers
    clock = Clock()
    store = MemoryState()
    journal = ChallengeJournal(store, clock)
    host = f"killed.{ZONE}"
    name = f"_acme-challenge.{host}"

    # 1. An order whose cleanup never happens (the pod was killed after validation):
    #    the TXT value stays in the zone, and in the journal.
    first = dns_issuer(bind, pebble, tmp, journal)
    recorded: list[list[str]] = []
    real_present = first._dns_solver().__class__.present

    def present(self: object, records: list[tuple[str, str]]) -> None:
        recorded.append([e["name"] for e in store.all().values()])  # written down before it exists
        real_present(self, records)  # type: ignore[arg-type]

    monkeypatch.setattr("rotator.issuers.acme.dns01.RFC2136Solver.present", present)
    monkeypatch.setattr("rotator.issuers.acme.dns01.RFC2136Solver.cleanup", lambda self, records: None)
    first._strike = lambda artefacts: None  # type: ignore[method-assign]  # the dead pod strikes nothing
    first.issue(request(host))
    monkeypatch.undo()
    assert recorded == [[name]]
    leftover = txt(bind, name)
    assert len(leftover) == 1
    assert [e["value"] for e in store.all().values()] == leftover

    # 2. A new pod, minutes later: the leftover is younger than any order could live, so
    #    it may still belong to a running order and is left alone.
    second = dns_issuer(bind, pebble, tmp, journal)
    clock.now += timedelta(minutes=1)
    second.issue(request(f"other.{ZONE}"))
    assert txt(bind, name) == leftover

    # 3. Later (two order timeouts and a minute), the next order removes it, and only it.
    third = dns_issuer(bind, pebble, tmp, journal)
    clock.now += timedelta(seconds=2 * 60 + 61)
    keep = "someone else's value"
    third._dns_solver().present([(name, keep)])
    third.issue(request(f"third.{ZONE}"))
    assert txt(bind, name) == [keep]  # our value gone, theirs kept
    assert store.all() == {}
    third._dns_solver().cleanup([(name, keep)])


def test_an_unrecordable_order_is_not_started(servers: tuple[acmeenv.Bind, acmeenv.Pebble, Path]) -> None:
    """An artefact nobody wrote down would outlive a killed pod unnoticed."""
    bind, pebble, tmp = servers

    class Broken(MemoryState):
        def update_all(self, change: object) -> None:
            raise OSError("state ConfigMap unreachable")

    acme = dns_issuer(bind, pebble, tmp, ChallengeJournal(Broken(), Clock()))
    host = f"unrecorded.{ZONE}"
    with pytest.raises(IssuerError, match="cannot record the challenge"):
        acme.issue(request(host))
    assert txt(bind, f"_acme-challenge.{host}") == []


def test_a_challenge_route_left_by_a_killed_pod_is_deleted(tmp_path: Path) -> None:
    host = f"routed.{ZONE}"
    clock = Clock()
    with (
        acmeenv.bind(tmp_path) as bind,
        acmeenv.pebble(tmp_path, bind.port) as p,
        FakeCluster(rbac_manifests=kube.deploy_rbac()) as cluster,
    ):
        api = kube.api(cluster.kubeconfig(tmp_path / "kc"))
        journal = ChallengeJournal(ConfigMapState(api, "rotator", "rotator-state", "challenges.json"), clock)
        cfg = acmeenv.issuer_config(bind, p, tmp_path, "http01", cluster_routes=True)
        dead = ACMEIssuer.from_config("pebble", cfg, api, clock, journal)
        # The pod dies after creating the route: nothing after _answer runs.
        dead._answer = lambda client, challb: (_ for _ in ()).throw(SystemExit("SIGKILL"))  # type: ignore[method-assign]
        dead._strike = lambda artefacts: None  # type: ignore[method-assign]
        routes_api = dead._routes()
        assert routes_api is not None
        real_remove = routes_api.remove
        dead._routes = lambda: routes_api  # type: ignore[method-assign]
        routes_api.remove = lambda host: None  # type: ignore[method-assign]
        with pytest.raises(SystemExit):
            dead.issue(request(host, ("istio-system/api-gateway",)))
        assert dead.responder is not None
        dead.responder.close()
        routes_api.remove = real_remove  # type: ignore[method-assign]
        assert len(cluster.list("networking.istio.io/v1", "VirtualService", "rotator")) == 1
        cm = cluster.get("v1", "ConfigMap", "rotator", "rotator-state")
        assert cm is not None and host in cm["data"]["challenges.json"]

        clock.now += timedelta(minutes=5)
        alive = ACMEIssuer.from_config("pebble", cfg, api, clock, journal)
        try:
            alive.issue(request(f"fresh.{ZONE}"))  # no gateways: no route of its own
        finally:
            assert alive.responder is not None
            alive.responder.close()
        assert cluster.list("networking.istio.io/v1", "VirtualService", "rotator") == []
        assert journal.store.all() == {}
        assert cluster.denied() == []


def test_an_orders_lifetime_covers_its_dns_propagation_wait(
    servers: tuple[acmeenv.Bind, acmeenv.Pebble, Path],
) -> None:
    """An order waiting 5 minutes for DNS propagation must not see its own record swept."""
    bind, pebble, tmp = servers
    acme = dns_issuer(bind, pebble, tmp, ChallengeJournal(MemoryState(), Clock()))
    d = acme.cfg.dns01
    assert d is not None
    slow = ACMEIssuer.from_config(
        "pebble",
        acme.cfg.model_copy(update={"timeout": "30s", "dns01": d.model_copy(update={"propagation_timeout": "300s"})}),
        None,
        acme.clock,
    )
    assert slow._lifetime() >= timedelta(seconds=2 * (30 + 300))


def test_a_sweep_survives_malformed_entries_and_never_deletes_on_another_server(
    servers: tuple[acmeenv.Bind, acmeenv.Pebble, Path],
) -> None:
    bind, pebble, tmp = servers
    clock = Clock()
    store = MemoryState()
    journal = ChallengeJournal(store, clock)
    acme = dns_issuer(bind, pebble, tmp, journal)
    name = f"_acme-challenge.moved.{ZONE}"
    acme._dns_solver().present([(name, "still-here")])
    journal.record(
        [
            Artefact("pebble", "txt", name, "still-here", server="192.0.2.1:53"),  # recorded against another server
            Artefact("pebble", "txt", "bad..name", "x", server=bind.nameserver),  # dnspython refuses this name
        ],
        timedelta(seconds=1),
    )
    store.data["pebble|junk"] = {"kind": "txt"}
    clock.now += timedelta(minutes=1)
    acme.issue(request(f"after-junk.{ZONE}"))  # the order is not disturbed by any of it
    assert txt(bind, name) == ["still-here"]  # a delete at this server would have "succeeded" and left it there
    entries = store.all()
    assert "pebble|junk" not in entries  # malformed: dropped
    assert sorted(e["attempts"] for e in entries.values()) == [1, 1]  # counted, kept for later passes
    acme._dns_solver().cleanup([(name, "still-here")])


def test_a_live_pass_sweeps_before_it_renews(tmp_path: Path) -> None:
    """Leftovers go on the next pass, not only on the issuer's next order (weeks later)."""
    from rotator.config.schema import Config
    from rotator.live_pass import live_pass

    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as cluster:
        api = kube.api(cluster.kubeconfig(tmp_path / "kc"))
        config = Config.model_validate(
            {
                "issuers": {
                    "le": {
                        "type": "acme",
                        "directory": "https://acme.invalid/dir",
                        "terms_agreed": True,
                        "solver": "http01",
                        "http01": {"service_host": "rotator.rotator.svc.cluster.local"},
                    }
                }
            }
        )
        from rotator.issuers.acme.http01 import challenge_route

        cluster.add(
            challenge_route("gone.example.com", ["istio-system/gw"], "rotator", "svc", 8089, "rotator-acme-x-1")
        )
        journal = ChallengeJournal(ConfigMapState(api, "rotator", "rotator-state", "challenges.json"), Clock())
        journal.record([Artefact("le", "route", "rotator-acme-x-1", "gone.example.com", "rotator")], timedelta(0))
        live_pass(api, config, Clock(), dry_run=False)  # nothing is due; the sweep runs anyway
        assert cluster.list("networking.istio.io/v1", "VirtualService", "rotator") == []
        assert journal.store.all() == {}
        assert cluster.denied() == []
