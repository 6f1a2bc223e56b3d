"""bench/run.py's table: ratios, verdicts and exit status from a synthetic result (nothing is timed)."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run = _load()


def _timing(median_ms: float) -> dict[str, Any]:
    return {"command": "x", "mean_ms": median_ms, "stddev_ms": 1.0, "median_ms": median_ms, "runs": 20}


def _scenario(name: str, **over: Any) -> dict[str, Any]:
    return {
        "scenario": name,
        "secrets_total": 101000,
        "secrets_referenced": 1000,
        "gateways": 500,
        "credentials_reported": 1000,
        "seed_seconds": 30.0,
        "read_rotator_seconds": 0.459,
        "read_baseline_seconds": 0.397,
        "read_ratio": 1.16,
        "certs_parsed": [1000, 1000],
        "api_requests": 51,
        "requests_by_resource": {"get /apis": 1, "list secrets": 43},
        "secret_requests": 43,
        "secret_requests_bound": 43,
        "secret_requests_elsewhere": 0,
        "secrets_in_credential_namespace": 21000,
        "cli_seconds": 1.22,
        "cli_peak_rss_mb": 81,
    } | over


def _results() -> dict[str, Any]:
    return {
        "machine": {
            "cpu": "AMD EPYC",
            "cores": 2,
            "python": "3.11.7",
            "kubernetes_client": "37.0.2",
            "os": "Linux 6.1",
            "date": "2026-11-26 09:00 UTC",
            "load_average": 0.12,
        },
        "quick": False,
        "sections": {
            "startup": {
                "status": "ok",
                "seconds": 12.0,
                "method": "hyperfine 1.15.0",
                "runs": 30,
                "warmup": 3,
                "commands": {"baseline": _timing(20.0), "help": _timing(32.0), "check": _timing(350.0)},
            },
            "cluster": {"status": "ok", "seconds": 120.0, "runs": 5, "scenarios": [_scenario("100k")]},
            "issuance": {
                "status": "ok",
                "seconds": 60.0,
                "certs": 50,
                "peer_certs": 5,
                "concurrency": 8,
                "rotator_sequential_seconds_per_cert": 0.04,
                "rotator_parallel_seconds_per_cert": 0.014,
                "bad_nonce_retries": 2,
                "peers": [
                    {"name": "certbot", "version": "certbot 2.1.0", "seconds_per_cert": 4.0, "runs": [4.0]},
                    {"name": "lego", "not_runnable": "lego not installed"},
                ],
            },
        },
    }


def _row(rows: list[dict[str, Any]], prefix: str) -> dict[str, Any]:
    return next(r for r in rows if r["benchmark"].startswith(prefix))


def test_all_targets_met_exit_zero_and_ratios() -> None:
    results = _results()
    rows = run.build_rows(results)
    help_row = _row(rows, "start-up: `rotator --help`")
    assert help_row["ratio"] == pytest.approx(1.6) and help_row["ratio_text"] == "1.60×"
    assert help_row["verdict"] == "meets"
    assert _row(rows, "start-up + offline check")["verdict"] == "—"  # informational, no target
    read = _row(rows, "cluster read: 100k")
    assert read["ratio"] == pytest.approx(0.459 / 0.397, abs=1e-4) and read["ratio_text"] == "1.16×"
    assert read["verdict"] == "meets"
    assert _row(rows, "API requests: 100k")["verdict"] == "meets"
    assert _row(rows, "peak RSS")["verdict"] == "meets"
    seq = _row(rows, "issuance: rotator sequential vs certbot")
    assert seq["ratio"] == pytest.approx(0.01) and seq["ratio_text"] == "0.010×" and seq["verdict"] == "meets"
    assert _row(rows, "issuance: rotator 8 at a time vs certbot")["ratio_text"] == "0.004×"
    lego = _row(rows, "issuance: rotator vs lego")
    assert lego["baseline"] == "not runnable: lego not installed" and lego["verdict"] == "not run"
    assert run.exit_code(results) == 0  # a peer that is not installed is not a failure


@pytest.mark.parametrize(
    ("path", "value", "prefix"),
    [
        (("startup", "commands", "help"), _timing(41.0), "start-up: `rotator --help`"),  # 2.05× > 2×
        (("cluster", "scenarios"), [_scenario("100k", read_rotator_seconds=0.7)], "cluster read"),  # 1.76×
        (("cluster", "scenarios"), [_scenario("100k", cli_peak_rss_mb=121)], "peak RSS"),
        (("cluster", "scenarios"), [_scenario("100k", secret_requests=44)], "API requests"),
        (("cluster", "scenarios"), [_scenario("100k", secret_requests_elsewhere=1)], "API requests"),
        (("issuance", "rotator_sequential_seconds_per_cert"), 0.5, "issuance: rotator sequential vs certbot"),
    ],
)
def test_a_missed_target_is_a_miss_and_fails_the_run(path: tuple[str, ...], value: Any, prefix: str) -> None:
    results = copy.deepcopy(_results())
    node = results["sections"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert _row(run.build_rows(results), prefix)["verdict"] == "misses"
    assert run.exit_code(results) == 1


def test_limits_are_inclusive() -> None:
    assert run.judge(1.5, run.READ_MAX_RATIO) == "meets"
    assert run.judge(1.5001, run.READ_MAX_RATIO) == "misses"
    assert run.ratio_text(None) == "—"
    assert run.ratio_text(0.0996) == "0.100×" and run.ratio_text(0.1) == "0.10×"


def test_a_failed_section_or_peer_is_an_error_row_and_the_others_still_show() -> None:
    results = _results()
    results["sections"]["cluster"] = {"status": "error", "error": "RuntimeError: boom | pipe", "seconds": 1.0}
    results["sections"]["issuance"]["peers"][0] = {"name": "certbot", "version": "certbot 2.1.0", "error": "x"}
    rows = run.build_rows(results)
    assert _row(rows, "cluster")["verdict"] == "error"
    assert _row(rows, "issuance: rotator vs certbot")["baseline"] == "failed: x"
    assert _row(rows, "start-up: `rotator --help`")["verdict"] == "meets"
    assert run.exit_code(results) == 1
    text = run.render(results)
    assert "boom \\| pipe" in text  # a pipe in a message does not break the markdown table


def test_a_malformed_section_is_reported_not_raised() -> None:
    results = _results()
    del results["sections"]["startup"]["commands"]["help"]
    assert _row(run.build_rows(results), "startup")["verdict"] == "error"


def test_render_has_the_table_header_and_the_machine_line() -> None:
    text = run.render(_results())
    assert "| benchmark | rotator | baseline | ratio | target | verdict |" in text
    machine = (
        "Machine: AMD EPYC, 2 cores, Linux 6.1, Python 3.11.7 (kubernetes client 37.0.2), "
        "2026-11-26 09:00 UTC, load average 0.12 at start."
    )
    assert machine in text
    help_row = (
        "| start-up: `rotator --help` | 32.0 ms (σ 1.0) | 20.0 ms (σ 1.0) (`python -c pass`) | 1.60× | ≤ 2× | meets |"
    )
    assert help_row in text
