import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from myguard._fast import twin
from myguard.protocol.errors import ProtocolError

framing = twin("framing")


def test_build_and_cut_small_packet():
    data, seq = framing.build_packets(b"\x03SELECT 1", 0)
    assert data == b"\x09\x00\x00\x00\x03SELECT 1"
    assert seq == 1
    buf = framing.PacketBuffer(1024)
    buf.feed(data[:5])
    assert buf.next_packet(0) is None
    buf.feed(data[5:])
    assert buf.next_packet(0) == (b"\x03SELECT 1", 1)
    assert len(buf) == 0


def test_payload_of_exactly_16mib_minus_one_is_followed_by_empty_packet():
    payload = b"x" * 0xFFFFFF
    data, seq = framing.build_packets(payload, 7)
    assert seq == 9
    assert data[-4:] == b"\x00\x00\x00\x08"
    buf = framing.PacketBuffer(64 << 20)
    buf.feed(data)
    assert buf.next_packet(7) == (payload, 9)


def test_large_payload_is_split_and_joined():
    payload = bytes(range(256)) * (20 * 4096)  # 20 MiB
    data, seq = framing.build_packets(payload, 0)
    assert seq == 2
    buf = framing.PacketBuffer(64 << 20)
    for i in range(0, len(data), 1 << 20):
        buf.feed(data[i : i + (1 << 20)])
    assert buf.next_packet(0) == (payload, 2)


def test_wrong_sequence_id_is_refused():
    data, _ = framing.build_packets(b"\x0e", 3)
    buf = framing.PacketBuffer(1024)
    buf.feed(data)
    with pytest.raises(ProtocolError) as err:
        buf.next_packet(0)
    assert err.value.code == 1156
    assert "out of order" in err.value.message


def test_packet_over_max_allowed_is_refused_from_its_header():
    buf = framing.PacketBuffer(1000)
    buf.feed(b"\xe9\x03\x00\x00")  # header announcing 1001 bytes; body not needed
    with pytest.raises(ProtocolError) as err:
        buf.next_packet(0)
    assert err.value.code == 1153


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.binary(max_size=300), min_size=1, max_size=8),
    st.integers(0, 255),
    st.integers(1, 64),
)
def test_any_packets_in_any_chunking_come_back(payloads, seq, chunk):
    stream = b""
    seqs = []
    s = seq
    for p in payloads:
        seqs.append(s)
        data, s = framing.build_packets(p, s)
        stream += data
    buf = framing.PacketBuffer(1 << 20)
    got = []
    pos = 0
    s = seq
    while pos < len(stream) or len(buf):
        buf.feed(stream[pos : pos + chunk])
        pos += chunk
        while (item := buf.next_packet(s)) is not None:
            payload, s = item
            got.append(payload)
    assert got == payloads
