"""The suite-wide secret guard in conftest.py can fail: a test that prints a key fails."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
CONFTEST = (Path(__file__).parent / "conftest.py").read_text()


@pytest.mark.prints_secrets  # the inner run's output (echoed here) holds the fake key on purpose
def test_a_test_that_logs_a_private_key_fails(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        CONFTEST.replace(
            "ROOT = Path(__file__).resolve().parent.parent",
            f"ROOT = Path({str(Path(__file__).resolve().parent.parent)!r})",
        )
    )
    pytester.makepyfile(
        test_leak="""
import sys
def test_leaks():
    sys.stderr.write("-----BEGIN PRIVATE KEY-----\\nMIGHAgEA\\n")
def test_clean():
    sys.stderr.write("nothing to see\\n")
"""
    )
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    assert "secret material in captured output" in result.stdout.str()
