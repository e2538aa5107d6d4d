"""The settings myguard answers itself and sends in front of the next command: which texts
qualify, the OK's status flags, the one SET that carries them (no sockets)."""

from __future__ import annotations

import pytest

from myguard.protocol.charsets import ClientCharsets
from myguard.protocol.constants import ServerStatus
from myguard.session.deferred_settings import Setting, read, status_after, tracked_tail

AUTOCOMMIT = ServerStatus.SERVER_STATUS_AUTOCOMMIT
IN_TRANS = ServerStatus.SERVER_STATUS_IN_TRANS
NO_BACKSLASH = ServerStatus.SERVER_STATUS_NO_BACKSLASH_ESCAPES


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SET NAMES utf8mb4", Setting(names=("utf8mb4", None))),  # PyMySQL, mysqlclient
        ("set names 'latin1'", Setting(names=("latin1", None))),
        (
            "SET NAMES `utf8mb4` COLLATE 'UTF8MB4_UNICODE_CI';",
            Setting(names=("utf8mb4", "utf8mb4_unicode_ci")),
        ),
        ("SET AUTOCOMMIT = 0", Setting(autocommit=False)),  # PyMySQL
        ("SET autocommit=1", Setting(autocommit=True)),  # mysqlclient
        ("  set @@session.autocommit := OFF ", Setting(autocommit=False)),
        ("SET SESSION autocommit = true", Setting(autocommit=True)),
        ("SET @@autocommit=on", Setting(autocommit=True)),
    ],
)
def test_read_finds_the_settings_drivers_send(text: str, expected: Setting) -> None:
    assert read(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "SET GLOBAL autocommit = 0",  # not the session's
        "SET autocommit = 0, sql_mode = ''",  # more than one setting
        "SET NAMES utf8mb4; DROP TABLE t",  # a second statement
        "SET NAMES utf8mb4 /* comment */",
        "SET autocommit = @x",  # not a literal
        "SET autocommit = 2",
        "SET NAMES DEFAULT COLLATE x y",
        "SET CHARACTER SET utf8mb4",  # also sets character_set_connection differently
        "SET @autocommit = 0",  # a user variable
        "SELECT 'SET NAMES utf8mb4'",
        "SET NAMES utf8mb\u00e4",
    ],
)
def test_read_leaves_everything_else_to_the_backend(text: str) -> None:
    assert read(text) is None


def test_the_ok_carries_the_session_flags_with_autocommit_as_set() -> None:
    statement_flags = (
        ServerStatus.SERVER_STATUS_NO_INDEX_USED
        | ServerStatus.SERVER_STATUS_LAST_ROW_SENT
        | ServerStatus.SERVER_QUERY_WAS_SLOW
    )
    status = AUTOCOMMIT | NO_BACKSLASH | statement_flags
    assert status_after(Setting(names=("utf8mb4", None)), status) == AUTOCOMMIT | NO_BACKSLASH
    assert status_after(Setting(autocommit=False), status) == NO_BACKSLASH
    assert status_after(Setting(autocommit=False), AUTOCOMMIT | IN_TRANS) == IN_TRANS
    # already on: nothing to commit
    assert status_after(Setting(autocommit=True), AUTOCOMMIT | IN_TRANS) == AUTOCOMMIT | IN_TRANS


@pytest.mark.parametrize("status", [0, IN_TRANS])
def test_switching_autocommit_on_is_never_deferred(status: int) -> None:
    # it commits an open transaction: the locks go when the client asks
    assert status_after(Setting(autocommit=True), status) is None


def test_client_charsets_allow_what_the_backend_lists_for_clients() -> None:
    charsets = ClientCharsets(
        [
            ("utf8mb4", "utf8mb4_general_ci"),
            ("utf8mb4", "utf8mb4_bin"),
            ("LATIN1", "latin1_swedish_ci"),
            ("ucs2", "ucs2_general_ci"),  # the server refuses it for a client
        ]
    )
    assert charsets.allows("utf8mb4", None)
    assert charsets.allows("utf8mb4", "utf8mb4_bin")
    assert charsets.allows("latin1", "latin1_swedish_ci")
    assert not charsets.allows("utf8mb4", "latin1_swedish_ci")  # another set's collation
    assert not charsets.allows("utf8mb4", "utf8mb4_nonexistent_ci")
    assert not charsets.allows("gbk", None)  # not listed
    assert not charsets.allows("ucs2", None)
    assert not ClientCharsets([]).allows("utf8mb4", None)


# What MariaDB 10.11 answers with its default trackers (session_track_system_variables:
# autocommit and the character sets), as seen on the wire.
AUTOCOMMIT_OFF = bytes.fromhex("11000f0a6175746f636f6d6d6974034f4646")
NAMES_UTF8MB4 = bytes.fromhex(
    "62001d146368617261637465725f7365745f636c69656e7407757466386d6234"
    "001e156368617261637465725f7365745f726573756c747307757466386d6234"
    "0021186368617261637465725f7365745f636f6e6e656374696f6e07757466386d6234"
)
STATE_CHANGED = ServerStatus.SERVER_SESSION_STATE_CHANGED


def ok(status: int, tail: bytes = b"", warnings: int = 0, head: bytes = b"\x00\x00\x00") -> bytes:
    return head + status.to_bytes(2, "little") + warnings.to_bytes(2, "little") + tail


@pytest.mark.parametrize(
    ("status", "tail"),
    [
        (0, AUTOCOMMIT_OFF),
        (AUTOCOMMIT | IN_TRANS, NAMES_UTF8MB4),
        (0, bytes.fromhex("14000f0a6175746f636f6d6d6974034f4646020131")),  # state_change
        (0, b"\x00" + AUTOCOMMIT_OFF),  # MySQL: the empty info text first
        (AUTOCOMMIT, b""),  # nothing tracked
    ],
)
def test_a_servers_ok_to_a_setting_is_learned_with_what_its_trackers_said(
    status: int, tail: bytes
) -> None:
    flags = status | STATE_CHANGED if tail else status
    assert tracked_tail(ok(flags, tail), status) == tail


@pytest.mark.parametrize(
    "answer",
    [
        ok(STATE_CHANGED | AUTOCOMMIT, AUTOCOMMIT_OFF),  # other flags than expected
        ok(0, AUTOCOMMIT_OFF),  # changes without the flag that says so
        ok(STATE_CHANGED, b""),  # the flag without changes
        ok(STATE_CHANGED, AUTOCOMMIT_OFF, warnings=1),
        ok(STATE_CHANGED, AUTOCOMMIT_OFF, head=b"\x00\x01\x00"),  # a row affected
        ok(STATE_CHANGED, AUTOCOMMIT_OFF[:-1]),  # truncated
        ok(STATE_CHANGED, AUTOCOMMIT_OFF + b"\x00"),  # more than the length says
        ok(STATE_CHANGED, b"\x0b\x05\x09\x08________"),  # transaction state: not the text's
        ok(STATE_CHANGED, b"\x07\x01\x05\x04shop"),  # a schema
        b"\xff\x19\x04#42000",
        b"",
    ],
)
def test_an_ok_that_says_more_than_the_text_decides_is_not_learned(answer: bytes) -> None:
    assert tracked_tail(answer, 0) is None
