"""``myguard approvals`` as a real process: read-only listing, authenticated decisions, audit."""

import asyncio
import json
import os
import subprocess
import sys

import pytest

from myguard.approvals.model import RequestStatus
from myguard.approvals.service import ApprovalService
from myguard.approvals.store_sqlite import SqliteApprovalStore
from myguard.audit import iter_records, verify
from myguard.identity.users_file import write_user

USERS = {"alice": ("alice-pw", ["dba"]), "bob": ("bob-pw", ["dba", "dev"]), "eve": ("eve-pw", [])}


def myguard(*argv, password=None, cwd=None):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    return subprocess.run(
        [sys.executable, "-m", "myguard", *argv],
        input=None if password is None else password + "\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
    )


@pytest.fixture(scope="module")
def users_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("users") / "users.toml"
    for name, (password, groups) in USERS.items():
        write_user(path, name, password, groups)
    return path


@pytest.fixture
def site(tmp_path, users_file, make_context):
    """A config (users file, audit, SQLite store) and two pending requests from bob."""
    config = tmp_path / "myguard.toml"
    config.write_text(
        'rules_file = "rules.toml"\n'
        f'[identity]\nsource = "users-file"\nusers_file = "{users_file}"\n'
        '[audit]\ndirectory = "audit"\n'
        '[approvals]\nstore = "sqlite:approvals.db"\n'
    )

    async def fill():
        store = SqliteApprovalStore(tmp_path / "approvals.db")
        service = ApprovalService(store)
        made = [await service.request(make_context(statement=s)) for s in ("DELETE A", "DELETE B")]
        await store.aclose()
        return [r.id for r in made]

    return config, asyncio.run(fill())


def status_of(config, request_id):
    async def read():
        store = SqliteApprovalStore(config.parent / "approvals.db")
        try:
            return (await store.get(request_id)).status
        finally:
            await store.aclose()

    return asyncio.run(read())


def approval_records(config):
    audit = config.parent / "audit"
    return [r for r in iter_records(audit) if r.type == "approval"] if audit.exists() else []


def test_list_and_show_read_an_existing_store(site):
    config, (first, second) = site
    listing = myguard("approvals", "list", "--config", str(config))
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert [int(line.split()[0]) for line in lines] == [second, first]
    assert "bob" in lines[0] and "DELETE B" in lines[0]
    shown = myguard(
        "approvals", "show", str(first), "--store", f"sqlite:{config.parent}/approvals.db"
    )
    assert shown.returncode == 0 and json.loads(shown.stdout)["statement"] == "DELETE A"
    empty = myguard("approvals", "list", "--config", str(config), "--status", "denied")
    assert empty.returncode == 0 and "no requests" in empty.stdout
    missing = myguard("approvals", "show", "999", "--config", str(config))
    assert missing.returncode == 1 and "no approval request 999" in missing.stderr


def test_read_only_commands_never_create_a_store(tmp_path):
    where = tmp_path / "nowhere" / "approvals.db"
    for argv in (["list"], ["show", "1"]):
        r = myguard("approvals", *argv, "--store", f"sqlite:{where}")
        assert r.returncode == 1
        assert r.stderr == f"myguard: error: approval store sqlite:{where} does not exist\n"
    (tmp_path / "other.db").write_bytes(b"")
    r = myguard("approvals", "list", "--store", f"sqlite:{tmp_path / 'other.db'}")
    assert r.returncode == 1 and "not an approval store" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]
    r = myguard("approvals", "list", "--store", "oracle:x")
    assert r.returncode == 2 and r.stderr.startswith("myguard: error: approval store 'oracle:x'")
    r = myguard("approvals", "list")
    assert r.returncode == 2 and "--store SPEC or --config FILE" in r.stderr


def test_approve_authenticates_and_is_audited(site):
    config, (first, second) = site
    argv = ["--config", str(config), "--password-stdin"]
    r = myguard(
        "approvals",
        "approve",
        str(first),
        "--as",
        "alice",
        "--reason",
        "ok",
        *argv,
        password="alice-pw",
    )
    assert r.returncode == 0, r.stderr
    assert f"request {first}: approved (1/1 approvals) by alice" in r.stdout
    r = myguard(
        "approvals",
        "deny",
        str(second),
        "--as",
        "alice",
        "--reason",
        "no",
        *argv,
        password="alice-pw",
    )
    assert r.returncode == 0, r.stderr
    assert status_of(config, first) is RequestStatus.APPROVED
    assert status_of(config, second) is RequestStatus.DENIED
    steps = [
        (r["request_id"], r["event"], r["actor"], r.get("actor_groups"))
        for r in approval_records(config)
    ]
    assert steps == [
        (str(first), "approval", "alice", ["dba"]),
        (str(first), "approved", "alice", ["dba"]),
        (str(second), "denied", "alice", ["dba"]),
    ]
    chains = {r.chain for r in iter_records(config.parent / "audit")}
    assert chains == {"approvals-cli"}  # the CLI's own chain, beside the proxy's
    assert verify(config.parent / "audit").ok


def test_claims_are_not_trusted(site):
    config, (first, _) = site
    argv = ["--config", str(config), "--password-stdin"]
    # a wrong password, an unknown user and no password at all decide nothing
    for user, password in (("alice", "guess"), ("mallory", "x"), ("alice", "")):
        r = myguard("approvals", "approve", str(first), "--as", user, *argv, password=password)
        assert r.returncode == 1
        assert r.stderr.startswith("myguard: error: ") and "Traceback" not in r.stderr
    # groups come from the identity source: the option to claim them is gone
    r = myguard(
        "approvals",
        "approve",
        str(first),
        "--as",
        "eve",
        "--groups",
        "dba",
        *argv,
        password="eve-pw",
    )
    assert r.returncode == 2 and "--groups" in r.stderr
    r = myguard("approvals", "approve", str(first), "--as", "eve", *argv, password="eve-pw")
    assert r.returncode == 1 and "not-an-approver" in r.stderr
    # bob is in dba, but the request is his own
    r = myguard("approvals", "approve", str(first), "--as", "bob", *argv, password="bob-pw")
    assert r.returncode == 1 and "self-approval" in r.stderr
    r = myguard(
        "approvals",
        "approve",
        str(first),
        "--store",
        "sqlite:x.db",
        "--as",
        "alice",
        "--password-stdin",
        password="alice-pw",
    )
    assert r.returncode == 2 and "--config FILE is required" in r.stderr
    assert status_of(config, first) is RequestStatus.PENDING
    refusals = [
        (r["event"], r["actor"], r["reason"].split(":")[0]) for r in approval_records(config)
    ]
    assert refusals == [("refused", "eve", "not-an-approver"), ("refused", "bob", "self-approval")]


def test_an_unwritable_audit_trail_decides_nothing(site):
    config, (first, _) = site
    (config.parent / "audit").write_text("not a directory")
    r = myguard(
        "approvals",
        "approve",
        str(first),
        "--as",
        "alice",
        "--config",
        str(config),
        "--password-stdin",
        password="alice-pw",
    )
    assert r.returncode == 1 and "cannot write the audit trail" in r.stderr
    assert status_of(config, first) is RequestStatus.PENDING
