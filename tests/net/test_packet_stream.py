"""PacketStream as a connection's protocol: framing across reads, flow control, loss, TLS."""

from __future__ import annotations

import asyncio
import functools
import ssl

import pytest

from myguard._fast import load
from myguard.net.packet_stream import PAUSE_READING_AT, ConnectionLost, PacketStream
from myguard.tls import write_self_signed

framing = load("framing")


async def _pair(max_payload: int = 1 << 24) -> tuple[PacketStream, PacketStream, asyncio.Server]:
    """A server-side and a client-side stream connected over loopback TCP."""
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[PacketStream] = loop.create_future()
    server = await loop.create_server(
        lambda: PacketStream(max_payload, accepted.set_result), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    _, client = await loop.create_connection(lambda: PacketStream(max_payload), "127.0.0.1", port)
    return await accepted, client, server


def looped(test):
    """Run an async test on a fresh event loop, failing after 30 s instead of hanging."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        asyncio.run(asyncio.wait_for(test(*args, **kwargs), 30))

    return run


@looped
async def test_packets_cut_at_every_byte_arrive_whole_and_in_order():
    server, client, listener = await _pair()
    payloads = [b"\x03SELECT 1", b"", b"x" * 70000]
    wire = b"".join(framing.build_packets(p, i)[0] for i, p in enumerate(payloads))
    for i in range(len(wire)):
        client.write_raw(wire[i : i + 1])
        if i % 997 == 0:
            await asyncio.sleep(0)  # let some bytes through alone
    got = [await server.read_packet() for _ in payloads]
    assert got == payloads and server.seq == 3
    assert server.peer == "127.0.0.1"
    listener.close()


@looped
async def test_complete_packets_are_read_before_the_loss_is_reported():
    server, client, listener = await _pair()
    client.write_packet(b"first")
    client.write_raw(framing.build_packets(b"cut short", 1)[0][:6])
    client.close()
    assert await server.read_packet() == b"first"
    with pytest.raises(ConnectionLost, match="closed by peer"):
        await server.read_packet()
    with pytest.raises(ConnectionLost):
        server.write_packet(b"late")
    with pytest.raises(ConnectionLost):
        await server.drain()
    listener.close()


@looped
async def test_reading_pauses_while_nobody_reads_and_loses_nothing():
    server, client, listener = await _pair()
    blob = bytes(range(256)) * (24 * PAUSE_READING_AT // 256)  # beyond kernel buffers
    client.write_raw(blob)
    sender = asyncio.ensure_future(client.drain())
    for _ in range(200):
        await asyncio.sleep(0.005)
        if server._reading_paused:
            break
    assert server._reading_paused
    buffered = len(server.buffer)
    await asyncio.sleep(0.05)
    assert len(server.buffer) == buffered  # paused: nothing more is taken in
    assert not sender.done()  # the sender is held back instead
    got = bytearray()
    while len(got) < len(blob):
        got += await server.read_chunk()
    assert bytes(got) == blob
    await sender
    listener.close()


STALLED = 8 << 20  # more than the kernel's socket buffers take


async def _stalled_drain():
    """A client that wrote more than the peer, which stopped reading, has taken: drain waits."""
    server, client, listener = await _pair()
    server.transport.pause_reading()
    client.write_raw(b"z" * STALLED)
    drained = asyncio.ensure_future(client.drain())
    await asyncio.sleep(0.1)
    assert not drained.done()
    return server, drained, listener


@looped
async def test_drain_waits_until_the_peer_reads():
    server, drained, listener = await _stalled_drain()
    server.transport.resume_reading()
    got = 0
    while got < STALLED:
        got += len(await server.read_chunk())
    await drained
    listener.close()


@looped
async def test_drain_reports_a_peer_that_vanished_while_waiting():
    server, drained, listener = await _stalled_drain()
    server.transport.abort()
    with pytest.raises(ConnectionLost):
        await drained
    listener.close()


@looped
async def test_wait_closed_tells_a_close_from_a_pipelined_packet():
    server, client, listener = await _pair()
    watcher = asyncio.ensure_future(server.wait_closed())
    client.write_packet(b"next command")
    assert await watcher is False
    assert await server.read_packet() == b"next command"  # kept for the next read
    client.close()
    assert await server.wait_closed() is True
    listener.close()


@pytest.fixture(scope="module")
def tls_contexts(tmp_path_factory):
    base = tmp_path_factory.mktemp("tls")
    cert, key = base / "c.pem", base / "k.pem"
    write_self_signed(cert, key)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(cert)
    client.check_hostname = False
    return server, client


@looped
async def test_tls_upgrade_takes_the_hello_sent_with_the_request(tls_contexts):
    server_ctx, client_ctx = tls_contexts

    server, client, listener = await _pair()
    # As MySQL clients do: the SSLRequest and the ClientHello leave back to back.
    client.write_packet(b"SSLRequest")
    upgrade = asyncio.ensure_future(client.start_tls(client_ctx, server_side=False))
    await asyncio.sleep(0.05)
    assert len(server.buffer) > 14  # the request and the start of the hello
    assert await server.read_packet() == b"SSLRequest"
    await server.start_tls(server_ctx, server_side=True)
    await upgrade
    assert server.tls and client.tls and server.tls_version.startswith("TLS")
    big = bytes(range(256)) * 4096
    client.write_packet(big)
    assert await server.read_packet() == big
    server.write_packet(b"over TLS")
    assert await client.read_packet() == b"over TLS"
    listener.close()


@looped
async def test_tls_handshake_with_a_peer_that_speaks_no_tls_fails_cleanly(tls_contexts):
    server_ctx, _ = tls_contexts

    server, client, listener = await _pair()
    client.write_raw(b"\x16\x03\x01\x00\x05hello, not really TLS")
    with pytest.raises(ConnectionLost, match="TLS handshake failed"):
        await server.start_tls(server_ctx, server_side=True)
    listener.close()
