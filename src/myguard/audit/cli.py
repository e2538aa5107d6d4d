"""``myguard audit tail|verify|export|stats``: the ops view of the audit trail.

The top-level CLI calls :func:`add_commands`; each subcommand sets ``func`` to a handler
taking the parsed namespace and returning the exit code. ``python -m myguard.audit.cli
audit ...`` runs the group on its own. DIR is a chain directory or a root of several
chains (one per worker process); ``--config`` takes it from myguard's config instead.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from myguard.audit.chains import Chain, find_chains, merge_by_time
from myguard.audit.follow import Follower
from myguard.audit.reader import iter_records, read_segment
from myguard.audit.records import AuditFormatError, AuditRecord
from myguard.audit.segment import list_segments, read_key_file
from myguard.audit.verify import VerifyReport, verify
from myguard.config import load_audit_config
from myguard.config_error import ConfigError

KEY_FILE_ENV = "MYGUARD_AUDIT_HMAC_KEY_FILE"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_UNIT_NAMES = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week"}

_COLOURS = {"green": "\033[32m", "red": "\033[31m", "yellow": "\033[33m", "dim": "\033[2m"}
_RESET = "\033[0m"

CSV_COLUMNS = (
    "time", "seq", "type", "user", "groups", "source_address", "client_program", "backend",
    "session_id", "environment", "decision", "rule", "observed_rules", "kind", "tables_read",
    "tables_written", "columns", "data_tags", "masked_columns", "approval_id", "rows_returned",
    "rows_affected", "error_code", "started_at", "duration", "fingerprint", "intent_id",
    "statement", "success", "reason", "auth_plugin", "tls", "event", "request_id", "actor",
)  # fmt: skip


def parse_since(text: str, now: float | None = None) -> float:
    """``10m``, ``2h``, ``3d``, ``1w``, ``30s`` ago, or an ISO 8601 time (naive = local)."""
    match = _DURATION.fullmatch(text.strip())
    if match:
        now = time.time() if now is None else now
        return now - float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--since: expected e.g. 10m, 2h, 3d or an ISO time, got {text!r}"
        ) from None


def describe_since(text: str) -> str:
    """A --since value (already accepted by parse_since) in words: ``in the last 7 days``."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        return f"since {text}"
    amount, unit = match.group(1), _UNIT_NAMES[match.group(2)]
    return f"in the last {amount} {unit}" + ("" if amount == "1" else "s")


def trail_directory(directory: Path | None, config_file: str | None) -> Path:
    """DIR as given, else the ``[audit] directory`` of the myguard config ``config_file``."""
    if directory is not None:
        return directory
    if config_file is None:
        raise ValueError("give the audit directory (DIR) or --config FILE")
    configured = load_audit_config(config_file).directory
    if configured is None:
        raise ValueError(f"{config_file}: [audit] has no directory (auditing is disabled)")
    return configured


# --- selection -------------------------------------------------------------------------


def _tables(record: AuditRecord) -> list[str]:
    return [*record.get("tables_read", ()), *record.get("tables_written", ())]


def _matcher(args: argparse.Namespace) -> Callable[[AuditRecord], bool]:
    def matches(record: AuditRecord) -> bool:
        if args.user is not None and record.get("user") != args.user:
            return False
        if args.group is not None and args.group not in record.get("groups", ()):
            return False
        if args.decision is not None and record.get("decision") != args.decision:
            return False
        if args.backend is not None and record.get("backend") != args.backend:
            return False
        if args.type is not None and record.type != args.type:
            return False
        if args.table is not None:
            # "orders" matches "shop.orders"; "shop.orders" matches only itself.
            wanted = args.table
            if not any(t == wanted or t.rsplit(".", 1)[-1] == wanted for t in _tables(record)):
                return False
        return True

    return matches


def _selected(args: argparse.Namespace) -> Iterator[AuditRecord]:
    matches = _matcher(args)
    return (record for record in iter_records(args.directory, args.since) if matches(record))


# --- rendering -------------------------------------------------------------------------


def _iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="microseconds")


def json_line(record: AuditRecord) -> str:
    """One JSON object per record: ISO time (UTC) plus every field under its long name."""
    return json.dumps(
        {**record.to_dict(), "time": _iso(record.time)}, default=str, ensure_ascii=False
    )


def _detail(record: AuditRecord) -> str:
    get = record.get
    if record.type in ("statement", "statement_intent"):
        text = " ".join(str(get("statement", "")).split())
        extra = [
            f"{name}={get(name)}"
            for name in ("rows_returned", "rows_affected", "error_code", "rule")
            if get(name) is not None
        ]
        return text + (f"  [{' '.join(extra)}]" if extra else "")
    if record.type == "login":
        outcome = "ok" if get("success") else f"FAILED: {get('reason', '')}"
        return f"{outcome} from {get('source_address', '?')} via {get('client_program', '?')}"
    if record.type == "approval":
        actor = f" by {get('actor')}" if get("actor") else ""
        reason = f": {get('reason')}" if get("reason") else ""
        return f"{get('event')} {get('request_id')}{actor}{reason}"
    if record.type == "session_end":
        return f"session {get('session_id')} ended ({get('reason', '')})"
    where = f" {get('segment')}@{get('offset')}" if get("segment") else ""
    return f"{get('reason')}{where}"


def _status(record: AuditRecord) -> str:
    if record.type == "login":
        return "ok" if record.get("success") else "failed"
    return str(record.get("decision") or record.get("event") or "")


def _colour_for(record: AuditRecord) -> str | None:
    status = _status(record)
    if status in ("deny", "denied", "failed", "block", "blocked"):
        return "red"
    if status in ("allow", "ok", "approved", "executed"):
        return "green"
    if record.type == "restart":
        return "dim"
    return "yellow" if status else None


def human_line(record: AuditRecord, colour: bool) -> str:
    """Aligned columns: local time, chain (from a root of chains), type, user,
    decision/outcome, backend, detail."""
    stamp = datetime.fromtimestamp(record.time).strftime("%Y-%m-%d %H:%M:%S")
    chain = f"{record.chain:<10.10} " if record.chain else ""
    line = (
        f"{stamp}  {chain}{record.type:<16.16} {str(record.get('user') or '-'):<16.16} "
        f"{_status(record) or '-':<9.9} {str(record.get('backend') or '-'):<12.12} "
        f"{_detail(record)}"
    )
    tint = _colour_for(record) if colour else None
    return f"{_COLOURS[tint]}{line}{_RESET}" if tint else line


# --- commands --------------------------------------------------------------------------


def _last_matching(
    args: argparse.Namespace, count: int
) -> tuple[list[AuditRecord], list[AuditRecord]]:
    """The last ``count`` matching records of all chains and the newest record of each
    chain (where following continues)."""
    matches = _matcher(args)
    found: list[list[AuditRecord]] = []
    newest: list[AuditRecord] = []
    for chain in find_chains(args.directory):
        records, last = _chain_tail(chain, matches, count)
        found.append(records)
        if last is not None:
            newest.append(last)
    merged = list(merge_by_time(found))
    return merged[-count:] if count > 0 else [], newest


def _chain_tail(
    chain: Chain, matches: Callable[[AuditRecord], bool], count: int
) -> tuple[list[AuditRecord], AuditRecord | None]:
    """Reading segments newest first: up to the last ``count`` matching records and the
    newest record of the chain."""
    found: list[AuditRecord] = []
    newest: AuditRecord | None = None
    for _, path in reversed(list_segments(chain.path)):
        records = list(read_segment(path, chain.name))
        if newest is None and records:
            newest = records[-1]
        found[:0] = [record for record in records if matches(record)]
        if newest is not None and len(found) >= count:
            break
    return found[-count:] if count > 0 else [], newest


def _tail(args: argparse.Namespace) -> int:
    out: TextIO = sys.stdout
    colour = out.isatty() and not args.json and "NO_COLOR" not in os.environ

    def show(record: AuditRecord) -> None:
        out.write((json_line(record) if args.json else human_line(record, colour)) + "\n")

    if args.since is not None:
        matches = _matcher(args)
        # Where each chain ends now, so that one with nothing since --since is followed
        # from there, not from its start; the records shown below move it on.
        last_of_chain = {record.chain: record for record in _last_matching(args, 0)[1]}
        for record in iter_records(args.directory, args.since):
            last_of_chain[record.chain] = record
            if matches(record):
                show(record)
        newest = list(last_of_chain.values())
    else:
        records, newest = _last_matching(args, args.lines)
        for record in records:
            show(record)
    out.flush()
    if not args.follow:
        return 0
    matches = _matcher(args)
    # Chains without any record yet are followed from their start.
    follower = Follower(args.directory, after=newest)
    try:
        for record in follower:
            if matches(record):
                show(record)
                out.flush()
    except KeyboardInterrupt:
        return 130
    finally:
        follower.close()
    return 0


def _verify(args: argparse.Namespace) -> int:
    # The key the config names is the one the trail was written with: it beats the
    # environment's, an explicit --hmac-key-file beats both.
    key_file = (
        args.hmac_key_file
        or (args.config and load_audit_config(args.config).hmac_key_file)
        or os.environ.get(KEY_FILE_ENV)
    )
    key = read_key_file(key_file) if key_file else None
    report = verify(args.directory, key)
    for chain in report.chains or [report]:
        _print_checked(chain)
    if report.chains:
        print(
            f"{len(report.chains)} chains: {report.segments} segment(s), "
            f"{report.records} record(s) checked"
        )
    for problem in report.problems:
        print(f"FAILED: {problem}")
    if report.problems:
        return 1
    print("OK: every checksum and chain link is valid")
    return 0


def _print_checked(report: VerifyReport) -> None:
    prefix = f"{report.chain}: " if report.chain else ""
    for note in report.notes:
        print(f"note: {prefix}{note}")
    span = (
        f"records {report.first_record}..{report.last_record}"
        if report.last_record is not None
        else "no records"
    )
    print(f"{prefix}{report.segments} segment(s), {report.records} record(s) checked, {span}")


def _csv_value(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return ";".join(map(str, value))
    if isinstance(value, dict):
        return ";".join(f"{key}:{item}" for key, item in value.items())
    return "" if value is None else value


def _export(args: argparse.Namespace) -> int:
    out: TextIO = sys.stdout
    records = _selected(args)
    if args.format == "jsonl":
        for record in records:
            out.write(json_line(record) + "\n")
        return 0
    columns = CSV_COLUMNS
    if any(chain.name for chain in find_chains(args.directory)):
        # Record numbers repeat across chains: (chain, seq) names a record.
        columns = (*columns[:2], "chain", *columns[2:])
    writer = csv.writer(out)
    writer.writerow(columns)
    for record in records:
        row = {**record.fields(), "time": _iso(record.time), "seq": record.seq}
        row["type"], row["chain"] = record.type, record.chain
        writer.writerow([_csv_value(row.get(column)) for column in columns])
    return 0


def _stats(args: argparse.Namespace) -> int:
    users: Counter[str] = Counter()
    decisions: Counter[str] = Counter()
    tables: Counter[str] = Counter()
    for record in _selected(args):
        if record.type != "statement":
            continue
        users[record.get("user", "-")] += 1
        decisions[record.get("decision", "-")] += 1
        tables.update(set(_tables(record)))
    groups = {"user": users, "decision": decisions, "table": tables}
    if args.json:
        print(json.dumps({name: dict(counter.most_common()) for name, counter in groups.items()}))
        return 0
    print(f"statements: {sum(users.values())}")
    for name, counter in groups.items():
        print(f"\nby {name}:")
        _print_counts(counter.most_common())
    return 0


def _print_counts(rows: Iterable[tuple[str, int]]) -> None:
    rows = list(rows)
    width = max((len(str(key)) for key, _ in rows), default=0)
    for key, count in rows:
        print(f"  {str(key):<{width}}  {count:>8}")


def _run_safely(handler: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    """Report unreadable directories, damaged segments and config errors as one line,
    exit 2; DIR defaults to the directory in ``--config``."""

    def run(args: argparse.Namespace) -> int:
        try:
            args.directory = trail_directory(args.directory, args.config)
            return handler(args)
        except BrokenPipeError:
            # The reader (head, less) went away: stop quietly, like other Unix tools.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except (OSError, AuditFormatError, ValueError, ConfigError) as exc:
            print(f"myguard audit: {exc}", file=sys.stderr)
            return 2

    return run


# --- parser ----------------------------------------------------------------------------


def _add_directory(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "directory",
        metavar="DIR",
        type=Path,
        nargs="?",
        help="audit directory: one chain, or a root with a chain per worker",
    )
    parser.add_argument(
        "--config", metavar="FILE", help="myguard config: DIR and HMAC key from its [audit]"
    )


def _add_selection(parser: argparse.ArgumentParser) -> None:
    _add_directory(parser)
    parser.add_argument("--since", type=parse_since, help="10m, 2h, 3d or an ISO time")
    parser.add_argument("--user")
    parser.add_argument("--group")
    parser.add_argument("--table", help="db.table, or a table name in any database")
    parser.add_argument("--decision")
    parser.add_argument("--backend")
    parser.add_argument("--type", help="record type (statement, login, approval, ...)")


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``audit`` command group to a top-level CLI's subparsers."""
    audit = subparsers.add_parser("audit", help="read, follow and verify the audit trail")
    commands = audit.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)

    tail = commands.add_parser("tail", help="show recent records (-f to follow)")
    _add_selection(tail)
    tail.add_argument("-f", "--follow", action="store_true", help="keep following new records")
    tail.add_argument("-n", "--lines", type=int, default=20, help="records to show (no --since)")
    tail.add_argument("--json", action="store_true", help="JSON lines instead of columns")
    tail.set_defaults(func=_run_safely(_tail))

    check = commands.add_parser("verify", help="check every checksum and the hash chain")
    _add_directory(check)
    check.add_argument(
        "--hmac-key-file",
        help=f"key for HMAC-chained segments (default: from --config, else ${KEY_FILE_ENV})",
    )
    check.set_defaults(func=_run_safely(_verify))

    export = commands.add_parser("export", help="write records as JSON lines or CSV (SIEM)")
    _add_selection(export)
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.set_defaults(func=_run_safely(_export))

    stats = commands.add_parser("stats", help="statement counts per user, decision and table")
    _add_selection(stats)
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(func=_run_safely(_stats))


def main(argv: list[str] | None = None) -> int:
    """Run ``audit ...`` on its own (the product CLI embeds it via add_commands)."""
    parser = argparse.ArgumentParser(prog="myguard")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
