"""Stage 1, discover: manifests or the cluster's objects → a typed inventory → the credentials
the Gateways reference, plus the wiring findings around them (selectors, VirtualService
binding, subsets).
"""
