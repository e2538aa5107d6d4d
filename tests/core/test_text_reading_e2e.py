"""sql_mode flags and two-byte character sets cannot hide what a statement reads."""

from __future__ import annotations

import time

import mysql.connector
import pymysql
import pytest

from mariadb_server import ROOT_PASSWORD
from myguard.audit import iter_records
from myguard.policy.cache import statement_fingerprint

BLOCKED = 4700


def connect(proxy, user="bob", password="bob-pw-2"):
    return pymysql.connect(
        host="127.0.0.1", port=proxy.port, user=user, password=password,
        database="shop", autocommit=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def first_email(mariadb):
    conn = pymysql.connect(
        host="127.0.0.1", port=mariadb.port, user="root", password=ROOT_PASSWORD, database="shop"
    )
    with conn.cursor() as cur:
        cur.execute("SELECT email FROM customers ORDER BY id LIMIT 1")
        (email,) = cur.fetchone()
    conn.close()
    return email


def refused(cur, sql):
    with pytest.raises(pymysql.err.OperationalError) as err:
        cur.execute(sql)
    code, message = err.value.args
    assert code == BLOCKED
    return message


def test_double_quoted_names_under_ansi_quotes_are_refused_not_unmasked(proxy, first_email):
    conn = connect(proxy)
    with conn.cursor() as cur:
        cur.execute('SELECT "plain text"')  # default mode: a string
        assert cur.fetchone() == ("plain text",)
        cur.execute("SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',ANSI_QUOTES')")
        message = refused(cur, 'SELECT "email" FROM customers ORDER BY id LIMIT 1')
        assert "ANSI_QUOTES" in message and "backticks" in message
        cur.execute("SELECT `email` FROM customers ORDER BY id LIMIT 1")
        (masked,) = cur.fetchone()
        assert masked != first_email and masked.endswith(first_email.split("@")[1])
        cur.execute("SET SESSION sql_mode = DEFAULT")
        cur.execute('SELECT "plain text"')
        assert cur.fetchone() == ("plain text",)
    conn.close()


def test_double_quotes_inside_strings_run_under_ansi_quotes_and_stay_masked(proxy, first_email):
    conn = connect(proxy)
    with conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = 'ANSI'")  # ANSI_QUOTES among others
        # PyMySQL escapes the quotes of a parameter as \"
        cur.execute("SELECT %s, `email` FROM customers ORDER BY id LIMIT 1", ('say "hi"',))
        text, masked = cur.fetchone()
        assert text == 'say "hi"'
        assert masked != first_email and masked.endswith(first_email.split("@")[1])
        cur.execute("""SELECT JSON_VALUE('{"email": "x@y"}', '$.email')""")
        assert cur.fetchone() == ("x@y",)
        message = refused(cur, """SELECT 'say "hi"' "email" FROM customers LIMIT 1""")
        assert "ANSI_QUOTES" in message
    conn.close()


def test_backslashes_under_no_backslash_escapes_are_refused_not_unmasked(proxy, first_email):
    conn = connect(proxy)
    hidden = r"SELECT 'a\', email FROM customers ORDER BY id LIMIT 1 -- '"
    with conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'")
        message = refused(cur, hidden)
        assert "NO_BACKSLASH_ESCAPES" in message
        with pytest.raises(pymysql.err.OperationalError) as err:
            cur.execute("SELECT no_such_column FROM customers")  # an error keeps the mode known
        assert err.value.args[0] == 1054
        message = refused(cur, hidden)
        cur.execute("SELECT email FROM customers ORDER BY id LIMIT 1")
        assert cur.fetchone()[0] != first_email
        cur.execute("SET SESSION sql_mode = DEFAULT")
        cur.execute(r"SELECT 'it\'s'")
        assert cur.fetchone() == ("it's",)
    conn.close()


def test_a_mode_set_inside_a_multi_statement_text_is_seen(proxy):
    conn = pymysql.connect(
        host="127.0.0.1", port=proxy.port, user="bob", password="bob-pw-2", database="shop",
        autocommit=True, client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS,
    )  # fmt: skip
    with conn.cursor() as cur:
        cur.execute('SELECT "x"')  # ANSI_QUOTES known to be off
        cur.execute("SET SESSION sql_mode = 'ANSI_QUOTES'; SELECT 1")
        while cur.nextset():
            pass
        refused(cur, 'SELECT "email" FROM customers')
    conn.close()


def test_production_refuses_for_unmasked_users_too(private_proxy):
    proxy = private_proxy(environment="production")
    conn = connect(proxy, "carol", "carol-pw-3")
    with conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = 'ANSI_QUOTES'")
        message = refused(cur, 'SELECT "name" FROM customers')
        assert message.startswith("myguard: blocked by rule 'unparsed'")
        cur.execute("SELECT `name` FROM customers LIMIT 1")
        assert cur.fetchone()
    conn.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [
            r
            for r in iter_records(proxy.audit_dir)
            if r.type == "statement" and r["statement"] == 'SELECT "name" FROM customers'
        ]
        if found:
            break
        time.sleep(0.05)
    assert found, "the refusal was not audited"
    assert found[0]["decision"] == "block" and found[0]["rule"] == "unparsed"
    assert found[0]["error_code"] == BLOCKED


def test_a_mode_set_through_an_escaped_name_is_seen(private_proxy):
    # EXECUTE IMMEDIATE of a literal is analysed (not opaque), so production lets it run.
    proxy = private_proxy(environment="production")
    conn = connect(proxy, "carol", "carol-pw-3")
    with conn.cursor() as cur:
        cur.execute('SELECT "x"')  # ANSI_QUOTES known to be off
        # In a string literal \l reads as l: the server runs SET sql_mode.
        cur.execute(r"EXECUTE IMMEDIATE 'SET sq\l_mode = ''ANSI_QUOTES'''")
        refused(cur, 'SELECT "name" FROM customers')
        cur.execute("SELECT @@SESSION.sql_mode")  # the server did read sql_mode
        assert cur.fetchone() == ("ANSI_QUOTES",)
    conn.close()


def gbk_connect(proxy, user, password):
    return pymysql.connect(
        host="127.0.0.1", port=proxy.port, user=user, password=password, database="shop",
        autocommit=True, charset="gbk",
    )  # fmt: skip


# 0xBF 0x5C is one GBK character; read as UTF-8 it is a broken byte and a backslash that
# would escape the quote after it, turning the rest of the statement into one literal.
GBK_HIDING = bytes((0xBF, 0x5C)).decode("gbk")


def test_a_gbk_character_cannot_hide_a_tautology(private_proxy):
    proxy = private_proxy(environment="production")
    conn = gbk_connect(proxy, "carol", "carol-pw-3")
    with conn.cursor() as cur:
        cur.execute("SELECT '中文'")
        assert cur.fetchone() == ("中文",)
        # As GBK: WHERE item = '…' OR 1=1, an update of every row (the no-WHERE guardrail).
        sql = f"UPDATE orders SET quantity = quantity WHERE item = '{GBK_HIDING}' OR 1=1 -- '"
        assert "gbk" in refused(cur, sql)
    conn.close()


def test_a_gbk_character_cannot_unmask_a_column(proxy, first_email):
    conn = gbk_connect(proxy, "bob", "bob-pw-2")
    with conn.cursor() as cur:
        sql = f"SELECT '{GBK_HIDING}', email FROM customers ORDER BY id LIMIT 1 -- '"
        assert "gbk" in refused(cur, sql)
        cur.execute("SELECT email FROM customers ORDER BY id LIMIT 1")
        assert cur.fetchone()[0] != first_email
    conn.close()


def test_a_character_set_named_through_an_escaped_name_is_seen(private_proxy):
    """In a literal ``\\E`` reads as ``E``: the server runs SET NAMES gbk, whose name the
    text does not show. The set must count as unknown after it (it stayed UTF-8), or a GBK
    character would hide a tautology, as in the test above."""
    proxy = private_proxy(environment="production")
    conn = connect(proxy, "carol", "carol-pw-3")
    with conn.cursor() as cur:
        cur.execute('SELECT "x"')  # the session's settings asked: UTF-8, no ANSI_QUOTES
        assert cur.fetchone() == ("x",)
        cur.execute(r"EXECUTE IMMEDIATE 'SET NAM\ES gbk'")
        sql = f"UPDATE orders SET quantity = quantity WHERE item = '{GBK_HIDING}' OR 1=1 -- '"
        assert "gbk" in refused(cur, sql.encode("gbk"))
        cur.execute("SELECT @@character_set_client")
        assert cur.fetchone() == ("gbk",)
    conn.close()


def charset_connect(proxy, charset, user="bob", password="bob-pw-2"):
    return pymysql.connect(
        host="127.0.0.1", port=proxy.port, user=user, password=password, database="shop",
        autocommit=True, charset=charset,
    )  # fmt: skip


def audited(proxy, sql):
    """The statement records of ``sql`` (its text as the client meant it)."""
    return [r for r in proxy.audit_records() if r.type == "statement" and r["statement"] == sql]


@pytest.fixture(scope="module")
def creme(mariadb):
    """A table whose names are not ASCII, with one row."""
    root = pymysql.connect(
        host="127.0.0.1", port=mariadb.port, user="root", password=ROOT_PASSWORD,
        database="shop", autocommit=True,
    )  # fmt: skip
    with root.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS `crème` (`quantité` INT)")
        cur.execute("DELETE FROM `crème`")
        cur.execute("INSERT INTO `crème` VALUES (7)")
        cur.execute("CREATE DATABASE IF NOT EXISTS `bäse`")
    root.close()


@pytest.mark.usefixtures("creme")
def test_a_latin1_client_is_read_and_audited_in_its_own_characters(proxy, first_email):
    conn = charset_connect(proxy, "latin1")
    literal = "SELECT 'Crème brûlée', email FROM customers ORDER BY id LIMIT 1"
    names = "SELECT quantité FROM crème"  # unquoted: the text must be read to be analysed
    # Its latin1 bytes (C3 A9) also spell UTF-8 "é": only the login's set tells them apart.
    lookalike = "SELECT 'Ã©tÃ©'"
    with conn.cursor() as cur:
        cur.execute(lookalike)
        assert cur.fetchone() == ("Ã©tÃ©",)
        cur.execute(literal)
        text, masked = cur.fetchone()
        assert text == "Crème brûlée"
        assert masked != first_email and masked.endswith(first_email.split("@")[1])
        cur.execute(names)
        assert cur.fetchone() == (7,)
    conn.close()
    for sql in (lookalike, literal, names):
        (record,) = audited(proxy, sql)
        assert record["fingerprint"] == statement_fingerprint(sql)
    assert audited(proxy, names)[0]["tables_read"] == ["shop.crème"]


@pytest.mark.usefixtures("creme")
def test_a_latin1_client_s_prepared_statements_are_read_in_its_characters(proxy, first_email):
    conn = mysql.connector.connect(
        host="127.0.0.1", port=proxy.port, user="bob", password="bob-pw-2", database="shop",
        charset="latin1", use_pure=True,
    )  # fmt: skip
    sql = "SELECT 'Crème', email FROM customers WHERE id > ? ORDER BY id LIMIT 1"
    cur = conn.cursor(prepared=True)
    cur.execute(sql, (0,))
    text, masked = cur.fetchone()
    assert text == "Crème"
    assert masked != first_email and masked.endswith(first_email.split("@")[1])
    cur.execute("SELECT quantité FROM crème WHERE quantité > ?", (0,))
    assert cur.fetchall() == [(7,)]
    conn.close()
    assert audited(proxy, sql)


def test_a_character_set_named_mid_session_is_followed_or_asked_for(proxy):
    conn = charset_connect(proxy, "utf8mb4")
    cyrillic = "SELECT HEX('Привет, мир') AS h"
    koi8 = "SELECT HEX('Мир') AS h"
    with conn.cursor() as cur:
        cur.execute("SELECT 'Zürich'")  # UTF-8, read as such
        assert cur.fetchone() == ("Zürich",)
        cur.execute("SET NAMES cp1251")  # followed
        cur.execute(cyrillic.encode("cp1251"))
        assert cur.fetchone() == ("Привет, мир".encode("cp1251").hex().upper(),)
        cur.execute("SET NAMES utf8mb4")
        cur.execute("SELECT HEX('Zürich')")
        assert cur.fetchone() == ("Zürich".encode().hex().upper(),)
        cur.execute("SET @cs = 'koi8r'")
        # A set named through a variable: not UTF-8 bytes make the slow path ask for it.
        cur.execute("SET character_set_client = @cs")
        cur.execute(koi8.encode("koi8_r"))
        # read as KOI8-R, converted to the connection's utf8mb4
        assert cur.fetchone() == ("Мир".encode().hex().upper(),)
    conn.close()
    assert len(audited(proxy, cyrillic)) == 1
    assert len(audited(proxy, "SELECT HEX('Zürich')")) == 1
    assert len(audited(proxy, koi8)) == 1


@pytest.mark.usefixtures("creme")
def test_a_latin1_client_s_database_is_read_in_its_characters(proxy):
    conn = charset_connect(proxy, "latin1")
    conn.select_db("bäse")  # COM_INIT_DB, the name in latin1
    sql = "SELECT DATABASE() AS db"
    with conn.cursor() as cur:
        cur.execute(sql)
        assert cur.fetchone() == ("bäse",)
    conn.ping()  # the session goes on on the same backend session
    conn.close()
    assert [r["database"] for r in audited(proxy, sql)] == ["bäse"]


@pytest.mark.usefixtures("creme")
@pytest.mark.parametrize("pool", [{"min_idle": 0}, {"enabled": False}], ids=["pool", "off"])
def test_a_latin1_client_logs_in_to_a_database_named_in_its_characters(private_proxy, pool):
    """The handshake's database is in the client's set, which the server reads it in: the
    backend login (a fresh pooled connection, or one with the pool off) carries it in that
    set, and so does the COM_INIT_DB that selects it on a reused connection."""
    proxy = private_proxy(workers=1, backend={"pool": pool})
    for _ in range(3):  # with the pool on: a fresh connection, then reused ones
        conn = pymysql.connect(
            host="127.0.0.1", port=proxy.port, user="bob", password="bob-pw-2",
            database="bäse", charset="latin1",
        )  # fmt: skip
        with conn.cursor() as cur:
            cur.execute("SELECT DATABASE() AS db")
            assert cur.fetchone() == ("bäse",)
        conn.close()
    logins = [r for r in proxy.audit_records() if r.type == "login"]
    sessions = {r["session_id"] for r in logins if r["success"]}
    records = [r for r in proxy.audit_records() if r.get("session_id") in sessions]
    assert {r["database"] for r in records if r.type == "statement"} == {"bäse"}
