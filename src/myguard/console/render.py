"""Templates (Jinja2, autoescaped) and the filters they use: times, ages, SQL highlighting."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from myguard.analysis.lexer import _TOKEN_RE

KEYWORDS = frozenset(
    """
    ADD ALL ALTER ANALYZE AND AS ASC BEGIN BETWEEN BY CALL CASE CHANGE COLUMN COMMIT CONSTRAINT
    CREATE CROSS DATABASE DEFAULT DELETE DESC DISTINCT DO DROP ELSE END EXISTS EXPLAIN FALSE
    FOR FOREIGN FROM FULL FUNCTION GRANT GROUP HAVING IF IGNORE IN INDEX INNER INSERT INTO IS
    JOIN KEY KILL LEFT LIKE LIMIT LOAD LOCK MODIFY NOT NULL OFFSET ON OR ORDER OUTER PRIMARY
    PROCEDURE RENAME REPLACE REVOKE RIGHT ROLLBACK SCHEMA SELECT SET SHOW TABLE TEMPORARY THEN
    TO TRIGGER TRUE TRUNCATE UNION UNIQUE UNLOCK UPDATE USE USING VALUES VIEW WHEN WHERE WITH
    INT INTEGER VARCHAR CHAR TEXT BIGINT DECIMAL DATE DATETIME TIMESTAMP AUTO_INCREMENT ENGINE
    """.split()
)
_CLASSES = {"str": "s", "num": "n", "comment": "c", "qid": "i", "var": "v", "xopen": "c"}


def highlight(sql: str | None) -> Markup:
    """``sql`` as HTML with keywords, strings, numbers, identifiers and comments in spans;
    every character of the text is escaped (a statement is never markup)."""
    if not sql:
        return Markup("")
    out: list[str] = []
    for match in _TOKEN_RE.finditer(sql):
        kind, text = match.lastgroup, match.group()
        css = _CLASSES.get(kind or "")
        if kind == "word" and text.upper() in KEYWORDS:
            css = "k"
        if css:
            out.append(f'<span class="sql-{css}">{escape(text)}</span>')
        else:
            out.append(str(escape(text)))
    return Markup("".join(out))


def when(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float | None) -> str:
    """A short human duration: ``45 s``, ``3 min``, ``2 h 5 min``, ``3 d 4 h``."""
    if seconds is None:
        return "-"
    s = int(abs(seconds))
    if s < 60:
        text = f"{s} s"
    elif s < 3600:
        text = f"{s // 60} min {s % 60} s" if s < 600 and s % 60 else f"{s // 60} min"
    elif s < 86400:
        text = f"{s // 3600} h {s % 3600 // 60} min"
    else:
        text = f"{s // 86400} d {s % 86400 // 3600} h"
    return f"-{text}" if seconds < 0 else text


def ago(stamp: float | None) -> str:
    return "-" if stamp is None else duration(time.time() - stamp) + " ago"


def until(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    left = stamp - time.time()
    return "passed" if left <= 0 else duration(left)


def short(text: str | None, size: int = 160) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= size else text[: size - 1] + "…"


_SLUG = re.compile(r"[^a-z0-9]+")


def slug(text: object) -> str:
    return _SLUG.sub("-", str(text).lower()).strip("-")


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("myguard.console", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        sql=highlight, when=when, ago=ago, until=until, duration=duration, short=short, slug=slug
    )
    return env
