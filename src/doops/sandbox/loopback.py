"""One way to run a sandbox HTTP server: 127.0.0.1, a free port, a daemon thread, a clean stop.

Why the connection bookkeeping: a server that speaks HTTP/1.1 keeps connections open between requests, each in
its own handler thread. ``ThreadingHTTPServer.shutdown`` only stops accepting, so a client holding a pooled
connection would still be answered by a server that was "stopped" (an app taken down would stay up for it).
:meth:`LoopbackServer.stop` therefore closes every open connection too.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

NO_BODY_STATUSES = frozenset({204, 304})


class _TrackingServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that knows its open connections, so a stop can close them."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        # HTTPS: each accepted connection is wrapped with the context set now, so swapping it changes what new
        # connections are offered (certificate, protocol versions) without closing the port.
        self.ssl_context: ssl.SSLContext | None = None

    def get_request(self) -> tuple[Any, Any]:
        conn, addr = self.socket.accept()
        ctx = self.ssl_context
        if ctx is None:
            return conn, addr
        try:  # the handshake itself happens in the request's thread, on its first read
            return ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False), addr
        except (OSError, ValueError) as exc:  # an OSError is what serve_forever skips a bad connection on
            conn.close()
            raise OSError(f"TLS wrap failed: {exc}") from exc

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def open_connections(self) -> int:
        """How many client connections are open now (kept-alive ones included)."""
        with self._connections_lock:
            return len(self._connections)

    def close_connections(self) -> None:
        """Close every open connection: a handler waiting for the next request on it reads EOF and ends."""
        with self._connections_lock:
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):  # already closed by the client
                conn.shutdown(socket.SHUT_RDWR)


class KeepAliveHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with persistent connections, as real web servers and CDNs speak.

    Keep-alive needs exact framing on every answer: :meth:`reply` always sends ``Content-Length`` (HEAD
    included, where it is the length a GET would get, with no body), and any request body is read first so its
    bytes are not taken for the next request. ``timeout`` closes a connection idle that long.
    """

    protocol_version = "HTTP/1.1"
    timeout = 60

    def drain_body(self) -> None:
        """Read and drop a request body (GET/HEAD may carry one); a chunked one ends the connection."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            return
        if length > 0:
            self.rfile.read(length)

    def reply(self, status: int, headers: dict[str, str], body: bytes, *, head: bool = False) -> None:
        """Send one complete answer with its Content-Length (none for 204/304, which have no body)."""
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() != "content-length":
                self.send_header(key, value)
        if status not in NO_BODY_STATUSES and status >= 200:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and status not in NO_BODY_STATUSES and body:
            self.wfile.write(body)


class LoopbackServer:
    """A ThreadingHTTPServer on loopback. ``attrs`` are set on the server so handlers reach their owner
    as ``self.server.<name>``. With ``ssl_context`` it serves HTTPS; the TLS handshake happens in each request's
    own thread (on its first read), so a client that never completes one holds no one else up."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], name: str, host: str = "127.0.0.1", port: int = 0,
                 poll_interval: float = 0.1, ssl_context: ssl.SSLContext | None = None, **attrs: Any) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("sandbox servers bind loopback only")
        self.handler = handler
        self.name = name
        self.host = host
        self.requested_port = port
        self.poll_interval = poll_interval
        self.ssl_context = ssl_context
        self.attrs = attrs
        self.httpd: _TrackingServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> LoopbackServer:
        httpd = _TrackingServer((self.host, self.requested_port), self.handler)
        httpd.ssl_context = self.ssl_context
        for key, value in self.attrs.items():
            setattr(httpd, key, value)
        self.httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, args=(self.poll_interval,), name=self.name,
                                        daemon=True)
        self._thread.start()
        return self

    def set_ssl_context(self, ctx: ssl.SSLContext) -> None:
        """Serve new connections with ``ctx`` (an HTTPS server's reload) and close the open ones, so a kept-alive
        client reconnects and meets the new certificate and protocol versions."""
        if self.ssl_context is None:
            raise ValueError(f"{self.name} serves plain HTTP")
        self.ssl_context = ctx
        if self.httpd is not None:
            self.httpd.ssl_context = ctx
            self.httpd.close_connections()

    @property
    def port(self) -> int:
        if self.httpd is None:
            raise RuntimeError(f"{self.name} not started")
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context is not None else 'http'}://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self.httpd is not None

    def open_connections(self) -> int:
        """Client connections open now (0 when stopped)."""
        return self.httpd.open_connections() if self.httpd is not None else 0

    def stop(self) -> None:
        """Stop serving, close the port and every open connection (idempotent)."""
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.close_connections()  # before server_close, which joins the handler threads
            self.httpd.server_close()
            self.httpd = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
