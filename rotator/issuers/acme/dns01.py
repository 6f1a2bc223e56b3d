"""DNS-01 through RFC 2136 dynamic updates with TSIG (dnspython).

A name and its wildcard validate at the same TXT name with different values, so records
are added (never replaced) and deleted by value; presence is confirmed by asking the
authoritative server itself, not a resolver cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsigkeyring
import dns.update

from rotator.issuers.base import IssuerError

Record = tuple[str, str]  # (fqdn of the TXT record, value)


def split_hostport(text: str, default_port: int = 53) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or "]" in port:
        return text.strip("[]"), default_port
    return host.strip("[]"), int(port)


class RFC2136Solver:
    def __init__(
        self,
        nameserver: str,
        key_name: str,
        secret_b64: str,
        algorithm: str = "hmac-sha256",
        zone: str | None = None,
        timeout: float = 120.0,
        poll: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host, self.port = split_hostport(nameserver)
        self.keyring = dns.tsigkeyring.from_text({key_name: secret_b64})
        self.key_name = dns.name.from_text(key_name)
        self.algorithm = dns.name.from_text(algorithm)
        self.zone = dns.name.from_text(zone) if zone else None
        self.timeout = timeout
        self.poll = poll
        self.sleep = sleep
        self.monotonic = monotonic

    def _zone_for(self, fqdn: str) -> dns.name.Name:
        if self.zone is not None:
            return self.zone
        name = dns.name.from_text(fqdn)
        while len(name.labels) > 1:
            q = dns.message.make_query(name, dns.rdatatype.SOA)
            try:
                r = dns.query.udp(q, self.host, port=self.port, timeout=2)
            except (dns.exception.DNSException, OSError):
                break
            if any(rr.rdtype == dns.rdatatype.SOA and rr.name == name for rr in r.answer):
                return name
            name = name.parent()
        raise IssuerError(f"no zone found for {fqdn} at {self.host}:{self.port}; set dns01.zone")

    def _send(self, zone: dns.name.Name, build: Callable[[dns.update.Update], None], what: str) -> None:
        update = dns.update.Update(zone, keyring=self.keyring, keyname=self.key_name, keyalgorithm=self.algorithm)
        build(update)
        try:
            response = dns.query.tcp(update, self.host, port=self.port, timeout=10)
        except (dns.exception.DNSException, OSError) as exc:
            raise IssuerError(f"DNS update ({what}) to {self.host}:{self.port} failed: {exc}") from exc
        if response.rcode() != dns.rcode.NOERROR:
            raise IssuerError(
                f"DNS update ({what}) refused by {self.host}:{self.port}: {dns.rcode.to_text(response.rcode())}"
            )

    def _by_zone(self, records: Iterable[Record]) -> dict[dns.name.Name, list[Record]]:
        out: dict[dns.name.Name, list[Record]] = {}
        for fqdn, value in records:
            out.setdefault(self._zone_for(fqdn), []).append((fqdn, value))
        return out

    def present(self, records: list[Record]) -> None:
        """Add every TXT value in one update per zone (a name and its wildcard share the name)."""
        for zone, recs in self._by_zone(records).items():

            def add(u: dns.update.Update, recs: list[Record] = recs) -> None:
                for fqdn, value in recs:
                    u.add(dns.name.from_text(fqdn), 60, dns.rdatatype.TXT, f'"{value}"')

            self._send(zone, add, "add")

    def wait(self, records: list[Record]) -> None:
        """Until the authoritative server answers every value; bounded."""
        deadline = self.monotonic() + self.timeout
        pending = set(records)
        while pending:
            for fqdn, value in list(pending):
                if value in self._txt(fqdn):
                    pending.discard((fqdn, value))
            if not pending:
                return
            if self.monotonic() >= deadline:
                names = ", ".join(sorted({f for f, _ in pending}))
                raise IssuerError(f"TXT records for {names} not visible at {self.host}:{self.port} in time")
            self.sleep(self.poll)

    def _txt(self, fqdn: str) -> set[str]:
        q = dns.message.make_query(fqdn, dns.rdatatype.TXT)
        try:
            r = dns.query.udp(q, self.host, port=self.port, timeout=0.5)
        except (dns.exception.DNSException, OSError):
            return set()
        return {
            b"".join(rd.strings).decode() for rrset in r.answer for rd in rrset if rrset.rdtype == dns.rdatatype.TXT
        }

    def cleanup(self, records: list[Record]) -> None:
        """Delete exactly our values; other TXT values at the same name stay."""
        for zone, recs in self._by_zone(records).items():

            def delete(u: dns.update.Update, recs: list[Record] = recs) -> None:
                for fqdn, value in recs:
                    u.delete(dns.name.from_text(fqdn), dns.rdatatype.TXT, f'"{value}"')

            self._send(zone, delete, "delete")
