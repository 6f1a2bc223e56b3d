"""The live cluster into an ``Inventory``: read the routing, discover which credentials it
references, read exactly those.

The Kubernetes seam (``kube/reader.py``) only fetches; which Secrets matter is
discovery's decision, made here over the routing objects. The pipeline then discovers
once more over the complete inventory, because one of Istio's rules depends on which
Secrets exist (a ``<name>-cacert`` Secret wins over ``<name>``'s inline CA, §3.3), so
this first look fetches both names and leaves the choice to the pipeline.
"""

from __future__ import annotations

from collections import defaultdict

from rotator.apis import CACERT_SUFFIX, ISTIO_GROUP
from rotator.discover.collect import DiscoveryOptions
from rotator.discover.credentials import discover
from rotator.kube.api import KubeAPI
from rotator.kube.reader import ReadResult, Wanted, read_credentials, read_routing
from rotator.model import CredentialSpec


def secrets_to_read(specs: list[CredentialSpec]) -> Wanted:
    """What to fetch for ``specs``: their Secrets and ConfigMaps, ``<name>-cacert`` beside a
    client CA named ``<name>``, and where to look for a server Secret that is missing."""
    secrets: dict[str, set[str]] = defaultdict(set)
    maps: set[tuple[str, str]] = set()
    fallbacks: list[tuple[str, str, tuple[str, ...]]] = []
    for spec in specs:
        if spec.kind == "ConfigMap":
            maps.add((spec.namespace, spec.name))
            continue
        secrets[spec.namespace].add(spec.name)
        if spec.role == "client-ca" and not spec.name.endswith(CACERT_SUFFIX):
            # discovery chose <name> because <name>-cacert was not known yet; fetch both
            secrets[spec.namespace].add(spec.name + CACERT_SUFFIX)
        if spec.role == "server":
            # a classic Gateway's Secret is often created next to the Gateway resource
            elsewhere = tuple(
                sorted(
                    {r.namespace for r in spec.references if r.group == ISTIO_GROUP and r.namespace != spec.namespace}
                )
            )
            if elsewhere:
                fallbacks.append((spec.namespace, spec.name, elsewhere))
    return Wanted({ns: frozenset(names) for ns, names in secrets.items()}, frozenset(maps), tuple(fallbacks))


def read_cluster(api: KubeAPI, options: DiscoveryOptions | None = None, page_size: int = 500) -> ReadResult:
    routing = read_routing(api, page_size)
    specs, _ = discover(routing.inventory, options or DiscoveryOptions())
    return read_credentials(api, routing, secrets_to_read(specs), page_size)
