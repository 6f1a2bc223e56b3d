import sys
from pathlib import Path

import freezegun

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# freezegun walks every loaded module's attributes; the kubernetes client builds its
# pydantic models lazily on attribute access, which fails under a fake datetime.
freezegun.configure(extend_ignore_list=["kubernetes"])


# --- a guard over the whole suite: no secret material in anything rotator printed -----------

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from tests.support.secretscan import leaks as secret_leaks  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Fail any test whose captured stdout/stderr/log holds a private key or a known secret.

    Every scenario of the suite runs rotator for real (CLI, daemon, issuers), so this scans
    the logs of all of them, not just the tests written about logging.
    """
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when != "call" or report.failed or item.get_closest_marker("prints_secrets"):
        return
    captured = "\n".join(text for name, text in report.sections if name.startswith("Captured"))
    leaks = secret_leaks(captured)
    if leaks:
        report.outcome = "failed"
        report.longrepr = f"secret material in captured output: {leaks}"
