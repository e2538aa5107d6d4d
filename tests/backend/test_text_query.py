"""myguard's own questions to a backend (EXPLAIN, information_schema, the session's
settings): ``text_query`` against a real MariaDB, in both EOF modes."""

from __future__ import annotations

import asyncio

import pytest

from mariadb_server import SERVICE_PASSWORD, SERVICE_USER
from myguard.backend.connect import INTERNAL_CAPABILITIES, connect
from myguard.backend.query import text_query
from myguard.config import BackendAccount, BackendConfig
from myguard.protocol.constants import UTF8MB4_GENERAL_CI, Capability
from myguard.protocol.errors import MySQLError


def ask(mariadb, sql: str, deprecate_eof: bool):
    async def run():
        config = BackendConfig(
            name="main",
            environment="development",
            listen=("127.0.0.1", 0),
            upstream=("127.0.0.1", mariadb.port),
            account=BackendAccount(SERVICE_USER, SERVICE_PASSWORD),
        )
        capabilities = INTERNAL_CAPABILITIES | (
            Capability.CLIENT_DEPRECATE_EOF if deprecate_eof else 0
        )
        conn = await connect(
            config,
            config.account,
            client_capabilities=capabilities,
            charset=UTF8MB4_GENERAL_CI,
            database="shop",
            attributes={},
            max_packet=1 << 24,
        )
        try:
            first = await text_query(conn.stream, sql, deprecate_eof=deprecate_eof)
            # the connection stays in step: a second question gets its own answer
            second = await text_query(
                conn.stream, "SELECT 42 AS answer", deprecate_eof=deprecate_eof
            )
            assert second == (["answer"], [["42"]])
            return first
        finally:
            conn.close()

    return asyncio.run(run())


@pytest.mark.parametrize("deprecate_eof", [True, False], ids=["deprecate_eof", "classic_eof"])
def test_rows_names_and_nulls(mariadb, deprecate_eof):
    names, rows = ask(
        mariadb,
        "SELECT id, NULL AS nothing, 'x' AS x FROM customers WHERE id <= 3 ORDER BY id",
        deprecate_eof,
    )
    assert names == ["id", "nothing", "x"]
    assert rows == [["1", None, "x"], ["2", None, "x"], ["3", None, "x"]]


@pytest.mark.parametrize("deprecate_eof", [True, False], ids=["deprecate_eof", "classic_eof"])
def test_explain_has_a_rows_column(mariadb, deprecate_eof):
    names, rows = ask(mariadb, "EXPLAIN SELECT * FROM customers WHERE id > 1", deprecate_eof)
    assert "rows" in names and rows


@pytest.mark.parametrize("deprecate_eof", [True, False], ids=["deprecate_eof", "classic_eof"])
def test_no_result_set_and_empty_result(mariadb, deprecate_eof):
    assert ask(mariadb, "DO 1", deprecate_eof) == ([], [])
    assert ask(mariadb, "SELECT id FROM customers WHERE id < 0", deprecate_eof) == (["id"], [])


@pytest.mark.parametrize("deprecate_eof", [True, False], ids=["deprecate_eof", "classic_eof"])
def test_server_error_is_raised(mariadb, deprecate_eof):
    with pytest.raises(MySQLError) as err:
        ask(mariadb, "SELECT nope FROM customers", deprecate_eof)
    assert err.value.code == 1054
