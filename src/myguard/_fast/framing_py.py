"""Packet framing: cut MySQL packets out of a byte stream, and build them.

Pure-Python twin of ``framing.pyx``; both must behave identically.

A packet is a 3-byte little-endian payload length, a 1-byte sequence id and the payload.
A payload of exactly 0xFFFFFF bytes continues in the next packet; the logical payload is
the concatenation, ending with the first fragment shorter than that.
"""

from __future__ import annotations

from myguard.protocol.errors import (
    ER_NET_PACKET_TOO_LARGE,
    ER_NET_PACKETS_OUT_OF_ORDER,
    ProtocolError,
)

MAX_FRAGMENT = 0xFFFFFF


class PacketBuffer:
    """Receive buffer that yields whole logical packets and checks sequence ids."""

    def __init__(self, max_payload: int) -> None:
        self.max_payload = max_payload
        # False on the compressed protocol, where the server reads the packets inside the
        # compressed ones without checking their sequence ids (Connector/J numbers them on).
        self.checks_sequence = True
        self._buf = bytearray()

    def __len__(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> None:
        self._buf += data

    def take(self) -> bytes:
        """Remove and return everything buffered (for raw relaying)."""
        data = bytes(self._buf)
        self._buf.clear()
        return data

    def next_packet(self, seq: int) -> tuple[bytes, int] | None:
        """Return ``(payload, next_seq)`` for the next complete logical packet, or None.

        ``seq`` is the sequence id the first fragment must carry (any, and the next
        follows it, when ``checks_sequence`` is off).
        """
        buf = self._buf
        pos = 0
        total = 0
        expected = seq
        while True:
            if len(buf) - pos < 4:
                return None
            length = buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16)
            got = buf[pos + 3]
            if got != expected:
                if self.checks_sequence:
                    raise ProtocolError(
                        f"Got packets out of order (expected sequence id {expected}, got {got})",
                        ER_NET_PACKETS_OUT_OF_ORDER,
                    )
                expected = got
            total += length
            if total > self.max_payload:
                raise ProtocolError(
                    f"Got a packet bigger than 'max_allowed_packet' bytes ({self.max_payload})",
                    ER_NET_PACKET_TOO_LARGE,
                )
            if len(buf) - pos - 4 < length:
                return None
            pos += 4 + length
            expected = (expected + 1) & 0xFF
            if length < MAX_FRAGMENT:
                break
        payload = _join(buf, pos)
        del buf[:pos]
        return payload, expected


def _join(buf: bytearray, end: int) -> bytes:
    parts = []
    pos = 0
    while pos < end:
        length = buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16)
        parts.append(bytes(buf[pos + 4 : pos + 4 + length]))
        pos += 4 + length
    return b"".join(parts)


def build_packets(payload: bytes, seq: int) -> tuple[bytes, int]:
    """Frame ``payload`` as one or more packets; return the bytes and the next sequence id."""
    out = bytearray()
    pos = 0
    n = len(payload)
    while True:
        chunk = min(n - pos, MAX_FRAGMENT)
        out += bytes((chunk & 0xFF, (chunk >> 8) & 0xFF, chunk >> 16, seq))
        out += payload[pos : pos + chunk]
        pos += chunk
        seq = (seq + 1) & 0xFF
        if chunk < MAX_FRAGMENT:
            return bytes(out), seq
