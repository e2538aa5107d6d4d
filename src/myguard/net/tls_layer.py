"""TLS on top of an already-open stream, with bytes that arrived before the upgrade.

MySQL clients send the SSLRequest packet and their TLS ClientHello back to back, so one
read can hold both. asyncio's ``start_tls`` cannot take bytes already read, so myguard
runs TLS itself over memory BIOs: whatever followed the SSLRequest is fed in first.
"""

from __future__ import annotations

import asyncio
import ssl


class TlsLayer:
    """Encrypts what is written and decrypts what is read, over a plain asyncio stream."""

    __slots__ = ("_incoming", "_outgoing", "sslobj", "_reader", "_writer")

    def __init__(
        self,
        context: ssl.SSLContext,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        server_side: bool,
        server_hostname: str | None = None,
    ) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self.sslobj = context.wrap_bio(
            self._incoming, self._outgoing, server_side=server_side, server_hostname=server_hostname
        )
        self._reader = reader
        self._writer = writer

    async def handshake(self, early: bytes) -> bytes:
        """Run the TLS handshake; returns plaintext that arrived with its last flight."""
        if early:
            self._incoming.write(early)
        while True:
            try:
                self.sslobj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                await self._writer.drain()
                data = await self._reader.read(65536)
                if not data:
                    raise ConnectionResetError(
                        "connection closed during the TLS handshake"
                    ) from None
                self._incoming.write(data)
        self._flush()
        await self._writer.drain()
        return self._drain_plaintext()

    def decrypt(self, data: bytes) -> bytes:
        self._incoming.write(data)
        plain = self._drain_plaintext()
        self._flush()  # TLS 1.3 may answer (key updates, tickets)
        return plain

    def _drain_plaintext(self) -> bytes:
        parts = []
        while True:
            try:
                chunk = self.sslobj.read(262144)
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                break
            if not chunk:
                break
            parts.append(chunk)
        return b"".join(parts)

    def write(self, data: bytes) -> None:
        self.sslobj.write(data)
        self._flush()

    def _flush(self) -> None:
        pending = self._outgoing.read()
        if pending:
            self._writer.write(pending)
