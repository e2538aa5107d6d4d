"""Outages, failover, timeouts, password and group changes, and a login storm."""

import asyncio
import socket
import time

import pytest
import uvloop

from ldap_server import free_port
from myguard.identity.base import AuthFailed, IdentityUnavailable
from myguard.identity.verifier_cache import VerifierCache
from myguard.identity.verifiers import sha2_stage2


def run(coro):
    return asyncio.run(coro)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def blackhole():
    """A TCP port that accepts connections and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"ldap://127.0.0.1:{listener.getsockname()[1]}"


def test_failover_from_dead_first_url(slapd, make_source, search_table):
    dead = f"ldap://127.0.0.1:{free_port()}"
    source = make_source(search_table(slapd, urls=[dead, slapd.url]))
    assert run(source.authenticate("alice", "alice-pw")).user == "alice"
    with pytest.raises(AuthFailed):
        run(source.authenticate("alice", "wrong"))


def test_failover_from_hung_first_url(slapd, make_source, direct_table, blackhole):
    source = make_source(direct_table(slapd, urls=[blackhole, slapd.url], timeout=1))
    assert run(source.authenticate("bob", "bob-pw")).user == "bob"


def test_all_urls_dead_names_provider_and_urls(make_source, search_table, slapd):
    dead = [f"ldap://127.0.0.1:{free_port()}" for _ in range(2)]
    source = make_source(search_table(slapd, urls=dead))
    with pytest.raises(IdentityUnavailable) as info:
        run(source.authenticate("alice", "alice-pw"))
    message = str(info.value)
    assert message.startswith("ldap:") and dead[0] in message and dead[1] in message


def test_hung_server_times_out(make_source, direct_table, slapd, blackhole):
    source = make_source(direct_table(slapd, urls=[blackhole], timeout=1))
    started = time.monotonic()
    with pytest.raises(IdentityUnavailable):
        run(source.authenticate("alice", "alice-pw"))
    elapsed = time.monotonic() - started
    assert elapsed < source.deadline
    print(f"hung server reported unavailable after {elapsed:.2f}s")


def test_ldap_stopped_mid_run_then_restarted(private_slapd, make_source, search_table):
    source = make_source(search_table(private_slapd, timeout=1))

    async def scenario():
        assert (await source.authenticate("alice", "alice-pw")).user == "alice"
        private_slapd.stop()
        started = time.monotonic()
        with pytest.raises(IdentityUnavailable, match="ldap"):
            await source.authenticate("alice", "alice-pw")
        elapsed = time.monotonic() - started
        assert elapsed < source.deadline
        private_slapd.start()
        assert (await source.authenticate("alice", "alice-pw")).groups == {"dba", "developers"}
        return elapsed

    print(f"outage detected in {run(scenario()):.3f}s")


def test_password_change_takes_effect_at_next_full_auth(private_slapd, make_source, search_table):
    source = make_source(search_table(private_slapd))
    cache = VerifierCache(ttl=3600)
    cache.remember(run(source.authenticate("carol", "carol-pw")), "carol-pw")
    private_slapd.set_password("carol", "carol-new")
    # The cached verifier still reflects the old password until a full authentication...
    assert cache.get("carol").sha2_stage2 == sha2_stage2("carol-pw")
    with pytest.raises(AuthFailed):
        run(source.authenticate("carol", "carol-pw"))
    identity = run(source.authenticate("carol", "carol-new"))
    cache.remember(identity, "carol-new")
    # ...which replaces it.
    assert cache.get("carol").sha2_stage2 == sha2_stage2("carol-new")


def test_group_change_visible_after_group_ttl(private_slapd, make_source, search_table):
    clock = FakeClock()
    source = make_source(search_table(private_slapd, group_ttl=60), clock=clock)
    carol = run(source.authenticate("carol", "carol-pw"))
    assert carol.groups == frozenset()
    private_slapd.add_to_group("carol", "analysts")
    private_slapd.add_to_group("carol", "developers")
    clock.now = 59
    assert run(source.refresh(carol)).groups == frozenset()
    clock.now = 61
    refreshed = run(source.refresh(carol))
    assert refreshed.groups == {"analysts", "developers"}
    assert refreshed.user == carol.user and refreshed.source == "ldap"
    private_slapd.remove_from_group("carol", "analysts")
    # A full authentication always re-reads groups.
    assert run(source.authenticate("carol", "carol-pw")).groups == {"developers"}


def test_refresh_refuses_user_disabled_since_login(private_slapd, make_source, search_table):
    source = make_source(search_table(private_slapd, group_ttl=0))
    bob = run(source.authenticate("bob", "bob-pw"))
    private_slapd.set_attribute("bob", "employeeType", ["disabled"])
    with pytest.raises(AuthFailed, match="disabled"):
        run(source.refresh(bob))


def test_refresh_without_service_account_is_unchanged(slapd, make_source, direct_table):
    source = make_source(direct_table(slapd, group_ttl=0))
    alice = run(source.authenticate("alice", "alice-pw"))
    assert run(source.refresh(alice)) is alice


def test_login_storm_does_not_block_event_loop(slapd, make_source, search_table):
    source = make_source(search_table(slapd, max_concurrency=8, nested_groups=True))
    users = [
        ("alice", "alice-pw"),
        ("bob", "bob-pw"),
        ("bot-reporter", "bot-pw"),
        ("carol", "carol-pw"),
    ]
    interval = 0.005

    async def storm():
        lag = 0.0
        done = asyncio.Event()

        async def ticker():
            nonlocal lag
            loop = asyncio.get_running_loop()
            while not done.is_set():
                before = loop.time()
                await asyncio.sleep(interval)
                lag = max(lag, loop.time() - before - interval)

        tick = asyncio.create_task(ticker())
        started = time.monotonic()
        results = await asyncio.gather(
            *(source.authenticate(*users[n % len(users)]) for n in range(50))
        )
        elapsed = time.monotonic() - started
        done.set()
        await tick
        return results, lag, elapsed

    results, lag, elapsed = uvloop.run(storm())
    assert len(results) == 50
    assert {r.user for r in results} == {u for u, _ in users}
    print(f"50 concurrent logins in {elapsed:.3f}s, max event-loop lag {lag * 1000:.1f} ms")


def test_deadline_backstop_frees_slot_only_when_thread_ends(
    make_source, direct_table, slapd, blackhole
):
    # timeout 0.05 s: the backstop (0.45 s) fires before ldap3's whole-second receive timeout.
    source = make_source(direct_table(slapd, urls=[blackhole], timeout=0.05, max_concurrency=1))

    async def scenario():
        with pytest.raises(IdentityUnavailable, match="no answer within"):
            await source.authenticate("alice", "alice-pw")
        held = source._slots.locked()
        while source._slots.locked():
            await asyncio.sleep(0.05)
        return held

    assert run(scenario()) is True
