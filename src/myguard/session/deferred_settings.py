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

A client that tracks session state (``CLIENT_SESSION_TRACK``: libmariadb, so mysqlclient
and the ``mariadb`` CLI; Connector/J) gets what changed in the OK, as the server's session
trackers report it: which variables they track is the server's configuration, not
myguard's. So for those clients the first such SET of a text goes to the server, and the
part of its OK after the status flags and warnings (``tracked_tail``) is learned with the
text; the core answers the next ones with it. The server's own OK for each one answered
so is checked when it arrives with the next command: one that differs (the server's
tracker configuration changed) unlearns the text. A session that changes its own trackers
(``session_track_*``) is never answered so, nor taught what it sees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from myguard.protocol.codec import PayloadReader
from myguard.protocol.constants import ServerStatus
from myguard.protocol.errors import ProtocolError

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
_STATE_CHANGED = ServerStatus.SERVER_SESSION_STATE_CHANGED
# Session tracker entries whose content the SET's text alone decides: a system variable's
# new value, and "the state changed". (Schema, GTIDs and transaction state depend on more.)
SESSION_TRACK_SYSTEM_VARIABLES = 0
SESSION_TRACK_STATE_CHANGE = 2
_TEXT_DECIDED = frozenset({SESSION_TRACK_SYSTEM_VARIABLES, SESSION_TRACK_STATE_CHANGE})


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


def tracked_tail(ok: bytes, status: int) -> bytes | None:
    """What follows the status flags and warnings in ``ok``, the server's OK (a payload)
    to a deferrable SET from a client that tracks session state, when the next ones of its
    text may be answered with it: no rows, id or warnings; the status flags ``status``
    (``status_after``'s) plus SERVER_SESSION_STATE_CHANGED exactly when it reports changes;
    only changes the text decides (``_TEXT_DECIDED``). None otherwise."""
    if len(ok) < 7 or ok[:3] != b"\x00\x00\x00" or ok[5:7] != b"\x00\x00":
        return None
    flags = int.from_bytes(ok[3:5], "little")
    tail = ok[7:]
    if flags & ~_STATE_CHANGED != status:
        return None
    if not flags & _STATE_CHANGED:
        return tail if not tail else None
    # MariaDB sends the changes alone, MySQL the (empty) info text first.
    for skip_info in (False, True):
        reader = PayloadReader(tail)
        try:
            if skip_info:
                reader.lenenc_str()
            if reader.lenenc_int() != reader.remaining() or not reader.remaining():
                continue
            while reader.remaining():
                if reader.int1() not in _TEXT_DECIDED:
                    return None
                reader.lenenc_str()
        except ProtocolError:
            continue
        return tail
    return None
