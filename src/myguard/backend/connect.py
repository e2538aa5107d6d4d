"""Connect to a backend MariaDB/MySQL with a service account the user never sees."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

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
    Capability,
)
from myguard.protocol.errors import (
    CR_CONN_HOST_ERROR,
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

    @property
    def thread_id(self) -> int:
        return self.greeting.connection_id

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
    # MariaDB's extended capabilities (bits 32-63) are mirrored too: a MariaDB backend's
    # greeting lacks CLIENT_MYSQL, so caps do as well and they go out in the filler.
    caps = (client_capabilities | _ALWAYS) & greeting.capabilities
    caps &= ~(
        Capability.CLIENT_SSL | Capability.CLIENT_CONNECT_WITH_DB | Capability.CLIENT_LOCAL_FILES
    )
    caps |= Capability.CLIENT_PROTOCOL_41
    if database:
        caps |= Capability.CLIENT_CONNECT_WITH_DB
    if config.local_infile and client_capabilities & Capability.CLIENT_LOCAL_FILES:
        caps |= Capability.CLIENT_LOCAL_FILES
    if greeting.capabilities & Capability.CLIENT_CONNECT_ATTRS:
        caps |= Capability.CLIENT_CONNECT_ATTRS
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
    while True:
        packet = await stream.read_packet()
        head = packet[0]
        if head == OK_HEADER:
            ok = parse_ok(packet)
            return BackendConnection(stream, greeting, caps, ok.status, account.user)
        if head == ERR_HEADER:
            err = parse_err(packet)
            raise BackendUnavailable(config.name, f"login as service account failed: {err.message}")
        if head == AUTH_SWITCH_REQUEST:
            plugin, data = parse_auth_switch(packet)
            nonce = data.rstrip(b"\x00")
            stream.write_packet(_token(plugin, password, nonce))
        elif head == AUTH_MORE_DATA and plugin == CACHING_SHA2_PASSWORD:
            if packet[1:] == bytes((CACHING_SHA2_FAST_AUTH_SUCCESS,)):
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


def _token(plugin: str, password: bytes, nonce: bytes) -> bytes:
    if plugin == MYSQL_NATIVE_PASSWORD:
        return native_token(password, nonce)
    if plugin == CACHING_SHA2_PASSWORD:
        return sha2_token(password, nonce)
    raise ProtocolError(f"backend asks for unsupported auth plugin {plugin!r}", CR_CONN_HOST_ERROR)
