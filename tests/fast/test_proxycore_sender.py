"""The proxy core's writes to a socket (``proxycore.Sender`` and its twin): straight to the
socket while the transport holds nothing unsent, through the transport once the socket is
full, in order either way, and never after the transport began closing (its descriptor
may already belong to another connection)."""

from __future__ import annotations

import asyncio
import importlib
import socket

import pytest
import uvloop
from hypothesis import given, settings
from hypothesis import strategies as st

from myguard._fast import twin

compiled = importlib.import_module("myguard._fast.proxycore")
python = twin("proxycore")
IMPLS = pytest.mark.parametrize("impl", [compiled, python], ids=["compiled", "twin"])


async def connected() -> tuple[asyncio.Transport, socket.socket]:
    """A uvloop transport over one end of a socket pair, and the other end."""
    near, far = socket.socketpair()
    transport, _ = await asyncio.get_running_loop().connect_accepted_socket(asyncio.Protocol, near)
    far.setblocking(False)
    return transport, far


async def read_all(far: socket.socket, size: int) -> bytes:
    got = bytearray()
    while len(got) < size:
        try:
            got += far.recv(1 << 20)
        except BlockingIOError:
            await asyncio.sleep(0.001)
    return bytes(got)


@IMPLS
def test_a_write_to_an_idle_socket_goes_straight_to_it(impl):
    async def main() -> None:
        transport, far = await connected()
        sender = impl.Sender(transport, None)
        assert sender.fd == transport.get_extra_info("socket").fileno()
        sender.write(b"hello")
        assert far.recv(100) == b"hello"  # no loop iteration in between
        assert transport.get_write_buffer_size() == 0
        transport.close()
        far.close()

    uvloop.run(main())


@IMPLS
@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(1, 400_000), min_size=1, max_size=30))
def test_bytes_arrive_whole_and_in_order_when_the_socket_fills(impl, sizes):
    async def main() -> None:
        transport, far = await connected()
        sender = impl.Sender(transport, None)
        chunks = [bytes([n % 251]) * size for n, size in enumerate(sizes)]
        for n, chunk in enumerate(chunks):
            sender.write(chunk)
            if n % 7 == 6:
                await asyncio.sleep(0)  # the transport may drain meanwhile
        expected = b"".join(chunks)
        assert await read_all(far, len(expected)) == expected
        transport.close()
        far.close()

    uvloop.run(main())


@IMPLS
def test_nothing_is_written_once_the_transport_is_closing(impl):
    async def main() -> None:
        transport, far = await connected()
        sender = impl.Sender(transport, None)
        fd = sender.fd
        transport.close()
        await asyncio.sleep(0.01)  # the loop closes the descriptor
        # Its number goes to the next connection opened.
        pairs = [socket.socketpair() for _ in range(4)]
        [(near, other)] = [p for p in pairs if p[0].fileno() == fd]
        other.setblocking(False)
        assert sender.write(b"not for you") is False  # the core takes the side as gone
        await asyncio.sleep(0.01)
        with pytest.raises(BlockingIOError):
            other.recv(100)
        for s in (*(s for p in pairs for s in p), far):
            s.close()

    uvloop.run(main())


@IMPLS
def test_transports_without_a_socket_and_tls_go_through_their_writer(impl):
    class Writer:
        def __init__(self) -> None:
            self.written = b""

        def write(self, data: bytes) -> None:
            self.written += data

        def is_closing(self) -> bool:
            return False

    plain = Writer()
    assert impl.Sender(plain, None).write(b"a")  # no get_extra_info: a test double, a pipe
    tls = Writer()
    assert impl.Sender(plain, tls).write(b"b")
    assert (plain.written, tls.written) == (b"a", b"b")
