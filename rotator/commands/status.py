"""``rotator status NAMESPACE/NAME``: everything about one Secret on one screen, like
``cmctl status certificate``: who references it, its certificate, findings and plan, the
last renewal rotator made, its backups and any pending certificate. Reads only."""

from __future__ import annotations

from typing import Any

from rotator.kube.api import SECRETS, ApiError, KubeAPI
from rotator.model import CheckResult
from rotator.report.document import _credential, exit_code
from rotator.util.timeutil import rfc3339

ANNOTATIONS = {
    "rotated_at": "rotator.io/rotated-at",
    "serial": "rotator.io/serial",
    "issued_by": "rotator.io/issued-by",
    "previous_serial": "rotator.io/previous-serial",
    "rolled_back_at": "rotator.io/rolled-back-at",
    "renewal": "rotator.io/renewal",
}


def _facts(api: KubeAPI, namespace: str, name: str) -> dict[str, Any]:
    """What the API holds beyond the report: rotation annotations, backups, pending."""
    from rotator.apply.pending import pending_name
    from rotator.apply.secret_bodies import ANN_BACKUP_AT, ANN_SERIAL
    from rotator.apply.secret_writer import SecretWriter
    from rotator.checks.certs import utcnow

    out: dict[str, Any] = {"last_renewal": None, "backups": [], "pending": None, "errors": []}
    try:
        obj = api.get(SECRETS, namespace, name) or {}
        ann = (obj.get("metadata") or {}).get("annotations") or {}
        last = {k: ann.get(v) for k, v in ANNOTATIONS.items() if ann.get(v)}
        out["last_renewal"] = last or None
    except ApiError as exc:
        out["errors"].append(str(exc))
    try:
        for b in SecretWriter(api, utcnow).backups(namespace, name):
            bann = (b.get("metadata") or {}).get("annotations") or {}
            out["backups"].append(
                {"name": b["metadata"]["name"], "backed_up_at": bann.get(ANN_BACKUP_AT), "serial": bann.get(ANN_SERIAL)}
            )
    except ApiError as exc:
        out["errors"].append(str(exc))
    try:
        pending = api.get(SECRETS, namespace, pending_name(name))
        if pending is not None:
            pann = (pending.get("metadata") or {}).get("annotations") or {}
            out["pending"] = {
                "name": pending["metadata"]["name"],
                "claimed_by": pann.get("rotator.io/claimed-by"),
                "claimed_at": pann.get("rotator.io/claimed-at"),
                "holds_certificate": bool((pending.get("data") or {}).get("tls.crt")),
            }
    except ApiError as exc:
        out["errors"].append(str(exc))
    return out


def document(result: CheckResult, api: KubeAPI, namespace: str, name: str) -> dict[str, Any]:
    renewals = result.renewals_by_copy()
    return {
        "credentials": [_credential(c, renewals.get(f"{c.spec.namespace}/{c.spec.name}")) for c in result.credentials],
        **_facts(api, namespace, name),
        "exit_code": exit_code(result),
    }


def describe(result: CheckResult, api: KubeAPI, namespace: str, name: str) -> str:
    facts = _facts(api, namespace, name)
    lines = [f"Secret {namespace}/{name}"]
    for c in result.credentials:
        cert = c.certificate
        lines.append(f"  {c.spec.role}:")
        lines.append(f"    State:         {c.state}" + (f" (renew at {rfc3339(c.renew_at)})" if c.renew_at else ""))
        if cert is not None:
            lines.append(f"    Certificate:   {cert.subject}, serial {cert.serial}, {cert.key_type}")
            lines.append(f"    Issued by:     {cert.issuer}")
            lines.append(f"    Valid:         {rfc3339(cert.not_before)} to {rfc3339(cert.not_after)}")
            if cert.sans:
                lines.append(f"    SANs:          {', '.join(cert.sans)}")
        else:
            lines.append("    Certificate:   none readable")
        lines.append("    Referenced by:")
        for r in c.spec.references:
            lines.append(
                f"      {r.kind} {r.namespace}/{r.name} {r.listener} (port {r.port}, {r.mode}): {', '.join(r.hosts)}"
            )
        plan = c.action + (f" ({c.issuer})" if c.issuer and c.action == "renew" else "")
        lines.append(f"    Plan:          {plan}" + (f": {c.reason}" if c.reason else ""))
        if c.findings:
            lines.append("    Findings:")
            lines += [f"      {f.severity.upper():8} {f.code}: {f.message}" for f in c.findings]
    last = facts["last_renewal"]
    if last:
        by = f" by {last['issued_by']}" if last.get("issued_by") else ""
        lines.append(
            f"  Last renewal:    {last.get('rotated_at', '?')}{by}, serial {last.get('serial', '?')}"
            + (f" (previous {last['previous_serial']})" if last.get("previous_serial") else "")
        )
        if last.get("rolled_back_at"):
            lines.append(f"  Rolled back:     {last['rolled_back_at']}")
        if last.get("renewal") == "paused":
            lines.append(
                f"  Renewal:         paused (resume: kubectl annotate secret -n {namespace} {name} rotator.io/renewal-)"
            )
    else:
        lines.append("  Last renewal:    never by rotator")
    if facts["backups"]:
        lines.append("  Backups:")
        lines += [f"    {b['name']} (backed up {b['backed_up_at']}, serial {b['serial']})" for b in facts["backups"]]
    else:
        lines.append("  Backups:         none")
    pending = facts["pending"]
    if pending:
        what = "a certificate waiting to be written" if pending["holds_certificate"] else "a claim"
        lines.append(f"  Pending:         {pending['name']}: {what} (claimed by {pending['claimed_by'] or 'nobody'})")
    for err in facts["errors"]:
        lines.append(f"  (could not read: {err})")
    return "\n".join(lines) + "\n"
