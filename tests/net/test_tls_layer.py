"""TlsLayer over memory BIOs: a peer's close_notify ends the connection (decrypt raises, as
at EOF) and is answered with myguard's own close_notify."""

from __future__ import annotations

import ssl

import pytest

from myguard.net.tls_layer import TlsLayer
from myguard.tls import write_self_signed


@pytest.fixture()
def pair(tmp_path):
    write_self_signed(tmp_path / "c.pem", tmp_path / "k.pem")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    client_ctx = ssl.create_default_context()
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    to_client: list[bytes] = []
    server = TlsLayer(server_ctx, to_client.append, server_side=True)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(incoming, outgoing)

    def deliver() -> None:
        for data in to_client:
            incoming.write(data)
        to_client.clear()

    for _ in range(10):  # the handshake, one flight at a time
        try:
            client.do_handshake()
            break
        except ssl.SSLWantReadError:
            pass
        server._incoming.write(outgoing.read())
        try:
            server.sslobj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        server._flush()
        deliver()
    return server, client, outgoing, deliver


def test_data_then_close_notify(pair):
    server, client, outgoing, deliver = pair
    client.write(b"hello")
    assert server.unwrap(outgoing.read()) == b"hello"
    deliver()
    with pytest.raises(ssl.SSLWantReadError):
        client.unwrap()  # close_notify sent; the client waits for the server's
    with pytest.raises(ssl.SSLZeroReturnError):
        server.unwrap(outgoing.read())
    deliver()
    client.unwrap()  # the server's close_notify arrived: a clean shutdown
