"""Opt-in suite against a real cluster (kind + Istio): see docs/e2e.md.

Skipped unless ROTATOR_E2E=1: it creates and deletes objects in the cluster the
current kubeconfig points at, so it never runs by accident.
"""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("ROTATOR_E2E") == "1":
        return
    skip = pytest.mark.skip(reason="end-to-end suite: set ROTATOR_E2E=1 with a kind + Istio cluster (docs/e2e.md)")
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(skip)
