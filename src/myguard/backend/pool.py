"""Pooled backend connections: logged in with the service account once, reused by one
client session after another.

Session pooling: a connection belongs to one client session from its login to its end, so
a client sees exactly the semantics of a fresh connection (transactions, temporary tables,
locks, prepared statements and cursors are never shared). When the session ends cleanly
(COM_QUIT, or the client went away between statements) the connection gets
COM_RESET_CONNECTION at once — the server drops the transaction, temporary tables, user
variables, prepared statements, locks and session variables right then — and goes back to
the pool; the reset's answer is read when the connection is next used. A server without
COM_RESET_CONNECTION (MySQL < 5.7, MariaDB < 10.2) gets COM_CHANGE_USER instead.

Checkout, one round trip pipelined on a reused connection: the pending reset's OK,
COM_RESET_CONNECTION again (session variables start from the global values, and those may
have changed while the connection was idle: a new session sees today's, as on a fresh
connection), COM_INIT_DB when the client asked for a database (not when the connection has
that one selected, as the server confirmed less than ``_DEFER_WITHIN`` ago: the reset keeps
it, and the sessions that ran on it since did not change it), and ``SET [NAMES ...,]
@myguard_user =
..., @myguard_session = ...`` — the client's character set and collation, and who the
session belongs to, where the server can show it. That round trip is also the health check:
a connection found broken (backend restart, ``wait_timeout``) is closed and the next one
tried, then a fresh one, before the client sees an error.

Buckets: a connection keeps the capabilities it logged in with (they decide the format of
every response, relayed byte for byte), so idle connections are kept per (service account,
capabilities). COM_RESET_CONNECTION keeps the current database: a connection that ever had
one selected serves only sessions that select one themselves (with COM_INIT_DB).

A pool is per worker process and per backend. ``max`` counts connections open, opening and
in use; a login finding all ``max`` in use waits up to ``wait_timeout`` and is then refused
with an error naming the limit. The maintenance task keeps ``min_idle`` connections ready
for the buckets in use, closes those idle for ``idle_timeout`` (beyond ``min_idle``) or
older than ``max_lifetime``, pings those idle for ``ping_after``, and brings the pool back
when the backend returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from myguard.backend.connect import (
    BackendConnection,
    BackendUnavailable,
    backend_capabilities,
    change_user_packet,
    connect,
    finish_auth,
    probe,
)
from myguard.backend.query import text_query
from myguard.config import BackendAccount, BackendConfig
from myguard.logs import event
from myguard.net.packet_stream import ConnectionLost
from myguard.protocol.charsets import ClientCharsets, client_codec
from myguard.protocol.constants import (
    ERR_HEADER,
    PROXY_CAPABILITIES,
    UTF8MB4_GENERAL_CI,
    Capability,
    Command,
)
from myguard.protocol.errors import ER_CON_COUNT_ERROR, MySQLError, ProtocolError
from myguard.protocol.generic_response import parse_err, parse_ok
from myguard.protocol.handshake import Greeting

ER_UNKNOWN_COM_ERROR = 1047
# Before the backend's max_connections is known (it has not answered yet).
_PROVISIONAL_LIMIT = 1000
_MAINTAIN_EVERY = 1.0

Key = tuple[str, int]


class PoolExhausted(MySQLError):
    """Every connection the pool may have is in use and none came back in time."""

    def __init__(self, backend: str, limit: int, waited: float) -> None:
        super().__init__(
            ER_CON_COUNT_ERROR,
            "08004",
            f"myguard: too many connections to backend '{backend}': all {limit} connections"
            f" of its pool are in use ([backends.pool] max = {limit} per worker process);"
            f" waited {waited:g} s",
            fatal=True,
        )
        self.limit = limit


@dataclass(slots=True)
class PoolCounters:
    """Since start; the metrics flush turns them into Prometheus counters."""

    opened: int = 0
    closed: int = 0
    checkouts: int = 0
    reused: int = 0
    resets: int = 0
    untouched: int = 0
    waits: int = 0
    failures: dict[str, int] = field(default_factory=dict)

    def fail(self, reason: str) -> None:
        self.failures[reason] = self.failures.get(reason, 0) + 1


@dataclass(frozen=True, slots=True)
class SessionIdentity:
    """Who a checked-out connection serves, as the backend is told."""

    user: str
    session_id: int
    source: str = ""


class BackendPool:
    """The pool of one backend in one worker process."""

    def __init__(
        self,
        config: BackendConfig,
        *,
        workers: int,
        max_packet: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.settings = config.pool
        self.enabled = config.pool.enabled
        self.workers = max(1, workers)
        self.max_packet = max_packet
        self._clock = clock
        self.limit = config.pool.max or _PROVISIONAL_LIMIT
        wait = config.pool.wait_timeout
        self.wait_timeout = wait if wait >= 0 else 5.0
        self._limit_known = False
        self._idle: dict[Key, list[BackendConnection]] = {}
        self.total = 0  # open (idle or in use) and being opened
        self.in_use = 0
        self.counters = PoolCounters()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._keys: dict[Key, float] = {}  # bucket -> last checkout (buckets kept warm)
        self._accounts: dict[str, BackendAccount] = {}
        self._collations: dict[int, str] = {}  # id -> "SET NAMES" clause
        self._charsets: dict[int, str] = {}  # id -> its character set, as the server names it
        # What SET NAMES the session may answer itself (session/deferred_settings.py).
        self.client_charsets: ClientCharsets | None = None
        self._reset_command = Command.COM_RESET_CONNECTION
        self._greeting: Greeting | None = None
        self._default_key: Key | None = None
        self._task: asyncio.Task[None] | None = None
        self._backend_down = False
        self.closed = False

    # -- what the metrics read ---------------------------------------------------------------

    @property
    def idle(self) -> int:
        return sum(len(stack) for stack in self._idle.values())

    @property
    def greeting(self) -> Greeting | None:
        return self._greeting

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    # -- start and stop --------------------------------------------------------------------

    def start(self) -> None:
        """Warm up and keep the pool in shape in the background (no-op when disabled)."""
        if self.enabled and self._task is None:
            account = self.config.account
            self._accounts[account.user] = account
            self._task = asyncio.get_running_loop().create_task(self._maintain())

    async def close(self) -> None:
        self.closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for stack in self._idle.values():
            for conn in stack:
                self._close(conn)
        self._idle.clear()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- checkout -------------------------------------------------------------------------

    async def checkout(
        self,
        account: BackendAccount,
        *,
        client_capabilities: int,
        collation: int,
        database: str | None,
        identity: SessionIdentity,
        attributes: dict[str, str],
        defer: bool = False,
    ) -> BackendConnection:
        """A connection for a session, logged in as ``account``, with the client's
        database, character set and collation, and the session's identity set. With
        ``defer``, commands that need no answer before the session's first command (they
        cannot fail) are left in ``conn.deferred`` for the session to send in front of it.

        Raises BackendUnavailable (4690) when the backend cannot be reached, PoolExhausted
        when ``max`` connections stay in use for ``wait_timeout``, or the server's error for
        the database (as a direct login would get it)."""
        if not self.enabled:
            conn = await self._connect(
                account, client_capabilities, collation, database, attributes
            )
            if self.client_charsets is None:
                try:
                    await self._learn_charsets(conn)
                except BaseException:
                    conn.close()
                    raise
            return conn
        self._accounts.setdefault(account.user, account)
        greeting = self._greeting
        if greeting is None:
            greeting = self._greeting = await probe(self.config)
        key = (account.user, backend_capabilities(self.config, client_capabilities, greeting))
        self.counters.checkouts += 1
        self._keys[key] = self._clock()
        started = None
        fresh_only = False  # an unknown collation id: a fresh login shows what it means
        while True:
            conn = None if fresh_only else self._take_idle(key, database)
            fresh = False
            if conn is None:
                if self.total >= self.limit and not self._evict_one():
                    if started is None:
                        started = self._clock()
                        self.counters.waits += 1
                    await self._wait(started)
                    continue
                self.total += 1
                try:
                    conn = await self._connect(
                        account,
                        client_capabilities,
                        collation,
                        database,
                        {"program_name": "myguard", "myguard_pool": self.config.name},
                    )
                except BaseException as exc:
                    self.total -= 1
                    if isinstance(exc, BackendUnavailable):
                        self.counters.fail("connect")
                    self._notify()
                    raise
                self.counters.opened += 1
                self._greeting = conn.greeting
                fresh = True
            else:
                self.counters.reused += 1
            self.in_use += 1
            conn.uses += 1
            try:
                if fresh and not self._limit_known:
                    await self._learn_limit(conn)
                if fresh and self.client_charsets is None:
                    await self._learn_charsets(conn)
                if fresh and collation not in self._collations:
                    # once per collation id: what the server made of it at this login
                    await self._learn_collation(conn, collation)
                await self._prepare(conn, collation, database, identity, fresh, defer)
            except _UnknownCollation:
                self.release(conn, reusable=True)
                fresh_only = True
                continue
            except (ConnectionLost, ProtocolError, TimeoutError, BackendUnavailable) as exc:
                self.in_use -= 1
                self._drop(conn, "broken")
                if isinstance(exc, TimeoutError):
                    # No answer at all (not a closed socket): the others idle as long are
                    # likely dead too; fresh connections are tried instead of each in turn.
                    self._drop_idle("broken")
                event(
                    logging.INFO,
                    "pool_connection_broken",
                    backend=self.config.name,
                    thread=conn.thread_id,
                    detail=str(exc) or type(exc).__name__,
                )
                if fresh:
                    raise BackendUnavailable(
                        self.config.name, f"new connection failed: {exc}"
                    ) from None
                continue
            except MySQLError:
                # The client's own error (an unknown database, no access to it): the
                # connection is fine and goes back; the client gets what a direct login would.
                self.release(conn, reusable=True)
                raise
            except BaseException:
                self.in_use -= 1
                self._drop(conn, "cancelled", quit=False)
                raise
            return conn

    def _take_idle(self, key: Key, database: str | None) -> BackendConnection | None:
        stack = self._idle.get(key)
        if not stack:
            return None
        now = self._clock()
        lifetime = self.settings.max_lifetime
        fallback = -1
        # Most recently returned first: its server thread and buffers are warm.
        for i in range(len(stack) - 1, -1, -1):
            conn = stack[i]
            if not conn.usable or now - conn.created > lifetime:
                del stack[i]
                self._drop(conn, "broken" if not conn.usable else None)
                fallback = -1 if fallback >= i else fallback
                continue
            if database is None and conn.had_database:
                # Selects no database: only a change of user can take one away.
                if fallback < 0:
                    fallback = i
                continue
            del stack[i]
            return conn
        if fallback >= 0 and fallback < len(stack):
            return stack.pop(fallback)
        return None

    def _drop_idle(self, reason: str) -> None:
        for stack in self._idle.values():
            for conn in stack:
                self._drop(conn, reason)
        self._idle.clear()

    def _evict_one(self) -> bool:
        """Close the longest-idle connection of any bucket to make room; False if none."""
        oldest: tuple[float, Key, int] | None = None
        for key, stack in self._idle.items():
            for i, conn in enumerate(stack):
                if oldest is None or conn.idle_since < oldest[0]:
                    oldest = (conn.idle_since, key, i)
        if oldest is None:
            return False
        conn = self._idle[oldest[1]].pop(oldest[2])
        self._drop(conn, None)
        return True

    async def _wait(self, started: float) -> None:
        remaining = self.wait_timeout - (self._clock() - started)
        if remaining <= 0 or self.closed:
            self.counters.fail("exhausted")
            raise PoolExhausted(self.config.name, self.limit, self.wait_timeout)
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(remaining):
                await waiter
        except TimeoutError:
            self.counters.fail("exhausted")
            raise PoolExhausted(self.config.name, self.limit, self.wait_timeout) from None
        finally:
            if not waiter.done():
                waiter.cancel()
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def _notify(self) -> None:
        """A connection came back or room was made: the longest waiter tries again."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _connect(
        self,
        account: BackendAccount,
        client_capabilities: int,
        collation: int,
        database: str | None,
        attributes: dict[str, str],
    ) -> BackendConnection:
        conn = await connect(
            self.config,
            account,
            client_capabilities=client_capabilities,
            charset=collation,
            database=database,
            attributes=attributes,
            max_packet=self.max_packet,
        )
        conn.alive_at = self._clock()
        return conn

    async def _learn_limit(self, conn: BackendConnection) -> None:
        """``max`` from the backend's max_connections, shared by the workers, less headroom."""
        deprecate_eof = bool(conn.capabilities & Capability.CLIENT_DEPRECATE_EOF)
        async with asyncio.timeout(self.config.connect_timeout):
            _, rows = await text_query(
                conn.stream, "SELECT @@max_connections", deprecate_eof=deprecate_eof
            )
        server_max = int(rows[0][0] or 0)
        fair = max(1, (server_max - self.settings.headroom) // self.workers)
        configured = self.settings.max
        self.limit = min(configured, fair) if configured else fair
        self._limit_known = True
        if configured and configured > fair:
            event(
                logging.WARNING,
                "pool_max_lowered",
                backend=self.config.name,
                configured=configured,
                used=fair,
                server_max_connections=server_max,
                headroom=self.settings.headroom,
                workers=self.workers,
            )
        else:
            event(logging.INFO, "pool_ready", backend=self.config.name, max=self.limit)

    async def reset(
        self,
        conn: BackendConnection,
        collation: int,
        database: str | None,
        identity: SessionIdentity,
    ) -> None:
        """A session's COM_RESET_CONNECTION on its connection: reset, then set as at
        checkout (the client's collation, its database, the identity), which is what a
        reset leaves of a direct connection: the character set of the login, the database
        kept. Forwarded as it is, the reset would give the session the character set of the
        pool's own login and drop the identity. Raises BackendUnavailable when the
        connection fails (it is not reused), or the server's error for the database."""
        try:
            await self._prepare(conn, collation, database, identity, fresh=False)
        except (ConnectionLost, ProtocolError, TimeoutError, BackendUnavailable) as exc:
            conn.tainted = True
            raise BackendUnavailable(self.config.name, f"reset failed: {exc}") from None

    async def _prepare(
        self,
        conn: BackendConnection,
        collation: int,
        database: str | None,
        identity: SessionIdentity,
        fresh: bool,
        defer: bool = False,
    ) -> None:
        """One pipelined round trip: the pending reset's answer, the SET (character set,
        identity), then COM_INIT_DB, whose name the server reads in the client's set.

        With ``defer``, no round trip when none of them can fail: a connection just
        opened, or one whose server answered within ``_DEFER_WITHIN`` (alive), a character
        set already looked up, and no COM_INIT_DB (a database could be gone: the command
        sent behind it would then run in the database the connection had); they wait in
        ``conn.deferred``."""
        async with asyncio.timeout(self.config.connect_timeout):
            if conn.reset_pending:
                await self._finish_reset(conn)
            refreshed = fresh
            if database is None and conn.had_database:
                await self._change_user(conn)  # a reset that also deselects the database
                refreshed = True
            payloads = []
            if not refreshed and self._reset_command == Command.COM_RESET_CONNECTION:
                payloads.append(_RESET)
                conn.collation = 0  # the login's character set again
            names = ""
            if collation != conn.collation:
                names = await self._names(conn, collation)
            if not fresh and conn.capabilities & Capability.CLIENT_IGNORE_SPACE:
                # The server turns the flag into sql_mode IGNORE_SPACE at login only; a
                # reset (or change of user) puts the global sql_mode back.
                names += _IGNORE_SPACE
            payloads.append(_identity_statement(identity, names))
            now = self._clock()
            if fresh:
                conn.database_at = now  # its login selected it
            elif database is not None and not _selected(conn, database, now):
                name = database.encode(client_codec(collation), "replace")
                payloads.append(bytes((Command.COM_INIT_DB,)) + name)
                conn.database = None  # until the server says it is selected
            if (
                defer
                and (fresh or now - conn.alive_at < _DEFER_WITHIN)
                and payloads[-1][0] != Command.COM_INIT_DB
            ):
                conn.deferred = payloads
                conn.collation = collation
                return
            error = await self._send_commands(conn, payloads)
        if database is not None:
            conn.had_database = True
        if error is not None:
            raise error
        if database is not None and conn.database is None:
            conn.database, conn.database_at = database, conn.alive_at
        conn.collation = collation

    async def apply_deferred(self, conn: BackendConnection, payloads: list[bytes]) -> None:
        """Send what a checkout deferred (and settings a session answered itself) when
        the session's first command is one myguard runs with I/O; the server's error,
        fatal, when it refuses one (none can fail short of a KILL)."""
        error = await self._send_commands(conn, payloads)
        if error is not None:
            error.fatal = True
            raise error

    async def _send_commands(
        self, conn: BackendConnection, payloads: list[bytes]
    ) -> MySQLError | None:
        """Pipelined commands answered by OK or ERR: the first server error, if any (the
        status follows each OK); a failed reset means the connection cannot be used."""
        stream = conn.stream
        stream.write_commands(payloads)
        await stream.drain()
        error: MySQLError | None = None
        for payload in payloads:
            stream.seq = 1
            answer = await stream.read_packet()
            if answer[:1] == bytes((ERR_HEADER,)):
                err = parse_err(answer)
                if payload == _RESET:
                    raise BackendUnavailable(self.config.name, f"reset failed: {err.message}")
                error = error or MySQLError(err.code, err.sqlstate, err.message)
            else:
                conn.status = parse_ok(answer).status
        conn.alive_at = self._clock()
        return error

    async def _learn_charsets(self, conn: BackendConnection) -> None:
        """The client character sets and collations the backend lists, once per pool; none
        when it will not say (every SET NAMES is then forwarded)."""
        deprecate_eof = bool(conn.capabilities & Capability.CLIENT_DEPRECATE_EOF)
        try:
            async with asyncio.timeout(self.config.connect_timeout):
                _, rows = await text_query(
                    conn.stream,
                    "SELECT CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLLATIONS",
                    deprecate_eof=deprecate_eof,
                )
        except MySQLError as exc:
            event(
                logging.WARNING,
                "pool_charsets_unknown",
                backend=self.config.name,
                error=exc.message,
            )
            rows = []
        self.client_charsets = ClientCharsets([(cs, co) for cs, co in rows if cs and co])

    async def _names(self, conn: BackendConnection, collation: int) -> str:
        """The ``NAMES ... COLLATE ...,`` clause for a collation id (looked up once)."""
        clause = self._collations.get(collation)
        if clause is None:
            deprecate_eof = bool(conn.capabilities & Capability.CLIENT_DEPRECATE_EOF)
            _, rows = await text_query(
                conn.stream,
                "SELECT CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLLATIONS"
                f" WHERE ID = {int(collation)}",
                deprecate_eof=deprecate_eof,
            )
            if not rows:
                # Unknown here (e.g. MySQL 8's 255 on MariaDB): the server picks one when
                # the id comes in a handshake; a fresh connection shows which.
                raise _UnknownCollation(collation)
            clause = self._learned(collation, *rows[0])
        return clause

    async def _learn_collation(self, conn: BackendConnection, collation: int) -> None:
        """What the server made of ``collation`` at a fresh connection's login."""
        deprecate_eof = bool(conn.capabilities & Capability.CLIENT_DEPRECATE_EOF)
        _, rows = await text_query(
            conn.stream,
            "SELECT @@character_set_connection, @@collation_connection",
            deprecate_eof=deprecate_eof,
        )
        self._learned(collation, *rows[0])

    def _learned(self, collation: int, charset: str | None, name: str | None) -> str:
        clause = self._collations[collation] = _names_clause(charset, name)
        self._charsets[collation] = str(charset).lower()
        return clause

    def charset(self, collation: int) -> str | None:
        """The character set of a collation id a checkout has used, as the server names
        it (what a session's statements start in); None before."""
        return self._charsets.get(collation)

    async def _finish_reset(self, conn: BackendConnection) -> None:
        """Read the answer to the reset sent when ``conn`` came back."""
        stream = conn.stream
        sent, conn.reset_pending = conn.reset_pending, 0
        stream.seq = 1
        answer = await stream.read_packet()
        conn.alive_at = self._clock()
        if sent == Command.COM_CHANGE_USER:
            # The packet asked for the collation the connection had (change_user_packet).
            conn.status = await finish_auth(self.config, conn, self._password(conn), answer)
            conn.had_database = False
            conn.database = None
            conn.collation = conn.collation or UTF8MB4_GENERAL_CI
            return
        # After a reset the session's character set is the server's choice (MariaDB
        # restores the login's, MySQL may not): checkout sets it again.
        conn.collation = 0
        if answer[:1] == bytes((ERR_HEADER,)):
            err = parse_err(answer)
            if err.code != ER_UNKNOWN_COM_ERROR:
                raise BackendUnavailable(self.config.name, f"reset failed: {err.message}")
            # A server without COM_RESET_CONNECTION: reset by a change to the same user.
            if self._reset_command != Command.COM_CHANGE_USER:
                self._reset_command = Command.COM_CHANGE_USER
                event(logging.INFO, "pool_reset_by_change_user", backend=self.config.name)
            await self._change_user(conn)
            return
        conn.status = parse_ok(answer).status

    async def _change_user(self, conn: BackendConnection) -> None:
        """COM_CHANGE_USER to the same account: a reset that also deselects the database."""
        stream = conn.stream
        stream.seq = 0
        stream.write_packet(change_user_packet(conn, self._password(conn)))
        await stream.drain()
        stream.seq = 1
        answer = await stream.read_packet()
        conn.status = await finish_auth(self.config, conn, self._password(conn), answer)
        conn.had_database = False
        conn.database = None
        conn.collation = conn.collation or UTF8MB4_GENERAL_CI  # what the packet asked for

    def _password(self, conn: BackendConnection) -> str:
        return self._accounts[conn.account].password

    # -- return --------------------------------------------------------------------------

    def release(self, conn: BackendConnection, *, reusable: bool, untouched: bool = False) -> None:
        """A session is done with ``conn``: reset and keep it, or close it. ``untouched``:
        the session sent it nothing (its checkout's commands still waited), so it is as
        the last reset left it and goes back as it is."""
        conn.deferred = []  # the reset makes them moot
        if not self.enabled:
            conn.close()
            return
        self.in_use -= 1
        now = self._clock()
        if (
            not reusable
            or self.closed
            or not conn.usable
            or now - conn.created > self.settings.max_lifetime
        ):
            reason = None if reusable and conn.usable else "not_reusable"
            self._drop(conn, reason, quit=reusable)
            return
        if untouched and self._reset_command == Command.COM_RESET_CONNECTION:
            conn.collation = 0  # the login's character set, as after the reset
            conn.idle_since = now
            self.counters.untouched += 1
            self._idle.setdefault(conn.key, []).append(conn)
            self._notify()
            return
        stream = conn.stream
        command = self._reset_command
        try:
            stream.seq = 0
            if command == Command.COM_CHANGE_USER:
                stream.write_packet(change_user_packet(conn, self._password(conn)))
            else:
                stream.write_packet(bytes((Command.COM_RESET_CONNECTION,)))
        except ConnectionLost:
            self._drop(conn, "broken")
            return
        self.counters.resets += 1
        conn.reset_pending = command
        conn.idle_since = now
        self._idle.setdefault(conn.key, []).append(conn)
        self._notify()

    def _drop(self, conn: BackendConnection, reason: str | None, *, quit: bool = True) -> None:
        """Close a connection the pool counted and make its room available."""
        self._close(conn, quit=quit)
        self.total -= 1
        if reason is not None:
            self.counters.fail(reason)
        self._notify()

    def _close(self, conn: BackendConnection, *, quit: bool = True) -> None:
        """``quit``: COM_QUIT first, for a connection between commands. Never behind a
        statement that may still run: the server would take the unread byte for a live
        client and let the statement go on (a GET_LOCK wait for all its timeout); closed
        without it, the server sees the client gone, as when a direct client drops."""
        self.counters.closed += 1
        if quit and conn.usable:
            with contextlib.suppress(ConnectionLost, OSError):
                conn.stream.seq = 0
                conn.stream.write_packet(bytes((Command.COM_QUIT,)))
        conn.close()

    # -- maintenance -----------------------------------------------------------------------

    async def _maintain(self) -> None:
        while not self.closed:
            try:
                await self._maintain_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug here must not stop the pool; the next round retries
                logging.getLogger("myguard").exception("pool maintenance failed")
            await asyncio.sleep(_MAINTAIN_EVERY)

    async def _maintain_once(self) -> None:
        now = self._clock()
        settings = self.settings
        # Buckets: the default account with the capabilities myguard offers (every modern
        # client's), and every bucket a session used within idle_timeout.
        for key, used in list(self._keys.items()):
            if now - used > settings.idle_timeout and key != self._default_key:
                del self._keys[key]
        for key, stack in list(self._idle.items()):
            keep = settings.min_idle if key in self._keys else 0
            for conn in list(stack):
                if not conn.usable:
                    stack.remove(conn)
                    self._drop(conn, "broken")
                elif now - conn.created > settings.max_lifetime:
                    stack.remove(conn)
                    self._drop(conn, None)
                elif now - conn.idle_since > settings.idle_timeout and len(stack) > keep:
                    stack.remove(conn)
                    self._drop(conn, None)
            if not stack:
                del self._idle[key]
        await self._ping_idle(now)
        await self._fill()

    async def _ping_idle(self, now: float) -> None:
        after = self.settings.ping_after
        for key, stack in list(self._idle.items()):
            for conn in [c for c in stack if now - c.idle_since > after]:
                if conn not in stack:
                    continue
                stack.remove(conn)
                self.in_use += 1
                try:
                    async with asyncio.timeout(self.config.connect_timeout):
                        if conn.reset_pending:
                            await self._finish_reset(conn)
                        conn.stream.seq = 0
                        conn.stream.write_packet(bytes((Command.COM_PING,)))
                        await conn.stream.drain()
                        conn.stream.seq = 1
                        answer = await conn.stream.read_packet()
                    if answer[:1] == bytes((ERR_HEADER,)):
                        raise BackendUnavailable(self.config.name, parse_err(answer).message)
                except (ConnectionLost, ProtocolError, TimeoutError, MySQLError):
                    self.in_use -= 1
                    self._drop(conn, "broken")
                    continue
                self.in_use -= 1
                conn.idle_since = conn.alive_at = self._clock()
                self._idle.setdefault(key, []).append(conn)
                self._notify()

    async def _fill(self) -> None:
        """Open connections until each bucket in use has ``min_idle`` ready."""
        want = self.settings.min_idle
        if not want:
            return
        if self._greeting is None:
            try:
                self._greeting = await probe(self.config)
            except BackendUnavailable as exc:
                self._down(exc)
                return
        if self._default_key is None:
            default = backend_capabilities(self.config, int(PROXY_CAPABILITIES), self._greeting)
            self._default_key = (self.config.account.user, default)
            self._keys.setdefault(self._default_key, self._clock())
        for key in list(self._keys):
            account = self._accounts.get(key[0])
            if account is None:
                continue
            while len(self._idle.get(key, ())) < want and self.total < self.limit:
                self.total += 1
                try:
                    conn = await self._connect(
                        account,
                        key[1],  # a bucket's capabilities map onto themselves
                        self._greeting.charset or UTF8MB4_GENERAL_CI,
                        None,
                        {"program_name": "myguard", "myguard_pool": self.config.name},
                    )
                except BackendUnavailable as exc:
                    self.total -= 1
                    self.counters.fail("connect")
                    self._notify()
                    self._down(exc)
                    return
                self.counters.opened += 1
                if not self._limit_known or self.client_charsets is None:
                    try:
                        if not self._limit_known:
                            await self._learn_limit(conn)
                        if self.client_charsets is None:
                            await self._learn_charsets(conn)
                    except (ConnectionLost, ProtocolError, TimeoutError, MySQLError):
                        self._drop(conn, "broken")
                        return
                if self._backend_down:
                    self._backend_down = False
                    event(logging.INFO, "pool_backend_back", backend=self.config.name)
                conn.idle_since = self._clock()
                self._idle.setdefault(key, []).append(conn)
                self._notify()

    def _down(self, exc: BackendUnavailable) -> None:
        if not self._backend_down:
            self._backend_down = True
            event(logging.WARNING, "pool_backend_down", backend=self.config.name, detail=exc.detail)


class _UnknownCollation(Exception):
    pass


# A reused connection whose server answered this recently is alive: its checkout commands
# may wait for the session's first command (an older one is asked, as a health check).
_DEFER_WITHIN = 1.0


def _selected(conn: BackendConnection, database: str, now: float) -> bool:
    """Has ``conn`` got ``database`` selected, as the server confirmed within
    ``_DEFER_WITHIN``? Then COM_INIT_DB would change nothing (a database dropped since
    shows at the session's statements, not at its login)."""
    return conn.database == database and now - conn.database_at < _DEFER_WITHIN


_IGNORE_SPACE = "sql_mode = CONCAT(@@sql_mode, ',IGNORE_SPACE'), "
_RESET = bytes((Command.COM_RESET_CONNECTION,))


def _names_clause(charset: str | None, collation: str | None) -> str:
    if not charset or not collation or not (charset + collation).replace("_", "").isalnum():
        raise ProtocolError(f"unexpected character set {charset!r} / {collation!r}")
    return f"NAMES {charset} COLLATE {collation}, "


def _identity_statement(identity: SessionIdentity, names: str) -> bytes:
    """``SET``: ``names`` (assignments ending in ", "), then who the session is."""
    # Hex literals: right whatever sql_mode (NO_BACKSLASH_ESCAPES) and character set.
    user = identity.user.encode().hex()
    source = identity.source.encode().hex()
    sql = (
        f"SET {names}@myguard_user = _utf8mb4 X'{user}',"
        f" @myguard_session = {int(identity.session_id)},"
        f" @myguard_source = _utf8mb4 X'{source}'"
    )
    return bytes((Command.COM_QUERY,)) + sql.encode()
