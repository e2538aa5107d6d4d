"""A deliberately simple blocking MySQL client for protocol-level tests (bad input included)."""

from __future__ import annotations

import socket

from myguard._fast import twin
from myguard.protocol.auth import MYSQL_NATIVE_PASSWORD, native_token
from myguard.protocol.constants import PROXY_CAPABILITIES, UTF8MB4_GENERAL_CI, Capability
from myguard.protocol.generic_response import ErrPacket, parse_err
from myguard.protocol.handshake import (
    Greeting,
    HandshakeResponse,
    build_handshake_response,
    parse_greeting,
)

framing = twin("framing")


class GreetingRefused(Exception):
    """The server answered the connection with an ERR packet instead of a greeting."""

    def __init__(self, err: ErrPacket) -> None:
        super().__init__(f"ERROR {err.code} ({err.sqlstate}): {err.message}")
        self.err = err


class RawClient:
    def __init__(self, port: int, timeout: float = 10) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        self.buffer = framing.PacketBuffer(1 << 30)
        self.seq = 0
        self.greeting: Greeting | None = None
        self.capabilities = 0  # as negotiated

    def read_packet(self, *, any_seq: bool = False) -> bytes:
        """The next packet; with ``any_seq`` its sequence id is not checked (error replies)."""
        while True:
            if any_seq and len(self.buffer) >= 4:
                self.seq = self.buffer._buf[3]
            got = self.buffer.next_packet(self.seq)
            if got is not None:
                payload, self.seq = got
                return payload
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionResetError("closed by server")
            self.buffer.feed(data)

    def read_error(self) -> ErrPacket:
        return as_error(self.read_packet(any_seq=True))

    def write_packet(self, payload: bytes) -> None:
        data, self.seq = framing.build_packets(payload, self.seq)
        self.sock.sendall(data)

    def read_greeting(self) -> Greeting:
        self.seq = 0
        payload = self.read_packet()
        if payload[:1] == b"\xff":
            raise GreetingRefused(parse_err(payload))
        self.greeting = parse_greeting(payload)
        return self.greeting

    def login(
        self,
        user: str,
        password: str,
        database: str | None = None,
        *,
        deprecate_eof: bool = True,
        extended_metadata: bool = False,
        collation: int = UTF8MB4_GENERAL_CI,
        session_track: bool = True,
    ) -> bytes:
        greeting = self.read_greeting()
        # Everything myguard offers but compression (this client speaks plain packets), and
        # CLIENT_NO_SCHEMA, which it must not pass on.
        caps = (int(PROXY_CAPABILITIES) | Capability.CLIENT_NO_SCHEMA) & ~int(
            Capability.CLIENT_CONNECT_WITH_DB | Capability.CLIENT_COMPRESS
        )
        if not deprecate_eof:
            caps &= ~int(Capability.CLIENT_DEPRECATE_EOF)
        if not session_track:
            caps &= ~int(Capability.CLIENT_SESSION_TRACK)
        if database:
            caps |= Capability.CLIENT_CONNECT_WITH_DB
        if extended_metadata:
            # As a MariaDB client does: without CLIENT_MYSQL its extended capabilities go out.
            caps &= ~int(Capability.CLIENT_LONG_PASSWORD)
        else:
            caps &= ~int(Capability.MARIADB_CLIENT_EXTENDED_METADATA)
        self.capabilities = caps & greeting.capabilities
        resp = HandshakeResponse(
            caps,
            1 << 24,
            collation,
            user,
            native_token(password.encode(), greeting.scramble),
            database,
            MYSQL_NATIVE_PASSWORD,
            {"program_name": "raw_client"},
        )
        self.write_packet(build_handshake_response(resp))
        return self.read_packet()

    def command(self, payload: bytes) -> bytes:
        self.seq = 0
        self.write_packet(payload)
        return self.read_packet()

    def closed(self) -> bool:
        """True when the server has closed the connection (after any pending data)."""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.sock.close()


def as_error(payload: bytes) -> ErrPacket:
    assert payload[:1] == b"\xff", f"expected an ERR packet, got {payload[:40]!r}"
    return parse_err(payload)
