"""Renders a ``CheckResult``: the versioned JSON/YAML contract and a terminal table.

``to_document`` is the contract (docs/report-format.md); the table is for people and
may change freely.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, TextIO

from rotator.model import SEVERITIES, STATES, CheckResult, Credential, Finding, RenewalOutcome
from rotator.util.timeutil import format_duration, rfc3339

REPORT_VERSION = 1
RENEWAL_STATUSES = ("renewed", "failed", "skipped", "backoff")
EXIT_OK, EXIT_WARNING, EXIT_CRITICAL, EXIT_UNKNOWN = 0, 1, 2, 3


def _finding(f: Finding, with_object: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"code": f.code, "severity": f.severity, "message": f.message}
    if with_object:
        out["object"] = (
            {"kind": f.object.kind, "namespace": f.object.namespace, "name": f.object.name} if f.object else None
        )
    return out


def _renewal(o: RenewalOutcome | None) -> dict[str, Any] | None:
    if o is None:
        return None
    return {
        "status": o.status,
        "message": o.message,
        "issuer": o.issuer,
        "serial": o.serial,
        "not_after": rfc3339(o.not_after) if o.not_after else None,
        "reused_pending": o.reused_pending,
    }


def _credential(c: Credential, renewal: RenewalOutcome | None = None) -> dict[str, Any]:
    cert = c.certificate
    return {
        "kind": c.spec.kind,
        "namespace": c.spec.namespace,
        "name": c.spec.name,
        "role": c.spec.role,
        "references": [
            {
                "group": r.group,
                "kind": r.kind,
                "namespace": r.namespace,
                "name": r.name,
                "listener": r.listener,
                "port": r.port,
                "mode": r.mode,
                "hosts": list(r.hosts),
            }
            for r in c.spec.references
        ],
        "hosts": list(c.spec.hosts),
        "keys": list(c.key_family) if c.key_family else None,
        "certificate": None
        if cert is None
        else {
            "subject": cert.subject,
            "issuer": cert.issuer,
            "serial": cert.serial,
            "sans": list(cert.sans),
            "not_before": rfc3339(cert.not_before),
            "not_after": rfc3339(cert.not_after),
            "key_type": cert.key_type,
            "chain_length": cert.chain_length,
        },
        "state": c.state,
        "renew_at": rfc3339(c.renew_at) if c.renew_at else None,
        "action": c.action,
        "reason": c.reason or None,
        "issuer": c.issuer,
        "findings": [_finding(f, with_object=False) for f in c.findings],
        "renewal": _renewal(renewal),
    }


def all_findings(result: CheckResult) -> list[Finding]:
    return list(result.findings) + [f for c in result.credentials for f in c.findings]


def summary(result: CheckResult) -> dict[str, Any]:
    states = Counter(c.state for c in result.credentials)
    actions = Counter(c.action for c in result.credentials)
    severities = Counter(f.severity for f in all_findings(result))
    renewals: Counter[str] = Counter(str(o.status) for o in result.renewals)
    return {
        "credentials": len(result.credentials),
        "states": {s: states.get(s, 0) for s in STATES},
        "actions": {a: actions.get(a, 0) for a in ("none", "renew", "skip")},
        "severities": {s: severities.get(s, 0) for s in SEVERITIES},
        # what this pass did (all 0 in a dry run), one entry per Secret renewed or tried
        "renewals": {r: renewals.get(r, 0) for r in RENEWAL_STATUSES},
    }


def to_document(result: CheckResult) -> dict[str, Any]:
    renewals = result.renewals_by_copy()  # once: per credential it was quadratic in renewals
    return {
        "version": REPORT_VERSION,
        "evaluated_at": rfc3339(result.evaluated_at),
        "credentials": [
            _credential(c, renewals.get(f"{c.spec.namespace}/{c.spec.name}") if c.spec.role == "server" else None)
            for c in result.credentials
        ],
        "findings": [_finding(f, with_object=True) for f in result.findings],
        "summary": summary(result),
        "exit_code": exit_code(result),
    }


def exit_code(result: CheckResult) -> int:
    """Nagios semantics, from the report as printed: 2 when something is broken now (a
    credential expired, invalid or missing, or a critical/error finding), 1 when something
    needs attention (due, or a warning), else 0. A real pass reports the world after it
    (renewed credentials are inspected again), so what it fixed no longer counts."""
    sev = {f.severity for f in all_findings(result)}
    states = {c.state for c in result.credentials}
    if states & {"expired", "invalid", "missing"} or sev & {"critical", "error"}:
        return EXIT_CRITICAL
    if "due" in states or "warning" in sev:
        return EXIT_WARNING
    return EXIT_OK


def unrenewed_expired(result: CheckResult) -> list[Credential]:
    """Expired credentials this pass did not renew: whatever the reason (another holder of
    the Lease, no issuer, a refusal), a job that leaves one behind has not done its job."""
    renewed = {k for k, o in result.renewals_by_copy().items() if o.status == "renewed"}
    return [
        c for c in result.credentials if c.state == "expired" and f"{c.spec.namespace}/{c.spec.name}" not in renewed
    ]


def write_json(result: CheckResult, out: TextIO) -> None:
    """Indented for a person at a terminal; compact for a pipe (json's C encoder only
    runs without indent, 5x faster on a large cluster)."""
    import json

    doc = to_document(result)
    text = json.dumps(doc, indent=2) if out.isatty() else json.dumps(doc, separators=(",", ":"))
    for i in range(0, len(text), 65536):  # in pieces, so `| head` is noticed (see yaml_out.dump)
        out.write(text[i : i + 65536])
    out.write("\n")
    out.flush()


def write_yaml(result: CheckResult, out: TextIO) -> None:
    from rotator.report import yaml_out

    yaml_out.dump(to_document(result), out)


_STATE_STYLE = {"ok": "green", "due": "yellow", "expired": "bold red", "invalid": "bold red", "missing": "bold red"}
_SEV_STYLE = {"critical": "bold red", "error": "red", "warning": "yellow", "info": "cyan"}


def _expires(c: Credential, now: datetime, short: bool = False) -> str:
    """``2027-02-13 (74d)``; short (the 80-column view): ``74d`` or ``expired``."""
    if c.certificate is None:
        return "-"
    left = c.certificate.not_after - now
    if short:
        return _days(left) if left.total_seconds() > 0 else "expired"
    when = c.certificate.not_after.strftime("%Y-%m-%d")
    return f"{when} ({format_duration(left)})" if left.total_seconds() > 0 else f"{when} (expired)"


def _days(left: timedelta) -> str:
    return f"{left.days}d" if left.days >= 1 else f"{max(1, int(left.total_seconds() // 3600))}h"


def table_width(out: TextIO, environ: Mapping[str, str] | None = None) -> int | None:
    """The terminal's width; else ``COLUMNS``; else (a pipe, a CI log) 200, so each row
    stays on one line where nobody resizes the window."""
    env = os.environ if environ is None else environ
    columns = env.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return None if out.isatty() else 200


def write_table(result: CheckResult, out: TextIO, color: bool | None = None, wide: bool = False) -> None:
    """The default view fits 80 columns and never drops STATE or ACTION; ``wide`` (``-o
    wide``) adds role, renew-at and the Gateways and hosts."""
    from rotator.report.table import Cell, Column, paint, render, terminal_width, wrap, write_lines

    width = terminal_width(out, table_width(out))
    # NO_COLOR (no-color.org) and --color never both mean no colour; --color always forces it.
    if color is None:
        color = bool(getattr(out, "isatty", lambda: False)()) and not os.environ.get("NO_COLOR")
    now = result.evaluated_at
    lines: list[str] = []
    if not result.credentials:
        lines.append(f"rotator check — evaluated at {rfc3339(now)}: no credentials found.")
    columns = [Column("SECRET", fold=True, min_width=16)]
    if wide:
        columns.append(Column("ROLE"))
    columns += [Column("STATE"), Column("EXPIRES")]
    if wide:
        columns.append(Column("RENEW AT"))
    columns.append(Column("ACTION"))
    if wide:
        columns.append(Column("GATEWAYS / HOSTS", fold=True, min_width=24))
    columns.append(Column("FINDINGS", fold=True, min_width=14))
    renewals = result.renewals_by_copy()
    rows: list[list[Cell]] = []
    for c in result.credentials:
        gws = sorted({f"{r.namespace}/{r.name}:{r.port}" for r in c.spec.references})
        done = renewals.get(f"{c.spec.namespace}/{c.spec.name}") if c.spec.role == "server" else None
        hosts = ", ".join(c.spec.hosts)
        codes = Counter(f.code for f in c.findings if f.code != "cert-renewal-due" or c.state != "due")
        secret = f"{c.spec.namespace}/{c.spec.name}" + ("" if c.spec.kind == "Secret" else f" ({c.spec.kind})")
        if not wide and c.spec.role != "server":
            secret += " (client CA)"
        action: str = done.status if done else c.action
        if wide and not done and c.action == "renew" and c.issuer:
            action += f" ({c.issuer})"
        cells = [Cell(secret)]
        if wide:
            cells.append(Cell(c.spec.role))
        cells += [Cell(c.state, _STATE_STYLE[c.state]), Cell(_expires(c, now, short=not wide))]
        if wide:
            cells.append(Cell(c.renew_at.strftime("%Y-%m-%d") if c.renew_at else "-"))
        cells.append(Cell(action))
        if wide:
            cells.append(Cell("\n".join(gws) + (f"\n{hosts}" if hosts else "")))
        cells.append(Cell("\n".join(f"{k}×{n}" if n > 1 else k for k, n in sorted(codes.items())) or "-"))
        rows.append(cells)
    if result.credentials:
        lines += render(columns, rows, width, color, title=f"rotator check — evaluated at {rfc3339(now)}")
    detail = [f for c in result.credentials for f in c.findings] + list(result.findings)
    order = {s: i for i, s in enumerate(SEVERITIES)}
    if detail:
        lines += ["", "Findings:"]
        for f in sorted(detail, key=lambda f: order[f.severity]):
            sev, head = f"{f.severity.upper():8}", f" {f.code}: "
            wrapped = wrap(f"  {sev}{head}{f.message}", width, indent="    ")
            if color:
                rest = wrapped[0][2 + len(sev) + len(head) :]
                wrapped[0] = "  " + paint(sev, _SEV_STYLE[f.severity], True) + paint(head, "bold", True) + rest
            lines += wrapped
    lines.append("")
    lines += wrap(summary_line(result), width)
    write_lines(out, lines)


def summary_line(result: CheckResult) -> str:
    """The closing line (and all of ``-o summary``), certbot-style for what the pass did."""
    s = summary(result)
    states = ", ".join(f"{n} {k}" for k, n in s["states"].items() if n)
    actions = ", ".join(f"{n} {k}" for k, n in s["actions"].items() if n and k != "none")
    done_line = ", ".join(f"{k} {n}" for k, n in s["renewals"].items() if n)
    return (
        f"{s['credentials']} credential(s): {states or 'none'}"
        + (f"; this pass: {done_line}" if done_line else "")
        + (f"; planned: {actions}" if actions else "")
        + f". Exit code {exit_code(result)}."
    )
