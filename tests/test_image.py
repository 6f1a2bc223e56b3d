"""The container image definition: lint, pinning, and the runtime contract.

Building and running the image needs podman; that test lands with the Helm chart
(issue 6). Here: hadolint at error level, a fully hash-pinned lock that matches
pyproject's dependencies, and the Dockerfile's runtime contract.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_hadolint_finds_no_errors() -> None:
    exe = Path(sys.executable).parent / "hadolint"
    p = subprocess.run(
        [str(exe), "--failure-threshold", "error", str(ROOT / "Dockerfile")], capture_output=True, text=True
    )
    assert p.returncode == 0, p.stdout + p.stderr


def test_the_lock_pins_every_dependency_by_hash() -> None:
    lock = (ROOT / "requirements.lock").read_text()
    entries = re.findall(r"^([A-Za-z0-9_.-]+)==([^\s\\]+)", lock, re.M)
    pinned = {name.lower().replace("_", "-") for name, _ in entries}
    blocks = re.split(r"\n(?=[A-Za-z0-9_.-]+==)", lock.strip())
    assert all("--hash=sha256:" in b for b in blocks), "an entry without a hash"
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dep in deps:
        name = re.split(r"[<>=!~\[ ]", dep, maxsplit=1)[0].lower().replace("_", "-")
        assert name in pinned, f"{name} is in pyproject.toml but not in requirements.lock (re-run uv pip compile)"


def test_runtime_contract() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=python:3.12-slim" in text
    final = text.rsplit("FROM ", 1)[1]  # the last stage is what ships
    assert "USER 10001" in final and 'ENTRYPOINT ["rotator"]' in final
    assert "PYTHONDONTWRITEBYTECODE=1" in final
    assert "org.opencontainers.image.source" in final
    assert not re.search(r"apt-get|gcc|build-essential", final)  # no build tools in the final stage
    assert "--require-hashes" in text
