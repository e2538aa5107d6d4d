"""Masking in the result stream: lineage before the statement runs, rows rewritten after.

Before forwarding, every statement of a ``mask`` decision gets its column lineage (with
table columns and view definitions from the backend's information_schema) and is refused
when masked data would leak around the result (predicates, variables, INTO, metadata).
Each result set's column definitions then pick the strategy per column; rows stream
through the compiled RowMasker in byte runs, and untouched result sets pass as they came.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from myguard._fast import load
from myguard.analysis.model import TableName
from myguard.backend.catalog import SchemaCatalog
from myguard.logs import event
from myguard.masking.lineage import Lineage, analyze
from myguard.masking.plan import MaskRules, plan_result, refusal_before
from myguard.net.packet_stream import PacketStream
from myguard.policy.decision import Decision
from myguard.policy.engine import Policy
from myguard.protocol.codec import PayloadReader
from myguard.protocol.column_definition import build_column_definition, parse_column_definition
from myguard.protocol.constants import ServerStatus
from myguard.protocol.errors import MySQLError
from myguard.protocol.generic_response import eof_status, err_packet, parse_ok
from myguard.session.relay import (
    RESPONSE_FETCH,
    RESPONSE_QUERY,
    Outcome,
    ResponseScanner,
    relay_response,
)

if TYPE_CHECKING:
    from myguard._fast.rowmask_py import RowMasker
    from myguard.session.session import Session

ER_MYGUARD_MASK_REFUSED = 4701
_MORE = ServerStatus.SERVER_MORE_RESULTS_EXISTS
_CURSOR = ServerStatus.SERVER_STATUS_CURSOR_EXISTS
_LINEAGE_CACHE = 2048
_UNKNOWN = Lineage(None)
_framing = load("framing")


def refused(message: str) -> MySQLError:
    return MySQLError(ER_MYGUARD_MASK_REFUSED, "42000", message)


class Masking:
    """Process-wide masking state: the hash key, schema catalogs, caches."""

    def __init__(self, key: bytes | None, unknown: str) -> None:
        if key is None:
            event(
                logging.WARNING,
                "masking_key_random",
                detail="no masking hash key configured: hashed values differ after a restart",
            )
        self.key = key or os.urandom(32)
        self.unknown = unknown
        self.catalogs: dict[str, SchemaCatalog] = {}
        self._rules: dict[tuple[int, tuple], MaskRules] = {}
        self._tags: dict[tuple[int, str, str, str], frozenset[str]] = {}
        self._lineages: OrderedDict[tuple[str, str | None], Lineage] = OrderedDict()

    def rules(self, policy: Policy, masks: tuple) -> MaskRules:
        key = (id(policy), masks)
        rules = self._rules.get(key)
        if rules is None:
            if len(self._rules) > 256:
                self._rules.clear()

            def tags(db: str, table: str, column: str) -> frozenset[str]:
                k = (id(policy), db, table, column)
                found = self._tags.get(k)
                if found is None:
                    name = TableName(db, table)
                    found = frozenset(
                        tag
                        for tag, globs in policy.tags.items()
                        if any(g.matches(name, column) for g in globs)
                    )
                    self._tags[k] = found
                return found

            rules = self._rules[key] = MaskRules(masks, tags, self.unknown)
        return rules

    async def lineages(
        self, session: Session, decision: Decision, rules: MaskRules
    ) -> list[Lineage]:
        """Lineage of each statement; raises the refusal when masked data would leak."""
        catalog = self.catalogs.get(session.backend_config.name)
        if catalog is None:
            catalog = self.catalogs[session.backend_config.name] = SchemaCatalog(
                session.backend_config
            )
        db = session.database
        tables = {
            (t.db or db or "", t.name)
            for s in decision.statements
            for t in (*s.reads, *s.writes, *s.star_tables)
            if t.name != "*"
        }
        if tables:
            await catalog.prefetch(tables)
        result = []
        for statement in decision.statements:
            lineage = self._lineage(statement.sql, db, catalog)
            message = refusal_before(lineage, rules)
            if message is not None:
                raise refused(message)
            result.append(lineage)
        return result

    def _lineage(self, sql: str, db: str | None, catalog: SchemaCatalog) -> Lineage:
        key = (sql, db)
        lineage = self._lineages.get(key)
        if lineage is None:
            lineage = analyze(sql, db=db, schema=catalog.columns, views=catalog.view)
            self._lineages[key] = lineage
            if len(self._lineages) > _LINEAGE_CACHE:
                self._lineages.popitem(last=False)
        return lineage

    def invalidate_schema(self, backend: str) -> None:
        """After DDL: columns and views may have changed."""
        catalog = self.catalogs.get(backend)
        if catalog is not None:
            catalog.invalidate()
        self._lineages.clear()


@dataclass(slots=True)
class MaskOutcome(Outcome):
    # A result set left open on a server-side cursor: its rows come through COM_STMT_FETCH.
    cursor_masker: RowMasker | None = None


async def relay_masked(
    session: Session, lineages: list[Lineage], rules: MaskRules, *, binary: bool
) -> MaskOutcome:
    """Relay a response whose result sets must be masked (text or binary rows)."""
    backend = session.backend.stream
    client = session.client
    scanner = session.scanner
    outcome = MaskOutcome()
    index = 0
    while True:
        client.seq = backend.seq
        first = await backend.read_packet()
        head = first[0] if first else 0
        if head in (0x00, 0xFF):
            client.write_packet(first)
            await client.drain()
            if head == 0xFF:
                outcome.error_code = first[1] | (first[2] << 8)
                return outcome
            ok = parse_ok(first)
            outcome.affected_rows += ok.affected_rows
            scanner.status = ok.status
            index += 1
            if not ok.status & _MORE:
                return outcome
            continue
        count = PayloadReader(first).lenenc_int()
        definitions = [parse_column_definition(await backend.read_packet()) for _ in range(count)]
        eof = None if scanner.deprecate_eof else await backend.read_packet()
        status = 0 if eof is None else eof_status(eof)
        if eof is None and binary:
            eof, status = await _cursor_opened(backend)
        plan = plan_result(
            lineages[index] if index < len(lineages) else _UNKNOWN, definitions, rules
        )
        if plan.refusal is not None:
            client.write_packet(err_packet(ER_MYGUARD_MASK_REFUSED, "42000", plan.refusal))
            await client.drain()
            outcome.error_code = ER_MYGUARD_MASK_REFUSED
            if not status & _CURSOR:
                await _discard_rest(scanner, backend)
            return outcome
        client.write_packet(first)
        for definition in plan.definitions():
            client.write_packet(build_column_definition(definition))
        if eof is not None:
            client.write_packet(eof)
        outcome.masked.update(plan.masked())
        masker = plan.masker(binary, session.ctx.masking.key)
        if status & _CURSOR:
            scanner.status = status
            outcome.cursor_masker = masker
            await client.drain()
            return outcome
        status = await relay_rows(scanner, backend, client, masker, binary)
        outcome.rows += scanner.rows
        index += 1
        if scanner.error_code:
            outcome.error_code = scanner.error_code
            return outcome
        if not status & _MORE:
            return outcome


async def _cursor_opened(backend: PacketStream) -> tuple[bytes | None, int]:
    """With CLIENT_DEPRECATE_EOF a COM_STMT_EXECUTE that opens a cursor still ends its
    metadata with a terminator (an OK with SERVER_STATUS_CURSOR_EXISTS) instead of rows:
    (that packet, its status) then; otherwise the packet is put back and (None, 0)."""
    seq = backend.seq
    packet = await backend.read_packet()
    if packet[:1] == b"\xfe" and len(packet) < 0xFFFFFF:
        status = parse_ok(packet).status
        if status & _CURSOR:
            return packet, status
    data, _ = _framing.build_packets(packet, seq)
    backend.unread(data)
    backend.seq = seq
    return None, 0


async def relay_rows(
    scanner: ResponseScanner,
    backend: PacketStream,
    client: PacketStream,
    masker: RowMasker | None,
    binary: bool,
) -> int:
    """Rows up to and including their terminator, masked in byte runs; the final status."""
    scanner.start(RESPONSE_FETCH)
    rewrite = None if masker is None else (lambda run: masker.rewrite_packets(run, binary))
    await relay_response(scanner, backend, client, rewrite)
    backend.seq = client.seq = (scanner.last_seq + 1) & 0xFF
    return scanner.status


async def _discard_rest(scanner: ResponseScanner, backend: PacketStream) -> None:
    """Read and drop what is left of a refused response, keeping the backend in step."""
    kind = RESPONSE_FETCH
    while True:
        scanner.start(kind)
        pending = b""
        while not scanner.done:
            data = pending + await backend.read_chunk()
            used = scanner.scan(data)
            pending = data[used:]
        if pending:
            backend.unread(pending)
        if scanner.error_code or not scanner.status & _MORE:
            return
        kind = RESPONSE_QUERY
