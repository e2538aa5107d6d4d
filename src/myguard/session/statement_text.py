"""A client's statement as it arrived: its text and fingerprint, each computed once and
passed on to the decision, approval, masking and the audit record."""

from __future__ import annotations

import time

from myguard.policy.cache import statement_fingerprint


class StatementText:
    """Read-only by convention (a frozen dataclass costs three times as much to make, and
    one is made per statement)."""

    __slots__ = ("text", "fingerprint", "started")

    def __init__(self, text: str, fingerprint: int, started: float) -> None:
        self.text = text
        self.fingerprint = fingerprint  # policy.cache.statement_fingerprint of the text as sent
        self.started = started  # time.time() when it arrived

    @classmethod
    def received(cls, sql: bytes, text: str) -> StatementText:
        """From a COM_QUERY or COM_STMT_PREPARE payload's bytes, read as ``text`` in the
        session's character set (``TextReading.text``). The fingerprint is the text's: a
        statement has one whatever set it came in, and the same bytes read in two sets
        are two statements."""
        if text.isascii():  # the bytes are the text's UTF-8: no second encoding
            return cls(text, statement_fingerprint(sql), time.time())
        return cls(text, statement_fingerprint(text), time.time())

    @classmethod
    def of(cls, text: str, fingerprint: int | None = None) -> StatementText:
        """A statement known by its text (a prepared statement's, a USE for COM_INIT_DB)."""
        if fingerprint is None:
            fingerprint = statement_fingerprint(text)
        return cls(text, fingerprint, time.time())
