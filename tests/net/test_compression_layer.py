"""CompressionLayer: what one side writes, the other unwraps whole, however the bytes are
cut on the way; sequence ids follow the peer's; short payloads go stored; a packet that
lies about its size is an error, not a large allocation."""

from __future__ import annotations

import random
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from myguard.net.compression_layer import (
    MAX_PAYLOAD,
    MIN_COMPRESS_LENGTH,
    CompressedPacketError,
    CompressionLayer,
)


def sent_by(layer_writes: list[bytes]) -> tuple[CompressionLayer, list[bytes]]:
    wire: list[bytes] = []
    layer = CompressionLayer(wire.append)
    for data in layer_writes:
        layer.write(data)
    return layer, wire


def header(packet: bytes) -> tuple[int, int, int]:
    return (
        int.from_bytes(packet[:3], "little"),
        packet[3],
        int.from_bytes(packet[4:7], "little"),
    )


@settings(max_examples=150, deadline=None)
@given(
    writes=st.lists(st.binary(max_size=3000), min_size=1, max_size=8),
    cuts=st.lists(st.integers(min_value=1, max_value=500), max_size=30),
)
def test_what_is_written_is_unwrapped_whole_however_it_is_cut(writes, cuts):
    _, wire = sent_by(writes)
    stream = b"".join(wire)
    reader = CompressionLayer(lambda _: None)
    out, at = [], 0
    for cut in cuts:
        out.append(reader.unwrap(stream[at : at + cut]))
        at += cut
    out.append(reader.unwrap(stream[at:]))
    assert b"".join(out) == b"".join(writes)


def test_short_payloads_go_stored_and_long_ones_compressed():
    _, wire = sent_by([b"x" * (MIN_COMPRESS_LENGTH - 1), b"y" * 1000])
    short, long = wire
    assert header(short) == (MIN_COMPRESS_LENGTH - 1, 0, 0)
    assert short[7:] == b"x" * (MIN_COMPRESS_LENGTH - 1)
    length, seq, original = header(long)
    assert (seq, original) == (1, 1000) and length < 100
    assert zlib.decompress(long[7:]) == b"y" * 1000


def test_what_does_not_shrink_goes_stored():
    data = random.Random(7).randbytes(512)  # zlib makes it longer
    _, [packet] = sent_by([data])
    assert header(packet) == (len(data), 0, 0) and packet[7:] == data


def test_sequence_ids_follow_the_last_packet_read():
    """A command's compressed sequence starts at 0 on the client's side; the answer's
    packets go on from there, and the next command starts again."""
    wire: list[bytes] = []
    layer = CompressionLayer(wire.append)
    for command in (b"\x03SELECT 1", b"\x0e"):
        _, [packet] = sent_by([command])  # a client numbers a command's first packet 0
        assert header(packet)[1] == 0
        layer.unwrap(packet)
        wire.clear()
        layer.write(b"a" * 10)
        layer.write(b"b" * 100)
        assert [header(p)[1] for p in wire] == [1, 2]


def test_more_than_a_packet_s_payload_is_split():
    data = b"z" * (MAX_PAYLOAD + 10)
    _, wire = sent_by([data])
    assert [header(p)[2] for p in wire] == [MAX_PAYLOAD, 0]  # the last 10 bytes stored
    assert [header(p)[1] for p in wire] == [0, 1]
    assert CompressionLayer(lambda _: None).unwrap(b"".join(wire)) == data


@pytest.mark.parametrize(
    "payload, original",
    [
        (zlib.compress(b"a" * 1000), 10),  # more inside than announced
        (zlib.compress(b"a" * 1000), 5000),  # less
        (b"not zlib at all, not at all", 100),
        (zlib.compress(b"a" * 100) + b"trailing", 100),
    ],
    ids=["more", "less", "garbage", "trailing"],
)
def test_a_packet_that_is_not_what_it_says_is_an_error(payload, original):
    packet = len(payload).to_bytes(3, "little") + b"\x00" + original.to_bytes(3, "little")
    with pytest.raises(CompressedPacketError, match="malformed compressed packet"):
        CompressionLayer(lambda _: None).unwrap(packet + payload)


def test_a_small_packet_cannot_inflate_past_what_it_announces():
    bomb = zlib.compress(bytes(64 << 20))  # 64 MiB of zeros in about 64 KiB
    packet = len(bomb).to_bytes(3, "little") + b"\x00" + (1000).to_bytes(3, "little")
    with pytest.raises(CompressedPacketError):
        CompressionLayer(lambda _: None).unwrap(packet + bomb)
