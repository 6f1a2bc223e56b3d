"""Stage 3, plan: inspected credentials + config + facts → one action per credential, with its reason.

The policy is pure; `facts.py` is the one module here that asks the edges (issuer CA
certificates, ARI windows), and it hands the answers to the policy as plain data.
"""
