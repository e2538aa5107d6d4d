"""Helpers for the audit tests: write a list of records with a real AuditWriter."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from myguard.audit import AuditRecord, AuditWriter, statement_record


def sample_statement(i: int, user: str | None = None) -> AuditRecord:
    return statement_record(
        user=user or f"user{i % 3}",
        groups=["dba"] if i % 2 else ["analysts"],
        statement=f"SELECT * FROM shop.orders WHERE id = {i}",
        decision="deny" if i % 5 == 0 else "allow",
        backend="primary",
        session_id=f"s{i % 4}",
        tables_read=["shop.orders"],
        rows_returned=i,
    )


@pytest.fixture
def make_statement():
    """make_statement(i, user=None): a varied statement record for test number i."""
    return sample_statement


@pytest.fixture
def write_records():
    """write_records(directory, records, **open_options): one awaited write per record, so
    each record is its own group commit and rotation points are deterministic."""

    def write(directory: Path, records: list[AuditRecord], **options) -> None:
        async def run() -> None:
            options.setdefault("fsync", "off")
            writer = await AuditWriter.open(directory, **options)
            for record in records:
                await writer.write(record)
            await writer.close()

        asyncio.run(run())

    return write
