"""Builds the configured issuers from config; their credentials are read lazily, on first use."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from rotator.config.schema import CAIssuerConfig, Config
from rotator.issuers.base import Issuer, IssuerError
from rotator.issuers.ca import CAIssuer, CAMaterial, load_material
from rotator.kube.api import KubeAPI
from rotator.kube.secret_refs import SecretRefError, secret_data
from rotator.util.timeutil import parse_duration


def _ca_loader(name: str, cfg: CAIssuerConfig, api: KubeAPI | None) -> Callable[[], CAMaterial]:
    def load() -> CAMaterial:
        if cfg.secret:
            try:
                data = secret_data(api, cfg.secret)
            except SecretRefError as exc:
                raise IssuerError(str(exc)) from exc
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
        from rotator.issuers.acme.journal import ChallengeJournal
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
            from rotator.issuers.acme.issuer import ACMEIssuer

            out[name] = ACMEIssuer.from_config(name, cfg, api, clock, journal)
    return out
