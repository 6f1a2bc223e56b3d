"""Finds a credential's bytes where Istio looks for them, or says why there are none.

Missing, in the wrong namespace, of a type istiod never reads, unreadable (malformed, or
refused by RBAC): each is a finding naming the Gateways that reference the credential.
"""

from __future__ import annotations

from rotator.findings import finding
from rotator.model import CredentialSpec, Finding, Inventory, ObjectRef

# Secret types istiod's informer never sees (§2.7).
INVISIBLE_TYPES = frozenset({"helm.sh/release.v1", "kubernetes.io/service-account-token"})


def lookup(spec: CredentialSpec, inv: Inventory, obj: ObjectRef) -> tuple[dict[str, bytes] | None, list[Finding]]:
    """The data Istio would read for ``spec`` (None when it reads nothing), with findings."""
    found: list[Finding] = []
    gateways = ", ".join(sorted({f"{r.namespace}/{r.name}" for r in spec.references}))
    unreadable = inv.unreadable.get((spec.kind, spec.namespace, spec.name))
    if unreadable is not None:
        code, why = unreadable
        return None, [finding(code, f"{obj} could not be read: {why}", obj)]
    if spec.kind == "ConfigMap":
        cm = inv.config_map(spec.namespace, spec.name)
        if cm is None:
            message = (
                f"ConfigMap {spec.namespace}/{spec.name} with the client CA for Gateway {gateways} does not exist."
            )
            return None, [finding("client-ca-missing", message, obj)]
        return cm.data, found
    secret = inv.secret(spec.namespace, spec.name)
    if secret is not None and secret.type in INVISIBLE_TYPES:
        message = f"Secret {spec.namespace}/{spec.name} has type {secret.type}, which istiod never reads."
        return None, [finding("secret-not-found", message, obj)]
    if secret is not None:
        for key in secret.invalid_base64:
            found.append(
                finding(
                    "invalid-pem",
                    f"{obj} key {key!r} is not valid base64, so nothing can be read from it (the API server "
                    "refuses such a Secret: was the manifest edited by hand? put PEM under stringData, or "
                    "base64-encode it)",
                    obj,
                )
            )
        return secret.data, found
    if spec.role == "client-ca":
        message = (
            f"no Secret {spec.namespace}/{spec.name} holds the client CA (cacert or ca.crt) that the "
            f"{spec.references[0].mode} server of Gateway {gateways} requires; handshakes will fail."
        )
        return None, [finding("client-ca-missing", message, obj)]
    elsewhere = sorted(s.namespace for s in inv.secrets_named(spec.name) if s.namespace != spec.namespace)
    if elsewhere:
        message = (
            f"Secret {spec.name} exists in {', '.join(elsewhere)} but Gateway {gateways} runs its gateway "
            f"workload in {spec.namespace!r}, the only namespace Istio reads it from. Create it in "
            f"{spec.namespace!r}."
        )
        return None, [finding("secret-wrong-namespace", message, obj)]
    message = f"Secret {spec.namespace}/{spec.name} referenced by Gateway {gateways} does not exist."
    return None, [finding("secret-not-found", message, obj)]
