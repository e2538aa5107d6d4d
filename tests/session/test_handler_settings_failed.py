"""``StatementHandler.settings_failed``: the backend refused settings myguard answered
earlier and sent in front of a command that then ran without them; the session ends with
the server's error, said as such (no sockets)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from myguard.protocol.errors import MySQLError
from myguard.session.handler import StatementHandler

ERR = b"\x1e\x00\x00\x01" + b"\xff\x5b\x04#42000Unknown character set"


class Core:
    def __init__(self) -> None:
        self.detached = False

    def detach(self) -> None:
        self.detached = True


def test_the_session_ends_with_the_servers_error():
    loop = asyncio.new_event_loop()
    try:
        client = SimpleNamespace(seq=0)
        session = SimpleNamespace(id=7, client=client, end_reason=None)
        handler = StatementHandler(session)  # type: ignore[arg-type]
        handler.core = Core()
        asyncio.set_event_loop(loop)
        waiter = loop.run_until_complete(_wait_for(handler))
    finally:
        loop.close()
        asyncio.set_event_loop(None)
    with pytest.raises(MySQLError) as err:
        waiter.result()
    exc = err.value
    assert (exc.code, exc.sqlstate, exc.fatal) == (1115, "42000", True)
    assert "Unknown character set" in exc.message and "session is closed" in exc.message
    assert handler.core.detached and client.seq == 1
    assert session.end_reason == "deferred settings refused: error 1115"


async def _wait_for(handler: StatementHandler):
    waiter = handler.wait()
    handler.settings_failed(ERR)
    return waiter
