"""Login throttling per (user, source address), with a per-address cap for spraying.

One user's typos never lock out another user behind the same address (NAT, jump host,
application server):

* per (user, address): after ``max_failures`` failures (each remembered for ``window``
  seconds after the last one) that pair is refused for 1 s, then 2, 4, 8 ... seconds
  after each further failure, up to ``lockout``. A success clears the pair.
* per address: more than ``source_max_failures`` failures within ``window`` (a leaky
  bucket, so the cap is also a sustained rate) refuse logins from that address, except
  for users who logged in successfully from it within ``known_for`` seconds. So
  spraying many names from one address stops, while the people who work from that
  address keep logging in; their own pair is still throttled as above.

A refused (throttled) attempt is not checked and not counted, so it never extends a
backoff. Memory is bounded: the least recently touched keys are evicted first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

SOURCE_MAX_FAILURES = 100
KNOWN_FOR = 7 * 86400.0


@dataclass(slots=True)
class _Pair:
    failures: int = 0
    last: float = 0.0
    blocked_until: float = 0.0


@dataclass(slots=True)
class _Source:
    score: float = 0.0
    last: float = 0.0


class LoginThrottle:
    """See the module docstring; ``refusal`` says why a login is throttled, if it is."""

    def __init__(
        self,
        max_failures: int,
        window: float,
        lockout: float,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 100_000,
        *,
        source_max_failures: int = SOURCE_MAX_FAILURES,
        known_for: float = KNOWN_FOR,
    ) -> None:
        if (
            max_failures < 1
            or window <= 0
            or lockout < 0
            or max_entries < 1
            or source_max_failures < 1
            or known_for < 0
        ):
            raise ValueError(
                "max_failures >= 1, window > 0, lockout >= 0, max_entries >= 1, "
                "source_max_failures >= 1, known_for >= 0"
            )
        self.max_failures = max_failures
        self.window = window
        self.lockout = lockout
        self.max_entries = max_entries
        self.source_max_failures = source_max_failures
        self.known_for = known_for
        self._clock = clock
        # ("pair", user, ip) -> _Pair, ("ip", ip) -> _Source, ("known", user, ip) -> expiry;
        # order = least recently touched first.
        self._records: OrderedDict[tuple[str, ...], _Pair | _Source | float] = OrderedDict()

    def allowed(self, user: str, source_ip: str) -> bool:
        """False while this user is backing off from this address, or the address is capped."""
        return self.refusal(user, source_ip) is None

    def refusal(self, user: str, source_ip: str) -> str | None:
        """Why a login of ``user`` from ``source_ip`` is refused now (for the audit), or None."""
        now = self._clock()
        pair = self._records.get(("pair", user, source_ip))
        if isinstance(pair, _Pair) and pair.blocked_until > now:
            return (
                f"throttled: {pair.failures} failed logins of this user from this address, "
                f"retry in {pair.blocked_until - now:.0f} s"
            )
        if self._source_score(source_ip, now) >= self.source_max_failures and not self._known(
            user, source_ip, now
        ):
            return (
                f"throttled: over {self.source_max_failures} failed logins from this address "
                f"within {self.window:g} s"
            )
        return None

    def failure(self, user: str, source_ip: str) -> None:
        now = self._clock()
        pair = self._touch(("pair", user, source_ip), _Pair)
        if pair.last <= now - self.window:
            pair.failures = 0
        pair.failures += 1
        pair.last = now
        if pair.failures >= self.max_failures:
            backoff = 2.0 ** min(pair.failures - self.max_failures, 62)
            pair.blocked_until = now + min(self.lockout, backoff)
        source = self._touch(("ip", source_ip), _Source)
        source.score = self._source_score(source_ip, now) + 1
        source.last = now
        self._evict(now)

    def success(self, user: str, source_ip: str) -> None:
        """A good login clears its pair and makes the user known at this address.

        The address keeps its count: one account an attacker knows must not reset it.
        """
        self._records.pop(("pair", user, source_ip), None)
        if self.known_for > 0:
            key = ("known", user, source_ip)
            self._records.pop(key, None)
            self._records[key] = self._clock() + self.known_for
            self._evict(self._clock())

    def _touch(self, key: tuple[str, ...], kind: type) -> _Pair | _Source:
        record = self._records.pop(key, None) or kind()
        self._records[key] = record
        return record

    def _source_score(self, source_ip: str, now: float) -> float:
        """The address's failure count, leaking ``source_max_failures`` per ``window``."""
        source = self._records.get(("ip", source_ip))
        if not isinstance(source, _Source):
            return 0.0
        leaked = (now - source.last) * self.source_max_failures / self.window
        return max(0.0, source.score - leaked)

    def _known(self, user: str, source_ip: str, now: float) -> bool:
        expiry = self._records.get(("known", user, source_ip))
        return isinstance(expiry, float) and expiry > now

    def _idle(self, key: tuple[str, ...], record: _Pair | _Source | float, now: float) -> bool:
        if isinstance(record, _Pair):
            return record.blocked_until <= now and record.last <= now - self.window
        if isinstance(record, _Source):
            return self._source_score(key[1], now) <= 0
        return record <= now

    def _evict(self, now: float) -> None:
        while len(self._records) > self.max_entries:
            self._records.popitem(last=False)
        # Drop idle keys from the old end so quiet periods shrink the table too.
        while self._records:
            key, record = next(iter(self._records.items()))
            if not self._idle(key, record, now):
                break
            del self._records[key]

    def __len__(self) -> int:
        return len(self._records)
