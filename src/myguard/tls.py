"""TLS for clients: the server context, and a self-signed pair when none is configured."""

from __future__ import annotations

import dataclasses
import datetime
import errno
import ipaddress
import logging
import os
import socket
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from myguard.config import Config, TlsConfig
from myguard.logs import event

# Beside the config file, made at the first start without a [tls] table.
SELF_SIGNED_CERT = "myguard-self-signed.crt"
SELF_SIGNED_KEY = "myguard-self-signed.key"


def server_context(config: TlsConfig) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(config.cert_file), str(config.key_file))
    return ctx


def with_default_tls(config: Config, *, announce: bool) -> Config:
    """``config``, with a self-signed certificate when the identity is LDAP and there is
    no [tls] table: as MySQL 8 does, so that default clients can send a password at
    caching_sha2 full authentication (it needs TLS or RSA, and the mariadb CLI does not
    fetch the RSA key). Made beside the config at the first start, reused after that;
    ``announce`` logs its SHA-256 fingerprint (once per myguard, not per worker)."""
    if config.tls is not None or config.identity.source != "ldap":
        return config
    cert_file = config.file.parent / SELF_SIGNED_CERT
    key_file = config.file.parent / SELF_SIGNED_KEY
    created = not (cert_file.is_file() and key_file.is_file())
    if created:
        try:
            write_self_signed(cert_file, key_file)
        except OSError as exc:
            raise OSError(
                exc.errno or errno.EACCES,
                f"no [tls] table, and cannot write a self-signed certificate beside the "
                f"config ({exc.filename}: {exc.strerror}): configure [tls]",
            ) from None
    if announce:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        event(
            logging.WARNING,
            "tls_self_signed",
            cert=str(cert_file),
            sha256=cert.fingerprint(hashes.SHA256()).hex(":").upper(),
            created=created,
            production="configure [tls] with a real certificate and require_tls",
        )
    return dataclasses.replace(config, tls=TlsConfig(cert_file, key_file))


def write_self_signed(cert_file: Path, key_file: Path, common_name: str = "myguard") -> None:
    """Write a self-signed certificate for localhost, 127.0.0.1 and this host's name."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=825))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName(socket.gethostname()),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    # Created 0600: the key is never readable by others, not even for a moment.
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def load_or_create_rsa_key(path: Path | None) -> rsa.RSAPrivateKey:
    """The key for caching_sha2_password's RSA exchange: from ``path``, created there if missing.

    Without a path a fresh key lives in memory for this process only.
    """
    if path is not None and path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{path}: not an RSA private key")
        return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if path is not None:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        path.chmod(0o600)
    return key
