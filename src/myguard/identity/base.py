"""The contract between the authentication exchange and an identity source.

The exchange (``myguard.frontend.authenticate``) never sees how identities are stored:
it asks a source to check a cleartext password (full authentication) or for the
stored scramble verifiers that let fast-auth plugins work without one.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field


class AuthFailed(Exception):
    """The credentials are wrong, the user is unknown or disabled.

    ``reason`` is for the log and audit only; the client always gets the same
    generic "Access denied" so that it cannot probe which users exist.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class IdentityUnavailable(Exception):
    """The identity provider cannot be reached or did not answer in time."""


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated person or program, as policy and audit see them."""

    user: str
    groups: frozenset[str] = frozenset()
    source: str = "users-file"
    # Name of a backend account from the config (per-group mapping); None = default.
    backend_account: str | None = None
    attributes: dict[str, str] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True, slots=True)
class FastVerifiers:
    """Stored verifiers that let a fast-auth plugin check a scramble without the password.

    ``native_stage2`` is SHA1(SHA1(password)) for mysql_native_password;
    ``sha2_stage2`` is SHA256(SHA256(password)) for caching_sha2_password fast auth.
    Either may be None when the source does not keep it.
    """

    identity: Identity
    native_stage2: bytes | None = None
    sha2_stage2: bytes | None = None


class IdentitySource(abc.ABC):
    """Where identities come from (users file, LDAP, ...)."""

    name: str = "identity"
    # Its fast_verifiers are its own record of the password (a users file), not what a
    # past login taught: a scramble they do not match is a wrong password, with no full
    # authentication to ask for, and nothing of its users is cached.
    keeps_verifiers: bool = False

    @abc.abstractmethod
    async def authenticate(self, user: str, password: str) -> Identity:
        """Full authentication with the cleartext password.

        Raises AuthFailed for bad credentials, IdentityUnavailable when the provider
        cannot answer.
        """

    @abc.abstractmethod
    async def fast_verifiers(self, user: str) -> FastVerifiers | None:
        """Stored fast-auth verifiers for ``user``, or None if the source keeps none.

        Raises IdentityUnavailable when the provider cannot answer.
        """

    async def refresh(self, identity: Identity) -> Identity:
        """Re-resolve groups for a user authenticated earlier (default: unchanged)."""
        return identity

    def reload(self) -> bool:
        """Re-read what the source keeps in memory (SIGHUP); False if that failed."""
        return True

    async def watch(self) -> None:  # noqa: B027 - optional hook
        """Run for the process's life, picking up changes (default: nothing to watch)."""

    async def close(self) -> None:  # noqa: B027 - optional hook, most sources hold nothing
        """Release connections and threads."""
