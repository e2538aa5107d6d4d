"""Example-based tests of the statement fingerprint, run against the compiled module and
its pure-Python twin alike. The compiled cases fail (never skip) when it is not built."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

from myguard._fast import twin


@pytest.fixture(params=["compiled", "twin"])
def fp(request) -> ModuleType:
    if request.param == "compiled":
        return importlib.import_module("myguard._fast.fingerprint")
    return twin("fingerprint")


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) % 2**64
    return h


def shape(fp: ModuleType, sql: bytes) -> bytes:
    h, out = fp.fingerprint(sql)
    assert h == fnv1a64(out)
    assert fp.fingerprint_hash(sql) == h
    return out


CASES = {
    # whitespace and case
    "point select": (
        b"SELECT c FROM sbtest1 WHERE id=4711",
        b"select c from sbtest1 where id=?",
    ),
    "whitespace folded and trimmed": (
        b" \t\n SELECT\r\n  a ,\tb\x0b\x0cFROM  t \n",
        b"select a , b from t",
    ),
    "ascii case folding only": (b"SeLeCt \xc3\x84bc FROM T", b"select \xc3\x84bc from t"),
    "empty": (b"", b""),
    "only whitespace and comments": (b"  /* x */ -- y\n # z", b""),
    # strings
    "single quotes": (b"select 'a', 'It''s', 'x\\'y'", b"select ?, ?, ?"),
    "double quotes": (b'select "a", "say ""hi""", "b\\"c"', b"select ?, ?, ?"),
    "escaped backslash ends string": (b"select 'a\\\\', 1", b"select ?, ?"),
    "comment markers inside strings": (
        b"select '-- x', '# y', '/* z */', \"/*!50001 w */\" from t",
        b"select ?, ?, ?, ? from t",
    ),
    "introducers": (
        b"select _utf8mb4'x', N'y' collate utf8mb4_bin, _latin1\"z\", _bin 'w'",
        b"select ?, ? collate utf8mb4_bin, ?, _bin ?",
    ),
    # numbers
    "integers and decimals": (b"select 0, 42, 3.25, .5, 7.", b"select ?, ?, ?, ?, ?"),
    "exponents": (b"select 1e5, 1E-3, 2.5e+10, .5e2", b"select ?, ?, ?, ?"),
    "hex and bit literals": (
        b"select 0x1F, 0xab, X'1f', x'AB', b'0101', B'1', 0b101",
        b"select ?, ?, ?, ?, ?, ?, ?",
    ),
    "null": (b"select NULL, null where a IS NULL", b"select ?, ? where a is ?"),
    "placeholders": (
        b"select * from t where a = ? and b = ?",
        b"select * from t where a = ? and b = ?",
    ),
    "negative numbers keep the minus": (b"select -5, a-5, a - -2.5", b"select -?, a-?, a - -?"),
    # identifiers that contain digits
    "identifiers with digits": (
        b"select t1.col_2, col3x, $v1 from db1.t1",
        b"select t1.col_2, col3x, $v1 from db1.t1",
    ),
    "identifiers starting with digits": (
        b"select 1t, 2e, 0xg, 0b2, 9_x from 1db.2t",
        b"select 1t, 2e, 0xg, 0b2, 9_x from 1db.2t",
    ),
    "digit word after a qualifier dot is a name": (
        b"select t.1e5, t.5 from t",
        b"select t.1e5, t.5 from t",
    ),
    "exponent ends the number": (b"select 1e5x", b"select ?x"),
    # comments
    "hash comment": (b"select 1 # trailing\nfrom t # end", b"select ? from t"),
    "dash dash space comment": (b"select 1 -- trailing\nfrom t", b"select ? from t"),
    "dash dash tab comment": (b"select 1 --\tx\nfrom t", b"select ? from t"),
    "dash dash at end is a comment": (b"select 1 --", b"select ?"),
    "dash dash without space is code": (b"select 1--1", b"select ?--?"),
    "dash dash letter is code": (b"select a--b", b"select a--b"),
    "block comment dropped": (b"select /* hi */ a /*\n*/ from t", b"select a from t"),
    "block comment separates tokens": (b"select/**/a/*x*/from t", b"select a from t"),
    "block comment does not nest": (b"select /* a /* b */ c */", b"select c */"),
    "nul byte ends a line comment": (b"select 1 # x\x00drop", b"select ? \x00drop"),
    "nul byte is ordinary code": (b"select 'a\x00b', c\x00d", b"select ?, c\x00d"),
    # executable comments are code
    "executable comment kept": (
        b"select /*! STRAIGHT_JOIN */ a from t",
        b"select /*! straight_join */ a from t",
    ),
    "versioned executable comment kept": (
        b"/*!50001 DROP TABLE t1 */",
        b"/*!50001 drop table t1 */",
    ),
    "executable comment content normalised": (
        b"/*!40101 SET @OLD_X=@@X, y='abc', z = 5 */;",
        b"/*!40101 set @old_x=@@x, y=?, z = ? */;",
    ),
    "mariadb executable comment kept": (b"select 1 /*M! , 2 */", b"select ? /*M! , ? */"),
    "mariadb versioned executable comment kept": (
        b"/*M!100101 DROP TABLE t */",
        b"/*M!100101 drop table t */",
    ),
    "lower-case mariadb marker kept as code": (b"/*m! drop table t */", b"/*m! drop table t */"),
    "executable comment without space": (b"/*!50001drop table t*/", b"/*!50001drop table t*/"),
    "plain comment inside executable comment": (
        b"/*!50001 drop /* x */ table t */",
        b"/*!50001 drop table t */",
    ),
    "string hiding a comment end in executable comment stays verbatim": (
        b"/*!99999 ' */ DROP TABLE t -- '",
        b"/*!99999 ' */ DROP TABLE t -- '\x00",
    ),
    "line comment in executable comment stops at its end": (
        b"/*!99999 # */ drop table t",
        b"/*!99999 */ drop table t",
    ),
    "dash comment in executable comment stops at its end": (
        b"/*!99999 -- */ drop table t",
        b"/*!99999 */ drop table t",
    ),
    "stray comment end outside executable comment is code": (b"select 2 */ 3", b"select ? */ ?"),
    "optimizer hint kept": (
        b"SELECT /*+ BKA(t1)   NO_ICP(t2) MAX_EXECUTION_TIME(1000) */ a FROM t1",
        b"select /*+ bka(t1) no_icp(t2) max_execution_time(1000) */ a from t1",
    ),
    # backticks
    "backtick identifiers verbatim": (
        b"SELECT `Col 1`, `a``b`, `it's`, `--x`, `/*` FROM `DB`.`T`",
        b"select `Col 1`, `a``b`, `it's`, `--x`, `/*` from `DB`.`T`",
    ),
    "backtick keeps backslash": (b"select `a\\` from t", b"select `a\\` from t"),
    # IN lists
    "in list collapsed": (
        b"select * from t where a IN (1, 2,3)",
        b"select * from t where a in (...)",
    ),
    "in list of one": (b"where a in ( 'x' )", b"where a in (...)"),
    "in list without space": (b"where a in(1,2)", b"where a in(...)"),
    "in list mixed literals": (b"where a not in (NULL, -1, +2.5, 'x', ?)", b"where a not in (...)"),
    "in list with comments": (b"where a in (1 /* c */, 2 -- d\n)", b"where a in (...)"),
    "in subquery not collapsed": (
        b"where a in (select b from u where c in (1, 2))",
        b"where a in (select b from u where c in (...))",
    ),
    "in list with expression not collapsed": (b"where a in (1, b + 2)", b"where a in (?, b + ?)"),
    "empty in list not collapsed": (b"where a in ()", b"where a in ()"),
    "in list with double comma not collapsed": (b"where a in (1,,2)", b"where a in (?,,?)"),
    "in keyword identifier in backticks is no list": (b"select `in` (1, 2)", b"select `in` (?, ?)"),
    "in list followed by more": (
        b"where a in (1) and b in (2, 3) or c",
        b"where a in (...) and b in (...) or c",
    ),
    # VALUES lists
    "multi-row values collapsed": (
        b"INSERT INTO t (a, b) VALUES (1,'a'),(2,'b'), (3, 'c')",
        b"insert into t (a, b) values (...)",
    ),
    "single-row values collapsed": (b"insert into t values (1)", b"insert into t values (...)"),
    "value keyword": (b"insert into t value (1), (2)", b"insert into t value (...)"),
    "values followed by on duplicate key": (
        b"insert into t values (1, 2) , ( 3, 4 ) on duplicate key update b = values(b) + 1",
        b"insert into t values (...) on duplicate key update b = values(b) + ?",
    ),
    "values with a function not collapsed": (
        b"insert into t values (1, now()), (2, now())",
        b"insert into t values (?, now()), (?, now())",
    ),
    "values tuple with a function stops the collapse": (
        b"insert into t values (1), (2), (now()), (3)",
        b"insert into t values (...), (now()), (?)",
    ),
    "values then select": (
        b"insert into t values (1); select 2",
        b"insert into t values (...); select ?",
    ),
    # unterminated input: a NUL token keeps malformed text apart from the well-formed statement
    "unterminated single quote": (b"select 'abc", b"select ?\x00"),
    "unterminated double quote": (b'select "abc', b"select ?\x00"),
    "unterminated escape at end": (b"select 'abc\\", b"select ?\x00"),
    "unterminated backtick": (b"select `abc", b"select `abc\x00"),
    "unterminated block comment": (b"select 1 /* abc", b"select ? \x00"),
    "unterminated executable comment": (b"/*!50001 drop table t", b"/*!50001 drop table t\x00"),
    "unterminated hint": (b"select /*+ bka(t1)  ", b"select /*+ bka(t1)\x00"),
    "unterminated hex literal": (b"select x'ab", b"select ?\x00"),
    "unterminated in list": (b"select a in (1, 2", b"select a in (?, ?"),
    "unterminated values tail": (
        b"insert into t values (1), (2",
        b"insert into t values (...), (?",
    ),
    "lone quote": (b"'", b"?\x00"),
    "lone slash star": (b"/*", b"\x00"),
    "lone dot": (b".", b"."),
    "double dot": (b"select a..5", b"select a.?"),
}


@pytest.mark.parametrize(("sql", "expected"), list(CASES.values()), ids=list(CASES))
def test_shape(fp, sql, expected):
    assert shape(fp, sql) == expected


def test_hash_is_fnv1a_of_shape(fp):
    h, out = fp.fingerprint(b"SELECT c FROM sbtest1 WHERE id=4711")
    assert out == b"select c from sbtest1 where id=?"
    assert h == fnv1a64(b"select c from sbtest1 where id=?")
    assert fp.fingerprint(b"")[0] == 0xCBF29CE484222325


def test_literal_values_do_not_change_the_fingerprint(fp):
    a = fp.fingerprint(b"select * from t where id = 1 and name = 'bob' and x in (1, 2)")
    b = fp.fingerprint(b"SELECT * FROM t WHERE id = 99.5 AND name = 'al''ice' AND x IN ('a')")
    assert a == b


def test_structure_changes_the_fingerprint(fp):
    base = fp.fingerprint_hash(b"select a from t where id = 1")
    for other in (
        b"select b from t where id = 1",
        b"select a from t where id > 1",
        b"select a from t where id = 1 /*! or 1 */",
        b"select a from `T` where id = 1",
        b"select a from t where id = -1",
    ):
        assert fp.fingerprint_hash(other) != base, other


def test_executable_comment_never_dropped(fp):
    sql = b"select 1 /*!50001 ; drop table users */"
    assert b"drop table users" in shape(fp, sql)
    assert shape(fp, sql) != shape(fp, b"select 1 /* ; drop table users */")


def test_rejects_text(fp):
    with pytest.raises(TypeError):
        fp.fingerprint("select 1")
    with pytest.raises(TypeError):
        fp.fingerprint_hash("select 1")


def test_long_statement(fp):
    rows = b",".join(b"(%d, 'name %d', %d.5)" % (i, i, i) for i in range(5000))
    sql = b"INSERT INTO t (a, b, c) VALUES " + rows
    assert shape(fp, sql) == b"insert into t (a, b, c) values (...)"
    long_in = b"select 1 from t where a in (" + b", ".join(b"%d" % i for i in range(5000)) + b")"
    assert shape(fp, long_in) == b"select ? from t where a in (...)"


def test_collapse_grows_the_shape_within_bounds(fp):
    # ``in(1)`` becomes ``in(...)``: the shape may outgrow its input.
    sql = b"in(1)" * 2000
    assert shape(fp, sql) == b"in(...)" * 2000
