"""The proxy's live client sessions, as the console lists and kills them.

Single process: its own session registry. Under the supervisor: every worker, asked over
the unix sockets KILL already uses. Rights are the SQL path's: members of
``process_list_groups`` see every session, others their own; a session is killed only by
the user it belongs to (as ``KILL`` in SQL).
"""

from __future__ import annotations

import abc
from pathlib import Path

from myguard.session import process_list
from myguard.session.kill import KillRequest
from myguard.session.registry import SessionRegistry
from myguard.session.workers import kill_in_workers, kill_local, worker_sessions


class SessionsView(abc.ABC):
    @abc.abstractmethod
    async def list(self, user: str, sees_all: bool) -> list[dict[str, object]]:
        """``process_list.detail_row`` of each session ``user`` may see, by id."""

    @abc.abstractmethod
    async def kill(self, user: str, target: int, query_only: bool) -> None:
        """Kill as ``user`` would in SQL; raises MySQLError (unknown id, not the owner)."""


class LocalSessions(SessionsView):
    def __init__(self, registry: SessionRegistry) -> None:
        self.registry = registry

    async def list(self, user: str, sees_all: bool) -> list[dict[str, object]]:
        return [
            process_list.detail_row(s)
            for s in process_list.visible(self.registry, user, sees_all)  # type: ignore[arg-type]
        ]

    async def kill(self, user: str, target: int, query_only: bool) -> None:
        await kill_local(self.registry, user, KillRequest(target, query_only))


class WorkerSessions(SessionsView):
    def __init__(self, runtime: Path) -> None:
        self.runtime = runtime

    async def list(self, user: str, sees_all: bool) -> list[dict[str, object]]:
        return await worker_sessions(self.runtime, user, sees_all)

    async def kill(self, user: str, target: int, query_only: bool) -> None:
        await kill_in_workers(self.runtime, user, KillRequest(target, query_only))
