"""The ACME issuer (RFC 8555): the order flow, its client quirks, ARI, the account, and the
two challenge solvers (DNS-01 over RFC 2136, HTTP-01 through the gateway) with the journal
that makes their leftovers recoverable."""
