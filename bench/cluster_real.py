"""Cluster read against a real kube-apiserver: rotator vs a raw-HTTP baseline.

    python bench/cluster_real.py                 # 1,000 and 10,000 referenced Secrets
    python bench/cluster_real.py --quick         # 200 referenced, for a smoke run

The server is the real kube-apiserver 1.34.2 and etcd of the ``realkube`` tests
(``bash .ci/build-kube`` builds it; tests/support/realkube.py starts it on 127.0.0.1).
Each scenario seeds Gateways whose servers reference N Secrets (each with its own key and
certificate, as in a real cluster) and 20,000 unrelated Secrets beside and elsewhere, and
gives rotator's ServiceAccount read access to the Secrets' namespace as deploy/ does.
Then, as that ServiceAccount with its real token:

1. read phase, in this process, interleaved (median of --runs): rotator's ``read_cluster``
   (paginated LISTs, selectors, the GET-or-LIST plan) and every referenced certificate
   parsed; the baseline replays the very requests rotator made (from the server's audit
   log) over one keep-alive TLS connection, json- and base64-decodes them and parses each
   certificate: the least work any tool must do. Wall time and this process's CPU time
   (user + system) for each, and their ratios.
2. ``rotator check --dry-run -o json`` as its own process under ``/usr/bin/time -v``: wall,
   CPU, peak RSS.

Requests are counted by the real server's audit log. The server's own CPU is not
counted: it is the same for any client asking for the same objects.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import factory as f  # noqa: E402
from tests.support import realkube  # noqa: E402

NS = "istio-system"
UNRELATED = 20_000
SA_USER = "system:serviceaccount:rotator:rotator"


def scenarios(quick: bool) -> list[tuple[str, int, int]]:
    """(name, referenced Secrets, unrelated Secrets)."""
    if quick:
        return [("quick: 200 referenced, 2,000 unrelated", 200, 2_000)]
    return [
        ("1,000 referenced, 20,000 unrelated", 1_000, UNRELATED),
        ("10,000 referenced, 20,000 unrelated", 10_000, UNRELATED),
    ]


def seed(cluster: realkube.RealCluster, referenced: int, unrelated: int) -> None:
    """Gateways with two servers each; each server's Secret its own key and certificate."""
    from rotator.kube.api import KubeAPI, ResourceType, connect

    cluster.kubectl("create", "namespace", NS)
    cluster.kubectl("apply", "--server-side", "-k", str(ROOT / "deploy/overlays/cronjob"))
    for t in range(20):
        cluster.kubectl("create", "namespace", f"team-{t}")
    cluster.seed([f.ingress()])
    admin = KubeAPI(connect(str(cluster.kubeconfig(cluster.workdir / "admin.kc"))))
    ca = f.make_ca()
    gateways = ResourceType("networking.istio.io", "v1", "gateways", "Gateway")
    from rotator.kube.api import SECRETS

    def make_gateway(i: int) -> None:
        hosts = [f"a{i}.example.com", f"b{i}.example.com"]
        body = f.gateway(
            f"gw-{i}",
            [
                f.server([hosts[0]], f"tls-{i}-a", name="https-a"),
                f.server([hosts[1]], f"tls-{i}-b", name="https-b", port=8443),
            ],
        )
        admin.create(gateways, NS, body)
        for h, suffix in zip(hosts, "ab", strict=True):
            admin.create(SECRETS, NS, f.secret(f"tls-{i}-{suffix}", leaf=f.make_leaf([h], ca=ca)))

    filler = b"x" * 1200

    def make_unrelated(i: int) -> None:
        ns = NS if i % 5 == 0 else f"team-{i % 20}"
        admin.create(SECRETS, ns, f.secret(f"app-{i}", ns, data={"blob": filler}, type_="Opaque"))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(make_gateway, range(referenced // 2)))
        list(pool.map(make_unrelated, range(unrelated)))


def rotator_read(api: Any) -> int:
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


def baseline(port: int, token: str, ca: Path, paths: list[str]) -> int:
    from cryptography import x509

    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.check_hostname = False
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx)
    headers = {"Authorization": "Bearer " + token, "Accept": "application/json"}
    certs = 0
    try:
        for path in paths:
            conn.request("GET", path, headers=headers)
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


def timed(call: Any) -> tuple[float, float, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    value = call()
    return time.perf_counter() - wall, time.process_time() - cpu, value


def time_v(cmd: list[str]) -> dict[str, float]:
    p = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    if p.returncode not in (0, 1, 2):
        raise RuntimeError(f"rotator check failed ({p.returncode}): {p.stderr[-1500:]}")
    fields = dict(line.strip().rsplit(": ", 1) for line in p.stderr.splitlines() if ": " in line)
    m, s = fields["Elapsed (wall clock) time (h:mm:ss or m:ss)"].rsplit(":", 1)
    return {
        "wall_s": round(float(m.split(":")[-1]) * 60 + float(s), 2),
        "cpu_s": round(float(fields["User time (seconds)"]) + float(fields["System time (seconds)"]), 2),
        "peak_rss_mb": int(fields["Maximum resident set size (kbytes)"]) // 1024,
        "credentials": len(json.loads(p.stdout)["credentials"]),
    }


def scenario(golden: Path, name: str, referenced: int, unrelated: int, runs: int) -> dict[str, Any]:
    from rotator.kube.api import KubeAPI, connect

    with tempfile.TemporaryDirectory() as tmp, realkube.real_cluster(golden, Path(tmp) / "c") as cluster:
        t0 = time.perf_counter()
        seed(cluster, referenced, unrelated)
        seeded = time.perf_counter() - t0
        token = cluster.token()
        kc = cluster.kubeconfig(Path(tmp) / "sa.kc", token)
        api = KubeAPI(connect(str(kc)))
        mark = len(cluster.audit())
        rotator_read(api)  # warm-up; the audit log records the requests the baseline replays
        requests = [e for e in cluster.audit()[mark:] if e["user"]["username"] == SA_USER]
        paths = [e["requestURI"] for e in requests if e["verb"] in ("get", "list")]
        rows: dict[str, list[tuple[float, float]]] = {"rotator": [], "baseline": []}
        certs: dict[str, int] = {}
        ca = cluster.workdir / "pki" / "apiserver.crt"
        for _ in range(runs):
            w, c, certs["rotator"] = timed(lambda: rotator_read(api))
            rows["rotator"].append((w, c))
            w, c, certs["baseline"] = timed(lambda: baseline(cluster.port, token, ca, paths))
            rows["baseline"].append((w, c))
        med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)) for k, v in rows.items()}
        cli = [sys.executable, "-m", "rotator", "check", "--dry-run", "-o", "json", "--log-level", "error"]
        check = time_v([*cli, "--kubeconfig", str(kc)])
        return {
            "scenario": name,
            "referenced": referenced,
            "unrelated": unrelated,
            "seed_s": round(seeded, 1),
            "requests": len(requests),
            "requests_by_verb": {
                v: sum(1 for e in requests if e["verb"] == v) for v in sorted({e["verb"] for e in requests})
            },
            "read_wall_s": round(med["rotator"][0], 3),
            "read_cpu_s": round(med["rotator"][1], 3),
            "baseline_wall_s": round(med["baseline"][0], 3),
            "baseline_cpu_s": round(med["baseline"][1], 3),
            "wall_ratio": round(med["rotator"][0] / med["baseline"][0], 2),
            "cpu_ratio": round(med["rotator"][1] / med["baseline"][1], 2),
            "certs_parsed": certs,
            "check": check,
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    why = realkube.missing()
    if why:
        sys.exit(f"cluster_real: {why}")
    with tempfile.TemporaryDirectory() as tmp:
        golden = realkube.make_golden(Path(tmp) / "golden")
        results = [scenario(golden, n, r, u, args.runs) for n, r, u in scenarios(args.quick)]
    columns = [
        ("scenario", 38, lambda r: r["scenario"]),
        ("reqs", 5, lambda r: r["requests"]),
        ("read s", 7, lambda r: r["read_wall_s"]),
        ("base s", 7, lambda r: r["baseline_wall_s"]),
        ("wall×", 6, lambda r: r["wall_ratio"]),
        ("cpu s", 6, lambda r: r["read_cpu_s"]),
        ("base cpu", 8, lambda r: r["baseline_cpu_s"]),
        ("cpu×", 5, lambda r: r["cpu_ratio"]),
        ("check s", 7, lambda r: r["check"]["wall_s"]),
        ("check cpu", 9, lambda r: r["check"]["cpu_s"]),
        ("RSS MB", 6, lambda r: r["check"]["peak_rss_mb"]),
    ]
    print(" ".join(f"{h:{'<' if i == 0 else '>'}{w}}" for i, (h, w, _) in enumerate(columns)))
    for r in results:
        print(" ".join(f"{get(r)!s:{'<' if i == 0 else '>'}{w}}" for i, (_, w, get) in enumerate(columns)))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
