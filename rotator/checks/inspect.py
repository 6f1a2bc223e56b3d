"""Looks inside each credential: can Istio load it, and will clients accept it?

Pure: a ``CredentialSpec`` plus the inventory and ``now`` in, a ``Credential`` out.
Finds the bytes where Istio looks (``lookup``), parses them once, and runs the role's
named chain: ``server.SERVER_CHECKS`` or ``client_ca.CLIENT_CA_CHECKS``. Renewal timing
is the policy's job; this stage reports facts.
"""

from __future__ import annotations

from datetime import datetime

from rotator.checks import client_ca, server
from rotator.checks.lookup import lookup
from rotator.checks.options import InspectOptions
from rotator.model import Credential, CredentialSpec, Finding, Inventory, ObjectRef

__all__ = ["InspectOptions", "inspect"]


def inspect(spec: CredentialSpec, inv: Inventory, now: datetime, options: InspectOptions) -> Credential:
    obj = ObjectRef(spec.kind, spec.namespace, spec.name)
    data, looked = lookup(spec, inv, obj)
    found: list[Finding] = [*spec.findings, *looked]
    if data is None:
        # unreadable (malformed, or refused by RBAC) is not "missing": it exists, and
        # rotator must not plan to create it
        unreadable = any(f.code in ("invalid-manifest", "access-denied") for f in found)
        return Credential(spec, None, "invalid" if unreadable else "missing", tuple(found))
    if spec.role == "server":
        return server.inspect_server(server.material(spec, obj, data, now, options), found)
    return client_ca.inspect_client_ca(client_ca.material(spec, obj, data, inv, now, options), found)
