"""Session settings myguard answers itself and sends to the backend in front of the
session's next command: the ``SET NAMES`` and ``SET autocommit`` drivers send after
every login (PyMySQL sends both, mysqlclient and ORMs on top of them too).

Forwarded at once, each costs a backend round trip (a worker's two wake-ups and one of
the server's) for a statement whose answer myguard knows: an OK whose status differs at
most in the autocommit flag. Sent in the same write as the next command, the backend
applies them in the order the client sent them and before anything that could observe
them; a session that ends first never sends them (its connection is reset or closed).
Each goes as the client sent it; a session that keeps setting without running anything
else has them forwarded beyond ``proxycore.MAX_DEFERRED``.

Only settings that cannot fail and that nothing outside the session can notice qualify:
a character set and collation the backend lists (client character sets only), and
autocommit = 0, or 1 while it is on already (switching it on commits an open
transaction: its locks must go when the client asks, not at its next command). No I/O
here: the handler decides with these and teaches the core each text it may answer itself
(``Repeat.autocommit``; ``Repeat.names``, while the session reads texts in that set
already); the core sends them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from myguard.protocol.constants import ServerStatus

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
    status &= ServerStatus.SESSION_FLAGS
    if setting.autocommit is None:
        return status
    if setting.autocommit:
        return status if status & _AUTOCOMMIT_FLAG else None
    return status & ~_AUTOCOMMIT_FLAG
