"""Real ACME and DNS for tests: pebble and BIND9 (named) on free 127.0.0.1 ports.

pebble validates DNS-01 by asking our BIND (``-dnsserver``), and HTTP-01 by connecting
to ``httpPort`` on 127.0.0.1 (test names resolve there through the zone's wildcard A
record). Both run as plain processes in a temp dir and are stopped by the fixture.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dns.message
import dns.query

from rotator.config.schema import ACMEIssuerConfig, DNS01Config, HTTP01Config, SecretKeyRef
from rotator.issuers.acme.issuer import ACMEIssuer
from rotator.issuers.base import IssueRequest
from rotator.util import pki

ZONE = "acme.test"
TSIG_NAME = "rotator-key"
ROOT = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def have(binary: str) -> str | None:
    return shutil.which(binary) or next(
        (p for p in (f"/usr/sbin/{binary}", f"/usr/bin/{binary}") if os.path.exists(p)), None
    )


@dataclass
class Bind:
    port: int
    tsig_secret: str
    proc: subprocess.Popen[bytes]
    workdir: Path

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class Pebble:
    directory: str
    management: str
    ca_file: Path  # trust for pebble's own HTTPS listener
    http_port: int
    proc: subprocess.Popen[bytes]
    env: dict[str, str] = field(default_factory=dict)

    def roots(self) -> bytes:
        """The (per-start) root that signs issued certificates."""
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        with urllib.request.urlopen(f"{self.management}/roots/0", context=ctx) as r:
            return bytes(r.read())


@contextmanager
def bind(tmp: Path) -> Iterator[Bind]:
    named = have("named")
    assert named, "named (bind9) is not installed; .ci/run installs it"
    port = free_port()
    secret = base64.b64encode(os.urandom(32)).decode()
    _register(secret)
    work = tmp / "bind"
    work.mkdir()
    (work / "zone.db").write_text(
        f"$TTL 60\n@ IN SOA ns1.{ZONE}. admin.{ZONE}. 1 60 60 600 60\n@ IN NS ns1.{ZONE}.\n"
        f"ns1 IN A 127.0.0.1\n@ IN A 127.0.0.1\n* IN A 127.0.0.1\n"
    )
    (work / "named.conf").write_text(f"""
key "{TSIG_NAME}" {{ algorithm hmac-sha256; secret "{secret}"; }};
options {{
  directory "{work}";
  pid-file "{work}/named.pid";
  session-keyfile "{work}/session.key";
  managed-keys-directory "{work}";
  dump-file "{work}/dump.db";
  statistics-file "{work}/stats";
  listen-on port {port} {{ 127.0.0.1; }};
  listen-on-v6 {{ none; }};
  recursion no;
  dnssec-validation no;
  notify no;
}};
controls {{ }};
zone "{ZONE}" {{ type primary; file "{work}/zone.db"; allow-update {{ key "{TSIG_NAME}"; }}; }};
""")
    log = (work / "named.log").open("wb")
    proc = subprocess.Popen([named, "-g", "-4", "-c", str(work / "named.conf")], stdout=subprocess.DEVNULL, stderr=log)
    try:
        _wait_dns(port, proc, work / "named.log")
        yield Bind(port, secret, proc, work)
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def _wait_dns(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    import dns.message
    import dns.query

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"named exited: {log.read_text()[-2000:]}")
        try:
            dns.query.udp(dns.message.make_query(ZONE, "SOA"), "127.0.0.1", port=port, timeout=0.02)
            return
        except Exception:  # not up yet
            time.sleep(0.02)
    raise RuntimeError(f"named did not answer: {log.read_text()[-2000:]}")


def _pebble_tls(tmp: Path) -> tuple[Path, Path, Path]:
    now = datetime.now(UTC)
    ca_key = pki.new_key()
    ca = pki.build_certificate(
        subject_cn="pebble test listener CA",
        public_key=ca_key.public_key(),
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=30),
        issuer_cert=None,
        issuer_key=ca_key,
        is_ca=True,
    )
    key = pki.new_key()
    cert = pki.build_certificate(
        subject_cn="localhost",
        public_key=key.public_key(),
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=30),
        issuer_cert=ca,
        issuer_key=ca_key,
        sans=["localhost", "127.0.0.1"],
    )
    (tmp / "ca.pem").write_bytes(pki.cert_pem(ca))
    (tmp / "cert.pem").write_bytes(pki.cert_pem(cert))
    (tmp / "key.pem").write_bytes(pki.key_pem(key))
    return tmp / "ca.pem", tmp / "cert.pem", tmp / "key.pem"


def _register(secret: str) -> None:
    """Tell the suite-wide guard (tests/conftest.py) to fail any test that prints it."""
    try:
        from tests.support.secretscan import register_secret
    except ImportError:  # used outside pytest (bench/)
        return
    register_secret(secret)


@contextmanager
def pebble(
    tmp: Path,
    dns_port: int,
    binary: str | None = None,
    eab: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Pebble]:
    exe = binary or have("pebble")
    assert exe, "pebble is not installed; .ci/run installs it"
    work = tmp / f"pebble-{free_port()}"
    work.mkdir()
    ca_file, cert_file, key_file = _pebble_tls(work)
    listen, mgmt, http_port, tls_port = free_port(), free_port(), free_port(), free_port()
    cfg = {
        "pebble": {
            "listenAddress": f"127.0.0.1:{listen}",
            "managementListenAddress": f"127.0.0.1:{mgmt}",
            "certificate": str(cert_file),
            "privateKey": str(key_file),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": bool(eab),
            "externalAccountMACKeys": eab or {},
        }
    }
    (work / "pebble.json").write_text(json.dumps(cfg))
    for hmac in (eab or {}).values():
        _register(hmac)
    full_env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", **(env or {})}
    proc = subprocess.Popen(
        [exe, "-config", str(work / "pebble.json"), "-dnsserver", f"127.0.0.1:{dns_port}", "-strict=false"],
        env=full_env,
        stdout=open(work / "pebble.log", "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    directory = f"https://127.0.0.1:{listen}/dir"
    try:
        ctx = ssl.create_default_context(cafile=str(ca_file))
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"pebble exited: {(work / 'pebble.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(directory, context=ctx, timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"pebble did not start: {(work / 'pebble.log').read_text()[-2000:]}") from None
                time.sleep(0.03)
        yield Pebble(directory, f"https://127.0.0.1:{mgmt}", ca_file, http_port, proc, full_env)
    finally:
        proc.terminate()
        proc.wait(10)


def issuer_config(
    bind: Bind, pebble: Pebble, tmp: Path, solver: str = "dns01", *, cluster_routes: bool = False, **extra: Any
) -> ACMEIssuerConfig:
    """An ACME issuer on this pebble: DNS-01 through this BIND with the TSIG key in a file,
    or HTTP-01 on pebble's HTTP port (with ``cluster_routes``, through a temporary
    VirtualService to rotator's Service). ``extra`` overrides any field."""
    secret_file = tmp / "tsig.secret"
    secret_file.write_text(bind.tsig_secret)
    http01 = {"listen": f"127.0.0.1:{pebble.http_port}"}
    if cluster_routes:
        http01 |= {"service_host": "rotator.rotator.svc.cluster.local", "service_port": 8089}
    fields: dict[str, Any] = {
        "type": "acme",
        "directory": pebble.directory,
        "terms_agreed": True,
        "email": "ops@acme.test",
        "ca_bundle": str(pebble.ca_file),
        "account_key_file": str(tmp / f"account-{os.urandom(4).hex()}.key"),
        "solver": solver,
        "dns01": DNS01Config(
            nameserver=bind.nameserver,
            zone=ZONE,
            tsig_key_name=TSIG_NAME,
            tsig_secret=SecretKeyRef(file=str(secret_file)),
            propagation_timeout="10s",
        ),
        "http01": HTTP01Config(**http01) if solver == "http01" else None,
        "timeout": "60s",
    }
    return ACMEIssuerConfig(**{**fields, **extra})


def cluster_issuer(bind: Bind, pebble: Pebble, **extra: Any) -> dict[str, Any]:
    """An ACME issuer on this pebble as a config file section (for `rotator check` against
    a fake cluster): DNS-01 through this BIND, the TSIG key in Secret rotator/rotator-tsig."""
    return {
        "type": "acme",
        "directory": pebble.directory,
        "terms_agreed": True,
        "ca_bundle": str(pebble.ca_file),
        "solver": "dns01",
        "timeout": "60s",
        "dns01": {
            "nameserver": bind.nameserver,
            "zone": ZONE,
            "tsig_key_name": TSIG_NAME,
            "tsig_secret": {"secret": "rotator/rotator-tsig", "key": "secret"},
        },
        **extra,
    }


def issuer(bind: Bind, pebble: Pebble, tmp: Path, solver: str = "dns01", **extra: object) -> ACMEIssuer:
    cfg = issuer_config(bind, pebble, tmp, solver, **extra)
    return ACMEIssuer.from_config("pebble", cfg, None, lambda: datetime.now(UTC))


def request(*sans: str) -> IssueRequest:
    return IssueRequest("istio-system", "app-tls", tuple(sans), "ecdsa-p256")


def txt(bind: Bind, name: str) -> list[str]:
    r = dns.query.udp(dns.message.make_query(name, "TXT"), "127.0.0.1", port=bind.port, timeout=1)
    return [b"".join(rd.strings).decode() for rrset in r.answer for rd in rrset]


def ari_pebble() -> str | None:
    for candidate in (os.environ.get("ROTATOR_PEBBLE_ARI"), str(ROOT / ".ci/cache/pebble-ari/usr/bin/pebble")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None
