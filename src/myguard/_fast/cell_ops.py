"""Cell functions that the compiled RowMasker can run without calling back into Python.

A CellOp is an ordinary cell function: calling it runs ``fn``, the definition. It also
names an operation that ``rowmask.pyx`` performs in C on the same bytes, so the common
strategies cost no Python call per cell. The twin simply calls it; the property tests
hold the compiled operation to the definition, byte for byte. Where C cannot be sure
of giving the same bytes (text that is not valid in its character set), it calls ``fn``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Cell = Callable[[bytes | None], bytes | None]

# Operations. NULL stays NULL for all but CONSTANT.
CONSTANT = 1  # every cell, NULL included, becomes ``arg`` (bytes, or None for NULL)
REPLACE = 2  # every non-NULL cell becomes ``arg``
PARTIAL = 3  # '*' for all characters but the last ``arg`` (none when the value is short)
EMAIL = 4  # "****" and the value from its last '@'; "****" alone when there is none
HASH = 5  # the first HASH_HEX_DIGITS hex digits of HMAC-SHA256 of the value, ``arg`` the key

HASH_HEX_DIGITS = 16

# Character sets whose valid text C can count and cut as Python's codecs would (and
# that spell hex digits in ASCII, as HASH writes them).
TEXT_UTF8 = 1
TEXT_BYTES = 2  # latin-1: every byte is one character
TEXT_CP1252 = 3  # MySQL's latin1: five bytes are undefined
TEXT_ASCII = 4
TEXT_MODES = {"utf-8": TEXT_UTF8, "latin-1": TEXT_BYTES, "cp1252": TEXT_CP1252, "ascii": TEXT_ASCII}


@dataclass(frozen=True, slots=True)
class CellOp:
    op: int
    fn: Cell
    arg: bytes | int | None = None
    text: int = 0  # TEXT_* for PARTIAL, EMAIL and HASH

    def __call__(self, value: bytes | None) -> bytes | None:
        return self.fn(value)
