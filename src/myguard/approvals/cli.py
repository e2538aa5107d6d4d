"""``myguard approvals list|show|approve|deny`` working directly on a store.

list and show only read: they never create the store, and a store that does not exist
is an error. approve and deny authenticate the approver against the identity source
of ``--config`` (users file or LDAP bind, with the password from a prompt or
``--password-stdin``): the groups that count are the source's, never the caller's.
Each step is written to the audit trail before the command reports success, in the
chain ``approvals-cli/`` of the configured audit directory (one writer at a time,
under a lock, since a chain has exactly one writer).

Each action sets ``args.func``; the top-level CLI calls ``args.func(args)`` and uses
the returned int as the exit status: 0 done, 1 refused or failed, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import getpass
import json
import os
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pymysql

from myguard.approvals.audit import step_record
from myguard.approvals.backends import SPEC_HELP, open_store
from myguard.approvals.errors import ApprovalError
from myguard.approvals.model import ApprovalRequest, RequestStatus
from myguard.approvals.service import ApprovalService, AuditSink
from myguard.approvals.store import ApprovalStore, StoreMissing
from myguard.audit import AuditUnavailable, AuditWriter
from myguard.config import ApprovalsConfig, AuditConfig, IdentityConfig
from myguard.config_error import ConfigError
from myguard.identity.base import AuthFailed, Identity, IdentityUnavailable
from myguard.identity.sources import open_source

PASSWORD_ENV = "MYGUARD_APPROVALS_PASSWORD"
AUDIT_CHAIN = "approvals-cli"
_STATUS_CHOICES = ["all", *(s.value for s in RequestStatus)]
_STORE_ERRORS = (sqlite3.Error, pymysql.err.MySQLError, OSError)


class CliError(Exception):
    """Ends the command with ``myguard: error: MESSAGE`` and exit status ``status``."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class ApproverConfig:
    """What the approvals CLI needs from myguard.toml (no backend passwords)."""

    file: str
    identity: IdentityConfig
    approvals: ApprovalsConfig
    audit: AuditConfig


def _load(path: str) -> ApproverConfig:
    from myguard.config import load_approver_config

    return ApproverConfig(path, *load_approver_config(path))


def _summary(request: ApprovalRequest) -> str:
    created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(request.created_at))
    statement = " ".join(request.context.statement.split())
    if len(statement) > 60:
        statement = statement[:57] + "..."
    return (
        f"{request.id:>6}  {request.status.value:<9}  {created}  {request.requester:<16}"
        f"  {request.context.rule:<20}  {statement}"
    )


def _password(args: argparse.Namespace) -> str:
    try:
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = getpass.getpass(f"Password for {args.approver}: ")
    except EOFError:
        password = ""
    if not password:
        raise CliError(f"no password given for {args.approver}")
    return password


async def _authenticate(args: argparse.Namespace, config: ApproverConfig) -> Identity:
    password = _password(args)
    source = open_source(config.identity, config.file)
    try:
        return await source.authenticate(args.approver, password)
    except AuthFailed:
        # The reason (unknown user, wrong password) stays out of the message, as for logins.
        raise CliError(f"authentication failed for {args.approver}") from None
    except IdentityUnavailable as exc:
        raise CliError(f"the identity provider is unavailable: {exc}") from None
    finally:
        await source.close()


@asynccontextmanager
async def _audit_sink(config: ApproverConfig) -> AsyncIterator[tuple[AuditSink, list[str]]]:
    """A sink writing each step to the CLI's chain, and the list of write failures."""
    failures: list[str] = []
    if not config.audit.enabled:

        async def discard(step: dict[str, Any]) -> None:
            return None

        yield discard, failures
        return
    from myguard.server import open_audit

    chain = config.audit.directory / AUDIT_CHAIN
    try:
        chain.mkdir(parents=True, exist_ok=True)
        lock = os.open(chain / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise CliError(f"cannot write the audit trail in {chain}: {exc}") from None
    try:
        # Two approvers deciding at once would otherwise both append to one chain.
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            writer: AuditWriter = await open_audit(config.audit, AUDIT_CHAIN)
        except (OSError, AuditUnavailable) as exc:
            raise CliError(f"cannot write the audit trail in {chain}: {exc}") from None

        async def write(step: dict[str, Any]) -> None:
            try:
                await writer.write(step_record(step))
            except Exception as exc:
                failures.append(str(exc))
                raise

        try:
            yield write, failures
        finally:
            await writer.close()
    finally:
        os.close(lock)


async def _read(args: argparse.Namespace, config: ApproverConfig | None) -> None:
    spec, password = _store_spec(args, config)
    store = _open_store(spec, password)
    try:
        if args.action == "show":
            request = await store.get(args.id)
            if request is None:
                raise CliError(f"no approval request {args.id} in {spec}")
            print(json.dumps(request.to_dict(), indent=2, default=str))
            return
        status = None if args.status == "all" else RequestStatus(args.status)
        requests = await store.list(status, limit=args.limit)
        for request in requests:
            print(_summary(request))
        if not requests:
            print(f"no requests (status {args.status}) in {spec}")
    finally:
        await store.aclose()


async def _decide(args: argparse.Namespace, config: ApproverConfig) -> None:
    spec, password = _store_spec(args, config)
    who = await _authenticate(args, config)
    async with _audit_sink(config) as (sink, audit_failures):
        store = _open_store(spec, password)
        service = ApprovalService(store, audit=sink, decision_ttl=config.approvals.decision_ttl)
        try:
            if args.action == "approve":
                done = await service.approve(args.id, who.user, who.groups, args.reason)
            else:
                done = await service.deny(args.id, who.user, who.groups, args.reason)
        except ApprovalError as refused:
            raise CliError(refused.message) from None
        finally:
            await service.aclose()
            await store.aclose()
    if audit_failures:
        raise CliError(
            f"request {done.id} is {done.status.value}, but its audit record was not "
            f"written: {audit_failures[0]}"
        )
    print(
        f"request {done.id}: {done.status.value} ({len(done.approvals)}"
        f"/{done.policy.min_approvals} approvals) by {who.user}"
    )


def _open_store(spec: str, password: str | None) -> ApprovalStore:
    # Never create a store: a wrong path must not become a new, empty queue.
    try:
        return open_store(spec, password=password, create=False)
    except ValueError as exc:
        raise CliError(str(exc), 2) from None


def _store_spec(args: argparse.Namespace, config: ApproverConfig | None) -> tuple[str, str | None]:
    if args.store:
        return args.store, os.environ.get(PASSWORD_ENV)
    if config is None:
        raise CliError("--store SPEC or --config FILE is required", 2)
    return config.approvals.store, config.approvals.store_password


async def _execute(args: argparse.Namespace) -> None:
    config = _load(args.config) if args.config else None
    if args.action in ("list", "show"):
        await _read(args, config)
    elif config is None:
        raise CliError("--config FILE is required to authenticate the approver", 2)
    else:
        await _decide(args, config)


def _run(args: argparse.Namespace) -> int:
    try:
        asyncio.run(_execute(args))
    except CliError as exc:
        print(f"myguard: error: {exc}", file=sys.stderr)
        return exc.status
    except ConfigError as exc:
        print(f"myguard: error: {exc}", file=sys.stderr)
        return 2
    except StoreMissing as exc:
        print(f"myguard: error: {exc}", file=sys.stderr)
        return 1
    except _STORE_ERRORS as exc:
        print(f"myguard: error: approval store {args.store or args.config}: {exc}", file=sys.stderr)
        return 1
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``approvals`` with its actions to the top-level CLI's subparsers."""
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--config", metavar="FILE", help="myguard.toml: the store, identity source and audit trail"
    )
    where.add_argument(
        "--store", help=f"{SPEC_HELP} (default: the config's); password in ${PASSWORD_ENV}"
    )
    approver = argparse.ArgumentParser(add_help=False)
    approver.add_argument(
        "--as", dest="approver", metavar="USER", required=True, help="your user name"
    )
    approver.add_argument(
        "--password-stdin",
        action="store_true",
        help="read your password from standard input (default: prompt)",
    )

    approvals = subparsers.add_parser("approvals", help="list and decide held statements")
    actions = approvals.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", parents=[where], help="list requests")
    listing.add_argument("--status", default="pending", choices=_STATUS_CHOICES)
    listing.add_argument("--limit", type=int, default=100)
    show = actions.add_parser("show", parents=[where], help="show one request as JSON")
    show.add_argument("id", type=int)
    approve = actions.add_parser(
        "approve", parents=[where, approver], help="approve a request (authenticates you)"
    )
    approve.add_argument("id", type=int)
    approve.add_argument("--reason")
    deny = actions.add_parser(
        "deny", parents=[where, approver], help="deny a request (authenticates you)"
    )
    deny.add_argument("id", type=int)
    deny.add_argument("--reason", required=True)
    approvals.set_defaults(func=_run)
