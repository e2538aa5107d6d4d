"""The bytes of a masked response as the client gets them: a result set's metadata
rewritten by its mask plan (or replaced by the refusal), and the text of a final error
withheld. Functions of bytes and values, no I/O; the handler calls them from the core."""

from __future__ import annotations

from myguard._fast import load
from myguard.masking.lineage import Lineage
from myguard.masking.plan import MaskPlan, MaskRules, plan_result
from myguard.masking.service import ER_MYGUARD_MASK_REFUSED
from myguard.protocol.codec import PayloadReader
from myguard.protocol.column_definition import build_column_definition, parse_column_definition
from myguard.protocol.generic_response import err_packet, parse_err

_framing = load("framing")

WITHHELD = "myguard: the server's message was withheld: the statement read columns masked for you"


def _packets(run: bytes) -> list[tuple[bytes, int]]:
    """(payload, sequence id) of each whole packet in ``run``."""
    buffer = _framing.PacketBuffer(len(run))
    buffer.feed(run)
    seq = run[3]
    out = []
    while (got := buffer.next_packet(seq)) is not None:
        out.append((got[0], seq))
        seq = got[1]
    return out


def rewrite_metadata(
    header: bytes, lineage: Lineage, rules: MaskRules, capabilities: int, codec: str = "utf-8"
) -> tuple[bytes, MaskPlan]:
    """One result set's metadata (column count, definitions, EOF when not deprecated) as the
    client gets it, and its plan; the ERR 4701 instead when ``plan.refusal``. ``codec``
    reads the names (the session's character set)."""
    packets = _packets(header)
    (count_packet, seq), *rest = packets
    count = PayloadReader(count_packet).lenenc_int()
    definitions = [parse_column_definition(p, capabilities) for p, _ in rest[:count]]
    plan = plan_result(lineage, definitions, rules, codec)
    if plan.refusal is not None:
        refusal = err_packet(ER_MYGUARD_MASK_REFUSED, "42000", plan.refusal)
        return _framing.build_packets(refusal, seq)[0], plan
    out, next_seq = _framing.build_packets(count_packet, seq)
    parts = [out]
    for definition in plan.definitions():
        out, next_seq = _framing.build_packets(build_column_definition(definition), next_seq)
        parts.append(out)
    parts += [_framing.build_packets(p, s)[0] for p, s in rest[count:]]  # the EOF as it came
    return b"".join(parts), plan


def withhold_error(run: bytes) -> bytes:
    """``run`` with the error packet that ends it carrying ``WITHHELD`` as its message
    (code and SQLSTATE kept); unchanged when it does not end in an error."""
    packets = _packets(run)
    payload, seq = packets[-1]
    if payload[:1] != b"\xff":
        return run
    err = parse_err(payload)
    out = [_framing.build_packets(p, s)[0] for p, s in packets[:-1]]
    out.append(_framing.build_packets(err_packet(err.code, err.sqlstate, WITHHELD), seq)[0])
    return b"".join(out)
