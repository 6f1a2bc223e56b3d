"""Certificate issuers: one small interface, a CA key pair and an ACME (RFC 8555) client."""
