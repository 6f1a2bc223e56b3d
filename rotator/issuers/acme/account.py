"""The ACME account: its key (kept in a Kubernetes Secret or a file, created on first use
and reused, so a CronJob does not register a new account every pass) and its registration,
with External Account Binding where the CA asks for it."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

from acme import client, errors, messages
from josepy.jwk import JWK

from rotator.config.schema import ACMEIssuerConfig
from rotator.issuers.base import IssuerError
from rotator.kube.api import SECRETS, KubeAPI
from rotator.kube.secret_data import decoded
from rotator.util import pki

ACCOUNT_KEY = "account.key"


def account_key_store(name: str, cfg: ACMEIssuerConfig, api: KubeAPI | None) -> Callable[[], bytes]:
    """The account key: from its Secret or file, created (ECDSA P-256) on first use and reused."""

    def load() -> bytes:
        if cfg.account_key_file:
            path = Path(cfg.account_key_file)
            if path.exists():
                return path.read_bytes()
            pem = pki.key_pem(pki.new_key("ecdsa-p256"))
            path.write_bytes(pem)
            path.chmod(0o600)
            return pem
        if api is None:
            raise IssuerError(f"issuer {name}: the ACME account key needs a cluster (or account_key_file)")
        ref = cfg.account_secret or f"rotator/rotator-acme-{name}"
        ns, _, secret = ref.partition("/")
        obj = api.get(SECRETS, ns, secret)
        held = decoded(obj).get(ACCOUNT_KEY)
        if held:
            return held
        pem = pki.key_pem(pki.new_key("ecdsa-p256"))
        api.create(
            SECRETS,
            ns,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": {
                    "name": secret,
                    "namespace": ns,
                    "labels": {"app.kubernetes.io/managed-by": "rotator"},
                    "annotations": {"rotator.io/acme-directory": cfg.directory},
                },
                "data": {ACCOUNT_KEY: base64.b64encode(pem).decode()},
            },
        )
        return pem

    return load


def register_account(
    acme: client.ClientV2,
    jwk: JWK,
    directory: messages.Directory,
    name: str,
    cfg: ACMEIssuerConfig,
    eab_hmac: Callable[[], str] | None,
    retry: Callable[[Callable[[], Any]], Any],
) -> None:
    """Registers the account key, or adopts the account the CA already has for it."""
    if not cfg.terms_agreed:
        raise IssuerError(f"issuer {name}: set terms_agreed: true to accept the CA's terms of service")
    eab = None
    if cfg.eab_key_id and eab_hmac is not None:
        eab = messages.ExternalAccountBinding.from_data(
            account_public_key=jwk.public_key(),
            kid=cfg.eab_key_id,
            hmac_key=eab_hmac(),
            directory=directory,
        )
    reg = messages.NewRegistration.from_data(
        email=cfg.email, terms_of_service_agreed=True, external_account_binding=eab
    )
    try:
        retry(lambda: acme.new_account(reg))
    except errors.ConflictError as exc:  # the key is already registered: use that account
        acme.net.account = messages.RegistrationResource(uri=exc.location, body=messages.Registration())
    except messages.Error as exc:
        raise IssuerError(f"issuer {name}: account registration refused: {exc}") from exc
