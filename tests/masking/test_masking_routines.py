"""Issue 16, stored code for an identity with masking: a write is refused (4701, naming the
trigger) when a trigger it fires reads a masked column or cannot be analysed; creating a
trigger, event or stored routine whose body does is refused too; benign ones pass."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest

from myguard.analysis import analyze as analyze_tables
from myguard.backend.catalog import SchemaCatalog, Trigger
from myguard.masking.plan import MaskRules
from myguard.masking.routines import body_reads, parse_created, split_body
from myguard.masking.service import Masking
from myguard.policy.decision import Decision
from myguard.policy.mask_spec import MaskSpec
from myguard.protocol.errors import MySQLError

TABLES = {
    ("shop", "customers"): ["id", "name", "ssn"],
    ("shop", "orders"): ["id", "customer_id", "note"],
    ("shop", "log"): ["a", "b"],
    ("shop", "audit"): ["a"],
}
RULES = MaskRules(
    [("shop.customers.ssn", MaskSpec("redact")), ("shop.customers.name", MaskSpec("redact"))],
    lambda db, table, column: set(),
)


def schema(db: str, table: str) -> list[str] | None:
    return TABLES.get((db, table))


def views(db: str, table: str) -> None:
    return None


# --- reading CREATE statements ---------------------------------------------------------------


@pytest.mark.parametrize(
    "sql,kind,name,body,table,params",
    [
        (
            "CREATE DEFINER=`root`@`%` TRIGGER `shop`.t1 AFTER INSERT ON shop.`orders` "
            "FOR EACH ROW lbl: BEGIN INSERT INTO log VALUES (NEW.id, 1); END lbl",
            "trigger", "shop.t1", "lbl: BEGIN INSERT INTO log VALUES (NEW.id, 1); END lbl",
            ("shop", "orders"), (),
        ),
        (
            "CREATE OR REPLACE TRIGGER IF NOT EXISTS t BEFORE UPDATE ON orders FOR EACH ROW "
            "FOLLOWS other SET NEW.note = 'x'",
            "trigger", "t", "SET NEW.note = 'x'", (None, "orders"), (),
        ),
        (
            "CREATE FUNCTION s.f(i INT, `j` TEXT) RETURNS VARCHAR(64) CHARACTER SET utf8mb4 "
            "READS SQL DATA COMMENT 'SELECT' RETURN i",
            "function", "s.f", "RETURN i", None, ("i", "j"),
        ),
        (
            "CREATE PROCEDURE p(IN a INT, OUT b DECIMAL(10, 2)) SQL SECURITY INVOKER "
            "BEGIN SELECT 1; END",
            "procedure", "p", "BEGIN SELECT 1; END", None, ("a", "b"),
        ),
        (
            "CREATE EVENT e ON SCHEDULE EVERY 1 HOUR COMMENT 'DO not' DO DELETE FROM log",
            "event", "e", "DELETE FROM log", None, (),
        ),
        ("ALTER EVENT e ON SCHEDULE EVERY 2 HOUR DO SELECT 1", "event", "e", "SELECT 1", None, ()),
        ("ALTER EVENT e DISABLE", "event", "e", None, None, ()),
    ],
)  # fmt: skip
def test_created_code_is_found(sql, kind, name, body, table, params):
    created = parse_created(sql, kind)
    assert created is not None
    assert (created.kind, created.name, created.body) == (kind, name, body)
    assert (created.table, created.params) == (table, params)


@pytest.mark.parametrize(
    "sql,kind",
    [
        ("CREATE EVENT e ON SCHEDULE EVERY 1 HOUR", "event"),
        ("CREATE TRIGGER t AFTER INSERT orders FOR EACH ROW SET @a = 1", "trigger"),
        ("CREATE FUNCTION f RETURNS INT RETURN 1", "function"),
        ("PREPARE s FROM 'CREATE EVENT e ON SCHEDULE EVERY 1 HOUR DO SELECT 1'", "event"),
    ],
)
def test_unreadable_created_code_is_none(sql, kind):
    assert parse_created(sql, kind) is None


# --- bodies ----------------------------------------------------------------------------------


def reads(body: str, row=None, params=()) -> set[str] | None:
    statements = split_body(body)
    if statements is None:
        return None
    found = body_reads(statements, db="shop", schema=schema, views=views, row=row, params=params)
    return None if found is None else {".".join(s[1:]) for s in found}


@pytest.mark.parametrize(
    "body,expected",
    [
        ("INSERT INTO log VALUES (NEW.id, 1)", {"orders.id"}),
        ("BEGIN INSERT INTO log VALUES (NEW.id, 1); DELETE FROM audit WHERE a = OLD.id; END",
         {"orders.id", "audit.a"}),
        ("INSERT INTO log (a) SELECT ssn FROM customers WHERE id = NEW.customer_id",
         {"customers.ssn", "customers.id", "orders.customer_id"}),
        ("SET NEW.note = (SELECT name FROM customers WHERE id = NEW.customer_id)",
         {"customers.name", "customers.id", "orders.customer_id", "orders.note"}),
        ("UPDATE log SET a = b + 1 WHERE a = NEW.id", {"log.a", "log.b", "orders.id"}),
        # a subquery in UPDATE SET is attributed by no scope: cannot tell
        ("UPDATE log SET a = (SELECT COUNT(*) FROM customers)", None),
        ("IF NEW.id > 1 THEN INSERT INTO log VALUES (1, 2); END IF", None),
        ("BEGIN DECLARE x INT; SET x = 1; END", None),
        ("CALL p(NEW.id)", None),
        ("INSERT INTO log SELECT * FROM nowhere", None),
    ],
)  # fmt: skip
def test_trigger_body_reads(body, expected):
    assert reads(body, row=("shop", "orders")) == expected


def test_routine_parameters_read_nothing():
    assert reads("RETURN (SELECT ssn FROM customers WHERE id = p)", params=("p",)) == {
        "customers.ssn",
        "customers.id",
    }
    assert reads("RETURN p * 2", params=("p",)) == set()
    # Without the parameter list, ``p`` is a column of no known table: cannot tell.
    assert reads("RETURN (SELECT ssn FROM customers WHERE id = p)") is None


# --- the service: writes and CREATEs of a masked identity ------------------------------------


class FakeCatalog:
    """The schema catalog without a backend: tables above, triggers given per test."""

    def __init__(self, triggers: list[Trigger]) -> None:
        self.config = SimpleNamespace(name="b")
        self._triggers = triggers
        self.asked: list[tuple[str, str]] = []

    async def prefetch(self, tables) -> None:
        return None

    async def prefetch_triggers(self, tables) -> None:
        self.asked += sorted(tables)

    def columns(self, db: str, table: str) -> list[str] | None:
        return schema(db, table)

    def view(self, db: str, table: str) -> None:
        return None

    def triggers(self, db: str, table: str) -> tuple[Trigger, ...]:
        return tuple(t for t in self._triggers if (t.table[0], t.table[1]) == (db, table))


def check(sql: str, triggers: list[Trigger] = (), db: str = "shop") -> str | None:
    """The refusal of ``sql`` for the masked identity, or None when it may run."""
    masking = Masking(b"k" * 32, "refuse")
    catalog = masking.catalogs["b"] = FakeCatalog(list(triggers))
    decision = Decision("mask", "r", "", tuple(analyze_tables(sql, db)))
    try:
        asyncio.run(masking.lineages(SimpleNamespace(name="b"), db, decision, RULES))
    except MySQLError as exc:
        assert exc.code == 4701
        return exc.message
    finally:
        check.asked = catalog.asked
    return None


def trigger(name: str, event: str, table: str, body: str) -> Trigger:
    return Trigger("shop", name, event, ("shop", table), body)


LEAK = trigger(
    "t_leak",
    "INSERT",
    "orders",
    "INSERT INTO log (a) SELECT ssn FROM customers WHERE id = NEW.customer_id",
)
BENIGN = trigger("t_ok", "INSERT", "orders", "INSERT INTO log (a, b) VALUES (NEW.id, NEW.note)")


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO orders (customer_id) VALUES (1)",
        "INSERT INTO shop.orders (customer_id) SELECT 1",
        "INSERT INTO log (a) VALUES (1)",  # log's trigger writes orders, whose trigger leaks
    ],
)
def test_write_firing_a_leaking_trigger_is_refused(sql):
    relay = trigger("t_relay", "INSERT", "log", "INSERT INTO orders (customer_id) VALUES (NEW.a)")
    message = check(sql, [LEAK, relay])
    assert message is not None
    assert "trigger (shop.t_leak on shop.orders) of masked column shop.customers.ssn" in message


def test_multi_table_writes_check_every_table():
    on_update = trigger("t_upd", "UPDATE", "orders", LEAK.body)
    message = check("UPDATE log l JOIN orders o ON o.id = l.a SET o.note = 'x'", [on_update])
    assert message is not None and "shop.t_upd" in message
    on_delete = trigger("t_del", "DELETE", "orders", LEAK.body.replace("NEW", "OLD"))
    message = check("DELETE o FROM orders o JOIN log l ON o.id = l.a", [on_delete])
    assert message is not None and "shop.t_del" in message


def test_benign_and_unfired_triggers_let_the_write_run():
    on_delete = trigger("t_del", "DELETE", "orders", LEAK.body)
    assert check("INSERT INTO orders (customer_id) VALUES (1)", [BENIGN, on_delete]) is None
    assert check("UPDATE orders SET note = 'x' WHERE id = 1", [LEAK]) is None
    assert check("SELECT id FROM orders", [LEAK]) is None
    assert check.asked == []  # a read fires nothing: no trigger lookup


def test_a_trigger_that_cannot_be_analysed_refuses_the_write():
    opaque = trigger("t_if", "INSERT", "orders", "IF NEW.id > 0 THEN CALL p(); END IF")
    message = check("INSERT INTO orders (customer_id) VALUES (1)", [opaque])
    assert message is not None
    assert "trigger (shop.t_if on shop.orders, whose body myguard cannot analyse)" in message


def test_a_trigger_reading_the_masked_row_refuses_the_write():
    copy_row = trigger("t_row", "UPDATE", "customers", "INSERT INTO log (a) VALUES (OLD.ssn)")
    message = check("UPDATE customers SET email = 'x' WHERE id = 1", [copy_row])
    assert message is not None and "of masked column shop.customers.ssn" in message


@pytest.mark.parametrize(
    "sql,name",
    [
        ("CREATE TRIGGER t AFTER INSERT ON orders FOR EACH ROW "
         "INSERT INTO log (a) SELECT ssn FROM customers WHERE id = NEW.customer_id", "trigger t"),
        ("CREATE TRIGGER t AFTER UPDATE ON customers FOR EACH ROW "
         "INSERT INTO log (a) VALUES (NEW.name)", "trigger t"),
        ("CREATE EVENT shop.e ON SCHEDULE EVERY 1 HOUR DO "
         "INSERT INTO log (a) SELECT ssn FROM customers", "event shop.e"),
        ("ALTER EVENT e DO INSERT INTO log (a) SELECT MAX(ssn) FROM customers", "event e"),
        ("CREATE FUNCTION f(p INT) RETURNS TEXT RETURN (SELECT ssn FROM customers WHERE id = p)",
         "function f"),
        ("CREATE DEFINER=CURRENT_USER PROCEDURE p() BEGIN SELECT id, name FROM customers; END",
         "procedure p"),
    ],
)  # fmt: skip
def test_creating_code_that_reads_masked_columns_is_refused(sql, name):
    message = check(sql)
    assert message is not None
    assert f"stored code ({name}) of masked column shop.customers." in message


@pytest.mark.parametrize(
    "sql,name",
    [
        ("CREATE TRIGGER t AFTER INSERT ON orders FOR EACH ROW BEGIN "
         "IF NEW.id > 1 THEN INSERT INTO log VALUES (1, 2); END IF; END", "trigger"),
        ("CREATE PROCEDURE p() BEGIN DECLARE x INT; SELECT 1; END", "procedure p"),
        ("CREATE EVENT e ON SCHEDULE EVERY 1 HOUR DO CALL p()", "event e"),
    ],
)  # fmt: skip
def test_creating_code_that_cannot_be_analysed_is_refused(sql, name):
    message = check(sql)
    assert message is not None
    assert f"stored code ({name}" in message and "whose body myguard cannot analyse" in message


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TRIGGER t BEFORE INSERT ON orders FOR EACH ROW SET NEW.note = UPPER(NEW.note)",
        "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM log WHERE a < 10",
        "ALTER EVENT e DISABLE",
        "CREATE FUNCTION f(p INT) RETURNS INT DETERMINISTIC RETURN p * 2",
        "CREATE PROCEDURE p(IN x INT) BEGIN INSERT INTO log (a) VALUES (x); END",
        "DROP TRIGGER t",
    ],
)
def test_creating_code_that_reads_no_masked_column_runs(sql):
    assert check(sql) is None


def test_catalog_forgets_triggers_after_ddl():
    """The session invalidates the catalog after CREATE/DROP TRIGGER through myguard."""
    catalog = SchemaCatalog(SimpleNamespace(name="b"))
    catalog._triggers[("shop", "orders")] = (time.monotonic(), (LEAK,))
    assert catalog.triggers("Shop", "Orders") == (LEAK,)
    catalog.invalidate()
    assert catalog.triggers("shop", "orders") is None
