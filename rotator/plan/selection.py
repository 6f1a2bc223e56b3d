"""Which credentials a pass is about: kubectl's ``-n``, ``-A`` and ``-l``, and one Secret
for ``rotator status`` / ``rotator renew``. Pure: a filter over a planned result.

Discovery still reads every Gateway (a Gateway in any namespace may reference a Secret
in the selected one); only the credentials, and the findings about objects, are
narrowed. A narrowed pass renews only what it shows, and alerts escalate-only: an alert
about a credential it did not look at is not its to resolve.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rotator.model import CheckResult, Credential, Inventory


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "exists", "!exists"
    value: str = ""


def parse_selector(text: str) -> tuple[Requirement, ...]:
    """Equality-based label selectors as kubectl takes them: ``a=b,c!=d,e,!f``."""
    out: list[Requirement] = []
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        if "!=" in part:
            k, _, v = part.partition("!=")
            out.append(Requirement(_key(k, text), "!=", v.strip()))
        elif "==" in part or "=" in part:
            k, _, v = part.partition("==") if "==" in part else part.partition("=")
            out.append(Requirement(_key(k, text), "=", v.strip()))
        elif part.startswith("!"):
            out.append(Requirement(_key(part[1:], text), "!exists"))
        elif " in " in part or "(" in part:
            raise ValueError(f"selector {text!r}: set-based requirements (in, notin) are not supported; use k=v")
        else:
            out.append(Requirement(_key(part, text), "exists"))
    return tuple(out)


def _key(k: str, text: str) -> str:
    key = k.strip()
    if not key or any(ch.isspace() for ch in key):
        raise ValueError(f"selector {text!r}: {k!r} is not a label key")
    return key


def matches(labels: dict[str, str], requirements: tuple[Requirement, ...]) -> bool:
    for r in requirements:
        have = labels.get(r.key)
        if r.op == "=" and have != r.value:
            return False
        if r.op == "!=" and have == r.value:
            return False
        if r.op == "exists" and have is None:
            return False
        if r.op == "!exists" and have is not None:
            return False
    return True


@dataclass(frozen=True)
class Selection:
    namespace: str | None = None  # -n; None: all (-A)
    selector: tuple[Requirement, ...] = ()  # -l, on the Secret's labels
    secret: tuple[str, str] | None = None  # rotator status / renew NAMESPACE/NAME

    @property
    def narrows(self) -> bool:
        return self.namespace is not None or bool(self.selector) or self.secret is not None

    def wants(self, cred: Credential, inv: Inventory) -> bool:
        spec = cred.spec
        if self.secret is not None and (spec.namespace, spec.name) != self.secret:
            return False
        if self.namespace is not None and spec.namespace != self.namespace:
            return False
        if self.selector:
            secret = inv.secret(spec.namespace, spec.name) if spec.kind == "Secret" else None
            if secret is None or not matches(secret.labels, self.selector):
                return False
        return True


ALL = Selection()


def narrow(result: CheckResult, inv: Inventory, selection: Selection) -> CheckResult:
    if not selection.narrows:
        return result
    from rotator.plan.copies import copy_key

    # A Secret's copies in other gateway namespaces carry one certificate: selecting one
    # selects them all, or a renewal would leave them serving different certificates.
    keys = {copy_key(c.spec) for c in result.credentials if selection.wants(c, inv)} - {None}
    credentials = tuple(c for c in result.credentials if selection.wants(c, inv) or copy_key(c.spec) in keys)
    ns = selection.secret[0] if selection.secret is not None else selection.namespace
    findings = tuple(f for f in result.findings if ns is None or f.object is None or f.object.namespace in ("", ns))
    return replace(result, credentials=credentials, findings=findings)
