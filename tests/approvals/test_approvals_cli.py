import argparse
import asyncio
import json

import pytest

from myguard.approvals.cli import add_commands
from myguard.approvals.model import RequestStatus
from myguard.approvals.service import ApprovalService
from myguard.approvals.store_sqlite import SqliteApprovalStore
from myguard.identity.base import AuthFailed, Identity


def make_parser(**options):
    parser = argparse.ArgumentParser(prog="myguard")
    add_commands(parser.add_subparsers(dest="command", required=True), **options)
    return parser


def cli(parser, *argv):
    args = parser.parse_args(list(argv))
    return args.func(args)


@pytest.fixture
def queued(tmp_path, make_context):
    """Two pending requests from bob in a SQLite store; returns (spec, ids)."""
    path = tmp_path / "a.db"

    async def fill():
        store = SqliteApprovalStore(path)
        service = ApprovalService(store)
        ids = [
            (await service.request(make_context(statement=s))).id for s in ("DELETE A", "DELETE B")
        ]
        await store.aclose()
        return ids

    return f"sqlite:{path}", asyncio.run(fill())


def status_of(spec, request_id):
    async def read():
        store = SqliteApprovalStore(spec.removeprefix("sqlite:"))
        try:
            return (await store.get(request_id)).status
        finally:
            await store.aclose()

    return asyncio.run(read())


def test_list_show_approve_deny(queued, capsys):
    spec, (first, second) = queued
    parser = make_parser()
    assert cli(parser, "approvals", "list", "--store", spec) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [int(line.split()[0]) for line in lines] == [second, first]
    assert "bob" in lines[0] and "DELETE B" in lines[0]

    assert cli(parser, "approvals", "show", str(first), "--store", spec) == 0
    assert json.loads(capsys.readouterr().out)["statement"] == "DELETE A"

    argv = ["--store", spec, "--as", "alice", "--groups", "dba,ops"]
    assert cli(parser, "approvals", "approve", str(first), "--reason", "ok", *argv) == 0
    assert f"request {first}: approved" in capsys.readouterr().out
    assert cli(parser, "approvals", "deny", str(second), "--reason", "no", *argv) == 0
    assert status_of(spec, first) is RequestStatus.APPROVED
    assert status_of(spec, second) is RequestStatus.DENIED
    capsys.readouterr()
    assert cli(parser, "approvals", "list", "--store", spec, "--status", "all") == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_refusals_exit_nonzero(queued, capsys):
    spec, (first, _) = queued
    parser = make_parser()
    assert cli(parser, "approvals", "approve", str(first), "--store", spec) == 1
    assert "--as USER" in capsys.readouterr().err
    assert (
        cli(
            parser,
            "approvals",
            "approve",
            str(first),
            "--store",
            spec,
            "--as",
            "bob",
            "--groups",
            "dba",
        )
        == 1
    )
    assert "self-approval" in capsys.readouterr().err
    assert cli(parser, "approvals", "approve", str(first), "--store", spec, "--as", "eve") == 1
    assert "not-an-approver" in capsys.readouterr().err
    assert cli(parser, "approvals", "show", "999", "--store", spec) == 1
    assert cli(parser, "approvals", "list", "--store", "oracle:x") == 2
    with pytest.raises(SystemExit):
        parser.parse_args(["approvals", "deny", "1", "--store", spec])  # --reason required
    assert status_of(spec, first) is RequestStatus.PENDING


def test_identity_check_decides_groups(queued, capsys):
    spec, (first, _) = queued
    seen = []

    async def check(user, groups):
        seen.append((user, groups))
        if user != "alice":
            raise AuthFailed("unknown user")
        return Identity(user="alice", groups=frozenset({"dba"}), source="ldap")

    parser = make_parser(identity_check=check)
    # The claimed groups don't matter: the verified identity's groups do.
    assert cli(parser, "approvals", "approve", str(first), "--store", spec, "--as", "alice") == 0
    assert (
        cli(
            parser,
            "approvals",
            "approve",
            str(first),
            "--store",
            spec,
            "--as",
            "zed",
            "--groups",
            "dba",
        )
        == 1
    )
    assert "unknown user" in capsys.readouterr().err
    assert seen == [("alice", frozenset()), ("zed", frozenset({"dba"}))]
