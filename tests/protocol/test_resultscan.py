from hypothesis import given, settings
from hypothesis import strategies as st

from myguard._fast import twin
from myguard.protocol.codec import lenenc_str
from myguard.protocol.generic_response import eof_packet, err_packet, ok_packet

scan = twin("resultscan")
framing = twin("framing")

MORE = 0x0008
CURSOR = 0x0040


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


def text_row(*cells) -> bytes:
    return b"".join(b"\xfb" if c is None else lenenc_str(c) for c in cells)


def resultset(rows, deprecate_eof, status=0, columns=2):
    packets = [bytes((columns,))] + [coldef(b"c%d" % i) for i in range(columns)]
    if not deprecate_eof:
        packets.append(eof_packet())
    packets += rows
    packets.append(ok_packet(status=status, header=0xFE) if deprecate_eof else eof_packet(status))
    return packets


def run(kind, payloads, deprecate_eof, chunk=None):
    data = frame(payloads)
    s = scan.ResponseScanner(deprecate_eof)
    s.start(kind)
    if chunk is None:
        used = s.scan(data)
    else:
        used, pending = 0, b""
        for i in range(0, len(data), chunk):
            pending += data[i : i + chunk]
            n = s.scan(pending)
            used += n
            pending = pending[n:]
            if s.done:
                break
    return s, used, len(data)


def test_ok_and_err_end_a_query():
    s, used, total = run(scan.RESPONSE_QUERY, [ok_packet(affected_rows=3, last_insert_id=9)], True)
    assert s.done and used == total and s.affected_rows == 3 and s.last_insert_id == 9
    s, used, total = run(scan.RESPONSE_QUERY, [err_packet(1064, "42000", "syntax")], True)
    assert s.done and s.error_code == 1064


def test_result_set_with_and_without_deprecate_eof():
    rows = [text_row(b"1", None), text_row(b"", b"x" * 300)]
    for deprecate in (False, True):
        s, used, total = run(scan.RESPONSE_QUERY, resultset(rows, deprecate), deprecate)
        assert s.done and used == total and s.rows == 2 and s.result_sets == 1


def test_multiple_result_sets_then_ok():
    packets = resultset([text_row(b"1", b"2")], True, status=MORE) + resultset(
        [], True, status=MORE
    )
    packets.append(ok_packet(affected_rows=1))
    s, used, total = run(scan.RESPONSE_QUERY, packets, True)
    assert s.done and used == total and s.rows == 1 and s.result_sets == 3


def test_scan_stops_at_end_of_response():
    data = frame(resultset([text_row(b"1", b"2")], False)) + b"\x01\x00\x00\x00\x00"
    s = scan.ResponseScanner(False)
    s.start(scan.RESPONSE_QUERY)
    assert s.scan(data) == len(data) - 5 and s.done


def test_error_in_the_middle_of_rows():
    packets = resultset([text_row(b"1", b"2")], True)[:-1] + [
        err_packet(1317, "70100", "interrupted")
    ]
    s, used, total = run(scan.RESPONSE_QUERY, packets, True)
    assert s.done and s.error_code == 1317 and s.rows == 1


def test_local_infile_request_pauses_then_resumes():
    s, used, total = run(scan.RESPONSE_QUERY, [b"\xfb/tmp/x.csv"], True)
    assert s.local_infile and not s.done and used == total
    s.resume_after_infile()
    assert s.scan(frame([ok_packet(affected_rows=5)], 4)) and s.done and s.affected_rows == 5


def test_prepare_response():
    params = [coldef(b"?"), coldef(b"?")]
    cols = [coldef(b"a")]
    prep_ok = (
        b"\x00"
        + (7).to_bytes(4, "little")
        + (1).to_bytes(2, "little")
        + (2).to_bytes(2, "little")
        + b"\x00\x00\x00"
    )
    for deprecate in (False, True):
        packets = (
            [prep_ok]
            + params
            + ([] if deprecate else [eof_packet()])
            + cols
            + ([] if deprecate else [eof_packet()])
        )
        s, used, total = run(scan.RESPONSE_PREPARE, packets, deprecate)
        assert (
            s.done and used == total and s.stmt_id == 7 and s.num_params == 2 and s.num_columns == 1
        )


def test_execute_with_cursor_ends_after_metadata_and_fetch_reads_rows():
    packets = [b"\x01", coldef(b"a"), eof_packet(0x0002 | CURSOR)]
    s, used, total = run(scan.RESPONSE_EXECUTE, packets, False)
    assert s.done and used == total and s.status & CURSOR
    fetch = [
        b"\x00\x00" + b"\x01\x00\x00\x00",
        b"\x00\x00" + b"\x02\x00\x00\x00",
        eof_packet(0x0080),
    ]
    s, used, total = run(scan.RESPONSE_FETCH, fetch, False)
    assert s.done and s.rows == 2


def test_field_list():
    s, used, total = run(
        scan.RESPONSE_FIELD_LIST, [coldef(b"a"), coldef(b"b"), eof_packet()], False
    )
    assert s.done and used == total


def test_row_of_16_mib_is_one_row():
    big = lenenc_str(b"z" * (0xFFFFFF + 10))
    packets = resultset([big], True, columns=1)
    s, used, total = run(scan.RESPONSE_QUERY, packets, True)
    assert s.done and s.rows == 1 and used == total


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.lists(st.one_of(st.none(), st.binary(max_size=40)), min_size=2, max_size=2), max_size=20
    ),
    st.booleans(),
    st.integers(1, 97),
)
def test_chunking_does_not_change_the_outcome(rows, deprecate, chunk):
    packets = resultset([text_row(*r) for r in rows], deprecate)
    whole, used_whole, total = run(scan.RESPONSE_QUERY, packets, deprecate)
    parts, used_parts, _ = run(scan.RESPONSE_QUERY, packets, deprecate, chunk)
    assert whole.done and parts.done
    assert used_whole == used_parts == total
    assert whole.rows == parts.rows == len(rows)
