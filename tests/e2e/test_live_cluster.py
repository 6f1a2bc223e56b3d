"""Against a real kind + Istio cluster: discovery, a safe rotation Istio serves, rollback.

Needs: ROTATOR_E2E=1, a kubeconfig context with Istio's ingress gateway in istio-system
(label istio=ingressgateway), rotator's deploy/ RBAC applied, and the gateway's 443
reachable at ROTATOR_E2E_INGRESS (host:port, e.g. via `kubectl port-forward`).
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rotator.apply.rollback import restore
from rotator.apply.secret_bodies import Material
from rotator.apply.secret_writer import SecretWriter
from rotator.kube.api import SECRETS, KubeAPI, ResourceType, connect
from rotator.model import Reference
from rotator.util import pki

ROOT = Path(__file__).resolve().parents[2]
NS = "istio-system"
GATEWAYS = ResourceType("networking.istio.io", "v1", "gateways", "Gateway")


def _material(host: str, days: int) -> tuple[Material, str]:
    now = datetime.now(UTC)
    ca_key = pki.new_key()
    ca = pki.build_certificate(
        subject_cn="e2e CA",
        public_key=ca_key.public_key(),
        not_before=now - timedelta(1),
        not_after=now + timedelta(365),
        issuer_cert=None,
        issuer_key=ca_key,
        is_ca=True,
    )
    key = pki.new_key()
    leaf = pki.build_certificate(
        subject_cn=host,
        public_key=key.public_key(),
        not_before=now - timedelta(1),
        not_after=now + timedelta(days),
        issuer_cert=ca,
        issuer_key=ca_key,
        sans=[host],
    )
    return Material(pki.cert_pem(leaf, ca), pki.key_pem(key), "e2e"), format(leaf.serial_number, "x")


def _served_serial(host: str) -> str:
    target = os.environ["ROTATOR_E2E_INGRESS"]
    addr, port = target.rsplit(":", 1)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((addr, int(port)), timeout=5) as sock,
        ctx.wrap_socket(sock, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    from cryptography import x509

    return format(x509.load_der_x509_certificate(der).serial_number, "x")


@pytest.fixture
def live() -> tuple[KubeAPI, str]:
    api = KubeAPI(connect())
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    yield api, name
    api.delete(GATEWAYS, NS, name)
    for b in SecretWriter(api, lambda: datetime.now(UTC)).backups(NS, name):
        api.delete(SECRETS, NS, b["metadata"]["name"])
    api.delete(SECRETS, NS, name)


def test_rotation_is_served_by_the_gateway_and_rollback_restores_it(live: tuple[KubeAPI, str]) -> None:
    api, name = live
    host = f"{name}.e2e.example.com"
    first, first_serial = _material(host, 30)
    writer = SecretWriter(api, lambda: datetime.now(UTC))
    ref = Reference("networking.istio.io", "Gateway", NS, name, "https", 443, "SIMPLE", (host,))
    assert writer.write(NS, name, first, [ref]).status == "created"
    api.create(
        GATEWAYS,
        NS,
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "Gateway",
            "metadata": {"name": name, "namespace": NS},
            "spec": {
                "selector": {"istio": "ingressgateway"},
                "servers": [
                    {
                        "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                        "hosts": [host],
                        "tls": {"mode": "SIMPLE", "credentialName": name},
                    }
                ],
            },
        },
    )
    report = subprocess.run(
        [sys.executable, "-m", "rotator", "check", "--dry-run", "-o", "json"], capture_output=True, text=True, cwd=ROOT
    )
    doc = json.loads(report.stdout)
    mine = [c for c in doc["credentials"] if c["name"] == name]
    assert [c["namespace"] for c in mine] == [NS]
    assert mine[0]["certificate"]["serial"] == first_serial

    second, second_serial = _material(host, 90)
    outcome = writer.write(NS, name, second, [ref])
    assert outcome.status == "rotated" and outcome.backup
    deadline = time.monotonic() + 60
    while _served_serial(host) != second_serial:
        assert time.monotonic() < deadline, "the gateway never served the rotated certificate"
        time.sleep(1)

    assert restore(writer, NS, name, [ref]).status == "rolled-back"
    deadline = time.monotonic() + 60
    while _served_serial(host) != first_serial:
        assert time.monotonic() < deadline, "the gateway never served the rolled-back certificate"
        time.sleep(1)
