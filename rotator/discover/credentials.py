"""Finds every credential the Gateways read, following Istio's own resolution rules.

Pure: an ``Inventory`` in, credential specs and findings out. The rules (with their
sources) are in the reference note ``istio-gateway-credentials.md``; the section numbers
in comments point there. Each Gateway flavour has its own module (``istio_gateway``,
``gateway_api``); this one runs them over the inventory, one Gateway's failure never
hiding another's credentials.
"""

from __future__ import annotations

from rotator.discover.collect import Collector, DiscoveryOptions
from rotator.discover.gateway_api import discover_gateway_api
from rotator.discover.istio_gateway import discover_istio
from rotator.discover.routing import virtual_services_by_gateway
from rotator.findings import finding, internal_error
from rotator.model import CredentialSpec, Finding, Inventory, ObjectRef

# Findings about the input as a whole still name an object, as the report contract asks.
INPUT_GATEWAYS = ObjectRef("Input", "", "gateways")
INPUT_WORKLOADS = ObjectRef("Input", "", "workloads")


def discover(inv: Inventory, options: DiscoveryOptions | None = None) -> tuple[list[CredentialSpec], list[Finding]]:
    options = options or DiscoveryOptions()
    col = Collector()
    if not inv.istio_gateways and not inv.kube_gateways:
        col.findings.append(
            finding(
                "no-gateways",
                "the input has no Istio or Gateway API Gateway: no credential was checked. Check the input "
                "(files, namespace, kubeconfig context).",
                INPUT_GATEWAYS,
            )
        )
    if inv.istio_gateways and not inv.workloads_known:
        col.findings.append(
            finding(
                "no-workloads",
                "the input has no Pods, Deployments, StatefulSets or DaemonSets, so gateway workload "
                "namespaces are unknown: each classic Gateway's Secrets are checked in the Gateway's own "
                "namespace. Add the gateway Deployment to the input (or read the live cluster) to check "
                "where Istio really looks.",
                INPUT_WORKLOADS,
            )
        )
    by_gateway = virtual_services_by_gateway(inv)
    for gw in inv.istio_gateways:
        try:
            discover_istio(gw, inv, options, col, by_gateway.get((gw.namespace, gw.name), []))
        except Exception as exc:  # one Gateway's surprise must not hide the others' credentials
            col.findings.append(internal_error("discovery", gw.ref, exc))
    for kgw in inv.kube_gateways:
        try:
            discover_gateway_api(kgw, inv, col)
        except Exception as exc:
            col.findings.append(internal_error("discovery", kgw.ref, exc))
    return col.result(), col.findings
