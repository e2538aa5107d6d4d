import pymysql


def test_pymysql_select_through_proxy(proxy):
    conn = pymysql.connect(
        host="127.0.0.1", port=proxy.port, user="alice", password="alice-pw-1", database="shop"
    )
    with conn.cursor() as cur:
        cur.execute("SELECT name FROM customers ORDER BY id LIMIT 2")
        assert cur.fetchall() == (("Ada Lovelace",), ("Alan Turing",))
    conn.close()
