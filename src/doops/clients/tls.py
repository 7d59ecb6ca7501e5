"""TLS probes of what users reach (live URLs, the CDN's custom domain): which protocol versions the server
offers, its certificate's expiry and whether it is trusted. Stdlib ``ssl`` only.

Two handshakes: one with the process's TLS context (the trust store httpx uses, so SSL_CERT_FILE is honoured;
TLS 1.2 and 1.3 allowed), whose negotiated version is the best the server offers; one forced to at most TLS 1.2,
which says whether the server still accepts 1.2. Versions below 1.2 cannot be tried from here (OpenSSL refuses
them at its default security level): a server offering nothing better fails the first handshake, which is the
answer. Answers come back as ``TlsProbe`` values, never exceptions.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit


@dataclass
class TlsProbe:
    url: str
    host: str
    port: int
    scheme: str
    best_version: str | None = None  # negotiated with TLS 1.3 allowed: the best the server offers
    accepts_tls12: bool | None = None  # a handshake capped at TLS 1.2 succeeded
    trusted: bool | None = None  # the chain verified against the trust store and the host name matched
    verify_error: str | None = None
    not_after: datetime | None = None
    error: str | None = None  # no TLS answer at all (refused, timeout, plain HTTP)

    def days_left(self, now: datetime) -> float | None:
        return None if self.not_after is None else (self.not_after - now).total_seconds() / 86400


def _handshake(host: str, port: int, ctx: ssl.SSLContext, timeout: float) -> tuple[str | None, dict[str, object]]:
    with socket.create_connection((host, port), timeout=timeout) as raw, \
            ctx.wrap_socket(raw, server_hostname=host) as tls:
        cert = tls.getpeercert() or {}
        return tls.version(), dict(cert)


def _not_after(cert: dict[str, object]) -> datetime | None:
    value = cert.get("notAfter")
    if not isinstance(value, str):
        return None
    return datetime.fromtimestamp(ssl.cert_time_to_seconds(value), UTC)


def probe(url: str, timeout: float = 5.0, context: ssl.SSLContext | None = None) -> TlsProbe:
    """Probe the TLS of ``url``'s host and port (443 by default); ``context`` verifies (default: the process's)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    result = TlsProbe(url, host, port, parts.scheme)
    if parts.scheme != "https":
        result.error = f"{parts.scheme or 'no'}:// URL: no TLS"
        return result
    if context is None:
        from doops.clients.http import tls_context

        context = tls_context()
    try:
        result.best_version, cert = _handshake(host, port, context, timeout)
        result.trusted = True
        result.not_after = _not_after(cert)
    except ssl.SSLCertVerificationError as exc:
        result.trusted, result.verify_error = False, exc.verify_message or str(exc.reason)
        try:  # the version it offers all the same, without verifying (the verdict is already crit)
            loose = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            loose.check_hostname, loose.verify_mode = False, ssl.CERT_NONE
            result.best_version, _ = _handshake(host, port, loose, timeout)
        except (OSError, ssl.SSLError):
            pass
    except ssl.SSLError as exc:
        result.error = f"TLS handshake failed: {exc.reason or exc}"
        return result
    except OSError as exc:
        result.error = f"cannot connect to {host}:{port}: {exc.strerror or type(exc).__name__}"
        return result
    capped = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    capped.check_hostname, capped.verify_mode = False, ssl.CERT_NONE  # trust was judged above
    capped.maximum_version = ssl.TLSVersion.TLSv1_2
    try:
        _handshake(host, port, capped, timeout)
        result.accepts_tls12 = True
    except ssl.SSLError:
        result.accepts_tls12 = False
    except OSError:
        result.accepts_tls12 = None
    return result
