"""Cluster read benchmark: rotator vs a raw-HTTP baseline on the same synthetic cluster.

    python bench/cluster_scan.py                # both scenarios (about 15 seconds)
    python bench/cluster_scan.py --quick        # smaller, for a smoke run

Each scenario seeds the fake API server (tests/support/fakeapi: the real REST protocol on
127.0.0.1) with Gateways, the Secrets they reference and unrelated Secrets, then:

1. read phase, in this process, runs interleaved (median of --runs):
   - rotator: ``read_cluster`` through the kubernetes client (discovery, paginated LISTs,
     selectors, the GET-or-LIST plan), then every referenced certificate parsed;
   - baseline: the very GET URLs rotator issued, replayed with urllib, json-decoded,
     base64-decoded, every certificate parsed with cryptography: the least work any
     tool must do to read those objects. The ratio of the two is the reader's overhead.
2. the whole ``rotator check --dry-run -o json`` as a separate process under
   ``/usr/bin/time -v``: wall time and peak RSS, the memory figure users see.

API requests are counted by the fake server. ``scenarios()`` and ``scenario()`` return
plain dicts; ``bench/run.py`` calls them for its combined table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import factory as f  # noqa: E402
from tests.support.fakeapi import FakeCluster  # noqa: E402

CREDENTIAL_NAMESPACE = "istio-system"  # where seed() puts the gateways and their Secrets
PAGE_SIZE = 500  # rotator's LIST page size (rotator.kube.reader)


def scenarios(quick: bool = False) -> list[tuple[str, int, int, int]]:
    """(name, gateways, unrelated Secrets in istio-system, unrelated Secrets elsewhere)."""
    if quick:
        return [("quick: 20 gateways, 40 of 740 secrets", 20, 200, 500)]
    return [
        ("500 gateways, 1,000 of 10,000 secrets", 500, 4000, 5000),
        ("100,000 unrelated secrets", 500, 20000, 80000),
    ]


def seed(cluster: FakeCluster, gateways: int, unrelated_local: int, unrelated_elsewhere: int) -> int:
    """Gateways with two credentials each, in istio-system; unrelated Secrets beside and elsewhere."""
    cluster.add(
        f.deployment("istio-ingressgateway", "istio-system", {"istio": "ingressgateway"})
        | {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "istio-ingressgateway-1",
                "namespace": "istio-system",
                "labels": {"istio": "ingressgateway"},
            },
        }
    )
    ca = f.make_ca()
    filler = os.urandom(1200)
    for i in range(gateways):
        hosts = [f"a{i}.example.com", f"b{i}.example.com"]
        cluster.add(
            f.gateway(
                f"gw-{i}",
                [
                    f.server([hosts[0]], f"tls-{i}-a", name="https-a"),
                    f.server([hosts[1]], f"tls-{i}-b", name="https-b", port=8443),
                ],
            )
        )
        for h, suffix in zip(hosts, "ab", strict=True):
            cluster.add(f.secret(f"tls-{i}-{suffix}", leaf=f.make_leaf([h], ca=ca)))
    for i in range(unrelated_local):
        cluster.add(f.secret(f"app-{i}", data={"blob": filler}, type_="Opaque"))
    for i in range(unrelated_elsewhere):
        cluster.add(f.secret(f"app-{i}", namespace=f"team-{i % 100}", data={"blob": filler}, type_="Opaque"))
    return gateways * 2


def measure(cmd: list[str]) -> tuple[float, int, str]:
    """Like run_measured, with RSS from a fresh rusage delta (Popen already reaped the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if p.returncode not in (0, 1, 2):
        raise RuntimeError(f"{cmd[0]} failed ({p.returncode}): {p.stderr[-2000:]}")
    # ru_maxrss of RUSAGE_CHILDREN is the max over all children: only a growth is attributable.
    return wall, max(after, before) // 1024, p.stdout


def _baseline(server: str, token: str, urls: list[str]) -> int:
    """Fetch, json-decode, base64-decode and parse: the floor for reading these objects.

    One keep-alive connection, like the pooled client rotator uses (a new TCP connection
    per request would flatter rotator).
    """
    import base64
    import http.client
    from urllib.parse import urlsplit

    from cryptography import x509

    parts = urlsplit(server)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
    headers = {"Authorization": "Bearer " + token, "Accept": "application/json"}
    certs = 0
    try:
        for url in urls:
            conn.request("GET", url, headers=headers)
            doc = json.loads(conn.getresponse().read())
            items = doc.get("items", []) if str(doc.get("kind", "")).endswith("List") else [doc]
            for item in items:
                for v in (item.get("data") or {}).values():
                    raw = base64.b64decode(v)
                    if b"BEGIN CERTIFICATE" in raw:
                        certs += len(x509.load_pem_x509_certificates(raw))
    finally:
        conn.close()
    return certs


def _rotator_read(api: Any) -> int:
    from rotator.checks.certs import parse_bundle
    from rotator.checks.families import select_server_keys
    from rotator.discover.cluster import read_cluster

    inv = read_cluster(api).inventory
    certs = 0
    for secret in inv.secrets:
        family = select_server_keys(secret.data)
        if family:
            certs += len(parse_bundle(secret.data[family[0]]).certs)
    return certs


def scenario(name: str, gateways: int, local: int, elsewhere: int, runs: int) -> dict[str, Any]:
    from rotator.kube.api import KubeAPI, connect

    with FakeCluster() as cluster, tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        referenced = seed(cluster, gateways, local, elsewhere)
        seeded = time.perf_counter() - t0
        kubeconfig = cluster.kubeconfig(Path(tmp) / "kubeconfig")
        api = KubeAPI(connect(str(kubeconfig)))
        cluster.reset_requests()
        _rotator_read(api)  # warm-up; also records the URLs the baseline replays
        read_requests = list(cluster.requests)
        urls = [r.path + ("?" + urlencode(r.query) if r.query else "") for r in read_requests if r.method == "GET"]
        rot_times, base_times = [], []
        rot_certs = base_certs = 0
        for _ in range(runs):
            t = time.perf_counter()
            rot_certs = _rotator_read(api)
            rot_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            base_certs = _baseline(cluster.url, "admin-token", urls)
            base_times.append(time.perf_counter() - t)
        cli = [
            sys.executable,
            "-m",
            "rotator",
            "check",
            "--dry-run",
            "-o",
            "json",
            "--log-level",
            "error",
            "--kubeconfig",
            str(kubeconfig),
        ]
        cli_wall, cli_rss, out = rss_of(cli)
        doc = json.loads(out)
        rot, base = statistics.median(rot_times), statistics.median(base_times)
        secret_reqs = [r for r in read_requests if r.resource == "secrets"]
        in_namespace = referenced + local
        return {
            "scenario": name,
            "secrets_total": referenced + local + elsewhere,
            "secrets_referenced": referenced,
            "gateways": gateways,
            "credentials_reported": len(doc["credentials"]),
            "seed_seconds": round(seeded, 1),
            "read_rotator_seconds": round(rot, 3),
            "read_baseline_seconds": round(base, 3),
            "read_ratio": round(rot / base, 2),
            "certs_parsed": [rot_certs, base_certs],
            "api_requests": len(read_requests),
            "requests_by_resource": _by_resource(read_requests),
            "secret_requests": len(secret_reqs),
            # O(namespaces × pages): one size probe, then pages of 500 (or a GET per referenced
            # name, whichever is fewer) in the credential namespace, never per unrelated Secret.
            "secret_requests_bound": 1 + min(referenced, math.ceil(in_namespace / PAGE_SIZE)),
            "secret_requests_elsewhere": sum(1 for r in secret_reqs if r.namespace != CREDENTIAL_NAMESPACE),
            "secrets_in_credential_namespace": in_namespace,
            "cli_seconds": round(cli_wall, 2),
            "cli_peak_rss_mb": cli_rss,
        }


def rss_of(cmd: list[str]) -> tuple[float, int, str]:
    """Run under /usr/bin/time -v when available (per-process peak RSS), else rusage."""
    gnu_time = Path("/usr/bin/time")
    if gnu_time.exists():
        start = time.perf_counter()
        p = subprocess.run([str(gnu_time), "-v", *cmd], capture_output=True, text=True)
        wall = time.perf_counter() - start
        if p.returncode not in (0, 1, 2):
            raise RuntimeError(f"{cmd[:3]} failed ({p.returncode}): {p.stderr[-2000:]}")
        line = next(ln for ln in p.stderr.splitlines() if "Maximum resident set size" in ln)
        return wall, int(line.split(":")[1]) // 1024, p.stdout
    return measure(cmd)


def _by_resource(requests: list[Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in requests:
        key = f"{r.verb} {r.resource or r.path}"
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small scenarios (smoke test)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args()
    results = [scenario(name, g, loc, els, args.runs) for name, g, loc, els in scenarios(args.quick)]
    head = ("scenario", "read s", "baseline s", "ratio", "requests", "check s", "peak MB")
    print(f"{head[0]:40} {head[1]:>7} {head[2]:>10} {head[3]:>6} {head[4]:>8} {head[5]:>8} {head[6]:>8}")
    for r in results:
        print(
            f"{r['scenario']:40} {r['read_rotator_seconds']:>7} {r['read_baseline_seconds']:>10} "
            f"{r['read_ratio']:>6} {r['api_requests']:>8} {r['cli_seconds']:>8} {r['cli_peak_rss_mb']:>8}"
        )
        print(
            f"    requests: {r['requests_by_resource']}; certificates parsed (rotator, baseline): {r['certs_parsed']}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
