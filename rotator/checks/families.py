"""Which keys of a Secret Istio reads, in istiod's order of precedence.

Shared by inspection, the renewer and the writer: all three must agree on which family a
Secret serves, or a rotation could write the keys Istio ignores.
"""

from __future__ import annotations

SERVER_FAMILIES = (("cert", "key"), ("tls.crt", "tls.key"))
CA_KEYS = ("cacert", "ca.crt")


def has(data: dict[str, bytes], key: str) -> bool:
    """istiod's ``hasValue`` (§3.1): only a zero-length value counts as absent.

    A whitespace-only value is *present* for istiod, so it selects that family and then
    fails to load it; stripping here would inspect the other family instead and call a
    broken Secret healthy.
    """
    return bool(data.get(key))


def select_server_keys(data: dict[str, bytes]) -> tuple[str, str] | None:
    """istiod's ExtractCertInfo precedence (§3.1): ``cert``/``key`` wins over ``tls.crt``/``tls.key``."""
    for family in SERVER_FAMILIES:
        if has(data, family[0]) and has(data, family[1]):
            return family
    return None


def select_ca_key(data: dict[str, bytes]) -> str | None:
    """istiod's ExtractRoot precedence (§3.2): ``cacert`` wins over ``ca.crt``."""
    for key in CA_KEYS:
        if has(data, key):
            return key
    return None
