"""kubectl's and cmctl's habits: -n / -A / -l as filters, and one Secret at a time with
`rotator status` and `rotator renew`. Real passes against the fake API server."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from rotator.cli import main
from tests import factory as f
from tests import kube
from tests.fakeapi import FakeCluster
from tests.test_renewal import CA, config_file, secret_data

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
