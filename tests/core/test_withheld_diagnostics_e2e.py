"""Error and warning texts of a statement that read masked columns never reach the client:
the code and SQLSTATE stay, the message is withheld, and SHOW WARNINGS / SHOW ERRORS after
it list the backend's conditions with the messages withheld (issue 16)."""

from __future__ import annotations

import pymysql
import pytest

from myguard.session.result_masking import WITHHELD


def connect(proxy, user: str, password: str):
    return pymysql.connect(
        host="127.0.0.1", port=proxy.port, user=user, password=password,
        database="shop", autocommit=True,
    )  # fmt: skip


@pytest.fixture()
def bob(proxy):  # group analysts: email, ssn and card_number are masked for him
    conn = connect(proxy, "bob", "bob-pw-2")
    yield conn
    conn.close()


def test_an_error_of_a_statement_reading_masked_columns_keeps_only_its_code(bob):
    with bob.cursor() as cur, pytest.raises(pymysql.err.MySQLError) as err:
        cur.execute("SELECT email, (SELECT 1 UNION SELECT 2) FROM customers WHERE id = 1")
    assert err.value.args == (1242, WITHHELD)
    with bob.cursor() as cur:  # the session goes on
        cur.execute("SELECT id FROM customers WHERE id = 1")
        assert cur.fetchone() == (1,)


def test_warnings_of_a_statement_reading_masked_columns_are_withheld(bob):
    with bob.cursor() as cur:
        cur.execute("SELECT email, 1 / 0 FROM customers WHERE id <= 2")
        assert len(cur.fetchall()) == 2
        cur.execute("SHOW WARNINGS")
        warnings = cur.fetchall()
        assert warnings and all(w[1] == 1365 and w[2] == WITHHELD for w in warnings)
        withheld = [(f.name, f.type_code, f.flags) for f in cur._result.fields]
        cur.execute("SELECT id, 1 / 0 FROM customers WHERE id = 1")  # no masked column
        cur.fetchall()
        cur.execute("SHOW WARNINGS")  # the backend's own answer
        assert withheld == [(f.name, f.type_code, f.flags) for f in cur._result.fields]
        cur.execute("SHOW ERRORS")  # the diagnostics area is still the masked statement's
        assert all(row[2] == WITHHELD for row in cur.fetchall())


@pytest.mark.parametrize(
    "show",
    ["/* c */ SHOW WARNINGS", "SHOW /* c */ WARNINGS", "/*!SHOW WARNINGS*/", "show warnings -- c"],
)
def test_diagnostics_are_withheld_in_any_spelling(bob, show):
    """A comment before or inside SHOW WARNINGS had let the backend's texts through."""
    with bob.cursor() as cur:
        cur.execute("SELECT email, 1 / 0 FROM customers WHERE id <= 2")
        cur.fetchall()
        cur.execute(show)
        rows = cur.fetchall()
        assert rows and all(row[2] == WITHHELD for row in rows)


def test_texts_of_statements_without_masked_columns_pass(bob):
    with bob.cursor() as cur:
        cur.execute("SELECT id, 1 / 0 FROM customers WHERE id = 1")
        cur.fetchall()
        cur.execute("SHOW WARNINGS")
        assert [w[2] for w in cur.fetchall()] == ["Division by 0"]
        with pytest.raises(pymysql.err.MySQLError) as err:
            cur.execute("SELECT id, (SELECT 1 UNION SELECT 2) FROM customers WHERE id = 1")
        assert err.value.args == (1242, "Subquery returns more than 1 row")


def test_the_next_statement_clears_the_withheld_diagnostics(bob):
    with bob.cursor() as cur:
        cur.execute("SELECT email, 1 / 0 FROM customers WHERE id = 1")
        cur.fetchall()
        cur.execute("SELECT 1 / 0")
        cur.fetchall()
        cur.execute("SHOW WARNINGS")
        assert [w[2] for w in cur.fetchall()] == ["Division by 0"]


def test_unmasked_identities_see_every_text(proxy):
    conn = connect(proxy, "carol", "carol-pw-3")
    with conn.cursor() as cur, pytest.raises(pymysql.err.MySQLError) as err:
        cur.execute("SELECT email, (SELECT 1 UNION SELECT 2) FROM customers WHERE id = 1")
    assert err.value.args == (1242, "Subquery returns more than 1 row")
    conn.close()


def test_get_diagnostics_is_refused_for_identities_with_masking(bob):
    with bob.cursor() as cur:
        cur.execute("SELECT email, 1 / 0 FROM customers WHERE id = 1")
        cur.fetchall()
        with pytest.raises(pymysql.err.MySQLError) as err:
            cur.execute("GET DIAGNOSTICS CONDITION 1 @m = MESSAGE_TEXT")
        assert err.value.args[0] == 4701  # refused by masking: it cannot be analysed


@pytest.mark.parametrize(
    "get",
    [
        "GET DIAGNOSTICS CONDITION 1 @m = MESSAGE_TEXT",
        "get current diagnostics condition 1 @m = message_text",
    ],
)
def test_get_diagnostics_cannot_read_withheld_texts(bob, get):
    """GET DIAGNOSTICS reads the diagnostics area SHOW WARNINGS shows: into a variable,
    then SELECT @m, it would hand over the texts withheld there. For a session with masked
    columns it is refused (myguard does not analyse it, and masking refuses what it cannot
    read), and the variable is left as it was."""
    with bob.cursor() as cur:
        cur.execute("SET @m = 'unset'")
        cur.execute("SELECT email, 1 / 0 FROM customers WHERE id <= 2")
        cur.fetchall()
        with pytest.raises(pymysql.err.MySQLError) as err:
            cur.execute(get)
        assert err.value.args[0] == 4701
        cur.execute("SELECT @m")
        assert cur.fetchone() == ("unset",)
