"""TLS on both sides: the HTTPS listener and, optionally, the channel to Cuebot.

Certificates are loaded and checked at start-up, so a missing file, a key
that does not belong to its certificate or an expired certificate stops the
gateway with one line instead of failing every handshake later.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import crypto
from twisted.internet.ssl import CertificateOptions, TLSVersion

from opencue_gateway.config import ConfigError

# Certificates this close to expiry get a warning at start-up.
EXPIRY_WARNING = datetime.timedelta(days=14)


@dataclass(frozen=True, slots=True)
class ServerTLS:
    """What the HTTPS listener needs, and when its certificate expires."""

    options: CertificateOptions
    not_after: datetime.datetime

    def expires_soon(self, now: datetime.datetime) -> bool:
        """True when the certificate expires within EXPIRY_WARNING."""
        return self.not_after - now < EXPIRY_WARNING


def _read(path: str, variable: str) -> bytes:
    """A file's bytes, or a ConfigError naming the variable."""
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(variable, f"cannot read {path!r}: {error.strerror}") from None


def load_server_tls(cert_file: str, key_file: str, now: datetime.datetime) -> ServerTLS:
    """Load the listener's certificate chain and key, checking they fit and are current."""
    try:
        chain = x509.load_pem_x509_certificates(_read(cert_file, "TLS_CERT_FILE"))
    except ValueError:
        raise ConfigError("TLS_CERT_FILE", f"{cert_file!r} holds no PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(_read(key_file, "TLS_KEY_FILE"), password=None)
    except (ValueError, TypeError):
        raise ConfigError(
            "TLS_KEY_FILE", f"{key_file!r} holds no unencrypted PEM private key"
        ) from None
    leaf = chain[0]
    if leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise ConfigError("TLS_KEY_FILE", f"{key_file!r} is not the key of {cert_file!r}")
    if leaf.not_valid_after_utc <= now:
        raise ConfigError(
            "TLS_CERT_FILE", f"the certificate expired on {leaf.not_valid_after_utc:%Y-%m-%d}"
        )
    if leaf.not_valid_before_utc > now:
        raise ConfigError(
            "TLS_CERT_FILE", f"the certificate is not valid before "
            f"{leaf.not_valid_before_utc:%Y-%m-%d}"
        )
    options = CertificateOptions(
        privateKey=crypto.PKey.from_cryptography_key(key),
        certificate=crypto.X509.from_cryptography(leaf),
        extraCertChain=[crypto.X509.from_cryptography(c) for c in chain[1:]],
        raiseMinimumTo=TLSVersion.TLSv1_2,
    )
    return ServerTLS(options=options, not_after=leaf.not_valid_after_utc)


def cuebot_credentials(
    ca_file: str | None, cert_file: str | None, key_file: str | None
) -> grpc.ChannelCredentials:
    """Credentials for TLS to Cuebot: a CA (or the system's) and an optional client cert."""
    if (cert_file is None) != (key_file is None):
        raise ConfigError(
            "CUEBOT_TLS_CERT_FILE", "set CUEBOT_TLS_CERT_FILE and CUEBOT_TLS_KEY_FILE together"
        )
    return grpc.ssl_channel_credentials(
        root_certificates=_read(ca_file, "CUEBOT_TLS_CA_FILE") if ca_file else None,
        private_key=_read(key_file, "CUEBOT_TLS_KEY_FILE") if key_file else None,
        certificate_chain=_read(cert_file, "CUEBOT_TLS_CERT_FILE") if cert_file else None,
    )
