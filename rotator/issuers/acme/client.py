"""What rotator adds to the ``acme`` library's client, because production needs it: the
last response kept (a rateLimited error's Retry-After), RFC 9773's ``replaces`` on a new
order, a directory probe that never raises, bounded JSON GETs, and the CSR."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import requests
from acme import client, messages
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from josepy.json_util import field as jose_field

from rotator.util import pki

USER_AGENT = "rotator (+https://github.com/rotator-dev/rotator)"


BAD_NONCE_RETRIES = 10  # each retry carries the fresh nonce of the error; cheap


class RecordingNetwork(client.ClientNetwork):
    """Keeps the last response so a rateLimited error can honour its Retry-After (the
    library raises before its caller sees the headers)."""

    last_response: requests.Response | None = None

    def _send_request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        response = super()._send_request(method, url, *args, **kwargs)
        self.last_response = response
        return response


def retry_after_seconds(response: requests.Response | None) -> float | None:
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - datetime.now(when.tzinfo)).total_seconds())


class NewOrderWithReplaces(messages.NewOrder):
    """RFC 9773 §5: ``replaces`` names the certificate this order renews."""

    replaces: str = jose_field("replaces", omitempty=True)


def offers(directory: messages.Directory, field: str) -> bool:
    """Directory has no ``in``: it iterates by index and raises KeyError on the first."""
    try:
        directory[field]
    except KeyError:
        return False
    return True


def make_csr(key: Any, sans: tuple[str, ...]) -> bytes:
    names = pki.general_names(sans)
    cn = next((s for s in sans if len(s) <= 64), None)
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else []))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
    )
    algo = None if not hasattr(key, "curve") and not hasattr(key, "key_size") else hashes.SHA256()
    return builder.sign(key, algo).public_bytes(serialization.Encoding.PEM)


def fetch_json(url: str, verify: Any, monotonic: Callable[[], float], limit: float = 15.0) -> Any:
    """GET a small JSON document within ``limit`` seconds in all: a server that trickles
    its answer must not hold a pass (requests' timeout is per read, not per request)."""
    deadline = monotonic() + limit
    with requests.get(url, timeout=(5, 10), verify=verify, headers={"User-Agent": USER_AGENT}, stream=True) as r:
        r.raise_for_status()
        body = b""
        for chunk in r.iter_content(8192):
            body += chunk
            if len(body) > 1_000_000:
                raise ValueError("answer larger than 1 MB")
            if monotonic() > deadline:
                raise ValueError(f"no complete answer within {limit:.0f} s")
    return json.loads(body)


def order_identifiers(csr_pem: bytes) -> list[messages.Identifier]:
    csr = x509.load_pem_x509_csr(csr_pem)
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    out = [messages.Identifier(typ=messages.IDENTIFIER_FQDN, value=n) for n in san.get_values_for_type(x509.DNSName)]
    out += [
        messages.Identifier(typ=messages.IDENTIFIER_IP, value=str(ip)) for ip in san.get_values_for_type(x509.IPAddress)
    ]
    return out
