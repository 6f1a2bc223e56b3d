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


def test_no_test_module_imports_another() -> None:
    """Shared helpers live in tests/support/; a test importing a test couples two subjects."""
    import ast

    offenders = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        if "support" in path.relative_to(ROOT / "tests").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] == "tests" and any(p.startswith("test_") or p == "conftest" for p in parts[1:]):
                    offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []
