"""The command line and the JSON contract (docs/report-format.md), through ``main()``
in-process and through a real subprocess where start-up and exit codes matter."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from freezegun import freeze_time

from rotator.cli import main
from rotator.findings import CATALOGUE
from tests.support import factory as f

ROOT = Path(__file__).resolve().parent.parent
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def write(tmp_path: Path, name: str, *docs: dict[str, Any]) -> Path:
    p = tmp_path / name
    p.write_text("---\n".join(yaml.safe_dump(d) for d in docs))
    return p


def run_json(*args: str, stdin: str = "") -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    code = main(
        ["check", "--dry-run", "-o", "json", "--log-level", "error", *args], stdin=io.StringIO(stdin), stdout=out
    )
    return code, json.loads(out.getvalue())


def healthy(tmp_path: Path, days_left: float = 80) -> Path:
    leaf = f.make_leaf(["app.example.com"], nb=-10, na=days_left)
    return write(
        tmp_path,
        "ok.yaml",
        f.ingress(),
        f.gateway("gw", [f.server(["app.example.com"], "app-tls")]),
        f.secret("app-tls", leaf=leaf),
    )


# --- the contract ------------------------------------------------------------------


def check_contract(doc: dict[str, Any]) -> None:
    """Every field the contract promises, with its type; fails on any drift."""
    assert doc["version"] == 1
    assert RFC3339.match(doc["evaluated_at"])
    assert set(doc) >= {"version", "evaluated_at", "credentials", "findings", "summary"}
    for c in doc["credentials"]:
        assert set(c) >= {
            "namespace",
            "name",
            "role",
            "references",
            "certificate",
            "state",
            "renew_at",
            "action",
            "findings",
        }
        assert c["role"] in ("server", "client-ca")
        assert c["state"] in ("ok", "due", "expired", "invalid", "missing")
        assert c["action"] in ("none", "renew", "skip")
        assert c["renew_at"] is None or RFC3339.match(c["renew_at"])
        for r in c["references"]:
            assert set(r) == {"group", "kind", "namespace", "name", "listener", "port", "mode", "hosts"}
            assert isinstance(r["hosts"], list)
        cert = c["certificate"]
        if cert is not None:
            assert set(cert) == {
                "subject",
                "issuer",
                "serial",
                "sans",
                "not_before",
                "not_after",
                "key_type",
                "chain_length",
            }
            assert re.fullmatch(r"[0-9a-f]+", cert["serial"])
            assert RFC3339.match(cert["not_before"]) and RFC3339.match(cert["not_after"])
            assert isinstance(cert["chain_length"], int) and cert["chain_length"] >= 1
        for fd in c["findings"]:
            assert set(fd) == {"code", "severity", "message"}
            assert fd["code"] in CATALOGUE
            assert fd["severity"] in ("critical", "error", "warning", "info")
    for fd in doc["findings"]:
        assert set(fd) == {"code", "severity", "message", "object"}
        assert fd["code"] in CATALOGUE
        assert set(fd["object"]) == {"kind", "namespace", "name"}
    s = doc["summary"]
    assert set(s["states"]) == {"ok", "due", "expired", "invalid", "missing"}
    assert set(s["severities"]) == {"critical", "error", "warning", "info"}
    assert sum(s["states"].values()) == len(doc["credentials"])


def test_json_contract_on_a_healthy_credential(tmp_path: Path) -> None:
    code, doc = run_json("-f", str(healthy(tmp_path)), "--at", f.NOW.isoformat())
    check_contract(doc)
    assert code == 0
    (c,) = doc["credentials"]
    assert (c["namespace"], c["name"], c["role"], c["state"], c["action"]) == (
        "istio-system",
        "app-tls",
        "server",
        "ok",
        "none",
    )
    assert c["references"] == [
        {
            "group": "networking.istio.io",
            "kind": "Gateway",
            "namespace": "istio-system",
            "name": "gw",
            "listener": "https",
            "port": 443,
            "mode": "SIMPLE",
            "hosts": ["app.example.com"],
        }
    ]
    assert c["certificate"]["sans"] == ["app.example.com"]
    assert c["certificate"]["key_type"] == "ECDSA P-256"
    assert c["certificate"]["chain_length"] == 2
    assert c["certificate"]["not_after"] == f.rfc(f.t(80))
    assert doc["summary"]["states"]["ok"] == 1


def test_json_contract_on_the_examples() -> None:
    code, doc = run_json(
        "-f", str(ROOT / "examples"), "--config", str(ROOT / "config/rotator.yaml"), "--at", "2026-12-01"
    )
    check_contract(doc)
    assert code == 2
    assert doc["evaluated_at"] == "2026-12-01T00:00:00Z"


def test_yaml_output_is_the_same_document(tmp_path: Path) -> None:
    path = str(healthy(tmp_path))
    out = io.StringIO()
    main(["check", "--dry-run", "-o", "yaml", "-f", path, "--at", "2026-06-01"], stdout=out)
    _, as_json = run_json("-f", path, "--at", "2026-06-01")
    assert yaml.safe_load(out.getvalue()) == as_json


# --- exit codes --------------------------------------------------------------------


def test_exit_0_when_healthy(tmp_path: Path) -> None:
    code, doc = run_json("-f", str(healthy(tmp_path)), "--at", "2026-06-01")
    assert code == 0 and doc["exit_code"] == 0


def test_exit_1_when_a_renewal_is_due(tmp_path: Path) -> None:
    code, doc = run_json(
        "-f", str(healthy(tmp_path, days_left=3)), "--at", "2026-06-01", "--config", str(issuer_config(tmp_path))
    )
    assert doc["credentials"][0]["state"] == "due"
    assert doc["credentials"][0]["action"] == "renew"
    assert code == 1


def test_exit_2_when_expired(tmp_path: Path) -> None:
    code, doc = run_json("-f", str(healthy(tmp_path, days_left=-1)), "--at", "2026-06-01")
    assert doc["credentials"][0]["state"] == "expired"
    assert code == 2


def test_exit_3_on_missing_input(tmp_path: Path, capsys: Any) -> None:
    code = main(["check", "--dry-run", "-f", str(tmp_path / "nope.yaml")], stdout=io.StringIO())
    assert code == 3
    assert "nope.yaml" in capsys.readouterr().err


def test_exit_3_on_bad_config(tmp_path: Path, capsys: Any) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("renewal:\n  renew_befor: 30d\n")
    code = main(["check", "--dry-run", "-f", str(healthy(tmp_path)), "--config", str(cfg)], stdout=io.StringIO())
    assert code == 3
    err = capsys.readouterr().err
    assert "renewal.renew_befor" in err and "unknown key" in err


def test_exit_3_on_bad_usage_and_bad_at(tmp_path: Path, capsys: Any) -> None:
    assert main(["check", "--bogus"], stdout=io.StringIO()) == 3
    assert main(["check", "--dry-run", "-f", str(healthy(tmp_path)), "--at", "next tuesday"], stdout=io.StringIO()) == 3
    assert "--at" in capsys.readouterr().err


def test_without_dry_run_nothing_is_changed_and_it_says_why(tmp_path: Path, capsys: Any) -> None:
    assert main(["check", "-f", str(healthy(tmp_path))], stdout=io.StringIO()) == 3
    assert "--dry-run" in capsys.readouterr().err


def issuer_config(tmp_path: Path) -> Path:
    p = tmp_path / "rotator.yaml"
    p.write_text(
        yaml.safe_dump(
            {
                "issuers": {"ca": {"type": "ca", "secret": "istio-system/ca"}},
                "rules": [{"issuer": "ca", "hosts": ["*.example.com"]}],
            }
        )
    )
    return p


# --- --at and time -----------------------------------------------------------------


def test_at_relative_moves_the_clock(tmp_path: Path) -> None:
    path = str(healthy(tmp_path, days_left=80))
    with freeze_time(f.NOW):
        _, now_doc = run_json("-f", path)
        _, later = run_json("-f", path, "--at", "+60d")
        _, past = run_json("-f", path, "--at=-20d")
    assert now_doc["evaluated_at"] == f.rfc(f.NOW)
    assert now_doc["credentials"][0]["state"] == "ok"
    assert later["evaluated_at"] == f.rfc(f.t(60))
    assert later["credentials"][0]["state"] == "due"
    assert past["credentials"][0]["findings"][0]["code"] == "cert-not-yet-valid"


def test_at_absolute_date_and_datetime(tmp_path: Path) -> None:
    path = str(healthy(tmp_path, days_left=80))
    _, d = run_json("-f", path, "--at", "2026-09-01")
    assert d["credentials"][0]["state"] == "expired"
    _, d = run_json("-f", path, "--at", "2026-06-01T12:30:00+02:00")
    assert d["evaluated_at"] == "2026-06-01T10:30:00Z"


# --- inputs ------------------------------------------------------------------------


def test_stdin_and_repeated_f(tmp_path: Path) -> None:
    leaf = f.make_leaf(["app.example.com"])
    gw = write(tmp_path, "gw.yaml", f.ingress(), f.gateway("gw", [f.server(["app.example.com"], "app-tls")]))
    sec = yaml.safe_dump(f.secret("app-tls", leaf=leaf))
    code, doc = run_json("-f", str(gw), "-f", "-", "--at", "2026-06-01", stdin=sec)
    assert code == 0
    assert doc["credentials"][0]["state"] == "ok"


def test_broken_input_is_named_and_the_rest_still_checked(tmp_path: Path) -> None:
    good = healthy(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: x\n---\n" + yaml.safe_dump(f.gateway("other", "not-a-list"))
    )  # type: ignore[arg-type]
    code, doc = run_json("-f", str(good), "-f", str(bad), "--at", "2026-06-01")
    assert code == 2
    msgs = [x["message"] for x in doc["findings"] if x["code"] == "invalid-manifest"]
    assert any("bad.yaml#1" in m and "invalid YAML" in m for m in msgs), msgs
    assert any("bad.yaml#2" in m and "Gateway istio-system/other" in m and "spec.servers" in m for m in msgs), msgs
    assert [c["state"] for c in doc["credentials"]] == ["ok"]


def test_default_namespace_flag(tmp_path: Path) -> None:
    leaf = f.make_leaf(["app.example.com"])
    g = f.gateway("gw", [f.server(["app.example.com"], "app-tls")])
    del g["metadata"]["namespace"]
    s = f.secret("app-tls", leaf=leaf)
    del s["metadata"]["namespace"]
    path = write(tmp_path, "x.yaml", g, s)
    _, doc = run_json("-f", str(path), "-n", "edge", "--at", "2026-06-01")
    assert [(c["namespace"], c["state"]) for c in doc["credentials"]] == [("edge", "ok")]


def test_env_override_of_renew_before(tmp_path: Path, monkeypatch: Any) -> None:
    path = str(healthy(tmp_path, days_left=50))
    _, doc = run_json("-f", path, "--at", "2026-06-01")
    assert doc["credentials"][0]["state"] == "ok"
    monkeypatch.setenv("ROTATOR_RENEWAL__RENEW_BEFORE", "60d")
    _, doc = run_json("-f", path, "--at", "2026-06-01")
    assert doc["credentials"][0]["state"] == "due"
    assert doc["credentials"][0]["renew_at"] == f.rfc(f.t(-10))


# --- table -------------------------------------------------------------------------


def test_table_output_lists_credentials_and_findings(tmp_path: Path) -> None:
    out = io.StringIO()
    code = main(
        [
            "check",
            "--dry-run",
            "-f",
            str(ROOT / "examples"),
            "--config",
            str(ROOT / "config/rotator.yaml"),
            "--at",
            "2026-12-01",
            "--color",
            "never",
        ],
        stdout=out,
    )
    text = out.getvalue()
    assert code == 2
    assert "istio-system/api-tls-secret" in text and "due" in text
    assert "host-not-covered" in text and "www.shop.example.com" in text
    assert "Exit code 2" in text
    assert "\x1b[" not in text  # --color never


# --- processes ---------------------------------------------------------------------


def test_python_dash_m_and_console_script_agree() -> None:
    args = [
        "check",
        "--dry-run",
        "-o",
        "json",
        "-f",
        str(ROOT / "examples"),
        "--at",
        "2026-12-01",
        "--log-level",
        "error",
    ]
    a = subprocess.run([sys.executable, "-m", "rotator", *args], capture_output=True, text=True, cwd=ROOT)
    assert a.returncode == 2, a.stderr
    assert json.loads(a.stdout)["version"] == 1


def test_help_documents_exit_codes_and_loads_no_heavy_modules() -> None:
    code = (
        "import sys, io, contextlib\nfrom rotator.cli import main\nbuf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n    rc = main(['--help'])\n"
        "heavy = [m for m in ('cryptography', 'pydantic', 'rich', 'yaml', 'structlog') if m in sys.modules]\n"
        "print(rc, heavy)\nprint(buf.getvalue())"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    first, _, help_text = p.stdout.partition("\n")
    assert first == "0 []", p.stdout + p.stderr
    for line in ("0  OK", "1  WARNING", "2  CRITICAL", "3  UNKNOWN"):
        assert line in help_text


def test_logs_go_to_stderr_as_json_and_hold_no_key_material(tmp_path: Path) -> None:
    leaf = f.make_leaf(["app.example.com"])
    path = write(
        tmp_path,
        "x.yaml",
        f.ingress(),
        f.gateway("gw", [f.server(["app.example.com"], "app-tls")]),
        f.secret("app-tls", leaf=leaf),
    )
    p = subprocess.run(
        [sys.executable, "-m", "rotator", "check", "--dry-run", "-o", "json", "-f", str(path), "--log-level", "debug"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    lines = [json.loads(x) for x in p.stderr.splitlines() if x.strip()]
    assert any(x.get("event") == "check finished" for x in lines)
    body = [ln for ln in leaf.key_pem().decode().splitlines() if "-----" not in ln]
    for out in (p.stdout, p.stderr):
        assert "PRIVATE KEY" not in out
        assert not any(b in out for b in body)


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_for_long_inputs_only(tmp_path: Path, monkeypatch: Any) -> None:
    for i in range(60):
        write(tmp_path, f"gw{i:02}.yaml", f.gateway(f"gw{i}", [f.server([f"h{i}.example.com"], f"s{i}")]))
    tty = _TTY()
    monkeypatch.setattr(sys, "stderr", tty)
    main(["check", "--dry-run", "-o", "json", "-f", str(tmp_path), "--log-level", "error"], stdout=io.StringIO())
    assert "loading manifests: 60/60" in tty.getvalue()
    short = _TTY()
    monkeypatch.setattr(sys, "stderr", short)
    main(
        ["check", "--dry-run", "-o", "json", "-f", str(tmp_path / "gw00.yaml"), "--log-level", "error"],
        stdout=io.StringIO(),
    )
    assert "loading manifests" not in short.getvalue()


# --- review fixes: empty input, crashes, pipes, negative --at -----------------------


def test_empty_input_is_unknown_not_ok(tmp_path: Path, capsys: Any) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["check", "--dry-run", "-f", "-"], stdin=io.StringIO(""), stdout=io.StringIO()) == 3
    assert main(["check", "--dry-run", "-f", str(tmp_path / "empty")], stdout=io.StringIO()) == 3
    assert "nothing was checked" in capsys.readouterr().err


def test_input_without_gateways_warns(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", f.secret("orphan", leaf=f.make_leaf()))
    code, doc = run_json("-f", str(path), "--at", "2026-06-01")
    check_contract(doc)
    assert code == 1
    assert [x["code"] for x in doc["findings"]] == ["no-gateways"]


def test_gateway_only_input_still_satisfies_the_contract(tmp_path: Path) -> None:
    path = write(tmp_path, "g.yaml", f.gateway("gw", [f.server(["app.example.com"], "app-tls")]))
    _, doc = run_json("-f", str(path), "--at", "2026-06-01")
    check_contract(doc)  # the no-workloads finding names an object too
    assert doc["findings"][0]["object"] == {"kind": "Input", "namespace": "", "name": "workloads"}


def test_negative_relative_at_with_a_space(tmp_path: Path) -> None:
    path = str(healthy(tmp_path))
    code, doc = run_json("-f", path, "--at", "2026-06-01")
    _, earlier = run_json("-f", path, "--at", "2026-06-01", "--at", "-12h")
    assert code == 0
    assert earlier["evaluated_at"] != doc["evaluated_at"]


def test_internal_error_exits_unknown_not_warning(tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    import rotator.pipeline

    def boom(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(rotator.pipeline, "inspect_all", boom)  # what every pass runs first
    assert main(["check", "--dry-run", "-f", str(healthy(tmp_path))], stdout=io.StringIO()) == 3
    assert "internal error (RuntimeError)" in capsys.readouterr().err


@pytest.mark.parametrize("output", ["yaml", "json"])
def test_closed_pipe_is_not_a_failure(tmp_path: Path, output: str) -> None:
    """`rotator check ... | head -c 100` with far more output than a pipe buffer holds."""
    docs = []
    for i in range(300):
        docs.append(f.gateway(f"gw{i}", [f.server([f"h{i}.example.com"], f"tls-{i}")]))
    path = write(tmp_path, "many.yaml", f.ingress(), *docs)
    cmd = f"{sys.executable} -m rotator check --dry-run -o {output} -f {path} --log-level error | head -c 100"
    p = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, cwd=ROOT)
    assert len(p.stdout) == 100
    assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr, p.stderr
    assert p.returncode == 0


def test_console_script_runs() -> None:
    exe = Path(sys.executable).parent / "rotator"
    p = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.startswith("rotator ")


@pytest.mark.parametrize("columns", [80, 120, 170])
def test_the_table_fits_the_terminal_and_never_drops_state_or_action(columns: int, monkeypatch: Any) -> None:
    """Rendered to text at a fixed width (no screenshot): every line fits, and STATE and
    ACTION of every credential are there."""
    monkeypatch.setenv("COLUMNS", str(columns))
    out = io.StringIO()
    argv = ["check", "--dry-run", "-f", str(ROOT / "examples"), "--config", str(ROOT / "config/rotator.yaml")]
    main([*argv, "--at", "2026-12-01", "--log-level", "error"], stdout=out)
    text = out.getvalue()
    lines = text.splitlines()
    assert all(len(line) <= columns for line in lines), max(lines, key=len)
    header = next(line for line in lines if "SECRET" in line)
    assert "STATE" in header and "ACTION" in header and "FINDINGS" in header
    doc = json.loads(_json_of(argv))
    body = text.split("Findings:")[0].splitlines()
    rows = body[body.index(header) + 2 :]  # below the rule under the header
    state_at, expires_at = header.index("STATE"), header.index("EXPIRES")
    action_at, findings_at = header.index("ACTION"), header.index("FINDINGS")

    def cell(line: str, start: int, end: int) -> str:
        return line[start:end].strip()

    states = [cell(line, state_at, expires_at) for line in rows if cell(line, state_at, expires_at)]
    actions = [cell(line, action_at, findings_at) for line in rows if cell(line, action_at, findings_at)]
    assert states == [c["state"] for c in doc["credentials"]]  # one STATE per credential, none cut
    assert actions == [c["action"] for c in doc["credentials"]]


def _json_of(argv: list[str]) -> str:
    out = io.StringIO()
    main([*argv, "--at", "2026-12-01", "--log-level", "error", "-o", "json"], stdout=out)
    return out.getvalue()


def test_no_color_and_a_pipe_width_from_columns(monkeypatch: Any) -> None:
    from rotator.report.document import table_width

    assert table_width(io.StringIO(), {"COLUMNS": "97"}) == 97
    assert table_width(io.StringIO(), {}) == 200
    monkeypatch.setenv("NO_COLOR", "1")
    out = io.StringIO()
    argv = ["check", "--dry-run", "-f", str(ROOT / "examples"), "--config", str(ROOT / "config/rotator.yaml")]
    main([*argv, "--color", "auto", "--log-level", "error"], stdout=out)
    assert "\x1b[" not in out.getvalue()
    out = io.StringIO()
    main([*argv, "-o", "summary", "--log-level", "error"], stdout=out)
    assert out.getvalue().count("\n") == 1 and "credential(s)" in out.getvalue()


def test_an_empty_result_says_no_credentials_found(tmp_path: Path) -> None:
    empty = tmp_path / "gw.yaml"
    empty.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: default}\n")
    out = io.StringIO()
    main(["check", "--dry-run", "-f", str(empty), "--log-level", "error"], stdout=out)
    assert "no credentials found" in out.getvalue() and "SECRET" not in out.getvalue()


CHECK_DEMO = [
    sys.executable,
    "-m",
    "rotator",
    "check",
    "--dry-run",
    "-f",
    "examples",
    "--config",
    "config/rotator.yaml",
]


def test_json_with_stderr_merged_is_one_document_for_jq() -> None:
    """`rotator check -o json 2>&1 | jq`: no log line on stderr at the default level."""
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "rotator",
            "check",
            "--dry-run",
            "-f",
            "examples",
            "--config",
            "config/rotator.yaml",
            "-o",
            "json",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert json.loads(p.stdout)["version"] == 1  # the whole merged stream is the report
    loud = subprocess.run(
        [sys.executable, "-m", "rotator", "check", "--dry-run", "-f", "examples", "-o", "json", "--log-level", "info"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert "check finished" in loud.stderr  # asked for: there


def test_global_flags_go_before_or_after_the_command(tmp_path: Path) -> None:
    for argv in (
        ["--color", "never", "--kubeconfig", "/nonexistent", "check", "--dry-run"],
        ["check", "--dry-run", "--color", "never", "--kubeconfig", "/nonexistent"],
    ):
        p = subprocess.run([sys.executable, "-m", "rotator", *argv], cwd=ROOT, capture_output=True, text=True)
        assert p.returncode == 3 and "--kubeconfig /nonexistent: no such file" in p.stderr, p.stderr


def test_no_kubeconfig_anywhere_says_where_it_looked(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    env["HOME"] = str(tmp_path)
    p = subprocess.run(
        [sys.executable, "-m", "rotator", "check", "--dry-run"], cwd=ROOT, capture_output=True, text=True, env=env
    )
    assert p.returncode == 3 and "$KUBECONFIG is not set" in p.stderr and ".kube/config does not exist" in p.stderr


def test_completion_scripts_offer_the_commands_and_their_options(tmp_path: Path) -> None:
    out = io.StringIO()
    assert main(["completion", "bash"], stdout=out) == 0
    script = tmp_path / "rotator.bash"
    script.write_text(out.getvalue())
    probe = (
        f"source {script}; "
        'COMP_WORDS=(rotator st); COMP_CWORD=1; _rotator; echo "${COMPREPLY[@]}"; '
        'COMP_WORDS=(rotator check --dry); COMP_CWORD=2; _rotator; echo "${COMPREPLY[@]}"; '
        'COMP_WORDS=(rotator check -o w); COMP_CWORD=3; _rotator; echo "${COMPREPLY[@]}"'
    )
    p = subprocess.run(["bash", "-c", probe], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["status", "--dry-run", "wide"]
    for shell in ("zsh", "fish"):
        out = io.StringIO()
        assert main(["completion", shell], stdout=out) == 0
        assert "renew" in out.getvalue() and "rollback" in out.getvalue()


def test_a_long_pass_names_its_phase_on_a_terminal_and_clears_it(tmp_path: Path) -> None:
    from rotator.commands.common import Phases
    from rotator.live_pass import live_pass
    from tests.support import kube
    from tests.support.fakeapi import FakeCluster

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Tty()
    phases = Phases(stream)
    seen: list[str] = []

    def record(phase: str) -> None:
        seen.append(phase)
        phases(phase)

    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake:
        kube.seed_object(fake, f.ingress())
        from rotator.config.load import parse_config

        live_pass(kube.api(fake.kubeconfig(tmp_path / "kc")), parse_config({}), lambda: f.NOW, True, progress=record)
    phases.done()
    assert seen[0] == "reading the cluster" and seen[1].startswith("planning (")
    assert stream.getvalue().endswith("\r\x1b[K")  # cleared before the report
    quiet = Tty()
    Phases(quiet, enabled=False)("reading the cluster")
    assert quiet.getvalue() == "" and Phases(io.StringIO()).enabled is False  # no terminal: nothing


def test_nothing_readable_is_exit_3_like_an_empty_folder(tmp_path: Path) -> None:
    junk = tmp_path / "junk.yaml"
    junk.write_bytes(b"garbage: [\n")
    rnd = tmp_path / "random.json"
    rnd.write_bytes(bytes(range(256)))
    for paths in ([junk], [rnd], [junk, rnd]):
        argv = ["check", "--dry-run", "--log-level", "error", *[a for p in paths for a in ("-f", str(p))]]
        p = subprocess.run([sys.executable, "-m", "rotator", *argv], cwd=ROOT, capture_output=True, text=True)
        assert p.returncode == 3 and "no Kubernetes objects could be read" in p.stderr and p.stdout == ""


def test_folders_skip_dot_folders_and_chart_templates_and_honour_exclude(tmp_path: Path) -> None:
    from rotator.discover.files import expand_paths

    (tmp_path / ".venv/lib").mkdir(parents=True)
    (tmp_path / ".venv/lib/x.yaml").write_text("a: 1\n")
    (tmp_path / "chart/templates").mkdir(parents=True)
    (tmp_path / "chart/Chart.yaml").write_text("name: c\n")
    (tmp_path / "chart/templates/gw.yaml").write_text("{{ .Values.x }}\n")
    (tmp_path / "manifests/tests").mkdir(parents=True)
    (tmp_path / "manifests/gw.yaml").write_text("a: 1\n")
    (tmp_path / "manifests/tests/t.yaml").write_text("a: 1\n")
    rel = [str(Path(p).relative_to(tmp_path)) for p in expand_paths([str(tmp_path)])]
    assert rel == ["chart/Chart.yaml", "manifests/gw.yaml", "manifests/tests/t.yaml"]
    rel = [str(Path(p).relative_to(tmp_path)) for p in expand_paths([str(tmp_path)], exclude=["tests", "Chart.yaml"])]
    assert rel == ["manifests/gw.yaml"]
    explicit = str(tmp_path / ".venv/lib/x.yaml")
    assert expand_paths([explicit]) == [explicit]  # a file named is always read


def test_the_same_object_twice_is_counted_once(tmp_path: Path) -> None:
    objs = [
        f.ingress(),
        f.gateway("gw", [f.server(["a.example.com"], "a-tls")]),
        f.secret("a-tls", leaf=f.make_leaf(["a.example.com"])),
    ]
    one, two = write(tmp_path, "one.yaml", *objs), write(tmp_path, "copy.yaml", *objs)
    out = io.StringIO()
    main(["check", "--dry-run", "-f", str(one), "-f", str(two), "-o", "json", "--log-level", "error"], stdout=out)
    doc = json.loads(out.getvalue())
    assert len(doc["credentials"]) == 1
    dups = [x for x in doc["findings"] if x["code"] == "duplicate-object"]
    assert len(dups) == 3 and all("copy.yaml" in x["message"] and "one.yaml" in x["message"] for x in dups)


def test_a_closed_pipe_is_not_an_error(tmp_path: Path) -> None:
    """`rotator check | head -2` on a table larger than a pipe's buffer: the reader leaves
    early, the command exits 0 for it. (Output that fits the buffer is written before the
    reader can leave, and then the exit code is the check's own, as it should be.)"""
    docs = [f.gateway(f"gw{i}", [f.server([f"h{i}.example.com"], f"tls-{i}")]) for i in range(300)]
    path = write(tmp_path, "many.yaml", f.ingress(), *docs)
    cmd = f"{sys.executable} -m rotator check --dry-run -f {path} --log-level error | head -2; exit ${{PIPESTATUS[0]}}"
    p = subprocess.run(["bash", "-c", cmd], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0 and len(p.stdout.splitlines()) == 2 and "Traceback" not in p.stderr, p.stderr


def test_invalid_base64_and_garbage_pem_are_said_in_the_user_s_terms(tmp_path: Path) -> None:
    leaf = f.make_leaf(["a.example.com"])
    bad = f.secret("a-tls", leaf=leaf)
    bad["data"]["tls.crt"] = "!!!not base64"
    garbage = f.secret(
        "b-tls",
        data={
            "tls.crt": b"-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n",
            "tls.key": leaf.key_pem(),
        },
    )
    servers = [
        f.server(["a.example.com"], "a-tls", name="a", port=1),
        f.server(["b.example.com"], "b-tls", name="b", port=2),
    ]
    path = write(tmp_path, "in.yaml", f.ingress(), f.gateway("gw", servers), bad, garbage)
    out = io.StringIO()
    main(["check", "--dry-run", "-f", str(path), "-o", "json", "--log-level", "error"], stdout=out)
    creds = {
        c["name"]: " ".join(x["message"] for x in c["findings"]) for c in json.loads(out.getvalue())["credentials"]
    }
    assert "key 'tls.crt' is not valid base64" in creds["a-tls"]
    assert "not a valid DER structure" in creds["b-tls"] and "ParseError" not in creds["b-tls"]
    assert "cryptography.io" not in creds["b-tls"]


def test_a_file_that_is_not_kubernetes_is_no_usable_input(tmp_path: Path) -> None:
    compose = tmp_path / "docker-compose.yaml"
    compose.write_text('version: "3"\nservices:\n  web: {image: nginx}\n')
    p = subprocess.run(
        [sys.executable, "-m", "rotator", "check", "--dry-run", "-f", str(compose)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert p.returncode == 3 and "no object with a string apiVersion and kind" in p.stderr


def test_the_report_document_is_linear_in_renewals(monkeypatch: pytest.MonkeyPatch) -> None:
    """The copy index of a pass's renewals is built once per document, not once per
    credential (that was quadratic: 25 s for a pass with 10,000 renewals)."""
    from dataclasses import replace
    from datetime import timedelta

    from rotator.model import CheckResult, RenewalOutcome
    from rotator.report.document import to_document

    objects: list[dict[str, Any]] = [f.ingress()]
    for i in range(30):
        objects += [
            f.gateway(f"gw-{i}", [f.server([f"h{i}.example.com"], f"s{i}")]),
            f.secret(f"s{i}", leaf=f.make_leaf([f"h{i}.example.com"])),
        ]
    result = f.run(*objects)
    outcomes = tuple(
        RenewalOutcome("istio-system", f"s{i}", "renewed", "ok", "ca", "1", f.NOW + timedelta(days=1))
        for i in range(30)
    )
    result = replace(result, renewals=outcomes)
    calls = 0
    real = CheckResult.renewals_by_copy

    def counting(self: CheckResult) -> dict[str, RenewalOutcome]:
        nonlocal calls
        calls += 1
        return real(self)

    monkeypatch.setattr(CheckResult, "renewals_by_copy", counting)
    doc = to_document(result)
    assert calls <= 3  # credentials, summary, and at most one more: never per credential
    assert sum(1 for c in doc["credentials"] if (c.get("renewal") or {}).get("status") == "renewed") == 30


TRICKY = [
    "yes",
    "No",
    "on",
    "null",
    "~",
    "",
    " lead",
    "trail ",
    "a: b",
    "a #b",
    "- x",
    "*.example.com",
    "10.0.0.1",
    "2026-12-01T00:00:00Z",
    "1e3",
    "0x1F",
    ".inf",
    "1_000",
    "ünï",
    'q"uote',
    "back\\slash",
    "line\nbreak",
    "tab\there",
    "CN=app,O=Example",
    "{x}",
    "[x]",
    "@x",
    "%x",
    "!x",
    "&x",
    "|",
    ">",
    "?x",
    "x,y",
    "RSA 2048",
]


@pytest.mark.parametrize("text", TRICKY)
def test_yaml_output_reads_back_every_string_as_itself(text: str) -> None:
    """rotator writes the report's YAML itself (PyYAML's representer was most of the
    cost); every string, as a key or a value, at any depth, must read back unchanged."""
    from rotator.report import yaml_out

    doc = {"s": text, text: [text, {"k": text, "l": [], "m": {}}, [text]], "n": None, "b": True, "i": 3, "f": 1.5}
    out = io.StringIO()
    yaml_out.dump(doc, out)
    assert yaml.safe_load(out.getvalue()) == doc
