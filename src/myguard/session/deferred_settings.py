"""Session settings myguard answers itself and sends to the backend in front of the
session's next command: the ``SET NAMES`` and ``SET autocommit`` drivers send after
every login (PyMySQL sends both, mysqlclient and ORMs on top of them too).

Forwarded at once, each costs a backend round trip (a worker's two wake-ups and one of
the server's) for a statement whose answer myguard knows: an OK whose status differs at
most in the autocommit flag. Sent in the same write as the next command, the backend
applies them in the order the client sent them and before anything that could observe
them; a session that ends first never sends them (its connection is reset or closed).

Only settings that cannot fail and that nothing outside the session can notice qualify:
a character set and collation the backend lists (client character sets only), and
autocommit = 0, or 1 while it is on already (switching it on commits an open
transaction: its locks must go when the client asks, not at its next command). No I/O
here: the handler decides with these, the proxy core sends the payload.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from myguard.protocol.constants import Command, ServerStatus

_WORD = r"(?:'(\w+)'|\"(\w+)\"|`(\w+)`|(\w+))"
_NAMES = re.compile(
    rf"\s*set\s+names\s+{_WORD}(?:\s+collate\s+{_WORD})?\s*;?\s*", re.IGNORECASE | re.ASCII
).fullmatch
_AUTOCOMMIT = re.compile(
    r"\s*set\s+(?:session\s+|local\s+|@@session\.|@@local\.|@@)?autocommit\s*:?=\s*"
    r"(0|1|on|off|true|false)\s*;?\s*",
    re.IGNORECASE | re.ASCII,
).fullmatch
_ON = frozenset({"1", "on", "true"})
_AUTOCOMMIT_FLAG = ServerStatus.SERVER_STATUS_AUTOCOMMIT
# The flags that describe the session rather than the last statement (index use, cursor,
# last row, slow query...): what the server's OK to a SET carries.
_SESSION_FLAGS = (
    ServerStatus.SERVER_STATUS_IN_TRANS
    | ServerStatus.SERVER_STATUS_AUTOCOMMIT
    | ServerStatus.SERVER_STATUS_NO_BACKSLASH_ESCAPES
    | ServerStatus.SERVER_STATUS_IN_TRANS_READONLY
)


@dataclass(frozen=True, slots=True)
class Setting:
    """One deferrable SET: ``names`` (character set, collation or None) or ``autocommit``."""

    names: tuple[str, str | None] | None = None
    autocommit: bool | None = None


def read(text: str) -> Setting | None:
    """The setting ``text`` makes, when it is one plain ``SET NAMES`` or ``SET autocommit``
    (nothing else in it, no comment); None otherwise."""
    found = _NAMES(text)
    if found is not None:
        groups = found.groups()
        charset = next(g for g in groups[:4] if g is not None).lower()
        collation = next((g for g in groups[4:] if g is not None), None)
        return Setting(names=(charset, collation.lower() if collation else None))
    found = _AUTOCOMMIT(text)
    if found is not None:
        return Setting(autocommit=found.group(1).lower() in _ON)
    return None


def status_after(setting: Setting, status: int) -> int | None:
    """The status flags of the OK the backend would send for ``setting`` in a session
    whose flags are ``status``; None when it must be forwarded now (autocommit switched
    on, which commits)."""
    status &= _SESSION_FLAGS
    if setting.autocommit is None:
        return status
    if setting.autocommit:
        return status if status & _AUTOCOMMIT_FLAG else None
    return status & ~_AUTOCOMMIT_FLAG


class PendingSettings:
    """What the session's backend has not been sent: the commands its checkout left
    (BackendPool._prepare), then the settings answered here, where the last of each kind
    counts, so one ``SET`` carries them all."""

    __slots__ = ("commands", "names", "autocommit")

    def __init__(self) -> None:
        self.commands: list[bytes] = []
        self.names: tuple[str, str | None] | None = None
        self.autocommit: bool | None = None

    def clear(self) -> None:
        self.commands = []
        self.names = None
        self.autocommit = None

    def payloads(self) -> list[bytes]:
        """The commands to send, in order."""
        if self.names is None and self.autocommit is None:
            return list(self.commands)
        return [*self.commands, self.payload()]

    def add(self, setting: Setting) -> None:
        if setting.names is not None:
            self.names = setting.names
        if setting.autocommit is not None:
            self.autocommit = setting.autocommit

    def payload(self) -> bytes:
        """The COM_QUERY that applies the settings (names the backend lists: plain words)."""
        parts = []
        if self.names is not None:
            charset, collation = self.names
            parts.append(f"NAMES {charset}" + (f" COLLATE {collation}" if collation else ""))
        if self.autocommit is not None:
            parts.append(f"autocommit = {int(self.autocommit)}")
        return bytes((Command.COM_QUERY,)) + ("SET " + ", ".join(parts)).encode("ascii")
