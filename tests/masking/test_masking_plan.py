"""The mask plan: strongest spec per column, origin metadata, unknown lineage, refusals."""

from __future__ import annotations

from myguard.masking.lineage import analyze
from myguard.masking.plan import MaskRules, plan_result, refusal_before
from myguard.policy.mask_spec import MaskSpec
from myguard.protocol import column_types as ct
from myguard.protocol.codec import lenenc_str
from myguard.protocol.column_definition import ColumnDefinition

COLUMNS = ["id", "name", "email", "phone", "ssn", "card_number"]
PII = {"name", "email", "phone", "ssn", "card_number"}


def tags(db: str, table: str, column: str) -> set[str]:
    return {"pii"} if table == "customers" and column in PII else set()


RULES = MaskRules(
    [("pii", MaskSpec("redact")), ("shop.customers.card_number", MaskSpec("partial", 4)),
     ("shop.customers.email", MaskSpec("email")), ("*.*.ssn", MaskSpec("null"))],
    tags,
)  # fmt: skip


def lineage(sql: str):
    return analyze(sql, db="shop", schema=lambda d, t: COLUMNS if t == "customers" else None)


def string_col(name: bytes, org: bytes = b"") -> ColumnDefinition:
    return ColumnDefinition(
        schema=b"shop" if org else b"",
        table=b"customers" if org else b"",
        org_table=b"customers" if org else b"",
        name=name,
        org_name=org,
        character_set=45,
        column_length=400,
        type=ct.MYSQL_TYPE_VAR_STRING,
    )


def test_column_specs_beat_tags_and_masker_masks():
    plan = plan_result(
        lineage("SELECT id, email, CONCAT(email, ''), ssn, card_number FROM customers"),
        [string_col(n, n) for n in (b"id", b"email", b"x", b"ssn", b"card_number")],
        RULES,
    )
    assert plan.refusal is None
    # a column glob beats the pii tag (email, partial); null beats everything else; an
    # expression of email is not email as stored: redact, not email
    assert plan.masked() == [
        ("email", "email"),
        ("x", "redact"),
        ("ssn", "null"),
        ("card_number", "partial(4)"),
    ]
    row = b"".join(lenenc_str(v) for v in (b"1", b"a@b.c", b"a@b.c", b"123", b"4111"))
    masker = plan.masker(binary=False, key=b"k")
    assert masker.rewrite_text_row(row) == (
        lenenc_str(b"1")
        + lenenc_str(b"****@b.c")
        + lenenc_str(b"****")
        + b"\xfb"
        + lenenc_str(b"****")
    )


def test_specific_specs_without_tag_rule():
    rules = MaskRules([("shop.customers.card_number", MaskSpec("partial", 4))], tags)
    plan = plan_result(lineage("SELECT card_number, name FROM customers"),
                       [string_col(b"card_number"), string_col(b"name")], rules)  # fmt: skip
    assert plan.masked() == [("card_number", "partial(4)")]


def test_origin_metadata_adds_sources():
    # lineage says the column is a constant, the backend says it is customers.email: masked,
    # and since the two disagree on what the value is, redacted rather than shown in part
    plan = plan_result(lineage("SELECT 'x'"), [string_col(b"e", b"email")], RULES)
    assert plan.masked() == [("e", "redact")]


def test_unknown_lineage_is_refused_or_redacted():
    unknown = lineage("CALL p()")
    defs = [string_col(b"a")]
    assert "refused" in plan_result(unknown, defs, RULES).refusal
    lenient = MaskRules([("pii", MaskSpec("hash"))], tags, unknown="redact")
    plan = plan_result(unknown, defs, lenient)
    assert plan.refusal is None and plan.masked() == [("a", "redact")]
    # shape mismatch between statement and result: trust neither
    assert plan_result(lineage("SELECT id FROM customers"), defs * 2, RULES).refusal


def test_data_free_results_pass():
    plan = plan_result(analyze("SHOW TABLES"), [string_col(b"Tables_in_shop")], RULES)
    assert plan.refusal is None and plan.masker(False, b"k") is None


def test_definitions_follow_masks():
    ssn = string_col(b"ssn", b"ssn")
    ssn = ColumnDefinition(**{**{f: getattr(ssn, f) for f in ssn.__slots__}, "flags": 1})
    plan = plan_result(lineage("SELECT ssn FROM customers"), [ssn], RULES)
    assert plan.definitions()[0].flags == 0


def test_refusal_before_running():
    assert refusal_before(lineage("SELECT id FROM customers WHERE ssn LIKE '1%'"), RULES)
    assert refusal_before(lineage("SELECT id FROM customers WHERE id = 1"), RULES) is None
    assert "into" in refusal_before(lineage("SELECT email INTO @v FROM customers"), RULES)
    assert refusal_before(lineage("CALL p()"), RULES)


def test_origin_names_are_read_in_the_session_s_character_set():
    """Metadata names come in the session's character set: read with its codec, and never
    an error when they are not what it says (a latin1 name read as UTF-8 was a 4692)."""
    org = "ssn_é".encode("latin1")  # a name no rule knows in the lineage, ssn by metadata
    rules = MaskRules([("shop.customers.ssn_é", MaskSpec("null"))], tags)
    sql = "SELECT 'x'"  # a data-free lineage: the metadata alone names the column
    plan = plan_result(lineage(sql), [string_col(b"c\xe9", org)], rules, "cp1252")
    assert plan.masked() == [("cé", "null")]
    plan = plan_result(lineage(sql), [string_col(b"c\xe9", org)], rules)  # read as UTF-8
    assert plan.masked() == []
    assert plan.columns[0].name == "c\ufffd"
