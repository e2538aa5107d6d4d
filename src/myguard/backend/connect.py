"""Connect to a backend MariaDB/MySQL with a service account the user never sees."""

from __future__ import annotations

import asyncio
import ssl
import struct
import time
from dataclasses import dataclass, field

from myguard.config import BackendAccount, BackendConfig
from myguard.net.packet_stream import ConnectionLost, PacketStream
from myguard.protocol.auth import (
    CACHING_SHA2_PASSWORD,
    MYSQL_NATIVE_PASSWORD,
    native_token,
    rsa_encrypt_password,
    sha2_token,
)
from myguard.protocol.constants import (
    AUTH_MORE_DATA,
    AUTH_SWITCH_REQUEST,
    CACHING_SHA2_FAST_AUTH_SUCCESS,
    CACHING_SHA2_PERFORM_FULL_AUTH,
    CACHING_SHA2_REQUEST_PUBLIC_KEY,
    ERR_HEADER,
    OK_HEADER,
    UTF8MB4_GENERAL_CI,
    Capability,
    Command,
)
from myguard.protocol.errors import (
    CR_CONN_HOST_ERROR,
    ER_BAD_DB_ERROR,
    ER_DBACCESS_DENIED_ERROR,
    ER_MYGUARD_BACKEND_UNAVAILABLE,
    MySQLError,
    ProtocolError,
)
from myguard.protocol.generic_response import parse_err, parse_ok
from myguard.protocol.handshake import (
    Greeting,
    HandshakeResponse,
    build_handshake_response,
    parse_auth_switch,
    parse_greeting,
)

# Capabilities myguard always asks of a backend, whatever the client negotiated.
_ALWAYS = (
    Capability.CLIENT_PROTOCOL_41
    | Capability.CLIENT_SECURE_CONNECTION
    | Capability.CLIENT_PLUGIN_AUTH
    | Capability.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
    | Capability.CLIENT_LONG_PASSWORD
)


# What myguard's own connections (schema catalog, KILL) ask for: classic EOF packets, no
# client options such as CLIENT_NO_SCHEMA that a user's session may carry.
INTERNAL_CAPABILITIES = int(
    Capability.CLIENT_PROTOCOL_41
    | Capability.CLIENT_TRANSACTIONS
    | Capability.CLIENT_MULTI_RESULTS
    | Capability.CLIENT_CONNECT_ATTRS
)


class BackendUnavailable(MySQLError):
    """The backend refused, is down, or its login failed."""

    def __init__(self, backend: str, detail: str) -> None:
        super().__init__(
            ER_MYGUARD_BACKEND_UNAVAILABLE,
            "08S01",
            f"myguard: backend '{backend}' is unavailable: {detail}",
        )
        self.detail = detail


@dataclass(slots=True)
class BackendConnection:
    stream: PacketStream
    greeting: Greeting
    capabilities: int
    status: int
    account: str
    # What the pool knows of the connection (backend/pool.py).
    collation: int = 0  # the collation id its session uses now
    key: tuple[str, int] = ("", 0)  # (service account, capabilities): which pool bucket
    created: float = 0.0  # time.monotonic() at login
    idle_since: float = 0.0
    alive_at: float = 0.0  # time.monotonic() of the server's last answer on it
    # A database was selected on it at some point: COM_RESET_CONNECTION keeps the current
    # database, so it serves only sessions that select one themselves.
    had_database: bool = False
    # The database the pool knows is selected on it (None: none, or not known) and when
    # the server last said it exists (the pool's clock at its login or COM_INIT_DB's OK).
    database: str | None = None
    database_at: float = 0.0
    # The reset sent when it came back (a command byte, 0: none); its answer is read
    # before the next use.
    reset_pending: int = 0
    # Someone sent KILL for its thread: never reused (a late KILL must not hit the next owner).
    tainted: bool = False
    uses: int = 0
    # Checkout commands not sent yet: they go in front of the session's first command
    # (backend/pool.py, BackendPool._prepare).
    deferred: list[bytes] = field(default_factory=list)

    @property
    def thread_id(self) -> int:
        return self.greeting.connection_id

    @property
    def usable(self) -> bool:
        """Connected, nothing unread, nothing known to be wrong with it."""
        stream = self.stream
        transport = stream.transport
        return (
            not self.tainted
            and stream.lost is None
            and transport is not None
            and not transport.is_closing()
            # bytes waiting are the pending reset's answer, or something unasked for
            and (self.reset_pending or not len(stream.buffer))
        )

    def close(self) -> None:
        self.stream.close()


def tls_context(config: BackendConfig) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(config.tls_ca_file) if config.tls_ca_file else None)
    if not config.tls_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def _open(config: BackendConfig, max_packet: int) -> tuple[PacketStream, Greeting]:
    host, port = config.upstream
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(config.connect_timeout):
            _, stream = await loop.create_connection(lambda: PacketStream(max_packet), host, port)
    except (OSError, TimeoutError) as exc:
        raise BackendUnavailable(
            config.name, f"cannot connect to {host}:{port} ({exc or 'timeout'})"
        ) from None
    try:
        async with asyncio.timeout(config.connect_timeout):
            payload = await stream.read_packet()
    except (ConnectionLost, TimeoutError, ProtocolError) as exc:
        stream.close()
        raise BackendUnavailable(config.name, f"no greeting ({exc or 'timeout'})") from None
    if payload[:1] == bytes((ERR_HEADER,)):
        stream.close()
        raise BackendUnavailable(config.name, parse_err(payload).message)
    return stream, parse_greeting(payload)


async def probe(config: BackendConfig) -> Greeting:
    """Read the backend's greeting (version, capabilities) without logging in."""
    stream, greeting = await _open(config, 1 << 20)
    stream.close()
    return greeting


async def connect(
    config: BackendConfig,
    account: BackendAccount,
    *,
    client_capabilities: int,
    charset: int,
    database: str | None,
    attributes: dict[str, str],
    max_packet: int,
) -> BackendConnection:
    """Log in to the backend with ``account``, mirroring the client's result-format capabilities.

    The client's capabilities are passed on so that the backend's responses are exactly
    what the client expects, and rows can be relayed byte for byte.
    """
    stream, greeting = await _open(config, max_packet)
    try:
        async with asyncio.timeout(config.connect_timeout):
            return await _login(
                config,
                account,
                stream,
                greeting,
                client_capabilities,
                charset,
                database,
                attributes,
                max_packet,
            )
    except TimeoutError:
        stream.close()
        raise BackendUnavailable(config.name, "login timed out") from None
    except (ConnectionLost, ProtocolError) as exc:
        stream.close()
        raise BackendUnavailable(config.name, str(exc)) from None
    except BaseException:
        stream.close()
        raise


async def _login(
    config: BackendConfig,
    account: BackendAccount,
    stream: PacketStream,
    greeting: Greeting,
    client_capabilities: int,
    charset: int,
    database: str | None,
    attributes: dict[str, str],
    max_packet: int,
) -> BackendConnection:
    caps = backend_capabilities(config, client_capabilities, greeting)
    key_caps = caps
    if database:
        caps |= Capability.CLIENT_CONNECT_WITH_DB
    if config.tls:
        if not greeting.capabilities & Capability.CLIENT_SSL:
            raise BackendUnavailable(
                config.name, "TLS is configured but the backend does not offer it"
            )
        caps |= Capability.CLIENT_SSL
        stream.write_packet(
            build_handshake_response(HandshakeResponse(caps, max_packet, charset, ssl_request=True))
        )
        await stream.drain()
        await stream.start_tls(
            tls_context(config), server_side=False, server_hostname=config.upstream[0]
        )
    password = account.password.encode()
    plugin = greeting.auth_plugin or MYSQL_NATIVE_PASSWORD
    nonce = greeting.scramble
    response = HandshakeResponse(
        caps,
        max_packet,
        charset,
        account.user,
        _token(plugin, password, nonce),
        database,
        plugin,
        attributes,
    )
    stream.write_packet(build_handshake_response(response))
    await stream.drain()
    packet = await stream.read_packet()
    status = await _authenticate(
        config, stream, plugin, password, nonce, packet, "login as service account"
    )
    now = time.monotonic()
    return BackendConnection(
        stream,
        greeting,
        caps,
        status,
        account.user,
        collation=charset,
        key=(account.user, key_caps),
        created=now,
        idle_since=now,
        had_database=bool(database),
        database=database or None,
    )


async def _authenticate(
    config: BackendConfig,
    stream: PacketStream,
    plugin: str,
    password: bytes,
    nonce: bytes,
    packet: bytes,
    what: str,
) -> int:
    """Answer the server's authentication steps, from its first answer ``packet`` on (to a
    handshake response or a COM_CHANGE_USER), until its OK: the OK's server status."""
    while True:
        head = packet[0]
        if head == OK_HEADER:
            return parse_ok(packet).status
        if head == ERR_HEADER:
            err = parse_err(packet)
            if err.code in (ER_BAD_DB_ERROR, ER_DBACCESS_DENIED_ERROR):
                # The database the client asked for: its error, as a direct login gets it.
                raise MySQLError(err.code, err.sqlstate, err.message, fatal=True)
            raise BackendUnavailable(config.name, f"{what} failed: {err.message}")
        if head == AUTH_SWITCH_REQUEST:
            plugin, data = parse_auth_switch(packet)
            nonce = data.rstrip(b"\x00")
            stream.write_packet(_token(plugin, password, nonce))
        elif head == AUTH_MORE_DATA and plugin == CACHING_SHA2_PASSWORD:
            if packet[1:] == bytes((CACHING_SHA2_FAST_AUTH_SUCCESS,)):
                packet = await stream.read_packet()
                continue
            if packet[1:] == bytes((CACHING_SHA2_PERFORM_FULL_AUTH,)):
                if stream.tls:
                    stream.write_packet(password + b"\x00")
                else:
                    stream.write_packet(bytes((CACHING_SHA2_REQUEST_PUBLIC_KEY,)))
            else:  # the server's public key
                stream.write_packet(rsa_encrypt_password(password, nonce, packet[1:]))
        else:
            raise BackendUnavailable(config.name, f"unsupported auth step 0x{head:02x} ({plugin})")
        await stream.drain()
        packet = await stream.read_packet()


def backend_capabilities(
    config: BackendConfig, client_capabilities: int, greeting: Greeting
) -> int:
    """What myguard asks of the backend for a client with ``client_capabilities``: the
    client's result-format capabilities, so responses relay byte for byte (without
    CLIENT_SSL and CLIENT_CONNECT_WITH_DB, which depend on the login itself, and
    CLIENT_COMPRESS)."""
    # MariaDB's extended capabilities (bits 32-63) are mirrored too: a MariaDB backend's
    # greeting lacks CLIENT_MYSQL, so caps do as well and they go out in the filler.
    caps = (client_capabilities | _ALWAYS) & greeting.capabilities
    caps &= ~(
        Capability.CLIENT_SSL
        | Capability.CLIENT_CONNECT_WITH_DB
        | Capability.CLIENT_LOCAL_FILES
        | Capability.CLIENT_COMPRESS  # the client's leg only: myguard compresses for it
    )
    caps |= Capability.CLIENT_PROTOCOL_41
    if config.local_infile and client_capabilities & Capability.CLIENT_LOCAL_FILES:
        caps |= Capability.CLIENT_LOCAL_FILES
    if greeting.capabilities & Capability.CLIENT_CONNECT_ATTRS:
        caps |= Capability.CLIENT_CONNECT_ATTRS
    return caps


def change_user_packet(conn: BackendConnection, password: str) -> bytes:
    """COM_CHANGE_USER back to the connection's own service account, no database: what a
    server without COM_RESET_CONNECTION resets a session with (it also leaves no database
    selected)."""
    plugin = conn.greeting.auth_plugin or MYSQL_NATIVE_PASSWORD
    token = _token(plugin, password.encode(), conn.greeting.scramble)
    caps = conn.capabilities
    parts = [bytes((Command.COM_CHANGE_USER,)), conn.account.encode(), b"\x00"]
    parts.append(bytes((len(token),)) + token)
    parts.append(b"\x00")  # no database
    parts.append(struct.pack("<H", conn.collation or UTF8MB4_GENERAL_CI))
    if caps & Capability.CLIENT_PLUGIN_AUTH:
        parts.append(plugin.encode() + b"\x00")
    if caps & Capability.CLIENT_CONNECT_ATTRS:
        parts.append(b"\x00")  # no attributes
    return b"".join(parts)


async def finish_auth(
    config: BackendConfig, conn: BackendConnection, password: str, packet: bytes
) -> int:
    """The rest of a COM_CHANGE_USER exchange from its first answer ``packet``: the OK's
    server status."""
    return await _authenticate(
        config,
        conn.stream,
        conn.greeting.auth_plugin or MYSQL_NATIVE_PASSWORD,
        password.encode(),
        conn.greeting.scramble,
        packet,
        "reset by change of user",
    )


def _token(plugin: str, password: bytes, nonce: bytes) -> bytes:
    if plugin == MYSQL_NATIVE_PASSWORD:
        return native_token(password, nonce)
    if plugin == CACHING_SHA2_PASSWORD:
        return sha2_token(password, nonce)
    raise ProtocolError(f"backend asks for unsupported auth plugin {plugin!r}", CR_CONN_HOST_ERROR)
