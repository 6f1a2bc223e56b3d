"""What the suite-wide log guard (tests/conftest.py) looks for in everything rotator printed.

Test environments that generate a credential (TSIG and EAB keys, webhook secrets) register
it here, so a test that leaks it into a log fails whatever it was about.
"""

from __future__ import annotations

import re

SECRET_PATTERNS = [re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")]
# The PagerDuty test routing key, and every secret a test environment registers.
KNOWN_SECRETS = ["0tatorTestKey0123456789abcdefABX"]


def register_secret(value: str) -> None:
    KNOWN_SECRETS.append(value)


def leaks(captured: str) -> list[str]:
    """What of the registered material shows in ``captured``, named without revealing it."""
    found = [f"pattern {p.pattern!r}" for p in SECRET_PATTERNS if p.search(captured)]
    return found + [f"known secret {s[:6]}…" for s in KNOWN_SECRETS if s in captured]
