"""python -m benchmarks.e2e.relay LISTEN_PORT UPSTREAM_PORT [WORKERS]: the floor of a uvloop proxy.

A TCP byte relay with no MySQL knowledge: asyncio Protocols on uvloop, each side's
``data_received`` writes straight into the other side's transport; when one transport's write
buffer fills (``pause_writing``) the other side stops reading until it drains. WORKERS processes
(default 2, like myguard) each serve their own SO_REUSEPORT socket on the same port. Whatever a
uvloop-based MySQL proxy does per statement costs at least this much; the benchmark runs it as
the ``relay`` target beside HAProxy and myguard. Binds 127.0.0.1 only; no timeouts, no limits.
uvloop already sets TCP_NODELAY on both connections.

The supervisor binds every worker's socket before forking, so the port accepts connections for
all workers as soon as it is reachable, and on SIGTERM/SIGINT it stops the workers and exits.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import traceback

import uvloop

HOST = "127.0.0.1"


class Half(asyncio.Protocol):
    """One connection of a pair; ``other`` is the protocol of the opposite connection."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.other: Half | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.other.transport.write(data)  # type: ignore[union-attr]

    # Backpressure: our write buffer is full, so stop reading what would be written into it.
    def pause_writing(self) -> None:
        peer = self.other.transport if self.other else None
        if peer is not None and not peer.is_closing():
            peer.pause_reading()

    def resume_writing(self) -> None:
        peer = self.other.transport if self.other else None
        if peer is not None and not peer.is_closing():
            peer.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        peer = self.other.transport if self.other else None
        if peer is not None:
            peer.close()  # flushes what is buffered for the peer, then closes


class ClientHalf(Half):
    """The accepted client connection: opens its upstream connection and links the two.

    Bytes that arrive before the upstream connection is made are kept and sent once it is (a
    MySQL server speaks first, so normally there are none). Pausing reading in
    ``connection_made`` does not hold on uvloop: it starts reading after that callback.
    """

    def __init__(self, upstream_port: int) -> None:
        super().__init__()
        self.upstream_port = upstream_port
        self.early: list[bytes] | None = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.other = Half()
        self.other.other = self
        asyncio.get_running_loop().create_task(self._connect())

    def data_received(self, data: bytes) -> None:
        if self.early is None:
            self.other.transport.write(data)  # type: ignore[union-attr]
        else:
            self.early.append(data)

    async def _connect(self) -> None:
        upstream = self.other
        try:
            await asyncio.get_running_loop().create_connection(
                lambda: upstream, HOST, self.upstream_port
            )
        except OSError:
            self.transport.close()  # type: ignore[union-attr]
            return
        if self.transport.is_closing():  # type: ignore[union-attr]  # the client left meanwhile
            upstream.transport.close()  # type: ignore[union-attr]
            return
        early, self.early = self.early, None
        for data in early or ():
            upstream.transport.write(data)  # type: ignore[union-attr]


def listening_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((HOST, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def serve(sock: socket.socket, upstream_port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: ClientHalf(upstream_port), sock=sock)
    async with server:
        await server.serve_forever()


def worker(sock: socket.socket, upstream_port: int) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        uvloop.run(serve(sock, upstream_port))
    except BaseException:
        traceback.print_exc()
        os._exit(1)
    os._exit(0)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__.split("\n", 1)[0], file=sys.stderr)
        return 2
    listen, upstream = int(argv[0]), int(argv[1])
    workers = int(argv[2]) if len(argv) > 2 else 2
    socks = [listening_socket(listen) for _ in range(workers)]
    pids: list[int] = []
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    # Before forking, so a SIGTERM that arrives early still reaches the workers (which reset it).
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for sock in socks:
        pid = os.fork()
        if pid == 0:
            for other in socks:
                if other is not sock:
                    other.close()
            worker(sock, upstream)
        pids.append(pid)
    for sock in socks:
        sock.close()
    if stopping:
        stop(signal.SIGTERM, None)
    # A worker that dies takes the relay down: a run must not go on with one worker.
    failed = False
    for _ in pids:
        os.wait()
        failed = failed or not stopping
        stop(signal.SIGTERM, None)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
