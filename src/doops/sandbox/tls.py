"""The sandbox's certificate authority: made at `up`, it signs every server certificate of the sandbox.

DigitalOcean gives each project a CA (``GET /v2/databases/{id}/ca``) that signed its database servers'
certificates, so clients can use ``sslmode=verify-full``. The sandbox does the same: one CA per sandbox
(``ca.crt``; its key never leaves the directory, mode 0600), and a certificate per server (PostgreSQL,
PgBouncer, the cache, the metrics endpoint) for ``127.0.0.1`` and ``localhost``, the names clients dial.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
SERVER_CERT_VALIDITY = dt.timedelta(days=825)  # the most a browser accepted for a server certificate


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_pem(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))


def _write_key(path: Path, pem: bytes) -> None:
    """A private key file created 0600 (never world-readable, not even for a moment)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)


@dataclass(frozen=True)
class IssuedCert:
    """A server certificate and its key on disk (the key 0600)."""

    cert: Path
    key: Path


class SandboxCA:
    """A CA in ``directory`` (``ca.crt``, ``ca.key``); :meth:`issue` signs server certificates with it."""

    def __init__(self, directory: Path, cert: Any, key: Any) -> None:
        self.directory = directory
        self._cert = cert
        self._key = key

    @classmethod
    def create(cls, directory: Path, label: str = "") -> SandboxCA:
        """A new CA (EC P-256, 10 years) written to ``directory``; ``label`` names the sandbox in its subject."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "doops sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"doops sandbox CA {label or secrets.token_hex(4)}"),
        ])
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_key(directory / CA_KEY, _key_pem(key))
        (directory / CA_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(directory, cert, key)

    @classmethod
    def load(cls, directory: Path) -> SandboxCA:
        """The CA an earlier :meth:`create` wrote."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        cert = x509.load_pem_x509_certificate((directory / CA_CERT).read_bytes())
        key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), password=None)
        return cls(directory, cert, key)

    @property
    def cert_path(self) -> Path:
        """The CA certificate (PEM): what clients pass as ``sslrootcert`` / ``--cacert``."""
        return self.directory / CA_CERT

    @property
    def pem(self) -> str:
        """The CA certificate as PEM text (what ``GET /v2/databases/{id}/ca`` serves, base64-encoded)."""
        return self.cert_path.read_text()

    def issue(self, cert_path: Path, key_path: Path, common_name: str = "127.0.0.1", *,
              hosts: Sequence[str] = (), valid_for: dt.timedelta = SERVER_CERT_VALIDITY) -> IssuedCert:
        """A server certificate for 127.0.0.1, localhost and ``hosts`` (DNS names) signed by this CA (key 0600),
        valid ``valid_for`` from now (a short one is how the tls fault makes a certificate about to expire)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        sans: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
        sans += [x509.DNSName(h) for h in dict.fromkeys(hosts) if h != "localhost"]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self._cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + valid_for)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=False,
                                         crl_sign=False, content_commitment=False, data_encipherment=False,
                                         key_agreement=True, encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                           critical=False)
            .sign(self._key, hashes.SHA256())
        )
        _write_key(key_path, _key_pem(key))
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return IssuedCert(cert_path, key_path)
