"""Property tests of the statement fingerprint: the compiled module and its twin agree,
and the shape ignores what it claims to ignore (literal values, spacing, comments, case).

The compiled module is imported explicitly: these tests fail, not skip, when it is not
built."""

from __future__ import annotations

import importlib

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from myguard._fast import twin

compiled = importlib.import_module("myguard._fast.fingerprint")
python = twin("fingerprint")

SETTINGS = settings(max_examples=300, deadline=None)
CHEAP = settings(max_examples=1000, deadline=None)


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) % 2**64
    return h


# --- a grammar of SQL-ish tokens --------------------------------------------------------

KEYWORDS = [
    "select", "from", "where", "and", "or", "not", "in", "values", "value", "insert",
    "into", "update", "set", "delete", "drop", "table", "order", "by", "limit", "is",
    "join", "on", "as", "prepare", "union",
]  # fmt: skip
PUNCT = list("(),.=-+*/;?@<>%") + ["<=", ">=", "!=", ":=", "||"]
WHITESPACE = st.text(alphabet=" \t\n\r\x0b\x0c", min_size=1, max_size=3)
# Comment and string bodies avoid '*' so that no body can end or open a comment.
BODY = st.text(alphabet="abcXYZ019 _-#;!'\"`\\@.,()", max_size=8)


def _mixed_case(draw: st.DrawFn, word: str) -> str:
    flips = draw(st.integers(min_value=0, max_value=2 ** len(word) - 1))
    return "".join(c.upper() if flips >> k & 1 else c for k, c in enumerate(word))


@st.composite
def keywords(draw: st.DrawFn) -> str:
    return _mixed_case(draw, draw(st.sampled_from(KEYWORDS)))


@st.composite
def identifiers(draw: st.DrawFn) -> str:
    name = draw(
        st.from_regex(r"[a-z_][a-z0-9_$]{0,5}|[0-9]{1,2}[a-z_][a-z0-9_]{0,3}", fullmatch=True)
    )
    return _mixed_case(draw, name)


@st.composite
def backticked(draw: st.DrawFn) -> str:
    body = draw(st.text(alphabet="abAB1 '\"-#/*\\", max_size=6))
    return "`" + body + draw(st.sampled_from(["", "``"])) + "`"


@st.composite
def strings(draw: st.DrawFn) -> str:
    quote = draw(st.sampled_from(["'", '"']))
    pieces = draw(
        st.lists(
            st.one_of(
                st.text(alphabet="abc 19-#/!`_", min_size=1, max_size=4),
                st.sampled_from([quote * 2, "\\" + quote, "\\\\", "\\n", "\\" + "'\"`"[0]]),
            ),
            max_size=4,
        )
    )
    # N'...' takes single quotes only; N"..." is the identifier n and a string.
    prefixes = ["", "N", "_utf8mb4"] if quote == "'" else ["", "_latin1"]
    return draw(st.sampled_from(prefixes)) + quote + "".join(pieces) + quote


numbers = st.one_of(
    st.integers(min_value=0, max_value=10**12).map(str),
    st.from_regex(r"[0-9]{0,3}\.[0-9]{1,3}([eE][+-]?[0-9]{1,2})?|[0-9]{1,3}\.", fullmatch=True),
    st.from_regex(r"[0-9]{1,3}[eE][+-]?[0-9]{1,2}", fullmatch=True),
    st.from_regex(r"0x[0-9a-fA-F]{1,6}|0b[01]{1,6}", fullmatch=True),
    st.from_regex(r"[xX]'[0-9a-f]{0,4}'|[bB]'[01]{0,4}'", fullmatch=True),
)
# Literal values: everything the shape turns into '?'. Signs are structure, not literal.
literals = st.one_of(numbers, strings(), st.sampled_from(["NULL", "null", "?"]))

comments = st.one_of(
    # The leading space keeps a body starting with '!' or '+' from making it code.
    BODY.map(lambda b: "/* " + b + "*/"),
    BODY.map(lambda b: "#" + b.replace("\n", "") + "\n"),
    BODY.map(lambda b: "-- " + b.replace("\n", "") + "\n"),
)
executable = st.sampled_from(["/*!", "/*!50001", "/*!40101", "/*M!", "/*M!100101", "*/"])
hints = BODY.map(lambda b: "/*+ " + b + " */")
unterminated = st.sampled_from(["'abc", '"abc', "`abc", "/* abc", "/*!50001 abc", "x'ab", "'a\\"])


@st.composite
def collapsible(draw: st.DrawFn) -> list[tuple[str, str]]:
    """``in (lit, ...)`` or ``values (lit, ...), (...)`` as tokens."""
    width = draw(st.integers(min_value=1, max_value=3))
    rows = draw(st.integers(min_value=1, max_value=3))
    out: list[tuple[str, str]] = []
    kw = draw(st.sampled_from(["in", "values", "VALUE"]))
    out.append(("word", kw))
    for r in range(rows if kw != "in" else 1):
        if r:
            out.append(("code", ","))
        out.append(("code", "("))
        for c in range(width):
            if c:
                out.append(("code", ","))
            out.append(("lit", draw(literals)))
        out.append(("code", ")"))
    return out


def _single(kind: str, strategy: st.SearchStrategy[str]) -> st.SearchStrategy:
    return strategy.map(lambda text: [(kind, text)])


# A statement is a list of (kind, text) tokens; kind "word" marks case-foldable words and
# "lit" marks literal values. None of these tokens leaves a quote or comment open.
closed_token = st.one_of(
    _single("word", keywords()),
    _single("word", identifiers()),
    _single("code", backticked()),
    _single("lit", literals),
    _single("code", st.sampled_from(PUNCT)),
    _single("comment", comments),
    _single("code", executable),
    _single("code", hints),
    collapsible(),
)
statements = st.lists(closed_token, max_size=14).map(lambda groups: [t for g in groups for t in g])


def join(tokens: list[tuple[str, str]], seps: list[str] | None = None) -> bytes:
    if seps is None:
        seps = [" "] * len(tokens)
    glued = []
    for (_, text), sep in zip(tokens, seps, strict=True):
        if text.endswith("*") and sep.startswith("/"):
            sep = " " + sep  # '*' then '/*' would read as '*/', the end of a /*! comment
        glued.append(text + sep)
    return "".join(glued).encode()


@st.composite
def raw_sql(draw: st.DrawFn) -> bytes:
    """Tokens glued with or without whitespace, unterminated ones included."""
    parts = draw(
        st.lists(
            st.one_of(
                keywords(), identifiers(), backticked(), literals, st.sampled_from(PUNCT),
                comments, executable, hints, unterminated, WHITESPACE,
            ),
            max_size=16,
        )
    )  # fmt: skip
    return "".join(parts).encode()


# --- compiled and twin agree ------------------------------------------------------------


def agree(sql: bytes) -> None:
    h, out = compiled.fingerprint(sql)
    assert (h, out) == python.fingerprint(sql)
    assert compiled.fingerprint_hash(sql) == h
    assert python.fingerprint_hash(sql) == h
    assert h == fnv1a64(out)


@CHEAP
@given(st.binary(max_size=200))
def test_agree_on_random_bytes(sql):
    agree(sql)


@CHEAP
@given(st.text(alphabet="'\"`\\/*!+-#M0123456789xXbBeE.(),?;\n\t\x00 inINvalues", max_size=60))
def test_agree_on_random_sql_characters(text):
    agree(text.encode())


@SETTINGS
@given(raw_sql())
def test_agree_on_sqlish_token_soup(sql):
    agree(sql)


@SETTINGS
@given(statements)
def test_agree_on_statements(tokens):
    agree(join(tokens))


# --- what the shape ignores ---------------------------------------------------------------


@SETTINGS
@given(statements, st.data())
def test_literal_values_do_not_matter(tokens, data):
    other = [(k, data.draw(literals) if k == "lit" else t) for k, t in tokens]
    assert compiled.fingerprint(join(tokens)) == compiled.fingerprint(join(other))


@SETTINGS
@given(statements, st.data())
def test_spacing_and_comments_do_not_matter(tokens, data):
    seps = data.draw(
        st.lists(
            st.one_of(WHITESPACE, comments, st.tuples(WHITESPACE, comments).map("".join)),
            min_size=len(tokens),
            max_size=len(tokens),
        )
    )
    with_comments = [(k, t) for k, t in tokens if k != "comment"]
    spaced = join(with_comments, seps[: len(with_comments)])
    assert compiled.fingerprint(join(tokens)) == compiled.fingerprint(spaced)


@SETTINGS
@given(statements, st.data())
def test_case_of_words_does_not_matter(tokens, data):
    other = [
        (k, data.draw(st.sampled_from([t.upper(), t.lower()])) if k == "word" else t)
        for k, t in tokens
    ]
    assert compiled.fingerprint(join(tokens)) == compiled.fingerprint(join(other))


@SETTINGS
@given(
    st.lists(literals, min_size=1, max_size=6),
    st.lists(st.lists(literals, min_size=1, max_size=4), min_size=1, max_size=5),
)
def test_list_lengths_do_not_matter(items, rows):
    in_list = b"select * from t where a in (" + ", ".join(items).encode() + b")"
    assert compiled.fingerprint(in_list)[1] == b"select * from t where a in (...)"
    tuples = ", ".join("(" + ",".join(r) + ")" for r in rows)
    insert = b"insert into t values " + tuples.encode() + b" on duplicate key update a = 1"
    assert (
        compiled.fingerprint(insert)[1]
        == b"insert into t values (...) on duplicate key update a = ?"
    )


@SETTINGS
@given(statements)
def test_shape_is_a_fixed_point(tokens):
    # Holds for space-separated tokens; glued ones need not (``1--/**/`` gives ``?--``,
    # whose trailing ``--`` is then a comment).
    _, out = compiled.fingerprint(join(tokens))
    # An unterminated token leaves its NUL marker, which a second pass would swallow.
    assume(b"\x00" not in out)
    assert compiled.fingerprint(out)[1] == out


@SETTINGS
@given(statements)
def test_executable_comment_content_is_kept(tokens):
    sql = join(tokens)
    marked = b"/*!50001 " + sql + b" drop table secret */"
    assert b"drop table secret */" in compiled.fingerprint(marked)[1]
