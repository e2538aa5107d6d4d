"""Login throttling through the real proxy: one user's typos never lock out another."""

from __future__ import annotations

import time

import pymysql
import pytest

from myguard.audit import iter_records


def login(proxy, user, password):
    return pymysql.connect(host="127.0.0.1", port=proxy.port, user=user, password=password)


def refused(proxy, user, password):
    with pytest.raises(pymysql.err.OperationalError) as denied:
        login(proxy, user, password)
    return denied.value.args[0]


def logins(proxy, count, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in iter_records(proxy.audit_dir) if r.type == "login"]
        if len(found) >= count or time.monotonic() > deadline:
            return [(r["user"], r["success"], r.get("reason")) for r in found]
        time.sleep(0.05)


def test_two_users_from_one_address(private_proxy):
    p = private_proxy(identity={"max_failures": 2, "failure_window": 60, "lockout": 30})
    login(p, "alice", "alice-pw-1").close()  # alice works from this address
    assert refused(p, "bob", "typo-1") == 1045
    assert refused(p, "bob", "typo-2") == 1045  # second failure: bob backs off for 1 s
    assert refused(p, "bob", "bob-pw-2") == 1045  # even his right password, for now
    # the same address, another user: never delayed, even one not seen here before
    login(p, "alice", "alice-pw-1").close()
    login(p, "carol", "carol-pw-3").close()
    time.sleep(1.1)
    login(p, "bob", "bob-pw-2").close()  # the backoff was short, and is over

    records = logins(p, 7)
    assert records[3][:2] == ("bob", False)
    assert records[3][2].startswith("throttled: 2 failed logins of this user from this address")
    assert records[:3] + records[4:] == [
        ("alice", True, None),
        ("bob", False, "wrong password"),
        ("bob", False, "wrong password"),
        ("alice", True, None),
        ("carol", True, None),
        ("bob", True, None),
    ]
    assert "event=login_failed" in p.log() and "throttled:" in p.log()


def test_spraying_one_address_spares_the_users_known_there(private_proxy):
    # a long window: the address's count hardly leaks while the test sprays
    p = private_proxy(identity={"max_failures": 5, "failure_window": 3600, "lockout": 300})
    login(p, "alice", "alice-pw-1").close()
    for n in range(101):
        assert refused(p, f"guess{n}", "password1") == 1045
    assert refused(p, "carol", "carol-pw-3") == 1045  # never logged in from here: capped
    login(p, "alice", "alice-pw-1").close()  # known at this address: not capped
    records = logins(p, 104)
    assert records[-2][:2] == ("carol", False) and records[-1] == ("alice", True, None)
    assert records[-2][2].startswith("throttled: over 100 failed logins from this address")


def test_the_per_address_cap_is_configurable(private_proxy):
    p = private_proxy(identity={"failure_window": 3600, "source_max_failures": 3})
    for n in range(4):  # over 3
        assert refused(p, f"guess{n}", "password1") == 1045
    assert refused(p, "carol", "carol-pw-3") == 1045  # capped over 3, not over 100
    assert logins(p, 5)[-1][2].startswith("throttled: over 3 failed logins from this address")
