"""MariaDB extended capabilities in the handshake, and extended column metadata."""

from __future__ import annotations

import struct

from myguard.protocol import column_types as ct
from myguard.protocol.column_definition import (
    adjust_definition,
    build_column_definition,
    parse_column_definition,
)
from myguard.protocol.constants import Capability
from myguard.protocol.handshake import (
    Greeting,
    HandshakeResponse,
    build_greeting,
    build_handshake_response,
    parse_greeting,
    parse_handshake_response,
)
from myguard.protocol.resultset import column_definition

EXT = Capability.MARIADB_CLIENT_EXTENDED_METADATA
MYSQL = Capability.CLIENT_LONG_PASSWORD  # CLIENT_MYSQL
BASE = (
    Capability.CLIENT_PROTOCOL_41
    | Capability.CLIENT_SECURE_CONNECTION
    | Capability.CLIENT_PLUGIN_AUTH
    | Capability.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
    | Capability.CLIENT_CONNECT_ATTRS
)

# What MariaDB 10.11 sends a utf8mb4 client for test.j.doc (JSON): a LONGTEXT (BLOB,
# flags BLOB and BINARY) whose extended metadata is format (type 1) = "json".
JSON_DOC = (
    b"\x03def\x04test\x01j\x01j\x03doc\x03doc"
    b"\x06\x01\x04json"
    b"\x0c\x2d\x00\xff\xff\xff\xff\xfc\x90\x00\x00\x00\x00"
)


def _greeting(caps: int) -> Greeting:
    return Greeting("5.5.5-10.11.19-MariaDB", 7, b"a" * 20, caps, 45, 2, "mysql_native_password")


def _filler_at(greeting: bytes) -> int:
    """Where the 10 reserved bytes start: after the version, connection id, scramble part 1,
    filler byte, capabilities, charset, status, capabilities (upper) and auth-data length."""
    return greeting.index(b"\x00", 1) + 1 + 4 + 8 + 1 + 2 + 1 + 2 + 2 + 1


def _filler(greeting: bytes) -> bytes:
    return greeting[_filler_at(greeting) : _filler_at(greeting) + 10]


def test_greeting_without_client_mysql_carries_extended_capabilities():
    caps = BASE | EXT | 1 << 32  # MARIADB_CLIENT_PROGRESS too: all 4 bytes are carried
    payload = build_greeting(_greeting(caps))
    assert _filler(payload) == b"\x00" * 6 + struct.pack("<I", 0b1001)
    assert parse_greeting(payload) == _greeting(caps)


def test_greeting_with_client_mysql_has_a_zero_filler_and_no_extended_capabilities():
    payload = build_greeting(_greeting(BASE | MYSQL | EXT))
    assert _filler(payload) == b"\x00" * 10
    assert parse_greeting(payload).capabilities == BASE | MYSQL


def test_greeting_filler_is_ignored_when_client_mysql_is_set():
    payload = bytearray(build_greeting(_greeting(BASE | MYSQL)))
    start = _filler_at(payload)
    payload[start + 6 : start + 10] = b"\x08\x00\x00\x00"
    assert parse_greeting(bytes(payload)).capabilities == BASE | MYSQL


def _response(caps: int, **kw: object) -> HandshakeResponse:
    return HandshakeResponse(caps, 1 << 24, 45, "alice", b"t" * 20, None, "p", {"a": "b"}, **kw)


def test_handshake_response_round_trips_extended_capabilities():
    payload = build_handshake_response(_response(BASE | EXT))
    assert payload[:4] == struct.pack("<I", BASE)
    assert payload[9:28] == b"\x00" * 19 and payload[28:32] == b"\x08\x00\x00\x00"
    assert parse_handshake_response(payload) == _response(BASE | EXT)


def test_handshake_response_without_extended_capabilities():
    payload = build_handshake_response(_response(BASE | MYSQL))
    assert payload[9:32] == b"\x00" * 23
    assert parse_handshake_response(payload) == _response(BASE | MYSQL)


def test_ssl_request_carries_extended_capabilities():
    caps = BASE | Capability.CLIENT_SSL | EXT
    request = HandshakeResponse(caps, 1 << 24, 45, ssl_request=True)
    payload = build_handshake_response(request)
    assert len(payload) == 32
    assert parse_handshake_response(payload) == request


def test_client_mysql_response_ignores_filler_bytes():
    payload = bytearray(build_handshake_response(_response(BASE | MYSQL)))
    payload[28:32] = b"\x08\x00\x00\x00"
    assert parse_handshake_response(bytes(payload)).capabilities == BASE | MYSQL


def test_parse_definition_with_extended_metadata():
    col = parse_column_definition(JSON_DOC, BASE | EXT)
    assert (col.name, col.org_name, col.extended_metadata) == (b"doc", b"doc", b"\x01\x04json")
    assert col.type == ct.MYSQL_TYPE_BLOB and col.character_set == 45
    assert col.column_length == 0xFFFFFFFF
    assert build_column_definition(col) == JSON_DOC


def test_definition_without_extended_metadata_has_none():
    plain = JSON_DOC.replace(b"\x06\x01\x04json", b"")
    col = parse_column_definition(plain, BASE)
    assert col.extended_metadata is None
    assert build_column_definition(col) == plain


def test_masking_drops_extended_metadata_but_keeps_the_field():
    col = parse_column_definition(JSON_DOC, BASE | EXT)
    masked = adjust_definition(col, max_chars=None, may_be_null=False)
    assert masked.extended_metadata == b""
    assert build_column_definition(masked) == JSON_DOC.replace(b"\x06\x01\x04json", b"\x00")
    plain = parse_column_definition(JSON_DOC.replace(b"\x06\x01\x04json", b""), BASE)
    assert adjust_definition(plain, max_chars=None, may_be_null=False) is plain


def test_own_result_set_definitions_follow_negotiation():
    with_ext = parse_column_definition(column_definition("x", extended_metadata=True), EXT)
    without = parse_column_definition(column_definition("x", extended_metadata=False), 0)
    assert with_ext.extended_metadata == b"" and without.extended_metadata is None
    assert with_ext.name == without.name == b"x"
    assert with_ext.type == without.type == 0xFD
