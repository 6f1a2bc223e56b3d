"""Challenge artefacts survive a killed pod only until the next order: TXT records in real
BIND9 (with real pebble), temporary VirtualServices in the fake API server with the
RBAC from deploy/."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rotator.config import ACMEIssuerConfig, DNS01Config, HTTP01Config, SecretKeyRef
from rotator.issuers.acme_issuer import ACMEIssuer
from rotator.issuers.base import IssueRequest, IssuerError
from rotator.issuers.journal import Artefact, ChallengeJournal, stale
from rotator.state import ConfigMapState, MemoryState
from tests import acmeenv, kube
from tests.fakeapi import FakeCluster
from tests.test_acme import txt

ZONE = acmeenv.ZONE
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_only_this_issuers_old_artefacts_are_stale() -> None:
    old, young = (T0 - timedelta(minutes=30)).isoformat(), (T0 - timedelta(minutes=5)).isoformat()
    doc = {
        "a": {"issuer": "le", "kind": "txt", "name": "_acme-challenge.x", "value": "v1", "at": old},
        "b": {"issuer": "le", "kind": "route", "name": "x", "value": "", "at": young},
        "c": {"issuer": "other", "kind": "txt", "name": "_acme-challenge.y", "value": "v2", "at": old},
        "d": {"issuer": "le", "kind": "route", "name": "z", "at": "garbled"},
        "e": {"kind": "txt"},  # not an artefact at all: ignored, never a crash
    }
    found = stale(doc, "le", T0, timedelta(minutes=10))
    assert [a for a, _ in found] == [Artefact("le", "route", "z"), Artefact("le", "txt", "_acme-challenge.x", "v1")]


def test_record_and_strike_keep_other_entries() -> None:
    store = MemoryState()
    journal = ChallengeJournal(store, lambda: T0)
    a, b = Artefact("le", "txt", "n", "1"), Artefact("le", "txt", "n", "2")
    journal.record([a, b])
    assert {e["value"] for e in store.all().values()} == {"1", "2"}
    journal.strike([a])
    assert [e["value"] for e in store.all().values()] == ["2"]


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
    (tmp / "tsig").write_text(bind.tsig_secret)
    cfg = ACMEIssuerConfig(
        type="acme",
        directory=pebble.directory,
        terms_agreed=True,
        ca_bundle=str(pebble.ca_file),
        account_key_file=str(tmp / "acct.key"),
        dns01=DNS01Config(
            nameserver=bind.nameserver,
            zone=ZONE,
            tsig_key_name=acmeenv.TSIG_NAME,
            tsig_secret=SecretKeyRef(file=str(tmp / "tsig")),
            propagation_timeout="10s",
        ),
        timeout="60s",
    )
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

    monkeypatch.setattr("rotator.issuers.dns01.RFC2136Solver.present", present)
    monkeypatch.setattr("rotator.issuers.dns01.RFC2136Solver.cleanup", lambda self, records: None)
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
        cfg = ACMEIssuerConfig(
            type="acme",
            directory=p.directory,
            terms_agreed=True,
            ca_bundle=str(p.ca_file),
            account_key_file=str(tmp_path / "acct.key"),
            solver="http01",
            timeout="60s",
            http01=HTTP01Config(
                listen=f"127.0.0.1:{p.http_port}", service_host="rotator.rotator.svc.cluster.local", service_port=8089
            ),
        )
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
