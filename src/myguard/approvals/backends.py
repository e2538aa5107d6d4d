"""Open an approval store from its textual spec (config file or ``--store``)."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from myguard.approvals.store import ApprovalStore
from myguard.approvals.store_mysql import MysqlApprovalStore, MysqlTarget
from myguard.approvals.store_sqlite import SqliteApprovalStore

SPEC_HELP = "sqlite:PATH or mysql://USER@HOST:PORT/DATABASE"


def open_store(spec: str, *, password: str | None = None, create: bool = True) -> ApprovalStore:
    """``sqlite:PATH`` or ``mysql://USER@HOST[:PORT]/DATABASE``; raises ValueError.

    ``create=False`` opens an existing store only (StoreMissing at the first query).

    The MySQL password is never part of the spec (it would end up in process lists
    and config dumps); the caller passes it.
    """
    if spec.startswith("sqlite:"):
        path = spec.removeprefix("sqlite:")
        if not path:
            raise ValueError(f"approval store {spec!r}: expected {SPEC_HELP}")
        return SqliteApprovalStore(path, create=create)
    if spec.startswith("mysql://"):
        url = urlsplit(spec)
        database = url.path.lstrip("/")
        if not url.username or not url.hostname or not database or url.password:
            raise ValueError(f"approval store {spec!r}: expected {SPEC_HELP} (no password)")
        return MysqlApprovalStore(
            MysqlTarget(
                host=url.hostname,
                port=url.port or 3306,
                user=unquote(url.username),
                database=database,
                password=password,
            ),
            create=create,
        )
    raise ValueError(f"approval store {spec!r}: expected {SPEC_HELP}")
