"""The audit trail: hash-chained, append-only segment files of msgpack records.

Writing: ``await AuditWriter.open(directory, ...)``, ``await writer.write(record)`` with
records from the ``*_record`` constructors. Reading: ``iter_records``, ``Follower``,
``verify``. Format: docs/audit-format.md.
"""

from myguard.audit.follow import Follower
from myguard.audit.reader import iter_records, read_segment
from myguard.audit.records import (
    AuditFormatError,
    AuditRecord,
    approval_record,
    login_record,
    restart_record,
    session_end_record,
    statement_intent_record,
    statement_record,
)
from myguard.audit.redact import redact_literals
from myguard.audit.verify import VerifyProblem, VerifyReport, verify
from myguard.audit.writer import AuditUnavailable, AuditWriter

__all__ = [
    "AuditFormatError",
    "AuditRecord",
    "AuditUnavailable",
    "AuditWriter",
    "Follower",
    "VerifyProblem",
    "VerifyReport",
    "approval_record",
    "iter_records",
    "login_record",
    "read_segment",
    "redact_literals",
    "restart_record",
    "session_end_record",
    "statement_intent_record",
    "statement_record",
    "verify",
]
