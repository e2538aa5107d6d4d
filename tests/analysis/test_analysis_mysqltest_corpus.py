"""MariaDB's own test suite through the analysis: every statement gets a decision, never an
exception. The sample is committed (regenerate with ``python tests/analysis/mysqltest_sql.py``
where the ``mariadb-test`` package is installed)."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

from myguard._fast import load
from myguard.policy.context import RequestContext
from myguard.policy.engine import Policy

CORPUS = Path(__file__).resolve().parent / "data" / "mysqltest_statements.jsonl"
RULES = Path(__file__).resolve().parents[2] / "conf" / "rules.toml"


def test_every_statement_gets_a_decision_and_a_fingerprint(caplog):
    caplog.set_level(logging.DEBUG)
    statements = [json.loads(line) for line in CORPUS.read_text().splitlines()]
    assert len(statements) >= 5000
    # No cache: every statement is analysed, in two databases, for an identity with tags.
    policy = Policy.from_text(RULES.read_text(), str(RULES), cache_size=0)
    fingerprint = load("fingerprint")
    kinds: Counter[str] = Counter()
    failures = []
    for sql in statements:
        for db in (None, "test"):
            ctx = RequestContext("a", frozenset({"analysts"}), "production", "m", "::1", "", {}, db)
            try:
                decision = policy.decide(ctx, sql)
                fingerprint.fingerprint(sql.encode("utf-8", "surrogateescape"))
            except Exception as exc:  # any exception at all is what this test looks for
                failures.append((sql[:200], db, repr(exc)))
                continue
            kinds.update(s.kind for s in decision.statements)
    assert failures == []
    # sqlglot's warnings about what it half-understands stay out of the log.
    assert [r.getMessage() for r in caplog.records if r.levelno > logging.DEBUG] == []
    # The analysis really ran: most of the suite is read as SQL, not refused as unparsed.
    assert kinds["unparsed"] < 0.1 * sum(kinds.values()), kinds.most_common(10)
    assert {"select", "insert", "update", "delete", "create", "drop", "set"} <= set(kinds)
