"""A MySQL packet stream over an asyncio connection, used for both client and backend sides."""

from __future__ import annotations

import asyncio
import ssl

from myguard._fast import load
from myguard.net.tls_layer import TlsLayer

_framing = load("framing")

READ_CHUNK = 256 * 1024


class ConnectionLost(Exception):
    """The peer closed the connection or the socket failed."""


class PacketStream:
    """Reads and writes MySQL packets, keeping the sequence id of the current exchange."""

    __slots__ = ("reader", "writer", "buffer", "seq", "peer", "_tls")

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_payload: int
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.buffer = _framing.PacketBuffer(max_payload)
        self.seq = 0
        peer = writer.get_extra_info("peername")
        self.peer: str = peer[0] if isinstance(peer, tuple) else "localhost"
        self._tls: TlsLayer | None = None

    async def _fill(self) -> None:
        try:
            data = await self.reader.read(READ_CHUNK)
        except (ConnectionError, OSError, ssl.SSLError) as exc:
            raise ConnectionLost(str(exc)) from exc
        if not data:
            raise ConnectionLost("connection closed by peer")
        if self._tls is not None:
            try:
                data = self._tls.decrypt(data)
            except ssl.SSLError as exc:
                raise ConnectionLost(f"TLS error: {exc}") from exc
        self.buffer.feed(data)

    async def read_packet(self) -> bytes:
        """The next logical packet's payload; its sequence id must be ``self.seq``."""
        while True:
            got = self.buffer.next_packet(self.seq)
            if got is not None:
                payload, self.seq = got
                return payload
            await self._fill()

    async def wait_closed(self) -> bool:
        """Wait until the peer sends something (kept for later) or closes; True if closed."""
        try:
            await self._fill()
        except ConnectionLost:
            return True
        return False

    async def read_chunk(self) -> bytes:
        """Whatever raw bytes are buffered or next arrive (for relaying byte runs)."""
        if not len(self.buffer):
            await self._fill()
        return self.buffer.take()

    def unread(self, data: bytes) -> None:
        """Put back raw bytes that belong to a later exchange."""
        rest = self.buffer.take()
        self.buffer.feed(data)
        if rest:
            self.buffer.feed(rest)

    def write_packet(self, payload: bytes) -> None:
        data, self.seq = _framing.build_packets(payload, self.seq)
        self.write_raw(data)

    def write_raw(self, data: bytes) -> None:
        if self._tls is None:
            self.writer.write(data)
        else:
            self._tls.write(data)

    async def drain(self) -> None:
        try:
            await self.writer.drain()
        except (ConnectionError, OSError, ssl.SSLError) as exc:
            raise ConnectionLost(str(exc)) from exc

    async def start_tls(
        self, context: ssl.SSLContext, *, server_side: bool, server_hostname: str | None = None
    ) -> None:
        """Upgrade to TLS in place (after an SSLRequest, or toward a TLS backend).

        Bytes already buffered (the client's ClientHello may arrive with its SSLRequest)
        are the start of the TLS stream, not packets.
        """
        early = self.buffer.take()
        layer = TlsLayer(
            context,
            self.reader,
            self.writer,
            server_side=server_side,
            server_hostname=server_hostname,
        )
        try:
            plain = await layer.handshake(early)
        except (ConnectionError, OSError, ssl.SSLError) as exc:
            raise ConnectionLost(f"TLS handshake failed: {exc}") from exc
        self._tls = layer
        if plain:
            self.buffer.feed(plain)

    @property
    def tls(self) -> bool:
        return self._tls is not None

    @property
    def tls_version(self) -> str | None:
        return self._tls.sslobj.version() if self._tls is not None else None

    def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()
