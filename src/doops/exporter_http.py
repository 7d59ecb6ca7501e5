"""The exporter's HTTP side: ``/metrics`` (prometheus_client exposition of the latest snapshot) and
``/healthz``, on a small threaded wsgiref server bound to the address given (127.0.0.1 by default).

Kept out of doops.ops: this is the socket. A scrape reads what the evaluation loop last stored; it never
causes an API call.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from doops.errors import UsageError
from doops.ops.exporter import Exporter

DEFAULT_LISTEN = "127.0.0.1:9877"


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (an IP address or localhost; ``[::1]:9877`` for IPv6) -> (host, port); UsageError else."""
    text = value.strip()
    host, sep, port_text = text.rpartition(":")
    hint = f"write HOST:PORT, e.g. --listen {DEFAULT_LISTEN}"
    if not sep or not host or not port_text:
        raise UsageError(f"--listen {value!r} is not HOST:PORT", hint=hint)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise UsageError(f"--listen {value!r}: {host!r} is not an IP address", hint=hint) from None
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise UsageError(f"--listen {value!r}: port {port_text!r} is not within 1-65535", hint=hint)
    return host, int(port_text)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # scrapes every few seconds: no access log
        return


def wsgi_app(exporter: Exporter) -> Callable[..., Iterable[bytes]]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(exporter)
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path == "/metrics":
            return metrics(environ, start_response)
        if path == "/healthz":
            ok, text = exporter.health()
            body = (("ok: " if ok else "unhealthy: ") + text + "\n").encode()
            start_response("200 OK" if ok else "503 Service Unavailable",
                           [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
            return [body]
        if path == "/":
            body = b"doops exporter: /metrics, /healthz\n"
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
            return [body]
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found: /metrics or /healthz\n"]

    return app


class ExporterServer:
    """The bound server; ``bind`` fails with exit 4 naming the address when it is taken or not local."""

    def __init__(self, exporter: Exporter, host: str, port: int) -> None:
        self.host, self.port = host, port
        server_class: Any = ThreadingWSGIServer
        if ":" in host:
            class V6(ThreadingWSGIServer):
                address_family = socket.AF_INET6

            server_class = V6
        try:
            self.server = make_server(host, port, wsgi_app(exporter), server_class=server_class,
                                      handler_class=_Quiet)
        except OSError as exc:
            shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            if exc.errno == errno.EADDRINUSE:
                raise UsageError(f"--listen {shown}: the address is in use",
                                 hint="stop what listens there, or pick a free port with --listen") from None
            raise UsageError(f"--listen {shown}: cannot listen there ({exc.strerror or exc})",
                             hint="give an address of this machine, e.g. 127.0.0.1:9877") from None
        self.port = int(self.server.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> ExporterServer:
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="doops-exporter-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (within the 0.1 s poll) and close the socket."""
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(timeout=1.0)
        self.server.server_close()


def serve(exporter: Exporter, server: ExporterServer, join_timeout: float = 0.5) -> None:
    """Serve and evaluate until ``exporter.stop`` is set, then stop both (within a second)."""
    server.start()
    loop = exporter.start()
    try:
        while not exporter.stop.wait(0.2):
            pass
    finally:
        exporter.stop.set()
        server.stop()
        loop.join(timeout=join_timeout)  # an evaluation still waiting on the API is a daemon: not waited for
