"""Key policy: a new private key on every renewal, in the algorithm and encoding the
Secret already uses unless the configuration says otherwise."""

from __future__ import annotations

from typing import cast

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from rotator.checks import certs
from rotator.util.pki import KeyAlgorithm

DEFAULT: KeyAlgorithm = "ecdsa-p256"


def algorithm_of(key_pem: bytes | None) -> KeyAlgorithm | None:
    """The algorithm of an existing key, when it is one rotator issues."""
    if not key_pem:
        return None
    key, _ = certs.parse_private_key(key_pem, signing=False)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384"}.get(key.curve.name)  # type: ignore[return-value]
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size in (2048, 3072, 4096):
        return cast(KeyAlgorithm, f"rsa-{key.key_size}")
    if isinstance(key, rsa.RSAPrivateKey):
        return "rsa-2048"  # a weak or odd size is replaced by the smallest strong one
    return None


def uses_pkcs1(key_pem: bytes | None) -> bool:
    """The traditional PKCS#1/SEC1 PEM encoding rather than PKCS#8."""
    if not key_pem:
        return False
    # PKCS#1 / SEC1 ("traditional") PEM labels; PKCS#8 has the bare label
    return any(b"-----BEGIN " + label + b"-----" in key_pem for label in (b"RSA PRIVATE KEY", b"EC PRIVATE KEY"))


def choose(configured: KeyAlgorithm | None, current_key_pem: bytes | None) -> tuple[KeyAlgorithm, bool]:
    """(algorithm, pkcs1): configuration first, then the current key's type, then ECDSA P-256."""
    return configured or algorithm_of(current_key_pem) or DEFAULT, uses_pkcs1(current_key_pem)
