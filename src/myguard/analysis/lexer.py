"""A small MySQL lexer: executable comments become code, other comments vanish, statements split.

One of three SQL tokenizers, each for what the others cannot give: this one yields token
values and statement boundaries for analysis (run only on a policy-cache miss);
``_fast/fingerprint`` is compiled, runs on every statement and yields only a stable shape
and its hash (literals, case and list lengths erased); ``audit/redact`` keeps the text as
written, literals out, comments and optimizer hints readable. Their quoting rules must
agree: the policy cache reuses this lexer's analysis for every text of one fingerprint.

sqlglot drops ``/*! ... */`` as a comment and gives up on many admin statements, so the proxy
needs its own view of the raw text before anything is parsed: a smuggled
``SELECT 1 /*! ; DROP TABLE t */`` must come out as two statements.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Order matters: comments and quoted runs must win over operators.
_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
    |(?P<xopen>/\*M?!\d{0,6})
    |(?P<comment>/\*.*?\*/|--(?:[ \t\r\f\v][^\n]*|(?=\n)|$)|\#[^\n]*)
    |(?P<xclose>\*/)
    |(?P<str>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
    |(?P<qid>`(?:[^`]|``)*`)
    |(?P<var>@@?(?:`(?:[^`]|``)*`|'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*"|[\w$.]*))
    |(?P<word>[^\W\d][\w$]*|\$[\w$]*|\d+[a-zA-Z_$][\w$]*)
    |(?P<num>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    |(?P<op><=>|->>|<=|>=|<>|!=|:=|\|\||&&|->|<<|>>|[-+*/%=<>!~^&|(),.;:?{}\[\]\\])
    |(?P<bad>.)
    """,
    re.VERBOSE | re.DOTALL,
)

# Statements whose body may contain ';' (stored programs, MariaDB anonymous blocks).
_ROUTINES = frozenset({"PROCEDURE", "FUNCTION", "TRIGGER", "EVENT"})
# Words that may sit between CREATE and the routine keyword.
_ROUTINE_PREFIX = frozenset({"OR", "REPLACE", "DEFINER", "AGGREGATE", "IF", "NOT", "EXISTS"})
# A bare END after these words closes a block other than BEGIN/CASE, so it does not count
# (END FOR, unless FOR UPDATE follows a CASE expression's END).
_END_SUFFIXES = frozenset({"IF", "LOOP", "WHILE", "REPEAT", "FOR"})
# MariaDB runs these blocks outside stored programs too: the statement ends at its END X.
_TOP_BLOCKS = frozenset({"IF", "LOOP", "WHILE", "REPEAT", "FOR", "CASE"})
_LOOP_BLOCKS = _TOP_BLOCKS - {"CASE"}  # CASE ... END CASE counts as BEGIN ... END does
# What a label may stand before (outside stored programs).
LABELLED = ("BEGIN", "LOOP", "WHILE", "REPEAT", "FOR")
# Blocks of these kinds nest inside one of their own kind without ambiguity (IF and REPEAT
# are functions too): a top-level one counts them; for the others the first END X ends the
# statement, which at worst splits a nested block early and leaves an unparsed remainder.
_NESTING = frozenset({"LOOP", "WHILE", "FOR"})


@dataclass(frozen=True, slots=True)
class Token:
    """One lexeme of code. ``kind`` is str, qid, var, word, num or op; ``upper`` for words."""

    kind: str
    text: str
    upper: str
    gap: bool  # whitespace or a comment preceded it

    @property
    def value(self) -> str:
        """The identifier or string content with quotes and escapes undone."""
        if self.kind == "qid":
            return self.text[1:-1].replace("``", "`")
        if self.kind == "str":
            quote = self.text[0]
            body = self.text[1:-1].replace(quote * 2, quote)
            return re.sub(r"\\(.)", _unescape, body)
        return self.text


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "Z": "\x1a", "b": "\b"}


def _unescape(match: re.Match[str]) -> str:
    char = match.group(1)
    return _ESCAPES.get(char, char)


class LexError(ValueError):
    """Text MySQL itself would refuse: unterminated quote or comment."""


def tokenize(sql: str) -> list[Token]:
    """Tokens of ``sql`` with executable comments opened and plain comments removed."""
    tokens: list[Token] = []
    gap = False
    open_exec = 0
    for match in _TOKEN_RE.finditer(sql):
        kind = match.lastgroup
        text = match.group()
        if kind in ("ws", "comment"):
            gap = True
            continue
        if kind == "xopen":
            # /*!50001 ... */ and /*M!100101 ... */ are code on a matching server: keep it.
            open_exec += 1
            gap = True
            continue
        if kind == "xclose":
            if not open_exec:
                raise LexError("'*/' outside a comment")
            open_exec -= 1
            gap = True
            continue
        if kind == "bad":
            if text in ("'", '"', "`") or text == "/":
                raise LexError(f"unterminated {text!r}")
            raise LexError(f"unexpected character {text!r}")
        if kind == "op" and text == "/" and sql.startswith("/*", match.start()):
            raise LexError("unterminated comment")
        upper = text.upper() if kind == "word" else text
        tokens.append(Token(kind, text, upper, gap))
        gap = False
    if open_exec:
        raise LexError("unterminated executable comment")
    return tokens


def double_quote_in_code(sql: str) -> bool:
    """Is there a double quote in ``sql`` outside single-quoted strings, backtick names and
    comments? Only such a one reads differently under ANSI_QUOTES (a name, not a string,
    with no backslash escapes): up to it, both modes split the text alike."""
    for match in _TOKEN_RE.finditer(sql):
        kind = match.lastgroup
        if kind == "str" or kind == "bad":
            if match.group()[0] == '"':
                return True
        elif kind == "var" and match.group().lstrip("@")[:1] == '"':
            return True
    return False


def code_tokens(sql: str) -> list[re.Match[str]]:
    """The lexemes of ``sql`` that are code (no whitespace, no comments), with their spans:
    for rewriting a statement in place."""
    return [m for m in _TOKEN_RE.finditer(sql) if m.lastgroup not in ("ws", "comment")]


def leading_words(sql: str, count: int) -> list[str]:
    """The first ``count`` lexemes of code in ``sql`` (all of them for -1), upper-cased,
    as the server reads them: comments skipped, an executable comment's text as code (its
    markers skipped). Reads no further than it needs, so a long statement costs no more."""
    words: list[str] = []
    for match in _TOKEN_RE.finditer(sql):
        if match.lastgroup in ("ws", "comment", "xopen", "xclose"):
            continue
        words.append(match.group().upper())
        if len(words) == count:
            break
    return words


def replace_calls(sql: str, function: str, replacement: str) -> str:
    """``sql`` with every call of the built-in ``function()`` (no arguments; any case,
    spacing and comments inside) replaced by ``replacement``; strings, quoted names,
    comments and schema-qualified (stored) functions of that name untouched. A select-list
    item holding a call, without an alias, gets its text as written for alias: the server
    names such a column by that text, and drivers and ``CREATE TABLE ... SELECT`` read it."""
    name = function.upper()
    tokens = [m for m in code_tokens(sql) if m.lastgroup not in ("xopen", "xclose")]
    edits: list[tuple[int, int, str]] = []  # (start, end, text) in order
    call: list[int] = []  # index of a name token that may open the call, then of "("
    for index, match in enumerate(tokens):
        text = match.group()
        qualified = index > 0 and tokens[index - 1].group() == "."
        if match.lastgroup == "word" and text.upper() == name and not qualified:
            call = [index]
        elif len(call) == 1 and text == "(":
            call.append(index)
        elif len(call) == 2 and text == ")":
            edits.append((tokens[call[0]].start(), match.end(), replacement))
            call = []
        else:
            call = []
    if not edits:
        return sql
    calls = [start for start, _, _ in edits]
    for first, last in _select_items(tokens):
        span_start, span_end = tokens[first].start(), tokens[last].end()
        if _aliased(tokens, first, last) or not any(span_start <= c < span_end for c in calls):
            continue
        written = sql[span_start:span_end]
        if len(written) <= _MAX_ALIAS:
            alias = "`" + written.replace("`", "``") + "`"
            edits.append((span_end, span_end, f" AS {alias}"))
    edits.sort(key=lambda edit: (edit[0], edit[1]))
    out: list[str] = []
    copied = 0
    for start, stop, text in edits:
        out.append(sql[copied:start])
        out.append(text)
        copied = stop
    out.append(sql[copied:])
    return "".join(out)


# An alias longer than this is refused by the server; such a column keeps the new text.
_MAX_ALIAS = 256
# Words that end a select list at its own depth.
_AFTER_SELECT_LIST = frozenset(
    {
        "FROM", "INTO", "WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "UNION", "EXCEPT",
        "INTERSECT", "WINDOW", "FOR", "LOCK", "PROCEDURE", "OFFSET", "FETCH", "RETURNING",
    }
)  # fmt: skip
# Words that may follow SELECT before its first item.
_SELECT_OPTIONS = frozenset(
    {
        "ALL", "DISTINCT", "DISTINCTROW", "HIGH_PRIORITY", "STRAIGHT_JOIN", "SQL_SMALL_RESULT",
        "SQL_BIG_RESULT", "SQL_BUFFER_RESULT", "SQL_CACHE", "SQL_NO_CACHE",
        "SQL_CALC_FOUND_ROWS",
    }
)  # fmt: skip


def _select_items(tokens: list[re.Match[str]]) -> list[tuple[int, int]]:
    """(first, last) token indexes of every select-list item, at any depth."""
    items: list[tuple[int, int]] = []
    # Per open parenthesis (and the top level): where its select list's current item
    # starts, or None outside a select list.
    starts: list[int | None] = [None]

    def close(at: int) -> None:
        start = starts[-1]
        if start is not None and start < at:
            items.append((start, at - 1))
        starts[-1] = None

    for index, match in enumerate(tokens):
        text = match.group()
        word = text.upper() if match.lastgroup == "word" else ""
        if text == "(":
            starts.append(None)
        elif text == ")":
            close(index)
            if len(starts) > 1:
                starts.pop()
        elif word == "SELECT":
            close(index)
            starts[-1] = index + 1
        elif starts[-1] == index and word in _SELECT_OPTIONS:
            starts[-1] = index + 1
        elif starts[-1] is not None and (text in (",", ";") or word in _AFTER_SELECT_LIST):
            close(index)
            if text == ",":
                starts[-1] = index + 1
    while starts:  # unbalanced parentheses: the server reports those
        close(len(tokens))
        starts.pop()
    return items


def _aliased(tokens: list[re.Match[str]], first: int, last: int) -> bool:
    """Does the item end in an alias (``AS name``, or a name right after a complete
    expression)? When unsure, yes: a second alias would break the statement."""
    depth = 0
    for match in tokens[first : last + 1]:
        text = match.group()
        depth += (text == "(") - (text == ")")
        if depth == 0 and match.lastgroup == "word" and text.upper() == "AS":
            return True
    if last == first:
        return False
    end, before = tokens[last], tokens[last - 1]
    return end.lastgroup in ("word", "qid", "str") and (
        before.lastgroup != "op" or before.group() == ")"
    )


def render(tokens: list[Token]) -> str:
    """Plain SQL for sqlglot: the tokens joined, a space wherever whitespace or a comment was."""
    parts: list[str] = []
    for token in tokens:
        if token.gap and parts:
            parts.append(" ")
        parts.append(token.text)
    return "".join(parts)


def split(tokens: list[Token]) -> list[list[Token]]:
    """Split on ';' except inside stored-program bodies; empty statements are dropped."""
    statements: list[list[Token]] = []
    current: list[Token] = []
    depth = 0  # BEGIN/CASE ... END blocks open
    block = ""  # a top-level IF/LOOP/WHILE/REPEAT/FOR statement's word
    nest = 0  # blocks of that kind open
    compound = False
    for index, token in enumerate(tokens):
        if token.kind == "op" and token.text == ";" and depth == 0 and nest == 0:
            if current:
                statements.append(current)
            current, compound, block = [], False, ""
            continue
        current.append(token)
        if token.kind != "word":
            continue
        if not compound:
            body = current[_prefix_end(current) :]
            body = body[2:] if labelled(body) else body
            compound = bool(body) and _starts_compound(body)
            # BEGIN NOT ATOMIC, CASE: the word that opened the block went by before we knew.
            depth = 1 if compound and body[0].upper in ("BEGIN", "CASE") else 0
            block = body[0].upper if compound and body[0].upper in _LOOP_BLOCKS else ""
            nest = 1 if block else 0
            continue
        word = token.upper
        if not block and not depth and word in _TOP_BLOCKS and _trigger_or_event_body(current):
            # A trigger's or an event's body that is one IF/LOOP/... block, not BEGIN ... END
            if word == "CASE":
                depth = 1
            else:
                block, nest = word, 1
            continue
        if word in ("BEGIN", "CASE") and not _follows_end(tokens, index):
            depth += 1
        elif word == "END":
            if not _closes_other_block(tokens, index):
                depth = max(depth - 1, 0)
            elif block and nest and _word_at(tokens, index + 1) == block:
                nest -= 1
        elif word == block and block in _NESTING and not _follows_end(tokens, index):
            if word != "FOR" or _opens_statement(tokens, index):
                nest += 1
    if current:
        statements.append(current)
    return statements


def _word_at(tokens: list[Token], index: int) -> str:
    return tokens[index].upper if index < len(tokens) and tokens[index].kind == "word" else ""


def _closes_other_block(tokens: list[Token], index: int) -> bool:
    """Does the END at ``index`` close an IF/LOOP/WHILE/REPEAT/FOR block, not BEGIN/CASE?"""
    following = _word_at(tokens, index + 1)
    if following == "FOR":  # CASE ... END FOR UPDATE is a locking read
        return _word_at(tokens, index + 2) != "UPDATE"
    return following in _END_SUFFIXES


def _opens_statement(tokens: list[Token], index: int) -> bool:
    """Is the word at ``index`` where a statement starts in a block (a FOR loop there, not
    FOR UPDATE, FOR EACH ROW, CURSOR FOR or HANDLER FOR)?"""
    previous = tokens[index - 1] if index else None
    if previous is None or (previous.kind == "op" and previous.text in (";", ":")):
        return True
    return previous.kind == "word" and previous.upper in ("DO", "THEN", "ELSE", "BEGIN", "LOOP")


def _trigger_or_event_body(current: list[Token]) -> bool:
    """Is the last token of ``current`` the first of the body of a CREATE TRIGGER (after
    FOR EACH ROW [FOLLOWS | PRECEDES name]) or CREATE EVENT (after its DO)? A procedure's
    or function's header has no such end to find; their blocks need BEGIN ... END here."""
    words = [t.upper if t.kind == "word" else t.text for t in current[:-1]]
    if "TRIGGER" in words[:8]:
        return words[-3:] == ["FOR", "EACH", "ROW"] or (
            words[-5:-2] == ["FOR", "EACH", "ROW"] and words[-2] in ("FOLLOWS", "PRECEDES")
        )
    if "EVENT" in words[:8]:
        return bool(words) and words[-1] == "DO" and words.count("DO") == 1
    return False


def labelled(tokens: list[Token]) -> bool:
    """``label: BEGIN ...`` / ``label: LOOP ...``: a label before a block (a word and a
    colon before anything else is no label: ``SELECT :a`` under sql_mode=ORACLE)."""
    return (
        len(tokens) > 2
        and tokens[0].kind in ("word", "qid")
        and tokens[1].text == ":"
        and tokens[2].kind == "word"
        and tokens[2].upper in LABELLED
    )


def _prefix_end(current: list[Token]) -> int:
    """Where the statement starts after MariaDB's ``SET STATEMENT a = 1, ... FOR``, else 0."""
    if len(current) < 2 or current[0].upper != "SET" or current[1].upper != "STATEMENT":
        return 0
    depth = 0
    for index, token in enumerate(current):
        if token.kind == "op" and token.text in "()":
            depth += 1 if token.text == "(" else -1
        elif depth == 0 and token.kind == "word" and token.upper == "FOR":
            return index + 1
    return len(current)


def _follows_end(tokens: list[Token], index: int) -> bool:
    return index > 0 and tokens[index - 1].upper == "END"


def _starts_compound(current: list[Token]) -> bool:
    """Whether the statement so far opens a body that may hold ';'."""
    first = current[0].upper
    if first == "BEGIN":
        return len(current) > 1 and current[1].upper == "NOT"
    if first in _TOP_BLOCKS:
        return True
    if first != "CREATE" or current[-1].upper not in _ROUTINES:
        return False
    # Only CREATE [OR REPLACE] [DEFINER = x] [AGGREGATE] <routine>: any other word means the
    # routine keyword is just a name (CREATE TABLE event ...).
    previous = current[0]
    for token in current[1:-1]:
        if token.kind == "word" and token.upper not in _ROUTINE_PREFIX and previous.text != "=":
            return False
        previous = token
    return True
