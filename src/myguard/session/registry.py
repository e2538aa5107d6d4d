"""Sessions by id, so that KILL can find its target."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any, Protocol


class Killable(Protocol):
    id: int
    user: str
    backend_thread_id: int | None
    backend_config: Any  # its ``name`` is the backend's
    masks_literals: bool

    async def kill(self, query_only: bool) -> None: ...


class SessionRegistry:
    """Hands out session ids (shown to clients as connection ids) and finds sessions by id."""

    def __init__(self, worker: int = 0) -> None:
        # Worker index in the high bits keeps ids unique across worker processes.
        self.worker = worker
        self._ids = itertools.count((worker << 24) + 1)
        self._sessions: dict[int, Killable] = {}

    def new_id(self) -> int:
        return next(self._ids) & 0xFFFFFFFF

    def add(self, session: Killable) -> None:
        self._sessions[session.id] = session

    def remove(self, session_id: int) -> None:
        self._sessions.pop(session_id, None)

    @staticmethod
    def worker_of(session_id: int) -> int:
        """The worker process that owns a session id."""
        return session_id >> 24

    def get(self, session_id: int) -> Killable | None:
        return self._sessions.get(session_id)

    def find(self, target: int) -> Killable | None:
        """The session with this id, else the one on this backend thread id: KILL takes
        both (a client may know either, e.g. from the backend's process list)."""
        found = self._sessions.get(target)
        if found is None:
            found = next(
                (s for s in self._sessions.values() if s.backend_thread_id == target), None
            )
        return found

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[Killable]:
        return iter(list(self._sessions.values()))
