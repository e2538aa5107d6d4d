"""Binary-protocol temporal cells to and from their text-protocol spelling.

Masking works on the text spelling so that a hashed DATETIME is the same whichever
protocol carried it.
"""

from __future__ import annotations

import struct

_DATE = struct.Struct("<HBB")
_CLOCK = struct.Struct("<BBB")
_MICRO = struct.Struct("<I")
_TIME = struct.Struct("<BIBBB")


def _fraction(micro: int, decimals: int) -> str:
    if not 0 < decimals <= 6:
        return ""
    return "." + f"{micro:06d}"[:decimals]


def date_text(raw: bytes, decimals: int, with_clock: bool) -> bytes:
    """DATE/DATETIME/TIMESTAMP binary cell body (0, 4, 7 or 11 bytes) → text."""
    year, month, day = _DATE.unpack_from(raw) if len(raw) >= 4 else (0, 0, 0)
    text = f"{year:04d}-{month:02d}-{day:02d}"
    if with_clock:
        hour, minute, second = _CLOCK.unpack_from(raw, 4) if len(raw) >= 7 else (0, 0, 0)
        micro = _MICRO.unpack_from(raw, 7)[0] if len(raw) >= 11 else 0
        text += f" {hour:02d}:{minute:02d}:{second:02d}" + _fraction(micro, decimals)
    return text.encode()


def time_text(raw: bytes, decimals: int) -> bytes:
    """TIME binary cell body (0, 8 or 12 bytes) → text (hours may exceed 24)."""
    neg, days, hour, minute, second = _TIME.unpack_from(raw) if len(raw) >= 8 else (0,) * 5
    micro = _MICRO.unpack_from(raw, 8)[0] if len(raw) >= 12 else 0
    sign = "-" if neg else ""
    return (
        f"{sign}{days * 24 + hour:02d}:{minute:02d}:{second:02d}" + _fraction(micro, decimals)
    ).encode()


def _split_fraction(text: str) -> tuple[str, int]:
    whole, _, frac = text.partition(".")
    return whole, int((frac + "000000")[:6]) if frac else 0


def date_binary(text: bytes) -> bytes:
    """Text DATE/DATETIME → binary cell body; ValueError when it is not one."""
    day_part, _, clock = text.decode("ascii").strip().partition(" ")
    year, month, day = (int(x) for x in day_part.split("-"))
    out = _DATE.pack(year, month, day)
    if not clock:
        return out
    whole, micro = _split_fraction(clock)
    hour, minute, second = (int(x) for x in whole.split(":"))
    out += _CLOCK.pack(hour, minute, second)
    return out + _MICRO.pack(micro) if micro else out


def time_binary(text: bytes) -> bytes:
    """Text TIME → binary cell body; ValueError when it is not one."""
    value = text.decode("ascii").strip()
    neg = value.startswith("-")
    whole, micro = _split_fraction(value.lstrip("-"))
    hours, minute, second = (int(x) for x in whole.split(":"))
    out = _TIME.pack(int(neg), hours // 24, hours % 24, minute, second)
    return out + _MICRO.pack(micro) if micro else out
