"""One client connection: login, then the proxy core relays its commands; the session's
task runs what needs I/O (login, commands decided with I/O, COM_CHANGE_USER) and owns the
session from accept to close."""

from __future__ import annotations

import asyncio
import logging
import time

from myguard import metrics
from myguard._fast import load
from myguard.backend.connect import INTERNAL_CAPABILITIES, connect
from myguard.config import BackendConfig
from myguard.context import ServerContext
from myguard.logs import event
from myguard.net.packet_stream import ConnectionLost, PacketStream
from myguard.protocol.constants import UTF8MB4_GENERAL_CI, Command
from myguard.protocol.errors import MySQLError, ProtocolError
from myguard.protocol.generic_response import err_packet
from myguard.session.handler import COMMAND_NAMES, Decided, StatementHandler
from myguard.session.login import LoginPhase, scramble
from myguard.session.slow_path import SlowPath
from myguard.session.state import SessionState

_core = load("proxycore")
# Commands that reset the backend session: settings deferred before them are dropped.
_RESETS = frozenset({Command.COM_RESET_CONNECTION, Command.COM_CHANGE_USER})


class Session(LoginPhase, SessionState):
    """A client session. ``run()`` owns it from accept to close."""

    def __init__(
        self, ctx: ServerContext, backend_config: BackendConfig, client: PacketStream
    ) -> None:
        SessionState.__init__(self, ctx, backend_config, client)
        self.scramble = scramble()
        self.task: asyncio.Task[None] | None = None
        # The session ended between commands (COM_QUIT, or the client left while idle):
        # its backend connection can be reset and reused.
        self._ended_cleanly = False
        # ... and it sent the connection nothing: no reset needed (BackendPool.release).
        self._untouched = False

    # -- lifecycle -------------------------------------------------------------------

    async def run(self) -> None:
        self.task = asyncio.current_task()
        name = self.backend_config.name
        metrics.session_opened(name, 1)
        started = time.monotonic()
        try:
            try:
                # asyncio.timeout, unlike wait_for, runs _login without a task of its own
                async with asyncio.timeout(self.ctx.config.handshake_timeout):
                    await self._login()
            except TimeoutError:
                self._fail(ProtocolError("Bad handshake: handshake timed out"), "handshake_timeout")
                return
            self.ctx.registry.add(self)
            await self._serve()
        except MySQLError as exc:
            self.end_reason = f"error {exc.code}"
            self._fail(exc, "protocol" if isinstance(exc, ProtocolError) else "error")
        except ConnectionLost as exc:
            # Lost while the session task had the sockets (login, a command needing I/O).
            lost = self.backend.stream.lost if self.backend is not None else None
            if lost is not None and self.client.lost is None:
                self.end_reason = f"backend lost: {lost}"
                self._send_error(self.backend_lost(lost))
            else:
                self.end_reason = f"client gone: {exc}"
                event(
                    logging.INFO,
                    "client_gone",
                    session=self.id,
                    user=self.user or None,
                    detail=str(exc),
                )
        except asyncio.CancelledError:
            self.end_reason = self.end_reason or "closed by myguard"
        except Exception as exc:  # a bug must cost one session, never the proxy
            metrics.ERRORS.labels("internal").inc()
            self.end_reason = "internal error"
            logging.getLogger("myguard").exception("session %s failed", self.id)
            self._send_error(
                MySQLError(4692, "HY000", f"myguard internal error: {type(exc).__name__}")
            )
        finally:
            self.ctx.registry.remove(self.id)
            metrics.session_opened(name, -1)
            backend, self.backend = self.backend, None
            if backend is not None:
                self.pool.release(
                    backend,
                    reusable=self._ended_cleanly and not self.busy,
                    untouched=self._untouched,
                )
            self.client.close()
            reason = self.end_reason or "quit"
            if self.identity is not None:
                self.trail.session_end(reason, round(time.monotonic() - started, 6))
            # One line per session end (the reason says how: quit, client gone, error...).
            event(
                logging.INFO, "session_end", session=self.id, user=self.user or None, reason=reason
            )

    def _fail(self, exc: MySQLError, kind: str) -> None:
        metrics.ERRORS.labels(kind).inc()
        event(
            logging.WARNING,
            "session_error",
            session=self.id,
            user=self.user or None,
            code=exc.code,
            error=exc.message,
            reason=getattr(exc, "reason", None),
        )
        self._send_error(exc)

    def _send_error(self, exc: MySQLError) -> None:
        try:
            self.client.write_packet(err_packet(exc.code, exc.sqlstate, exc.message))
        except Exception:  # the socket may already be gone; the error is logged
            return

    async def kill(self, query_only: bool) -> None:
        """KILL from another session (or this one): stop the running statement or the session."""
        if self.held_request is not None:
            # The statement has not reached the backend: withdrawing the request stops it.
            await self.ctx.approvals.cancel(self.held_request, "KILL QUERY of the held session")
            if query_only:
                return
        backend = self.backend
        if backend is not None:
            # Never back to the pool: a KILL that reaches the server late must not find the
            # next session on this thread.
            backend.tainted = True
            await self._kill_backend_thread(backend.thread_id, query_only)
        if not query_only and self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()

    async def _kill_backend_thread(self, thread_id: int, query_only: bool) -> None:
        conn = await connect(
            self.backend_config,
            self._account(),
            client_capabilities=INTERNAL_CAPABILITIES,
            charset=UTF8MB4_GENERAL_CI,
            database=None,
            attributes={"program_name": "myguard", "myguard_purpose": "kill"},
            max_packet=1 << 20,
        )
        try:
            word = "QUERY" if query_only else "CONNECTION"
            conn.stream.seq = 0
            conn.stream.write_packet(
                bytes((Command.COM_QUERY,)) + f"KILL {word} {thread_id}".encode()
            )
            await conn.stream.drain()
            await conn.stream.read_packet()
        finally:
            conn.close()

    # -- after login -------------------------------------------------------------------

    async def _serve(self) -> None:
        """Hand the sockets to the proxy core; run here only what needs I/O to decide."""
        handler = StatementHandler(self)
        slow = SlowPath(self, handler)
        core = None
        forward: tuple[bytes, Decided] | None = None
        checkout: list[bytes] = []  # what the checkout deferred, while nothing else went
        while True:
            if core is None or core.scanner is not self.scanner:
                core = handler.core = _core.ProxyCore(
                    handler, self.scanner, self.client.buffer.max_payload, metrics.core_counts
                )
            if self.backend.deferred:  # the checkout's (BackendPool._prepare)
                checkout = self.backend.deferred
                handler.defer_commands(checkout)
                self.backend.deferred = []
            waiter = handler.wait()
            core.attach(self.client, self.backend.stream)
            if forward is None:
                core.serve()
            else:
                handler.forward(*forward)
            work = await waiter
            if work is None:
                if not self.busy:
                    # Between commands: take the backend socket back from the core for reuse.
                    core.detach()
                    self._ended_cleanly = True
                    # Never sent: the core wrote nothing and still holds them unsent.
                    self._untouched = (
                        bool(checkout and core.deferred)
                        and not core.sent
                        and core.deferred[0] is checkout[0]
                    )
                return
            settings = core.take_deferred()
            if settings and work[0][0] not in _RESETS:  # a reset would drop them anyway
                await self._send_settings(settings)
            forward = await self._run_command(slow, *work)
            if self.ctx.draining and forward is None:
                return

    async def _send_settings(self, payloads: list[bytes]) -> None:
        """Commands the core did not send (it sends them in front of the next command it
        forwards): the checkout's, settings the handler answered; before the session
        task's own I/O."""
        try:
            await self.pool.apply_deferred(self.backend, payloads)
        except MySQLError as exc:
            self.client.seq = 1
            self.end_reason = f"deferred settings refused: error {exc.code}"
            raise

    async def _run_command(
        self, slow: SlowPath, payload: bytes, decided: Decided | None
    ) -> tuple[bytes, Decided] | None:
        """A command the core handed over: answered here, or decided for the core to send."""
        self.client.seq = 1
        command = payload[0]
        started = time.perf_counter()
        outcome = "ok"
        try:
            if command == Command.COM_CHANGE_USER:
                await self._change_user(payload)
            else:
                forward = await slow.run(payload, decided)
                if forward is not None:
                    return payload, forward  # the handler counts it when its response ends
        except MySQLError as exc:
            outcome = "error"
            if exc.fatal:
                raise
            self.client.write_packet(err_packet(exc.code, exc.sqlstate, exc.message))
            await self.client.drain()
        self.busy = False
        name = COMMAND_NAMES.get(command, "unknown")
        metrics.statement_done(name, outcome, time.perf_counter() - started)
        return None

    def _send_backend(self, payload: bytes) -> None:
        stream = self.backend.stream
        stream.seq = 0
        stream.write_packet(payload)
        metrics.tally.bytes_to_backend += len(payload) + 4
