"""What discovery accumulates, and the vocabulary both Gateway flavours share.

A Secret referenced by many servers is one credential with many references; the
collector merges them (and their findings) so the report and the renewal see it once."""

from __future__ import annotations

from dataclasses import dataclass, field

from rotator.model import CredentialSpec, Finding, Reference

SECRET_MODES = frozenset({"SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL"})
MUTUAL_MODES = frozenset({"MUTUAL", "OPTIONAL_MUTUAL"})
PASSTHROUGH_MODES = frozenset({"PASSTHROUGH", "AUTO_PASSTHROUGH"})


@dataclass(frozen=True)
class DiscoveryOptions:
    # Mirrors istiod's PILOT_SCOPE_GATEWAY_TO_NAMESPACE (§2.2).
    scope_gateway_to_namespace: bool = False


@dataclass(frozen=True)
class CredentialName:
    scheme: str  # "kubernetes", "kubernetes-gateway", "configmap", "builtin", "sds"
    namespace: str | None
    name: str


def parse_credential_name(value: str) -> CredentialName:
    """Istio's ``credentialName`` spellings (§1.3)."""
    scheme, sep, rest = value.partition("://")
    if not sep:
        scheme, rest = "kubernetes", value
    ns, slash, name = rest.partition("/")
    if not slash:
        return CredentialName(scheme, None, rest)
    return CredentialName(scheme, ns, name)


@dataclass
class Acc:
    references: dict[Reference, None] = field(default_factory=dict)
    findings: dict[Finding, None] = field(default_factory=dict)


@dataclass
class Collector:
    specs: dict[tuple[str, str, str, str], Acc] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    def add(self, kind: str, ns: str, name: str, role: str, ref: Reference, *extra: Finding) -> None:
        acc = self.specs.setdefault((kind, ns, name, role), Acc())
        acc.references.setdefault(ref, None)
        for f in extra:
            acc.findings.setdefault(f, None)

    def result(self) -> list[CredentialSpec]:
        out = []
        for (kind, ns, name, role), acc in sorted(self.specs.items()):
            refs = tuple(sorted(acc.references, key=lambda r: (r.namespace, r.name, r.port or 0, r.listener)))
            out.append(
                CredentialSpec(
                    kind=kind,  # type: ignore[arg-type]
                    namespace=ns,
                    name=name,
                    role=role,  # type: ignore[arg-type]
                    references=refs,
                    findings=tuple(acc.findings),
                )
            )
        return out
