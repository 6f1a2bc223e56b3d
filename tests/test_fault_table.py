"""The fault table of issue 10: each fault against a real `rotator check --exit-codes job`
(the CronJob's command) on the fake API server with deploy/'s RBAC, measured the same
way: the exit code, what the target Secret holds after, whether anything was lost (a
key, a label, an annotation, a backup), and how many certificates were issued.

`pytest tests/test_fault_table.py -s` prints the table.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rotator.apply.pending import pending_name
from rotator.cli import main
from rotator.issuers.ca import CAIssuer
from tests.support import factory as f
from tests.support import kube
from tests.support.fakeapi import FakeCluster
from tests.support.world import CA, config_file

NS = "istio-system"


@dataclass
class Scenario:
    fault: str
    setup: Callable[[FakeCluster, CA], None]  # seeds the cluster and arms the fault
    target: str  # the Secret the row is about
    expect: tuple[int, str, int]  # exit code, the target after ("renewed"/"unchanged"/"absent"), issued
    cfg: dict[str, Any] | None = None
    runs: int = 1
    injected: bool = False  # the setup arms an API fault: it must have fired


def due(fake: FakeCluster, ca: CA, name: str, host: str, days: float = 3, **extra: bytes) -> None:
    crt, key, _ = ca.leaf([host], days_left=days)
    body = f.secret(name, data={"tls.crt": crt, "tls.key": key, **extra})
    body["metadata"]["labels"] = {"team": "edge"}
    kube.seed_object(fake, body)


def base(fake: FakeCluster, ca: CA, names: tuple[str, ...] = ("app",)) -> None:
    kube.seed_object(fake, f.ingress())
    kube.seed_object(fake, ca.secret())
    servers = [
        f.server([f"{n}.example.com"], f"{n}-tls", name=f"https-{n}", port=1000 + i) for i, n in enumerate(names)
    ]
    kube.seed_object(fake, f.gateway("gw", servers))
    for n in names:
        due(fake, ca, f"{n}-tls", f"{n}.example.com")


def malformed(fake: FakeCluster, ca: CA) -> None:
    import cryptography_vectors

    base(fake, ca, ("app", "bad"))
    bad = Path(cryptography_vectors.__file__).parent / "x509/custom/two_basic_constraints.pem"
    leaf = f.make_leaf(["bad.example.com"])
    kube.seed_object(fake, f.secret("bad-tls", data={"tls.crt": bad.read_bytes(), "tls.key": leaf.key_pem()}))


def cacerts(fake: FakeCluster, ca: CA) -> None:
    from rotator.util import pki

    base(fake, ca)
    pem, key = pki.cert_pem(ca.cert), pki.key_pem(ca.key)
    data = {"ca-cert.pem": pem, "ca-key.pem": key, "root-cert.pem": pem, "cert-chain.pem": pem}
    kube.seed_object(fake, f.secret("cacerts", data=data, type_="Opaque"))
    kube.seed_object(fake, f.gateway("evil", [f.server(["mesh.example.com"], "cacerts")], namespace="tenant"))


def mint(fake: FakeCluster, ca: CA) -> None:
    base(fake, ca)
    kube.seed_object(fake, f.gateway("evil", [f.server(["bank.example.com"], "bank-tls")], namespace="tenant"))


def unreadable(fake: FakeCluster, ca: CA) -> None:
    base(fake, ca)
    fake.fault(method="GET", resource="secrets", path_contains="app-tls", status=403, times=1000)
    fake.fault(method="GET", resource="secrets", path_contains="fieldSelector", status=403, times=1000)


def leftover(fake: FakeCluster, ca: CA) -> None:
    kube.seed_object(fake, f.ingress())
    kube.seed_object(fake, ca.secret())
    kube.seed_object(fake, f.gateway("gw", [f.server(["app.example.com"], "app-tls")]))
    crt, key, _ = ca.leaf(["app.example.com"], days_left=60)  # the write landed ...
    kube.seed_object(fake, f.secret("app-tls", data={"tls.crt": crt, "tls.key": key}))
    pending = f.secret(pending_name("app-tls"), data={"tls.crt": crt, "tls.key": key}, type_="Opaque")
    pending["metadata"]["labels"] = {"rotator.io/pending-for": "app-tls"}
    kube.seed_object(fake, pending)  # ... the delete of the pending Secret did not


def lost_pending_response(fake: FakeCluster, ca: CA) -> None:
    base(fake, ca)
    fake.fault(
        method="PUT", name=pending_name("app-tls"), before=lambda c, r: c.add(dict(r.body)), drop_connection=True
    )
    fake.fault(method="PUT", name="app-tls", status=500, times=5)  # the first pass's write fails (5 attempts)


def ca_unreadable(fake: FakeCluster, ca: CA) -> None:
    base(fake, ca)
    fake.fault(method="GET", name="internal-ca", status=503, times=1000)


def expiring_continue(fake: FakeCluster, ca: CA) -> None:
    base(fake, ca)
    for i in range(520):  # more than one page (500) of Gateways, so the list needs a continue token
        kube.seed_object(
            fake,
            f.gateway(f"plain-{i}", [f.server([f"p{i}.example.com"], mode=None, protocol="HTTP")], namespace="many"),
        )
    fake.fault(method="GET", resource="gateways", path_contains="continue=", status=410, times=1000)


def backup_refused(fake: FakeCluster, ca: CA) -> None:
    base(fake, ca)
    fake.fault(method="POST", resource="secrets", path_contains="", status=None, times=1)  # the claim
    fake.fault(method="POST", resource="secrets", status=403, times=1000)  # the backup: a quota, a webhook


SCENARIOS = [
    Scenario("none (baseline)", base, "app-tls", (0, "renewed", 1)),
    Scenario(
        "malformed certificate in a neighbour (two_basic_constraints.pem)", malformed, "app-tls", (0, "renewed", 2)
    ),
    Scenario("tenant Gateway names istio-system/cacerts", cacerts, "cacerts", (0, "unchanged", 1)),
    Scenario("tenant Gateway names a new Secret bank-tls", mint, "bank-tls", (0, "absent", 1)),
    Scenario("Secret unreadable (403), 2 passes", unreadable, "app-tls", (0, "unchanged", 0), runs=2, injected=True),
    Scenario("pending Secret left after a finished rotation", leftover, pending_name("app-tls"), (0, "absent", 0)),
    Scenario(
        "pending write's response lost, then the write fails (2 passes)",
        lost_pending_response,
        "app-tls",
        (0, "renewed", 1),
        runs=2,
        injected=True,
    ),
    Scenario("CA issuer Secret answers 503", ca_unreadable, "app-tls", (1, "unchanged", 0), injected=True),
    Scenario(
        "every continue token of a 520-Gateway list expires (410)",
        expiring_continue,
        "app-tls",
        (0, "renewed", 1),
        injected=True,
    ),
    Scenario("backup create refused (403)", backup_refused, "app-tls", (1, "unchanged", 1), injected=True),
]


@pytest.fixture
def issued(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    calls: list[str] = []
    inner = CAIssuer.issue

    def counting(self: CAIssuer, request: Any) -> Any:
        calls.append(request.name)
        return inner(self, request)

    monkeypatch.setattr(CAIssuer, "issue", counting)
    yield calls


def snapshot(fake: FakeCluster) -> dict[str, dict[str, Any]]:
    return {s["metadata"]["name"]: s for s in fake.list("v1", "Secret", NS)}


def lost(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> list[str]:
    """Keys, labels and annotations that were there and are gone; backups that vanished."""
    out: list[str] = []
    for name, old in before.items():
        if name.endswith("-rotator-pending"):
            continue  # a leftover holding a live key: removing it is the point
        new = after.get(name)
        if new is None:
            out.append(f"{name} deleted")
            continue
        gone = set(old.get("data") or {}) - set(new.get("data") or {}) - {"tls.ocsp-staple"}
        gone |= {f"label {k}" for k in (old["metadata"].get("labels") or {})} - {
            f"label {k}" for k in (new["metadata"].get("labels") or {})
        }
        gone |= {f"annotation {k}" for k in (old["metadata"].get("annotations") or {})} - {
            f"annotation {k}" for k in (new["metadata"].get("annotations") or {})
        }
        out += [f"{name}: {g}" for g in sorted(gone)]
    return out


RESULTS: list[str] = []


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.fault for s in SCENARIOS])
def test_fault_table_row(scenario: Scenario, tmp_path: Path, issued: list[str], capsys: Any) -> None:
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake:
        ca = CA()
        scenario.setup(fake, ca)
        before = snapshot(fake)
        kc = fake.kubeconfig(tmp_path / "kc")
        cfg = config_file(tmp_path, **(scenario.cfg or {}))
        codes = []
        for _ in range(scenario.runs):
            out = io.StringIO()
            argv = ["check", "--exit-codes", "job", "-o", "json", "--log-level", "error", "--kubeconfig", str(kc)]
            codes.append(main([*argv, "--config", str(cfg)], stdout=out))
            json.loads(out.getvalue())  # always a report
        after = snapshot(fake)
        target_before, target_after = before.get(scenario.target), after.get(scenario.target)
        if target_after is None:
            state = "absent"
        elif target_before is not None and target_after["data"] == target_before["data"]:
            state = "unchanged"
        else:
            state = "renewed"
        gone = lost(before, after)
        invalid = [
            n
            for n, s in after.items()
            if s.get("type") == "kubernetes.io/tls"
            and n not in before
            and b"BEGIN CERTIFICATE" not in base64.b64decode(s["data"].get("tls.crt", ""))
        ]
        row = (
            f"| {scenario.fault} | {codes[-1]} | {scenario.target}: {state} | {', '.join(gone) or 'nothing'} | "
            f"{len(issued)} |"
        )
        RESULTS.append(row)
        with capsys.disabled():
            print("\n" + row)
        assert (codes[-1], state, len(issued)) == scenario.expect, row
        assert gone == [] and invalid == [] and fake.errors == []
        assert any(r.faulted and r.status >= 400 for r in fake.requests) == scenario.injected
