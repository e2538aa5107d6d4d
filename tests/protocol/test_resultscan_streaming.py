"""ResponseScanner with ``stream_rows``: incomplete rows and continuation fragments are
consumed as far as they go, so a relay never buffers a whole 16 MiB+ row.

Runs against the twin and the compiled module (imported explicitly: fails if not built).
"""

from __future__ import annotations

import importlib

import pytest

from myguard._fast import twin
from myguard.protocol.codec import lenenc_str
from myguard.protocol.generic_response import eof_packet, err_packet, ok_packet

framing = twin("framing")
IMPLS = {
    "twin": twin("resultscan"),
    "compiled": importlib.import_module("myguard._fast.resultscan"),
}
MAX = 0xFFFFFF


@pytest.fixture(params=list(IMPLS))
def impl(request):
    return IMPLS[request.param]


def frame(payloads, seq=1):
    out = b""
    for p in payloads:
        data, seq = framing.build_packets(p, seq)
        out += data
    return out


def coldef(name: bytes) -> bytes:
    return (
        b"".join(lenenc_str(x) for x in (b"def", b"db", b"t", b"t", name, name))
        + b"\x0c"
        + bytes(12)
    )


def fetch(impl, deprecate_eof=True, stream_rows=True):
    s = impl.ResponseScanner(deprecate_eof)
    s.start(impl.RESPONSE_FETCH, stream_rows)
    return s


def test_incomplete_row_is_consumed_and_counted(impl):
    data = frame([b"\x03abc\x02xy", b"\x01z"])
    s = fetch(impl)
    assert s.scan(data[:5]) == 5 and s.rows == 1 and s.last_seq == 1
    assert s.scan(data[5:8]) == 3 and s.rows == 1  # still inside the first row
    assert s.scan(data[8:12]) == 3  # the row's last byte; the next header is incomplete
    assert s.scan(data[11:]) == len(data) - 11 and s.rows == 2 and s.last_seq == 2
    assert not s.done


def test_header_without_a_body_byte_waits(impl):
    s = fetch(impl)
    assert s.scan(frame([b"\x03abc"])[:4]) == 0 and s.rows == 0


def test_without_stream_rows_incomplete_rows_wait(impl):
    data = frame([b"\x03abc"])
    s = fetch(impl, stream_rows=False)
    assert s.scan(data[:6]) == 0 and s.rows == 0
    assert s.scan(data) == len(data) and s.rows == 1


@pytest.mark.parametrize("deprecate_eof", [False, True])
def test_terminators_and_errors_wait_until_complete(impl, deprecate_eof):
    end = ok_packet(status=2, warnings=3, header=0xFE) if deprecate_eof else eof_packet(2, 3)
    for packet in (end, err_packet(1317, "70100", "interrupted")):
        data = frame([packet])
        s = fetch(impl, deprecate_eof)
        assert s.scan(data[:-1]) == 0 and not s.done and s.rows == 0
        assert s.scan(data) == len(data) and s.done
    s = fetch(impl, deprecate_eof)
    s.scan(frame([end]))
    assert s.status == 2


def test_long_0xfe_row_streams_without_deprecate_eof(impl):
    row = b"\xfe" + (20).to_bytes(8, "little") + b"q" * 20
    data = frame([row, eof_packet()])
    s = fetch(impl, deprecate_eof=False)
    assert s.scan(data[:6]) == 6 and s.rows == 1
    assert s.scan(data[6:]) == len(data) - 6 and s.done and s.rows == 1


@pytest.mark.parametrize("deprecate_eof", [False, True])
def test_rows_of_16_mib_stream_in_byte_runs(impl, deprecate_eof):
    big = lenenc_str(b"z" * (2 * MAX + 10))  # three fragments
    packets = [b"\x01", coldef(b"a")] + ([] if deprecate_eof else [eof_packet()])
    end = ok_packet(header=0xFE) if deprecate_eof else eof_packet()
    packets += [b"\x01a", big, b"\x01b", big, end]
    data = frame(packets)
    s = impl.ResponseScanner(deprecate_eof)
    s.start(impl.RESPONSE_QUERY, True)
    pending, largest, step = b"", 0, 256 * 1024
    for i in range(0, len(data), step):
        pending += data[i : i + step]
        pending = pending[s.scan(pending) :]
        largest = max(largest, len(pending))
        if s.done:
            break
    assert s.done and s.rows == 4 and pending == b""
    assert largest < 64  # only a split header or a split terminator is ever held back
    assert s.last_seq == (len(packets) + 4) & 0xFF  # two extra fragments per big row


def test_continuation_fragment_streams_from_its_header(impl):
    big = lenenc_str(b"z" * MAX)  # MAX + 4 bytes: a full fragment and a short one
    data = frame([big])
    s = fetch(impl)
    first = 4 + MAX
    assert s.scan(data[:100]) == 100 and s.rows == 1
    assert s.scan(data[100:first]) == first - 100
    assert s.scan(data[first : first + 4]) == 4 and s.last_seq == 2  # the next header alone
    assert s.scan(data[first + 4 :]) == len(data) - first - 4 and s.rows == 1


def test_column_definitions_are_never_streamed(impl):
    data = frame([b"\x01", coldef(b"a")])
    s = impl.ResponseScanner(True)
    s.start(impl.RESPONSE_QUERY, True)
    assert s.scan(data[:-3]) == 5 and s.num_columns == 1  # the column count only
    assert s.scan(data[5:]) == len(data) - 5


def test_start_forgets_a_partly_consumed_row(impl):
    s = fetch(impl)
    assert s.scan(frame([b"\x05abcde"])[:6]) == 6
    s.start(impl.RESPONSE_FETCH, True)
    data = frame([b"\x01x", ok_packet(header=0xFE)])
    assert s.scan(data) == len(data) and s.rows == 1 and s.done
