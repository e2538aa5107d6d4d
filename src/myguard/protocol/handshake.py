"""Connection phase packets: Initial Handshake v10, SSLRequest, HandshakeResponse41,
AuthSwitchRequest and COM_CHANGE_USER."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from myguard.protocol.charsets import client_codec
from myguard.protocol.codec import PayloadReader, lenenc_int, lenenc_str
from myguard.protocol.constants import (
    AUTH_SWITCH_REQUEST,
    PROTOCOL_VERSION,
    Capability,
)
from myguard.protocol.errors import ProtocolError

SCRAMBLE_LENGTH = 20
SSL_REQUEST_LENGTH = 32


@dataclass(frozen=True, slots=True)
class Greeting:
    """The server's Initial Handshake packet (protocol version 10)."""

    server_version: str
    connection_id: int
    scramble: bytes
    capabilities: int
    charset: int
    status: int
    auth_plugin: str


def build_greeting(g: Greeting) -> bytes:
    caps = g.capabilities
    scramble = g.scramble
    return b"".join(
        (
            bytes((PROTOCOL_VERSION,)),
            g.server_version.encode() + b"\x00",
            struct.pack("<I", g.connection_id),
            scramble[:8],
            b"\x00",
            struct.pack("<HBHH", caps & 0xFFFF, g.charset, g.status, (caps >> 16) & 0xFFFF),
            bytes((len(scramble) + 1,)),
            struct.pack("<6xI", _extended_out(caps)),
            scramble[8:] + b"\x00",
            g.auth_plugin.encode() + b"\x00",
        )
    )


def parse_greeting(payload: bytes) -> Greeting:
    r = PayloadReader(payload)
    version = r.int1()
    if version != PROTOCOL_VERSION:
        raise ProtocolError(f"unsupported protocol version {version} from backend")
    server_version = r.null_str().decode("utf-8", "replace")
    connection_id = r.int4()
    part1 = r.fixed(8)
    r.int1()
    caps = r.int2()
    charset = r.int1() if r.remaining() else 0
    status = r.int2() if r.remaining() >= 2 else 0
    caps |= (r.int2() << 16) if r.remaining() >= 2 else 0
    auth_len = r.int1() if r.remaining() else 0
    filler = r.fixed(min(10, r.remaining()))
    caps |= _extended_capabilities(caps, filler)
    part2 = b""
    if caps & Capability.CLIENT_SECURE_CONNECTION:
        part2 = r.fixed(max(13, auth_len - 8)).rstrip(b"\x00")
    plugin = ""
    if caps & Capability.CLIENT_PLUGIN_AUTH and r.remaining():
        plugin = r.rest().split(b"\x00", 1)[0].decode()
    return Greeting(server_version, connection_id, part1 + part2, caps, charset, status, plugin)


def _extended_capabilities(caps: int, filler: bytes) -> int:
    """MariaDB's extended capabilities (as bits 32-63) from the last 4 bytes of a reserved
    filler; only a peer without CLIENT_MYSQL (CLIENT_LONG_PASSWORD) puts them there."""
    if caps & Capability.CLIENT_LONG_PASSWORD or len(filler) < 4:
        return 0
    return struct.unpack_from("<I", filler, len(filler) - 4)[0] << 32


def _extended_out(caps: int) -> int:
    """The extended capabilities to write; with CLIENT_MYSQL set the peer would not read them."""
    return 0 if caps & Capability.CLIENT_LONG_PASSWORD else caps >> 32


@dataclass(slots=True)
class HandshakeResponse:
    """HandshakeResponse41 (or, when ``ssl_request`` is set, only its SSLRequest prefix)."""

    capabilities: int
    max_packet: int
    charset: int
    user: str = ""
    auth_response: bytes = b""
    database: str | None = None
    auth_plugin: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    ssl_request: bool = False


def parse_handshake_response(payload: bytes) -> HandshakeResponse:
    r = PayloadReader(payload)
    if len(payload) < SSL_REQUEST_LENGTH:
        raise ProtocolError("Bad handshake: handshake response too short")
    caps = r.int4()
    if not caps & Capability.CLIENT_PROTOCOL_41:
        raise ProtocolError("Bad handshake: clients older than protocol 4.1 are not supported")
    max_packet = r.int4()
    charset = r.int1()
    caps |= _extended_capabilities(caps, r.fixed(23))
    if len(payload) == SSL_REQUEST_LENGTH and caps & Capability.CLIENT_SSL:
        return HandshakeResponse(caps, max_packet, charset, ssl_request=True)
    names = client_codec(charset)  # the server reads the user and database in it
    user = r.null_str().decode(names, "replace")
    if caps & Capability.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA:
        auth = r.lenenc_str()
    elif caps & Capability.CLIENT_SECURE_CONNECTION:
        auth = r.fixed(r.int1())
    else:
        auth = r.null_str()
    database = None
    if caps & Capability.CLIENT_CONNECT_WITH_DB and r.remaining():
        database = r.null_str().decode(names, "replace") or None
    plugin, attrs = _plugin_and_attributes(r, caps)
    return HandshakeResponse(caps, max_packet, charset, user, auth, database, plugin, attrs)


def _plugin_and_attributes(r: PayloadReader, caps: int) -> tuple[str, dict[str, str]]:
    """The optional tail of HandshakeResponse41 and COM_CHANGE_USER."""
    plugin = ""
    if caps & Capability.CLIENT_PLUGIN_AUTH and r.remaining():
        plugin = r.null_str().decode("ascii", "replace")
    attrs: dict[str, str] = {}
    if caps & Capability.CLIENT_CONNECT_ATTRS and r.remaining():
        block = PayloadReader(r.lenenc_str())
        while block.remaining():
            key = block.lenenc_str().decode("utf-8", "replace")
            attrs[key] = block.lenenc_str().decode("utf-8", "replace")
    return plugin, attrs


def build_handshake_response(resp: HandshakeResponse) -> bytes:
    caps = resp.capabilities
    parts = [
        struct.pack(
            "<IIB19xI", caps & 0xFFFFFFFF, resp.max_packet, resp.charset, _extended_out(caps)
        ),
    ]
    if resp.ssl_request:
        return b"".join(parts)
    names = client_codec(resp.charset)
    parts.append(resp.user.encode(names, "replace") + b"\x00")
    if caps & Capability.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA:
        parts.append(lenenc_str(resp.auth_response))
    else:
        parts.append(bytes((len(resp.auth_response),)) + resp.auth_response)
    if caps & Capability.CLIENT_CONNECT_WITH_DB:
        parts.append((resp.database or "").encode(names, "replace") + b"\x00")
    if caps & Capability.CLIENT_PLUGIN_AUTH:
        parts.append(resp.auth_plugin.encode() + b"\x00")
    if caps & Capability.CLIENT_CONNECT_ATTRS:
        block = b"".join(
            lenenc_str(k.encode()) + lenenc_str(v.encode()) for k, v in resp.attributes.items()
        )
        parts.append(lenenc_int(len(block)) + block)
    return b"".join(parts)


def build_auth_switch(plugin: str, data: bytes) -> bytes:
    return bytes((AUTH_SWITCH_REQUEST,)) + plugin.encode() + b"\x00" + data


def parse_auth_switch(payload: bytes) -> tuple[str, bytes]:
    r = PayloadReader(payload, 1)
    plugin = r.null_str().decode()
    return plugin, r.rest()


@dataclass(slots=True)
class ChangeUser:
    user: str
    auth_response: bytes
    database: str | None
    charset: int
    auth_plugin: str
    attributes: dict[str, str]


def parse_change_user(payload: bytes, caps: int, codec: str = "utf-8") -> ChangeUser:
    """COM_CHANGE_USER; its names are in the character set it names, else in ``codec``
    (the session's client set, which the server reads them in then)."""
    r = PayloadReader(payload, 1)
    user = r.null_str()
    if caps & Capability.CLIENT_SECURE_CONNECTION:
        auth = r.fixed(r.int1())
    else:
        auth = r.null_str()
    database = r.null_str() if r.remaining() else b""
    charset = r.int2() if r.remaining() >= 2 else 0
    plugin, attrs = _plugin_and_attributes(r, caps)
    names = client_codec(charset) if charset else codec
    return ChangeUser(
        user.decode(names, "replace"),
        auth,
        database.decode(names, "replace") or None,
        charset,
        plugin,
        attrs,
    )
