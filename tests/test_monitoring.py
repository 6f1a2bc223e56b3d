"""Monitoring assets: the alert rules and the dashboard only use metrics rotator exports,
the rules are valid PromQL, and each alert fires on what it is meant for (promtool)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from rotator.model import RenewalOutcome
from rotator.report.metrics import Metrics
from tests.support import factory as f

ROOT = Path(__file__).resolve().parent.parent
MON = ROOT / "deploy/monitoring"
METRIC = re.compile(r"\b(rotator_[a-z_]+)")


def exported_names() -> set[str]:
    """Every series name rotator exports, from a registry filled like a real pass."""
    m = Metrics()
    result = f.run(
        f.ingress(),
        f.gateway("gw", [f.server(["a.example.com"], "s")]),
        f.secret("s", leaf=f.make_leaf(["b.example.com"])),
    )  # a finding: host-not-covered
    from dataclasses import replace

    result = replace(
        result,
        renewals=(RenewalOutcome("istio-system", "s", "renewed", "ok", "ca", "1", f.NOW + timedelta(days=1)),),
        notifications=(("pagerduty", "triggered", 1),),
    )
    m.observe(result, 1.0, 1.0, {("list", "2xx"): 1})
    m.acme("le", {"ok": 1})
    m.leader.set(1)
    return {line.split("{")[0].split(" ")[0] for line in m.render().decode().splitlines() if line and line[0] != "#"}


def rules() -> dict[str, object]:
    doc = yaml.safe_load((MON / "prometheusrule.yaml").read_text())
    assert doc["kind"] == "PrometheusRule"
    return {"groups": doc["spec"]["groups"]}


def test_every_metric_in_the_rules_and_dashboard_exists() -> None:
    names = exported_names()
    used = set(METRIC.findall(json.dumps(rules())))
    used |= set(METRIC.findall((MON / "grafana-dashboard.json").read_text()))
    assert used, "no rotator metrics referenced at all?"
    assert used <= names, sorted(used - names)


def test_every_alert_has_a_runbook_section() -> None:
    runbook = (ROOT / "docs/runbook.md").read_text().lower()
    for group in rules()["groups"]:  # type: ignore[attr-defined]
        for rule in group["rules"]:
            anchor = rule["annotations"]["runbook_url"].rsplit("#", 1)[1]
            assert f"## {rule['alert'].lower()}" in runbook, rule["alert"]
            assert anchor == rule["alert"].lower()


def test_dashboard_is_valid_grafana_json() -> None:
    dash = json.loads((MON / "grafana-dashboard.json").read_text())
    assert dash["title"] and dash["panels"]
    titles = {p["title"] for p in dash["panels"]}
    assert {"Certificate expiry (days left)", "Renewals", "Pass duration", "Findings by code"} <= titles
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            assert METRIC.search(target["expr"]), panel["title"]


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed; .ci/run installs it"
)
def test_promtool_checks_and_unit_tests_the_rules(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules()))
    shutil.copy(MON / "rules.test.yaml", tmp_path / "rules.test.yaml")
    check = subprocess.run(["promtool", "check", "rules", str(tmp_path / "rules.yaml")], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    test = subprocess.run(
        ["promtool", "test", "rules", str(tmp_path / "rules.test.yaml")], capture_output=True, text=True, cwd=tmp_path
    )
    assert test.returncode == 0, test.stdout + test.stderr
