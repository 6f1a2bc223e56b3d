"""Docs that are a contract: every finding code documented, the config reference current."""

from __future__ import annotations

import re
from pathlib import Path

from rotator.configdoc import render
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
        "docs/configuration.md is stale: run python -m rotator.configdoc > docs/configuration.md"
    )


def test_configuration_reference_covers_every_field_of_every_model() -> None:
    """Generated is not enough: a nested model (an Optional one, say) could be skipped."""
    from pydantic import BaseModel

    import rotator.config as config_module

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
