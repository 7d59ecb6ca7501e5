"""One way to run a sandbox HTTP server: 127.0.0.1, a free port, a daemon thread, a clean stop."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LoopbackServer:
    """A ThreadingHTTPServer on loopback. ``attrs`` are set on the server so handlers reach their owner
    as ``self.server.<name>``."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], name: str, host: str = "127.0.0.1", port: int = 0,
                 poll_interval: float = 0.1, **attrs: Any) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("sandbox servers bind loopback only")
        self.handler = handler
        self.name = name
        self.host = host
        self.requested_port = port
        self.poll_interval = poll_interval
        self.attrs = attrs
        self.httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> LoopbackServer:
        httpd = ThreadingHTTPServer((self.host, self.requested_port), self.handler)
        httpd.daemon_threads = True
        for key, value in self.attrs.items():
            setattr(httpd, key, value)
        self.httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, args=(self.poll_interval,), name=self.name,
                                        daemon=True)
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        if self.httpd is None:
            raise RuntimeError(f"{self.name} not started")
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self.httpd is not None

    def stop(self) -> None:
        """Stop serving and close the port (idempotent)."""
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
