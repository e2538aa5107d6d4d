"""The authentication exchange with a client, plugin by plugin.

Supported: mysql_native_password and caching_sha2_password fast auth (checked against
stored or cached scramble verifiers), caching_sha2_password full auth (cleartext over
TLS, or through the RSA public-key exchange without TLS), and mysql_clear_password over
TLS only. When a client's plugin cannot be checked with what myguard holds (e.g. the
first LDAP login with mysql_native_password), the client is switched to
caching_sha2_password full auth so that the identity source sees the password once.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from myguard.identity.base import (
    AuthFailed,
    FastVerifiers,
    Identity,
    IdentitySource,
    IdentityUnavailable,
)
from myguard.identity.throttle import LoginThrottle
from myguard.identity.verifier_cache import VerifierCache
from myguard.identity.verifiers import sha2_stage2
from myguard.net.packet_stream import PacketStream
from myguard.protocol.auth import (
    CACHING_SHA2_PASSWORD,
    MYSQL_CLEAR_PASSWORD,
    MYSQL_NATIVE_PASSWORD,
    rsa_decrypt_password,
    verify_native,
    verify_sha2,
)
from myguard.protocol.constants import (
    AUTH_MORE_DATA,
    CACHING_SHA2_FAST_AUTH_SUCCESS,
    CACHING_SHA2_PERFORM_FULL_AUTH,
    CACHING_SHA2_REQUEST_PUBLIC_KEY,
    Capability,
)
from myguard.protocol.errors import ER_NOT_SUPPORTED_AUTH_MODE, MySQLError, access_denied
from myguard.protocol.handshake import build_auth_switch


@dataclass(slots=True)
class Authenticator:
    """Everything the exchange needs that outlives one connection."""

    source: IdentitySource
    cache: VerifierCache
    throttle: LoginThrottle
    rsa_key: rsa.RSAPrivateKey
    # Accept cached (even expired) verifiers while the identity source is unreachable.
    allow_cached_during_outage: bool = False
    public_pem: bytes = b""

    def __post_init__(self) -> None:
        self.public_pem = self.rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    async def verifiers(self, user: str) -> FastVerifiers | None:
        cached = None if self.source.keeps_verifiers else self.cache.get(user)
        if cached is not None:
            return cached
        return await self.source.fast_verifiers(user)


@dataclass(frozen=True, slots=True)
class AuthResult:
    identity: Identity
    plugin: str
    # "fast" (scramble checked against a verifier) or "full" (password checked by the source)
    method: str


class Exchange:
    """One authentication exchange on one connection (login or COM_CHANGE_USER)."""

    def __init__(
        self,
        auth: Authenticator,
        stream: PacketStream,
        scramble: bytes,
        capabilities: int,
        source_ip: str,
    ) -> None:
        self.auth = auth
        self.stream = stream
        self.scramble = scramble
        self.capabilities = capabilities
        self.source_ip = source_ip
        self._switched = False

    async def run(self, user: str, plugin: str, response: bytes) -> AuthResult:
        """Authenticate ``user`` whose first response ``response`` was made by ``plugin``.

        Raises MySQLError (access denied, unsupported mode) or IdentityUnavailable.
        """
        throttle = self.auth.throttle
        refusal = throttle.refusal(user, self.source_ip)
        if refusal is not None:
            raise _denied(user, self.source_ip, bool(response), refusal)
        try:
            result = await self._run(user, plugin or MYSQL_NATIVE_PASSWORD, response)
        except AuthFailed as exc:
            throttle.failure(user, self.source_ip)
            raise _denied(user, self.source_ip, bool(response), exc.reason) from None
        throttle.success(user, self.source_ip)
        return result

    async def _run(self, user: str, plugin: str, response: bytes) -> AuthResult:
        if plugin == MYSQL_NATIVE_PASSWORD:
            return await self._native(user, response)
        if plugin == CACHING_SHA2_PASSWORD:
            return await self._caching_sha2(user, response)
        if plugin == MYSQL_CLEAR_PASSWORD and self.stream.tls:
            return await self._full(user, response.rstrip(b"\x00"), MYSQL_CLEAR_PASSWORD)
        return await self._caching_sha2(user, await self._switch(CACHING_SHA2_PASSWORD))

    async def _switch(self, plugin: str) -> bytes:
        if not self.capabilities & Capability.CLIENT_PLUGIN_AUTH:
            raise MySQLError(
                ER_NOT_SUPPORTED_AUTH_MODE,
                "08004",
                "Client does not support authentication protocol requested by server; "
                "consider upgrading MySQL client",
                fatal=True,
            )
        self._switched = True
        self.stream.write_packet(build_auth_switch(plugin, self.scramble + b"\x00"))
        await self.stream.drain()
        return await self.stream.read_packet()

    async def _native(self, user: str, token: bytes) -> AuthResult:
        if not token:
            return await self._caching_sha2(user, token)
        verifiers = await self.auth.verifiers(user)
        if verifiers is not None and verifiers.native_stage2 is not None:
            if verify_native(verifiers.native_stage2, self.scramble, token):
                return await self._fast_ok(verifiers, MYSQL_NATIVE_PASSWORD)
        if verifiers is None or verifiers.native_stage2 is not None:
            self._no_match(verifiers)
        # Nothing to check the scramble against, or no match with what a past login
        # taught (the password may have changed at the source): the client sends the
        # password once through caching_sha2 full auth and the source decides.
        return await self._caching_sha2(user, await self._switch(CACHING_SHA2_PASSWORD))

    def _no_match(self, verifiers: FastVerifiers | None) -> None:
        """A scramble that did not match (or a user without verifiers) where the source
        keeps its own: refused at once, as the server refuses a wrong password. Clients
        without TLS would otherwise be asked for a full authentication over RSA, which
        some refuse with an error of their own instead of 1045."""
        if self.auth.source.keeps_verifiers:
            raise AuthFailed("unknown or disabled user" if verifiers is None else "wrong password")

    async def _caching_sha2(self, user: str, token: bytes) -> AuthResult:
        if token in (b"", b"\x00") and not self._switched:
            # Some clients send nothing first (COM_CHANGE_USER) and answer a switch properly;
            # an empty password stays empty through the switch and is refused below.
            token = await self._switch(CACHING_SHA2_PASSWORD)
        if token in (b"", b"\x00"):
            raise AuthFailed("empty password")
        verifiers = await self.auth.verifiers(user)
        if verifiers is not None and verifiers.sha2_stage2 is not None:
            if verify_sha2(verifiers.sha2_stage2, self.scramble, token):
                self.stream.write_packet(bytes((AUTH_MORE_DATA, CACHING_SHA2_FAST_AUTH_SUCCESS)))
                return await self._fast_ok(verifiers, CACHING_SHA2_PASSWORD)
        if verifiers is None or verifiers.sha2_stage2 is not None:
            self._no_match(verifiers)
        self.stream.write_packet(bytes((AUTH_MORE_DATA, CACHING_SHA2_PERFORM_FULL_AUTH)))
        await self.stream.drain()
        packet = await self.stream.read_packet()
        if self.stream.tls:
            password = packet.rstrip(b"\x00")
        else:
            if packet == bytes((CACHING_SHA2_REQUEST_PUBLIC_KEY,)):
                self.stream.write_packet(bytes((AUTH_MORE_DATA,)) + self.auth.public_pem)
                await self.stream.drain()
                packet = await self.stream.read_packet()
            if len(packet) != self.auth.rsa_key.key_size // 8:
                # A cleartext password over an unencrypted connection is never accepted.
                raise AuthFailed("full authentication without TLS or RSA")
            try:
                password = rsa_decrypt_password(packet, self.scramble, self.auth.rsa_key)
            except ValueError:
                raise AuthFailed("RSA decryption failed") from None
        return await self._full(user, password, CACHING_SHA2_PASSWORD)

    async def _full(self, user: str, password: bytes, plugin: str) -> AuthResult:
        if not password:
            raise AuthFailed("empty password")
        text = password.decode("utf-8", "surrogateescape")
        cache = self.auth.cache
        try:
            identity = await self.auth.source.authenticate(user, text)
        except AuthFailed:
            cache.forget(user)
            raise
        except IdentityUnavailable:
            cached = (
                cache.get(user, allow_expired=True)
                if self.auth.allow_cached_during_outage
                else None
            )
            if cached is None or cached.sha2_stage2 != sha2_stage2(text):
                raise
            return AuthResult(cached.identity, plugin, "cached-during-outage")
        if not self.auth.source.keeps_verifiers:
            cache.remember(identity, text)
        return AuthResult(identity, plugin, "full")

    async def _fast_ok(self, verifiers: FastVerifiers, plugin: str) -> AuthResult:
        try:
            identity = await self.auth.source.refresh(verifiers.identity)
        except AuthFailed:
            self.auth.cache.forget(verifiers.identity.user)
            raise
        except IdentityUnavailable:
            if not self.auth.allow_cached_during_outage:
                raise
            return AuthResult(verifiers.identity, plugin, "cached-during-outage")
        return AuthResult(identity, plugin, "fast")


class LoginDenied(MySQLError):
    """Access denied, with the real reason kept for the log and audit."""

    def __init__(self, error: MySQLError, reason: str) -> None:
        super().__init__(error.code, error.sqlstate, error.message, fatal=True)
        self.reason = reason


def _denied(user: str, host: str, using_password: bool, reason: str) -> LoginDenied:
    return LoginDenied(access_denied(user, host, using_password), reason)
