"""Bounded LRU of analyses keyed by (statement fingerprint, current database)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from myguard._fast import load

V = TypeVar("V")
_fingerprint = load("fingerprint")


def statement_fingerprint(sql: str | bytes) -> int:
    """The fingerprint a statement is cached, audited and pre-approved by: its text with
    literals and case erased (``_fast.fingerprint``), hashed. Computed once per statement."""
    if isinstance(sql, str):
        sql = sql.encode("utf-8", "surrogateescape")
    return _fingerprint.fingerprint_hash(sql)


class AnalysisCache(Generic[V]):
    """``get_or_build`` runs ``build`` on a miss and keeps the result when it says it may.

    ``hits`` and ``misses`` count lookups (exported to Prometheus by the proxy).
    """

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError("cache size must be >= 0")
        self.size = size
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[int, str | None], V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get_or_build(
        self,
        fingerprint: int,
        current_db: str | None,
        build: Callable[[], tuple[V, bool]],
    ) -> V:
        """Cached value for a statement of this ``fingerprint`` (``fingerprint_hash``);
        ``build`` returns (value, cacheable)."""
        if not self.size:
            self.misses += 1
            return build()[0]
        key = (fingerprint, current_db)
        entries = self._entries
        value = entries.get(key)
        if value is not None:
            entries.move_to_end(key)
            self.hits += 1
            return value
        self.misses += 1
        value, cacheable = build()
        if cacheable:
            entries[key] = value
            if len(entries) > self.size:
                entries.popitem(last=False)
        return value
