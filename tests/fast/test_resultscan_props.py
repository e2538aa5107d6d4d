"""Property tests of response scanning: the compiled module and its pure-Python twin agree.

Random well-formed responses of every kind are cut at random chunk boundaries and fed the
way the relay feeds them (unconsumed bytes are offered again with the next chunk); both
scanners must consume the same number of bytes on every call and end with the same
attributes, with and without ``stream_rows``. Random and corrupted streams must give the
same results or the same exception type. The compiled module is imported explicitly:
these tests fail, not skip, when it is not built.
"""

from __future__ import annotations

import importlib
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from myguard._fast import twin
from myguard.protocol.codec import lenenc_int, lenenc_str
from myguard.protocol.errors import ProtocolError
from myguard.protocol.generic_response import eof_packet, err_packet, ok_packet

compiled = importlib.import_module("myguard._fast.resultscan")
python = twin("resultscan")
framing = twin("framing")

SETTINGS = settings(max_examples=300, deadline=None)
BIG = settings(max_examples=10, deadline=None)
MAX = 0xFFFFFF
MORE = 0x0008
CURSOR = 0x0040
ATTRS = (
    "done", "rows", "result_sets", "affected_rows", "last_insert_id", "status", "known_status",
    "warnings",
    "error_code", "local_infile", "stmt_id", "num_params", "num_columns", "last_seq",
    "deprecate_eof", "kind", "state", "stream_rows", "stop_at_rows", "at_rows",
)  # fmt: skip
KINDS = [
    python.RESPONSE_QUERY, python.RESPONSE_EXECUTE, python.RESPONSE_FETCH,
    python.RESPONSE_PREPARE, python.RESPONSE_FIELD_LIST, python.RESPONSE_SIMPLE,
]  # fmt: skip


def test_kind_constants_agree():
    for name in dir(python):
        if name.startswith("RESPONSE_"):
            assert getattr(compiled, name) == getattr(python, name)


def attrs(scanner) -> dict:
    return {name: getattr(scanner, name) for name in ATTRS}


def frame(payloads: list[bytes], seq: int = 1) -> bytes:
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


# --- random well-formed responses -------------------------------------------------------

CELL = st.one_of(st.none(), st.binary(max_size=30), st.binary(min_size=250, max_size=300))
STATUS = st.integers(0, 0xFFFF).map(lambda s: s & ~(MORE | CURSOR))


@st.composite
def text_rows(draw: st.DrawFn, columns: int, deprecate_eof: bool) -> list[bytes]:
    rows = []
    for _ in range(draw(st.integers(0, 12))):
        cells = draw(st.lists(CELL, min_size=columns, max_size=columns))
        rows.append(b"".join(b"\xfb" if c is None else lenenc_str(c) for c in cells))
    if not deprecate_eof and draw(st.booleans()):
        # Without DEPRECATE_EOF a 0xFE packet of 9+ bytes is a row (an 8-byte length).
        rows.append(b"\xfe" + draw(st.binary(min_size=8, max_size=20)))
    return rows


@st.composite
def binary_rows(draw: st.DrawFn, columns: int) -> list[bytes]:
    bitmap = (columns + 9) // 8
    return [
        b"\x00" + draw(st.binary(min_size=bitmap, max_size=bitmap)) + draw(st.binary(max_size=60))
        for _ in range(draw(st.integers(0, 12)))
    ]


def terminator(deprecate_eof: bool, status: int, warnings: int = 0) -> bytes:
    if deprecate_eof:
        return ok_packet(status=status, warnings=warnings, header=0xFE)
    return eof_packet(status, warnings)


def error() -> st.SearchStrategy[bytes]:
    return st.builds(
        lambda code, msg: err_packet(code, "HY000", msg), st.integers(1000, 9999), st.text()
    )


def ok() -> st.SearchStrategy[bytes]:
    return st.builds(
        lambda a, i, s, w, info: ok_packet(
            affected_rows=a, last_insert_id=i, status=s, warnings=w, info=info
        ),
        st.integers(0, 2**64 - 1),
        st.integers(0, 2**64 - 1),
        STATUS,
        st.integers(0, 0xFFFF),
        st.binary(max_size=20),
    )


@st.composite
def result_set(draw: st.DrawFn, deprecate_eof: bool, binary: bool, more: bool) -> list[bytes]:
    columns = draw(st.integers(1, 4))
    status = draw(STATUS) | (MORE if more else 0)
    packets = [lenenc_int(columns)] + [coldef(b"c%d" % i) for i in range(columns)]
    if not deprecate_eof:
        packets.append(eof_packet(draw(STATUS)))
    packets += draw(binary_rows(columns) if binary else text_rows(columns, deprecate_eof))
    if draw(st.integers(0, 9)) == 0:
        return packets + [draw(error())]
    return packets + [terminator(deprecate_eof, status, draw(st.integers(0, 0xFFFF)))]


@st.composite
def query_response(draw: st.DrawFn, deprecate_eof: bool, binary: bool) -> list[list[bytes]]:
    """One list of packets per exchange: a LOCAL INFILE request splits a response in two."""
    parts: list[list[bytes]] = [[]]
    results = draw(st.integers(1, 4))
    for i in range(results):
        more = i < results - 1
        choice = draw(st.integers(0, 5))
        if choice == 0:
            parts[-1].append(draw(error()))
            break
        if choice == 1 and not binary:
            # The server's OK/ERR after the file arrives as a new exchange.
            parts[-1].append(b"\xfb" + draw(st.binary(max_size=20)))
            parts.append([])
        if choice <= 2:
            status = draw(STATUS) | (MORE if more else 0)
            parts[-1].append(_with_status(draw(ok()), status))
            if not more:
                break
            continue
        packets = draw(result_set(deprecate_eof, binary, more))
        parts[-1] += packets
        if packets[-1][0] == 0xFF:
            break
    return parts


def _with_status(packet: bytes, status: int) -> bytes:
    """An OK packet with its status flags replaced."""
    pos = 1
    for _ in range(2):
        first = packet[pos]
        pos += 1 if first < 0xFB else {0xFC: 3, 0xFD: 4, 0xFE: 9}[first]
    return packet[:pos] + struct.pack("<H", status) + packet[pos + 2 :]


@st.composite
def execute_response(draw: st.DrawFn, deprecate_eof: bool) -> list[list[bytes]]:
    if not deprecate_eof and draw(st.booleans()):
        columns = draw(st.integers(1, 4))
        cursor = [lenenc_int(columns)] + [coldef(b"c") for _ in range(columns)]
        return [cursor + [eof_packet(draw(STATUS) | CURSOR)]]
    return draw(query_response(deprecate_eof, True))


@st.composite
def fetch_response(draw: st.DrawFn, deprecate_eof: bool) -> list[list[bytes]]:
    packets = draw(binary_rows(draw(st.integers(1, 4))))
    # MORE_RESULTS does not continue a FETCH.
    end = draw(
        st.one_of(
            error(),
            st.builds(
                lambda s, more: terminator(deprecate_eof, s | more),
                STATUS,
                st.sampled_from([0, MORE]),
            ),
        )
    )
    return [packets + [end]]


@st.composite
def prepare_response(draw: st.DrawFn, deprecate_eof: bool) -> list[list[bytes]]:
    if draw(st.integers(0, 5)) == 0:
        return [[draw(error())]]
    params, columns = draw(st.integers(0, 5)), draw(st.integers(0, 5))
    stmt_id = draw(st.integers(0, 2**32 - 1))
    packets = [struct.pack("<BIHHBH", 0, stmt_id, columns, params, 0, draw(st.integers(0, 99)))]
    for count in (params, columns):
        if count:
            packets += [coldef(b"?") for _ in range(count)]
            if not deprecate_eof:
                packets.append(eof_packet())
    return [packets]


@st.composite
def field_list_response(draw: st.DrawFn, deprecate_eof: bool) -> list[list[bytes]]:
    packets = [coldef(b"f%d" % i) for i in range(draw(st.integers(0, 6)))]
    if draw(st.integers(0, 5)) == 0:
        return [packets + [draw(error())]]
    return [packets + [terminator(deprecate_eof, draw(STATUS))]]


@st.composite
def simple_response(draw: st.DrawFn, deprecate_eof: bool) -> list[list[bytes]]:
    return [
        [
            draw(
                st.one_of(
                    ok(), error(), st.just(eof_packet()), st.binary(max_size=80).map(b"U:".__add__)
                )
            )
        ]
    ]


GRAMMARS = {
    python.RESPONSE_QUERY: lambda d: query_response(d, False),
    python.RESPONSE_EXECUTE: execute_response,
    python.RESPONSE_FETCH: fetch_response,
    python.RESPONSE_PREPARE: prepare_response,
    python.RESPONSE_FIELD_LIST: field_list_response,
    python.RESPONSE_SIMPLE: simple_response,
}


@st.composite
def responses(draw: st.DrawFn) -> tuple[int, bool, bytes]:
    kind = draw(st.sampled_from(KINDS))
    deprecate_eof = draw(st.booleans())
    parts = draw(GRAMMARS[kind](deprecate_eof))
    seq = draw(st.integers(0, 255))
    return kind, deprecate_eof, b"".join(frame(p, seq) for p in parts)


# --- driving both scanners --------------------------------------------------------------


def cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False)]


def feed(
    impl,
    kind: int,
    deprecate_eof: bool,
    stream_rows: bool,
    parts: list[bytes],
    stop_at_rows: bool = False,
):
    """Scan like the relay does; every call's consumed count, the end state, the leftover.

    After a LOCAL INFILE request the scanner resumes on the rest of the stream, where the
    server's answer to the file would be. With ``stop_at_rows`` a scan that consumed
    something is repeated on what is left before more bytes are added, as the core does.
    """
    scanner = impl.ResponseScanner(deprecate_eof)
    scanner.start(kind, stream_rows, stop_at_rows)
    trace: list = []
    pending = b""
    parts = list(parts)
    used = 0
    while True:
        if scanner.local_infile:
            scanner.resume_after_infile()
            trace.append("resume")
        elif scanner.done:
            return trace, attrs(scanner), pending
        elif not (stop_at_rows and used):
            if not parts:
                return trace, attrs(scanner), pending
            pending += parts.pop(0)
        try:
            used = scanner.scan(pending)
        except ProtocolError as exc:
            trace.append(("ProtocolError", exc.message))
            return trace, attrs(scanner), pending
        except Exception as exc:
            trace.append(type(exc).__name__)
            return trace, attrs(scanner), pending
        trace.append(used)
        if scanner.at_rows:
            trace.append("at_rows")
            scanner.at_rows = False
        pending = pending[used:]


def agree(
    kind: int, deprecate_eof: bool, stream_rows: bool, parts: list[bytes], stop: bool = False
):
    got = feed(compiled, kind, deprecate_eof, stream_rows, parts, stop)
    want = feed(python, kind, deprecate_eof, stream_rows, parts, stop)
    assert got == want
    return want


@SETTINGS
@given(responses(), st.booleans(), st.lists(st.integers(0, 10**6), max_size=25))
def test_well_formed_responses_in_any_chunking(response, stream_rows, cuts):
    kind, deprecate_eof, data = response
    trace, end, pending = agree(kind, deprecate_eof, stream_rows, cut(data, cuts))
    assert end["done"] and pending == b"" and sum(t for t in trace if t != "resume") == len(data)


@SETTINGS
@given(responses(), st.lists(st.integers(0, 10**6), max_size=25))
def test_stopping_at_each_header_consumes_the_same(response, cuts):
    """Stopping at result-set boundaries (masking's mode) ends where scanning through does,
    with the same counts, and reports the end of each result set's metadata."""
    kind, deprecate_eof, data = response
    trace, end, pending = agree(kind, deprecate_eof, False, cut(data, cuts), True)
    _, through, _ = feed(python, kind, deprecate_eof, False, cut(data, cuts))
    assert end["done"] and pending == b""
    assert sum(t for t in trace if isinstance(t, int)) == len(data)
    for name in ("rows", "result_sets", "status", "error_code", "affected_rows"):
        assert end[name] == through[name]
    if kind in (python.RESPONSE_QUERY, python.RESPONSE_EXECUTE) and end["num_columns"]:
        assert "at_rows" in trace


@SETTINGS
@given(responses(), st.booleans(), st.integers(1, 64))
def test_small_fixed_chunks(response, stream_rows, size):
    kind, deprecate_eof, data = response
    trace, end, _ = agree(
        kind, deprecate_eof, stream_rows, [data[i : i + size] for i in range(0, len(data), size)]
    )
    assert end["done"]


@SETTINGS
@given(responses(), st.booleans(), st.booleans())
def test_rows_counted_the_same_with_and_without_streaming(response, whole, stream_rows):
    kind, deprecate_eof, data = response
    parts = [data] if whole else [data[i : i + 7] for i in range(0, len(data), 7)]
    _, streamed, _ = feed(compiled, kind, deprecate_eof, True, parts)
    _, buffered, _ = feed(compiled, kind, deprecate_eof, False, parts)
    streamed.pop("stream_rows")
    buffered.pop("stream_rows")
    assert streamed == buffered


@st.composite
def big_rows(draw: st.DrawFn) -> tuple[int, bool, bytes]:
    """Result sets (text or FETCH) with rows of 16 MiB or more among small ones."""
    deprecate_eof = draw(st.booleans())
    kind = draw(st.sampled_from([python.RESPONSE_QUERY, python.RESPONSE_FETCH]))
    sizes = draw(st.lists(st.sampled_from([3, 200, MAX - 5, MAX - 4, MAX, 2 * MAX]), max_size=3))
    rows = [lenenc_str(bytes((i,)) * n) for i, n in enumerate(sizes)]
    packets = [b"\x01", coldef(b"c")] + ([] if deprecate_eof else [eof_packet()])
    if kind == python.RESPONSE_FETCH:
        packets = []
    packets += rows + [terminator(deprecate_eof, draw(STATUS))]
    return kind, deprecate_eof, frame(packets, draw(st.integers(0, 255)))


@BIG
@given(big_rows(), st.booleans(), st.lists(st.integers(1, 3 * MAX), max_size=12))
def test_16_mib_rows_in_large_chunks(response, stream_rows, cuts):
    kind, deprecate_eof, data = response
    trace, end, pending = agree(kind, deprecate_eof, stream_rows, cut(data, cuts))
    assert end["done"] and pending == b""


# --- garbage ----------------------------------------------------------------------------


@SETTINGS
@given(
    st.sampled_from(KINDS + [0, 99]),
    st.booleans(),
    st.booleans(),
    st.lists(st.binary(max_size=40), max_size=8),
)
def test_random_bytes_agree(kind, deprecate_eof, stream_rows, parts):
    agree(kind, deprecate_eof, stream_rows, parts)


@st.composite
def packet_soup(draw: st.DrawFn) -> bytes:
    """Framed packets whose payloads start with the bytes that steer the scanner."""
    payloads = draw(
        st.lists(
            st.builds(
                lambda head, rest: bytes(head) + rest,
                st.lists(
                    st.sampled_from([0x00, 0x01, 0x03, 0xFB, 0xFC, 0xFD, 0xFE, 0xFF]), max_size=2
                ),
                st.binary(max_size=14),
            ),
            max_size=12,
        )
    )
    return frame(payloads, draw(st.integers(0, 255)))


@SETTINGS
@given(
    st.sampled_from(KINDS),
    st.booleans(),
    st.booleans(),
    packet_soup(),
    st.lists(st.integers(0, 400), max_size=8),
)
def test_framed_garbage_agrees(kind, deprecate_eof, stream_rows, data, cuts):
    agree(kind, deprecate_eof, stream_rows, cut(data, cuts))


@SETTINGS
@given(
    responses(),
    st.booleans(),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4),
    st.integers(0, 10**6),
    st.lists(st.integers(0, 10**6), max_size=6),
)
def test_corrupted_responses_agree(response, stream_rows, flips, keep, cuts):
    kind, deprecate_eof, data = response
    broken = bytearray(data)
    for pos, value in flips:
        broken[pos % len(broken)] = value
    broken = bytes(broken[: keep % (len(broken) + 1)])
    agree(kind, deprecate_eof, stream_rows, cut(broken, cuts))


def test_status_is_writable_and_survives_until_the_next_start():
    for impl in (compiled, python):
        scanner = impl.ResponseScanner(True)
        scanner.start(impl.RESPONSE_QUERY)
        scanner.status = MORE | 0x0002
        assert scanner.status == MORE | 0x0002
        scanner.start(impl.RESPONSE_FETCH)
        assert scanner.status == 0


def test_scan_accepts_bytes_bytearray_and_memoryview():
    data = frame([b"\x01", coldef(b"a"), b"\x01x", ok_packet(header=0xFE)])
    for impl in (compiled, python):
        for buf in (data, bytearray(data), memoryview(data)):
            scanner = impl.ResponseScanner(True)
            scanner.start(impl.RESPONSE_QUERY)
            assert scanner.scan(buf) == len(data) and scanner.rows == 1 and scanner.done
