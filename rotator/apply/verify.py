"""After a rotation: is the gateway really serving the new certificate?

Istio hot-reloads Secrets over SDS, but users report gateways that kept the old
certificate (istio/istio#34425, #29047). rotator connects to the gateway with each host
as SNI and compares serials, retrying until a timeout; a gateway that never changes is
reported (`not-served`) and alerted on.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from cryptography import x509

from rotator.config.schema import VerifyConfig
from rotator.findings import finding
from rotator.hosts import strip_namespace
from rotator.model import CheckResult, Finding, ObjectRef, Reference


def served_serial(address: str, sni: str, timeout: float = 5.0) -> str | None:
    """The leaf serial (hex) served for ``sni``, or None when nothing answers."""
    host, _, port = address.rpartition(":")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # we compare serials, whoever signed them
    try:
        with (
            socket.create_connection((host, int(port)), timeout=timeout) as raw,
            ctx.wrap_socket(raw, server_hostname=sni) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError, ValueError):
        return None
    return format(x509.load_der_x509_certificate(der).serial_number, "x") if der else None


def probe_name(host: str) -> str | None:
    """A name to send as SNI: the host itself, or a name under a wildcard host."""
    name = strip_namespace(host)[1]
    if name == "*":
        return None
    return "rotator-verify" + name[1:] if name.startswith("*.") else name


def verify(
    namespace: str,
    name: str,
    serial: str,
    references: list[Reference] | tuple[Reference, ...],
    address_template: str,
    timeout: timedelta,
    interval: timedelta,
    probe: Callable[[str, str], str | None] = served_serial,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> list[Finding]:
    """Findings for every (address, host) that does not serve ``serial`` within ``timeout``."""
    targets: dict[tuple[str, str], None] = {}
    for ref in references:
        for h in ref.hosts:
            sni = probe_name(h)
            if sni is not None:
                targets.setdefault((address_template.format(namespace=namespace, port=ref.port or 443), sni), None)
    pending = dict(targets)
    last: dict[tuple[str, str], str | None] = {}
    deadline = monotonic() + timeout.total_seconds()
    while pending:
        for target in list(pending):
            last[target] = probe(*target)
            if last[target] == serial:
                pending.pop(target)
        if not pending or monotonic() >= deadline:
            break
        sleep(interval.total_seconds())
    obj = ObjectRef("Secret", namespace, name)
    out = []
    for address, sni in pending:
        seen = last.get((address, sni))
        served = f"serial {seen}" if seen else "nothing"
        out.append(
            finding(
                "not-served",
                f"{obj}: {address} still serves {served} for {sni} {timeout.total_seconds():.0f}s after the rotation "
                f"to serial {serial}; check the gateway (istioctl proxy-config secret) and restart it if it kept "
                "the old certificate.",
                obj,
            )
        )
    return out


def still_not_served(result: CheckResult, open_alerts: dict[str, Any], config: VerifyConfig) -> list[Finding]:
    """Open not-served alerts stay open until a probe sees the current serial served:
    their absence from this pass's rotations is no evidence the gateway caught up."""
    renewed = result.renewals_by_copy()
    creds = {(c.spec.namespace, c.spec.name): c for c in result.credentials if c.spec.role == "server"}
    out: list[Finding] = []
    for entry in open_alerts.values():
        # The stored target, not the dedup key: a long key is hashed and cannot be parsed back.
        target = str((entry or {}).get("target", ""))
        if (entry or {}).get("class") != "tls-not-served" or "/" not in target:
            continue
        ns, _, name = target.partition("/")
        if any(
            f.code == "not-served" and f.object and (f.object.namespace, f.object.name) == (ns, name)
            for f in result.findings
        ):
            continue  # verified in this pass already
        cred = creds.get((ns, name))
        done = renewed.get(f"{ns}/{name}")
        serial = (
            done.serial if done and done.serial else (cred.certificate.serial if cred and cred.certificate else None)
        )
        if cred is None or serial is None:
            continue  # the credential is gone: resolve
        out += verify(ns, name, serial, cred.spec.references, config.address, timedelta(0), timedelta(0))
    return out
