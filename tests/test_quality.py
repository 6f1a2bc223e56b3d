"""Lint and types are part of the test command, so CI and a developer run the same gate."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str) -> list[str]:
    exe = Path(sys.executable).parent / name
    return [str(exe)] if exe.exists() else [shutil.which(name) or name]


def test_ruff_lint() -> None:
    paths = [d for d in ("rotator", "tests", "examples", "bench") if (ROOT / d).is_dir()]
    p = subprocess.run([*_tool("ruff"), "check", *paths], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_ruff_format() -> None:
    p = subprocess.run(
        [*_tool("ruff"), "format", "--check", "rotator", "examples", "tests", "bench"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stdout + p.stderr


def test_mypy_strict() -> None:
    p = subprocess.run([*_tool("mypy")], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
