"""The backend's own views of every session's statements, refused without I/O to users
outside ``process_list_groups``, whatever the rules say.

Every session reaches the backend as one service account, so what the backend shows of
running, waiting and logged statements shows every user's, literals included: text that
masking hides in results, and other users' work. myguard answers SHOW PROCESSLIST and
``information_schema.PROCESSLIST`` itself (``process_list``), each user their own
sessions; these views it cannot rewrite, so they are for the groups that see every
session there. A rules file of a site's own cannot forget them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from myguard.analysis import Statement
from myguard.analysis.lexer import leading_words
from myguard.policy.globs import TableGlob
from myguard.protocol.errors import ER_SPECIFIC_ACCESS_DENIED_ERROR, MySQLError
from myguard.session.kill import hides_text

# Statement texts, digests with samples, lock data (index values of locked rows), logs.
VIEWS = tuple(
    TableGlob.parse(glob)
    for glob in (
        "performance_schema.*",
        "sys.*",
        "information_schema.innodb_trx",
        "information_schema.innodb_locks",
        "information_schema.innodb_lock_waits",
        "mysql.general_log",
        "mysql.slow_log",
    )
)
# SHOW ENGINE INNODB STATUS: running transactions and the last deadlock, statements too;
# the binary and relay logs' events: every write, with its text (MariaDB annotates row
# events with the statement); a replica's status: the text of a replicated statement that
# failed.
SHOWS = frozenset(
    {"show:engine", "show:binlog", "show:relaylog", "show:slave", "show:slaves", "show:replica"}
)
# The same in text the analysis does not see into (dynamic SQL, a stored program's body),
# read in its code words, upper-cased and joined by spaces.
_IN_HIDDEN_TEXT = re.compile(
    r"\bPERFORMANCE_SCHEMA\b|\bSYS`?\s*\.|\bINNODB_(?:TRX|LOCKS|LOCK_WAITS)\b"
    r"|\b(?:GENERAL|SLOW)_LOG\b|\bSHOW\s+(?:ENGINE|BINLOG|RELAYLOG|SLAVE|REPLICA|ALL\s+SLAVES)\b"
).search
_REFUSED = (
    "myguard: the backend's views of other sessions' statements (performance_schema, sys,"
    " information_schema.INNODB_TRX and its lock tables, mysql.general_log and slow_log,"
    " SHOW ENGINE ... STATUS, the binary and relay logs' events, a replica's status) are for"
    " the groups that see every session"
    " (process_list_groups): every user's sessions run there as one account."
    " SHOW PROCESSLIST shows your own sessions"
)


def refusal(statements: Iterable[Statement], text: str) -> MySQLError | None:
    """The refusal (1227) for ``text``, analysed as ``statements``, when it reads one of
    these views, or None. The analysis may be the cached one of another text of the same
    shape: text it does not see into is read in ``text`` itself."""
    code = None
    for st in statements:
        if hides_text(st):
            if code is None:
                code = " ".join(leading_words(text, -1))
            if _IN_HIDDEN_TEXT(code) is not None:
                return _refused()
        elif st.names & SHOWS or any(glob.matches(t) for glob in VIEWS for t in st.tables):
            return _refused()
    return None


def _refused() -> MySQLError:
    return MySQLError(ER_SPECIFIC_ACCESS_DENIED_ERROR, "42000", _REFUSED)
