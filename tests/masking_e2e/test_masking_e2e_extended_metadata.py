"""Extended column metadata (MariaDB's format=json) with masking, text and binary protocol,
on the wire: a masked column's metadata is dropped, the others' pass untouched."""

from __future__ import annotations

import pytest
from masking_e2e_wire import WireClient

from mariadb_server import ROOT_PASSWORD

SQL = "SELECT id, ssn, doc FROM test.jx"
JSON = b"\x01\x04json"  # format (type 1) = "json"


@pytest.fixture(scope="module")
def json_table(mariadb):
    mariadb.sql(
        "DROP TABLE IF EXISTS test.jx;"
        "CREATE TABLE test.jx (id INT, ssn JSON, doc JSON);"
        """INSERT INTO test.jx VALUES (1, '"123-45-6789"', '{"b": 2}');"""
    )
    yield
    mariadb.sql("DROP TABLE test.jx")


def _login(port: int, user: str, password: str) -> WireClient:
    client = WireClient(port)
    client.login(user, password, "test", extended_metadata=True)
    return client


def _binary(client: WireClient):
    stmt_id, _, _ = client.prepare(SQL)
    (result, *_) = client.execute(stmt_id)
    client.close_statement(stmt_id)
    return result


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_masked_column_drops_extended_metadata(json_table, proxy, mariadb, binary):
    direct = _login(mariadb.port, "root", ROOT_PASSWORD)
    through = _login(proxy.port, "bob", "bob-pw-2")
    try:
        got = [_binary(c) if binary else c.query(SQL)[0] for c in (direct, through)]
    finally:
        direct.close()
        through.close()
    metadata = [[col.extended_metadata for col in r.columns] for r in got]
    assert metadata == [[b"", JSON, JSON], [b"", b"", JSON]]
    assert got[0].rows[0][1] == b'"123-45-6789"' and got[1].rows[0][1] != got[0].rows[0][1]
    assert got[1].rows[0][2] == got[0].rows[0][2] == b'{"b": 2}'
    assert got[1].columns[2] == got[0].columns[2]  # untouched, byte for byte
