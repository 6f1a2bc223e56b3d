"""The Kubernetes seam: the API client with bounded retries, reads, Lease election, Events and
rotator's own state ConfigMap. Decisions are made in the stages, not here.
"""
