"""Property tests of packet framing: the compiled module and its pure-Python twin agree.

Both are driven in lockstep by the same operations (feed in random chunks, next_packet
with right and wrong sequence ids, take, len) and must give the same results or raise
the same exception with the same code and message. The compiled module is imported
explicitly: these tests fail, not skip, when it is not built.
"""

from __future__ import annotations

import importlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from myguard._fast import twin
from myguard.protocol.errors import ProtocolError

compiled = importlib.import_module("myguard._fast.framing")
python = twin("framing")

MAX = 0xFFFFFF
SETTINGS = settings(max_examples=300, deadline=None)
BIG = settings(max_examples=8, deadline=None)


def outcome(fn, *args):
    """What a call did, comparable across the two implementations."""
    try:
        return ("value", fn(*args))
    except ProtocolError as exc:
        return ("protocol", exc.code, exc.message, exc.sqlstate, exc.fatal)
    except Exception as exc:
        return ("error", type(exc))


class Pair:
    """The same PacketBuffer operations on both implementations, compared at each step."""

    def __init__(self, max_payload: int) -> None:
        self.c = compiled.PacketBuffer(max_payload)
        self.p = python.PacketBuffer(max_payload)

    def call(self, name: str, *args):
        got = outcome(getattr(self.c, name), *args)
        want = outcome(getattr(self.p, name), *args)
        assert got == want, (name, args)
        assert len(self.c) == len(self.p)
        return want

    def drain(self, seq: int) -> tuple[list, int]:
        """next_packet until None or an exception; the payloads and the next seq."""
        got = []
        while True:
            result = self.call("next_packet", seq)
            if result[0] != "value" or result[1] is None:
                return got + [result], seq
            payload, seq = result[1]
            got.append(payload)


def stream(payloads: list[bytes], seq: int) -> bytes:
    out = b""
    for p in payloads:
        data, seq = python.build_packets(p, seq)
        out += data
    return out


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False)]


@SETTINGS
@given(st.binary(max_size=600), st.integers(0, 255))
def test_build_packets_agree(payload, seq):
    assert compiled.build_packets(payload, seq) == python.build_packets(payload, seq)
    assert compiled.build_packets(bytearray(payload), seq) == python.build_packets(payload, seq)


@SETTINGS
@given(st.binary(max_size=20), st.one_of(st.integers(-300, -1), st.integers(256, 10**6)))
def test_build_packets_bad_sequence_id_fails_alike(payload, seq):
    assert outcome(compiled.build_packets, payload, seq) == outcome(
        python.build_packets, payload, seq
    )


@pytest.mark.parametrize("size", [MAX - 1, MAX, MAX + 1, 2 * MAX, 2 * MAX + 5])
def test_build_packets_agree_around_16_mib(size):
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    assert compiled.build_packets(payload, 250) == python.build_packets(payload, 250)


@SETTINGS
@given(
    st.lists(st.binary(max_size=300), min_size=1, max_size=10),
    st.integers(0, 255),
    st.lists(st.integers(0, 4000), max_size=12),
    st.integers(0, 400),
)
def test_packet_streams_in_any_chunking(payloads, seq, cuts, max_payload):
    """Well-formed streams; max_payload is often too small, so both must refuse alike."""
    pair = Pair(max_payload)
    got = []
    s = seq
    for part in chunks(stream(payloads, seq), cuts):
        pair.call("feed", part)
        more, s = pair.drain(s)
        got += more[:-1]
        if more[-1][0] != "value":
            return  # both raised the same ProtocolError (checked in call)
    if all(len(p) <= max_payload for p in payloads):
        assert got == payloads


@SETTINGS
@given(
    st.lists(st.binary(max_size=50), min_size=1, max_size=8),
    st.integers(0, 255),
    st.integers(0, 7),
    st.integers(1, 255),
    st.integers(1, 64),
)
def test_wrong_sequence_id_fails_alike(payloads, seq, bad, shift, chunk):
    data = bytearray(stream(payloads, seq))
    # Corrupt the sequence id of one packet (the streams hold one packet per payload).
    pos = 0
    for _ in range(bad % len(payloads)):
        pos += 4 + (data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16)
    data[pos + 3] = (data[pos + 3] + shift) & 0xFF
    pair = Pair(1 << 20)
    s = seq
    failed = False
    for i in range(0, len(data), chunk):
        pair.call("feed", bytes(data[i : i + chunk]))
        more, s = pair.drain(s)
        if more[-1][0] == "protocol":
            assert more[-1][1] == 1156
            failed = True
            break
    assert failed


@SETTINGS
@given(
    st.lists(st.binary(max_size=50), min_size=1, max_size=8),
    st.lists(st.integers(0, 255), min_size=8, max_size=8),
    st.integers(0, 255),
    st.integers(1, 64),
)
def test_unchecked_sequence_ids_are_followed_alike(payloads, ids, seq, chunk):
    """On the compressed protocol (``checks_sequence`` off) any sequence id is taken, and
    the next one returned follows the id the packet carried."""
    data = bytearray(stream(payloads, 0))
    pos = 0
    for i in range(len(payloads)):  # one packet per payload: give each an arbitrary id
        data[pos + 3] = ids[i]
        pos += 4 + (data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16)
    pair = Pair(1 << 20)
    pair.c.checks_sequence = pair.p.checks_sequence = False
    got = []
    for i in range(0, len(data), chunk):
        pair.call("feed", bytes(data[i : i + chunk]))
        more, seq = pair.drain(seq)
        got += more[:-1]
        assert more[-1] == ("value", None)
    assert got == payloads
    assert seq == (ids[len(payloads) - 1] + 1) & 0xFF


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("feed"), st.binary(max_size=40)),
        st.tuples(st.just("feed"), st.binary(max_size=40).map(bytearray)),
        st.tuples(st.just("next_packet"), st.integers(0, 255)),
        st.tuples(st.just("take")),
        st.tuples(st.just("__len__")),
    ),
    max_size=40,
)


@SETTINGS
@given(OPS, st.integers(0, 64))
def test_random_operations_on_garbage_agree(ops, max_payload):
    pair = Pair(max_payload)
    for name, *args in ops:
        pair.call(name, *args)


@SETTINGS
@given(
    st.lists(st.binary(max_size=40), min_size=1, max_size=6),
    st.integers(0, 255),
    st.lists(st.sampled_from(["feed", "take", "len", "next"]), min_size=1, max_size=30),
    st.data(),
)
def test_interleaved_take_and_next_packet_agree(payloads, seq, ops, data):
    """Partly consumed buffers (a read offset in the compiled one) taken or refilled."""
    pair = Pair(1 << 16)
    rest = stream(payloads, seq)
    for op in ops:
        if op == "feed" and rest:
            n = data.draw(st.integers(1, len(rest)))
            pair.call("feed", rest[:n])
            rest = rest[n:]
        elif op == "take":
            pair.call("take")
        elif op == "len":
            pair.call("__len__")
        else:
            result = pair.call("next_packet", seq)
            if result[0] == "value" and result[1] is not None:
                seq = result[1][1]


def test_feed_rejects_what_the_twin_rejects():
    for bad in ("text", 5, None, [1, 2]):
        for prefill in (b"", b"\x01\x00"):
            pair = Pair(100)
            pair.call("feed", prefill)
            pair.call("feed", bad)


@BIG
@given(
    st.lists(st.sampled_from([0, 1, MAX - 1, MAX, MAX + 1, 2 * MAX + 3]), min_size=1, max_size=3),
    st.integers(0, 255),
    st.lists(st.integers(1, 3 * MAX), max_size=20),
)
def test_16_mib_packets_in_many_chunks(sizes, seq, cuts):
    payloads = [bytes((i,)) * n for i, n in enumerate(sizes)]
    pair = Pair(64 << 20)
    got = []
    s = seq
    for part in chunks(stream(payloads, seq), cuts):
        pair.call("feed", part)
        more, s = pair.drain(s)
        got += more[:-1]
    assert got == payloads and len(pair.c) == 0


def test_oversized_multi_packet_refused_from_second_header():
    data, _ = python.build_packets(b"y" * (MAX + 10), 3)
    for n in (MAX + 4, MAX + 8, MAX + 9, len(data)):
        pair = Pair(MAX + 5)
        pair.call("feed", data[:n])
        pair.call("next_packet", 3)


def test_take_after_partial_consumption_returns_the_rest():
    data = stream([b"a", b"bb", b"ccc"], 0)
    for impl in (compiled, python):
        buf = impl.PacketBuffer(100)
        buf.feed(data)
        assert buf.next_packet(0) == (b"a", 1)
        assert buf.take() == data[5:]
        assert len(buf) == 0 and buf.take() == b"" and buf.next_packet(2) is None
