"""A real kube-apiserver and etcd on 127.0.0.1, for the ``realkube`` tests.

The binaries are built from the Go module proxy by ``.ci/build-kube`` and cached by version
outside the clone; etcd is Debian's ``etcd-server``. The Istio and Gateway API CRDs come
from their published Go modules (``istio.io/api``, ``sigs.k8s.io/gateway-api``) in the Go
module cache. A golden etcd data directory with the CRDs installed is made once per test
session; each cluster starts from a copy of it on free ports (a few seconds), so tests
never see each other's objects.

kube-controller-manager runs beside it with the controllers a cluster without nodes needs
(ServiceAccounts, namespace deletion, garbage collection). The server runs with
``--authorization-mode=RBAC``, a static admin token, ServiceAccount
signing keys (``kubectl create token`` gives real ServiceAccount tokens) and an audit log
of every request made by a ServiceAccount, which is how the RBAC in deploy/ is proven.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

K8S_VERSION = "v1.34.2"
HELM_VERSION = "v4.3.2"
ISTIO_API = "istio.io/api@v1.32.0"
GATEWAY_API = "sigs.k8s.io/gateway-api@v1.6.3"
ADMIN_TOKEN = "rotator-test-admin-token"
ROOT = Path(__file__).resolve().parent.parent.parent

# Every request of a ServiceAccount at Metadata level (verb, resource, name, status); the
# admin's own set-up requests are not what is being proven, so they are not recorded.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "Metadata", "userGroups": ["system:serviceaccounts"]},
        {"level": "None"},
    ],
}


class Unavailable(Exception):
    """A part of the real cluster is missing here; the message says which and how to get it."""


def bin_dir() -> Path:
    """Where ``.ci/build-kube`` put kube-apiserver (``ROTATOR_TEST_BIN`` overrides the cache)."""
    base = Path(os.environ.get("ROTATOR_TEST_BIN") or Path.home() / ".cache/rotator-test-bin")
    return base / f"kube-{K8S_VERSION}"


def helm_binary() -> Path:
    """The real helm, built by ``.ci/build-kube`` beside the kube binaries."""
    return bin_dir().parent / f"helm-{HELM_VERSION}" / "helm"


def missing() -> str | None:
    """Why the real cluster cannot start here, or None."""
    if not (bin_dir() / "kube-apiserver").is_file():
        return f"no kube-apiserver in {bin_dir()}: run `bash .ci/build-kube` (needs Go and the module proxy)"
    if not (bin_dir() / "kube-controller-manager").is_file():
        return f"no kube-controller-manager in {bin_dir()}: run `bash .ci/build-kube`"
    if not helm_binary().is_file():
        return f"no helm in {helm_binary().parent}: run `bash .ci/build-kube`"
    if shutil.which("etcd") is None:
        return "no etcd on PATH: apt-get install etcd-server"
    if shutil.which("kubectl") is None:
        return "no kubectl on PATH"
    if shutil.which("go") is None:
        return "no go on PATH (the CRDs are read from the Go module cache)"
    return None


def module_dir(module: str) -> Path:
    """A published Go module's directory in the module cache (downloaded if needed)."""
    out = subprocess.run(
        ["go", "mod", "download", "-json", module], capture_output=True, text=True, timeout=300, check=False
    )
    if out.returncode != 0:
        raise Unavailable(f"go mod download {module} failed: {out.stderr.strip() or out.stdout.strip()}")
    return Path(json.loads(out.stdout)["Dir"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RealCluster:
    workdir: Path
    port: int
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def audit_log(self) -> Path:
        return self.workdir / "audit.log"

    def kubeconfig(self, path: Path, token: str = ADMIN_TOKEN, namespace: str = "default") -> Path:
        """A kubeconfig for ``token`` that trusts the server's own self-signed certificate."""
        ca = self.workdir / "pki" / "apiserver.crt"
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "real", "cluster": {"server": self.url, "certificate-authority": str(ca)}}],
            "users": [{"name": "u", "user": {"token": token}}],
            "contexts": [{"name": "real", "context": {"cluster": "real", "user": "u", "namespace": namespace}}],
            "current-context": "real",
        }
        path.write_text(yaml.safe_dump(doc))
        return path

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        kc = self.workdir / "admin.kubeconfig"
        if not kc.exists():
            self.kubeconfig(kc)
        out = subprocess.run(
            ["kubectl", "--kubeconfig", str(kc), *args], input=input, capture_output=True, text=True, timeout=120
        )
        if check and out.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {out.stderr.strip()}")
        return out

    def apply(self, docs: list[dict[str, Any]] | str) -> None:
        text = docs if isinstance(docs, str) else yaml.safe_dump_all(docs)
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=text)

    def seed(self, objects: list[dict[str, Any]]) -> None:
        """Create each object as an admin would (its namespace first); a Deployment becomes
        the Pod it would run (no scheduler or ReplicaSet controller runs here), and its
        ``default`` ServiceAccount is made at once rather than waited for."""
        docs = [as_applied(o) for o in objects]
        namespaces = sorted({d["metadata"]["namespace"] for d in docs if d["metadata"].get("namespace")})
        existing = set(self.kubectl("get", "namespaces", "-o", "name").stdout.split())
        for ns in namespaces:
            if f"namespace/{ns}" not in existing:
                self.kubectl("create", "namespace", ns)
        accounts = [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}}
            for ns in namespaces
        ]
        self.apply(accounts + docs)

    def token(self, sa: str = "rotator", namespace: str = "rotator", hours: int = 2) -> str:
        """A real, signed ServiceAccount token (TokenRequest), as a Pod would mount."""
        return self.kubectl("create", "token", sa, "-n", namespace, f"--duration={hours}h").stdout.strip()

    def audit(self) -> list[dict[str, Any]]:
        """The audit events so far (ResponseComplete), one per request."""
        if not self.audit_log.exists():
            return []
        events = [json.loads(line) for line in self.audit_log.read_text().splitlines() if line.strip()]
        return [e for e in events if e.get("stage") == "ResponseComplete"]

    def stop(self) -> None:
        for p in reversed(self.procs):
            with suppress(ProcessLookupError):
                p.terminate()
        for p in reversed(self.procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.clear()


def as_applied(body: dict[str, Any]) -> dict[str, Any]:
    """The object as it exists in a cluster: a namespace set, a Deployment as its Pod."""
    body = json.loads(json.dumps(body))
    meta = body.setdefault("metadata", {})
    if body.get("kind") not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
        meta.setdefault("namespace", "default")
    if body.get("kind") in ("Deployment", "StatefulSet", "DaemonSet"):
        labels = ((body.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels", {})
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{meta['name']}-7d9f8-x2x4q", "namespace": meta["namespace"], "labels": labels},
            "spec": {"containers": [{"name": "istio-proxy", "image": "proxyv2"}]},
        }
    return body


def _wait_ready(url: str, what: str, log: Path, timeout: float = 60.0) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            with urllib.request.urlopen(req, timeout=3, context=ctx) as r:
                if r.status == 200:
                    return
        except Exception as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.2)
    tail = log.read_text()[-3000:] if log.exists() else ""
    raise AssertionError(f"{what} not ready at {url} within {timeout:.0f} s ({last}); log tail:\n{tail}")


def _start(workdir: Path, controllers: bool = False) -> RealCluster:
    """etcd on the data dir in ``workdir``, kube-apiserver on it (and, with ``controllers``,
    kube-controller-manager), on free ports."""
    etcd_port, peer_port, port = free_port(), free_port(), free_port()
    cluster = RealCluster(workdir, port)
    etcd_log = workdir / "etcd.log"
    etcd = subprocess.Popen(
        [
            "etcd",
            "--data-dir",
            str(workdir / "etcd"),
            "--listen-client-urls",
            f"http://127.0.0.1:{etcd_port}",
            "--advertise-client-urls",
            f"http://127.0.0.1:{etcd_port}",
            "--listen-peer-urls",
            f"http://127.0.0.1:{peer_port}",
            "--initial-advertise-peer-urls",
            f"http://127.0.0.1:{peer_port}",
            "--initial-cluster",
            f"default=http://127.0.0.1:{peer_port}",
            "--force-new-cluster",  # a copied data dir keeps its member's old peer URL
            "--unsafe-no-fsync",
        ],
        stdout=etcd_log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    cluster.procs.append(etcd)
    api_log = workdir / "apiserver.log"
    api = subprocess.Popen(
        [
            str(bin_dir() / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={workdir / 'pki'}",
            f"--token-auth-file={workdir / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={workdir / 'sa.pub'}",
            f"--service-account-signing-key-file={workdir / 'sa.key'}",
            "--service-cluster-ip-range=10.0.0.0/24",
            f"--audit-policy-file={workdir / 'audit-policy.yaml'}",
            f"--audit-log-path={workdir / 'audit.log'}",
            "--audit-log-format=json",
            "--audit-log-mode=blocking",
            "--enable-priority-and-fairness=false",
        ],
        stdout=api_log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    cluster.procs.append(api)
    try:
        _wait_ready(f"{cluster.url}/readyz", "kube-apiserver", api_log)
        if controllers:
            _start_controllers(cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _start_controllers(cluster: RealCluster) -> None:
    """kube-controller-manager with the controllers a cluster without nodes still needs:
    ServiceAccounts (each namespace's ``default``), namespace deletion and garbage
    collection of owned objects. Ready when the ``default`` namespace has its account."""
    kc = cluster.kubeconfig(cluster.workdir / "controllers.kubeconfig")
    log = cluster.workdir / "controller-manager.log"
    proc = subprocess.Popen(
        [
            str(bin_dir() / "kube-controller-manager"),
            f"--kubeconfig={kc}",
            "--controllers=serviceaccount,serviceaccount-token,namespace,garbagecollector",
            f"--service-account-private-key-file={cluster.workdir / 'sa.key'}",
            f"--root-ca-file={cluster.workdir / 'pki' / 'apiserver.crt'}",
            "--use-service-account-credentials=false",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    cluster.procs.append(proc)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if cluster.kubectl("get", "serviceaccount", "default", "-n", "default", check=False).returncode == 0:
            return
        if proc.poll() is not None:
            break
        time.sleep(0.3)
    tail = log.read_text()[-3000:] if log.exists() else ""
    raise AssertionError(f"kube-controller-manager did not create the default ServiceAccount; log tail:\n{tail}")


def _prepare(workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (workdir / "sa.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (workdir / "sa.pub").write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    (workdir / "tokens.csv").write_text(f"{ADMIN_TOKEN},admin,admin,system:masters\n")
    (workdir / "audit-policy.yaml").write_text(yaml.safe_dump(AUDIT_POLICY))


def make_golden(workdir: Path) -> Path:
    """A stopped cluster's files with the Istio and Gateway API CRDs installed and
    established: the template every test cluster is copied from."""
    why = missing()
    if why:
        raise Unavailable(why)
    _prepare(workdir)
    cluster = _start(workdir)
    try:
        istio = module_dir(ISTIO_API) / "kubernetes" / "customresourcedefinitions.gen.yaml"
        gateway_api = module_dir(GATEWAY_API) / "config" / "crd" / "experimental"
        cluster.kubectl("apply", "--server-side", "-f", str(istio))
        cluster.kubectl("apply", "--server-side", "-k", str(gateway_api))
        cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    finally:
        cluster.stop()
    for name in ("audit.log", "admin.kubeconfig"):
        with suppress(FileNotFoundError):
            (workdir / name).unlink()
    return workdir


@contextmanager
def real_cluster(golden: Path, workdir: Path, controllers: bool = True) -> Iterator[RealCluster]:
    """A fresh cluster from a copy of ``golden``: its own etcd data, ports and audit log."""
    shutil.copytree(golden, workdir)
    cluster = _start(workdir, controllers)
    try:
        yield cluster
    finally:
        cluster.stop()
