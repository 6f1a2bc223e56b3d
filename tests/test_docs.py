"""Docs that are a contract: every finding code documented, the config reference current."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from rotator.config.reference import render
from rotator.findings import CATALOGUE

ROOT = Path(__file__).resolve().parent.parent


def test_every_finding_code_is_documented_with_cause_and_fix() -> None:
    text = (ROOT / "docs/findings.md").read_text()
    sections = dict(re.findall(r"^### `([a-z0-9-]+)`\n(.*?)(?=^### |\Z)", text, re.S | re.M))
    assert set(sections) == set(CATALOGUE), set(sections) ^ set(CATALOGUE)
    for code, body in sections.items():
        severity = CATALOGUE[code][0]
        assert f"Severity: {severity}" in body, code
        assert "**Cause.**" in body and "**Fix.**" in body, code


def test_configuration_reference_is_generated_from_the_models() -> None:
    assert (ROOT / "docs/configuration.md").read_text() == render(), (
        "docs/configuration.md is stale: run python -m rotator.config.reference > docs/configuration.md"
    )


def test_configuration_reference_covers_every_field_of_every_model() -> None:
    """Generated is not enough: a nested model (an Optional one, say) could be skipped."""
    from pydantic import BaseModel

    import rotator.config.schema as config_module

    text = (ROOT / "docs/configuration.md").read_text()
    documented = set(re.findall(r"^\| `(?:[^`]*\.)?([a-z0-9_]+)` \|", text, re.M))
    models = [
        m
        for m in vars(config_module).values()
        if isinstance(m, type) and issubclass(m, BaseModel) and m.__module__ == config_module.__name__
    ]
    assert len(models) > 10
    for model in models:
        missing = set(model.model_fields) - documented
        assert not missing, f"{model.__name__}: {sorted(missing)} not in docs/configuration.md"
    for model in ("LeaseConfig", "DNS01Config", "HTTP01Config", "PagerDutyConfig", "SecretKeyRef"):
        fields = getattr(config_module, model).model_fields
        assert all(f"`{n}`" in text or f".{n}`" in text for n in fields), model


def test_readme_quick_start_commands_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "rotator check --dry-run -f examples/" in readme
    assert "bash .ci/run" in readme


def recipes() -> list[tuple[str, str]]:
    """(question, jq program) from docs/report-format.md's recipe block."""
    import re
    import shlex

    text = (ROOT / "docs/report-format.md").read_text()
    block = text.split("## jq recipes", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    out: list[tuple[str, str]] = []
    question = ""
    for line in block.strip().splitlines():
        if line.startswith("#"):
            question = line.lstrip("# ")
            continue
        jq = line.split("| jq", 1)[1]
        args = shlex.split(jq)
        out.append((question, next(a for a in args if not re.fullmatch(r"-[rc]+", a))))
    return out


def test_the_jq_recipes_work_on_a_dry_run_and_a_real_pass(tmp_path: Path) -> None:
    import io
    import json
    import shutil

    from rotator.cli import main
    from tests.support import factory as f
    from tests.support import kube
    from tests.support.fakeapi import FakeCluster
    from tests.support.world import CA, config_file

    jq = shutil.which("jq")
    assert jq, "jq is installed by .ci/run"
    ca = CA()
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake:
        kube.seed_object(fake, f.ingress())
        kube.seed_object(fake, ca.secret())
        crt, key, _ = ca.leaf(["app.example.com"], days_left=5)
        kube.seed_object(fake, f.secret("app-tls", data={"tls.crt": crt, "tls.key": key}))
        kube.seed_object(fake, f.secret("old-tls", leaf=f.make_leaf(["old.other.org"], nb=-400, na=-1)))
        servers = [
            f.server(["app.example.com"], "app-tls", name="a", port=1),
            f.server(["old.other.org"], "old-tls", name="b", port=2),
        ]
        kube.seed_object(fake, f.gateway("gw", servers))
        docs = {}
        for label, extra in (("dry run", ["--dry-run"]), ("real pass", [])):
            out = io.StringIO()
            argv = [
                "check",
                "-o",
                "json",
                "--log-level",
                "error",
                "--kubeconfig",
                str(fake.kubeconfig(tmp_path / "kc")),
            ]
            main([*argv, "--config", str(config_file(tmp_path)), *extra], stdout=out)
            docs[label] = out.getvalue()
    answers: dict[tuple[str, str], str] = {}
    found = recipes()
    assert len(found) >= 7
    for question, program in found:
        for label, doc in docs.items():
            p = subprocess.run([jq, "-r", program], input=doc, capture_output=True, text=True)
            assert p.returncode == 0, (question, label, p.stderr)
            answers[(question, label)] = p.stdout
    assert "istio-system/app-tls: due:" in answers[("What will be renewed (dry run), and why?", "dry run")]
    assert answers[("What did this pass renew, with the new serial?", "real pass")].startswith("istio-system/app-tls ")
    assert (
        "old-tls"
        in answers[("What is skipped, and why (no issuer, another CA, cert-manager's, paused, back-off)?", "dry run")]
    )
    assert json.loads(answers[("How many findings of each code?", "dry run")])


def test_every_code_class_names_catalogued_codes() -> None:
    """A typo in a code class would silently never match; each member must be a real code."""
    from rotator import findings

    classes = {
        "UNUSABLE_CONTENT": findings.UNUSABLE_CONTENT,
        "BROKEN_REFERENCE": findings.BROKEN_REFERENCE,
        "INVALID": findings.INVALID,
        "BLOCKS_WRITE": findings.BLOCKS_WRITE,
    }
    unknown = {name: sorted(codes - set(findings.CATALOGUE)) for name, codes in classes.items()}
    assert unknown == {name: [] for name in classes}
    assert findings.UNUSABLE_CONTENT <= findings.BLOCKS_WRITE  # a candidate Istio cannot serve is never written
