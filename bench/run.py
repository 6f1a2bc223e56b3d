"""Every performance figure rotator promises, measured with one command, in one table.

    .venv/bin/python bench/run.py                       # everything (about 1.5 minutes)
    .venv/bin/python bench/run.py --quick               # smoke run (under a minute)
    .venv/bin/python bench/run.py --only startup        # one section (repeatable)
    .venv/bin/python bench/run.py --json results.json   # also write every figure as JSON

Sections (each failure-isolated: an error becomes a row of the table, the others still run):

startup   ``rotator --help`` and ``rotator check --dry-run`` on the bundled examples (the
          README's command) against ``python -c pass``, with hyperfine when it is installed,
          else a loop of subprocess runs in this process (the table says which);
cluster   bench/cluster_scan.py's scenarios: rotator's read phase against a raw-HTTP
          baseline on the fake API server, API requests, peak RSS of ``rotator check`` with
          100,000 unrelated Secrets;
issuance  bench/issue.py: rotator's ACME issuer, sequential and 8 at a time, against
          certbot and lego on the same pebble and BIND9 (a peer that is not installed is
          reported as not runnable).

Exit status: 0 when every target is met, 1 when one is missed or a section failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# Targets. The read, memory and issuance ones are the issues'; the start-up one is this
# bench's guard for "--help imports only the CLI module" (1.6× when it was introduced).
HELP_MAX_RATIO = 2.0  # `rotator --help` against a bare interpreter
READ_MAX_RATIO = 1.5  # rotator's cluster read against the raw-HTTP baseline
RSS_MAX_MB = 120  # peak RSS of `rotator check` with 100,000 unrelated Secrets
ISSUE_MAX_RATIO = 0.1  # rotator's seconds per certificate against certbot's

MEETS, MISSES, NO_TARGET, NOT_RUN, ERROR = "meets", "misses", "—", "not run", "error"

CHECK_EXAMPLES = ["check", "--dry-run", "-f", "examples/", "--config", "config/rotator.yaml", "--at", "2026-12-01"]


# --------------------------------------------------------------------------- sections


def _rotator_command() -> list[str]:
    exe = Path(sys.executable).parent / "rotator"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("rotator")
    return [found] if found else [sys.executable, "-m", "rotator"]


def _stats(seconds: list[float]) -> dict[str, Any]:
    return {
        "mean_ms": round(statistics.mean(seconds) * 1000, 1),
        "stddev_ms": round(statistics.stdev(seconds) * 1000, 1) if len(seconds) > 1 else 0.0,
        "median_ms": round(statistics.median(seconds) * 1000, 1),
        "runs": len(seconds),
    }


def _hyperfine(commands: dict[str, list[str]], runs: int, warmup: int) -> dict[str, dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "hyperfine.json"
        cmd = ["hyperfine", "-N", "-i", "--style", "none", "--warmup", str(warmup), "--runs", str(runs)]
        cmd += ["--export-json", str(out), *(shlex.join(c) for c in commands.values())]
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise RuntimeError(f"hyperfine failed ({p.returncode}): {p.stderr[-500:]}")
        results = json.loads(out.read_text())["results"]
    return {key: _stats(r["times"]) for key, r in zip(commands, results, strict=True)}


def _loop(commands: dict[str, list[str]], runs: int, warmup: int) -> dict[str, dict[str, Any]]:
    """Interleaved runs, so drift in the machine's load hits every command alike.

    No timeout: ``wait(timeout)`` polls with sleeps of up to 50 ms, which would be timed
    too (each command already ran to completion under a timeout before this).
    """
    times: dict[str, list[float]] = {key: [] for key in commands}
    for i in range(warmup + runs):
        for key, cmd in commands.items():
            start = time.perf_counter()
            subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if i >= warmup:
                times[key].append(time.perf_counter() - start)
    return {key: _stats(t) for key, t in times.items()}


def run_startup(quick: bool) -> dict[str, Any]:
    runs, warmup = (5, 1) if quick else (30, 3)
    rotator = _rotator_command()
    commands = {
        "baseline": [sys.executable, "-c", "pass"],
        "help": [*rotator, "--help"],
        "check": [*rotator, *CHECK_EXAMPLES],
    }
    # The check exits 2 (the examples hold critical findings on purpose); anything else is a bug.
    allowed = {"baseline": {0}, "help": {0}, "check": {0, 1, 2}}
    for key, cmd in commands.items():
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
        if p.returncode not in allowed[key]:
            raise RuntimeError(f"{shlex.join(cmd)} exited {p.returncode}: {p.stderr[-500:]}")
    method = ""
    timings = None
    if shutil.which("hyperfine"):
        version = subprocess.run(["hyperfine", "--version"], capture_output=True, text=True).stdout.strip()
        try:
            timings = _hyperfine(commands, runs, warmup)
            method = version or "hyperfine"
        except (RuntimeError, subprocess.TimeoutExpired, KeyError, ValueError) as exc:
            method = f"subprocess loop ({version} failed: {str(exc).splitlines()[0][:200]})"
    else:
        method = "subprocess loop (hyperfine not installed)"
    if timings is None:
        timings = _loop(commands, runs, warmup)
    return {
        "method": method,
        "runs": runs,
        "warmup": warmup,
        "commands": {key: {"command": shlex.join(cmd), **timings[key]} for key, cmd in commands.items()},
    }


def _bench_module(name: str) -> Any:
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    return __import__(name)


def run_cluster(quick: bool) -> dict[str, Any]:
    cluster_scan = _bench_module("cluster_scan")
    runs = 3 if quick else 5
    out: list[dict[str, Any]] = []
    for name, gateways, local, elsewhere in cluster_scan.scenarios(quick):
        try:  # one failing scenario is a row; the next one still runs
            out.append(cluster_scan.scenario(name, gateways, local, elsewhere, runs))
        except Exception as exc:
            out.append({"scenario": name, "error": _describe(exc), "traceback": traceback.format_exc()})
    return {"runs": runs, "scenarios": out}


def run_issuance(quick: bool) -> dict[str, Any]:
    issue = _bench_module("issue")
    certs, peer_certs = (5, 1) if quick else (50, 5)
    result: dict[str, Any] = issue.run(certs, peer_certs)
    return result


SECTIONS: dict[str, Callable[[bool], dict[str, Any]]] = {
    "startup": run_startup,
    "cluster": run_cluster,
    "issuance": run_issuance,
}


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}"[:300] if first else type(exc).__name__


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        from importlib.metadata import version

        kubernetes = version("kubernetes")
    except Exception:
        kubernetes = "?"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kubernetes_client": kubernetes,
        "os": f"{platform.system()} {platform.release()}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        # Other work on the machine skews every figure; the 1-minute load at start tells.
        "load_average": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


# --------------------------------------------------------------------------- table (pure)


def ratio_text(ratio: float | None) -> str:
    if ratio is None:
        return "—"
    return f"{ratio:.3f}×" if ratio < 0.1 else f"{ratio:.2f}×"


def judge(value: float, limit: float) -> str:
    return MEETS if value <= limit else MISSES


def _row(benchmark: str, rotator: str, baseline: str, ratio: float | None, target: str, verdict: str) -> dict[str, Any]:
    return {
        "benchmark": benchmark,
        "rotator": rotator,
        "baseline": baseline,
        "ratio": None if ratio is None else round(ratio, 4),
        "ratio_text": ratio_text(ratio),
        "target": target,
        "verdict": verdict,
    }


def _error_row(benchmark: str, error: str) -> dict[str, Any]:
    return _row(benchmark, f"error: {error}", "—", None, "—", ERROR)


def _ms(c: dict[str, Any]) -> str:
    return f"{c['median_ms']:.1f} ms (σ {c['stddev_ms']:.1f})"


def startup_rows(sec: dict[str, Any]) -> list[dict[str, Any]]:
    cmds = sec["commands"]
    base = cmds["baseline"]
    # Medians: one slow run on a shared machine must not decide the verdict.
    help_ratio = cmds["help"]["median_ms"] / base["median_ms"]
    check_ratio = cmds["check"]["median_ms"] / base["median_ms"]
    return [
        _row(
            "start-up: `rotator --help`",
            _ms(cmds["help"]),
            f"{_ms(base)} (`python -c pass`)",
            help_ratio,
            f"≤ {HELP_MAX_RATIO:g}×",
            judge(help_ratio, HELP_MAX_RATIO),
        ),
        _row(
            "start-up + offline check: `rotator check --dry-run -f examples/`",
            _ms(cmds["check"]),
            f"{_ms(base)} (`python -c pass`)",
            check_ratio,
            "—",
            NO_TARGET,
        ),
    ]


def cluster_rows(sec: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for s in sec["scenarios"]:
        name = s["scenario"]
        if "error" in s:
            rows.append(_error_row(f"cluster: {name}", s["error"]))
            continue
        ratio = s["read_rotator_seconds"] / s["read_baseline_seconds"]
        rows.append(
            _row(
                f"cluster read: {name}",
                f"{s['read_rotator_seconds']:.3f} s",
                f"{s['read_baseline_seconds']:.3f} s (raw HTTP)",
                ratio,
                f"≤ {READ_MAX_RATIO:g}×",
                judge(ratio, READ_MAX_RATIO),
            )
        )
        bound, elsewhere = s["secret_requests_bound"], s["secret_requests_elsewhere"]
        ok = s["secret_requests"] <= bound and elsewhere == 0
        rows.append(
            _row(
                f"API requests: {name}",
                f"{s['api_requests']} ({s['secret_requests']} for Secrets, {elsewhere} outside istio-system)",
                "—",
                None,
                f"Secrets ≤ {bound} (probe + pages of 500), none outside istio-system",
                MEETS if ok else MISSES,
            )
        )
        rows.append(
            _row(
                f"peak RSS, `rotator check`: {name}",
                f"{s['cli_peak_rss_mb']} MB",
                "—",
                None,
                f"≤ {RSS_MAX_MB} MB",
                judge(s["cli_peak_rss_mb"], RSS_MAX_MB),
            )
        )
    return rows


def issuance_rows(sec: dict[str, Any]) -> list[dict[str, Any]]:
    modes = (
        ("sequential", sec["rotator_sequential_seconds_per_cert"]),
        (f"{sec['concurrency']} at a time", sec["rotator_parallel_seconds_per_cert"]),
    )
    rows = []
    for peer in sec["peers"]:
        limit = ISSUE_MAX_RATIO if peer["name"] == "certbot" else None
        target = f"≤ {limit:g}×" if limit is not None else "—"
        if "seconds_per_cert" not in peer:
            if "not_runnable" in peer:
                why, verdict = f"not runnable: {peer['not_runnable']}", NOT_RUN
            else:
                why, verdict = f"failed: {peer.get('error', '?')}", ERROR
            rotator = " / ".join(f"{v:.3f}" for _, v in modes) + " s/cert"
            rows.append(_row(f"issuance: rotator vs {peer['name']}", rotator, why, None, target, verdict))
            continue
        theirs = peer["seconds_per_cert"]
        for mode, value in modes:
            ratio = value / theirs
            rows.append(
                _row(
                    f"issuance: rotator {mode} vs {peer['name']}",
                    f"{value:.3f} s/cert",
                    f"{theirs:.3f} s/cert ({peer.get('version', peer['name'])})",
                    ratio,
                    target,
                    judge(ratio, limit) if limit is not None else NO_TARGET,
                )
            )
    return rows


ROW_BUILDERS: dict[str, Callable[[dict[str, Any]], list[dict[str, Any]]]] = {
    "startup": startup_rows,
    "cluster": cluster_rows,
    "issuance": issuance_rows,
}


def build_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name, sec in results["sections"].items():
        if sec.get("status") == "error":
            rows.append(_error_row(name, sec.get("error", "?")))
            continue
        try:
            rows += ROW_BUILDERS[name](sec)
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:  # a malformed result is an error row
            rows.append(_error_row(name, f"cannot tabulate: {_describe(exc)}"))
    return rows


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| benchmark | rotator | baseline | ratio | target | verdict |", "|---|---|---|---|---|---|"]
    for r in rows:
        cells = (r["benchmark"], r["rotator"], r["baseline"], r["ratio_text"], r["target"], r["verdict"])
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def machine_line(m: dict[str, Any]) -> str:
    load = f", load average {m['load_average']} at start" if m.get("load_average") is not None else ""
    return (
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['os']}, Python {m['python']} "
        f"(kubernetes client {m['kubernetes_client']}), {m['date']}{load}."
    )


def notes(results: dict[str, Any]) -> list[str]:
    out = []
    secs = results["sections"]
    st = secs.get("startup", {})
    if st.get("status") == "ok":
        out.append(
            f"Start-up: {st['method']}, median (σ) of {st['runs']} runs after {st['warmup']} warm-up; "
            f"check command: `rotator {shlex.join(CHECK_EXAMPLES)}`."
        )
    cl = secs.get("cluster", {})
    if cl.get("status") == "ok":
        for s in cl["scenarios"]:
            if "error" not in s:
                by_resource = ", ".join(f"`{k}` {v}" for k, v in s["requests_by_resource"].items())
                out.append(
                    f"Cluster, {s['scenario']} ({s['secrets_total']:,} Secrets, {s['secrets_referenced']:,} "
                    f"referenced): read phase median of {cl['runs']}; `check` end to end {s['cli_seconds']} s; "
                    f"requests: {by_resource}."
                )
    iss = secs.get("issuance", {})
    if iss.get("status") == "ok":
        spread = "; ".join(
            f"{p.get('version', p['name'])} runs {min(p['runs']):.2f}–{max(p['runs']):.2f} s"
            for p in iss["peers"]
            if p.get("runs")
        )
        out.append(
            f"Issuance: rotator {iss['certs']} certificates per mode; peers one invocation per certificate, "
            f"mean of {iss['peer_certs']}{' (' + spread + ')' if spread else ''}; "
            f"badNonce retries {iss['bad_nonce_retries']}."
        )
    times = ", ".join(f"{name} {sec.get('seconds', 0):.0f} s" for name, sec in secs.items())
    out.append(f"Section times: {times}; total {sum(s.get('seconds', 0) for s in secs.values()):.0f} s.")
    return out


def render(results: dict[str, Any]) -> str:
    rows = build_rows(results)
    mode = "quick (smoke) run" if results.get("quick") else "full run"
    parts = [f"## rotator benchmarks, {mode}", "", markdown_table(rows), "", machine_line(results["machine"])]
    parts += ["", *(f"- {n}" for n in notes(results))]
    return "\n".join(parts)


def exit_code(results: dict[str, Any]) -> int:
    rows = build_rows(results)
    failed = any(s.get("status") == "error" for s in results["sections"].values())
    return 1 if failed or any(r["verdict"] in (MISSES, ERROR) for r in rows) else 0


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes and few runs (smoke test)")
    ap.add_argument("--only", action="append", choices=list(SECTIONS), help="run only this section (repeatable)")
    ap.add_argument("--json", metavar="PATH", help="also write the results (and the table's rows) as JSON")
    args = ap.parse_args(argv)
    chosen = [name for name in SECTIONS if not args.only or name in args.only]
    results: dict[str, Any] = {"machine": machine(), "quick": args.quick, "sections": {}}
    for name in chosen:
        print(f"[{name}] running ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        try:
            entry = {"status": "ok", **SECTIONS[name](args.quick)}
        except Exception as exc:  # isolate: report it, run the next section
            entry = {"status": "error", "error": _describe(exc), "traceback": traceback.format_exc()}
            print(entry["traceback"], file=sys.stderr)
        entry["seconds"] = round(time.perf_counter() - start, 1)
        results["sections"][name] = entry
        print(f"[{name}] {entry['status']} in {entry['seconds']:.0f} s", file=sys.stderr, flush=True)
    print(render(results))
    if args.json:
        Path(args.json).write_text(json.dumps({**results, "rows": build_rows(results)}, indent=2) + "\n")
    return exit_code(results)


if __name__ == "__main__":
    sys.exit(main())
