"""The container image definition: lint, pinning, the runtime contract, and the image itself.

Always: hadolint at error level, a fully hash-pinned lock that matches pyproject's
dependencies, and the Dockerfile's runtime contract. Marked `container` (run alone with
`pytest -m container`): podman builds the image and runs `rotator --help` and the README's
`rotator check --dry-run` on the bundled examples as uid 10001 with a read-only root
filesystem, no capabilities and no network.

No registry is reachable in CI, so the image is built on a local stand-in for
python:3.12-slim made by `.ci/container-base`: Debian bookworm (debootstrap) with Debian's
Python 3.11, not CPython 3.12. The test skips, saying why, where podman or debootstrap is
missing or podman cannot run a container; once podman runs, a failing build or command fails.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from rotator.cli import main

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


# --- the image, built and run with podman (marker `container`) ----------------------------

STAND_IN = "a local stand-in base (Debian bookworm's Python 3.11), not python:3.12-slim"
IMAGE = "localhost/rotator-ci/rotator:test"
BUILD_CACHE = "localhost/rotator-ci/rotator:build-stage"  # keeps the pip layer across runs
# The README's demo, run in /work with examples/ and config/ mounted read-only.
DEMO = ["check", "--dry-run", "-f", "examples/", "--config", "config/rotator.yaml", "--at", "2026-12-01"]
CONFINED = [
    "--rm",
    "--read-only",
    "--read-only-tmpfs=false",
    "--user",
    "10001",
    "--network",
    "none",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
]
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")  # TLS to PyPI goes through a proxy here


@dataclass(frozen=True)
class Podman:
    env: dict[str, str]

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["podman", *args], env=self.env, capture_output=True, text=True, timeout=timeout)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self("run", *CONFINED, *args)


def _ok(p: subprocess.CompletedProcess[str], what: str) -> str:
    output = p.stdout[-3000:] + p.stderr[-3000:]
    assert p.returncode == 0, f"{what} failed on {STAND_IN} (exit {p.returncode}):\n{output}"
    return p.stdout


@pytest.fixture(scope="module")
def podman() -> Podman:
    """Podman with private configuration and storage under .ci/cache, and the stand-in base."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (bash .ci/run installs podman, buildah, runc and debootstrap)")
    p = subprocess.run(
        ["bash", str(ROOT / ".ci/container-base")], capture_output=True, text=True, timeout=900, check=False
    )
    reason = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f"exit {p.returncode}"
    if p.returncode in (3, 4):  # podman or debootstrap missing; podman cannot run a container here
        pytest.skip(f"container test skipped: {reason.removeprefix('container-base: ')}")
    assert p.returncode == 0, f".ci/container-base failed: {p.stderr[-3000:]}"
    env = dict(os.environ)
    env.update(line.partition("=")[::2] for line in p.stdout.splitlines() if "=" in line)
    return Podman(env)


@pytest.fixture(scope="module")
def image(podman: Podman) -> str:
    """Build the repository's Dockerfile on the stand-in base (layers cached in .ci/cache/podman)."""
    build = ["build", "--pull=never", "--network", "host", "--build-arg", f"BASE_IMAGE={podman.env['BASE_IMAGE']}"]
    if CA_BUNDLE.is_file():
        build += ["-v", f"{CA_BUNDLE}:{CA_BUNDLE}:ro"]
    # Tag the build stage as well, so that pruning the previous run's image keeps the
    # (slow) dependency layer: storage stays at one image, reruns take seconds.
    _ok(podman(*build, "--target", "build", "-t", BUILD_CACHE, str(ROOT), timeout=900), "podman build --target build")
    _ok(podman(*build, "-t", IMAGE, str(ROOT), timeout=900), "podman build")
    podman("image", "prune", "-f")
    return IMAGE


@pytest.mark.container
def test_image_runs_help_confined_on_the_stand_in_base(podman: Podman, image: str) -> None:
    out = _ok(podman.run(image, "--help"), "rotator --help in the image")
    assert out.startswith("usage: rotator") and "check" in out and "rollback" in out, out
    version = _ok(podman.run("--entrypoint", "python", image, "--version"), "python --version")
    print(f"built and ran on {STAND_IN}: {version.strip()}")


@pytest.mark.container
def test_image_checks_the_bundled_examples_as_uid_10001(podman: Podman, image: str) -> None:
    mounts = ["-v", f"{ROOT / 'examples'}:/work/examples:ro", "-v", f"{ROOT / 'config'}:/work/config:ro", "-w", "/work"]
    ident = _ok(podman.run(*mounts, "--entrypoint", "id", image, "-u"), "id -u")
    assert ident.strip() == "10001"

    table = podman.run(*mounts, "-e", "COLUMNS=200", image, *DEMO)
    assert table.returncode == 2, f"expected CRITICAL (2) on {STAND_IN}: {table.stdout[-2000:]}{table.stderr[-2000:]}"
    assert "evaluated at 2026-12-01" in table.stdout
    for secret in ("istio-system/api-tls-secret", "istio-system/legacy-tls", "certs/status-tls"):
        assert secret in table.stdout, secret

    # The JSON report from the image equals the one from this checkout.
    got = podman.run(*mounts, image, *DEMO, "-o", "json", "--log-level", "error")
    assert got.returncode == 2, got.stderr[-2000:]
    here = io.StringIO()
    local = [str(ROOT / a) if a.startswith(("examples/", "config/")) else a for a in DEMO]
    assert main([*local, "-o", "json", "--log-level", "error"], stdout=here) == 2
    report = json.loads(got.stdout)
    assert report == json.loads(here.getvalue())
    names = {f"{c['namespace']}/{c['name']}" for c in report["credentials"]}
    assert {"istio-system/api-tls-secret", "partner-ingress/partner-tls", "certs/web-tls"} <= names
    assert len(names) == 9


@pytest.mark.container
def test_image_defaults_to_uid_10001_and_ships_no_build_leftovers(podman: Podman, image: str) -> None:
    user = _ok(podman("image", "inspect", "--format", "{{.Config.User}}", image), "podman image inspect")
    assert user.strip() == "10001:10001"
    ident = _ok(podman("run", "--rm", "--network", "none", "--entrypoint", "id", image), "id")
    # podman adds a passwd entry for a uid it lacks, docker does not: match the numbers only.
    assert re.match(r"uid=10001\b", ident) and re.search(r"\bgid=10001\b", ident), ident
    # Look as root: no pip cache anywhere, no compiler, setuptools uninstalled after the build.
    script = (
        "find / -xdev -path '*/.cache/pip' -print;"
        " for c in gcc cc x86_64-linux-gnu-gcc; do command -v $c; done;"
        " ls -d /opt/rotator/lib/python3*/site-packages/setuptools 2>/dev/null;"
        " true"
    )
    found = _ok(podman.run("--user", "0", "--entrypoint", "sh", image, "-c", script), "the leftovers check")
    assert found.strip() == "", f"build leftovers in the final image: {found}"
