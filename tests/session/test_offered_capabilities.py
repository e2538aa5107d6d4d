"""The capabilities myguard's greeting offers, against the backend's greeting."""

from __future__ import annotations

from types import SimpleNamespace

from myguard.protocol.constants import PROXY_CAPABILITIES, Capability
from myguard.protocol.handshake import Greeting
from myguard.session.login import LoginPhase

EXT = Capability.MARIADB_CLIENT_EXTENDED_METADATA
MYSQL = Capability.CLIENT_LONG_PASSWORD  # CLIENT_MYSQL


def _offered(backend_caps: int | None) -> int:
    session = SimpleNamespace(
        ctx=SimpleNamespace(tls=None), backend_config=SimpleNamespace(local_infile=False)
    )
    backend = None
    if backend_caps is not None:
        backend = Greeting("v", 1, b"s" * 20, backend_caps, 45, 2, "mysql_native_password")
    return LoginPhase._offered_capabilities(session, backend)


def test_mariadb_backend_with_extended_metadata_has_it_offered_without_client_mysql():
    offered = _offered(PROXY_CAPABILITIES & ~MYSQL)
    assert offered & EXT and not offered & MYSQL


def test_mariadb_backend_without_extended_metadata():
    offered = _offered(PROXY_CAPABILITIES & ~MYSQL & ~EXT)
    assert not offered & EXT and not offered & MYSQL


def test_mysql_backend_keeps_client_mysql_and_offers_no_extended_capabilities():
    offered = _offered(PROXY_CAPABILITIES & 0xFFFFFFFF)
    assert offered & MYSQL and not offered >> 32
