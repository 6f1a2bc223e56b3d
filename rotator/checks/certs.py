"""PEM parsing and certificate facts, with ``cryptography``.

Functions here never raise on bad material: they return ``None`` or a list of problems,
so one broken Secret is a finding, never a crash.
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa, types
from cryptography.x509.oid import ExtensionOID

from rotator.model import CertificateInfo

_PEM_ANY = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")
WEAK_HASHES = ("sha1", "md5")


@dataclass(frozen=True)
class Bundle:
    certs: tuple[x509.Certificate, ...]
    errors: tuple[str, ...]


_BEGIN = b"-----BEGIN CERTIFICATE-----"
_END = b"-----END CERTIFICATE-----"


def _cert_blocks(data: bytes) -> list[bytes]:
    """CERTIFICATE blocks by linear scan (a lazy regex is quadratic on BEGINs without END)."""
    blocks: list[bytes] = []
    pos = 0
    while True:
        start = data.find(_BEGIN, pos)
        if start < 0:
            return blocks
        end = data.find(_END, start + len(_BEGIN))
        if end < 0:
            return blocks
        nxt = data.rfind(_BEGIN, start, end)  # a BEGIN with no END before the next BEGIN: skip it
        start = nxt
        blocks.append(data[start : end + len(_END)])
        pos = end + len(_END)


def parse_bundle(data: bytes) -> Bundle:
    """All certificates in a PEM blob, in order, with a message for each block that fails."""
    certs: list[x509.Certificate] = []
    errors: list[str] = []
    blocks = _cert_blocks(data)
    for i, block in enumerate(blocks):
        try:
            cert = x509.load_pem_x509_certificate(block)
        except Exception as exc:  # InvalidVersion and friends are not ValueErrors
            errors.append(f"certificate block {i + 1} does not parse: {_described(exc)}")
            continue
        problem = undecodable(cert)
        if problem is not None:
            errors.append(f"certificate block {i + 1} cannot be fully decoded: {problem}")
            continue
        certs.append(cert)
    if not blocks:
        kinds = sorted({m.decode() for m in _PEM_ANY.findall(data)})
        if "CERTIFICATE" in kinds:
            errors.append("a CERTIFICATE block has no END line (truncated?)")
        elif kinds:
            errors.append(f"no CERTIFICATE block (found {', '.join(kinds)})")
        elif data.strip():
            errors.append("not PEM: no '-----BEGIN CERTIFICATE-----' block")
        else:
            errors.append("empty")
    return Bundle(tuple(certs), tuple(errors))


def parse_private_key(data: bytes, signing: bool = True) -> tuple[types.PrivateKeyTypes | None, str]:
    """The private key, or None and a message that never echoes the key material.

    ``signing=False`` for keys rotator only compares with a certificate (a tenant's Secret,
    which it never signs with): OpenSSL's RSA validation on load tests both primes
    (~30 ms for RSA-2048, against ~0.02 ms for the rest), so inspecting 10,000 RSA Secrets
    would spend minutes on it. The cheap arithmetic of ``rsa_consistent`` still catches a
    corrupted key, which the gateway's BoringSSL would refuse; a key rotator signs with (a
    CA issuer's, an ACME account's) keeps the full validation."""
    try:
        key = serialization.load_pem_private_key(data, password=None, unsafe_skip_rsa_key_validation=not signing)
    except TypeError:
        return None, "private key is encrypted; Istio needs an unencrypted key"
    except (ValueError, UnsupportedAlgorithm) as exc:
        kinds = sorted({m.decode() for m in _PEM_ANY.findall(data)})
        if not kinds:
            return None, "not PEM: no '-----BEGIN … PRIVATE KEY-----' block" if data.strip() else "empty"
        return None, f"private key does not parse (found {', '.join(kinds)}): {_short(exc)}"
    if isinstance(key, rsa.RSAPrivateKey) and not signing and not rsa_consistent(key):
        return None, "private key does not parse: its RSA parameters are inconsistent (a corrupted key)"
    return key, ""


def rsa_consistent(key: rsa.RSAPrivateKey) -> bool:
    """n = p·q, and d, dmp1, dmq1 and iqmp belong to e, p and q: what a corrupted or
    hand-edited key gets wrong. Not a primality test (that is the expensive part of full
    validation, and only a deliberately crafted key has non-prime factors)."""
    try:
        n = key.private_numbers()
        p, q, e = n.p, n.q, n.public_numbers.e
        return (
            p > 1
            and q > 1
            and p * q == n.public_numbers.n
            and (e * n.dmp1) % (p - 1) == 1
            and (e * n.dmq1) % (q - 1) == 1
            and (n.iqmp * q) % p == 1
            and (e * n.d) % math.lcm(p - 1, q - 1) == 1
        )
    except (ValueError, ZeroDivisionError):
        return False


def undecodable(cert: x509.Certificate) -> str | None:
    """Why some fact rotator reads from this certificate fails to decode, or None.

    ``cryptography`` parses lazily: a certificate loads, and its duplicate extension, bad
    UTF-8 name or unknown version raises only when that field is read, deep inside
    inspection. Touching every field once here turns such a certificate into a finding on
    its Secret instead of a crash of the whole pass (one tenant's Secret must not stop
    rotation for everyone).
    """
    try:
        _ = cert.version, cert.serial_number, cert.not_valid_before_utc, cert.not_valid_after_utc
        for name in (cert.subject, cert.issuer):
            name.rfc4514_string()
            for attr in name:
                _ = attr.value
        for ext in cert.extensions:
            _ = ext.value
        _ = cert.tbs_certificate_bytes, cert.signature, cert.signature_algorithm_oid
        _ = cert.fingerprint(hashes.SHA256())
        # an unsupported key or signature algorithm is reported as weak, not as undecodable
        with contextlib.suppress(UnsupportedAlgorithm):
            cert.public_key()
        with contextlib.suppress(UnsupportedAlgorithm):
            _ = cert.signature_hash_algorithm
    except Exception as exc:
        return _described(exc)
    return None


def _described(exc: Exception) -> str:
    return f"{type(exc).__name__}: {_short(exc)}" if type(exc) is not ValueError else _short(exc)


def _short(exc: Exception) -> str:
    """The library's message in the user's terms: a parser's internals (``ParseError {
    kind: ShortData …}``, an FAQ link) say only that the content is not valid DER."""
    text = str(exc).split("\n")[0]
    if "ParseError" in text or "Unable to load PEM file" in text or "ASN.1" in text:
        return "the block's content is not a valid DER structure (truncated, corrupt, or not this kind of object)"
    return text[:160]


def public_bytes(key: types.PublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_matches(cert: x509.Certificate, key: types.PrivateKeyTypes) -> bool:
    try:
        return public_bytes(cert.public_key()) == public_bytes(key.public_key())
    except (ValueError, UnsupportedAlgorithm):
        return False


def key_type(key: types.PublicKeyTypes | types.PrivateKeyTypes) -> str:
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return {"secp256r1": "ECDSA P-256", "secp384r1": "ECDSA P-384", "secp521r1": "ECDSA P-521"}.get(
            key.curve.name, f"ECDSA {key.curve.name}"
        )
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey | ed448.Ed448PrivateKey):
        return "Ed448"
    if isinstance(key, dsa.DSAPublicKey | dsa.DSAPrivateKey):
        return f"DSA {key.key_size}"
    return type(key).__name__


def weak_key_reason(cert: x509.Certificate) -> str | None:
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return "public key of an unsupported type"
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        return f"RSA key of {key.key_size} bits (minimum 2048)"
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size < 256:
        return f"EC key of {key.curve.key_size} bits (minimum 256)"
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA key (not supported by modern TLS clients)"
    return None


def signature_hash(cert: x509.Certificate) -> str:
    try:
        algo = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return "unknown"
    return algo.name if algo is not None else "none"


def not_before(cert: x509.Certificate) -> datetime:
    return cert.not_valid_before_utc


def not_after(cert: x509.Certificate) -> datetime:
    return cert.not_valid_after_utc


def typed_sans(cert: x509.Certificate) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(dNSName SANs, iPAddress SANs): clients match IP hosts only against the second."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return (), ()
    dns = tuple(str(n) for n in ext.get_values_for_type(x509.DNSName))
    ips = tuple(str(ip) for ip in ext.get_values_for_type(x509.IPAddress))
    return dns, ips


def sans(cert: x509.Certificate) -> tuple[str, ...]:
    dns, ips = typed_sans(cert)
    return dns + ips


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except (x509.ExtensionNotFound, ValueError):
        return False


def _key_id(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> bytes | None:
    try:
        value = cert.extensions.get_extension_for_oid(oid).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    if isinstance(value, x509.SubjectKeyIdentifier):
        return value.digest
    if isinstance(value, x509.AuthorityKeyIdentifier):
        return value.key_identifier
    return None


def signed_by(child: x509.Certificate, parent: x509.Certificate, verify: bool = True) -> bool:
    """Did ``parent`` issue ``child``? Names must chain, and key identifiers when present.

    With ``verify`` the signature is checked too (before a write: one chain, worth it).
    Without it, matching AKI/SKI settle the order and the signature is checked only when
    identifiers are missing: a report over thousands of Secrets stays fast.
    """
    if child.issuer != parent.subject:
        return False
    aki = _key_id(child, ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
    ski = _key_id(parent, ExtensionOID.SUBJECT_KEY_IDENTIFIER)
    if aki is not None and ski is not None:
        if aki != ski:
            return False
        if not verify:
            return True
    return verify_signature(child, parent)


def verify_signature(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        key = parent.public_key()
        algo = child.signature_hash_algorithm
        if isinstance(key, rsa.RSAPublicKey) and algo is not None:
            key.verify(child.signature, child.tbs_certificate_bytes, padding.PKCS1v15(), algo)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algo is not None:
            key.verify(child.signature, child.tbs_certificate_bytes, ec.ECDSA(algo))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(child.signature, child.tbs_certificate_bytes)
        else:
            # Unusual key types: fall back to the name chain already checked.
            return True
    except (InvalidSignature, ValueError, UnsupportedAlgorithm, TypeError):
        return False
    return True


def is_self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject and verify_signature(cert, cert)


def describe(certs: tuple[x509.Certificate, ...], leaf: x509.Certificate | None = None) -> CertificateInfo:
    """The report's view of a certificate (``leaf`` or the first one), with the chain length."""
    cert = leaf if leaf is not None else certs[0]
    try:
        ktype = key_type(cert.public_key())
    except (ValueError, UnsupportedAlgorithm):
        ktype = "unknown"
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial=format(cert.serial_number, "x"),
        sans=sans(cert),
        not_before=not_before(cert),
        not_after=not_after(cert),
        key_type=ktype,
        chain_length=len(certs),
        is_ca=is_ca(cert),
    )


def ocsp_problem(staple: bytes, leaf: x509.Certificate, issuer: x509.Certificate | None) -> str | None:
    """Why an OCSP staple would make Envoy reject the certificate, or None if it belongs."""
    from cryptography.x509 import ocsp

    try:
        resp = ocsp.load_der_ocsp_response(staple)
    except ValueError:
        return "tls.ocsp-staple is not a DER OCSP response"
    if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return f"tls.ocsp-staple has status {resp.response_status.name}"
    # Envoy accepts a staple for exactly one certificate ("OCSP Response must be for one
    # certificate only"); cryptography's single-response accessors raise on any other count.
    count = sum(1 for _ in resp.responses)
    if count != 1:
        return f"tls.ocsp-staple holds {count} responses; Envoy accepts exactly one"
    if resp.serial_number != leaf.serial_number:
        return (
            f"tls.ocsp-staple is for serial {resp.serial_number:x}, the certificate's serial is {leaf.serial_number:x}"
        )
    try:
        name_hash = _name_hash(issuer.subject, resp.hash_algorithm) if issuer is not None else None
    except UnsupportedAlgorithm:
        return "tls.ocsp-staple uses an unsupported hash algorithm"
    if name_hash is not None and resp.issuer_name_hash != name_hash:
        return "tls.ocsp-staple was issued for another CA"
    return None


def _name_hash(name: x509.Name, algo: hashes.HashAlgorithm) -> bytes:
    digest = hashes.Hash(algo)
    digest.update(name.public_bytes())
    return digest.finalize()


def utcnow() -> datetime:
    """The clock edge: everything else takes ``now`` as an argument."""
    return datetime.now(UTC)
