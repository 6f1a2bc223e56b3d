"""What rotator may write: pure rules over a Secret's name, type and keys.

rotator holds write access to Secrets in the gateway namespaces, which is where Istio's
own CA material often lives too (``istio-system/cacerts``, ``istio-ca-secret``). A
Gateway author names the Secret (``credentialName``), so the name alone must never be
enough for rotator to overwrite it: this module decides, from what the Secret *is*,
whether it is a TLS credential rotator may own. Both the plan (a gate) and the writer
(just before each update, on what it has just read) ask it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping

# Istio's CA Secrets: the plugged-in CA (cacerts) and the self-signed one istiod makes.
ISTIO_CA_NAMES = frozenset({"cacerts", "istio-ca-secret"})
# A CA's private key, by the names Istio (and cert-manager's istio-csr) give it.
CA_KEY_NAMES = frozenset({"ca-key.pem", "ca.key"})
WRITABLE_TYPES = frozenset({"kubernetes.io/tls", "Opaque", ""})
# Every key Istio reads from a gateway credential (istio-gateway-credentials.md §3).
KNOWN_KEYS = frozenset({"tls.crt", "tls.key", "ca.crt", "cert", "key", "cacert", "tls.ocsp-staple", "ca.crl", "crl"})


def name_refusal(name: str) -> str | None:
    return f"{name!r} is Istio's CA Secret; rotator never writes or creates it" if name in ISTIO_CA_NAMES else None


def hard_refusal(
    name: str, type_: str, keys: Iterable[str], ca_certificate: bool = False, issuer_secret: bool = False
) -> str | None:
    """Why no configuration may make rotator write this Secret, or None. ``ca_certificate``:
    its certificate is a CA's (basicConstraints CA:TRUE), so its key is a CA key whatever
    the key is called; ``issuer_secret``: one of rotator's own issuers keeps its CA there."""
    by_name = name_refusal(name)
    if by_name is not None:
        return by_name
    if issuer_secret:
        return "it is the Secret of one of rotator's issuers (its CA); rotator never overwrites it"
    if ca_certificate:
        return "its certificate is a CA certificate (basicConstraints CA:TRUE); rotator never overwrites a CA"
    held = sorted(set(keys) & CA_KEY_NAMES)
    if held:
        return f"it holds a CA private key ({', '.join(held)}); rotator never writes or copies a CA's Secret"
    if type_ not in WRITABLE_TYPES:
        return f"its type is {type_!r}; rotator only writes kubernetes.io/tls and Opaque Secrets"
    return None


def unknown_keys(keys: Iterable[str], allowed: Iterable[str] = ()) -> list[str]:
    """Keys that are not part of a TLS credential and that no ``allow_keys`` glob admits."""
    globs = tuple(allowed)
    return sorted(k for k in keys if k not in KNOWN_KEYS and not any(fnmatch.fnmatchcase(k, g) for g in globs))


def refusal(
    name: str,
    type_: str,
    keys: Iterable[str],
    allowed: Iterable[str] = (),
    ca_certificate: bool = False,
    issuer_secret: bool = False,
) -> str | None:
    """Why rotator may not write this Secret under a rule allowing ``allowed`` extra keys."""
    keys = tuple(keys)
    hard = hard_refusal(name, type_, keys, ca_certificate, issuer_secret)
    if hard is not None:
        return hard
    extra = unknown_keys(keys, allowed)
    if extra:
        return (
            f"it holds keys that are not part of a TLS credential ({', '.join(extra)}); list them in the rule's "
            "allow_keys if rotator may rotate the certificate beside them"
        )
    return None


def backup_data(data: Mapping[str, str]) -> dict[str, str]:
    """What a backup keeps: the credential's own keys only. Material rotator does not
    write (an extra key a rule allows) is never copied into a second Secret."""
    return {k: v for k, v in data.items() if k in KNOWN_KEYS}
