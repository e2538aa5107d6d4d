"""LDAP connections are reused across logins, a refused password leaves its connection
usable, and pooled connections that died with a restarted server cost no login."""

import asyncio

import pytest

from myguard.identity.base import AuthFailed


def run(coro):
    return asyncio.run(coro)


def test_logins_reuse_bound_connections(slapd, make_source, search_table):
    source = make_source(search_table(slapd))

    async def logins():
        for _ in range(10):
            assert (await source.authenticate("alice", "alice-pw")).user == "alice"
        with pytest.raises(AuthFailed):
            await source.authenticate("alice", "wrong")
        assert (await source.authenticate("bob", "bob-pw")).user == "bob"

    run(logins())
    directory = source._directory
    # One service and one bind connection did the work of twelve logins.
    assert directory.service_pool.opened == 1 and directory.bind_pool.opened == 1
    assert directory.bind_pool.reused == 11


def test_a_restarted_server_costs_no_login(private_slapd, make_source, search_table):
    source = make_source(search_table(private_slapd))

    async def scenario():
        assert (await source.authenticate("alice", "alice-pw")).user == "alice"
        private_slapd.stop()
        private_slapd.start()
        # Both pooled connections died with the old server; the login does not notice.
        assert (await source.authenticate("alice", "alice-pw")).user == "alice"
        assert (await source.authenticate("carol", "carol-pw")).user == "carol"

    run(scenario())
    assert source._directory.service_pool.opened == 2


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_cached_logins_refresh_groups_ahead_without_waiting_for_ldap(
    private_slapd, make_source, search_table
):
    clock = FakeClock()
    source = make_source(search_table(private_slapd, group_ttl=60), clock=clock)

    async def scenario():
        carol = await source.authenticate("carol", "carol-pw")
        private_slapd.add_to_group("carol", "analysts")
        clock.now = 31  # past half the group_ttl: served from the cache, refreshed behind
        assert (await source.refresh(carol)).groups == frozenset()
        await asyncio.gather(*source._refreshing.values())
        private_slapd.stop()  # from here on a login that asked LDAP would fail
        clock.now = 70  # 70 s after the login, 39 s after the refresh
        assert (await source.refresh(carol)).groups == {"analysts"}

    run(scenario())
