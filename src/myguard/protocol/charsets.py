"""Collation ids to Python codecs and bytes per character, for character-aware masking
and for the names a client sends in its character set at login.

Result-set columns carry the collation id of ``character_set_results``; only the
character set matters here. Ids follow MySQL 8 and MariaDB 11 (the uca1400 blocks).
Character sets Python has no codec for (armscii8, dec8, hp8, swe7, keybcs2, geostd8)
read as UTF-8, as an unknown id does.
"""

from __future__ import annotations

import codecs

from myguard.protocol.column_types import BINARY_CHARSET

# (codec, max bytes per character)
_UTF8MB4 = ("utf-8", 4)
_UTF8MB3 = ("utf-8", 3)
_LATIN1 = ("cp1252", 1)  # MySQL's latin1 is Windows-1252
_ASCII = ("ascii", 1)
_BINARY = ("latin-1", 1)  # bytes map 1:1 to code points
_UCS2 = ("utf-16-be", 2)
_UTF16 = ("utf-16-be", 4)
_UTF16LE = ("utf-16-le", 4)
_UTF32 = ("utf-32-be", 4)


def _ids(*spans: int | tuple[int, int]) -> list[int]:
    out: list[int] = []
    for span in spans:
        lo, hi = span if isinstance(span, tuple) else (span, span)
        out.extend(range(lo, hi + 1))
    return out


_TABLE: dict[int, tuple[str, int]] = {}
for _ids_of, _info in (
    (_ids(45, 46, (224, 247), (255, 323), (2304, 2559)), _UTF8MB4),
    (_ids(33, 76, 83, (192, 215), 223, (2048, 2303)), _UTF8MB3),
    (_ids(5, 8, 15, 31, 47, 48, 49, 94), _LATIN1),
    (_ids(11, 65), _ASCII),
    (_ids(35, 90, (128, 151), 159, (2560, 2815)), _UCS2),
    (_ids(54, 55, (101, 124), (2816, 3071)), _UTF16),
    (_ids(56, 62), _UTF16LE),
    (_ids(60, 61, (160, 183), (3072, 3327)), _UTF32),
    (_ids(1, 84), ("big5", 2)),
    (_ids(13, 88), ("shift_jis", 2)),
    (_ids(19, 85), ("euc_kr", 2)),
    (_ids(24, 86), ("gb2312", 2)),
    (_ids(28, 87), ("gbk", 2)),
    (_ids(95, 96), ("cp932", 2)),
    (_ids(97, 98, 12, 91), ("euc_jp", 3)),
    (_ids(248, 249, 250), ("gb18030", 4)),
    (_ids(2, 9, 21, 27, 77), ("iso8859_2", 1)),  # latin2
    (_ids(26, 34, 44, 66, 99), ("cp1250", 1)),
    (_ids(14, 23, 50, 51, 52), ("cp1251", 1)),
    (_ids(57, 67), ("cp1256", 1)),
    (_ids(29, 58, 59), ("cp1257", 1)),
    (_ids(4, 80), ("cp850", 1)),
    (_ids(40, 81), ("cp852", 1)),
    (_ids(36, 68), ("cp866", 1)),
    (_ids(25, 70), ("iso8859_7", 1)),  # greek
    (_ids(16, 71), ("iso8859_8", 1)),  # hebrew
    (_ids(7, 74), ("koi8_r", 1)),
    (_ids(22, 75), ("koi8_u", 1)),
    (_ids(30, 78), ("iso8859_9", 1)),  # latin5
    (_ids(20, 41, 42, 79), ("iso8859_13", 1)),  # latin7
    (_ids(38, 43), ("mac_latin2", 1)),  # macce
    (_ids(39, 53), ("mac_roman", 1)),
    (_ids(18, 89), ("tis_620", 1)),
    (_ids(BINARY_CHARSET), _BINARY),
):
    for _id in _ids_of:
        _TABLE[_id] = _info


def codec(collation_id: int) -> str:
    """The Python codec for a collation id; utf-8 when unknown (the common default)."""
    return _TABLE.get(collation_id, _UTF8MB4)[0]


def client_codec(collation_id: int) -> str:
    """The codec of the names (user, database) a client sends at login in the character
    set of ``collation_id``, which the server reads them in; UTF-8 for the sets no client
    may use (ucs2, utf16, utf32: the server takes its default then) and unknown ids."""
    name = codec(collation_id)
    return "utf-8" if name.startswith("utf-") else name


# The default collation of the character set each codec reads (for myguard's own results).
_DEFAULT_COLLATIONS = {
    "utf-8": 45, "cp1252": 8, "ascii": 11, "iso8859-2": 9, "cp1250": 26, "cp1251": 51,
    "cp1256": 57, "cp1257": 59, "cp850": 4, "cp852": 40, "cp866": 36, "iso8859-7": 25,
    "iso8859-8": 16, "koi8-r": 7, "koi8-u": 22, "iso8859-9": 30, "iso8859-13": 41,
    "mac-latin2": 38, "mac-roman": 39, "tis-620": 18, "big5": 1, "shift_jis": 13,
    "euc_kr": 19, "gb2312": 24, "gbk": 28, "cp932": 95, "euc_jp": 12, "gb18030": 248,
}  # fmt: skip


def collation_of(codec_name: str) -> int:
    """The default collation id of the character set ``codec_name`` reads (utf8mb4's for
    one not listed)."""
    try:
        name = codecs.lookup(codec_name).name
    except LookupError:
        return _DEFAULT_COLLATIONS["utf-8"]
    return _DEFAULT_COLLATIONS.get(name, _DEFAULT_COLLATIONS["utf-8"])


def max_bytes_per_char(collation_id: int) -> int:
    """The most bytes one character can take; 4 when unknown, so lengths are never short."""
    return _TABLE.get(collation_id, _UTF8MB4)[1]


# Character sets the server refuses as the client's (Variable 'character_set_client' can't
# be set to the value of ...).
_NOT_CLIENT_CHARSETS = frozenset({"ucs2", "utf16", "utf16le", "utf32"})


class ClientCharsets:
    """The client character sets a backend lists, with their collations
    (information_schema.COLLATIONS): ``SET NAMES`` of one of them cannot fail."""

    __slots__ = ("_collations",)

    def __init__(self, rows: list[tuple[str, str]]) -> None:
        collations: dict[str, set[str]] = {}
        for charset, collation in rows:
            collations.setdefault(charset.lower(), set()).add(collation.lower())
        self._collations = {
            charset: frozenset(names)
            for charset, names in collations.items()
            if charset not in _NOT_CLIENT_CHARSETS
        }

    def allows(self, charset: str, collation: str | None) -> bool:
        """Is ``SET NAMES charset [COLLATE collation]`` (lowercase names) valid here?"""
        names = self._collations.get(charset)
        return names is not None and (collation is None or collation in names)
