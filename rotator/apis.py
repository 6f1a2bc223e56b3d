"""Names Istio and the Gateway API define, in one place: API groups, the labels that tie
a Gateway to its pods, and the ``-cacert`` suffix istiod looks for (its source, §3.3)."""

from __future__ import annotations

ISTIO_GROUP = "networking.istio.io"
GATEWAY_API_GROUP = "gateway.networking.k8s.io"
# istiod reads ``<name>-cacert`` for a server's client CA before the inline keys of <name>.
CACERT_SUFFIX = "-cacert"
GATEWAY_LABEL_KEYS = ("istio", "istio.io/gateway-name", "gateway.networking.k8s.io/gateway-name")
