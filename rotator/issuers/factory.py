"""Builds the configured issuers, reading their credentials from Secrets, files or env."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from rotator.config.schema import CAIssuerConfig, Config, SecretKeyRef
from rotator.issuers.base import Issuer, IssuerError
from rotator.issuers.ca import CAIssuer, CAMaterial, load_material
from rotator.kube.api import SECRETS, ApiError, KubeAPI
from rotator.util.timeutil import parse_duration


def read_value(ref: SecretKeyRef, api: KubeAPI | None) -> bytes:
    """The bytes a SecretKeyRef points at; errors name the source, never the value."""
    if ref.file:
        try:
            return Path(ref.file).read_bytes().strip()
        except OSError as exc:
            raise IssuerError(f"cannot read {ref.file}: {exc.strerror or exc}") from exc
    if ref.env:
        value = os.environ.get(ref.env)
        if not value:
            raise IssuerError(f"environment variable {ref.env} is not set")
        return value.strip().encode()
    assert ref.secret and ref.key
    data = secret_data(api, ref.secret)
    if ref.key not in data:
        raise IssuerError(f"Secret {ref.secret} has no key {ref.key!r}")
    return data[ref.key].strip()


def secret_data(api: KubeAPI | None, ref: str) -> dict[str, bytes]:
    if api is None:
        raise IssuerError(f"Secret {ref} needs a cluster connection")
    ns, _, name = ref.partition("/")
    obj = _read_with_retry(api, ns, name, ref)
    if obj is None:
        raise IssuerError(f"Secret {ref} not found")
    return {k: base64.b64decode(v or "") for k, v in (obj.get("data") or {}).items()}


FORBIDDEN_RETRIES = 2  # a 403 can be RBAC still propagating after an install


def _read_with_retry(api: KubeAPI, ns: str, name: str, ref: str) -> dict[str, Any] | None:
    """The issuer's Secret. 5xx and 429 are retried by the API seam; a 403 is retried a
    little too, with back-off. What still fails is an IssuerError carrying the API's words,
    so the renewal is ``renewal-failed`` (and backs off) rather than a crash."""
    for attempt in range(FORBIDDEN_RETRIES + 1):
        try:
            return api.get(SECRETS, ns, name)
        except ApiError as exc:
            if exc.status == 403 and attempt < FORBIDDEN_RETRIES:
                api.sleep(api.retry.delay(attempt))
                continue
            raise IssuerError(f"cannot read Secret {ref}: {exc}") from exc
    return None  # pragma: no cover - the loop always returns or raises


def _ca_loader(name: str, cfg: CAIssuerConfig, api: KubeAPI | None) -> Callable[[], CAMaterial]:
    def load() -> CAMaterial:
        if cfg.secret:
            data = secret_data(api, cfg.secret)
            if "tls.crt" not in data or "tls.key" not in data:
                raise IssuerError(f"issuer {name}: Secret {cfg.secret} needs tls.crt and tls.key")
            return load_material(data["tls.crt"], data["tls.key"], f"Secret {cfg.secret}")
        assert cfg.cert_file and cfg.key_file
        try:
            cert, key = Path(cfg.cert_file).read_bytes(), Path(cfg.key_file).read_bytes()
        except OSError as exc:
            raise IssuerError(f"issuer {name}: {exc.filename}: {exc.strerror}") from exc
        return load_material(cert, key, cfg.cert_file)

    return load


def build_issuers(config: Config, api: KubeAPI | None, clock: Callable[[], datetime]) -> dict[str, Issuer]:
    """Every configured issuer, constructed lazily: nothing is read until it is used."""
    out: dict[str, Issuer] = {}
    journal = None
    if api is not None:
        from rotator.issuers.journal import ChallengeJournal
        from rotator.kube.state import ConfigMapState

        store = ConfigMapState(api, config.renewal.state_namespace, config.renewal.state_configmap, "challenges.json")
        journal = ChallengeJournal(store, clock)
    for name, cfg in config.issuers.items():
        if isinstance(cfg, CAIssuerConfig):
            out[name] = CAIssuer(
                name,
                _ca_loader(name, cfg, api),
                parse_duration(cfg.validity),
                clock,
                parse_duration(cfg.warn_before),
                cfg.client_auth,
            )
        else:
            from rotator.issuers.acme_issuer import ACMEIssuer

            out[name] = ACMEIssuer.from_config(name, cfg, api, clock, journal)
    return out
