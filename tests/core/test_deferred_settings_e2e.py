"""SET NAMES and SET autocommit answered by myguard and sent to the backend in front of the
session's next command (session/deferred_settings.py): the client sees what the server
would have answered, the backend applies them before anything that can observe them, and
nothing that must happen at once (a commit) waits."""

from __future__ import annotations

import time

import mysql.connector
import MySQLdb
import pymysql
import pytest

from mariadb_server import ROOT_PASSWORD
from myguard.protocol.constants import UTF8MB4_GENERAL_CI
from raw_client import RawClient

ALICE = {"user": "alice", "password": "alice-pw-1"}
LATIN1_SWEDISH_CI = 8


def through(proxy, **options):
    return pymysql.connect(host="127.0.0.1", port=proxy.port, **ALICE, **options)


def direct(mariadb, **options):
    return pymysql.connect(
        host="127.0.0.1", port=mariadb.port, user="root", password=ROOT_PASSWORD, **options
    )


def one(conn, sql: str):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()


@pytest.fixture()
def table(mariadb):
    mariadb.sql(
        "CREATE DATABASE IF NOT EXISTS deferred;"
        "CREATE OR REPLACE TABLE deferred.t (id INT PRIMARY KEY) ENGINE=InnoDB;"
    )
    yield "deferred.t"
    mariadb.sql("DROP DATABASE deferred")


def test_a_drivers_login_settings_reach_the_backend_with_its_first_query(proxy, mariadb):
    """PyMySQL's SET NAMES and SET AUTOCOMMIT = 0 after login cost no backend round trip
    of their own: the general log shows them right before the first query, after the
    pool's checkout, and the query runs under them."""
    mariadb.sql("SET GLOBAL log_output = 'TABLE'; SET GLOBAL general_log = ON;")
    try:
        conn = through(proxy, autocommit=False, charset="latin1")
        assert one(conn, "SELECT @@autocommit, @@character_set_client, 'deferred-4711'") == (
            0,
            "latin1",
            "deferred-4711",
        )
        conn.close()
        log = direct(mariadb)
        with log.cursor() as cur:
            cur.execute(
                "SELECT thread_id FROM mysql.general_log WHERE argument LIKE "
                "'SELECT @@autocommit, @@character_set_client, %%deferred-4711%%'"
            )
            (thread,) = cur.fetchone()
            cur.execute(
                "SELECT argument FROM mysql.general_log WHERE thread_id = %s"
                " AND command_type = 'Query'",
                (thread,),
            )
            texts = [row[0].decode() if isinstance(row[0], bytes) else row[0] for row in cur]
        log.close()
    finally:
        mariadb.sql("SET GLOBAL general_log = OFF; TRUNCATE mysql.general_log;")
    at = next(i for i, text in enumerate(texts) if "deferred-4711" in text)
    assert texts[at - 2 : at] == ["SET NAMES latin1", "SET AUTOCOMMIT = 0"]
    assert "@myguard_user" in texts[at - 3]  # the checkout's own SET, nothing in between


def test_myguards_answers_are_the_servers(proxy, mariadb):
    """Affected rows, insert id, status flags and warnings of every SET as the server
    answers them, through a sequence that switches autocommit off and on, opens a
    transaction and changes the character set."""
    sequence = [
        "SET NAMES latin1",
        "SET AUTOCOMMIT = 0",
        "SET autocommit=0",
        "SELECT 1",
        "SET NAMES utf8mb4 COLLATE utf8mb4_bin",
        "SET autocommit = 1",  # switched on: forwarded (it would commit)
        "SET @@session.autocommit = ON",  # on already: answered
        "BEGIN",
        "SET AUTOCOMMIT = 0",  # in a transaction
        "SET NAMES 'utf8mb4'",
        "SET NAMES utf8mb4",  # the login's text: answered by the core (taught)
        "COMMIT",
        "SET NAMES nonexistent_charset",  # the server's error, as it words it
    ]
    answers = []
    for conn in (direct(mariadb), through(proxy)):
        seen = []
        for sql in sequence:
            try:
                conn.query(sql)
            except pymysql.MySQLError as exc:
                seen.append(exc.args)
                continue
            r = conn._result
            seen.append((sql, r.affected_rows, r.insert_id, r.server_status, r.warning_count))
        seen.append(
            one(conn, "SELECT @@autocommit, @@character_set_client, @@collation_connection")
        )
        answers.append(seen)
        conn.close()
    assert answers[0] == answers[1]


def test_autocommit_off_holds_the_next_statements_in_a_transaction(proxy, mariadb, table):
    conn = through(proxy, autocommit=False)
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO {table} VALUES (1)")
    other = direct(mariadb, autocommit=True)
    assert one(other, f"SELECT COUNT(*) FROM {table}") == (0,)  # not committed
    conn.rollback()
    assert one(other, f"SELECT COUNT(*) FROM {table}") == (0,)
    other.close()
    conn.close()


def test_switching_autocommit_on_commits_when_the_client_asks(proxy, mariadb, table):
    """Not deferred: the transaction's rows and locks go when SET autocommit = 1 returns,
    not at the session's next command."""
    conn = through(proxy, autocommit=False)
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO {table} VALUES (2)")
    conn.autocommit(True)
    other = direct(mariadb, autocommit=True)
    assert one(other, f"SELECT COUNT(*) FROM {table}") == (1,)
    other.close()
    conn.close()


def test_settings_reach_the_backend_before_a_statement_myguard_runs_itself(
    private_proxy, mariadb, table, tmp_path
):
    """A statement decided with I/O (here an EXPLAIN estimate) is sent by the session
    task, not the core: the settings answered before it go first, so the INSERT runs in
    the transaction autocommit = 0 opened and the rollback undoes it."""
    rules = tmp_path / "estimate.toml"
    rules.write_text(
        '[defaults]\naction = "allow"\n\n[[rules]]\nname = "huge-writes"\naction = "block"\n'
        f'message = "too many rows"\n[rules.when]\ntables = ["{table}"]\nrows_over = 1000000\n'
    )
    p = private_proxy(rules_file=rules)
    conn = through(p, autocommit=False)
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO {table} VALUES (3)")
    conn.rollback()
    assert one(conn, f"SELECT COUNT(*) FROM {table}") == (0,)
    assert one(conn, "SELECT @@autocommit") == (0,)
    conn.close()


def test_a_reset_drops_what_was_deferred(proxy):
    """COM_RESET_CONNECTION after a deferred SET: the session is as at login."""
    conn = mysql.connector.connect(
        host="127.0.0.1", port=proxy.port, **ALICE, use_pure=True, autocommit=True
    )
    cur = conn.cursor()
    cur.execute("SET autocommit = 0")
    conn.cmd_reset_connection()
    cur = conn.cursor()
    cur.execute("SELECT @@autocommit")
    assert cur.fetchall() == [(1,)]
    conn.close()


def _general_log(mariadb, marker: str) -> list[tuple[str, str, float]]:
    """(command type, text, time) of the backend thread that ran ``marker``, in order."""
    log = direct(mariadb)
    with log.cursor() as cur:
        cur.execute(
            "SELECT thread_id FROM mysql.general_log WHERE argument LIKE %s",
            (f"%{marker}%",),
        )
        (thread,) = cur.fetchone()
        cur.execute(
            "SELECT command_type, argument, UNIX_TIMESTAMP(event_time)"
            " FROM mysql.general_log WHERE thread_id = %s",
            (thread,),
        )
        rows = [
            (kind, text.decode() if isinstance(text, bytes) else text, float(at))
            for kind, text, at in cur
        ]
    log.close()
    return rows


def test_a_pooled_login_waits_for_no_backend_command(proxy, mariadb):
    """The checkout's reset and SET of a connection just returned to the pool go with the
    session's first command, not at login: in the general log the SET comes when the
    first query comes, half a second after the login, right before it."""
    warm = through(proxy)  # the pool has a connection without a database, just reset
    warm.close()
    mariadb.sql("SET GLOBAL log_output = 'TABLE'; SET GLOBAL general_log = ON;")
    try:
        conn = through(proxy, autocommit=True)
        time.sleep(0.5)
        assert one(conn, "SELECT 'pooled-login-4712', DATABASE()") == ("pooled-login-4712", None)
        conn.close()
        rows = _general_log(mariadb, "pooled-login-4712")
    finally:
        mariadb.sql("SET GLOBAL general_log = OFF; TRUNCATE mysql.general_log;")
    at = next(i for i, row in enumerate(rows) if "pooled-login-4712" in row[1])
    query_time = rows[at][2]
    checkout = [row for row in rows[:at] if "@myguard_user" in row[1]][-1]
    assert query_time - checkout[2] < 0.25  # sent with the query, not at login
    # (MariaDB does not log COM_RESET_CONNECTION)
    sent = [(kind, text) for kind, text, _ in rows[rows.index(checkout) + 1 : at]]
    assert sent == [("Query", "SET NAMES utf8mb4")]  # PyMySQL's, too


def test_a_database_is_selected_before_the_login_answers(proxy, mariadb):
    """COM_INIT_DB is never deferred: were the database gone, the statement sent behind it
    would run in the database the pooled connection had. A database dropped since the
    server last confirmed it to the pool (more than a second ago) fails the login with the
    server's 1049, as a direct login would."""
    mariadb.sql("CREATE DATABASE IF NOT EXISTS deferred_gone")
    warm = through(proxy, database="deferred_gone")
    warm.close()
    mariadb.sql("DROP DATABASE deferred_gone")
    time.sleep(1.1)  # within the second, its connection would keep it selected
    with pytest.raises(pymysql.MySQLError) as err:
        through(proxy, database="deferred_gone")
    assert err.value.args[0] == 1049 and "deferred_gone" in err.value.args[1]
    conn = through(proxy, database="test")
    assert one(conn, "SELECT DATABASE()") == ("test",)
    conn.close()


def test_a_session_that_sent_nothing_leaves_nothing_to_the_next(private_proxy):
    """A session that only set (deferred, never sent) returns its connection without a
    reset; the next session on it sees the server's defaults, not what the first set."""
    p = private_proxy(workers=1)
    for _ in range(3):
        first = through(p, autocommit=False, charset="latin1")  # SET NAMES, SET AUTOCOMMIT
        first.close()
        second = through(p, autocommit=True)
        assert one(second, "SELECT @@autocommit, @@character_set_client") == (1, "utf8mb4")
        second.close()


def test_a_taught_set_names_still_changes_how_texts_read(private_proxy):
    """A SET NAMES utf8mb4 one session taught, sent by a session whose login named latin1:
    myguard follows the change, so the audit trail reads the next statement's UTF-8 as
    the server does, not as latin1."""
    p = private_proxy(workers=1)
    for collation, times in ((UTF8MB4_GENERAL_CI, 2), (LATIN1_SWEDISH_CI, 1)):
        client = RawClient(p.port)
        assert client.login(**ALICE, collation=collation, session_track=False)[0] == 0
        for _ in range(times):  # the first decided afresh, the second taught
            assert client.command(b"\x03SET NAMES utf8mb4")[0] == 0
        assert client.command("\x03SELECT 'naïve-4712'".encode())[0] == 1  # one column
        client.close()
    texts = [r["statement"] for r in p.audit_records() if r.type == "statement"]
    assert texts.count("SET NAMES utf8mb4") == 3
    assert texts.count("SELECT 'naïve-4712'") == 2


# OK-answered statements through which a tracking client's SETs must get the server's
# bytes: autocommit switched off, in a transaction, character sets set again.
TRACKED_SEQUENCE = [
    "SET NAMES utf8mb4",
    "SET autocommit=0",
    "DO 1",
    "BEGIN",
    "SET autocommit=0",
    "SET NAMES utf8mb4",
    "COMMIT",
    "SET autocommit=0",
    "DO 2",
]


def _raw_answers(port: int, user: str, password: str, sequence: list[str]) -> list[bytes]:
    client = RawClient(port)
    assert client.login(user, password)[0] == 0
    assert client.capabilities & (1 << 23)  # CLIENT_SESSION_TRACK
    answers = [client.command(b"\x03" + sql.encode()) for sql in sequence]
    client.close()
    return answers


def test_a_tracking_clients_settings_get_the_servers_answer(private_proxy, mariadb):
    """Clients that track session state (libmariadb: mysqlclient, the CLI; Connector/J) get
    what the server's trackers say in the OK to SET NAMES and SET autocommit: the first of
    a text goes to the server and its OK is learned, the next ones are answered by myguard
    with the same bytes, session after session, and checked against the server's own OK
    when they reach it (no ``tracked_stale``)."""
    p = private_proxy(workers=1)
    want = _raw_answers(mariadb.port, "root", ROOT_PASSWORD, TRACKED_SEQUENCE)
    assert any(len(ok) > 7 for ok in want)  # the server's trackers report the changes
    for _ in range(3):
        assert _raw_answers(p.port, **ALICE, sequence=TRACKED_SEQUENCE) == want
    assert "event=tracked_stale" not in p.log()


def test_mysqlclients_login_settings_go_with_its_first_query(private_proxy, mariadb):
    """mysqlclient (libmariadb, tracking session state) sends SET NAMES and SET
    autocommit=0 after every login: once learned, they cost no backend round trip of their
    own; the general log shows them when the first query comes, half a second later, and
    the query runs under them."""
    p = private_proxy(workers=1)

    def login():
        return MySQLdb.connect(host="127.0.0.1", port=p.port, charset="utf8mb4", **ALICE)

    for _ in range(2):  # the first decides them afresh, the second learns their OKs
        login().close()
    mariadb.sql("SET GLOBAL log_output = 'TABLE'; SET GLOBAL general_log = ON;")
    try:
        conn = login()
        assert conn.character_set_name() == "utf8mb4" and not conn.get_autocommit()
        time.sleep(0.5)
        cur = conn.cursor()
        cur.execute("SELECT @@autocommit, @@character_set_client, 'tracked-4713'")
        assert cur.fetchone() == (0, "utf8mb4", "tracked-4713")
        conn.close()
        rows = _general_log(mariadb, "tracked-4713")
    finally:
        mariadb.sql("SET GLOBAL general_log = OFF; TRUNCATE mysql.general_log;")
    at = next(i for i, row in enumerate(rows) if "tracked-4713" in row[1])
    sets = [row for row in rows[:at] if row[1] in ("SET NAMES utf8mb4", "SET autocommit=0")]
    assert [row[1] for row in sets] == ["SET NAMES utf8mb4", "SET autocommit=0"]
    assert all(rows[at][2] - row[2] < 0.25 for row in sets)  # sent with the query


def test_an_answer_the_server_contradicts_is_learned_again(private_proxy, mariadb):
    """The server's trackers change (here: ``session_track_state_change`` switched on for
    new sessions): the next answer given from what was learned before is found to differ
    when the server's own OK arrives with the next command (logged as ``tracked_stale``),
    and the session after it gets the server's new answer again."""
    p = private_proxy(workers=1)
    sequence = ["SET autocommit=0", "DO 1"]
    for _ in range(2):  # decided afresh, then learned
        _raw_answers(p.port, **ALICE, sequence=sequence)
    mariadb.sql("SET GLOBAL session_track_state_change = ON")
    try:
        want = _raw_answers(mariadb.port, "root", ROOT_PASSWORD, sequence)
        assert want[0].endswith(b"\x02\x011")  # the state-change tracker's entry
        stale = _raw_answers(p.port, **ALICE, sequence=sequence)
        assert stale[0] != want[0]  # answered from what was learned before
        assert "event=tracked_stale" in p.log()
        assert _raw_answers(p.port, **ALICE, sequence=sequence) == want
        assert _raw_answers(p.port, **ALICE, sequence=sequence) == want
    finally:
        mariadb.sql("SET GLOBAL session_track_state_change = OFF")
    assert p.log().count("event=tracked_stale") == 1


def test_a_session_that_changes_its_trackers_gets_the_servers_own_answers(private_proxy, mariadb):
    """A session that changes its own session trackers is never answered from what other
    sessions taught: its SETs go to the server, and what it sees is not taught."""
    p = private_proxy(workers=1)
    for _ in range(2):  # decided afresh, then learned
        _raw_answers(p.port, **ALICE, sequence=["SET autocommit=0", "DO 1"])
    sequence = ["SET session_track_state_change = ON", "SET autocommit=0", "DO 1"]
    want = _raw_answers(mariadb.port, "root", ROOT_PASSWORD, sequence)
    assert want[1].endswith(b"\x02\x011")
    assert _raw_answers(p.port, **ALICE, sequence=sequence) == want
    assert "event=tracked_stale" not in p.log()
    plain = _raw_answers(mariadb.port, "root", ROOT_PASSWORD, ["SET autocommit=0"])
    assert _raw_answers(p.port, **ALICE, sequence=["SET autocommit=0"]) == plain


def test_a_login_naming_the_database_its_connection_has_waits_for_no_backend_command(
    private_proxy, mariadb
):
    """A login naming the database its pooled connection has selected (confirmed by the
    server within a second; the reset keeps it) is not selected again: the checkout's
    commands go with the first query, half a second after the login, and no Init DB is
    among them."""
    p = private_proxy(workers=1)
    through(p, database="test").close()
    mariadb.sql("SET GLOBAL log_output = 'TABLE'; SET GLOBAL general_log = ON;")
    try:
        conn = through(p, database="test", autocommit=True)
        time.sleep(0.5)
        assert one(conn, "SELECT 'same-db-4714', DATABASE()") == ("same-db-4714", "test")
        conn.close()
        rows = _general_log(mariadb, "same-db-4714")
    finally:
        mariadb.sql("SET GLOBAL general_log = OFF; TRUNCATE mysql.general_log;")
    at = next(i for i, row in enumerate(rows) if "same-db-4714" in row[1])
    checkout = [i for i, row in enumerate(rows[:at]) if "@myguard_user" in row[1]][-1]
    assert rows[at][2] - rows[checkout][2] < 0.25  # sent with the query, not at login
    assert "Init DB" not in [kind for kind, _, _ in rows[checkout:at]]


@pytest.fixture()
def two_databases(mariadb):
    """db_first and db_other, each with a table t holding its own name."""
    mariadb.sql(
        "CREATE DATABASE IF NOT EXISTS db_first; CREATE DATABASE IF NOT EXISTS db_other;"
        "CREATE OR REPLACE TABLE db_first.t (v VARCHAR(10)); INSERT INTO db_first.t VALUES ('first');"
        "CREATE OR REPLACE TABLE db_other.t (v VARCHAR(10)); INSERT INTO db_other.t VALUES ('other');"
    )
    yield
    mariadb.sql("DROP DATABASE IF EXISTS db_first; DROP DATABASE db_other")


@pytest.mark.parametrize("change", ["USE", "COM_INIT_DB", "DROP DATABASE", "EXECUTE IMMEDIATE"])
def test_a_session_that_changed_its_database_leaves_none_to_the_next(
    private_proxy, two_databases, change
):
    """A session that selected another database (USE, COM_INIT_DB) or dropped its own
    (seen, or in SQL the analysis cannot read):
    the next session naming the first database at login gets it selected afresh (its
    statements run there), or the server's 1049 once it is gone, as a direct login."""
    p = private_proxy(workers=1)
    through(p, database="db_first").close()
    first = through(p, database="db_first")
    if change == "USE":
        first.query("USE db_other")
    elif change == "COM_INIT_DB":
        first.select_db("db_other")
    elif change == "DROP DATABASE":
        first.query("DROP DATABASE db_first")
    else:  # opaque to the analysis
        first.query("EXECUTE IMMEDIATE CONCAT('DROP DATA', 'BASE db_first')")
    first.close()
    if "DROP" in change or "EXECUTE" in change:
        with pytest.raises(pymysql.MySQLError) as err:
            through(p, database="db_first", autocommit=True).close()
        assert err.value.args[0] == 1049
        return
    second = through(p, database="db_first", autocommit=True)  # holds no lock after
    try:
        assert one(second, "SELECT DATABASE(), (SELECT v FROM t)") == ("db_first", "first")
    finally:
        second.close()


@pytest.mark.parametrize("environment", ["development", "production"])
@pytest.mark.parametrize(
    "sql", ["EXECUTE IMMEDIATE 'USE db_other'", "PREPARE s FROM 'USE db_other'"]
)
def test_use_in_dynamic_sql_never_leaves_the_next_session_elsewhere(
    private_proxy, two_databases, environment, sql
):
    """MariaDB runs USE from a prepared text too. myguard does not read it as a USE (its
    names would resolve in the old database): refused in production, and where the shipped
    rules let statements it cannot analyse through (development), the pool selects the
    next session's database afresh all the same."""
    p = private_proxy(workers=1, environment=environment)
    through(p, database="db_first").close()
    first = through(p, database="db_first", autocommit=True)
    try:
        first.query(sql)
        if sql.startswith("PREPARE"):
            first.query("EXECUTE s")
        refused = None
    except pymysql.MySQLError as exc:
        refused = exc.args[0]
    first.close()
    if environment == "production":
        assert refused == 4700
    second = through(p, database="db_first", autocommit=True)
    try:
        assert one(second, "SELECT DATABASE(), (SELECT v FROM t)") == ("db_first", "first")
    finally:
        second.close()
