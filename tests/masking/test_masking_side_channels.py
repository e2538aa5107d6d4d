"""Issue 16, masking lineage: what an analyst writes (any case, parentheses, the current
database) is masked, not refused; inference probes (aggregates, windows, DISTINCT),
error-echo functions and stored routines over masked columns are refused, naming them."""

from __future__ import annotations

import pytest

from myguard.masking.functions import BUILTIN, disguised_calls
from myguard.masking.lineage import analyze
from myguard.masking.plan import MaskRules, refusal_before
from myguard.policy.mask_spec import MaskSpec

COLUMNS = ["id", "name", "email", "ssn", "card_number", "Credit_Limit"]
PII = {"name", "email", "ssn", "card_number"}
# A DEFINER view as information_schema.VIEWS shows it: names qualified, a stored function.
VIEWS = {
    ("shop", "v_definer"): "select `shop`.`customers`.`id` AS `id`,`shop`.`customers`.`ssn` "
    "AS `ssn` from `shop`.`customers`",
    ("shop", "v_func"): "select `shop`.`customers`.`id` AS `id`,`shop`.`f_ssn`("
    "`shop`.`customers`.`id`) AS `s` from `shop`.`customers`",
}
RULES = MaskRules(
    [("pii", MaskSpec("redact"))],
    lambda db, table, column: {"pii"} if table == "customers" and column in PII else set(),
)


def lineage(sql: str, db: str | None = None):
    return analyze(
        sql,
        db=db,
        schema=lambda d, t: COLUMNS if (d, t) == ("shop", "customers") else None,
        views=lambda d, t: VIEWS.get((d, t)),
    )


def columns(sql: str, db: str | None = None) -> list[str] | None:
    """Per result column: its source columns joined by '+', '?' when unknown."""
    found = lineage(sql, db).columns
    if found is None:
        return None
    return ["?" if c is None else "+".join(sorted(s.column for s in c)) for c in found]


# --- what any analyst would write ---------------------------------------------------------


@pytest.mark.parametrize(
    "sql,expected",
    [
        ("SeLeCt Id, EmAiL, sSn FrOm shop.customers", ["id", "email", "ssn"]),
        ("select `ID`, `Card_Number` from `shop`.customers", ["id", "card_number"]),
        ("SELECT c.EMAIL AS E FROM shop.customers c", ["email"]),
        ("SELECT credit_limit, CREDIT_LIMIT FROM shop.customers", ["credit_limit"] * 2),
        ("SELECT d.X FROM (SELECT ssn AS x FROM shop.customers) d", ["ssn"]),
        ("SELECT a.Id FROM shop.customers a JOIN shop.customers b USING (ID)", ["id"]),
        ("SELECT * FROM shop.customers", [c.lower() for c in COLUMNS]),
        ("((SELECT id, ssn FROM shop.customers))", ["id", "ssn"]),
        ("(SELECT id, ssn FROM shop.customers) LIMIT 2", ["id", "ssn"]),
        ("SELECT id, card_number FROM customers", ["id", "card_number"]),
    ],
)
def test_ordinary_statements_have_known_lineage(sql, expected):
    got = columns(sql, db="shop")
    assert got == expected
    assert refusal_before(lineage(sql, db="shop"), RULES) is None


def test_unqualified_names_use_the_given_database():
    assert columns("SELECT id, card_number FROM customers", db="shop") == ["id", "card_number"]
    # no current database: the table cannot be attributed, so the lineage is unknown
    assert columns("SELECT id, card_number FROM customers") == ["?", "?"]


def test_table_names_keep_their_case():
    # shop.Customers is another table on Linux: not the masked one, and unknown here
    assert columns("SELECT id, ssn FROM shop.Customers") == ["?", "?"]


# --- inference probes ------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql,kind,detail,column",
    [
        ("SELECT COUNT(DISTINCT ssn) FROM shop.customers", "aggregate", "COUNT(DISTINCT)", "ssn"),
        ("SELECT COUNT(email) FROM shop.customers", "aggregate", "COUNT()", "email"),
        ("SELECT SUM(ssn) FROM shop.customers", "aggregate", "SUM()", "ssn"),
        ("SELECT AVG(LENGTH(email)) FROM shop.customers", "aggregate", "AVG()", "email"),
        ("SELECT MIN(ssn) FROM shop.customers", "aggregate", "MIN()", "ssn"),
        ("SELECT MAX(name) FROM shop.customers", "aggregate", "MAX()", "name"),
        ("SELECT GROUP_CONCAT(email) FROM shop.customers", "aggregate", "GROUP_CONCAT()", "email"),
        ("SELECT JSON_ARRAYAGG(ssn) FROM shop.customers", "aggregate", "JSON_ARRAYAGG()", "ssn"),
        ("SELECT JSON_OBJECTAGG(id, ssn) FROM shop.customers", "aggregate", "JSON_OBJECTAGG()",
         "ssn"),
        ("SELECT STD(ssn) FROM shop.customers", "aggregate", "STDDEV_POP()", "ssn"),
        ("SELECT VARIANCE(ssn) FROM shop.customers", "aggregate", "VAR_POP()", "ssn"),
        ("SELECT BIT_AND(card_number) FROM shop.customers", "aggregate", "BIT_AND()",
         "card_number"),
        ("SELECT BIT_XOR(ssn) FROM shop.customers", "aggregate", "BIT_XOR()", "ssn"),
        ("SELECT VAR_SAMP(ssn) FROM shop.customers", "aggregate", "VAR_SAMP()", "ssn"),
        ("SELECT (SELECT COUNT(DISTINCT ssn) FROM shop.customers) AS n", "aggregate",
         "COUNT(DISTINCT)", "ssn"),
        ("SELECT n FROM (SELECT MAX(email) AS n FROM shop.customers) t", "aggregate", "MAX()",
         "email"),
        ("SELECT id, ROW_NUMBER() OVER (ORDER BY ssn) FROM shop.customers", "window",
         "ROW_NUMBER() OVER", "ssn"),
        ("SELECT id, COUNT(*) OVER (PARTITION BY email) FROM shop.customers", "window",
         "COUNT() OVER", "email"),
        ("SELECT DISTINCT ssn FROM shop.customers", "distinct", "SELECT DISTINCT", "ssn"),
        ("SELECT COUNT(*) FROM (SELECT DISTINCT ssn FROM shop.customers) t", "distinct",
         "SELECT DISTINCT", "ssn"),
        ("SELECT ssn FROM shop.customers WHERE id = 1 UNION SELECT ssn FROM shop.customers "
         "WHERE id = 2", "distinct", "UNION", "ssn"),
    ],
)  # fmt: skip
def test_inference_probes_are_refused_naming_the_column(sql, kind, detail, column):
    message = refusal_before(lineage(sql), RULES)
    assert message == (
        f"myguard: statement refused: masked data would leak through {kind} ({detail}) "
        f"of masked column shop.customers.{column}"
    )


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT COUNT(*) FROM shop.customers",
        "SELECT COUNT(*), COUNT(1), COUNT(id), SUM(credit_limit) FROM shop.customers",
        "SELECT id, COUNT(*) OVER () FROM shop.customers",
        "SELECT DISTINCT credit_limit FROM shop.customers",
        "SELECT ssn FROM shop.customers UNION ALL SELECT ssn FROM shop.customers",
    ],
)
def test_counts_and_unmasked_aggregates_pass(sql):
    assert refusal_before(lineage(sql), RULES) is None


# --- error echo ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql,detail,column",
    [
        ("SELECT UPDATEXML(1, CONCAT('~', (SELECT card_number FROM shop.customers "
         "WHERE id = 2)), 1)", "UPDATEXML()", "card_number"),
        ("SELECT EXTRACTVALUE(1, CONCAT('~', (SELECT ssn FROM shop.customers LIMIT 1)))",
         "EXTRACTVALUE()", "ssn"),
        ("SELECT GTID_SUBSET(email, '') FROM shop.customers", "GTID_SUBSET()", "email"),
        ("SELECT GTID_SUBTRACT(CONCAT(ssn, ''), '') FROM shop.customers", "GTID_SUBTRACT()",
         "ssn"),
        ("SELECT JSON_EXTRACT(email, '$.a') FROM shop.customers", "JSON_EXTRACT()", "email"),
        ("SELECT JSON_EXTRACT('{}', ssn) FROM shop.customers", "JSON_EXTRACT()", "ssn"),
        ("SELECT JSON_VALUE(ssn, '$') FROM shop.customers", "JSON_VALUE()", "ssn"),
        ("SELECT JSON_QUERY(ssn, '$') FROM shop.customers", "JSON_QUERY()", "ssn"),
        ("SELECT JSON_LENGTH(name) FROM shop.customers", "JSON_LENGTH()", "name"),
        ("SELECT email->'$.a' FROM shop.customers", "JSON_EXTRACT()", "email"),
        ("SELECT id, CAST(email AS DECIMAL(10,2)) FROM shop.customers", "CAST AS DECIMAL(10, 2)",
         "email"),
        ("SELECT CAST(ssn AS SIGNED) FROM shop.customers", "CAST AS BIGINT", "ssn"),
        ("SELECT CONVERT(card_number, UNSIGNED) FROM shop.customers", "CAST AS BIGINT UNSIGNED",
         "card_number"),
        ("SELECT CONVERT(ssn, DATE) FROM shop.customers", "CAST AS DATE", "ssn"),
        ("SELECT ssn + 0 FROM shop.customers", "operator ADD", "ssn"),
        ("SELECT -email FROM shop.customers", "operator NEG", "email"),
        ("SELECT id, ssn = 0 FROM shop.customers", "operator EQ", "ssn"),
        ("SELECT (SELECT card_number FROM shop.customers LIMIT 1) * 1", "operator MUL",
         "card_number"),
    ],
)  # fmt: skip
def test_error_echo_is_refused_naming_function_and_column(sql, detail, column):
    message = refusal_before(lineage(sql), RULES)
    assert message == (
        f"myguard: statement refused: masked data would leak through error echo ({detail}) "
        f"of masked column shop.customers.{column}"
    )


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT CAST(ssn AS CHAR), CONVERT(email USING utf8mb4), BINARY name FROM shop.customers",
        "SELECT JSON_OBJECT('e', email), JSON_ARRAY(ssn), JSON_QUOTE(name) FROM shop.customers",
        "SELECT credit_limit * 2, CAST(credit_limit AS SIGNED) FROM shop.customers",
    ],
)
def test_conversions_that_cannot_echo_pass(sql):
    assert refusal_before(lineage(sql), RULES) is None


# --- stored routines -------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql,name",
    [
        ("SELECT id, corpus_scratch.f_ssn(id) FROM shop.customers", "function corpus_scratch.f_ssn"),
        ("SELECT id, `shop`.`concat`(id) FROM shop.customers", "function `shop`.`concat`"),
        ("SELECT id, f_ssn(id) FROM shop.customers", "function f_ssn"),
        ("SELECT f_ssn(1)", "function f_ssn"),
        ("SELECT id FROM shop.customers WHERE id = leak(2)", "function leak"),
        ("SET @v = f_ssn(1)", "function f_ssn"),
        ("SELECT id, date_trunc('day', id) FROM shop.customers", "function date_trunc"),
        ("SELECT id, INITCAP(name) FROM shop.customers", "function INITCAP"),
        ("SELECT * FROM shop.v_func", "function `shop`.`f_ssn`"),
        ("CALL leak_everything()", "procedure leak_everything"),
        ("call shop.p(1, @x)", "procedure shop.p"),
    ],
)  # fmt: skip
def test_stored_routines_are_unknown_lineage(sql, name):
    message = refusal_before(lineage(sql), RULES)
    assert message == (
        "myguard: statement refused: masked data would leak through routine "
        f"(stored {name}, whose body myguard has not read)"
    )
    # refused whatever the unknown-lineage policy: a routine can also write what it reads
    redacting = MaskRules([("pii", MaskSpec("redact"))], RULES._tags, unknown="redact")
    assert refusal_before(lineage(sql), redacting) == message


def test_builtins_are_not_routines():
    sql = (
        "SELECT CONCAT(id, ''), IF(id > 1, 'a', 'b'), LEFT(id, 1), DATE_FORMAT(NOW(), '%Y'), "
        "INET_ATON('1.2.3.4'), REGEXP_REPLACE('a', 'a', 'b'), COALESCE(NULL, 1) "
        "FROM shop.customers WHERE EXISTS (SELECT 1) AND id IN (1, 2)"
    )
    assert refusal_before(lineage(sql), RULES) is None
    assert {"CONCAT", "UPDATEXML", "JSON_ARRAYAGG", "NATURAL_SORT_KEY"} <= BUILTIN
    assert disguised_calls("SELECT split(x), SPLIT_PART(y), ssn FROM t") == ["split", "SPLIT_PART"]


def test_definer_view_is_read_through_its_body():
    # the view runs with its definer's rights; the lineage still follows it to shop.customers
    assert columns("SELECT id, ssn FROM shop.v_definer") == ["id", "ssn"]
    assert columns("SELECT * FROM v_definer", db="shop") == ["id", "ssn"]
    message = refusal_before(lineage("SELECT COUNT(DISTINCT ssn) FROM shop.v_definer"), RULES)
    assert message is not None and "shop.customers.ssn" in message
