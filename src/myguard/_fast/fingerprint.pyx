# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled statement fingerprint; ``fingerprint_py`` is its pure-Python twin.

See the twin's module docstring for the exact normalisation rules and the safety notes
(literal-dependent statements such as ``PREPARE s FROM 'DROP TABLE t'`` share one
fingerprint per shape and are the caller's concern). Both modules hash the shape with
64-bit FNV-1a (offset 0xcbf29ce484222325, prime 0x100000001b3) and agree bit for bit.

The scanner works on the bytes' C buffer and writes the shape into a C buffer: no Python
object is created per character. ``fingerprint_hash`` hashes shape bytes as soon as they
are final and keeps only a pending IN/VALUES list buffered.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport uint64_t
from libc.stdlib cimport free, malloc

cdef uint64_t FNV_OFFSET = 0xCBF29CE484222325ULL
cdef uint64_t FNV_PRIME = 0x100000001B3ULL

# Token kinds, as far as list collapsing needs to tell them apart.
cdef enum:
    K_OTHER = 0
    K_VALUE = 1
    K_SIGN = 2
    K_COMMA = 3
    K_LPAREN = 4
    K_RPAREN = 5
    K_IN = 6
    K_VALUES = 7

# List-collapsing states; every state from S_LIST on holds shape bytes that a closing
# parenthesis may still cut, so fingerprint_hash must not hash them yet.
cdef enum:
    S_NONE = 0
    S_KW = 1
    S_LIST = 2
    S_DONE = 3
    S_TAIL_COMMA = 4
    S_TAIL_LIST = 5

# Byte classes.
cdef enum:
    C_SPACE = 1
    C_DIGIT = 2
    C_IDENT = 4
    C_HEX = 8

cdef unsigned char CLS[256]
cdef unsigned char LOWER[256]


cdef void _init_tables() noexcept:
    cdef int c
    for c in range(256):
        CLS[c] = 0
        LOWER[c] = c + 32 if 65 <= c <= 90 else c
        if c == 32 or 9 <= c <= 13:
            CLS[c] |= C_SPACE
        if 48 <= c <= 57:
            CLS[c] |= C_DIGIT | C_HEX | C_IDENT
        if 65 <= c <= 90 or 97 <= c <= 122 or c == 95 or c == 36 or c >= 128:
            CLS[c] |= C_IDENT
        if 65 <= c <= 70 or 97 <= c <= 102:
            CLS[c] |= C_HEX


_init_tables()

# A shape is never more than twice its input: each byte yields at most one shape byte,
# except that collapsing a list of at least 2 input bytes (``1)``) writes 4 (``...)``).
cdef enum:
    STACK_CAP = 2048

ctypedef struct Shape:
    unsigned char *out
    Py_ssize_t len
    uint64_t hash
    bint hash_only  # hash final bytes at once instead of keeping them
    bint started  # a token was emitted (leading whitespace is dropped)
    bint pending  # whitespace or a comment was skipped since the last token
    int state
    bint values  # the open list follows VALUES rather than IN
    bint expect  # inside a list: the next item must be a literal
    Py_ssize_t mark  # where the collapsible part of the buffer starts


cdef inline void put(Shape *s, unsigned char c) noexcept nogil:
    if s.hash_only and s.state < S_LIST:
        s.hash = (s.hash ^ c) * FNV_PRIME
    else:
        s.out[s.len] = c
        s.len += 1


cdef inline void flush(Shape *s) noexcept nogil:
    # Called when buffered bytes became final.
    cdef Py_ssize_t k
    if s.hash_only:
        for k in range(s.len):
            s.hash = (s.hash ^ s.out[k]) * FNV_PRIME
        s.len = 0


cdef inline void reset(Shape *s) noexcept nogil:
    s.state = S_NONE
    flush(s)


cdef inline bint begin(Shape *s, int kind) noexcept nogil:
    """Advance the list machine for a token; False when the token was absorbed."""
    if s.state == S_LIST or s.state == S_TAIL_LIST:
        if kind == K_RPAREN and not s.expect:
            # The list held only literals: cut it back to its start.
            s.len = s.mark
            s.pending = False
            if s.state == S_LIST:
                put(s, b'.')
                put(s, b'.')
                put(s, b'.')
                put(s, b')')
            if s.values:
                s.state = S_DONE
                flush(s)
                s.mark = s.len
            else:
                reset(s)
            return False
        if kind == K_VALUE and s.expect:
            s.expect = False
        elif kind == K_COMMA and not s.expect:
            s.expect = True
        elif not (kind == K_SIGN and s.expect):
            reset(s)
    elif s.state == S_KW:
        if kind != K_LPAREN:
            s.state = S_NONE
    elif s.state == S_DONE:
        if kind == K_COMMA:
            s.state = S_TAIL_COMMA
        else:
            reset(s)
    elif s.state == S_TAIL_COMMA:
        if kind == K_LPAREN:
            s.state = S_TAIL_LIST
            s.expect = True
        else:
            reset(s)
    if s.pending and s.started:
        put(s, b' ')
    s.pending = False
    s.started = True
    return True


cdef inline void finish(Shape *s, int kind) noexcept nogil:
    if s.state == S_KW and kind == K_LPAREN:
        s.state = S_LIST
        s.expect = True
        s.mark = s.len
    elif s.state == S_NONE and (kind == K_IN or kind == K_VALUES):
        s.state = S_KW
        s.values = kind == K_VALUES


cdef inline void token1(Shape *s, int kind, unsigned char c) noexcept nogil:
    if begin(s, kind):
        put(s, c)
        finish(s, kind)


cdef inline void token_raw(
    Shape *s, const unsigned char *p, Py_ssize_t a, Py_ssize_t b, bint lower
) noexcept nogil:
    cdef Py_ssize_t k
    if begin(s, K_OTHER):
        for k in range(a, b):
            put(s, LOWER[p[k]] if lower else p[k])
        finish(s, K_OTHER)


cdef inline Py_ssize_t find_close(const unsigned char *p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """Index of the next ``*/`` at or after ``i``, or -1."""
    while i + 1 < n:
        if p[i] == b'*' and p[i + 1] == b'/':
            return i
        i += 1
    return -1


cdef inline Py_ssize_t skip_quoted(
    const unsigned char *p, Py_ssize_t i, Py_ssize_t n, unsigned char quote
) noexcept nogil:
    """End of the quoted token whose opening quote is at ``i - 1``; ``n + 1`` when the
    quote never closes."""
    cdef bint backslash = quote != b'`'  # backticks know only the doubled-quote escape
    cdef unsigned char c
    while i < n:
        c = p[i]
        if c == quote:
            if i + 1 < n and p[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 2 if backslash and c == b'\\' else 1
    return n + 1


cdef inline Py_ssize_t skip_line(
    const unsigned char *p, Py_ssize_t i, Py_ssize_t n, bint in_exec
) noexcept nogil:
    """End of a line comment starting at ``i``: the newline is whitespace, so stop at it."""
    cdef unsigned char c
    while i < n:
        c = p[i]
        # MySQL's lexer also stops a line comment at a NUL byte.
        if c == b'\n' or c == 0:
            return i
        if in_exec and c == b'*' and i + 1 < n and p[i + 1] == b'/':
            return i
        i += 1
    return n


cdef inline Py_ssize_t number_end(const unsigned char *p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """End of the number at ``i``, or -1 when the word there is an identifier (``1t``)."""
    cdef Py_ssize_t j, k
    cdef unsigned char x
    cdef bint real
    if p[i] == b'0' and i + 1 < n and (
        p[i + 1] == b'x' or p[i + 1] == b'X' or p[i + 1] == b'b' or p[i + 1] == b'B'
    ):
        x = LOWER[p[i + 1]]
        j = i + 2
        while j < n and (
            (x == b'x' and CLS[p[j]] & C_HEX) or (x == b'b' and (p[j] == b'0' or p[j] == b'1'))
        ):
            j += 1
        if j > i + 2 and (j >= n or not CLS[p[j]] & C_IDENT):
            return j
        return -1
    j = i
    while j < n and CLS[p[j]] & C_DIGIT:
        j += 1
    real = j < n and p[j] == b'.'
    if real:
        j += 1
        while j < n and CLS[p[j]] & C_DIGIT:
            j += 1
    if j < n and (p[j] == b'e' or p[j] == b'E'):
        k = j + 1
        if k < n and (p[k] == b'+' or p[k] == b'-'):
            k += 1
        if k < n and CLS[p[k]] & C_DIGIT:
            j = k + 1
            while j < n and CLS[p[j]] & C_DIGIT:
                j += 1
            return j
    # MySQL reads digits followed by letters (``1t``, ``2e``) as an identifier.
    if not real and j < n and CLS[p[j]] & C_IDENT:
        return -1
    return j


cdef inline int word_kind(const unsigned char *p, Py_ssize_t i, Py_ssize_t j) noexcept nogil:
    cdef Py_ssize_t m = j - i
    if m == 2 and LOWER[p[i]] == b'i' and LOWER[p[i + 1]] == b'n':
        return K_IN
    if m == 4:
        if (LOWER[p[i]] == b'n' and LOWER[p[i + 1]] == b'u' and LOWER[p[i + 2]] == b'l'
                and LOWER[p[i + 3]] == b'l'):
            return K_VALUE
    elif m == 5 or m == 6:
        if (LOWER[p[i]] == b'v' and LOWER[p[i + 1]] == b'a' and LOWER[p[i + 2]] == b'l'
                and LOWER[p[i + 3]] == b'u' and LOWER[p[i + 4]] == b'e'
                and (m == 5 or LOWER[p[i + 5]] == b's')):
            return K_VALUES
    return K_OTHER


cdef inline void quoted_token(
    Shape *s, const unsigned char *p, Py_ssize_t a, Py_ssize_t b, int exec_depth
) noexcept nogil:
    """Emit a string literal as ``?`` unless a skipped versioned comment could end in it."""
    if exec_depth:
        if find_close(p, a, b) >= 0:
            token_raw(s, p, a, b, False)
            return
    token1(s, K_VALUE, b'?')


cdef inline int exec_marker(const unsigned char *p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """Length of the executable-comment marker at ``i`` (``/*!``, ``/*M!``), else 0."""
    if i + 2 < n and p[i + 2] == b'!':
        return 3
    # MariaDB wants an upper-case M; a lower-case one is kept as code too, to be safe.
    if i + 3 < n and (p[i + 2] == b'M' or p[i + 2] == b'm') and p[i + 3] == b'!':
        return 4
    return 0


cdef void scan(Shape *s, const unsigned char *p, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i = 0, j, k
    cdef int exec_depth = 0  # open executable comments
    cdef Py_ssize_t word_end = -1  # a '.' right after a word separates identifiers
    cdef Py_ssize_t dot_end = -1  # after such a '.', a word starting with a digit is a name
    cdef int c, nxt, kind, marker
    cdef bint pend
    cdef bint open_end = False  # a quote or comment never closed
    while i < n:
        c = p[i]
        nxt = p[i + 1] if i + 1 < n else -1
        if CLS[c] & C_SPACE:
            s.pending = True
            i += 1
        elif c == b"'" or c == b'"':
            j = skip_quoted(p, i + 1, n, c)
            if j > n:
                open_end = True
                j = n
            quoted_token(s, p, i, j, exec_depth)
            i = j
        elif c == b'`':
            j = skip_quoted(p, i + 1, n, c)
            if j > n:
                open_end = True
                j = n
            token_raw(s, p, i, j, False)
            i = word_end = j
        elif c == b'#':
            i = skip_line(p, i + 1, n, exec_depth > 0)
            s.pending = True
        elif c == b'-' and nxt == b'-' and (i + 2 >= n or p[i + 2] <= 0x20 or p[i + 2] == 0x7F):
            i = skip_line(p, i + 2, n, exec_depth > 0)
            s.pending = True
        elif c == b'/' and nxt == b'*':
            marker = exec_marker(p, i, n)
            if marker:
                j = i + marker
                while j < n and CLS[p[j]] & C_DIGIT:
                    j += 1
                token_raw(s, p, i, j, False)
                exec_depth += 1
            elif i + 2 < n and p[i + 2] == b'+':
                k = find_close(p, i + 3, n)
                open_end = open_end or k < 0
                j = n if k < 0 else k + 2
                # Hints stay visible, with whitespace folded like the main loop.
                if begin(s, K_OTHER):
                    pend = False
                    for k in range(i, j):
                        if CLS[p[k]] & C_SPACE:
                            pend = True
                        else:
                            if pend:
                                put(s, b' ')
                                pend = False
                            put(s, LOWER[p[k]])
                    finish(s, K_OTHER)
            else:
                k = find_close(p, i + 2, n)
                open_end = open_end or k < 0
                j = n if k < 0 else k + 2
                s.pending = True
            i = j
        elif c == b'*' and nxt == b'/' and exec_depth:
            token_raw(s, p, i, i + 2, False)
            exec_depth -= 1
            i += 2
        elif CLS[c] & C_IDENT or (
            c == b'.' and nxt >= 0 and CLS[nxt] & C_DIGIT and word_end != i
        ):
            if nxt == b"'" and (
                c == b'x' or c == b'X' or c == b'b' or c == b'B' or c == b'n' or c == b'N'
            ):
                j = skip_quoted(p, i + 2, n, b"'")
                if j > n:
                    open_end = True
                    j = n
                quoted_token(s, p, i, j, exec_depth)
                i = j
                continue
            j = number_end(p, i, n) if c == b'.' or (CLS[c] & C_DIGIT and dot_end != i) else -1
            if j >= 0:
                token1(s, K_VALUE, b'?')
                i = j
                continue
            j = i + 1
            while j < n and CLS[p[j]] & C_IDENT:
                j += 1
            if c == b'_' and j < n and (p[j] == b"'" or p[j] == b'"'):
                # A charset introducer (``_utf8mb4'x'``) is part of the literal.
                k = skip_quoted(p, j + 1, n, p[j])
                if k > n:
                    open_end = True
                    k = n
                quoted_token(s, p, i, k, exec_depth)
                i = k
                continue
            kind = word_kind(p, i, j)
            if kind == K_VALUE:
                token1(s, K_VALUE, b'?')
            elif begin(s, kind):
                for k in range(i, j):
                    put(s, LOWER[p[k]])
                finish(s, kind)
            i = word_end = j
        else:
            if c == b'.' and word_end == i:
                dot_end = i + 1
            if c == b',':
                kind = K_COMMA
            elif c == b'(':
                kind = K_LPAREN
            elif c == b')':
                kind = K_RPAREN
            elif c == b'?':
                kind = K_VALUE
            elif c == b'-' or c == b'+':
                kind = K_SIGN
            else:
                kind = K_OTHER
            token1(s, kind, LOWER[c])
            i += 1
    if s.state >= S_LIST:
        reset(s)
    if open_end or exec_depth:
        token1(s, K_OTHER, 0)


cdef inline void start(Shape *s, unsigned char *buf, bint hash_only) noexcept nogil:
    s.out = buf
    s.len = 0
    s.hash = FNV_OFFSET
    s.hash_only = hash_only
    s.started = False
    s.pending = False
    s.state = S_NONE
    s.values = False
    s.expect = True
    s.mark = 0


def fingerprint(bytes sql not None) -> tuple[int, bytes]:
    """Return ``(64-bit FNV-1a hash of the shape, shape)`` of the statement ``sql``."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(sql)
    cdef unsigned char stack[STACK_CAP]
    cdef unsigned char *buf = stack
    cdef Shape s
    cdef Py_ssize_t k
    if 2 * n + 16 > STACK_CAP:
        buf = <unsigned char *> malloc(2 * n + 16)
        if buf == NULL:
            raise MemoryError()
    try:
        start(&s, buf, False)
        scan(&s, <const unsigned char *> PyBytes_AS_STRING(sql), n)
        for k in range(s.len):
            s.hash = (s.hash ^ buf[k]) * FNV_PRIME
        return s.hash, PyBytes_FromStringAndSize(<char *> buf, s.len)
    finally:
        if buf != stack:
            free(buf)


cpdef object fingerprint_hash(bytes sql):
    """Return ``fingerprint(sql)[0]`` without building the shape."""
    if sql is None:
        raise TypeError("fingerprint_hash() takes bytes, not None")
    cdef Py_ssize_t n = PyBytes_GET_SIZE(sql)
    cdef unsigned char stack[STACK_CAP]
    cdef unsigned char *buf = stack
    cdef Shape s
    if 2 * n + 16 > STACK_CAP:
        buf = <unsigned char *> malloc(2 * n + 16)
        if buf == NULL:
            raise MemoryError()
    start(&s, buf, True)
    scan(&s, <const unsigned char *> PyBytes_AS_STRING(sql), n)
    if buf != stack:
        free(buf)
    return s.hash
