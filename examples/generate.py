"""Regenerates examples/secrets/*.yaml: the certificates behind the README demo.

Dates are absolute and the demo pins its clock with ``--at 2026-12-01``, so the demo
shows the same mix (ok, due, expired, host not covered, mTLS CA problems) on any day;
``tests/test_examples.py`` fails if a regeneration changes that mix.

    python examples/generate.py
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import yaml

from rotator.util import pki

OUT = Path(__file__).parent / "secrets"


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def secret(
    ns: str,
    name: str,
    data: dict[str, bytes],
    annotations: dict[str, str] | None = None,
    typ: str = "kubernetes.io/tls",
    comment: str = "",
) -> str:
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns, **({"annotations": annotations} if annotations else {})},
        "type": typ,
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
    }
    head = "".join(f"# {line}\n" for line in comment.strip().splitlines())
    return head + yaml.safe_dump(body, sort_keys=False, width=1 << 20)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    root_key = pki.new_key("ecdsa-p384")
    root = pki.build_certificate(
        subject_cn="Example Root CA",
        public_key=root_key.public_key(),
        not_before=t("2025-01-01"),
        not_after=t("2035-01-01"),
        issuer_cert=None,
        issuer_key=root_key,
        is_ca=True,
    )
    int_key = pki.new_key("ecdsa-p256")
    inter = pki.build_certificate(
        subject_cn="Example Issuing CA",
        public_key=int_key.public_key(),
        not_before=t("2025-01-01"),
        not_after=t("2030-01-01"),
        issuer_cert=root,
        issuer_key=root_key,
        is_ca=True,
        path_length=0,
    )

    def leaf(cn: str, sans: list[str], nb: str, na: str, algo: pki.KeyAlgorithm = "ecdsa-p256") -> tuple[bytes, bytes]:
        key = pki.new_key(algo)
        cert = pki.build_certificate(
            subject_cn=cn,
            public_key=key.public_key(),
            not_before=t(nb),
            not_after=t(na),
            issuer_cert=inter,
            issuer_key=int_key,
            sans=sans,
        )
        return pki.cert_pem(cert, inter), pki.key_pem(key)

    docs: list[str] = []
    crt, key = leaf("api.example.com", ["api.example.com", "*.api.example.com"], "2026-09-15", "2026-12-14")
    docs.append(
        secret(
            "istio-system",
            "api-tls-secret",
            {"tls.crt": crt, "tls.key": key},
            comment="90-day certificate; inside its renewal window (last third) on 2026-12-01.",
        )
    )
    crt, key = leaf("secure.example.com", ["secure.example.com"], "2026-10-01", "2027-10-01")
    docs.append(
        secret(
            "istio-system",
            "mtls-credential",
            {"tls.crt": crt, "tls.key": key},
            comment="mTLS server certificate; its client CA is in mtls-credential-cacert.",
        )
    )
    client_ca_key = pki.new_key("ecdsa-p256")
    client_ca = pki.build_certificate(
        subject_cn="Partner Client CA",
        public_key=client_ca_key.public_key(),
        not_before=t("2024-12-20"),
        not_after=t("2026-12-20"),
        issuer_cert=None,
        issuer_key=client_ca_key,
        is_ca=True,
    )
    docs.append(
        secret(
            "istio-system",
            "mtls-credential-cacert",
            {"cacert": pki.cert_pem(client_ca)},
            typ="Opaque",
            comment="Client CA bundle; wins over any CA keys in mtls-credential. Expires 2026-12-20.",
        )
    )
    crt, key = leaf("shop.example.com", ["shop.example.com"], "2026-11-01", "2027-01-30")
    docs.append(
        secret(
            "istio-system",
            "shop-tls",
            {"tls.crt": crt, "tls.key": key},
            comment="Covers shop.example.com but not www.shop.example.com.",
        )
    )
    old_crt, old_key = leaf("legacy.example.org", ["legacy.example.org"], "2024-11-20", "2025-11-20")
    # A legacy RSA CA that still signs with SHA-1, and its 1024-bit leaf.
    legacy_ca_key = pki.new_key("rsa-2048")
    legacy_ca = pki.build_certificate(
        subject_cn="Legacy Corp CA",
        public_key=legacy_ca_key.public_key(),
        not_before=t("2020-01-01"),
        not_after=t("2030-01-01"),
        issuer_cert=None,
        issuer_key=legacy_ca_key,
        is_ca=True,
    )
    legacy_key = pki.new_key("rsa-1024")
    legacy = pki.build_certificate(
        subject_cn="legacy.example.org",
        public_key=legacy_key.public_key(),
        not_before=t("2025-11-20"),
        not_after=t("2026-11-20"),
        issuer_cert=legacy_ca,
        issuer_key=legacy_ca_key,
        sans=["legacy.example.org"],
    )
    legacy = pki.resign_sha1(legacy, legacy_ca_key)  # type: ignore[arg-type]
    crt, key = pki.cert_pem(legacy, legacy_ca), pki.key_pem(legacy_key)
    docs.append(
        secret(
            "istio-system",
            "legacy-tls",
            {"cert": crt, "key": key, "tls.crt": old_crt, "tls.key": old_key},
            typ="Opaque",
            comment="Expired RSA-1024/SHA-1 certificate in cert/key, which shadow an older tls.crt/tls.key.",
        )
    )
    crt, key = leaf("admin.example.com", ["admin.example.com"], "2026-10-01", "2027-01-01")
    docs.append(
        secret(
            "admin",
            "admin-tls",
            {"tls.crt": crt, "tls.key": key},
            comment="In the Gateway's namespace; Istio reads it from istio-system.",
        )
    )
    crt, key = leaf("partner.example.com", ["partner.example.com"], "2026-09-10", "2026-12-09")
    docs.append(
        secret(
            "partner-ingress",
            "partner-tls",
            {"tls.crt": crt, "tls.key": key},
            annotations={
                "cert-manager.io/certificate-name": "partner-tls",
                "cert-manager.io/issuer-name": "letsencrypt",
            },
            comment="Managed by cert-manager: reported, never touched.",
        )
    )
    crt, key = leaf("www.example.net", ["www.example.net"], "2026-11-15", "2027-02-13")
    docs.append(secret("certs", "web-tls", {"tls.crt": crt, "tls.key": key}))
    crt, key = leaf("status.example.net", ["status.example.net"], "2026-11-15", "2027-02-13")
    docs.append(
        secret(
            "certs",
            "status-tls",
            {"tls.crt": crt, "tls.key": key},
            comment="No ReferenceGrant lets Gateway web/web read this one.",
        )
    )
    header = (
        "# Generated by examples/generate.py; certificates for the README demo (evaluate with --at 2026-12-01).\n"
        "# Test material only: these keys protect nothing.\n"
    )
    (OUT / "secrets.yaml").write_text(header + "---\n".join(docs))


if __name__ == "__main__":
    main()
