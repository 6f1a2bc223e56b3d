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


def _import_graph() -> dict[str, set[str]]:
    """rotator's modules and what each imports, at the top or inside a function."""
    import ast

    pkg = ROOT / "rotator"
    modules = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p for p in pkg.rglob("*.py")
    }
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rotator"):
                targets = [
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                    for a in node.names
                ]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("rotator")]
            graph[mod] |= {t for t in targets if t in modules and t != mod and t != "rotator"}
    return graph


def test_no_import_cycle() -> None:
    """A cycle means two modules are one job split in two, or a seam pointing the wrong way."""
    graph = _import_graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for mod in sorted(graph):
        if mod not in state:
            visit(mod, [mod])
    assert cycles == []


def test_the_kubernetes_seam_never_calls_into_the_stages() -> None:
    """kube/ fetches and writes; discovery, inspection, planning, apply and report decide.
    An adapter that ran discovery or inspection would hide a stage inside the edge. The one
    exception is the wire parser (raw JSON -> typed objects), which the seam uses so that
    it hands the stages typed objects, as the file loader does."""
    stages = ("rotator.discover", "rotator.checks", "rotator.plan", "rotator.apply", "rotator.report")
    allowed = "rotator.discover.wire"  # the package and its modules
    graph = _import_graph()
    wrong = {
        mod: sorted(
            t
            for t in targets
            if (t.startswith(stages) or t in ("rotator.pipeline", "rotator.live_pass"))
            and not (t == allowed or t.startswith(allowed + "."))
        )
        for mod, targets in graph.items()
        if mod.startswith("rotator.kube")
    }
    assert {m: t for m, t in wrong.items() if t} == {}


def test_no_module_is_too_long_to_read_as_one_job() -> None:
    """One module, one job: past ~400 lines a module is usually doing two. The hard limit
    leaves room for the few single-job modules just over it (renewer, config schema, the
    API seam, the model); a new module over it should be split, not the limit raised."""
    limit = 450
    long = {
        str(p.relative_to(ROOT)): n
        for p in sorted((ROOT / "rotator").rglob("*.py"))
        if (n := len(p.read_text().splitlines())) > limit
    }
    assert long == {}
