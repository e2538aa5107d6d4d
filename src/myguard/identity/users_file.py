"""The embedded identity source: a TOML users file that never holds plain passwords.

Each entry keeps a salted scrypt hash, which checks a cleartext password (full
authentication), and, unless the user was added with ``--no-fast-auth``, the two scramble
verifiers that fast-auth plugins need: SHA1(SHA1(pw)) for mysql_native_password and
SHA256(SHA256(pw)) for caching_sha2_password. Trade-off: those verifiers are unsalted
fast hashes, so a stolen users file can be brute-forced much faster than through scrypt
(they do not let anyone log in directly: a scramble needs SHA1(pw)/SHA256(pw)). Without
them, a client must send its password through TLS or the RSA exchange on every login.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import re
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from myguard.config_error import ConfigError
from myguard.identity.base import AuthFailed, FastVerifiers, Identity, IdentitySource
from myguard.identity.verifiers import native_stage2, sha2_stage2
from myguard.logs import event

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 1 << 15, 8, 1
_USER_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,80}$")


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(password: str, encoded: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(got, expected)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=128 * n * r * 2, dklen=32
    )


@dataclass(frozen=True, slots=True)
class UserEntry:
    name: str
    groups: tuple[str, ...]
    password_hash: str
    native_stage2: bytes | None
    sha2_stage2: bytes | None
    disabled: bool


def read_users(path: Path) -> dict[str, UserEntry]:
    file = str(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (tomllib.TOMLDecodeError, OSError) as exc:
        raise ConfigError(file, "(syntax)", f"a readable TOML users file ({exc})") from None
    users = data.get("users", {})
    if not isinstance(users, dict):
        raise ConfigError(file, "users", "a table of users", users)
    entries = {}
    for name, raw in users.items():
        key = f"users.{name}"
        if not isinstance(raw, dict) or not isinstance(raw.get("password_hash"), str):
            raise ConfigError(file, f"{key}.password_hash", "a scrypt hash string")
        groups = raw.get("groups", [])
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise ConfigError(file, f"{key}.groups", "a list of group names", groups)
        entries[name] = UserEntry(
            name=name,
            groups=tuple(groups),
            password_hash=raw["password_hash"],
            native_stage2=_hex(file, f"{key}.native_stage2", raw.get("native_stage2"), 20),
            sha2_stage2=_hex(file, f"{key}.sha2_stage2", raw.get("sha2_stage2"), 32),
            disabled=bool(raw.get("disabled", False)),
        )
    return entries


def _hex(file: str, key: str, value: object, size: int) -> bytes | None:
    if value is None:
        return None
    try:
        raw = bytes.fromhex(str(value))
    except ValueError:
        raw = b""
    if len(raw) != size:
        raise ConfigError(file, key, f"{size * 2} hex digits", value)
    return raw


def write_user(
    path: Path, name: str, password: str, groups: list[str], *, fast_auth: bool = True
) -> None:
    """Add or replace one user; the file is rewritten atomically with mode 0600."""
    if not _USER_NAME.match(name):
        raise ValueError(f"user name {name!r} must be 1-80 of A-Z a-z 0-9 _ . @ -")
    users = read_users(path)
    users[name] = UserEntry(
        name=name,
        groups=tuple(groups),
        password_hash=hash_password(password),
        native_stage2=native_stage2(password) if fast_auth else None,
        sha2_stage2=sha2_stage2(password) if fast_auth else None,
        disabled=False,
    )
    lines = ["# myguard users file: written by `myguard users add`; holds no plain passwords.", ""]
    for entry in users.values():
        lines.append(f"[users.{json.dumps(entry.name)}]")
        lines.append(f"groups = {json.dumps(list(entry.groups))}")
        lines.append(f"password_hash = {json.dumps(entry.password_hash)}")
        if entry.native_stage2 is not None:
            lines.append(f'native_stage2 = "{entry.native_stage2.hex()}"')
        if entry.sha2_stage2 is not None:
            lines.append(f'sha2_stage2 = "{entry.sha2_stage2.hex()}"')
        if entry.disabled:
            lines.append("disabled = true")
        lines.append("")
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines))
    os.replace(tmp, path)


class UsersFileSource(IdentitySource):
    """Identities from the users file, kept in memory.

    A login does not look at the file: a watcher checks its modification time every
    ``watch_interval`` seconds (and SIGHUP / ``myguard reload`` at once), so a changed
    password, group or ``disabled`` flag takes effect within that time. A name not in
    memory makes one check (at most every 50 ms), so a user added a moment ago can log in
    at once. A file that became unreadable or broken keeps the users read before, and says
    so in the log.
    """

    name = "users-file"
    keeps_verifiers = True

    def __init__(self, path: Path, *, clock=time.monotonic) -> None:  # noqa: ANN001
        self.path = path
        self._clock = clock
        self._mtime: tuple[float, int] | None = None
        self._checked = 0.0
        self._users: dict[str, UserEntry] = {}
        self._load(strict=True)

    def _load(self, *, strict: bool = False) -> bool:
        """Read the file again if it changed; False if it could not be read."""
        self._checked = self._clock()
        try:
            st = self.path.stat()
            stamp: tuple[float, int] | None = (st.st_mtime, st.st_size)
        except FileNotFoundError:
            stamp = None
        except OSError as exc:
            event(logging.ERROR, "users_file_unreadable", file=str(self.path), error=str(exc))
            return False
        if stamp == self._mtime:
            return True
        try:
            users = read_users(self.path)
        except ConfigError as exc:
            if strict:
                raise
            event(logging.ERROR, "users_file_broken", error=str(exc), kept="previous users")
            return False
        self._users = users
        self._mtime = stamp
        return True

    def reload(self) -> bool:
        return self._load()

    async def watch(self, interval: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval)
            self._load()

    def _entry(self, user: str) -> UserEntry | None:
        entry = self._users.get(user)
        if entry is None and self._clock() - self._checked > _MISS_RECHECK:
            self._load()  # perhaps added a moment ago
            entry = self._users.get(user)
        return None if entry is None or entry.disabled else entry

    @staticmethod
    def _identity(entry: UserEntry) -> Identity:
        return Identity(entry.name, frozenset(entry.groups), source="users-file")

    async def authenticate(self, user: str, password: str) -> Identity:
        entry = self._entry(user)
        if entry is None:
            # Same cost as a real check, so timing does not reveal which users exist.
            await asyncio.to_thread(check_password, password, _DUMMY_HASH)
            raise AuthFailed("unknown or disabled user")
        if not password or not await asyncio.to_thread(
            check_password, password, entry.password_hash
        ):
            raise AuthFailed("wrong password")
        return self._identity(entry)

    async def fast_verifiers(self, user: str) -> FastVerifiers | None:
        entry = self._entry(user)
        if entry is None:
            return None
        return FastVerifiers(self._identity(entry), entry.native_stage2, entry.sha2_stage2)


_MISS_RECHECK = 0.05
_DUMMY_HASH = hash_password("myguard-dummy", b"\x00" * 16)
