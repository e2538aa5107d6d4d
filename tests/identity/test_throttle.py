import pytest

from myguard.identity.throttle import LoginThrottle


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(clock, **kw):
    args = {"max_failures": 3, "window": 60, "lockout": 300, "clock": clock} | kw
    return LoginThrottle(**args)


def test_one_users_failures_never_refuse_another_user_at_the_same_address():
    throttle = make(FakeClock())
    for _ in range(20):
        throttle.failure("bob", "10.0.0.1")
    assert not throttle.allowed("bob", "10.0.0.1")
    assert throttle.allowed("alice", "10.0.0.1")
    # the pair is throttled, not the account: bob from elsewhere is not delayed
    assert throttle.allowed("bob", "10.0.0.2")


def test_backoff_doubles_up_to_lockout():
    clock = FakeClock()
    throttle = make(clock, lockout=10)
    waits = []
    for _ in range(8):
        throttle.failure("bob", "ip")
        start = clock.now
        while not throttle.allowed("bob", "ip"):
            clock.now += 0.25
        waits.append(clock.now - start)
    # two free failures, then 1, 2, 4, 8 s and the 10 s cap
    assert waits == [0, 0, 1, 2, 4, 8, 10, 10]
    assert throttle.refusal("bob", "ip") is None
    throttle.failure("bob", "ip")
    assert throttle.refusal("bob", "ip") == (
        "throttled: 9 failed logins of this user from this address, retry in 10 s"
    )


def test_success_clears_the_pair():
    throttle = make(FakeClock())
    for _ in range(2):
        throttle.failure("bob", "ip")
    throttle.success("bob", "ip")
    for _ in range(2):
        throttle.failure("bob", "ip")
    assert throttle.allowed("bob", "ip")


def test_failures_are_forgotten_a_window_after_the_last():
    clock = FakeClock()
    throttle = make(clock)
    for _ in range(2):
        throttle.failure("bob", "ip")
        clock.now += 30
    throttle.failure("bob", "ip")  # third within 60 s of the one before: backs off
    assert not throttle.allowed("bob", "ip")
    clock.now += 61
    throttle.failure("bob", "ip")  # the earlier ones are forgotten: this is the first
    assert throttle.allowed("bob", "ip")


def test_address_cap_stops_spraying_but_not_known_users():
    clock = FakeClock()
    throttle = make(clock, source_max_failures=10)
    throttle.success("alice", "nat")
    for n in range(10):
        throttle.failure(f"guess{n}", "nat")
    assert throttle.refusal("guess99", "nat") == (
        "throttled: over 10 failed logins from this address within 60 s"
    )
    assert not throttle.allowed("carol", "nat")  # never logged in from here
    assert throttle.allowed("alice", "nat")  # logged in from here before
    assert throttle.allowed("carol", "elsewhere")
    # a leaky bucket: 10 failures per 60 s, so one more is allowed after 6 s
    clock.now += 6
    assert throttle.allowed("carol", "nat")
    throttle.failure("carol", "nat")
    assert not throttle.allowed("dave", "nat")


def test_a_known_user_still_backs_off_on_their_own_failures():
    throttle = make(FakeClock(), source_max_failures=10)
    throttle.success("alice", "nat")
    for _ in range(3):
        throttle.failure("alice", "nat")
    assert not throttle.allowed("alice", "nat")


def test_known_users_are_forgotten():
    clock = FakeClock()
    throttle = make(clock, source_max_failures=2, known_for=100)
    throttle.success("alice", "nat")
    clock.now += 101
    throttle.failure("x", "nat")
    throttle.failure("y", "nat")
    assert not throttle.allowed("alice", "nat")


def test_memory_is_bounded():
    throttle = make(FakeClock(), max_entries=100)
    for n in range(10_000):
        throttle.failure(f"user{n}", f"ip{n}")
        throttle.success(f"user{n}", f"ip{n}")
    assert len(throttle) <= 100


def test_idle_entries_are_evicted():
    clock = FakeClock()
    throttle = make(clock)
    throttle.failure("alice", "192.0.2.1")  # a pair and an address
    clock.now += 61
    throttle.failure("bob", "192.0.2.2")
    assert len(throttle) == 2


def test_invalid_parameters():
    with pytest.raises(ValueError):
        LoginThrottle(max_failures=0, window=1, lockout=1)
    with pytest.raises(ValueError):
        LoginThrottle(max_failures=1, window=1, lockout=1, source_max_failures=0)
