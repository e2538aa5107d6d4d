"""Pure-Python twin of ``myguard._fast.fingerprint``: the statement fingerprint.

Its own tokenizer, compiled because it runs on every statement and produces nothing but
the shape and its hash; analysis (analysis/lexer.py) and audit redaction (audit/redact.py)
need token values and the text as written, and run off the per-statement path.

``fingerprint(sql)`` normalises a MySQL/MariaDB statement to its *shape* and returns
``(hash, shape)``; ``fingerprint_hash(sql)`` returns only the hash. The hash is 64-bit
FNV-1a (offset 0xcbf29ce484222325, prime 0x100000001b3) over the shape bytes, so the
compiled module and this twin agree bit for bit.

Normalisation (one left-to-right pass, byte oriented, embedded NUL bytes are ordinary):

* ``'...'`` and ``"..."`` strings (``''``/``""`` and backslash escapes), numbers
  (``12``, ``1.5``, ``.5``, ``1e-3``, ``0x1F``, ``0b101``, ``X'1F'``, ``B'01'``,
  ``N'text'``, ``_utf8mb4'text'``), ``NULL`` and ``?`` placeholders all become ``?``. A leading minus stays
  an operator: ``-5`` is ``-?``. Words that start with a digit but are not numbers
  (``1t``) are identifiers, as in MySQL, and so is a digit word right after ``ident.``.
* ``IN (?, ?)`` becomes ``IN (...)``; ``VALUES (?, ?), (?, ?)`` (or ``VALUE``) becomes
  ``VALUES (...)``. A list collapses only when it holds nothing but literals, commas and
  unary signs; ``IN (SELECT ...)`` or ``VALUES (?, now())`` stay as they are.
* Whitespace runs become one space, leading and trailing whitespace is dropped.
  ``# ...``, ``-- ...`` (dash dash followed by a space, a control byte or the end) and
  ``/* ... */`` comments are dropped and count as whitespace. ``1--1`` is code.
* Everything outside quotes is ASCII-lowercased; backtick identifiers are kept verbatim.
* Executable comments are code: ``/*!``, ``/*!50001``, ``/*M!``, ``/*M!100101`` keep
  their marker (case and version digits verbatim) and the closing ``*/``; their content
  is normalised like any code. Optimizer hints ``/*+ ... */`` are kept with only
  whitespace folded and case lowered.
* Unterminated strings, identifiers, block comments and executable comments run to the
  end of the input and add a NUL byte token to the shape, so that malformed text never
  shares a fingerprint (and a cached decision) with the well-formed statement it starts
  like (``SELECT 'x`` is not ``SELECT 'x'``).

Safety, because the policy layer caches decisions by fingerprint:

* String literals are collapsed, so a statement whose meaning depends on a literal's
  text (``PREPARE s FROM 'DROP TABLE t'``, ``LOAD DATA INFILE '/path'``,
  ``SELECT ... INTO OUTFILE '/path'``, account names ``'alice'@'%'``, user variables
  ``@'name'``) shares its fingerprint with every other value: that is the caller's
  concern.
* The default ``sql_mode`` is assumed: with ``ANSI_QUOTES`` ``"x"`` is an identifier and
  with ``NO_BACKSLASH_ESCAPES`` string boundaries differ, so callers must not share
  fingerprints across sessions in those modes.
* A server skips a versioned comment it is too old for up to the first ``*/`` without
  honouring quotes. So inside executable comments a quoted token whose body contains
  ``*/`` is kept verbatim instead of collapsed, and ``#``/``-- `` comments end at ``*/``
  as well as at a newline: code after that ``*/`` is never hidden in a literal or a
  comment.
* ASCII case folding merges identifiers that differ only in case (``T`` and ``t``),
  which are different tables when ``lower_case_table_names=0``.
"""

from __future__ import annotations

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK64 = 0xFFFFFFFFFFFFFFFF

# Token kinds, as far as list collapsing needs to tell them apart.
_OTHER = 0
_VALUE = 1
_SIGN = 2
_COMMA = 3
_LPAREN = 4
_RPAREN = 5
_KW_IN = 6
_KW_VALUES = 7

# List-collapsing states. _LIST is inside ``in (`` / ``values (``; after a collapsed
# VALUES tuple, _DONE/_TAIL_COMMA/_TAIL_LIST swallow further ``, (?, ?)`` tuples.
_NONE = 0
_KW = 1
_LIST = 2
_DONE = 3
_TAIL_COMMA = 4
_TAIL_LIST = 5

_SPACE = frozenset(b" \t\n\r\v\f")
_DIGIT = frozenset(b"0123456789")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_IDENT = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$") | frozenset(
    range(0x80, 0x100)
)
_LOWER = bytes(c + 32 if 65 <= c <= 90 else c for c in range(256))


class _Shape:
    """The shape being built plus the state of the list-collapsing machine."""

    __slots__ = ("out", "pending", "state", "values", "expect", "mark")

    def __init__(self) -> None:
        self.out = bytearray()
        self.pending = False  # whitespace or a comment was skipped since the last token
        self.state = _NONE
        self.values = False  # the open list follows VALUES rather than IN
        self.expect = True  # inside a list: the next item must be a literal
        self.mark = 0  # where the collapsible part of the shape starts

    def token(self, kind: int, text: bytes) -> None:
        if self.state == _LIST or self.state == _TAIL_LIST:
            if kind == _RPAREN and not self.expect:
                self._collapse()
                return
            if kind == _VALUE and self.expect:
                self.expect = False
            elif kind == _COMMA and not self.expect:
                self.expect = True
            elif not (kind == _SIGN and self.expect):
                self.state = _NONE
        elif self.state == _KW:
            if kind != _LPAREN:
                self.state = _NONE
        elif self.state == _DONE:
            self.state = _TAIL_COMMA if kind == _COMMA else _NONE
        elif self.state == _TAIL_COMMA:
            if kind == _LPAREN:
                self.state = _TAIL_LIST
                self.expect = True
            else:
                self.state = _NONE
        if self.pending and self.out:
            self.out.append(0x20)
        self.pending = False
        self.out += text
        if self.state == _KW and kind == _LPAREN:
            self.state = _LIST
            self.expect = True
            self.mark = len(self.out)
        elif self.state == _NONE and (kind == _KW_IN or kind == _KW_VALUES):
            self.state = _KW
            self.values = kind == _KW_VALUES

    def _collapse(self) -> None:
        # The list held only literals: cut it back to its start.
        del self.out[self.mark :]
        self.pending = False
        if self.state == _LIST:
            self.out += b"...)"
        if self.values:
            self.state = _DONE
            self.mark = len(self.out)
        else:
            self.state = _NONE


def _skip_quoted(sql: bytes, i: int, quote: int) -> int:
    """End of the quoted token whose opening quote is at ``i - 1``; ``len(sql) + 1`` when
    the quote never closes."""
    n = len(sql)
    backslash = quote != 0x60  # backticks know only the doubled-quote escape
    while i < n:
        c = sql[i]
        if c == quote:
            if i + 1 < n and sql[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 2 if backslash and c == 0x5C else 1
    return n + 1


def _skip_line(sql: bytes, i: int, in_exec: bool) -> int:
    """End of a line comment starting at ``i``: the newline is whitespace, so stop at it."""
    n = len(sql)
    while i < n:
        c = sql[i]
        # MySQL's lexer also stops a line comment at a NUL byte.
        if c == 0x0A or c == 0:
            return i
        if in_exec and c == 0x2A and i + 1 < n and sql[i + 1] == 0x2F:
            return i
        i += 1
    return n


def _number_end(sql: bytes, i: int) -> int:
    """End of the number at ``i``, or -1 when the word there is an identifier (``1t``)."""
    n = len(sql)
    c = sql[i]
    if c == 0x30 and i + 1 < n and sql[i + 1] in b"xXbB":
        digits = _HEX if sql[i + 1] in b"xX" else b"01"
        j = i + 2
        while j < n and sql[j] in digits:
            j += 1
        if j > i + 2 and (j >= n or sql[j] not in _IDENT):
            return j
        return -1
    j = i
    while j < n and sql[j] in _DIGIT:
        j += 1
    real = j < n and sql[j] == 0x2E
    if real:
        j += 1
        while j < n and sql[j] in _DIGIT:
            j += 1
    if j < n and sql[j] in b"eE":
        k = j + 1
        if k < n and sql[k] in b"+-":
            k += 1
        if k < n and sql[k] in _DIGIT:
            j = k + 1
            while j < n and sql[j] in _DIGIT:
                j += 1
            return j
    # MySQL reads digits followed by letters (``1t``, ``2e``) as an identifier.
    if not real and j < n and sql[j] in _IDENT:
        return -1
    return j


def _word_end(sql: bytes, i: int) -> int:
    n = len(sql)
    while i < n and sql[i] in _IDENT:
        i += 1
    return i


def _word_kind(word: bytes) -> int:
    if word == b"in":
        return _KW_IN
    if word == b"values" or word == b"value":
        return _KW_VALUES
    if word == b"null":
        return _VALUE
    return _OTHER


def _quoted_token(shape: _Shape, sql: bytes, start: int, end: int, exec_depth: int) -> None:
    """Emit a string literal as ``?`` unless a skipped versioned comment could end in it."""
    if exec_depth and sql.find(b"*/", start, end) >= 0:
        shape.token(_OTHER, sql[start:end])
    else:
        shape.token(_VALUE, b"?")


def _exec_marker(sql: bytes, i: int) -> int:
    """Length of the executable-comment marker at ``i`` (``/*!``, ``/*M!``), else 0."""
    if sql.startswith(b"/*!", i):
        return 3
    # MariaDB wants an upper-case M; a lower-case one is kept as code too, to be safe.
    if sql.startswith(b"/*M!", i) or sql.startswith(b"/*m!", i):
        return 4
    return 0


def fingerprint(sql: bytes) -> tuple[int, bytes]:
    """Return ``(64-bit FNV-1a hash of the shape, shape)`` of the statement ``sql``."""
    if not isinstance(sql, bytes):
        raise TypeError(f"fingerprint expects bytes, not {type(sql).__name__}")
    shape = _Shape()
    n = len(sql)
    i = 0
    exec_depth = 0  # open executable comments
    word_end = -1  # where the last word ended: a '.' right there separates identifiers
    dot_end = -1  # just after such a '.': a word starting with a digit is an identifier
    open_end = False  # a quote or comment never closed
    while i < n:
        c = sql[i]
        nxt = sql[i + 1] if i + 1 < n else -1
        if c in _SPACE:
            shape.pending = True
            i += 1
        elif c == 0x27 or c == 0x22:
            j = _skip_quoted(sql, i + 1, c)
            open_end |= j > n
            j = min(j, n)
            _quoted_token(shape, sql, i, j, exec_depth)
            i = j
        elif c == 0x60:
            j = _skip_quoted(sql, i + 1, c)
            open_end |= j > n
            j = min(j, n)
            shape.token(_OTHER, sql[i:j])
            i = word_end = j
        elif c == 0x23:
            i = _skip_line(sql, i + 1, exec_depth > 0)
            shape.pending = True
        elif c == 0x2D and nxt == 0x2D and (i + 2 >= n or sql[i + 2] <= 0x20 or sql[i + 2] == 0x7F):
            i = _skip_line(sql, i + 2, exec_depth > 0)
            shape.pending = True
        elif c == 0x2F and nxt == 0x2A:
            marker = _exec_marker(sql, i)
            if marker:
                j = i + marker
                while j < n and sql[j] in _DIGIT:
                    j += 1
                shape.token(_OTHER, sql[i:j])
                exec_depth += 1
            elif i + 2 < n and sql[i + 2] == 0x2B:
                end = sql.find(b"*/", i + 3)
                open_end |= end < 0
                j = n if end < 0 else end + 2
                # Hints stay visible; split/join folds whitespace like the main loop.
                shape.token(_OTHER, b" ".join(sql[i:j].split()).translate(_LOWER))
            else:
                end = sql.find(b"*/", i + 2)
                open_end |= end < 0
                j = n if end < 0 else end + 2
                shape.pending = True
            i = j
        elif c == 0x2A and nxt == 0x2F and exec_depth:
            shape.token(_OTHER, b"*/")
            exec_depth -= 1
            i += 2
        elif c in _IDENT or (c == 0x2E and nxt in _DIGIT and word_end != i):
            if nxt == 0x27 and c in b"xXbBnN":
                j = _skip_quoted(sql, i + 2, 0x27)
                open_end |= j > n
                j = min(j, n)
                _quoted_token(shape, sql, i, j, exec_depth)
                i = j
                continue
            j = _number_end(sql, i) if c == 0x2E or (c in _DIGIT and dot_end != i) else -1
            if j >= 0:
                shape.token(_VALUE, b"?")
                i = j
                continue
            j = _word_end(sql, i)
            if c == 0x5F and j < n and (sql[j] == 0x27 or sql[j] == 0x22):
                # A charset introducer (``_utf8mb4'x'``) is part of the literal.
                j = _skip_quoted(sql, j + 1, sql[j])
                open_end |= j > n
                j = min(j, n)
                _quoted_token(shape, sql, i, j, exec_depth)
                i = j
                continue
            word = sql[i:j].translate(_LOWER)
            kind = _word_kind(word)
            shape.token(kind, b"?" if kind == _VALUE else word)
            i = word_end = j
        else:
            if c == 0x2E and word_end == i:
                dot_end = i + 1
            kind = _OTHER
            if c == 0x2C:
                kind = _COMMA
            elif c == 0x28:
                kind = _LPAREN
            elif c == 0x29:
                kind = _RPAREN
            elif c == 0x3F:
                kind = _VALUE
            elif c == 0x2D or c == 0x2B:
                kind = _SIGN
            shape.token(kind, _LOWER[c : c + 1])
            i += 1
    if open_end or exec_depth:
        shape.token(_OTHER, b"\x00")
    out = shape.out
    h = _FNV_OFFSET
    for b in out:
        h = ((h ^ b) * _FNV_PRIME) & _MASK64
    return h, bytes(out)


def fingerprint_hash(sql: bytes) -> int:
    """Return ``fingerprint(sql)[0]``."""
    return fingerprint(sql)[0]
