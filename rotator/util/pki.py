"""Key and certificate building with ``cryptography``.

The CA issuer signs with this, and the test suite and the examples generator build
their fixtures with it, so every certificate rotator ever sees in a test was made by
the same, reviewed code path.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, types
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KeyAlgorithm = Literal["ecdsa-p256", "ecdsa-p384", "rsa-1024", "rsa-2048", "rsa-3072", "rsa-4096", "ed25519"]


def new_key(algorithm: KeyAlgorithm = "ecdsa-p256") -> types.CertificateIssuerPrivateKeyTypes:
    if algorithm == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "ecdsa-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if algorithm == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    bits = int(algorithm.split("-")[1])
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def key_pem(key: types.CertificateIssuerPrivateKeyTypes, pkcs1: bool = False) -> bytes:
    fmt = serialization.PrivateFormat.TraditionalOpenSSL if pkcs1 else serialization.PrivateFormat.PKCS8
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


def cert_pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def _hash_for(key: types.CertificateIssuerPrivateKeyTypes, digest: str) -> hashes.HashAlgorithm | None:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    return {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha1": hashes.SHA1(), "md5": hashes.MD5()}[digest]


def general_names(sans: list[str] | tuple[str, ...]) -> list[x509.GeneralName]:
    """SAN entries: IP addresses as iPAddress (clients match IP hosts only against those), the rest dNSName."""
    import ipaddress

    names: list[x509.GeneralName] = []
    for s in sans:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(s)))
        except ValueError:
            names.append(x509.DNSName(s))
    return names


def random_serial() -> int:
    """128 random bits, top bit clear so the DER integer stays positive and 16 bytes."""
    return secrets.randbits(127) | (1 << 64)


def build_certificate(
    *,
    subject_cn: str,
    public_key: types.CertificateIssuerPublicKeyTypes,
    not_before: datetime,
    not_after: datetime,
    issuer_cert: x509.Certificate | None,
    issuer_key: types.CertificateIssuerPrivateKeyTypes,
    sans: list[str] | tuple[str, ...] = (),
    is_ca: bool = False,
    path_length: int | None = None,
    client_auth: bool = False,
    digest: str = "sha256",
    serial: int | None = None,
) -> x509.Certificate:
    """One certificate; ``issuer_cert=None`` makes it self-signed by ``issuer_key``."""

    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    issuer = issuer_cert.subject if issuer_cert is not None else subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial if serial is not None else random_serial())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=path_length if is_ca else None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    auth_key = issuer_cert.public_key() if issuer_cert is not None else issuer_key.public_key()
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(auth_key),  # type: ignore[arg-type]
        critical=False,
    )
    if is_ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        usages = [ExtendedKeyUsageOID.SERVER_AUTH] + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client_auth else [])
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        builder = builder.add_extension(
            x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True
        )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(general_names(sans)), critical=False)
    return builder.sign(issuer_key, _hash_for(issuer_key, digest))  # type: ignore[arg-type]


_RSA_SHA256_OID = bytes.fromhex("06092a864886f70d01010b")
_RSA_SHA1_OID = bytes.fromhex("06092a864886f70d010105")


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_len(len(body)) + body


def resign_sha1(cert: x509.Certificate, issuer_key: rsa.RSAPrivateKey) -> x509.Certificate:
    """Re-sign an RSA/SHA-256 certificate with SHA-1.

    ``cryptography`` (rightly) refuses to build SHA-1 certificates, but rotator must
    recognise the ones still deployed, so tests and the demo need real samples.
    """
    from cryptography.hazmat.primitives.asymmetric import padding

    tbs = cert.tbs_certificate_bytes
    if _RSA_SHA256_OID not in tbs:
        raise ValueError("resign_sha1 needs a certificate signed with sha256WithRSAEncryption")
    tbs = tbs.replace(_RSA_SHA256_OID, _RSA_SHA1_OID, 1)
    signature = issuer_key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())
    algorithm = _der(0x30, _RSA_SHA1_OID + b"\x05\x00")
    der = _der(0x30, tbs + algorithm + _der(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(der)
