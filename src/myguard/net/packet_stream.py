"""A MySQL packet stream on one connection, used for both client and backend sides.

``PacketStream`` is the connection's asyncio protocol itself, not a wrapper around
StreamReader/StreamWriter: what the transport receives goes straight into the compiled
packet buffer, which keeps the received ``bytes`` as they are. A relayed result run is then
the very object the event loop handed over, not a third copy of it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import cast

from myguard._fast import load
from myguard.net.compression_layer import CompressedPacketError, CompressionLayer
from myguard.net.tls_layer import TlsLayer

_framing = load("framing")
_core = load("proxycore")  # layer_error: why a side is gone, as the core says it

# Received bytes the consumer has not asked for yet; above this, reading pauses until it
# does, so a slow client holds back the backend instead of filling memory.
PAUSE_READING_AT = 1 << 20


class ConnectionLost(Exception):
    """The peer closed the connection or the socket failed."""


class PacketStream(asyncio.Protocol):
    """Reads and writes MySQL packets, keeping the sequence id of the current exchange.

    ``on_connection`` is called with the stream once its transport is up (how a listening
    server starts a session for each accepted connection).
    """

    def __init__(
        self,
        max_payload: int,
        on_connection: Callable[[PacketStream], object] | None = None,
    ) -> None:
        self.buffer = _framing.PacketBuffer(max_payload)
        self.seq = 0
        self.peer = "localhost"
        self.peer_address = "localhost"  # host:port, as a process list shows it
        self.transport: asyncio.Transport | None = None
        self._on_connection = on_connection
        self._tls: TlsLayer | None = None
        # What bytes pass through between the packets and the transport, outermost first:
        # the compression layer (on top of TLS when both are on), else TLS, else nothing.
        self._layer: TlsLayer | CompressionLayer | None = None
        self._lost: str | None = None  # why the connection is gone, once it is
        self._waiter: asyncio.Future[None] | None = None  # a reader waiting for bytes
        self._drain_waiter: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._writing_paused = False

    # -- transport callbacks -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transport has asyncio.Transport's methods but not its base class
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.peer = peer[0]
            self.peer_address = f"{peer[0]}:{peer[1]}"
        if self._on_connection is not None:
            self._on_connection(self)

    def data_received(self, data: bytes) -> None:
        if self._layer is not None:
            try:
                data = self._layer.unwrap(data)
            except (ssl.SSLError, CompressedPacketError) as exc:
                self._lose(_core.layer_error(exc))
                self.close()
                return
        if data:
            self.buffer.feed(data)
        waiter = self._waiter
        if waiter is not None:
            if not waiter.done():
                waiter.set_result(None)
        elif not self._reading_paused and len(self.buffer) > PAUSE_READING_AT:
            self._reading_paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self._lose("connection closed by peer")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lose(str(exc) if exc else "connection closed by peer")
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _lose(self, reason: str) -> None:
        if self._lost is None:
            self._lost = reason
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- reading -----------------------------------------------------------------------

    async def _fill(self) -> None:
        """Wait until more bytes are buffered; ConnectionLost once none can come."""
        if self._lost is not None:
            raise ConnectionLost(self._lost)
        if self._reading_paused:
            self._reading_paused = False
            self.transport.resume_reading()
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def read_packet(self) -> bytes:
        """The next logical packet's payload; its sequence id must be ``self.seq``."""
        while True:
            got = self.buffer.next_packet(self.seq)
            if got is not None:
                payload, self.seq = got
                return payload
            await self._fill()

    async def read_chunk(self) -> bytes:
        """Whatever raw bytes are buffered or next arrive (for relaying byte runs)."""
        while not len(self.buffer):
            await self._fill()
        return self.buffer.take()

    async def wait_closed(self) -> bool:
        """Wait until the peer sends something (kept for later) or closes; True if closed."""
        try:
            while not len(self.buffer):
                await self._fill()
        except ConnectionLost:
            return True
        return False

    # -- writing -----------------------------------------------------------------------

    def write_packet(self, payload: bytes) -> None:
        data, self.seq = _framing.build_packets(payload, self.seq)
        self.write_raw(data)

    def write_commands(self, payloads: list[bytes]) -> None:
        """Commands pipelined in one send, each framed from sequence id 0."""
        self.write_raw(b"".join([_framing.build_packets(p, 0)[0] for p in payloads]))

    def write_raw(self, data: bytes) -> None:
        if self._lost is not None:
            raise ConnectionLost(self._lost)
        if self._layer is None:
            self.transport.write(data)
        else:
            self._layer.write(data)

    async def drain(self) -> None:
        """Wait while the transport's send buffer is over its high-water mark."""
        if self._writing_paused and self._lost is None:
            self._drain_waiter = asyncio.get_running_loop().create_future()
            try:
                await self._drain_waiter
            finally:
                self._drain_waiter = None
        if self._lost is not None:
            raise ConnectionLost(self._lost)

    # -- handing the socket to the proxy core ------------------------------------------------

    def hand_over(
        self,
    ) -> tuple[asyncio.Transport, TlsLayer | CompressionLayer | None, bytes, bool]:
        """For the protocol taking the transport over: the transport, the layer bytes pass
        through (``unwrap`` what is received, ``write``), the bytes received but not read,
        and whether the send buffer is full."""
        if self._reading_paused:
            self._reading_paused = False
            self.transport.resume_reading()
        return self.transport, self._layer, self.buffer.take(), self._writing_paused

    def take_back(self, unread: bytes, writing_paused: bool, lost: str | None) -> None:
        """Become the transport's protocol again, after ``hand_over``."""
        self.transport.set_protocol(self)
        if unread:
            self.buffer.feed(unread)
        self._writing_paused = writing_paused
        if lost is not None:
            self._lose(lost)

    # -- TLS -----------------------------------------------------------------------------

    async def start_tls(
        self, context: ssl.SSLContext, *, server_side: bool, server_hostname: str | None = None
    ) -> None:
        """Upgrade to TLS in place (after an SSLRequest, or toward a TLS backend).

        Bytes already buffered (the client's ClientHello may arrive with its SSLRequest)
        are the start of the TLS stream, not packets.
        """
        early = self.buffer.take()
        layer = TlsLayer(
            context, self.transport.write, server_side=server_side, server_hostname=server_hostname
        )
        try:
            plain = await layer.handshake(early, self.read_chunk)
        except ssl.SSLError as exc:
            raise ConnectionLost(f"TLS handshake failed: {exc}") from exc
        except ConnectionLost as exc:
            raise ConnectionLost(f"TLS handshake failed: {exc}") from exc
        # No await since the handshake's last read: nothing unencrypted is buffered.
        self._tls = self._layer = layer
        if plain:
            self.buffer.feed(plain)

    def start_compression(self) -> None:
        """Run the compressed protocol from here on (after the OK that ends a login with
        CLIENT_COMPRESS). Bytes already buffered came compressed."""
        layer = CompressionLayer(self.transport.write, below=self._tls)
        self._layer = layer
        self.buffer.checks_sequence = False
        early = self.buffer.take()
        if early:
            self.buffer.feed(layer.unwrap(early))

    @property
    def compressed(self) -> bool:
        return isinstance(self._layer, CompressionLayer)

    @property
    def checks_sequence(self) -> bool:
        """Do the packets that arrive carry checked sequence ids (not on the compressed
        protocol)? For the proxy core's own framing of the client's commands."""
        return self.buffer.checks_sequence

    @property
    def lost(self) -> str | None:
        """Why the connection is gone, or None while it is up."""
        return self._lost

    @property
    def tls(self) -> bool:
        return self._tls is not None

    @property
    def tls_version(self) -> str | None:
        return self._tls.sslobj.version() if self._tls is not None else None

    @property
    def tls_cipher(self) -> str | None:
        return self._tls.sslobj.cipher()[0] if self._tls is not None else None

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
