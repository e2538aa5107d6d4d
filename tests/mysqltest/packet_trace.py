"""Raw packet capture for protocol reproductions: every packet a server sends, described.

Built on tests/raw_client.py. ``trace`` reads packets without interpreting the response
grammar (the thing under test), so a capture stops either at a packet count taken from a
direct run, or after a quiet period.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass

from raw_client import RawClient

STATUS_FLAGS = {
    0x0001: "IN_TRANS",
    0x0002: "AUTOCOMMIT",
    0x0008: "MORE_RESULTS_EXISTS",
    0x0010: "NO_GOOD_INDEX_USED",
    0x0020: "NO_INDEX_USED",
    0x0040: "CURSOR_EXISTS",
    0x0080: "LAST_ROW_SENT",
    0x0100: "DB_DROPPED",
    0x0200: "NO_BACKSLASH_ESCAPES",
    0x0400: "METADATA_CHANGED",
    0x0800: "QUERY_WAS_SLOW",
    0x1000: "PS_OUT_PARAMS",
    0x2000: "IN_TRANS_READONLY",
    0x4000: "SESSION_STATE_CHANGED",
}

COM_STMT_PREPARE = 0x16
COM_STMT_EXECUTE = 0x17
COM_STMT_CLOSE = 0x19
COM_STMT_FETCH = 0x1C
CURSOR_TYPE_NO_CURSOR = 0x00
CURSOR_TYPE_READ_ONLY = 0x01


def flag_names(status: int) -> str:
    names = [name for bit, name in STATUS_FLAGS.items() if status & bit]
    return "|".join(names) or "0"


def lenenc(buf: bytes, pos: int) -> tuple[int, int]:
    first = buf[pos]
    if first < 0xFB:
        return first, pos + 1
    size = {0xFC: 2, 0xFD: 3, 0xFE: 8}[first]
    return int.from_bytes(buf[pos + 1 : pos + 1 + size], "little"), pos + 1 + size


@dataclass(frozen=True)
class Packet:
    seq: int
    payload: bytes

    @property
    def status(self) -> int | None:
        """Server status of an OK or EOF packet (OK-with-0xFE included), else None."""
        p = self.payload
        if p[:1] == b"\xfe" and len(p) < 9:
            return int.from_bytes(p[3:5], "little") if len(p) >= 5 else 0
        if p[:1] in (b"\x00", b"\xfe") and len(p) >= 7:
            _, pos = lenenc(p, 1)
            _, pos = lenenc(p, pos)
            return int.from_bytes(p[pos : pos + 2], "little")
        return None

    def kind(self) -> str:
        """A short name: OK, EOF, OK(0xFE), ERR, or DATA (column count, definition, row)."""
        p = self.payload
        if p[:1] == b"\xff":
            return "ERR"
        if p[:1] == b"\xfe" and len(p) < 9:
            return "EOF"
        if p[:1] == b"\xfe" and len(p) >= 7:
            return "OK(0xFE)"  # an EOF-replacing OK (DEPRECATE_EOF), or a row starting 0xFE
        if p[:1] == b"\x00" and len(p) >= 7:
            return "OK"  # or a binary row / PREPARE_OK: the caller knows which
        return "DATA"

    def describe(self) -> str:
        p = self.payload
        kind = self.kind()
        text = f"seq={self.seq:<3} len={len(p):<5} {kind:<8}"
        if kind == "ERR":
            code = int.from_bytes(p[1:3], "little")
            return f"{text} code={code} {p[3:].decode('utf-8', 'replace')!r}"
        status = self.status
        if status is not None and kind != "DATA":
            text += f" status=0x{status:04x} {flag_names(status)}"
        return text + f" head={p[:12].hex(' ')}"


def connect(port: int, user: str, password: str, database: str, *, deprecate_eof: bool):
    client = RawClient(port, timeout=10)
    answer = client.login(user, password, database, deprecate_eof=deprecate_eof)
    assert answer[:1] == b"\x00", f"login failed: {answer!r}"
    return client


def send(client: RawClient, payload: bytes) -> None:
    client.seq = 0
    client.write_packet(payload)


def read_packets(
    client: RawClient, count: int | None, quiet: float, deadline: float
) -> list[Packet]:
    """``count`` packets (None: until ``quiet`` seconds without data), by ``deadline``."""
    packets: list[Packet] = []
    while count is None or len(packets) < count:
        now = time.monotonic()
        if now >= deadline:
            raise TimeoutError(f"after {len(packets)} packets: {[x.describe() for x in packets]}")
        buf = client.buffer
        if len(buf) >= 4:
            seq = buf._buf[3]
            got = buf.next_packet(seq)
            if got is not None:
                packets.append(Packet(seq, got[0]))
                continue
        client.sock.settimeout(min(quiet if count is None else 1.0, deadline - now))
        try:
            data = client.sock.recv(65536)
        except TimeoutError:
            if count is None:
                break
            continue
        if not data:
            raise ConnectionResetError(f"closed after {len(packets)} packets")
        buf.feed(data)
    return packets


def prepare(sql: str) -> bytes:
    return bytes([COM_STMT_PREPARE]) + sql.encode()


def execute(stmt_id: int, cursor_flags: int) -> bytes:
    # COM_STMT_EXECUTE without parameters: id, flags, iteration count 1.
    return bytes([COM_STMT_EXECUTE]) + struct.pack("<IBI", stmt_id, cursor_flags, 1)


def fetch(stmt_id: int, rows: int) -> bytes:
    return bytes([COM_STMT_FETCH]) + struct.pack("<II", stmt_id, rows)


def stmt_id(prepare_ok: Packet) -> int:
    return int.from_bytes(prepare_ok.payload[1:5], "little")
