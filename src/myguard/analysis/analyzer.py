"""``analyze()``: from COM_QUERY text to one ``Statement`` per statement, never raising."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from myguard.analysis import tokens as tk
from myguard.analysis.extract import Extract
from myguard.analysis.kinds import FILE_ACCESS, names_for
from myguard.analysis.lexer import LexError, Token, labelled, render, split, tokenize
from myguard.analysis.mariadb_syntax import for_sqlglot
from myguard.analysis.model import UNPARSED, Statement, TableName
from myguard.analysis.shrink import shrink_literals
from myguard.analysis.sqlglot_path import Unparseable, analyse, query_kind

Handler = Callable[[list[Token], str, str | None], Statement]

_DDL_SKIP = frozenset(
    {
        "OR",
        "REPLACE",
        "TEMPORARY",
        "UNIQUE",
        "FULLTEXT",
        "SPATIAL",
        "ONLINE",
        "OFFLINE",
        "IGNORE",
        "AGGREGATE",
        "DEFINER",
        "ALGORITHM",
        "SQL",
        "SECURITY",
        "INVOKER",
        "IF",
        "NOT",
        "EXISTS",
        "EXTERNAL",
        "CURRENT_USER",
    }
)
_OBJECTS = {
    "TABLE": "table",
    "TABLES": "table",  # DROP TABLES a, b (MariaDB takes the plural too)
    "DATABASE": "database",
    "SCHEMA": "database",
    "VIEW": "view",
    "INDEX": "index",
    "KEY": "index",
    "USER": "user",
    "ROLE": "role",
    "PROCEDURE": "procedure",
    "FUNCTION": "function",
    "TRIGGER": "trigger",
    "EVENT": "event",
    "SERVER": "server",
    "TABLESPACE": "tablespace",
    "LOGFILE": "logfile",
    "SEQUENCE": "sequence",
    "PACKAGE": "package",
    "RESOURCE": "resource",
    "REFERENCE": "spatial",
    "INSTANCE": "instance",
    "UNDO": "undo",
}
# Objects whose CREATE/ALTER sqlglot parses into tables we can trust (DROP is token-level).
_SQLGLOT_OBJECTS = frozenset({"table", "view", "index"})
# The grant tables of the mysql schema, MariaDB's and MySQL's.
_PRIVILEGE_TABLES = frozenset(
    {
        "user",
        "global_priv",
        "db",
        "tables_priv",
        "columns_priv",
        "procs_priv",
        "proxies_priv",
        "roles_mapping",
        "role_edges",
        "default_roles",
        "global_grants",
        "password_history",
    }
)
_QUERY_START = frozenset({"SELECT", "WITH", "TABLE", "VALUES", "INSERT", "UPDATE", "DELETE"})
_EXPLAIN_OPTIONS = frozenset({"EXTENDED", "PARTITIONS", "FORMAT", "ANALYZE", "VERBOSE"})
_ADMIN_TABLE_PREFIX = frozenset({"NO_WRITE_TO_BINLOG", "LOCAL", "TABLE", "TABLES"})
_SHOW_MODIFIERS = frozenset({"FULL", "GLOBAL", "SESSION", "EXTENDED", "ALL"})
_WORD_KINDS = {
    "KILL": "kill",
    "COMMIT": "commit",
    "ROLLBACK": "rollback",
    "SAVEPOINT": "savepoint",
    "RELEASE": "savepoint",
    "XA": "xa",
    "UNLOCK": "unlock",
    "FLUSH": "flush",
    "INSTALL": "install",
    "UNINSTALL": "uninstall",
    "SHUTDOWN": "shutdown",
    "RESTART": "restart",
    "RESET": "reset",
    "PURGE": "purge",
    "CHANGE": "change",
    "STOP": "stop",
    "CLONE": "clone",
    "BINLOG": "binlog",
    "BACKUP": "backup",
    "IMPORT": "import",
    "HELP": "help",
    "CACHE": "cache_index",
    "GRANT": "grant",
    "REVOKE": "revoke",
    "DEALLOCATE": "deallocate",
}


def analyze(sql: str, current_db: str | None) -> list[Statement]:
    """Analyse every statement of a COM_QUERY text; unparseable text yields kind "unparsed"."""
    sql = shrink_literals(sql)
    try:
        statements = split(tokenize(sql))
    except LexError as exc:
        return [unparsed(sql, str(exc))]
    result: list[Statement] = []
    db = current_db
    for tokens in statements:
        statement = analyze_tokens(tokens, db)
        if statement.kind == "use" and tk.is_word(tokens, 0, "USE"):
            # USE inside a multi-statement text changes how the following ones resolve.
            parts, _ = tk.name_at(tokens, 1)
            db = parts[0] if parts else db
        result.append(statement)
    return result


def used_database(sql: str) -> str | None:
    """The database the last ``USE`` in ``sql`` switches to, spelled as written (analyses
    are cached by a fingerprint that ignores the case of names; database names have one)."""
    try:
        statements = split(tokenize(sql))
    except LexError:
        return None
    found = None
    for tokens in statements:
        if tokens and tokens[0].kind == "word" and tokens[0].value.upper() == "USE":
            parts, _ = tk.name_at(tokens, 1)
            found = parts[0] if len(parts) == 1 else found
    return found


def unparsed(sql: str, error: str) -> Statement:
    return Statement(sql=sql, kind=UNPARSED, names=frozenset({UNPARSED}), error=error)


def analyze_tokens(tokens: list[Token], current_db: str | None) -> Statement:
    """Analyse one statement's tokens."""
    statement = _dispatch(tokens, current_db)
    if statement.unparsed:
        return statement
    extra = set()
    if _uses_server_files(tokens):
        extra.add(FILE_ACCESS)
    if any(_is_privilege_table(table) for table in statement.writes):
        # UPDATE mysql.user SET ... is ALTER USER by other means.
        extra.update(("dcl", "write"))
    return replace(statement, names=statement.names | extra) if extra else statement


def _is_privilege_table(table: TableName) -> bool:
    return (table.db or "").lower() == "mysql" and table.name.lower() in _PRIVILEGE_TABLES


# Words after which a name followed by "(" is a table's (its column list), never a call:
# CREATE TABLE [IF NOT EXISTS] t (...), INSERT/REPLACE INTO t (...), REFERENCES t (...).
# Not FROM, ON or LIKE: TRIM(... FROM LOAD_FILE(...)), JOIN ... ON and LIKE take calls.
_BEFORE_TABLE_NAME = frozenset({"TABLE", "EXISTS", "INTO", "REFERENCES"})


def _names_a_table(tokens: list[Token], index: int) -> bool:
    """Is the name at ``index`` a table's (or a qualified routine's, never the built-in)?"""
    if index == 0:
        return False
    before = tokens[index - 1]
    return (before.kind == "op" and before.text == ".") or (
        before.kind == "word" and before.upper in _BEFORE_TABLE_NAME
    )


def _uses_server_files(tokens: list[Token]) -> bool:
    """Whether the statement calls LOAD_FILE() anywhere (select list, subquery, SET, DO, a
    routine body; MariaDB takes it quoted and with a space before '('), or is table DDL that
    puts a table's files at a path of its choice (DATA/INDEX DIRECTORY) or reads one as a
    table (the CONNECT engine's FILE_NAME)."""
    ddl = tk.is_word(tokens, 0, "CREATE", "ALTER")
    for i, (token, following) in enumerate(zip(tokens, tokens[1:], strict=False)):
        word = token.value.upper() if token.kind in ("word", "qid") else ""
        if (
            word == "LOAD_FILE"
            and following.kind == "op"
            and following.text == "("
            and not _names_a_table(tokens, i)
        ):
            return True
        if ddl and token.kind == "word":
            # a path follows: DATA DIRECTORY [=] '...' (not ALTER DATABASE d UPGRADE DATA
            # DIRECTORY NAME, which names no path)
            path = tokens[i + 2 : i + 4]
            if (
                word in ("DATA", "INDEX")
                and following.upper == "DIRECTORY"
                and any(t.kind == "str" for t in path)
            ):
                return True
            if word == "FILE_NAME" and (following.kind == "str" or following.text == "="):
                return True
    return False


def _dispatch(tokens: list[Token], current_db: str | None) -> Statement:
    tokens = _strip_rows_examined(tokens)
    sql = render(tokens)
    first = tokens[0]
    if first.kind == "op" and first.text == "(":
        return _query(tokens, sql, current_db)
    if labelled(tokens):  # label: BEGIN NOT ATOMIC / LOOP / WHILE / REPEAT / FOR ...
        inner = _dispatch(tokens[2:], current_db)
        if inner.kind == "compound":
            return replace(inner, sql=sql)
        return unparsed(sql, "a label before a statement that is not a block")
    handler = _HANDLERS.get(first.upper) if first.kind == "word" else None
    if handler is not None:
        return handler(tokens, sql, current_db)
    kind = _WORD_KINDS.get(first.upper) if first.kind == "word" else None
    if kind is None:
        return unparsed(sql, f"unknown statement {first.text!r}")
    return _simple(sql, kind)


def _strip_rows_examined(tokens: list[Token]) -> list[Token]:
    """Without MariaDB's ``LIMIT [n [, m] | n OFFSET m] ROWS EXAMINED k``, which sqlglot cannot
    parse and which only bounds the work, not what is read: ``LIMIT ROWS EXAMINED k`` goes
    whole, ``LIMIT n ROWS EXAMINED k`` keeps ``LIMIT n``."""
    index = 0
    while True:
        index = next(
            (
                i
                for i in range(index, len(tokens) - 2)
                if tk.is_word(tokens, i, "ROWS")
                and tk.is_word(tokens, i + 1, "EXAMINED")
                and _limit_value(tokens[i + 2])
            ),
            -1,
        )
        if index < 0:
            return tokens
        start = _limit_clause_start(tokens, index)
        if start is not None:
            tokens = tokens[:start] + tokens[index + 3 :]
        index = (start if start is not None else index) + 1


def _limit_value(token: Token) -> bool:
    # A number or a ? placeholder (a stored program's variable only occurs in bodies, which
    # sqlglot does not read): anything else is a syntax error to MariaDB, so nothing is cut.
    return token.kind == "num" or (token.kind == "op" and token.text == "?")


def _limit_clause_start(tokens: list[Token], rows: int) -> int | None:
    """Where to cut before ``ROWS`` at ``rows``: the LIMIT itself when it has no row count,
    else ``rows``; None when ``ROWS`` does not end a LIMIT clause."""
    before = tokens[max(0, rows - 4) : rows]
    if tk.is_word(before, len(before) - 1, "LIMIT"):
        return rows - 1
    if len(before) >= 2 and tk.is_word(before, len(before) - 2, "LIMIT"):
        return rows if _limit_value(before[-1]) else None
    if len(before) == 4 and tk.is_word(before, 0, "LIMIT"):
        separator = before[2]
        if (
            _limit_value(before[1])
            and _limit_value(before[3])
            and (
                separator.text == "," or (separator.kind == "word" and separator.upper == "OFFSET")
            )
        ):
            return rows
    return None


def _simple(sql: str, kind: str, object_type: str | None = None, **fields: object) -> Statement:
    extras = fields.pop("extras", frozenset())
    names = names_for(kind, object_type, extras)  # type: ignore[arg-type]
    return Statement(sql=sql, kind=kind, object_type=object_type, names=names, **fields)  # type: ignore[arg-type]


def _from_extract(sql: str, kind: str, found: Extract, **fields: object) -> Statement:
    return _simple(
        sql,
        kind,
        reads=found.reads,
        writes=found.writes,
        columns=found.columns,
        star_tables=found.star_tables,
        has_where=found.has_where,
        where_tautology=found.where_tautology,
        has_limit=found.has_limit,
        **fields,
    )


def _query(tokens: list[Token], sql: str, current_db: str | None) -> Statement:
    """SELECT / WITH / TABLE / VALUES / INSERT / UPDATE / DELETE, including SELECT ... INTO."""
    into, tokens = _strip_into(for_sqlglot(tokens))
    try:
        tree, found = analyse(render(tokens), current_db)
    except Unparseable as exc:
        return unparsed(sql, str(exc))
    kind = query_kind(tree)
    if kind is None:
        return unparsed(sql, f"unexpected {type(tree).__name__} statement")
    extras = frozenset({f"into_{into}"}) if into else frozenset()
    return _from_extract(sql, kind, found, into=into, extras=extras)


def _strip_into(tokens: list[Token]) -> tuple[str | None, list[Token]]:
    """Remove ``INTO OUTFILE|DUMPFILE 'f' ...`` / ``INTO @v, ...`` that sqlglot cannot parse."""
    start = 0
    while True:
        index = tk.find_word(tokens, "INTO", start)
        if index < 0 or index + 1 >= len(tokens):
            return None, tokens
        following = tokens[index + 1]
        if following.upper in ("OUTFILE", "DUMPFILE"):
            into = following.upper.lower()
            break
        if following.kind == "var":
            into = "variable"
            break
        start = index + 1
    end = tk.find_word(tokens, "FROM", index)
    return into, tokens[:index] + (tokens[end:] if end >= 0 else [])


def _replace(tokens: list[Token], sql: str, current_db: str | None) -> Statement:
    # REPLACE has INSERT's grammar; sqlglot's MySQL dialect only knows the latter.
    insert = Token("word", "INSERT", "INSERT", False)
    statement = _query([insert, *tokens[1:]], sql, current_db)
    if statement.kind != "insert":
        return statement
    return replace(statement, kind="replace", names=names_for("replace", None))


def _ddl(tokens: list[Token], sql: str, current_db: str | None) -> Statement:
    kind = tokens[0].upper.lower()
    index = _object_index(tokens)
    if index < 0:
        return unparsed(sql, f"{kind.upper()} of an unknown object")
    word = tokens[index].upper
    if word == "PREPARE" and kind == "drop":
        return _simple(sql, "deallocate")
    object_type = _OBJECTS[word]
    if object_type in _SQLGLOT_OBJECTS and kind != "drop":
        try:
            found = analyse(render(tokens), current_db)[1]
        except Unparseable:
            found = None  # the token-level reading below still names the object
        if found is not None and found.writes:
            return _from_extract(sql, kind, found, object_type=object_type)
    name_index = tk.skip_words(tokens, index + 1, frozenset({"IF", "NOT", "EXISTS"}))
    writes: list[TableName] = []
    if object_type == "database":
        parts, _ = tk.name_at(tokens, name_index)
        writes = [TableName(parts[0], "*")] if parts else []
    elif object_type in ("table", "view"):
        writes = tk.table_list(tokens, name_index, current_db)
    elif object_type == "index":
        on = tk.find_word(tokens, "ON", index)
        table, _ = tk.table_at(tokens, on + 1, current_db) if on >= 0 else (None, 0)
        writes = [table] if table else []
    return _simple(sql, kind, object_type, writes=frozenset(writes))


def _object_index(tokens: list[Token]) -> int:
    """Index of the object keyword after CREATE/ALTER/DROP, skipping modifiers, or -1."""
    previous = tokens[0]
    for index in range(1, len(tokens)):
        token = tokens[index]
        after_equals = previous.kind == "op" and previous.text == "="
        previous = token
        if token.kind != "word" or after_equals or token.upper in _DDL_SKIP:
            continue
        if token.upper in _OBJECTS or token.upper == "PREPARE":
            return index
        return -1
    return -1


def _truncate(tokens: list[Token], sql: str, current_db: str | None) -> Statement:
    index = 2 if tk.is_word(tokens, 1, "TABLE") else 1
    writes = tk.table_list(tokens, index, current_db)
    if not writes:
        return unparsed(sql, "TRUNCATE without a table")
    return _simple(sql, "truncate", "table", writes=frozenset(writes))


def _rename(tokens: list[Token], sql: str, current_db: str | None) -> Statement:
    if tk.is_word(tokens, 1, "USER"):
        return _simple(sql, "rename", "user")
    if not tk.is_word(tokens, 1, "TABLE", "TABLES"):
        return unparsed(sql, "RENAME of an unknown object")
    writes: list[TableName] = []
    for chunk in tk.top_level_chunks(tokens, 2):
        to = next((i for i, t in enumerate(chunk) if t.upper == "TO"), -1)
        for start in (0, to + 1) if to >= 0 else (0,):
            table, _ = tk.table_at(chunk, start, current_db)
            if table is not None:
                writes.append(table)
    return _simple(sql, "rename", "table", writes=frozenset(writes))


def _set(tokens: list[Token], sql: str, current_db: str | None) -> Statement:
    if tk.is_word(tokens, 1, "STATEMENT"):
        return _set_statement(tokens, sql, current_db)
    extras = set()
    # SET PASSWORD may follow other assignments: SET @a = 1, PASSWORD = '...'.
    for chunk in tk.top_level_chunks(tokens, 1):
        if tk.is_word(chunk, 0, "PASSWORD") and (
            tk.is_word(chunk, 1, "FOR") or (len(chunk) > 1 and chunk[1].text in ("=", ":="))
        ):
            extras.add("set_password")
    if tk.is_word(tokens, 1, "DEFAULT") and tk.is_word(tokens, 2, "ROLE"):
        extras.add("set_default_role")
    words = {t.upper for t in tokens if t.kind == "word"}
    if words & {"GLOBAL", "PERSIST", "PERSIST_ONLY"} or any(
        t.kind == "var" and t.upper.lower().startswith(("@@global.", "@@persist")) for t in tokens
    ):
        extras.add("set_global")
    fields: dict[str, object] = {}
    if "SELECT" in words:
        # SET @x = (SELECT ssn FROM customers ...) reads data like a SELECT does.
        try:
            found = analyse(render(tokens), current_db)[1]
        except Unparseable as exc:
            return unparsed(sql, f"SET subquery: {exc}")
        fields = {"reads": found.reads, "columns": found.columns}
    return _simple(sql, "set", extras=frozenset(extras), **fields)


def _set_statement(tokens: list[Token], sql: str, current_db: str | None) -> Statement:
    """MariaDB's ``SET STATEMENT a = 1, b = 2 FOR <statement>``: the inner statement (its
    text too, which masking's lineage reads), answering also to every name of
    ``SET a = 1, b = 2`` so that rules about that SET still apply. MariaDB reads the inner
    text in the session's sql_mode, whatever the SET says."""
    end = tk.find_word(tokens, "FOR", 2)
    if end < 3 or end + 1 >= len(tokens):
        return unparsed(sql, "SET STATEMENT without FOR and a statement")
    settings = _set([tokens[0], *tokens[2:end]], render([tokens[0], *tokens[2:end]]), current_db)
    inner = analyze_tokens(tokens[end + 1 :], current_db)
    if settings.unparsed or inner.unparsed:
        return replace(inner if inner.unparsed else settings, sql=sql)
    return replace(
        inner,
        names=inner.names | settings.names,
        reads=inner.reads | settings.reads,
        columns=inner.columns | settings.columns,
    )


def _call(tokens: list[Token], sql: str, current_db: str | None) -> Statement:
    # What a procedure does is invisible here.
    return _simple(sql, "call", "procedure", opaque=True)


def _begin(tokens: list[Token], sql: str, current_db: str | None) -> Statement:
    if tk.is_word(tokens, 1, "NOT"):
        # MariaDB's BEGIN NOT ATOMIC ... END runs a whole block of statements.
        return _simple(sql, "compound", opaque=True)
    if len(tokens) > 1 and not tk.is_word(tokens, 1, "WORK"):
        return unparsed(sql, "unexpected words after BEGIN")
    return _simple(sql, "begin")


def _block(tokens: list[Token], sql: str, current_db: str | None) -> Statement:
    # MariaDB's IF / CASE / LOOP / WHILE / REPEAT / FOR outside a stored program: a block
    # of statements, like BEGIN NOT ATOMIC.
    return _simple(sql, "compound", opaque=True)


def _start(tokens: list[Token], sql: str, current_db: str | None) -> Statement:
    if tk.is_word(tokens, 1, "TRANSACTION"):
        return _simple(sql, "begin")
    return _simple(sql, "start")


def _load(tokens: list[Token], sql: str, current_db: str | None) -> Statement:
    if not tk.is_word(tokens, 1, "DATA", "XML"):
        return (
            _simple(sql, "load_index")
            if tk.is_word(tokens, 1, "INDEX")
            else unparsed(sql, "unknown LOAD statement")
        )
    infile = tk.find_word(tokens, "INFILE")
    local = infile > 0 and any(t.upper == "LOCAL" for t in tokens[:infile])
    into = tk.find_word(tokens, "INTO")
    table, _ = tk.table_at(tokens, into + 2, current_db) if into > 0 else (None, 0)
    if table is None:
        return unparsed(sql, "LOAD DATA without INTO TABLE")
    extras = frozenset({"load_data_local"}) if local else frozenset()
    return _simple(sql, "load_data", writes=frozenset({table}), local=local, extras=extras)


def _lock(tokens: list[Token], sql: str, current_db: str | None) -> Statement:
    if tk.is_word(tokens, 1, "INSTANCE"):
        return _simple(sql, "lock", "instance")
    if not tk.is_word(tokens, 1, "TABLE", "TABLES"):
        return unparsed(sql, "unknown LOCK statement")
    reads: set[TableName] = set()
    writes: set[TableName] = set()
    for chunk in tk.top_level_chunks(tokens, 2):
        table, _ = tk.table_at(chunk, 0, current_db)
        if table is not None:
            (writes if any(t.upper == "WRITE" for t in chunk) else reads).add(table)
    return _simple(sql, "lock", "table", reads=frozenset(reads), writes=frozenset(writes))


def _use(tokens: list[Token], sql: str, current_db: str | None) -> Statement:
    parts, end = tk.name_at(tokens, 1)
    if len(parts) != 1 or end != len(tokens):
        return unparsed(sql, "USE needs one database name")
    return _simple(sql, "use")


def _prepare(tokens: list[Token], sql: str, current_db: str | None) -> Statement:
    source = tk.find_word(tokens, "FROM")
    if source < 0:
        return unparsed(sql, "PREPARE without FROM")
    return _dynamic(tokens, source + 1, sql, current_db, "prepare")


def _execute(tokens: list[Token], sql: str, current_db: str | None) -> Statement:
    if tk.is_word(tokens, 1, "IMMEDIATE"):
        return _dynamic(tokens, 2, sql, current_db, "execute_immediate")
    # EXECUTE s runs what PREPARE s held, which was decided when it was prepared.
    return _simple(sql, "execute")


def _dynamic(
    tokens: list[Token], index: int, sql: str, current_db: str | None, kind: str
) -> Statement:
    """The statement in ``PREPARE s FROM '...'`` / ``EXECUTE IMMEDIATE '...'``, or opaque."""
    text, end = tk.string_literal(tokens, index)
    if text is None or (end < len(tokens) and not tk.is_word(tokens, end, "USING")):
        return _simple(sql, kind, opaque=True)
    inner = analyze(text, current_db)
    if len(inner) != 1:
        return replace(unparsed(sql, f"{kind} text must hold one statement"), cacheable=False)
    if inner[0].kind == "use":
        # The session's database decides how every later statement's names resolve, and
        # a USE run from a prepared text changes it where myguard cannot follow it.
        return replace(
            unparsed(sql, "USE inside PREPARE or EXECUTE IMMEDIATE is not followed (send USE)"),
            cacheable=False,
        )
    # The literal text is erased by the fingerprint: never cache this analysis.
    return replace(inner[0], sql=sql, prepared=True, cacheable=False)


def _show(tokens: list[Token], sql: str, current_db: str | None) -> Statement:
    """SHOW: what it shows is its object, for rules (``show:engine``, ``show:grants``)."""
    index = tk.skip_words(tokens, 1, _SHOW_MODIFIERS)
    what = tokens[index] if index < len(tokens) and tokens[index].kind == "word" else None
    return _simple(sql, "show", what.upper.lower() if what is not None else None)


def _handler(tokens: list[Token], sql: str, current_db: str | None) -> Statement:
    table, _ = tk.table_at(tokens, 1, current_db)
    reads = frozenset({table}) if table is not None else frozenset()
    return _simple(sql, "handler", reads=reads)


def _do(tokens: list[Token], sql: str, current_db: str | None) -> Statement:
    select = Token("word", "SELECT", "SELECT", False)
    try:
        found = analyse(render([select, *tokens[1:]]), current_db)[1]
    except Unparseable as exc:
        return unparsed(sql, f"DO: {exc}")
    return _simple(sql, "do", reads=found.reads, columns=found.columns)


def _admin_tables(tokens: list[Token], sql: str, current_db: str | None) -> Statement:
    """ANALYZE / OPTIMIZE / REPAIR / CHECK / CHECKSUM TABLE list; MariaDB's ANALYZE <stmt>."""
    kind = tokens[0].upper.lower()
    if kind == "analyze" and tk.is_word(tokens, 1, *(_QUERY_START - {"TABLE"}), "REPLACE"):
        # MariaDB's ANALYZE <statement> executes it.
        return analyze_tokens(tokens[1:], current_db)
    index = tk.skip_words(tokens, 1, _ADMIN_TABLE_PREFIX)
    tables = frozenset(tk.table_list(tokens, index, current_db))
    if kind in ("check", "checksum"):
        return _simple(sql, kind, "table", reads=tables)
    return _simple(sql, kind, "table", writes=tables)


def _explain(tokens: list[Token], sql: str, current_db: str | None) -> Statement:
    index = 1
    executes = False
    while tk.is_word(tokens, index, *_EXPLAIN_OPTIONS):
        executes = executes or tokens[index].upper == "ANALYZE"
        index += 1
        if index < len(tokens) and tokens[index].text == "=":
            index += 2
    rest = tokens[index:]
    if not rest:
        return unparsed(sql, "EXPLAIN of nothing")
    if not (tk.is_word(rest, 0, *_QUERY_START, "REPLACE") or rest[0].text == "("):
        if tk.is_word(rest, 0, "FOR"):
            return _simple(sql, "explain")
        table, _ = tk.table_at(rest, 0, current_db)
        return _simple(sql, "describe", reads=frozenset({table} if table else set()))
    inner = analyze_tokens(rest, current_db)
    if executes or inner.unparsed:
        # EXPLAIN ANALYZE runs the statement.
        return replace(inner, sql=sql)
    return _simple(
        sql,
        "explain",
        reads=inner.reads | inner.writes,
        columns=inner.columns,
        star_tables=inner.star_tables,
        cacheable=inner.cacheable,
    )


_HANDLERS: dict[str, Handler] = {
    "SELECT": _query,
    "WITH": _query,
    "TABLE": _query,
    "VALUES": _query,
    "INSERT": _query,
    "UPDATE": _query,
    "DELETE": _query,
    "REPLACE": _replace,
    "CREATE": _ddl,
    "ALTER": _ddl,
    "DROP": _ddl,
    "TRUNCATE": _truncate,
    "RENAME": _rename,
    "SET": _set,
    "CALL": _call,
    "BEGIN": _begin,
    "IF": _block,
    "CASE": _block,
    "LOOP": _block,
    "WHILE": _block,
    "REPEAT": _block,
    "FOR": _block,
    "START": _start,
    "LOAD": _load,
    "LOCK": _lock,
    "USE": _use,
    "PREPARE": _prepare,
    "EXECUTE": _execute,
    "HANDLER": _handler,
    "SHOW": _show,
    "DO": _do,
    "ANALYZE": _admin_tables,
    "OPTIMIZE": _admin_tables,
    "REPAIR": _admin_tables,
    "CHECK": _admin_tables,
    "CHECKSUM": _admin_tables,
    "EXPLAIN": _explain,
    "DESCRIBE": _explain,
    "DESC": _explain,
}
