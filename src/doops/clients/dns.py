"""DNS questions to a zone's authoritative name servers (dnspython), never through a caching resolver.

Why: a DNS cutover is done when the name servers DigitalOcean runs answer the new value; a caching resolver
would show its cached copy for up to the record's TTL and hide both the change and its timing. Each server is
asked on its own (UDP, again over TCP when the answer is truncated), with recursion not requested, and its
answer is kept per server with TTLs and the AA flag, so an operation can say which server lags.

Answers come back as ``Answer`` values; a server that does not answer (timeout, refused, unresolvable host
name, malformed reply) raises ``DnsUnreachable`` (an unknown state, exit 3 when it ends a command).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from doops.errors import UnknownStateError

DEFAULT_TIMEOUT = 2.0  # seconds per query: an authoritative server answers in milliseconds or not at all


class DnsUnreachable(UnknownStateError):
    """A name server gave no usable answer: timed out, refused the connection, or could not be found."""


@dataclass(frozen=True)
class Rec:
    """One resource record of an answer: owner and value are lower-case names with the final dot where they
    are names (CNAME, NS targets, the SOA's mname); other values as dnspython writes them."""

    name: str
    type: str
    ttl: int
    value: str


@dataclass
class Answer:
    """One server's answer to one question."""

    server: str  # host:port as configured
    qname: str
    qtype: str
    rcode: str = "NOERROR"
    authoritative: bool = False  # the AA flag
    answer: list[Rec] = field(default_factory=list)
    authority: list[Rec] = field(default_factory=list)
    truncated_retried: bool = False  # the UDP answer was truncated and TCP was used

    def records(self, rtype: str | None = None, name: str | None = None) -> list[Rec]:
        """Answer records of ``rtype`` (default: the question's type) owned by ``name`` (default: any)."""
        want = (rtype or self.qtype).upper()
        owner = fqdn(name) if name else None
        return [r for r in self.answer if r.type == want and (owner is None or r.name == owner)]

    def values(self, rtype: str | None = None, name: str | None = None) -> list[str]:
        return sorted(r.value for r in self.records(rtype, name))

    def ttl(self, rtype: str | None = None) -> int | None:
        recs = self.records(rtype)
        return min(r.ttl for r in recs) if recs else None


# (host, port, qname, qtype) -> Answer; operations take one so that tests inject a fake.
Lookup = Callable[[str, int, str, str], Answer]


def fqdn(name: str) -> str:
    """Lower case with the final dot: the one form names are compared in."""
    name = name.strip().lower()
    return name if name.endswith(".") else name + "."


def server_label(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _address(host: str, port: int, timeout: float) -> str:
    """An IP address for ``host``: name servers are configured by name (ns1.digitalocean.com) or address."""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise DnsUnreachable(f"name server {host} cannot be found: {exc.strerror or exc}",
                             hint="check dns.nameservers in the config") from None
    return str(infos[0][4][0])


def _records(rrsets: list[object]) -> list[Rec]:
    import dns.rdatatype

    out: list[Rec] = []
    for rrset in rrsets:
        name = str(rrset.name).lower()  # type: ignore[attr-defined]
        rtype = dns.rdatatype.to_text(rrset.rdtype)  # type: ignore[attr-defined]
        for rd in rrset:  # type: ignore[attr-defined]
            value = rd.to_text()
            if rtype in ("CNAME", "NS", "PTR", "DNAME"):
                value = fqdn(value)
            elif rtype == "SOA":
                value = fqdn(str(rd.mname)) + " " + fqdn(str(rd.rname)) + f" {rd.serial} {rd.refresh} " \
                    f"{rd.retry} {rd.expire} {rd.minimum}"
            out.append(Rec(name, rtype, int(rrset.ttl), value))  # type: ignore[attr-defined]
    return out


def query(host: str, port: int, qname: str, qtype: str, timeout: float = DEFAULT_TIMEOUT) -> Answer:
    """Ask ``host:port`` one question, recursion not desired; TCP when the UDP answer is truncated."""
    import dns.exception
    import dns.flags
    import dns.message
    import dns.query
    import dns.rcode

    label = server_label(host, port)
    address = _address(host, port, timeout)
    q = dns.message.make_query(fqdn(qname), qtype.upper())
    q.flags &= ~dns.flags.RD  # an authoritative server answers from its zone; ask nothing else of it
    retried = False
    try:
        resp = dns.query.udp(q, address, port=port, timeout=timeout)
        if resp.flags & dns.flags.TC:
            resp = dns.query.tcp(q, address, port=port, timeout=timeout)
            retried = True
    except dns.exception.Timeout:
        raise DnsUnreachable(f"name server {label} did not answer {qname} {qtype} within {timeout:g}s") from None
    except (OSError, EOFError) as exc:
        raise DnsUnreachable(f"name server {label}: {type(exc).__name__}: {exc}") from None
    except dns.exception.DNSException as exc:
        raise DnsUnreachable(f"name server {label} sent a malformed answer: {exc}") from None
    return Answer(server=label, qname=fqdn(qname), qtype=qtype.upper(), rcode=dns.rcode.to_text(resp.rcode()),
                  authoritative=bool(resp.flags & dns.flags.AA), answer=_records(list(resp.answer)),
                  authority=_records(list(resp.authority)), truncated_retried=retried)


def system_addresses(host: str) -> list[str]:
    """Addresses of ``host`` through the system resolver: for a target outside the zones the configured
    servers are authoritative for (in production, ``<app>.ondigitalocean.app``)."""
    try:
        infos = socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise DnsUnreachable(f"{host} does not resolve ({exc.strerror or exc})") from None
    return sorted({str(i[4][0]) for i in infos})
