"""A root of several chains (worker-0/, worker-1/, supervisor/): read merged by time, verified
chain by chain, followed (new chains included), exported, counted; DIR from --config."""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import queue
import subprocess
import sys
import threading
import time

import pytest

from myguard.audit import (
    AuditWriter,
    Follower,
    approval_record,
    iter_records,
    statement_record,
    verify,
)
from myguard.audit.chains import find_chains
from myguard.audit.cli import add_commands, human_line
from myguard.audit.segment import list_segments
from myguard.config import load_audit_config

KEY = b"0123456789abcdef0123"
BASE = time.time() - 3600


def stmt(user: str, at: float, **fields) -> object:
    return statement_record(
        user=user, statement=f"SELECT {at}", decision="allow", backend="primary", at=at, **fields
    )


def run_cli(capsys, *argv):
    parser = argparse.ArgumentParser(prog="myguard")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["audit", *argv])
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def root(tmp_path, write_records):
    """Two worker chains with interleaved times and a supervisor chain."""
    root = tmp_path / "audit"
    write_records(
        root / "worker-0",
        [stmt("alice", BASE + 0), stmt("alice", BASE + 2), stmt("alice", BASE + 4)],
        rotate_bytes=250,
    )
    write_records(root / "worker-1", [stmt("bob", BASE + 1), stmt("bob", BASE + 3)])
    write_records(
        root / "supervisor",
        [approval_record(request_id="r1", event="approved", actor="carol", at=BASE + 2.5)],
    )
    return root


def test_chains_are_found_by_name(root):
    assert [chain.name for chain in find_chains(root)] == ["supervisor", "worker-0", "worker-1"]
    (root / "empty").mkdir()  # no segments: not a chain
    assert len(find_chains(root)) == 3
    assert [chain.name for chain in find_chains(root / "worker-1")] == [""]


def test_iter_records_merges_chains_by_time(root):
    records = list(iter_records(root))
    assert [(r.chain, r.seq) for r in records] == [
        ("worker-0", 1),
        ("worker-1", 1),
        ("worker-0", 2),
        ("supervisor", 1),
        ("worker-1", 2),
        ("worker-0", 3),
    ]
    assert records[3].to_dict()["chain"] == "supervisor"
    assert [r.chain for r in iter_records(root, since=BASE + 2.5)] == [
        "supervisor",
        "worker-1",
        "worker-0",
    ]
    # A single chain directory reads as before: no chain name.
    assert {r.chain for r in iter_records(root / "worker-0")} == {""}
    assert "chain" not in next(iter(iter_records(root / "worker-0"))).to_dict()


def test_merge_keeps_each_chains_order_and_ties_stable(tmp_path, write_records):
    root = tmp_path / "audit"
    # worker-0's clock stepped back: its own order still wins over the timestamps.
    write_records(root / "worker-0", [stmt("a", BASE + 5), stmt("a", BASE + 1)])
    write_records(root / "worker-1", [stmt("b", BASE + 5), stmt("b", BASE + 6)])
    records = list(iter_records(root))
    assert [(r.chain, r.time - BASE) for r in records] == [
        ("worker-0", 5),
        ("worker-0", 1),
        ("worker-1", 5),
        ("worker-1", 6),
    ]


def test_root_with_its_own_chain_too(tmp_path, write_records):
    """A single-process trail left in place after switching to workers."""
    write_records(tmp_path, [stmt("old", BASE)])
    write_records(tmp_path / "worker-0", [stmt("new", BASE + 1)])
    assert [(r.chain, r.get("user")) for r in iter_records(tmp_path)] == [
        (".", "old"),
        ("worker-0", "new"),
    ]
    assert verify(tmp_path).ok


def test_verify_reports_the_broken_chain(root, capsys):
    report = verify(root)
    assert report.ok and report.records == 6
    assert [(c.chain, c.records, c.ok) for c in report.chains] == [
        ("supervisor", 1, True),
        ("worker-0", 3, True),
        ("worker-1", 2, True),
    ]
    _, segment = list_segments(root / "worker-1")[0]
    data = bytearray(segment.read_bytes())
    data[-5] ^= 1
    segment.write_bytes(bytes(data))

    report = verify(root)
    assert not report.ok
    assert [c.ok for c in report.chains] == [True, True, False]
    (problem,) = report.problems
    assert (problem.chain, problem.segment) == ("worker-1", segment.name)
    assert problem.offset > 80 and "checksum" in problem.reason
    assert str(problem).startswith(f"worker-1/{segment.name} at offset {problem.offset}: ")

    code, out, _ = run_cli(capsys, "verify", str(root))
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("supervisor: 1 segment(s), 1 record(s) checked")
    assert lines[3] == "3 chains: 4 segment(s), 5 record(s) checked"
    assert lines[4] == f"FAILED: {problem}"


def test_verify_with_hmac_key_covers_every_chain(tmp_path, write_records):
    root = tmp_path / "audit"
    write_records(root / "worker-0", [stmt("a", BASE)], hmac_key=KEY)
    write_records(root / "worker-1", [stmt("b", BASE)], hmac_key=KEY)
    assert verify(root, KEY).ok
    write_records(root / "supervisor", [stmt("s", BASE)])  # written without the key
    report = verify(root, KEY)
    assert [p.chain for p in report.problems] == ["supervisor"]
    assert "not HMAC-chained" in report.problem.reason


def test_follower_follows_every_chain_and_new_ones(root):
    async def run():
        writers = {
            name: await AuditWriter.open(root / name, fsync="off", rotate_bytes=300)
            for name in ("worker-0", "worker-1")
        }
        follower = Follower(root)
        assert follower.poll() == []  # starts after what is already written
        seen = []
        for i in range(12):
            await writers[f"worker-{i % 2}"].write(stmt(f"u{i}", time.time()))
            if i == 6:
                writers["worker-2"] = await AuditWriter.open(root / "worker-2", fsync="off")
                await writers["worker-2"].write(stmt("late", time.time()))
            if i % 4 == 0:
                seen += follower.poll()
        for writer in writers.values():
            await writer.close()
        seen += follower.poll()
        follower.close()
        return seen

    seen = [r for r in asyncio.run(run()) if r.type == "statement"]
    assert [r.get("user") for r in seen if r.chain == "worker-0"] == [
        f"u{i}" for i in (0, 2, 4, 6, 8, 10)
    ]
    assert [r.get("user") for r in seen if r.chain == "worker-1"] == [
        f"u{i}" for i in (1, 3, 5, 7, 9, 11)
    ]
    assert [r.get("user") for r in seen if r.chain == "worker-2"] == ["late"]
    assert len({r.segment for r in seen if r.chain == "worker-0"}) > 2  # across rotation


def test_follower_resumes_each_chain_after_its_record(root):
    first = next(iter(iter_records(root)))
    assert (first.chain, first.seq) == ("worker-0", 1)
    # Only worker-0 has a record seen: the other chains are read from their start.
    follower = Follower(root, after=[first])
    assert [(r.chain, r.seq) for r in follower.poll()] == [
        ("worker-1", 1),
        ("worker-0", 2),
        ("supervisor", 1),
        ("worker-1", 2),
        ("worker-0", 3),
    ]
    assert follower.poll() == []


class _Lines:
    """Lines of a child's stdout with a timeout, so a missing line fails instead of hanging."""

    def __init__(self, stream) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        threading.Thread(
            target=lambda: [self.queue.put(line) for line in stream], daemon=True
        ).start()

    def take(self, count: int, timeout: float = 15) -> list[dict]:
        deadline = time.monotonic() + timeout
        return [
            json.loads(self.queue.get(timeout=deadline - time.monotonic())) for _ in range(count)
        ]


def test_tail_follow_process_follows_every_chain(root, write_records):
    child = subprocess.Popen(
        [sys.executable, "-m", "myguard", "audit", "tail", str(root), "-f", "--json", "-n", "2"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines = _Lines(child.stdout)
        assert [(row["chain"], row["seq"]) for row in lines.take(2)] == [
            ("worker-1", 2),
            ("worker-0", 3),
        ]
        now = time.time()
        write_records(
            root / "worker-1", [stmt(f"b{i}", now + i) for i in range(4)], rotate_bytes=250
        )
        write_records(
            root / "worker-0", [stmt(f"a{i}", now + i) for i in range(4)], rotate_bytes=250
        )
        write_records(root / "worker-7", [stmt("late", now + 5)])  # a worker started later
        rows = lines.take(5 + 5 + 1)  # each resumed chain starts with a restart record
    finally:
        child.kill()
        child.wait()

    def users(chain):
        return [row.get("user") for row in rows if row["chain"] == chain]

    assert users("worker-0") == [None, "a0", "a1", "a2", "a3"]
    assert users("worker-1") == [None, "b0", "b1", "b2", "b3"]
    assert users("worker-7") == ["late"]
    assert len(list_segments(root / "worker-0")) > 2


def test_tail_since_follows_quiet_chains_from_their_end(root, write_records):
    """Nothing in the last 30 minutes: following must not replay the old records."""
    child = subprocess.Popen(
        [sys.executable, "-m", "myguard", "audit", "tail", str(root), "-f", "--json"]
        + ["--since", "30m"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines = _Lines(child.stdout)
        time.sleep(1)  # let it list the chains before the write
        write_records(root / "supervisor", [approval_record(request_id="r2", event="denied")])
        rows = lines.take(2)
    finally:
        child.kill()
        child.wait()
    assert [(row["chain"], row["type"]) for row in rows] == [
        ("supervisor", "restart"),
        ("supervisor", "approval"),
    ]
    assert rows[1]["request_id"] == "r2"


def test_tail_human_lines_show_the_chain(root, capsys):
    code, out, _ = run_cli(capsys, "tail", str(root))
    lines = out.splitlines()
    assert code == 0 and len(lines) == 6
    assert [line.split()[2] for line in lines] == [
        "worker-0", "worker-1", "worker-0", "supervisor", "worker-1", "worker-0",
    ]  # fmt: skip
    assert lines[3].split()[3] == "approval"
    assert len({line.index("statement") for line in lines if " statement " in line}) == 1
    single = statement_record(user="u", statement="x", decision="allow")
    assert human_line(single, colour=False).split()[2] == "statement"


def test_export_and_stats_over_the_root(root, capsys):
    code, out, _ = run_cli(capsys, "export", str(root), "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert out.startswith("time,seq,chain,type,")
    assert [(row["chain"], row["seq"]) for row in rows][:3] == [
        ("worker-0", "1"),
        ("worker-1", "1"),
        ("worker-0", "2"),
    ]
    _, out, _ = run_cli(capsys, "export", str(root), "--user", "bob")
    assert [json.loads(line)["chain"] for line in out.splitlines()] == ["worker-1", "worker-1"]
    _, out, _ = run_cli(capsys, "export", str(root / "worker-0"), "--format", "csv")
    assert "chain" not in out.splitlines()[0].split(",")

    code, out, _ = run_cli(capsys, "stats", str(root), "--json")
    assert code == 0 and json.loads(out)["user"] == {"alice": 3, "bob": 2}


def write_config(tmp_path, audit_table: str) -> str:
    # The backend's password comes from an unset variable: reading [audit] must not need it.
    config = tmp_path / "myguard.toml"
    config.write_text(
        f"""rules_file = "rules.toml"

[[backends]]
name = "primary"
environment = "production"
listen = "127.0.0.1:3307"
upstream = "127.0.0.1:3306"
user = "proxy"
password_env = "MYGUARD_TEST_UNSET_PASSWORD"

[audit]
{audit_table}
"""
    )
    return str(config)


def test_config_supplies_dir_and_hmac_key(tmp_path, write_records, capsys, monkeypatch):
    monkeypatch.delenv("MYGUARD_TEST_UNSET_PASSWORD", raising=False)
    monkeypatch.delenv("MYGUARD_AUDIT_HMAC_KEY_FILE", raising=False)
    (tmp_path / "key").write_bytes(KEY + b"\n")
    root = tmp_path / "trail"
    write_records(root / "worker-0", [stmt("alice", BASE)], hmac_key=KEY)
    write_records(root / "worker-1", [stmt("bob", BASE + 1)], hmac_key=KEY)
    config = write_config(tmp_path, 'directory = "trail"\nhmac_key_file = "key"')
    assert load_audit_config(config).directory == root

    code, out, _ = run_cli(capsys, "verify", "--config", config)
    assert code == 0 and out.endswith("OK: every checksum and chain link is valid\n")
    # Without the config, the key is missing and verification fails.
    assert run_cli(capsys, "verify", str(root))[0] == 1
    for command in ("tail", "export"):
        code, out, _ = run_cli(
            capsys, command, "--config", config, "--json" if command == "tail" else "--format=jsonl"
        )
        assert code == 0 and [json.loads(line)["user"] for line in out.splitlines()] == [
            "alice",
            "bob",
        ]
    code, out, _ = run_cli(capsys, "stats", "--config", config, "--json")
    assert json.loads(out)["user"] == {"alice": 1, "bob": 1}
    # An explicit DIR wins over the config's directory.
    code, out, _ = run_cli(capsys, "export", str(root / "worker-1"), "--config", config)
    assert [json.loads(line)["user"] for line in out.splitlines()] == ["bob"]


def test_config_errors_are_one_line(tmp_path, capsys):
    bad = write_config(tmp_path, 'directory = "trail"\nfsync = "sometimes"')
    code, _, err = run_cli(capsys, "tail", "--config", bad)
    assert code == 2
    assert err.startswith(f"myguard audit: {bad}: audit.fsync: expected one of ")
    disabled = write_config(tmp_path, "enabled = false")
    code, _, err = run_cli(capsys, "verify", "--config", disabled)
    assert code == 2 and "[audit] has no directory" in err
    code, _, err = run_cli(capsys, "stats")
    assert code == 2 and "DIR" in err and "--config" in err
