"""Full integrity check of an audit directory: every checksum, every link of the chain.

The chain is anchored at the oldest segment present: its header's previous hash and first
record number are taken as given (older segments may have been removed by retention).
From there each header must continue the previous segment exactly (next segment number,
next record number, hash of the last record) and each record must carry the hash and
number that follow its predecessor. The first break is reported with file and offset;
checking stops there because everything after it would only echo the same break.

A root of several chains (myguard.audit.chains) is checked chain by chain: a break in one
says nothing about the others, so every chain is checked and each break is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from myguard.audit.chains import Chain, find_chains, location
from myguard.audit.records import AuditFormatError, AuditRecord
from myguard.audit.segment import (
    FLAG_HMAC,
    HEADER_SIZE,
    FrameError,
    SegmentHeader,
    iter_frames,
    key_id,
    list_segments,
    record_hash,
    split_payload,
)


@dataclass(frozen=True, slots=True)
class VerifyProblem:
    segment: str
    offset: int
    reason: str
    chain: str = ""

    def __str__(self) -> str:
        return f"{location(self.chain, self.segment)} at offset {self.offset}: {self.reason}"


@dataclass(slots=True)
class VerifyReport:
    """One chain's result, or for a root of several chains the totals with one report per
    chain in ``chains`` (then ``problem`` is the first chain's break, if any)."""

    segments: int = 0
    records: int = 0
    first_segment: int | None = None
    first_record: int | None = None
    last_record: int | None = None
    problem: VerifyProblem | None = None
    notes: list[str] = field(default_factory=list)
    chain: str = ""
    chains: list[VerifyReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def problems(self) -> list[VerifyProblem]:
        """Every break: one per broken chain."""
        reports = self.chains or [self]
        return [report.problem for report in reports if report.problem is not None]


class _Break(Exception):
    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(reason)
        self.offset = offset
        self.reason = reason


class _Chain:
    """The running state: what the next segment and record must look like."""

    def __init__(self, hmac_key: bytes | None) -> None:
        self.key = hmac_key
        self.segment: int | None = None
        self.record = 0
        self.hash = b""
        self.last_name = ""

    def check_header(self, name: str, header: SegmentHeader, report: VerifyReport) -> None:
        if header.flags & FLAG_HMAC:
            if self.key is None:
                raise _Break(0, "segment is HMAC-chained; an HMAC key is needed to verify it")
            if header.key_id != key_id(self.key):
                raise _Break(0, "segment was chained with a different HMAC key")
        elif self.key is not None:
            raise _Break(0, "segment is not HMAC-chained but an HMAC key was given")
        if self.segment is None:
            report.first_segment, report.first_record = header.seq, header.first_record
            if header.seq != 1:
                report.notes.append(f"chain anchored at {name} (older segments removed)")
        else:
            if header.seq != self.segment + 1:
                missing = f"{self.segment + 1}" + (
                    f"..{header.seq - 1}" if header.seq - 1 > self.segment + 1 else ""
                )
                raise _Break(0, f"segment(s) {missing} missing after {self.last_name}")
            if header.first_record != self.record:
                raise _Break(
                    0, f"header starts at record {header.first_record}, expected {self.record}"
                )
            if header.prev_hash != self.hash:
                raise _Break(0, f"header previous hash does not match the end of {self.last_name}")
        self.segment, self.record, self.hash = header.seq, header.first_record, header.prev_hash
        self.last_name = name

    def check_records(self, data: bytes, report: VerifyReport) -> None:
        try:
            for offset, payload in iter_frames(data):
                prev, number, body = split_payload(payload)
                if number != self.record:
                    raise _Break(offset, f"record number {number}, expected {self.record}")
                if prev != self.hash:
                    raise _Break(offset, f"record {number} does not follow the previous record")
                try:
                    AuditRecord.decode(body)
                except AuditFormatError as exc:
                    raise _Break(offset, str(exc)) from exc
                self.hash = record_hash(payload, self.key)
                self.record += 1
                report.records += 1
                report.last_record = number
        except FrameError as exc:
            raise _Break(exc.offset, exc.reason) from exc


def verify(directory: str | Path, hmac_key: bytes | None = None) -> VerifyReport:
    """Check every segment in ``directory`` (a chain or a root of chains); ``report.problem``
    is the first break. Every chain of a root is expected to use ``hmac_key``."""
    chains = find_chains(directory)
    if not chains:
        return VerifyReport(problem=VerifyProblem(str(directory), 0, "no audit segments found"))
    if len(chains) == 1 and not chains[0].name:
        return _verify_chain(chains[0], hmac_key)
    reports = [_verify_chain(chain, hmac_key) for chain in chains]
    return VerifyReport(
        segments=sum(report.segments for report in reports),
        records=sum(report.records for report in reports),
        problem=next((report.problem for report in reports if report.problem), None),
        chains=reports,
    )


def _verify_chain(chain_dir: Chain, hmac_key: bytes | None) -> VerifyReport:
    report = VerifyReport(chain=chain_dir.name)
    segments = list_segments(chain_dir.path)
    chain = _Chain(hmac_key)
    for _, path in segments:
        try:
            data = path.read_bytes()
            chain.check_header(path.name, _header(data), report)
            report.segments += 1
            chain.check_records(data, report)
        except _Break as problem:
            report.problem = VerifyProblem(
                path.name, problem.offset, problem.reason, chain_dir.name
            )
            break
        except OSError as exc:
            report.problem = VerifyProblem(path.name, 0, f"cannot read: {exc}", chain_dir.name)
            break
    return report


def _header(data: bytes) -> SegmentHeader:
    try:
        return SegmentHeader.decode(data[:HEADER_SIZE])
    except AuditFormatError as exc:
        raise _Break(0, str(exc)) from exc
