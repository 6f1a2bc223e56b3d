"""kubectl's and cmctl's habits: -n / -A / -l as filters, and one Secret at a time with
`rotator status` and `rotator renew`. Real passes against the fake API server."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from rotator.cli import main
from tests.support import factory as f
from tests.support import kube
from tests.support.fakeapi import FakeCluster
from tests.support.world import CA, config_file, secret_data

NS = "istio-system"


def seed(fake: FakeCluster, ca: CA) -> None:
    kube.seed_object(fake, f.ingress())
    kube.seed_object(fake, f.ingress("ingress-b", {"istio": "b"}))
    kube.seed_object(fake, ca.secret())
    for name, days, team in (("due-tls", 5, "shop"), ("fresh-tls", 60, "shop"), ("other-tls", 5, "blog")):
        crt, key, _ = ca.leaf([f"{name[:-4]}.example.com"], days_left=days)
        body = f.secret(name, data={"tls.crt": crt, "tls.key": key})
        body["metadata"]["labels"] = {"team": team}
        kube.seed_object(fake, body)
    servers = [
        f.server([f"{n}.example.com"], f"{n}-tls", name=n, port=1000 + i)
        for i, n in enumerate(("due", "fresh", "other"))
    ]
    kube.seed_object(fake, f.gateway("gw", servers))
    crt, key, _ = ca.leaf(["b.example.com"], days_left=5)
    kube.seed_object(fake, f.secret("b-tls", "ingress-b", data={"tls.crt": crt, "tls.key": key}))
    kube.seed_object(
        fake, f.gateway("gw-b", [f.server(["b.example.com"], "b-tls")], namespace="ingress-b", selector={"istio": "b"})
    )


def run(*argv: str) -> tuple[int, Any]:
    out = io.StringIO()
    code = main(list(argv), stdout=out)
    text = out.getvalue()
    try:
        return code, json.loads(text)
    except ValueError:
        return code, text


def test_namespace_and_selector_filter_credentials_and_only_those_are_renewed(tmp_path: Path) -> None:
    with FakeCluster(rbac_manifests=kube.deploy_rbac(("ingress-b",))) as fake:
        seed(fake, CA())
        kc, cfg = str(fake.kubeconfig(tmp_path / "kc")), str(config_file(tmp_path))
        base = ["--kubeconfig", kc, "--config", cfg, "check", "-o", "json", "--log-level", "error"]
        _code, doc = run(*base, "--dry-run", "-n", "ingress-b")
        assert [(c["namespace"], c["name"]) for c in doc["credentials"]] == [("ingress-b", "b-tls")]
        _code, doc = run(*base, "--dry-run", "-A")
        assert len(doc["credentials"]) == 4
        _code, doc = run(*base, "--dry-run", "-l", "team=shop")
        assert sorted(c["name"] for c in doc["credentials"]) == ["due-tls", "fresh-tls"]
        _code, doc = run(*base, "--dry-run", "-l", "team!=shop,team")
        assert [c["name"] for c in doc["credentials"]] == ["other-tls"]
        before = {n: secret_data(fake, n)["tls.crt"] for n in ("due-tls", "other-tls")}
        _code, doc = run(*base, "-l", "team=shop")  # a real pass: renews the selected only
        assert doc["summary"]["renewals"]["renewed"] == 1
        assert secret_data(fake, "due-tls")["tls.crt"] != before["due-tls"]
        assert secret_data(fake, "other-tls")["tls.crt"] == before["other-tls"]  # due, but not selected
        assert run(*base, "-n", "x", "-A")[0] == 3 and run(*base, "-l", "a in (b)")[0] == 3


def test_renew_one_secret_now_and_status_says_everything_about_it(tmp_path: Path) -> None:
    with FakeCluster(rbac_manifests=kube.deploy_rbac(("ingress-b",))) as fake:
        seed(fake, CA())
        kc, cfg = str(fake.kubeconfig(tmp_path / "kc")), str(config_file(tmp_path))
        before = secret_data(fake, "fresh-tls")["tls.crt"]
        code, doc = run("renew", f"{NS}/fresh-tls", "--kubeconfig", kc, "--config", cfg, "-o", "json")
        assert code == 0 and [c["name"] for c in doc["credentials"]] == ["fresh-tls"]
        assert doc["credentials"][0]["renewal"]["status"] == "renewed"  # not due: forced, as cmctl renew
        assert secret_data(fake, "fresh-tls")["tls.crt"] != before
        assert secret_data(fake, "due-tls")["tls.crt"] != b""  # untouched: only the one asked for
        code, text = run("status", f"{NS}/fresh-tls", "--kubeconfig", kc, "--config", cfg)
        assert code == 0, text
        for expected in (
            "Secret istio-system/fresh-tls",
            "State:         ok",
            "Referenced by:",
            "Gateway istio-system/gw fresh (port 1001, SIMPLE): fresh.example.com",
            "Plan:          none",
            "Last renewal:",
            "by internal",
            "fresh-tls-rotator-backup-",
        ):
            assert expected in text, (expected, text)
        code, doc = run("status", f"{NS}/fresh-tls", "--kubeconfig", kc, "-o", "json")
        assert doc["backups"] and doc["last_renewal"]["issued_by"] == "internal" and doc["pending"] is None
        assert run("status", f"{NS}/nothing", "--kubeconfig", kc)[0] == 3
        assert fake.denied() == []


def test_a_narrowed_pass_renews_a_secret_s_copies_together_and_keeps_their_safety_net(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """-n picks one copy of a Secret read in two gateway namespaces: both are renewed
    together (one certificate), and the half-written pending certificate is used, not swept."""
    from rotator.apply.pending import PENDING_LABEL, pending_name
    from rotator.issuers.ca import CAIssuer

    calls: list[str] = []
    inner = CAIssuer.issue
    monkeypatch.setattr(CAIssuer, "issue", lambda self, r: (calls.append(r.name), inner(self, r))[1])
    ca = CA()
    host = "app.example.com"
    with FakeCluster(rbac_manifests=kube.deploy_rbac(("ingress-b",))) as fake:
        kube.seed_object(fake, f.ingress())
        kube.seed_object(fake, f.ingress("ingress-b"))
        kube.seed_object(fake, f.gateway("gw", [f.server([host], "app-tls")], namespace="edge"))
        kube.seed_object(fake, ca.secret())
        new_crt, new_key, _ = ca.leaf([host], days_left=60)
        old_crt, old_key, _ = ca.leaf([host], days_left=3)
        kube.seed_object(fake, f.secret("app-tls", "ingress-b", data={"tls.crt": new_crt, "tls.key": new_key}))
        kube.seed_object(fake, f.secret("app-tls", NS, data={"tls.crt": old_crt, "tls.key": old_key}))
        pending = f.secret(
            pending_name("app-tls"), "ingress-b", data={"tls.crt": new_crt, "tls.key": new_key}, type_="Opaque"
        )
        pending["metadata"]["labels"] = {PENDING_LABEL: "app-tls"}
        pending["metadata"]["annotations"] = {"rotator.io/pending-sans": host, "rotator.io/pending-issuer": "internal"}
        kube.seed_object(fake, pending)
        rules = [{"issuer": "internal", "gateway_namespaces": ["edge"]}]
        kc, cfg = str(fake.kubeconfig(tmp_path / "kc")), str(config_file(tmp_path, rules=rules))
        _code, doc = run(
            "check", "-n", "ingress-b", "-o", "json", "--log-level", "error", "--kubeconfig", kc, "--config", cfg
        )
        assert sorted(c["namespace"] for c in doc["credentials"]) == ["ingress-b", NS]  # the copies together
        assert calls == []  # the pending certificate was written, not swept and re-ordered
        assert (
            secret_data(fake, "app-tls", NS)["tls.crt"]
            == new_crt
            == secret_data(fake, "app-tls", "ingress-b")["tls.crt"]
        )


def test_renew_of_another_ca_s_certificate_is_refused_by_the_plan_itself(tmp_path: Path) -> None:
    with FakeCluster(rbac_manifests=kube.deploy_rbac(("ingress-b",))) as fake:
        seed(fake, CA())
        other = CA("Someone Else's CA")
        crt, key, _ = other.leaf(["fresh.example.com"], days_left=60)
        kube.seed_object(fake, f.secret("fresh-tls", data={"tls.crt": crt, "tls.key": key}))
        kc, cfg = str(fake.kubeconfig(tmp_path / "kc")), str(config_file(tmp_path))
        code, doc = run("renew", f"{NS}/fresh-tls", "--kubeconfig", kc, "--config", cfg, "-o", "json")
        (c,) = doc["credentials"]
        assert code == 1 and c["action"] == "skip" and "issuer-change" in {x["code"] for x in c["findings"]}
        assert secret_data(fake, "fresh-tls")["tls.crt"] == crt


def test_a_forced_renewal_survives_a_concurrent_label_write(tmp_path: Path) -> None:
    """Argo CD labels the Secret while rotator renew orders: the re-check after the
    conflict compares the certificate, not whether it is due (it is not)."""
    with FakeCluster(rbac_manifests=kube.deploy_rbac(("ingress-b",))) as fake:
        seed(fake, CA())
        before = secret_data(fake, "fresh-tls")["tls.crt"]

        def relabel(cluster: FakeCluster, _req: Any) -> None:
            obj = cluster.get("v1", "Secret", NS, "fresh-tls") or {}
            obj["metadata"].setdefault("labels", {})["argocd.argoproj.io/instance"] = "edge"
            cluster.add({"apiVersion": "v1", "kind": "Secret", **obj})

        fake.fault(method="PUT", name="fresh-tls", before=relabel, times=1)
        kc, cfg = str(fake.kubeconfig(tmp_path / "kc")), str(config_file(tmp_path))
        code, doc = run("renew", f"{NS}/fresh-tls", "--kubeconfig", kc, "--config", cfg, "-o", "json")
        assert code == 0 and doc["credentials"][0]["renewal"]["status"] == "renewed", doc["credentials"][0]["renewal"]
        after = fake.get("v1", "Secret", NS, "fresh-tls") or {}
        assert secret_data(fake, "fresh-tls")["tls.crt"] != before
        assert after["metadata"]["labels"]["argocd.argoproj.io/instance"] == "edge"  # theirs kept
