"""SQL statements from MariaDB's own test suite (mysqltest ``.test`` files), for fuzzing.

``python tests/analysis/mysqltest_sql.py`` rewrites the committed sample corpus from the
``mariadb-test`` Debian package; ``--all`` prints every statement of every file instead.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

SUITE = Path("/usr/share/mysql/mysql-test/main")
CORPUS = Path(__file__).resolve().parent / "data" / "mysqltest_statements.jsonl"

# mysqltest's own commands (client/mysqltest.cc): a statement starting with one is not SQL.
_COMMANDS = frozenset(
    """
    append_file assert break cat_file change_user character_set chmod copy_file
    copy_files_wildcard dec delimiter die diff_files dirty_close disable_abort_on_error
    disable_connect_log disable_info disable_metadata disable_ps_protocol
    disable_ps2_protocol disable_query_log disable_reconnect disable_result_log
    disable_session_track_info disable_view_protocol disable_warnings
    disable_cursor_protocol disable_service_connection disable_async_client
    disable_parsing disable_prepare_warnings disable_column_names disconnect echo
    enable_abort_on_error enable_connect_log enable_info enable_metadata enable_ps_protocol
    enable_ps2_protocol enable_query_log enable_reconnect enable_result_log
    enable_session_track_info enable_view_protocol enable_warnings enable_cursor_protocol
    enable_service_connection enable_async_client enable_parsing enable_prepare_warnings
    enable_column_names end end_timer error exec exec_in_background execw exit file_exists
    horizontal_results inc let list_files list_files_append_file list_files_write_file
    lowercase_result mkdir move_file output perl ping query_attributes real_sleep reap
    remove_file remove_files_wildcard replace_column replace_numeric_round replace_regex
    replace_result require result_format rmdir save_master_pos send_quit send_shutdown
    shutdown_server single_query skip sleep sorted_result partially_sorted_result
    source start_timer sync_slave_with_master sync_with_master system vertical_results
    wait_for_slave_to_stop write_file connect connection reset_connection
    """.split()
)
# Commands followed by SQL.
_SQL_COMMANDS = frozenset(
    {"query_vertical", "query_horizontal", "send_eval", "query", "eval", "evalp", "send"}
)
# Commands whose body runs to a terminator line (EOF unless named).
_HEREDOCS = frozenset({"perl", "write_file", "append_file"})
_BLOCK_START = re.compile(r"\s*(?:if|while)\s*\(", re.I)
_LET = re.compile(r"\s*let\s+\$(\w+)\s*=\s*(.*)", re.I | re.S)
_VAR = re.compile(r"\$(\w+)")


def statements(text: str) -> Iterator[str]:
    """The SQL statements of one ``.test`` file, ``$variables`` set by simple ``let``s filled in."""
    delimiter = ";"
    variables: dict[str, str] = {}
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        index += 1
        if not line or line.startswith(("#", "{", "}")):
            continue
        if line.startswith("--"):
            words = line[2:].split(None, 1)
            if words and words[0].lower() == "delimiter" and len(words) > 1:
                delimiter = words[1].strip()
            elif words and words[0].lower() in _HEREDOCS:
                index = _skip_heredoc(lines, index, words)
            continue
        if _BLOCK_START.match(line):
            continue
        # A command runs to the delimiter, which may be lines further on, outside quotes.
        command, index = _read_command(lines, index - 1, delimiter)
        first = re.match(r"\s*(\w*)", command)
        word = first.group(1).lower() if first else ""
        if word == "delimiter":
            delimiter = command.split(None, 1)[1].strip() if len(command.split()) > 1 else ";"
            continue
        if word in _HEREDOCS:
            index = _skip_heredoc(lines, index, command.split(None, 1))
            continue
        let = _LET.match(command)
        if let:
            value = let.group(2).strip()
            if "`" not in value and "$" not in value:
                variables[let.group(1)] = value
            continue
        if word in _SQL_COMMANDS:
            command = command.lstrip()[len(word) :]
        elif word in _COMMANDS:
            continue
        if not command.strip():
            continue
        yield _VAR.sub(lambda m: variables.get(m.group(1), m.group(0)), command).strip()


def _read_command(lines: list[str], index: int, delimiter: str) -> tuple[str, int]:
    """Text from lines[index] up to the delimiter outside quotes, and the next line's index."""
    parts: list[str] = []
    quote = ""
    while index < len(lines):
        line = lines[index]
        index += 1
        position = 0
        while position < len(line):
            char = line[position]
            if quote:
                if char == "\\" and quote != "`":
                    position += 2
                    continue
                if char == quote:
                    quote = ""
            elif char in "'\"`":
                quote = char
            elif line.startswith(delimiter, position):
                parts.append(line[:position])
                # The rest of the line after the delimiter is mysqltest's next command.
                rest = line[position + len(delimiter) :].strip()
                if rest:
                    lines.insert(index, rest)
                return "\n".join(parts), index
            position += 1
        parts.append(line)
    return "\n".join(parts), index


def _skip_heredoc(lines: list[str], index: int, words: list[str]) -> int:
    terminator = "EOF"
    if len(words) > 1:
        args = words[1].rstrip(";").split()
        if words[0].lower() != "perl" and len(args) > 1:
            terminator = args[1]
        elif words[0].lower() == "perl" and args:
            terminator = args[0]
    while index < len(lines) and lines[index].strip() != terminator:
        index += 1
    return index + 1


def suite_statements(suite: Path = SUITE) -> Iterator[tuple[str, str]]:
    """(file name, statement) for every ``.test`` file of the suite."""
    for path in sorted(suite.glob("*.test")):
        text = path.read_bytes().decode("utf-8", "surrogateescape")
        for statement in statements(text):
            yield path.name, statement


def sample(suite: Path = SUITE, count: int = 6000, longest: int = 1500) -> list[str]:
    """``count`` statements of distinct shapes (first three words), spread evenly over the
    suite's files, as JSON lines."""
    seen: set[tuple[str, ...]] = set()
    candidates: list[str] = []
    for _, statement in suite_statements(suite):
        shape = tuple(w.upper() for w in re.findall(r"\w+", statement)[:3])
        if len(statement) <= longest and shape not in seen:
            seen.add(shape)
            candidates.append(statement)
    step = max(1.0, len(candidates) / count)
    return [json.dumps(candidates[int(i * step)]) for i in range(min(count, len(candidates)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--all", action="store_true", help="print every statement (JSON lines)")
    args = parser.parse_args()
    if args.all:
        for name, statement in suite_statements():
            print(json.dumps([name, statement]))
        return
    lines = sample()
    CORPUS.parent.mkdir(exist_ok=True)
    CORPUS.write_text("\n".join(lines) + "\n")
    print(f"{len(lines)} statements -> {CORPUS}", file=sys.stderr)


if __name__ == "__main__":
    main()
