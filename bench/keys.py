"""The RSA cliff: `rotator check --dry-run -f` over N credentials, each Secret with its
own key, RSA-2048 against ECDSA P-256 (and a mix), as CPU of the whole process.

    python bench/keys.py                       # 1,000 and 10,000 credentials
    python bench/keys.py --credentials 300     # one size

Real clusters give every Secret its own key, so this bench does too: a shared key would
let a cache keyed by bytes hide the cost. Generating 10,000 RSA keys takes minutes, so
keys are cached in ``~/.cache/rotator-bench/keys/`` (generated once, reused).
Target: RSA-2048 ≤ 1.2× the CPU of ECDSA P-256 at 10,000 credentials.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rotator.util import pki  # noqa: E402
from tests.support import factory as f  # noqa: E402

CACHE = Path(os.environ.get("ROTATOR_BENCH_CACHE") or Path.home() / ".cache/rotator-bench") / "keys"
TARGET = 1.2
ALGOS = ("ecdsa-p256", "rsa-2048")


def _make(algo: str, path: str) -> None:
    Path(path).write_bytes(pki.key_pem(pki.new_key(algo)))  # type: ignore[arg-type]


def keys(algo: str, n: int) -> list[bytes]:
    folder = CACHE / algo
    folder.mkdir(parents=True, exist_ok=True)
    missing = [str(folder / f"{i}.pem") for i in range(n) if not (folder / f"{i}.pem").exists()]
    if missing:
        print(f"generating {len(missing)} {algo} keys into {folder} (once) ...", file=sys.stderr)
        with ProcessPoolExecutor(os.cpu_count() or 2) as pool:
            list(pool.map(_make, [algo] * len(missing), missing, chunksize=50))
    return [(folder / f"{i}.pem").read_bytes() for i in range(n)]


def manifests(n: int, algo_of: Any, path: Path) -> None:
    """One gateway Deployment, n/2 Gateways with two servers, n Secrets, each its own key."""
    from cryptography.hazmat.primitives import serialization

    ca = f.make_ca()
    now = datetime.now(UTC)
    pools = {a: keys(a, n) for a in {algo_of(i) for i in range(n)}}
    docs: list[dict[str, Any]] = [f.ingress()]
    for g in range(n // 2):
        docs.append(
            f.gateway(
                f"gw-{g}",
                [
                    f.server([f"a{g}.example.com"], f"tls-{g}-a"),
                    f.server([f"b{g}.example.com"], f"tls-{g}-b", port=8443, name="b"),
                ],
            )
        )
    for i in range(n):
        g, side = divmod(i, 2)
        host = f"{'ab'[side]}{g}.example.com"
        key_pem = pools[algo_of(i)][i]
        key = serialization.load_pem_private_key(key_pem, None, unsafe_skip_rsa_key_validation=True)
        cert = pki.build_certificate(
            subject_cn=host,
            public_key=key.public_key(),  # type: ignore[arg-type]
            not_before=now - timedelta(days=10),
            not_after=now + timedelta(days=80),
            issuer_cert=ca.cert,
            issuer_key=ca.key,
            sans=[host],
        )
        docs.append(f.secret(f"tls-{g}-{'ab'[side]}", data={"tls.crt": pki.cert_pem(cert), "tls.key": key_pem}))
    with path.open("w") as fh:
        yaml.dump_all(docs, fh, Dumper=yaml.CSafeDumper)


def run_check(path: Path) -> dict[str, float]:
    cmd = [sys.executable, "-m", "rotator", "check", "--dry-run", "-f", str(path), "-o", "json", "--log-level", "error"]
    p = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, cwd=ROOT)
    if p.returncode not in (0, 1, 2):
        raise RuntimeError(f"rotator check failed ({p.returncode}): {p.stderr[-1500:]}")
    fields = dict(line.strip().rsplit(": ", 1) for line in p.stderr.splitlines() if ": " in line)
    return {
        "cpu_s": round(float(fields["User time (seconds)"]) + float(fields["System time (seconds)"]), 2),
        "peak_rss_mb": int(fields["Maximum resident set size (kbytes)"]) // 1024,
        "credentials": len(json.loads(p.stdout)["credentials"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--credentials", default="1000,10000", help="comma-separated sizes")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    results = []
    mixes = {
        "ecdsa-p256": lambda i: "ecdsa-p256",
        "rsa-2048": lambda i: "rsa-2048",
        "mixed (2 RSA : 1 ECDSA)": lambda i: "ecdsa-p256" if i % 3 == 2 else "rsa-2048",
    }
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(x) for x in args.credentials.split(",")):
            row: dict[str, Any] = {"credentials": n}
            for name, algo_of in mixes.items():
                path = Path(tmp) / f"{n}-{name.split()[0]}.yaml"
                manifests(n, algo_of, path)
                row[name] = run_check(path)
                assert row[name]["credentials"] == n, row[name]
            base = row["ecdsa-p256"]["cpu_s"]
            row["rsa_ratio"] = round(row["rsa-2048"]["cpu_s"] / base, 2)
            row["mixed_ratio"] = round(row["mixed (2 RSA : 1 ECDSA)"]["cpu_s"] / base, 2)
            row["verdict"] = "meets" if row["rsa_ratio"] <= TARGET and row["mixed_ratio"] <= TARGET else "misses"
            results.append(row)
            print(
                f"{n:>6} credentials: CPU ECDSA {base} s, RSA {row['rsa-2048']['cpu_s']} s ({row['rsa_ratio']}×), "
                f"mixed {row['mixed (2 RSA : 1 ECDSA)']['cpu_s']} s ({row['mixed_ratio']}×); "
                f"peak RSS {row['ecdsa-p256']['peak_rss_mb']}/{row['rsa-2048']['peak_rss_mb']} MB; "
                f"target ≤ {TARGET}×: {row['verdict']}"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    sys.exit(0 if all(r["verdict"] == "meets" for r in results) else 1)


if __name__ == "__main__":
    main()
