"""This worker's sessions and the other workers', asked over unix sockets in the runtime
directory the supervisor shares with its workers: KILL, process-list rows, and the
backend thread a SHOW EXPLAIN FOR names."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from myguard.protocol.errors import (
    ER_KILL_DENIED_ERROR,
    ER_NO_SUCH_THREAD,
    ER_NOT_ALLOWED_COMMAND,
    ER_SPECIFIC_ACCESS_DENIED_ERROR,
    MySQLError,
)
from myguard.session import process_list
from myguard.session.kill import KillRequest
from myguard.session.registry import SessionRegistry

# Set by the supervisor: where its workers' unix sockets live.
RUNTIME_DIR_ENV = "MYGUARD_RUNTIME_DIR"


async def kill(registry: SessionRegistry, user: str, request: KillRequest) -> None:
    """Kill a session of ``user``; a user may kill only their own sessions.

    A session of another worker process is killed by that worker, asked over its unix
    socket in the runtime directory the supervisor shares with its workers.
    """
    runtime = os.environ.get(RUNTIME_DIR_ENV)
    if registry.find(request.target) is not None or not runtime:
        await kill_local(registry, user, request)
        return
    # Another worker's session: the one its id names first, then any on that backend thread.
    await kill_in_workers(Path(runtime), user, request, skip=registry.worker)


async def kill_local(registry: SessionRegistry, user: str, request: KillRequest) -> None:
    target = registry.find(request.target)
    if target is None:
        raise MySQLError(ER_NO_SUCH_THREAD, "HY000", f"Unknown thread id: {request.target}")
    if target.user != user:
        raise MySQLError(
            ER_KILL_DENIED_ERROR, "HY000", f"You are not owner of thread {request.target}"
        )
    await target.kill(request.query_only)


async def _request(path: Path, message: dict[str, object]) -> dict[str, object] | None:
    """Ask the worker behind ``path``; None when there is no such worker (any more)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), 5)
    except (OSError, TimeoutError):
        return None
    try:
        writer.write(json.dumps(message).encode() + b"\n")
        await writer.drain()
        return json.loads(await asyncio.wait_for(reader.readline(), 30) or b"{}")
    finally:
        writer.close()


async def _ask(path: Path, target: int, message: dict[str, object]) -> dict[str, object]:
    """The reply of the worker behind ``path`` about session ``target``; its error raised."""
    reply = await _request(path, message)
    if reply is None:  # no such worker: the id names no live session
        raise MySQLError(ER_NO_SUCH_THREAD, "HY000", f"Unknown thread id: {target}")
    if "code" in reply:
        raise MySQLError(reply["code"], reply["sqlstate"], reply["message"])
    return reply


async def backend_thread(
    registry: SessionRegistry, user: str, sees_all: bool, target: int
) -> tuple[str, int | None]:
    """The backend and backend thread of session ``target``, in any worker, for SHOW
    EXPLAIN FOR by ``user`` (``sees_all``: a member of the process list groups)."""
    runtime = os.environ.get(RUNTIME_DIR_ENV)
    worker = SessionRegistry.worker_of(target)
    if not runtime or worker == registry.worker:
        return _thread_local(registry, user, sees_all, target)
    path = Path(runtime) / f"worker-{worker}.sock"
    reply = await _ask(path, target, {"explain": target, "user": user, "all": sees_all})
    thread = reply["thread"]
    return str(reply["backend"]), None if thread is None else int(thread)


def _thread_local(
    registry: SessionRegistry, user: str, sees_all: bool, target: int
) -> tuple[str, int | None]:
    session = registry.get(target)
    if session is None:
        raise MySQLError(ER_NO_SUCH_THREAD, "HY000", f"Unknown thread id: {target}")
    if session.user != user and not sees_all:
        raise MySQLError(
            ER_SPECIFIC_ACCESS_DENIED_ERROR,
            "42000",
            "myguard: SHOW EXPLAIN FOR another user's session is for the groups that see the"
            " process list (process_list_groups)",
        )
    if session.masks_literals:  # as in the process list, whoever asks
        raise MySQLError(
            ER_NOT_ALLOWED_COMMAND,
            "42000",
            f"myguard: session {target} has masking; the plan of its statement would show"
            " the statement's literals",
        )
    return session.backend_config.name, session.backend_thread_id


async def list_sessions(
    registry: SessionRegistry, user: str, sees_all: bool
) -> list[dict[str, object]]:
    """Process-list rows of the sessions ``user`` may see, in every worker."""
    rows = _local_rows(registry, user, sees_all)
    runtime = os.environ.get(RUNTIME_DIR_ENV)
    if runtime:
        mine = Path(runtime) / f"worker-{registry.worker}.sock"
        for path in sorted(Path(runtime).glob("worker-*.sock")):
            if path != mine:
                reply = await _request(path, {"list": True, "user": user, "all": sees_all})
                rows += (reply or {}).get("rows", [])
    return sorted(rows, key=lambda r: r["Id"])


async def worker_sessions(runtime: Path, user: str, sees_all: bool) -> list[dict[str, object]]:
    """Detailed rows (``process_list.detail_row``) of every worker's sessions that ``user``
    may see: the supervisor's view, asked over the workers' sockets in ``runtime``."""
    rows: list[dict[str, object]] = []
    for path in sorted(runtime.glob("worker-*.sock")):
        message = {"list": True, "user": user, "all": sees_all, "details": True}
        reply = await _request(path, message)
        rows += (reply or {}).get("rows", [])
    return sorted(rows, key=lambda r: r["Id"])


async def kill_in_workers(
    runtime: Path, user: str, request: KillRequest, skip: int | None = None
) -> None:
    """KILL asked of the workers (by the supervisor, or by worker ``skip``, which has
    looked at its own sessions): the owning worker first."""
    owner = runtime / f"worker-{SessionRegistry.worker_of(request.target)}.sock"
    mine = runtime / f"worker-{skip}.sock" if skip is not None else None
    for path in sorted(runtime.glob("worker-*.sock"), key=lambda p: p != owner):
        if path == mine:
            continue
        try:
            message = {"user": user, "target": request.target, "query_only": request.query_only}
            await _ask(path, request.target, message)
            return
        except MySQLError as exc:
            if exc.code != ER_NO_SUCH_THREAD:
                raise
    raise MySQLError(ER_NO_SUCH_THREAD, "HY000", f"Unknown thread id: {request.target}")


def _local_rows(
    registry: SessionRegistry, user: str, sees_all: bool, details: bool = False
) -> list[dict[str, object]]:
    make = process_list.detail_row if details else process_list.row
    return [make(s) for s in process_list.visible(registry, user, sees_all)]


async def serve_requests(registry: SessionRegistry, path: Path) -> asyncio.Server:
    """Answer other workers' KILL, process-list and SHOW EXPLAIN FOR requests for this
    worker's sessions."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            message = json.loads(await reader.readline())
            if message.get("list"):
                rows = _local_rows(
                    registry,
                    str(message["user"]),
                    bool(message["all"]),
                    bool(message.get("details")),
                )
                reply: dict[str, object] = {"rows": rows}
            elif "explain" in message:
                backend, thread = _thread_local(
                    registry, str(message["user"]), bool(message["all"]), int(message["explain"])
                )
                reply = {"backend": backend, "thread": thread}
            else:
                request = KillRequest(int(message["target"]), bool(message["query_only"]))
                await kill_local(registry, str(message["user"]), request)
                reply = {"ok": True}
        except MySQLError as exc:
            reply = {"code": exc.code, "sqlstate": exc.sqlstate, "message": exc.message}
        except (ValueError, KeyError, TypeError):
            reply = {
                "code": ER_KILL_DENIED_ERROR,
                "sqlstate": "HY000",
                "message": "malformed request between workers",
            }
        writer.write(json.dumps(reply).encode() + b"\n")
        await writer.drain()
        writer.close()

    path.unlink(missing_ok=True)
    return await asyncio.start_unix_server(handle, str(path))
