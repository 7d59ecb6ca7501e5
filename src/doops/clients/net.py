"""Plain TCP reachability: can a client open a connection to host:port at all (a runbook's ``tcp`` probe)."""

from __future__ import annotations

import socket

from doops.errors import UnknownStateError


class HostUnresolvable(UnknownStateError):
    """The host name does not resolve: no connection was tried."""


def tcp_connects(host: str, port: int, timeout: float = 3.0) -> bool:
    """True when a TCP connection to ``host:port`` is accepted within ``timeout``; False when it is refused,
    times out or the network is unreachable (an answer about the port, not an error). A host name that does
    not resolve raises HostUnresolvable: that says nothing about the port."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise HostUnresolvable(f"{host} does not resolve ({exc.strerror or exc})") from None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
            return True
        except OSError:  # refused, timed out, unreachable: try the host's next address
            continue
        finally:
            sock.close()
    return False
