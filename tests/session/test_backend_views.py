"""Which statements read the backend's views of every session's statements (refused to
users outside process_list_groups, whatever the rules say)."""

import pytest

from myguard.analysis import analyze
from myguard.protocol.errors import ER_SPECIFIC_ACCESS_DENIED_ERROR
from myguard.session.backend_views import refusal


def _refused(sql: str, current_db: str | None = "shop") -> bool:
    error = refusal(analyze(sql, current_db), sql)
    if error is not None:
        assert error.code == ER_SPECIFIC_ACCESS_DENIED_ERROR and error.sqlstate == "42000"
        assert "process_list_groups" in error.message
    return error is not None


@pytest.mark.parametrize(
    ("sql", "current_db"),
    [
        ("SELECT * FROM performance_schema.events_statements_history", None),
        ("select sql_text from PERFORMANCE_SCHEMA.EVENTS_STATEMENTS_CURRENT", None),
        ("SELECT processlist_info FROM performance_schema.threads", None),
        ("SELECT * FROM threads", "performance_schema"),  # the current database's
        ("SELECT * FROM processlist", "sys"),
        ("SELECT * FROM `sys`.`x$session`", None),
        ("SELECT trx_query FROM information_schema.INNODB_TRX", None),
        ("SELECT lock_data FROM information_schema.innodb_locks", None),
        ("SELECT * FROM information_schema.INNODB_LOCK_WAITS", None),
        ("SELECT argument FROM mysql.general_log", None),
        ("SELECT sql_text FROM mysql.slow_log", None),
        ("SHOW ENGINE INNODB STATUS", None),
        ("show engine all status", None),
        ("SHOW BINLOG EVENTS IN 'mysql-bin.000001' LIMIT 10", None),
        ("SHOW RELAYLOG EVENTS", None),
        ("SHOW SLAVE STATUS", None),
        ("SHOW ALL SLAVES STATUS", None),
        ("SHOW REPLICA 'src' STATUS", None),
        ("SELECT o.id FROM orders o JOIN performance_schema.threads t ON t.thread_id = o.id", None),
        ("SELECT 1; SELECT * FROM sys.processlist", None),  # any statement of a text
        ("SELECT (SELECT COUNT(*) FROM information_schema.innodb_trx)", None),
        ("CREATE VIEW v AS SELECT * FROM mysql.general_log", None),  # read later by anyone
        ("INSERT INTO t SELECT * FROM performance_schema.events_statements_history", None),
        ("PREPARE s FROM 'SELECT * FROM sys.processlist'", None),
        # text the analysis does not see into: read in its words
        ("EXECUTE IMMEDIATE 'SELECT * FROM sys.processlist'", None),
        ("EXECUTE IMMEDIATE CONCAT('SELECT * FROM ', 'performance_schema.threads')", None),
        (
            "CREATE PROCEDURE p() BEGIN SELECT trx_query FROM information_schema.innodb_trx; END",
            None,
        ),
        (
            "CREATE EVENT e ON SCHEDULE EVERY 1 HOUR DO INSERT INTO t SELECT * FROM mysql.slow_log",
            None,
        ),
        ("BEGIN NOT ATOMIC SHOW ENGINE INNODB STATUS; END", None),
        ("EXECUTE IMMEDIATE CONCAT('SHOW BINLOG ', 'EVENTS')", None),
        (
            "CREATE TRIGGER t BEFORE INSERT ON o FOR EACH ROW SET @q = (SELECT info FROM `sys` . x)",
            None,
        ),
    ],
)
def test_refused(sql, current_db):
    assert _refused(sql, current_db)


@pytest.mark.parametrize(
    ("sql", "current_db"),
    [
        ("SELECT * FROM orders", "shop"),
        ("SHOW PROCESSLIST", None),  # myguard answers it, each user their own sessions
        ("SELECT * FROM information_schema.PROCESSLIST", None),  # the same
        ("SHOW TABLES FROM performance_schema", None),  # names, not statements
        ("SHOW DATABASES", None),
        ("SHOW ENGINES", None),
        ("SHOW MASTER STATUS", None),  # a position, no statements
        ("SHOW BINARY LOGS", None),
        ("SELECT * FROM information_schema.TABLES WHERE table_schema = 'sys'", None),
        ("SELECT * FROM shop.threads", "performance_schema"),
        ("SELECT 'performance_schema.threads'", None),  # a literal the analysis sees is data
        ("SELECT general_log FROM shop.settings", None),
        ("EXECUTE IMMEDIATE 'SELECT * FROM orders'", "shop"),
        ("CREATE PROCEDURE p() BEGIN SELECT status FROM engines_by_system; END", "shop"),
    ],
)
def test_not_refused(sql, current_db):
    assert not _refused(sql, current_db)


def test_a_cached_analysis_of_hidden_text_is_read_in_the_text_itself():
    """The analysis may be the cached one of another text of the same shape (literals
    erased): what dynamic SQL runs is read in the text at hand."""
    shape = analyze("EXECUTE IMMEDIATE CONCAT('SELECT ', '1')", None)
    assert shape[0].opaque
    text = "EXECUTE IMMEDIATE CONCAT('SELECT * FROM ', 'sys.processlist')"
    assert refusal(shape, text) is not None
    assert refusal(shape, "EXECUTE IMMEDIATE CONCAT('SELECT ', '2')") is None
