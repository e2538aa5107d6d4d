"""Login throttling: too many failures lock out a user name and, separately, an address.

Both keys are counted independently so that one attacker cannot lock every account from
one address without being locked out itself, and spraying one account from many
addresses still locks the account. Memory is bounded: the oldest keys are evicted first.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class _Record:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0


class LoginThrottle:
    """``max_failures`` failures within ``window`` seconds lock a key for ``lockout`` seconds."""

    def __init__(
        self,
        max_failures: int,
        window: float,
        lockout: float,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 100_000,
    ) -> None:
        if max_failures < 1 or window <= 0 or lockout < 0 or max_entries < 1:
            raise ValueError("max_failures >= 1, window > 0, lockout >= 0, max_entries >= 1")
        self.max_failures = max_failures
        self.window = window
        self.lockout = lockout
        self.max_entries = max_entries
        self._clock = clock
        # Keys are ("user", name) or ("ip", address); order = least recently touched first.
        self._records: OrderedDict[tuple[str, str], _Record] = OrderedDict()

    def allowed(self, user: str, source_ip: str) -> bool:
        """False while either the user or the source address is locked out."""
        now = self._clock()
        return not (self._locked(("user", user), now) or self._locked(("ip", source_ip), now))

    def failure(self, user: str, source_ip: str) -> None:
        now = self._clock()
        for key in (("user", user), ("ip", source_ip)):
            self._record_failure(key, now)

    def success(self, user: str, source_ip: str) -> None:
        """A good login clears the user's count; the address keeps its history.

        An address that guesses many accounts must not be reset by one it knows.
        """
        self._records.pop(("user", user), None)

    def _locked(self, key: tuple[str, str], now: float) -> bool:
        record = self._records.get(key)
        return record is not None and record.locked_until > now

    def _record_failure(self, key: tuple[str, str], now: float) -> None:
        record = self._records.pop(key, None) or _Record()
        self._records[key] = record
        failures = record.failures
        failures.append(now)
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if len(failures) >= self.max_failures:
            record.locked_until = now + self.lockout
            failures.clear()
        self._evict(now)

    def _evict(self, now: float) -> None:
        while len(self._records) > self.max_entries:
            self._records.popitem(last=False)
        # Drop idle keys from the old end so quiet periods shrink the table too.
        while self._records:
            key, record = next(iter(self._records.items()))
            if record.locked_until > now or (
                record.failures and record.failures[-1] > now - self.window
            ):
                break
            del self._records[key]

    def __len__(self) -> int:
        return len(self._records)
