"""``myguard rules check``, ``myguard rules explain`` and ``myguard rules replay``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from myguard.audit.cli import describe_since, parse_since, trail_directory
from myguard.audit.reader import iter_records
from myguard.config_error import ConfigError
from myguard.policy.context import RequestContext
from myguard.policy.decision import ALLOW, APPROVE, BLOCK, MASK, Decision
from myguard.policy.engine import Policy
from myguard.policy.replay import ReplayReport, replay
from myguard.policy.touch import Touch

# "rule 'x' would have <verb> 3 statements"
_VERBS = {ALLOW: "allowed", MASK: "masked", APPROVE: "held for approval", BLOCK: "blocked"}


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``rules`` command group to the top-level ``myguard`` parser."""
    rules = subparsers.add_parser("rules", help="check, explain and replay policy rules files")
    commands = rules.add_subparsers(dest="rules_command", required=True)

    check = commands.add_parser("check", help="validate a rules file")
    check.add_argument("file")
    check.set_defaults(func=run_check)

    explain = commands.add_parser("explain", help="show the analysis of SQL and the decision")
    explain.add_argument("--rules", required=True, help="rules file")
    explain.add_argument("--user", required=True)
    explain.add_argument("--groups", default="", help="comma-separated group names")
    explain.add_argument("--env", required=True, help="environment, e.g. production")
    explain.add_argument("--backend", default="")
    explain.add_argument("--program", default="")
    explain.add_argument("--source", default="127.0.0.1", help="client IP address")
    explain.add_argument("--db", default=None, help="current database")
    explain.add_argument("sql")
    explain.set_defaults(func=run_explain)

    replay_parser = commands.add_parser(
        "replay", help="decide recorded statements with a proposed rules file, show changes"
    )
    replay_parser.add_argument("--audit", metavar="DIR", type=Path, help="audit directory or root")
    replay_parser.add_argument("--rules", required=True, help="the proposed rules file")
    replay_parser.add_argument(
        "--since", help="10m, 2h, 7d or an ISO time (default: the whole trail)"
    )
    replay_parser.add_argument("--user", help="only this user's statements")
    replay_parser.add_argument(
        "--config", metavar="FILE", help="myguard config: --audit from [audit]"
    )
    replay_parser.add_argument(
        "--json", action="store_true", help="JSON with every differing statement"
    )
    replay_parser.set_defaults(func=run_replay)


def load_rules(path: str | Path) -> Policy:
    """Policy.load, with a file that is not UTF-8 reported as a ConfigError too."""
    try:
        return Policy.load(path)
    except UnicodeDecodeError as exc:
        raise ConfigError(
            str(path),
            "(encoding)",
            f"UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})",
        ) from None


def _config_error(exc: ConfigError) -> int:
    for error in getattr(exc, "errors", [exc]):
        print(f"myguard: error: {error}", file=sys.stderr)
    return 2


def run_check(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    try:
        policy = load_rules(args.file)
    except ConfigError as exc:
        return _config_error(exc)
    print(f"OK: {args.file}: {len(policy.rules)} rules, {len(policy.tags)} tags", file=out)
    return 0


def run_explain(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    try:
        policy = load_rules(args.rules)
    except ConfigError as exc:
        return _config_error(exc)
    ctx = RequestContext(
        user=args.user,
        groups=frozenset(g for g in args.groups.split(",") if g),
        environment=args.env,
        backend=args.backend,
        source_ip=args.source,
        program=args.program,
        attributes={},
        current_db=args.db,
    )
    touches = policy.touches(args.sql, args.db)
    for index, one in enumerate(touches, start=1):
        _print_statement(index, one, out)
    _print_decision(policy.decide(ctx, args.sql), out)
    return 0


def _names(items: frozenset) -> str:
    return ", ".join(sorted(map(str, items))) or "-"


def _print_statement(index: int, one: Touch, out: TextIO) -> None:
    s = one.statement
    kind = f"{s.kind}:{s.object_type}" if s.object_type else s.kind
    print(f"statement {index}: {s.sql}", file=out)
    print(f"  kind:      {kind}" + (" (prepared in SQL)" if s.prepared else ""), file=out)
    print(f"  matches:   {_names(s.names)}", file=out)
    print(f"  reads:     {_names(s.reads)}", file=out)
    print(f"  writes:    {_names(s.writes)}", file=out)
    print(f"  columns:   {_names(s.columns)}", file=out)
    if s.star_tables:
        print(f"  all columns of: {_names(s.star_tables)}", file=out)
    print(f"  tags:      {_names(one.tags)}", file=out)
    if s.kind in ("update", "delete"):
        where = "tautology" if s.where_tautology else ("yes" if s.has_where else "no")
        print(f"  where:     {where}" + (" (limit)" if s.has_limit else ""), file=out)
    if s.opaque:
        print("  opaque:    yes (the SQL that runs cannot be inspected)", file=out)
    if s.error:
        print(f"  unparsed:  {s.error}", file=out)


def _print_decision(decision: Decision, out: TextIO) -> None:
    print(f"decision: {decision.action} (rule '{decision.rule}')", file=out)
    if decision.blocked:
        print(f"  client sees: {decision.client_message()}", file=out)
    for target, spec in decision.masks:
        print(f"  mask {target}: {spec}", file=out)
    if decision.approval is not None:
        groups = ", ".join(sorted(decision.approval.approver_groups))
        print(f"  approval by: {groups} ({decision.approval.min_approvals} needed)", file=out)
    for hit in decision.observed:
        print(
            f"  observed: rule '{hit.rule}' would {hit.action} statement {hit.statement + 1}",
            file=out,
        )


def run_replay(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    try:
        policy = load_rules(args.rules)
        directory = trail_directory(args.audit, args.config)
        since = parse_since(args.since) if args.since else None
        report = replay(iter_records(directory, since), policy, user=args.user)
    except ConfigError as exc:
        return _config_error(exc)
    except argparse.ArgumentTypeError as exc:
        print(f"myguard: error: rules replay: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        # ValueError covers AuditFormatError (a damaged segment) and a missing DIR.
        print(f"myguard: error: rules replay: {exc}", file=sys.stderr)
        return 1
    period = describe_since(args.since) if args.since else "in the audit trail"
    if args.json:
        json.dump(_replay_json(report, args.rules, period), out, default=str)
        out.write("\n")
        return 0
    print(
        f"{report.statements} statement(s) {period} replayed against {args.rules}: "
        f"{len(report.differences)} would be decided differently",
        file=out,
    )
    if report.skipped:
        # Not compared rather than reported as a difference that may be false.
        print(f"{len(report.unreplayable)} statement(s) could not be decided again:", file=out)
        for reason, count in report.skipped.most_common():
            print(f"  {count:>8}  {reason}", file=out)
    for (rule, action, user), count in report.by_rule.most_common():
        print(f"{_would(rule, action, count, user)} {period}", file=out)
    if report.transitions:
        print("recorded -> replayed decision:", file=out)
        for (old, new), count in sorted(report.transitions.items()):
            print(f"  {old:>8} -> {new:<8} {count:>8}", file=out)
    return 0


def _would(rule: str, action: str, count: int, user: str) -> str:
    verb = _VERBS.get(action, action)
    plural = "" if count == 1 else "s"
    return f"rule '{rule}' would have {verb} {count} statement{plural} of {user}'s"


def _replay_json(report: ReplayReport, rules: str, period: str) -> dict[str, object]:
    return {
        "rules": rules,
        "period": period,
        "statements": report.statements,
        "differing": len(report.differences),
        "by_rule": [
            {"rule": rule, "decision": action, "user": user, "count": count}
            for (rule, action, user), count in report.by_rule.most_common()
        ],
        "transitions": [
            {"recorded": old, "replayed": new, "count": count}
            for (old, new), count in sorted(report.transitions.items())
        ],
        "differences": [difference.to_dict() for difference in report.differences],
        "not_replayed": len(report.unreplayable),
        "not_replayed_by_reason": [
            {"reason": reason, "count": count} for reason, count in report.skipped.most_common()
        ],
        "not_replayed_statements": [one.to_dict() for one in report.unreplayable],
    }
