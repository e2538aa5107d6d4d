"""The user and database names a client sends at login are in its character set (the
handshake's collation), which the server reads them in; COM_CHANGE_USER's in the set it
names. A backend login built from them carries them in the same set."""

from __future__ import annotations

import pytest

from myguard.protocol.charsets import client_codec, codec
from myguard.protocol.constants import Capability
from myguard.protocol.handshake import (
    HandshakeResponse,
    build_handshake_response,
    parse_change_user,
    parse_handshake_response,
)

CAPS = (
    Capability.CLIENT_PROTOCOL_41
    | Capability.CLIENT_SECURE_CONNECTION
    | Capability.CLIENT_PLUGIN_AUTH
    | Capability.CLIENT_CONNECT_WITH_DB
)
# (collation id, Python codec): latin1, cp1251, koi8r, latin2, greek, utf8mb4
SETS = [(8, "cp1252"), (51, "cp1251"), (7, "koi8_r"), (9, "iso8859_2"), (25, "iso8859_7")]
NAMES = {"cp1252": "bäse", "cp1251": "база", "koi8_r": "база", "iso8859_2": "bąse",
         "iso8859_7": "βάση"}  # fmt: skip


@pytest.mark.parametrize(("collation", "python"), SETS)
def test_login_names_are_read_and_written_in_the_handshake_s_set(collation, python):
    name = NAMES[python]
    sent = HandshakeResponse(CAPS, 1 << 24, collation, "jürgen" if python == "cp1252" else "u",
                             b"x" * 20, name, "mysql_native_password")  # fmt: skip
    payload = build_handshake_response(sent)
    assert name.encode(python) + b"\x00" in payload  # not its UTF-8 bytes
    got = parse_handshake_response(payload)
    assert (got.user, got.database, got.charset) == (sent.user, name, collation)


def test_names_of_an_unknown_or_wide_set_read_as_utf8():
    assert client_codec(3) == "utf-8"  # dec8: no Python codec
    assert client_codec(35) == "utf-8"  # ucs2: no client may use it
    assert codec(35) == "utf-16-be"  # ... though its columns are read as such
    sent = HandshakeResponse(CAPS, 1 << 24, 45, "u", b"x" * 20, "bäse", "mysql_native_password")
    assert "bäse".encode() in build_handshake_response(sent)


def test_change_user_names_are_read_in_the_set_it_names():
    name = "база".encode("koi8_r")
    payload = (
        b"\x11" + "юзер".encode("koi8_r") + b"\x00" + b"\x14" + b"x" * 20 + name + b"\x00"
        + (7).to_bytes(2, "little") + b"mysql_native_password\x00"
    )  # fmt: skip
    change = parse_change_user(payload, CAPS)
    assert (change.user, change.database, change.charset) == ("юзер", "база", 7)
    # without a set of its own: the session's
    bare = b"\x11" + "bäse".encode("cp1252") + b"\x00\x14" + b"x" * 20 + b"b\xe4se\x00"
    change = parse_change_user(bare, CAPS & ~Capability.CLIENT_PLUGIN_AUTH, "cp1252")
    assert (change.user, change.database, change.charset) == ("bäse", "bäse", 0)
    assert parse_change_user(bare, CAPS & ~Capability.CLIENT_PLUGIN_AUTH).database == "b\ufffdse"
