"""Issuance benchmark: rotator's ACME issuer vs lego and certbot, same pebble, same BIND.

    python bench/issue.py                 # 50 certificates for rotator, 5 each for the peers
    python bench/issue.py --certs 10 --peer-certs 2

All three use DNS-01 through RFC 2136 with TSIG against the same BIND9 and the same
pebble (PEBBLE_VA_NOSLEEP=1, default 5 % badNonce). rotator runs in this process
(sequential, then 8 at a time); lego and certbot run as their own processes, as users
run them, one certificate per invocation (their process start-up is part of what a
user pays). Reported: seconds per certificate (the mean) and the ratio to certbot.

certbot waits a fixed ``--dns-rfc2136-propagation-seconds 1``. lego runs with
``--dns.disable-cp``: its full propagation check asks every authoritative name server
of the zone on port 53, found by host name through the system resolver, which a BIND on
a free loopback port cannot be; with the flag lego still checks the TXT record through
``--dns.resolvers`` (the same BIND) before asking pebble to validate.

A peer that is not installed is reported as not runnable, never as a failure:

    apt-get install -y certbot python3-certbot-dns-rfc2136 lego

``run()`` returns plain dicts; ``bench/run.py`` calls it for its combined table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rotator.issuers.acme.issuer import ACMEIssuer  # noqa: E402
from rotator.issuers.base import IssueRequest  # noqa: E402
from tests.support import acmeenv  # noqa: E402

ZONE = acmeenv.ZONE
PEER_TIMEOUT = 180  # seconds for one peer invocation; a hung peer is reported, not waited for


def rotator_issuer(bind: acmeenv.Bind, pebble: acmeenv.Pebble, tmp: Path) -> ACMEIssuer:
    cfg = acmeenv.issuer_config(bind, pebble, tmp, account_key_file=str(tmp / "rotator-account.key"), timeout="120s")
    return ACMEIssuer.from_config("bench", cfg, None, lambda: datetime.now(UTC))


def run_rotator(issuer: ACMEIssuer, n: int, concurrency: int, tag: str) -> float:
    issuer.issue(IssueRequest("b", "warm", (f"warm-{tag}.{ZONE}",), "ecdsa-p256"))  # account + directory
    start = time.perf_counter()
    names = [f"r{tag}{i}.{ZONE}" for i in range(n)]
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda h: issuer.issue(IssueRequest("b", h, (h,), "ecdsa-p256")), names))
    return (time.perf_counter() - start) / n


def run_lego(bind: acmeenv.Bind, pebble: acmeenv.Pebble, tmp: Path, n: int) -> list[float]:
    env = {
        **os.environ,
        "LEGO_CA_CERTIFICATES": str(pebble.ca_file),
        "RFC2136_NAMESERVER": bind.nameserver,
        "RFC2136_TSIG_KEY": acmeenv.TSIG_NAME,
        "RFC2136_TSIG_SECRET": bind.tsig_secret,
        "RFC2136_TSIG_ALGORITHM": "hmac-sha256.",
        "RFC2136_PROPAGATION_TIMEOUT": "60",
        "RFC2136_POLLING_INTERVAL": "1",
    }
    times = []
    for i in range(n):
        start = time.perf_counter()
        p = subprocess.run(
            [
                "lego",
                "--server",
                pebble.directory,
                "--email",
                "bench@acme.test",
                "--accept-tos",
                "--dns",
                "rfc2136",
                "--dns.resolvers",
                bind.nameserver,
                "--dns.disable-cp",
                "--domains",
                f"lego{i}.{ZONE}",
                "--path",
                str(tmp / "lego"),
                "--key-type",
                "ec256",
                "run",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=PEER_TIMEOUT,
        )
        if p.returncode != 0:
            raise RuntimeError(f"lego failed: {p.stderr[-1500:]}")
        times.append(time.perf_counter() - start)
    return times


def run_certbot(bind: acmeenv.Bind, pebble: acmeenv.Pebble, tmp: Path, n: int) -> list[float]:
    ini = tmp / "rfc2136.ini"
    ini.write_text(
        f"dns_rfc2136_server = 127.0.0.1\ndns_rfc2136_port = {bind.port}\n"
        f"dns_rfc2136_name = {acmeenv.TSIG_NAME}\ndns_rfc2136_secret = {bind.tsig_secret}\n"
        "dns_rfc2136_algorithm = HMAC-SHA256\n"
    )
    ini.chmod(0o600)
    env = {**os.environ, "REQUESTS_CA_BUNDLE": str(pebble.ca_file)}
    times = []
    for i in range(n):
        start = time.perf_counter()
        p = subprocess.run(
            [
                "certbot",
                "certonly",
                "--non-interactive",
                "--agree-tos",
                "-m",
                "bench@acme.test",
                "--server",
                pebble.directory,
                "--dns-rfc2136",
                "--dns-rfc2136-credentials",
                str(ini),
                "--dns-rfc2136-propagation-seconds",
                "1",
                "-d",
                f"certbot{i}.{ZONE}",
                "--config-dir",
                str(tmp / "cb"),
                "--work-dir",
                str(tmp / "cb"),
                "--logs-dir",
                str(tmp / "cb"),
                "--key-type",
                "ecdsa",
                "--no-random-sleep-on-renew",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=PEER_TIMEOUT,
        )
        if p.returncode != 0:
            raise RuntimeError(f"certbot failed: {p.stderr[-1500:]}")
        times.append(time.perf_counter() - start)
    return times


PEERS = {"certbot": run_certbot, "lego": run_lego}


def peer_version(binary: str) -> str:
    """``certbot 2.1.0``; Debian's lego says ``dev``, so its package version is asked too."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
        words = (out.stdout or out.stderr).split()
        version = next((w for w in words if w[:1].isdigit()), "")
        if not version and shutil.which("dpkg-query"):
            q = subprocess.run(["dpkg-query", "-W", "-f=${Version}", binary], capture_output=True, text=True)
            version = q.stdout.strip().split("-")[0] if q.returncode == 0 else ""
    except (OSError, subprocess.TimeoutExpired):
        return binary
    return f"{binary} {version}".strip()


def run(certs: int, peer_certs: int, peers: tuple[str, ...] = ("certbot", "lego")) -> dict[str, Any]:
    """Issue with rotator (sequential, then 8 at a time) and each peer; seconds per certificate.

    Each peer is isolated: ``{"name", "version", "seconds_per_cert", "runs"}`` when it ran,
    ``"not_runnable"`` when it is not installed, ``"error"`` when it ran and failed.
    """
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        with acmeenv.bind(tmp) as bind, acmeenv.pebble(tmp, bind.port) as pebble:
            issuer = rotator_issuer(bind, pebble, tmp)
            seq = run_rotator(issuer, certs, 1, "s")
            par = run_rotator(issuer, certs, 8, "p")
            results: list[dict[str, Any]] = []
            for name in peers:
                entry: dict[str, Any] = {"name": name}
                if not shutil.which(name):
                    entry["not_runnable"] = f"{name} not installed"
                else:
                    entry["version"] = peer_version(name)
                    try:
                        times = PEERS[name](bind, pebble, tmp, peer_certs)
                        # The mean, like rotator's figure: lego's times are bimodal (its next
                        # authorization poll waits a back-off from 5 s when pebble has not validated yet).
                        entry["seconds_per_cert"] = round(statistics.mean(times), 3)
                        entry["runs"] = [round(x, 3) for x in times]
                    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
                        lines = str(exc).strip().splitlines() or [repr(exc)]
                        entry["error"] = lines[-1].strip()[-300:]  # the cause; the full tail is below
                        entry["error_detail"] = str(exc)[-2000:]
                results.append(entry)
    return {
        "certs": certs,
        "peer_certs": peer_certs,
        "concurrency": 8,
        "rotator_sequential_seconds_per_cert": round(seq, 4),
        "rotator_parallel_seconds_per_cert": round(par, 4),
        "bad_nonce_retries": issuer.stats["bad_nonce_retries"],
        "peers": results,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--certs", type=int, default=50, help="certificates for rotator (each mode)")
    ap.add_argument("--peer-certs", type=int, default=5, help="certificates for lego and certbot each")
    args = ap.parse_args()
    if args.certs < 1 or args.peer_certs < 1:
        ap.error("--certs and --peer-certs need at least 1 (a mean of nothing is no figure)")
    r = run(args.certs, args.peer_certs)
    rows = [
        ("rotator, sequential", r["rotator_sequential_seconds_per_cert"]),
        ("rotator, 8 at a time", r["rotator_parallel_seconds_per_cert"]),
    ]
    for peer in r["peers"]:
        if "seconds_per_cert" in peer:
            rows.append((peer["version"], peer["seconds_per_cert"]))
        else:
            why = f"not runnable: {peer['not_runnable']}" if "not_runnable" in peer else f"failed: {peer['error']}"
            print(f"{peer['name']}: skipped ({why})", file=sys.stderr)
    ran = {p["name"]: p["seconds_per_cert"] for p in r["peers"] if "seconds_per_cert" in p}
    certbot = ran.get("certbot")
    print(f"{'client':24} {'s/cert':>8} {'vs certbot':>10}")
    for name, value in rows:
        ratio = f"{value / certbot:.3f}" if certbot else "-"
        print(f"{name:24} {value:>8.3f} {ratio:>10}")
    print(
        f"(rotator: {args.certs} certificates per mode; peers: mean of {args.peer_certs}; "
        f"badNonce retries {r['bad_nonce_retries']})"
    )


if __name__ == "__main__":
    main()
