"""Issuance benchmark: rotator's ACME issuer vs lego and certbot, same pebble, same BIND.

    python bench/issue.py                 # 50 certificates for rotator, 5 each for the peers
    python bench/issue.py --certs 10 --peer-certs 2

All three use DNS-01 through RFC 2136 with TSIG against the same BIND9 and the same
pebble (PEBBLE_VA_NOSLEEP=1, default 5 % badNonce). rotator runs in this process
(sequential, then 8 at a time); lego and certbot run as their own processes, as users
run them, one certificate per invocation (their process start-up is part of what a
user pays). Reported: seconds per certificate and the ratio to certbot.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rotator.config import ACMEIssuerConfig, DNS01Config, SecretKeyRef  # noqa: E402
from rotator.issuers.acme_issuer import ACMEIssuer  # noqa: E402
from rotator.issuers.base import IssueRequest  # noqa: E402
from tests import acmeenv  # noqa: E402

ZONE = acmeenv.ZONE


def rotator_issuer(bind: acmeenv.Bind, pebble: acmeenv.Pebble, tmp: Path) -> ACMEIssuer:
    (tmp / "tsig").write_text(bind.tsig_secret)
    cfg = ACMEIssuerConfig(
        type="acme",
        directory=pebble.directory,
        terms_agreed=True,
        ca_bundle=str(pebble.ca_file),
        account_key_file=str(tmp / "rotator-account.key"),
        solver="dns01",
        timeout="120s",
        dns01=DNS01Config(
            nameserver=bind.nameserver,
            zone=ZONE,
            tsig_key_name=acmeenv.TSIG_NAME,
            tsig_secret=SecretKeyRef(file=str(tmp / "tsig")),
        ),
    )
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
        )
        if p.returncode != 0:
            raise RuntimeError(f"certbot failed: {p.stderr[-1500:]}")
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--certs", type=int, default=50, help="certificates for rotator (each mode)")
    ap.add_argument("--peer-certs", type=int, default=5, help="certificates for lego and certbot each")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        with acmeenv.bind(tmp) as bind, acmeenv.pebble(tmp, bind.port) as pebble:
            issuer = rotator_issuer(bind, pebble, tmp)
            seq = run_rotator(issuer, args.certs, 1, "s")
            par = run_rotator(issuer, args.certs, 8, "p")
            rows = [("rotator, sequential", seq), ("rotator, 8 at a time", par)]
            for name, runner in (("certbot 2.1.0", run_certbot), ("lego (Debian)", run_lego)):
                try:
                    rows.append((name, statistics.median(runner(bind, pebble, tmp, args.peer_certs))))
                except (RuntimeError, FileNotFoundError) as exc:
                    print(f"{name}: skipped ({exc})", file=sys.stderr)
    certbot = next((v for k, v in rows if k.startswith("certbot")), None)
    print(f"{'client':24} {'s/cert':>8} {'vs certbot':>10}")
    for name, value in rows:
        ratio = f"{value / certbot:.3f}" if certbot else "-"
        print(f"{name:24} {value:>8.3f} {ratio:>10}")
    print(
        f"(rotator: {args.certs} certificates per mode; peers: median of {args.peer_certs}; "
        f"badNonce retries {issuer.stats['bad_nonce_retries']})"
    )


if __name__ == "__main__":
    main()
