"""myguard's own result sets (the process list, SHOW STATUS, MYGUARD commands) are in the
client's character set, labelled with its default collation, as the server converts its
results to character_set_results."""

from __future__ import annotations

from myguard.protocol.charsets import collation_of
from myguard.protocol.column_definition import parse_column_definition
from myguard.protocol.resultset import text_resultset


def test_myguard_s_own_results_are_in_the_client_s_set():
    packets = text_resultset(
        ["Info", "Größe"], [["Crème", "Мир"]], deprecate_eof=True, extended_metadata=False,
        status=0, codec="cp1252",
    )  # fmt: skip
    columns = [parse_column_definition(p, 0) for p in packets[1:3]]
    assert [c.character_set for c in columns] == [8, 8]  # latin1_swedish_ci
    assert columns[1].name == "Größe".encode("cp1252")
    assert packets[3] == b"\x05Cr\xe8me\x03???"
    plain = text_resultset(["a"], [["è"]], deprecate_eof=True, extended_metadata=False, status=0)
    assert parse_column_definition(plain[1], 0).character_set == 45  # utf8mb4_general_ci
    assert "è".encode() in plain[2]


def test_the_label_is_the_set_s_default_collation():
    assert [collation_of(c) for c in ("cp1252", "koi8_r", "cp1251", "utf-8", "latin2")] == [
        8, 7, 51, 45, 9,
    ]  # fmt: skip
    assert collation_of("dec8-does-not-exist") == 45
