"""Every record type survives the write/read round trip; literal redaction."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from myguard.audit import (
    AuditFormatError,
    AuditRecord,
    approval_record,
    iter_records,
    login_record,
    redact_literals,
    restart_record,
    session_end_record,
    statement_intent_record,
    statement_record,
    verify,
)
from myguard.audit.records import (
    FIELD_KEYS,
    PackedFields,
    StatementEncoder,
    statement_decision_fields,
    statement_session_fields,
)


def all_types() -> list[AuditRecord]:
    intent = statement_intent_record(
        user="alice", statement="DELETE FROM t WHERE id = 1", decision="approve", session_id="s1"
    )
    return [
        login_record(
            success=True,
            user="alice",
            groups={"dba", "analysts"},
            source_address="10.0.0.5:5123",
            client_program="mysql",
            client_attributes={"_os": "Linux", "program_name": "mysql"},
            backend="primary",
            session_id="s1",
            auth_plugin="caching_sha2_password",
            tls="TLSv1.3",
        ),
        login_record(success=False, user="mallory", reason="bad password", source_address="x"),
        intent,
        statement_record(
            user="alice",
            groups=["dba"],
            source_address="10.0.0.5:5123",
            client_program="mysql",
            client_attributes={"_pid": "42"},
            environment="prod",
            backend="primary",
            session_id="s1",
            statement="DELETE FROM t WHERE id = 1",
            fingerprint=2**63 + 5,
            kind="delete",
            tables_read=["shop.t"],
            tables_written=["shop.t"],
            columns=["id", "email"],
            data_tags={"pii"},
            decision="approve",
            rule="deletes-need-approval",
            observed_rules=["audit-pii", "deletes-need-approval"],
            masked_columns={"email": "hash"},
            approval_id="req-7",
            rows_returned=0,
            rows_affected=1,
            error_code=None,
            started_at=1700000000.25,
            duration=0.0031,
            intent_id=intent.get("intent_id"),
        ),
        approval_record(request_id="req-7", event="approved", actor="bob", reason="ticket 12"),
        session_end_record(
            session_id="s1", user="alice", reason="quit", statements=3, duration=9.5
        ),
        restart_record(
            reason="test", segment="audit-000000000001.seg", offset=80, truncated_bytes=3
        ),
    ]


def test_every_type_round_trips_through_segments(tmp_path, write_records):
    records = all_types()
    write_records(tmp_path, records)
    back = list(iter_records(tmp_path))
    assert [r.type for r in back] == [r.type for r in records]
    for original, read in zip(records, back, strict=True):
        assert read.data == original.data
        assert read.time == original.time
    assert [r.seq for r in back] == list(range(1, len(records) + 1))
    assert back[3].get("masked_columns") == {"email": "hash"}
    assert back[3]["intent_id"] == back[2]["intent_id"]
    assert back[0]["groups"] == ["analysts", "dba"]
    assert verify(tmp_path).ok


def test_body_uses_documented_short_keys_and_drops_none():
    record = statement_record(user="u", statement="SELECT 1", decision="allow", rule=None, at=5.0)
    body = msgpack.unpackb(record.encode())
    assert body == {"t": 2, "ts": 5.0, "u": "u", "q": "SELECT 1", "d": "allow"}
    assert len(set(FIELD_KEYS.values())) == len(FIELD_KEYS)


def test_to_dict_uses_long_names_and_keeps_unknown_keys():
    body = msgpack.packb({"t": 1, "ts": 1.0, "u": "a", "ok": True, "zz": 1})
    assert AuditRecord.decode(body).to_dict() == {
        "type": "login",
        "time": 1.0,
        "seq": 0,
        "user": "a",
        "success": True,
        "zz": 1,
    }


@pytest.mark.parametrize("body", [b"\xc1", msgpack.packb([1]), msgpack.packb({"t": 99, "ts": 1})])
def test_decode_rejects_non_records(body):
    with pytest.raises(AuditFormatError):
        AuditRecord.decode(body)


def test_intent_ids_are_unique():
    ids = {
        statement_intent_record(user="u", statement="x", decision="allow").get("intent_id")
        for _ in range(100)
    }
    assert len(ids) == 100


def test_approval_event_is_checked():
    with pytest.raises(ValueError):
        approval_record(request_id="r", event="maybe")


def test_writer_redacts_statement_literals_when_configured(tmp_path, write_records):
    record = statement_record(
        user="u", statement="SELECT * FROM t WHERE ssn = '123-45'", decision="allow"
    )
    write_records(tmp_path, [record], redact_literals=True)
    (back,) = list(iter_records(tmp_path))
    assert back["statement"] == "SELECT * FROM t WHERE ssn = ?"
    assert record["statement"].endswith("'123-45'")  # the caller's record is not changed


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "SELECT a FROM t1 WHERE b = 'x''y' AND c = 12.5e3",
            "SELECT a FROM t1 WHERE b = ? AND c = ?",
        ),
        ("SELECT 0x1F, X'0A', b'01', 0b11, .5, -3", "SELECT ?, ?, ?, ?, ?, -?"),
        ('SELECT \'it\\\'s\', "dq""x"', "SELECT ?, ?"),
        ("SELECT N'abc', _utf8mb4'z' FROM `weird'name 1`", "SELECT ?, ? FROM `weird'name 1`"),
        ("SELECT col2, 1abc, db.t3.c4 FROM t", "SELECT col2, 1abc, db.t3.c4 FROM t"),
        ("SELECT 1 -- secret 42\nFROM t # 7\n", "SELECT ?  \nFROM t  \n"),
        ("SELECT /* id 5 */ 1", "SELECT   ?"),
        ("SELECT /*!50001 SQL_NO_CACHE 7 */ 1", "SELECT /*!50001 SQL_NO_CACHE ? */ ?"),
        ("SELECT /*+ MAX_EXECUTION_TIME(1000) */ a", "SELECT /*+ MAX_EXECUTION_TIME(?) */ a"),
        ("SELECT /*M!100100 'x' */ a", "SELECT /*M!100100 ? */ a"),
        (
            "SELECT a FROM t WHERE a = ? AND b = 'unterminated",
            "SELECT a FROM t WHERE a = ? AND b = ?",
        ),
        ("SELECT 5--1", "SELECT ?--?"),
    ],
)
def test_redact_literals(sql, expected):
    assert redact_literals(sql) == expected


_names = st.lists(st.text(max_size=12), max_size=4)
_maybe_text = st.none() | st.text(max_size=30)
_maybe_int = st.none() | st.integers(0, 1 << 40)


@settings(max_examples=200, deadline=None)
@given(
    session=st.fixed_dictionaries(
        {
            "user": st.text(max_size=20),
            "groups": st.none() | _names,
            "source_address": _maybe_text,
            "client_program": _maybe_text,
            "client_attributes": st.none()
            | st.dictionaries(st.text(max_size=8), st.text(max_size=8)),
            "environment": _maybe_text,
            "backend": _maybe_text,
            "session_id": _maybe_text,
        }
    ),
    decision=st.fixed_dictionaries(
        {
            "decision": st.sampled_from(["allow", "mask", "approve", "block"]),
            "kind": _maybe_text,
            "tables_read": st.none() | _names,
            "tables_written": st.none() | _names,
            "columns": st.none() | _names,
            "data_tags": st.none() | _names,
            "rule": _maybe_text,
            "observed_rules": st.none() | _names,
        }
    ),
    outcome=st.fixed_dictionaries(
        {
            "statement": st.text(max_size=80),
            "database": _maybe_text,
            "masked_columns": st.none() | st.dictionaries(st.text(max_size=8), st.text(max_size=8)),
            "approval_id": _maybe_text,
            "rows_returned": _maybe_int,
            "rows_affected": _maybe_int,
            "error_code": _maybe_int,
            "started_at": st.none() | st.floats(0, 2e9),
            "duration": st.none() | st.floats(0, 100),
            "intent_id": _maybe_text,
        }
    ),
    redact=st.booleans(),
)
def test_statement_encoder_matches_statement_record(
    session: dict, decision: dict, outcome: dict, redact: bool
) -> None:
    """The session's hot path (fields packed once per session and decision) writes the same
    record as statement_record()."""
    encoder = StatementEncoder(PackedFields.of(statement_session_fields(**session)), redact=redact)
    body = encoder.encode(
        encoder.head(PackedFields.of(statement_decision_fields(**decision))), **outcome, at=1234.5
    )
    expected = statement_record(**session, **decision, **outcome, at=1234.5)
    assert AuditRecord.decode(body) == AuditRecord.decode(expected.encode(redact))
