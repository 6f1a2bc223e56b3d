"""rotator: certificate discovery, inspection and rotation for Istio ingress gateways."""

__version__ = "0.1.0"
