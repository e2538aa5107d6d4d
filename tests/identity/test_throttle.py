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


def test_locks_user_after_max_failures_from_any_address():
    clock = FakeClock()
    throttle = make(clock)
    for n in range(3):
        assert throttle.allowed("alice", f"10.0.0.{n}")
        throttle.failure("alice", f"10.0.0.{n}")
    assert not throttle.allowed("alice", "10.9.9.9")
    assert throttle.allowed("bob", "10.9.9.9")


def test_locks_address_after_failures_on_many_users():
    throttle = make(FakeClock())
    for user in ("u1", "u2", "u3"):
        throttle.failure(user, "192.0.2.7")
    assert not throttle.allowed("someone-else", "192.0.2.7")
    assert throttle.allowed("someone-else", "192.0.2.8")


def test_lockout_ends():
    clock = FakeClock()
    throttle = make(clock)
    for _ in range(3):
        throttle.failure("alice", "192.0.2.1")
    clock.now += 299
    assert not throttle.allowed("alice", "192.0.2.2")
    clock.now += 2
    assert throttle.allowed("alice", "192.0.2.1")


def test_failures_outside_window_do_not_count():
    clock = FakeClock()
    throttle = make(clock)
    for _ in range(5):
        throttle.failure("alice", "192.0.2.1")
        clock.now += 31
    # Failures 31 s apart: never three inside one 60 s window.
    assert throttle.allowed("alice", "192.0.2.1")


def test_success_resets_user_but_not_address():
    throttle = make(FakeClock())
    throttle.failure("alice", "192.0.2.1")
    throttle.failure("alice", "192.0.2.1")
    throttle.success("alice", "192.0.2.1")
    throttle.failure("alice", "192.0.2.9")
    throttle.failure("alice", "192.0.2.9")
    assert throttle.allowed("alice", "192.0.2.9")
    throttle.failure("bob", "192.0.2.1")
    assert not throttle.allowed("carol", "192.0.2.1")


def test_memory_is_bounded():
    clock = FakeClock()
    throttle = make(clock, max_entries=100)
    for n in range(10_000):
        throttle.failure(f"user{n}", f"ip{n}")
    assert len(throttle) <= 100


def test_idle_entries_are_evicted():
    clock = FakeClock()
    throttle = make(clock)
    throttle.failure("alice", "192.0.2.1")
    clock.now += 61
    throttle.failure("bob", "192.0.2.2")
    assert len(throttle) == 2


def test_invalid_parameters():
    with pytest.raises(ValueError):
        LoginThrottle(max_failures=0, window=1, lockout=1)
