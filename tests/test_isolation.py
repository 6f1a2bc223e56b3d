"""One object's failure in any stage of a real pass stops only that object.

For each stage (inventory, discovery, inspection, planning, issuing, writing,
alerting) a failure is injected for credential `b` (or its Gateway) in a
`rotator check` against the fake API server: `a` and `c` are still renewed, and
the report names what failed.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import rotator.discover.credentials
import rotator.discover.wire.inventory
import rotator.pipeline
from rotator.apply.secret_writer import SecretWriter
from rotator.cli import main
from rotator.issuers.ca import CAIssuer
from rotator.report.alerts.pagerduty import Notifier
from tests.support import factory as f
from tests.support import kube
from tests.support.fakeapi import FakeCluster
from tests.support.world import CA, config_file

NAMES = ("a", "b", "c")


class Boom(RuntimeError):
    pass


def seed(fake: FakeCluster, ca: CA) -> None:
    kube.seed_object(fake, f.ingress())
    kube.seed_object(fake, ca.secret())
    for n in NAMES:  # b has a Gateway of its own, so discovery can fail for it alone
        kube.seed_object(
            fake,
            f.secret(
                f"{n}-tls", data=dict(zip(("tls.crt", "tls.key"), ca.leaf([f"{n}.example.com"], 5)[:2], strict=True))
            ),
        )
    kube.seed_object(
        fake,
        f.gateway(
            "gw",
            [
                f.server([f"{n}.example.com"], f"{n}-tls", name=f"https-{n}", port=443 + i)
                for i, n in enumerate(("a", "c"))
            ],
        ),
    )
    kube.seed_object(fake, f.gateway("gw-b", [f.server(["b.example.com"], "b-tls")]))


def failing_for(original: Callable[..., Any], hit: Callable[..., bool]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if hit(*args, **kwargs):
            raise Boom("injected for b")
        return original(*args, **kwargs)

    return wrapper


def is_b(value: Any) -> bool:
    text = repr(value)
    return "b-tls" in text or "gw-b" in text


STAGES: dict[str, tuple[Any, str, Callable[..., bool]]] = {
    "inventory": (
        rotator.discover.wire.inventory,
        "parse_secret",
        lambda body, *a: body["metadata"]["name"] == "b-tls",
    ),
    "discovery": (rotator.discover.credentials, "discover_istio", lambda gw, *a: gw.name == "gw-b"),
    "inspection": (rotator.pipeline, "inspect", lambda spec, *a: spec.name == "b-tls"),
    "planning": (rotator.pipeline, "plan", lambda cred, *a: cred.spec.name == "b-tls"),
    "issuing": (CAIssuer, "issue", lambda self, request: request.name == "b-tls"),
    "writing": (SecretWriter, "write_copies", lambda self, copies, *a, **k: is_b(copies)),
}


def named(doc: dict[str, Any], stage: str) -> bool:
    """Does the report say that b (or its Gateway) failed?"""
    everything = json.dumps(doc)
    if stage == "discovery":
        return any(x["code"] == "internal-error" and "gw-b" in x["message"] for x in doc["findings"])
    b = next(c for c in doc["credentials"] if c["name"] == "b-tls")
    if stage in ("issuing", "writing"):
        return b["renewal"]["status"] == "failed" and "Boom" in b["renewal"]["message"]
    codes = {x["code"] for x in b["findings"]} | {x["code"] for x in doc["findings"] if "b-tls" in x["message"]}
    return bool(codes & {"internal-error", "invalid-manifest"}) and "Boom" in everything


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_failure_for_one_object_in_each_stage_stops_only_that_object(
    stage: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, attr, hit = STAGES[stage]
    monkeypatch.setattr(owner, attr, failing_for(getattr(owner, attr), hit))
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake:
        seed(fake, CA())
        out = io.StringIO()
        kc = fake.kubeconfig(tmp_path / "kc")
        argv = ["check", "-o", "json", "--log-level", "error", "--kubeconfig", str(kc)]
        code = main([*argv, "--config", str(config_file(tmp_path))], stdout=out)
        doc = json.loads(out.getvalue())
        status = {c["name"]: (c.get("renewal") or {}).get("status") for c in doc["credentials"]}
        assert status["a-tls"] == "renewed" and status["c-tls"] == "renewed", status
        assert named(doc, stage), json.dumps(doc, indent=1)[:3000]
        assert code == 2  # something is broken now, and the report says what
        assert fake.errors == []


def test_one_alert_that_cannot_be_sent_does_not_hold_back_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.support.pdserver import PagerDutyDouble

    key = "R0TAT0RTESTR0UT1NGKEY000000000" + "42"
    monkeypatch.setattr(
        Notifier, "send", failing_for(Notifier.send, lambda self, action, known: "b-tls" in action.dedup_key)
    )
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake, PagerDutyDouble() as pd:
        kube.seed_object(fake, f.ingress())
        for n in NAMES:  # expired, and no rule renews them: each pages
            kube.seed_object(fake, f.secret(f"{n}-tls", leaf=f.make_leaf([f"{n}.other.org"], nb=-400, na=-1)))
        servers = [
            f.server([f"{n}.other.org"], f"{n}-tls", name=f"https-{n}", port=443 + i) for i, n in enumerate(NAMES)
        ]
        kube.seed_object(fake, f.gateway("gw", servers))
        monkeypatch.setenv("ROTATOR_TEST_PD_KEY", key)
        cfg = config_file(tmp_path, pagerduty={"routing_key": {"env": "ROTATOR_TEST_PD_KEY"}, "url": pd.url})
        out = io.StringIO()
        kc = fake.kubeconfig(tmp_path / "kc")
        main(["check", "-o", "json", "--log-format", "json", "--kubeconfig", str(kc), "--config", str(cfg)], stdout=out)
        sent = sorted(e["payload"]["custom_details"]["secret"] for e in pd.events)
        assert sent == ["a-tls", "c-tls"]
        err = capsys.readouterr().err
        assert "alert not sent" in err and "b-tls" in err and key not in err
