"""The wall before every write: a candidate certificate must pass the checks
``rotator check`` applies, for the references it will serve, before it may be written.

The wall is a type. ``validate`` is the only way to get a ``Validated``, and the writer
writes nothing else, so a certificate is inspected once per issuance (not once more per
copy) and no path can reach a Secret with material that skipped the checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from rotator import findings
from rotator.apply.secret_bodies import TLS_FAMILY, Material
from rotator.checks.inspect import InspectOptions, inspect
from rotator.model import CredentialSpec, Finding, Inventory, Reference, Secret

_MINT = object()  # only this module constructs Validated


@dataclass(frozen=True)
class Validated:
    """Material that passed the checks for the references it will serve."""

    material: Material
    _mint: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._mint is not _MINT:
            raise TypeError("Validated is made by rotator.apply.validate.validate only")


@dataclass(frozen=True)
class Rejected:
    """Why a candidate may not be written: the blocking findings, and one line of them."""

    findings: tuple[Finding, ...]

    @property
    def note(self) -> str:
        return "; ".join(f"{f.code}: {f.message}" for f in self.findings)


def validate(
    material: Material, references: Sequence[Reference], now: datetime, family: tuple[str, str] = TLS_FAMILY
) -> Validated | Rejected:
    """The checks ``rotator check`` makes, run on the candidate before it is written; with
    signatures verified, not just key identifiers matched."""
    spec = CredentialSpec("Secret", "candidate", "candidate", "server", tuple(references))
    candidate = Secret(
        "candidate", "candidate", "kubernetes.io/tls", {family[0]: material.chain_pem, family[1]: material.key_pem}
    )
    cred = inspect(spec, Inventory(secrets=(candidate,)), now, InspectOptions(verify_signatures=True))
    problems = tuple(f for f in cred.findings if f.code in findings.BLOCKS_WRITE)
    if problems:
        return Rejected(problems)
    return Validated(material, _MINT)
