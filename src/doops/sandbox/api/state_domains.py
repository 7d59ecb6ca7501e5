"""Domains and their records in the twin's world: the records write API and the names the DNS server answers.

A domain is ``{"name", "ttl", "records": [...], "serial"}`` in ``Store.domains``; a record is the API's
``domain_record`` object (``id``, ``type``, ``name``, ``data``, ``priority``, ``port``, ``ttl``, ``weight``,
``flags``, ``tag``). The sandbox's DNS server (:mod:`doops.sandbox.dns`) reads the same dicts at query time,
so a record changed here is answered over DNS at once.

Spec-silent choices (DigitalOcean's own answers where known):

- ``type`` is required (the spec's schemas say so) on create, PUT and PATCH; create also needs ``name`` and
  ``data``. PUT and PATCH both change only the attributes the body names; the record keeps the rest.
- Every failed check is 422 ``unprocessable_entity`` with one message naming the attribute. A host name
  (data of CNAME, MX, NS, SRV; DigitalOcean's wording) must be ``@`` or end with a dot: "Data needs to end
  with a dot (.)". A PUT that leaves such data without the dot fails the same way, as on DigitalOcean.
- ``ttl`` is at least 30 seconds (DigitalOcean's minimum); a record created without one gets 1800.
- The ``SOA`` record is the zone's own: it cannot be created or deleted, only its ``ttl`` changed.
- A CNAME cannot share its name with another record (RFC 1034 3.6.2): 422.
- Every change moves the zone's SOA serial forward (Unix time, as DigitalOcean numbers it).
- New records get the next integer id above every record id of the world.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from doops.sandbox.api.errors import ApiError
from doops.sandbox.api.resources import Store

RECORD_TYPES = ("A", "AAAA", "CAA", "CNAME", "MX", "NS", "SOA", "SRV", "TXT")
HOST_TYPES = frozenset({"CNAME", "MX", "NS", "SRV"})  # data is a host name
CAA_TAGS = ("issue", "issuewild", "iodef")
MIN_TTL = 30
DEFAULT_TTL = 1800
FIELDS = ("type", "name", "data", "priority", "port", "ttl", "weight", "flags", "tag")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


def owner_fqdn(name: str, origin: str) -> str:
    """A record's owner as a fully qualified name: ``@`` is the origin, a relative name gets it appended."""
    origin = origin.rstrip(".")
    if name in ("@", ""):
        return origin + "."
    if name.endswith("."):
        return name
    return f"{name}.{origin}."


def target_fqdn(data: str, origin: str) -> str:
    """The host name a record points at, fully qualified: ``@`` is the origin; DigitalOcean's data
    (``ns1.digitalocean.com``) is fully qualified without the final dot, so a name with a dot gets one; a bare
    label is relative to the origin (as in a zone file)."""
    origin = origin.rstrip(".")
    if data in ("@", ""):
        return origin + "."
    if data.endswith("."):
        return data
    if "." not in data:
        return f"{data}.{origin}."
    return data + "."


def valid_hostname(name: str, wildcard: bool = False) -> bool:
    """Whether ``name`` (no final dot) is a syntactically valid DNS name (``*`` first label if ``wildcard``)."""
    labels = name.split(".")
    if not name or len(name) > 253:
        return False
    if wildcard and labels[0] == "*":
        labels = labels[1:]
    return all(_LABEL.match(label) for label in labels)


class Domains:
    """Domain records on a world's store: get, create, update, delete, each checked as DigitalOcean does."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def domain(self, name: str) -> dict[str, Any]:
        """The domain or a 404."""
        d = self.store.domains.get(name)
        if d is None:
            raise ApiError.not_found()
        return d

    def record(self, d: dict[str, Any], record_id: str | int) -> dict[str, Any]:
        """The domain's record or a 404 (an id that is not an integer is unknown too)."""
        try:
            rid = int(record_id)
        except (TypeError, ValueError):
            raise ApiError.not_found() from None
        for r in d["records"]:
            if r["id"] == rid:
                return r
        raise ApiError.not_found()

    def create(self, d: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """POST .../records."""
        for key in ("type", "name", "data"):
            if body.get(key) in (None, ""):
                raise ApiError.unprocessable(f"{key} is required")
        rec: dict[str, Any] = dict.fromkeys(FIELDS)
        rec["ttl"] = DEFAULT_TTL
        rec.update(self._checked_fields(body))
        if rec["type"] == "SOA":
            raise ApiError.unprocessable("an SOA record cannot be created: each domain has its own")
        self._check(d, rec, None)
        rec = {"id": self._next_id(), **rec}
        d["records"].append(rec)
        self._touch(d)
        return rec

    def update(self, d: dict[str, Any], rec: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """PUT or PATCH .../records/{id}: the attributes the body names change, the rest stay."""
        if body.get("type") in (None, ""):
            raise ApiError.unprocessable("type is required")
        changes = self._checked_fields(body)
        new = {**rec, **changes}
        if rec["type"] == "SOA" and any(new[k] != rec[k] for k in FIELDS if k != "ttl"):
            raise ApiError.unprocessable("only the ttl of the SOA record can be changed")
        if rec["type"] != "SOA":
            self._check(d, new, rec["id"])
        rec.update(changes)
        self._touch(d)
        return rec

    def delete(self, d: dict[str, Any], rec: dict[str, Any]) -> None:
        """DELETE .../records/{id}."""
        if rec["type"] == "SOA":
            raise ApiError.unprocessable("the SOA record cannot be deleted")
        d["records"].remove(rec)
        self._touch(d)

    # -- checks ---------------------------------------------------------------------------------------

    @staticmethod
    def _checked_fields(body: dict[str, Any]) -> dict[str, Any]:
        """The record attributes of ``body`` with their JSON types checked (unknown keys and ``id`` ignored)."""
        out: dict[str, Any] = {}
        for key in FIELDS:
            if key not in body:
                continue
            value = body[key]
            if key in ("type", "name", "data"):
                if not isinstance(value, str):
                    raise ApiError.unprocessable(f"{key} must be a string")
                out[key] = value.upper() if key == "type" else value
            elif key == "tag":
                if value is not None and not isinstance(value, str):
                    raise ApiError.unprocessable("tag must be a string")
                out[key] = value
            else:
                if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                    raise ApiError.unprocessable(f"{key} must be an integer")
                if key == "ttl" and value is None:
                    continue
                out[key] = value
        if "type" in out and out["type"] not in RECORD_TYPES:
            raise ApiError.unprocessable(f"type {out['type']!r} is not supported; one of {', '.join(RECORD_TYPES)}")
        return out

    def _check(self, d: dict[str, Any], rec: dict[str, Any], own_id: int | None) -> None:
        """Is the record (as it would be) one DigitalOcean stores? 422 naming the first problem."""
        rtype, name, data = rec["type"], str(rec["name"]), str(rec["data"] or "")
        if name != "@" and (name.endswith(".") or not valid_hostname(name, wildcard=True)):
            raise ApiError.unprocessable(f"name {name!r} must be @ or a host name relative to {d['name']} "
                                         "(letters, digits, '-', '_', '*' as the first label)")
        ttl = rec["ttl"]
        if not isinstance(ttl, int) or ttl < MIN_TTL:
            raise ApiError.unprocessable(f"ttl must be at least {MIN_TTL} seconds")
        if not data:
            raise ApiError.unprocessable("data is required")
        if rtype == "A":
            self._ip(data, ipaddress.IPv4Address, "an IPv4 address")
        elif rtype == "AAAA":
            self._ip(data, ipaddress.IPv6Address, "an IPv6 address")
        elif rtype in HOST_TYPES:
            if data != "@" and not data.endswith("."):
                raise ApiError.unprocessable("Data needs to end with a dot (.)")
            if data != "@" and not valid_hostname(data[:-1]):
                raise ApiError.unprocessable(f"data {data!r} is not a valid host name")
        elif rtype == "CAA":
            if rec.get("tag") not in CAA_TAGS:
                raise ApiError.unprocessable(f"tag must be one of {', '.join(CAA_TAGS)} for a CAA record")
            if rec.get("flags") is None or not 0 <= int(rec["flags"]) <= 255:
                raise ApiError.unprocessable("flags must be an integer between 0 and 255 for a CAA record")
        elif rtype == "TXT" and len(data) > 65535:
            raise ApiError.unprocessable("data is too long for a TXT record")
        if rtype in ("MX", "SRV") and rec.get("priority") is None:
            raise ApiError.unprocessable(f"priority is required for an {rtype} record")
        if rtype == "SRV" and (rec.get("port") is None or rec.get("weight") is None):
            raise ApiError.unprocessable("port and weight are required for an SRV record")
        for key in ("priority", "port", "weight"):
            if rec.get(key) is not None and not 0 <= int(rec[key]) <= 65535:
                raise ApiError.unprocessable(f"{key} must be between 0 and 65535")
        owner = name.lower()
        others = [r for r in d["records"] if r["id"] != own_id and str(r["name"]).lower() == owner]
        if others and (rtype == "CNAME" or any(r["type"] == "CNAME" for r in others)):
            raise ApiError.unprocessable(f"a CNAME record cannot share the name {name!r} with another record")

    @staticmethod
    def _ip(data: str, kind: type[ipaddress.IPv4Address] | type[ipaddress.IPv6Address], what: str) -> None:
        try:
            kind(data)
        except ValueError:
            raise ApiError.unprocessable(f"data {data!r} must be {what}") from None

    def _next_id(self) -> int:
        ids = [int(r["id"]) for dom in self.store.domains.values() for r in dom["records"]]
        return max(ids, default=3_000_000) + 1

    def _touch(self, d: dict[str, Any]) -> None:
        d["serial"] = max(int(d.get("serial", 0)) + 1, int(self.store.clock()))
