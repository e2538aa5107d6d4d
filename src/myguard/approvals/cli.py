"""``myguard approvals list|show|approve|deny`` working directly on a store.

The approver identity comes from ``--as USER --groups G1,G2``. That is only as
trustworthy as access to the store itself, so the caller of add_commands can plug
in ``identity_check``: it receives the claimed user and groups and returns the
verified Identity (e.g. after prompting for a password and asking the identity
source), whose groups are then the ones that count; it raises AuthFailed to refuse.

Each action sets ``args.func``; the top-level CLI calls ``args.func(args)`` and uses
the returned int as the exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable

from myguard.approvals.backends import SPEC_HELP, open_store
from myguard.approvals.errors import ApprovalError
from myguard.approvals.model import ApprovalRequest, RequestStatus
from myguard.approvals.service import ApprovalService, AuditSink
from myguard.identity.base import AuthFailed, Identity

IdentityCheck = Callable[[str, frozenset[str]], Awaitable[Identity]]

PASSWORD_ENV = "MYGUARD_APPROVALS_PASSWORD"
_STATUS_CHOICES = ["all", *(s.value for s in RequestStatus)]


async def _trust_claim(user: str, groups: frozenset[str]) -> Identity:
    return Identity(user=user, groups=groups, source="cli")


def _summary(request: ApprovalRequest) -> str:
    created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(request.created_at))
    statement = " ".join(request.context.statement.split())
    if len(statement) > 60:
        statement = statement[:57] + "..."
    return (
        f"{request.id:>6}  {request.status.value:<9}  {created}  {request.requester:<16}"
        f"  {request.context.rule:<20}  {statement}"
    )


async def _identity(args: argparse.Namespace, check: IdentityCheck) -> Identity:
    if not args.approver:
        raise AuthFailed("--as USER is required to approve or deny")
    groups = frozenset(g.strip() for g in args.groups.split(",") if g.strip())
    return await check(args.approver, groups)


async def _execute(args: argparse.Namespace, check: IdentityCheck, audit: AuditSink | None) -> int:
    try:
        store = open_store(args.store, password=os.environ.get(PASSWORD_ENV))
    except ValueError as bad:
        print(f"myguard approvals: {bad}", file=sys.stderr)
        return 2
    service = ApprovalService(store, audit=audit)
    try:
        if args.action == "list":
            status = None if args.status == "all" else RequestStatus(args.status)
            for request in await service.list(status, limit=args.limit):
                print(_summary(request))
        elif args.action == "show":
            print(json.dumps((await service.get(args.id)).to_dict(), indent=2, default=str))
        else:
            who = await _identity(args, check)
            if args.action == "approve":
                done = await service.approve(args.id, who.user, who.groups, args.reason)
            else:
                done = await service.deny(args.id, who.user, who.groups, args.reason)
            print(
                f"request {done.id}: {done.status.value} ({len(done.approvals)}"
                f"/{done.policy.min_approvals} approvals)"
            )
        return 0
    except (ApprovalError, AuthFailed) as refused:
        print(f"myguard approvals: {refused}", file=sys.stderr)
        return 1
    finally:
        await service.aclose()
        await store.aclose()


def add_commands(
    subparsers: argparse._SubParsersAction,
    *,
    identity_check: IdentityCheck | None = None,
    audit: AuditSink | None = None,
) -> None:
    """Add ``approvals`` with its actions to the top-level CLI's subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", required=True, help=f"{SPEC_HELP}; password in ${PASSWORD_ENV}")
    common.add_argument("--as", dest="approver", metavar="USER", help="approver user name")
    common.add_argument("--groups", default="", metavar="G1,G2", help="approver groups")

    approvals = subparsers.add_parser("approvals", help="list and decide held statements")
    actions = approvals.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", parents=[common], help="list requests")
    listing.add_argument("--status", default="pending", choices=_STATUS_CHOICES)
    listing.add_argument("--limit", type=int, default=100)
    show = actions.add_parser("show", parents=[common], help="show one request as JSON")
    show.add_argument("id", type=int)
    approve = actions.add_parser("approve", parents=[common], help="approve a request")
    approve.add_argument("id", type=int)
    approve.add_argument("--reason")
    deny = actions.add_parser("deny", parents=[common], help="deny a request")
    deny.add_argument("id", type=int)
    deny.add_argument("--reason", required=True)

    check = identity_check or _trust_claim

    def run(args: argparse.Namespace) -> int:
        return asyncio.run(_execute(args, check, audit))

    approvals.set_defaults(func=run)
