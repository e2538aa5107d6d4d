from myguard.analysis import analyze
from myguard.analysis.shrink import SHRINK_ABOVE, shrink_literals

PAD = "x" * SHRINK_ABOVE


def test_short_text_is_untouched():
    sql = "SELECT 'abc', 0x1234 FROM t"
    assert shrink_literals(sql) is sql


def test_long_string_and_hex_literals_shrink():
    sql = f"INSERT INTO t VALUES ('{PAD}', 0x{'ab' * SHRINK_ABOVE}, 'short')"
    out = shrink_literals(sql)
    assert out == "INSERT INTO t VALUES ('long literal', 0x00, 'short')"


def test_escapes_and_doubled_quotes_stay_inside_the_literal():
    sql = f"INSERT INTO t VALUES ('{PAD}\\' '' '); DROP TABLE t"
    out = shrink_literals(sql)
    assert out.endswith("('long literal'); DROP TABLE t")
    assert [s.kind for s in analyze(sql, "db")] == ["insert", "drop"]


def test_prepare_text_is_kept():
    inner = "DROP TABLE t /*" + PAD + "*/"
    sql = f"PREPARE s FROM '{inner}'"
    assert shrink_literals(sql) == sql
    assert analyze(sql, "db")[0].kind == "drop"


def test_quotes_inside_comments_and_identifiers_are_not_literals():
    sql = f"SELECT 1 /* ' */, `a'b` FROM t WHERE c = '{PAD}'; DELETE FROM t"
    out = shrink_literals(sql)
    assert out == "SELECT 1 /* ' */, `a'b` FROM t WHERE c = 'long literal'; DELETE FROM t"
    assert [s.kind for s in analyze(sql, "db")] == ["select", "delete"]
