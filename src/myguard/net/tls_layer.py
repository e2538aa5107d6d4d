"""TLS on top of an already-open connection, with bytes that arrived before the upgrade.

MySQL clients send the SSLRequest packet and their TLS ClientHello back to back, so one
read can hold both. asyncio's ``start_tls`` cannot take bytes already read, so myguard
runs TLS itself over memory BIOs: whatever followed the SSLRequest is fed in first.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable


class TlsLayer:
    """Encrypts what is written and decrypts what is received; ``send`` puts bytes on the wire."""

    __slots__ = ("_incoming", "_outgoing", "sslobj", "_send")

    def __init__(
        self,
        context: ssl.SSLContext,
        send: Callable[[bytes], object],
        *,
        server_side: bool,
        server_hostname: str | None = None,
    ) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self.sslobj = context.wrap_bio(
            self._incoming, self._outgoing, server_side=server_side, server_hostname=server_hostname
        )
        self._send = send

    async def handshake(self, early: bytes, receive: Callable[[], Awaitable[bytes]]) -> bytes:
        """Run the TLS handshake, ``receive`` giving raw bytes from the peer.

        Returns plaintext that arrived with the handshake's last flight.
        """
        if early:
            self._incoming.write(early)
        while True:
            try:
                self.sslobj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                self._incoming.write(await receive())
            except ssl.SSLError:
                self._flush()  # the alert tells the peer why
                raise
        self._flush()
        return self._drain_plaintext()

    def unwrap(self, data: bytes) -> bytes:
        """Plaintext from ``data``. Raises ``ssl.SSLZeroReturnError`` once the peer closed
        TLS (close_notify): the connection is over, as at EOF, and the peer gets myguard's
        close_notify first (a client may hold its TCP connection open waiting for it)."""
        self._incoming.write(data)
        try:
            plain = self._read()
        except ssl.SSLZeroReturnError:
            try:
                self.sslobj.unwrap()
            except ssl.SSLError:
                pass
            self._flush()
            raise
        self._flush()  # TLS 1.3 may answer (key updates, tickets)
        return plain

    def _drain_plaintext(self) -> bytes:
        try:
            return self._read()
        except ssl.SSLZeroReturnError:  # closed right after the handshake: the next read ends it
            return b""

    def _read(self) -> bytes:
        parts = []
        while True:
            try:
                chunk = self.sslobj.read(262144)
            except ssl.SSLWantReadError:
                break
            if not chunk:  # what a read gives once close_notify came (ssl's own behaviour)
                raise ssl.SSLZeroReturnError(ssl.SSL_ERROR_ZERO_RETURN, "peer closed TLS")
            parts.append(chunk)
        return b"".join(parts)

    def write(self, data: bytes) -> None:
        self.sslobj.write(data)
        self._flush()

    def _flush(self) -> None:
        pending = self._outgoing.read()
        if pending:
            self._send(pending)
