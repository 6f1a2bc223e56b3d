"""Stage 4, apply: order a certificate, validate it, write it to every copy of the Secret with
optimistic concurrency, keep the previous version, and check that the gateway serves it.
"""
