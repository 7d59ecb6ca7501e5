"""The sandbox's authoritative DNS server: every domain of the API twin, answered from its state at query time.

Why: ``doops failover app`` and ``doops dns check`` verify a DNS change where clients get it, at the name servers
that are authoritative for the zone, not through a caching resolver. The twin's records API and this server
read the same records (under the world's lock), so a record changed through the API is answered at once, with
its real TTL.

Wire format, UDP and TCP servers: dnslib (``dnslib.server.DNSServer``), both on one free port of 127.0.0.1.
What it answers, like an authoritative server (RFC 1034 4.3.2):

- a name in a twin domain: its records of the asked type with their TTLs, the AA flag set; the SOA (primary
  name server, ``hostmaster.<domain>``, the domain's serial, DigitalOcean's timers, minimum = the domain's TTL)
  and NS records at the apex; a CNAME owner answers its CNAME for any other type, followed by the target's
  records when the target is in the same zone; a name with no records of that type: NOERROR and the SOA in the
  authority section (NODATA); an unknown name: NXDOMAIN with the SOA;
- ``ondigitalocean.app`` (a sandbox convenience: DigitalOcean serves it, not the account's domains): each
  app's default ingress host (``<app>-<id5>.ondigitalocean.app``, which an ``app:NAME`` record points at)
  answers A 127.0.0.1 (TTL 60), where the app's live server listens (its port is in the app's ``live_url``);
- any other name: REFUSED, no AA (this server is authoritative for nothing else and does not recurse).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

from dnslib import AAAA, CAA, CNAME, MX, NS, QTYPE, RCODE, RR, SOA, SRV, TXT, A, DNSLabel, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSServer

from doops.sandbox.api.state import World
from doops.sandbox.api.state_domains import target_fqdn

log = logging.getLogger(__name__)

APP_ZONE = "ondigitalocean.app"
APP_TTL = 60
APP_ADDRESS = "127.0.0.1"
NAME_SERVERS = ("ns1.digitalocean.com", "ns2.digitalocean.com", "ns3.digitalocean.com")
SOA_TIMERS = (10800, 3600, 604800)  # refresh, retry, expire: DigitalOcean's (the minimum is the domain's TTL)
MAX_CNAME_CHAIN = 8
UDP_PAYLOAD = 512  # a client without EDNS takes at most this over UDP; a longer answer is truncated (TC)


def _txt_chunks(data: str) -> list[bytes]:
    raw = data.encode()
    return [raw[i:i + 255] for i in range(0, max(len(raw), 1), 255)]


def rdata(r: dict[str, Any], origin: str) -> Any:
    """The dnslib RDATA of a twin record (None for a type this server does not answer)."""
    rtype, data = str(r["type"]).upper(), str(r["data"])
    if rtype == "A":
        return A(data)
    if rtype == "AAAA":
        return AAAA(data)
    if rtype == "CNAME":
        return CNAME(target_fqdn(data, origin))
    if rtype == "NS":
        return NS(target_fqdn(data, origin))
    if rtype == "MX":
        return MX(target_fqdn(data, origin), int(r.get("priority") or 0))
    if rtype == "SRV":
        return SRV(int(r.get("priority") or 0), int(r.get("weight") or 0), int(r.get("port") or 0),
                   target_fqdn(data, origin))
    if rtype == "TXT":
        return TXT(_txt_chunks(data))
    if rtype == "CAA":
        return CAA(int(r.get("flags") or 0), str(r.get("tag") or "issue"), data)
    return None


class _Zone:
    """One zone as answered now: (owner, type, ttl, rdata) entries plus its SOA."""

    def __init__(self, origin: str, entries: list[tuple[str, str, int, Any]], soa: tuple[int, Any]) -> None:
        self.origin = origin.rstrip(".").lower() + "."
        self.entries = entries  # owner names are lower-case FQDNs with the final dot
        self.soa_ttl, self.soa = soa

    def owners(self) -> set[str]:
        return {owner for owner, _, _, _ in self.entries}

    def at(self, owner: str, rtype: str | None = None) -> list[tuple[str, str, int, Any]]:
        return [e for e in self.entries if e[0] == owner and (rtype is None or e[1] == rtype)]

    def soa_rr(self) -> RR:
        return RR(self.origin, QTYPE.SOA, ttl=self.soa_ttl, rdata=self.soa)

    def contains(self, name: str) -> bool:
        return name == self.origin or name.endswith("." + self.origin)


def _soa(origin: str, serial: int, minimum: int, mname: str) -> Any:
    refresh, retry, expire = SOA_TIMERS
    return SOA(mname, f"hostmaster.{origin}", (serial & 0xFFFFFFFF, refresh, retry, expire, minimum))


def domain_zone(d: dict[str, Any]) -> _Zone:
    """A twin domain as a zone (the records list's SOA entry gives the SOA's TTL, as on DigitalOcean)."""
    origin = str(d["name"]).rstrip(".").lower() + "."
    entries: list[tuple[str, str, int, Any]] = []
    soa_ttl = int(d["ttl"])
    apex_ns: list[str] = []
    for r in d["records"]:
        rtype = str(r["type"]).upper()
        if rtype == "SOA":
            soa_ttl = int(r["ttl"])
            continue
        rd = rdata(r, origin)
        if rd is None:
            continue
        name = str(r["name"])
        owner = origin if name in ("@", "") else (name if name.endswith(".") else f"{name}.{origin}")
        entries.append((owner.lower(), rtype, int(r["ttl"]), rd))
        if rtype == "NS" and owner.lower() == origin:
            apex_ns.append(str(rd.label))
    mname = apex_ns[0] if apex_ns else NAME_SERVERS[0] + "."  # the primary: the first name server, as the zone file
    return _Zone(origin, entries, (soa_ttl, _soa(origin, int(d.get("serial", 1)), int(d["ttl"]), mname)))


def app_zone(world: World) -> _Zone:
    """``ondigitalocean.app``: A 127.0.0.1 for every app's default ingress host."""
    origin = APP_ZONE + "."
    entries: list[tuple[str, str, int, Any]] = [(origin, "NS", 1800, NS(ns + ".")) for ns in NAME_SERVERS]
    entries += [(f"{app.hostname}.".lower(), "A", APP_TTL, A(APP_ADDRESS)) for app in world.apps.values()]
    return _Zone(origin, entries, (1800, _soa(origin, 1, 1800, NAME_SERVERS[0] + ".")))


class TwinResolver(BaseResolver):
    """Answers from the world's domains (and apps), read under the world's lock at each query."""

    def __init__(self, world: World) -> None:
        self.world = world

    def _zone_for(self, name: str) -> _Zone | None:
        with self.world.lock:
            best: dict[str, Any] | None = None
            for d in self.world.domains.values():
                origin = str(d["name"]).rstrip(".").lower() + "."
                if (name == origin or name.endswith("." + origin)) and (
                        best is None or len(origin) > len(str(best["name"]))):
                    best = d
            if best is not None:
                return domain_zone(best)
            apps = app_zone(self.world)
            return apps if apps.contains(name) else None

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply(ra=0, aa=0)  # QR set, same id and question, RD copied; no recursion offered
        if request.header.opcode != 0 or len(request.questions) != 1:
            reply.header.rcode = RCODE.NOTIMP if request.header.opcode != 0 else RCODE.FORMERR
            return reply
        q = request.q
        name = str(q.qname).lower()
        name = name if name.endswith(".") else name + "."
        zone = self._zone_for(name) if q.qclass == 1 else None  # class IN only
        if zone is None:
            reply.header.rcode = RCODE.REFUSED
            return reply
        reply.header.aa = 1
        qtype = QTYPE.get(q.qtype)
        for rr in self._answer(zone, name, str(qtype)):
            reply.add_answer(rr)
        if not reply.rr:
            owners = zone.owners()
            exists = name == zone.origin or any(o == name or o.endswith("." + name) for o in owners)
            if not exists:
                reply.header.rcode = RCODE.NXDOMAIN
            reply.add_auth(zone.soa_rr())
        elif reply.rr[-1].rtype == QTYPE.CNAME and str(qtype) != "CNAME":
            # the chain ended at a name of this zone that does not exist or has no such records
            target = str(reply.rr[-1].rdata.label).lower()
            if zone.contains(target):
                if not any(o == target or o.endswith("." + target) for o in zone.owners()):
                    reply.header.rcode = RCODE.NXDOMAIN
                reply.add_auth(zone.soa_rr())
        return reply

    def _answer(self, zone: _Zone, name: str, qtype: str) -> Iterator[RR]:
        seen: set[str] = set()
        for _ in range(MAX_CNAME_CHAIN):
            if name in seen or not zone.contains(name):
                return
            seen.add(name)
            if qtype in ("SOA", "ANY") and name == zone.origin:
                yield zone.soa_rr()
            matches = zone.at(name) if qtype == "ANY" else zone.at(name, qtype)
            for owner, rtype, ttl, rd in matches:
                yield RR(owner, getattr(QTYPE, rtype), ttl=ttl, rdata=rd)
            if matches or qtype == "CNAME":
                return
            cname = zone.at(name, "CNAME")
            if not cname:
                return
            owner, _, ttl, rd = cname[0]
            yield RR(owner, QTYPE.CNAME, ttl=ttl, rdata=rd)
            name = str(rd.label).lower()


class _Handler(DNSHandler):
    udplen = UDP_PAYLOAD


class _QuietLogger:
    """dnslib's logger hooks, sent to this module's debug log instead of stdout."""

    def __getattr__(self, name: str) -> Any:
        def hook(handler: Any, *args: Any) -> None:
            if name == "log_error":
                log.debug("dns: %s", args[0] if args else "")

        return hook


class DnsServer:
    """The authoritative server on 127.0.0.1, UDP and TCP on the same free port."""

    def __init__(self, world: World, host: str = "127.0.0.1") -> None:
        self.world = world
        self.host = host
        self.port: int | None = None
        self._servers: list[Any] = []

    @property
    def address(self) -> str:
        """``host:port``, as the doops config's ``dns.nameservers`` names it."""
        if self.port is None:
            raise RuntimeError("DNS server not started")
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return bool(self._servers)

    def start(self, attempts: int = 20) -> DnsServer:
        """Bind UDP on a free port, then TCP on the same one (another free port if TCP's is taken)."""
        resolver, logger = TwinResolver(self.world), _QuietLogger()
        for _ in range(attempts):
            udp = DNSServer(resolver, address=self.host, port=0, logger=logger, handler=_Handler)
            port = int(udp.server.server_address[1])
            try:
                tcp = DNSServer(resolver, address=self.host, port=port, tcp=True, logger=logger, handler=_Handler)
            except OSError:
                udp.server.server_close()
                continue
            for server in (udp, tcp):  # a short poll interval: stop() returns at once
                threading.Thread(target=server.server.serve_forever, kwargs={"poll_interval": 0.05},
                                 name=f"dns-{port}", daemon=True).start()
            self._servers, self.port = [udp, tcp], port
            log.info("dns: authoritative for the twin's domains on %s (udp, tcp)", self.address)
            return self
        raise RuntimeError("no free port for UDP and TCP together on " + self.host)

    def stop(self) -> None:
        """Stop serving and close both sockets."""
        for server in self._servers:
            server.stop()
            server.server.server_close()
        self._servers = []

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def answers(self, timeout: float = 1.0) -> bool:
        """Whether the server answers an SOA query over UDP (its health in `doops sandbox status`)."""
        if self.port is None:
            return False
        with self.world.lock:
            zone = next(iter(self.world.domains), APP_ZONE)
        query = DNSRecord.question(str(DNSLabel(zone)), "SOA")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            try:
                s.sendto(query.pack(), (self.host, self.port))
                data, _ = s.recvfrom(4096)
            except OSError:
                return False
        reply = DNSRecord.parse(data)
        return bool(reply.header.id == query.header.id and reply.header.rcode == RCODE.NOERROR)
