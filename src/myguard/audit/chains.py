"""Audit roots holding several hash chains: one per worker process, one for the supervisor.

A directory with segment files is a chain. A root may also hold chains in its direct
subdirectories (``worker-0/``, ``worker-1/``, ``supervisor/``): every subdirectory with
segments is one. Chains are independent of each other, so each is verified on its own;
for reading, their records are merged by time, each chain keeping its own order.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from myguard.audit.records import AuditRecord
from myguard.audit.segment import list_segments

# The name of a root's own chain when it has chain subdirectories too (a single-process
# trail left in place after switching to workers); alone, a chain's name is "".
ROOT_CHAIN = "."


@dataclass(frozen=True, slots=True)
class Chain:
    """A chain directory and its name: the subdirectory name, ``.`` or ``""`` (see above)."""

    name: str
    path: Path


def location(chain: str, segment: str) -> str:
    """A segment as people should look for it: ``worker-1/audit-….seg``."""
    return f"{chain}/{segment}" if chain else segment


def _has_segments(path: Path) -> bool:
    try:
        return bool(list_segments(path))
    except OSError:
        return False  # unreadable (lost+found on a mount point): not known to be a chain


def find_chains(directory: str | Path) -> list[Chain]:
    """The chains in ``directory``, by name; raises OSError when it cannot be listed."""
    root = Path(directory)
    subchains = [
        Chain(path.name, path)
        for path in sorted(root.iterdir())
        if path.is_dir() and _has_segments(path)
    ]
    if list_segments(root):
        return [Chain(ROOT_CHAIN if subchains else "", root), *subchains]
    return subchains


def merge_by_time(streams: Iterable[Iterable[AuditRecord]]) -> Iterator[AuditRecord]:
    """Records of several chains by time. Never reorders records within one chain (clocks
    can step back), and equal times keep the order of ``streams``."""
    streams = list(streams)
    if len(streams) == 1:
        return iter(streams[0])
    return heapq.merge(*streams, key=lambda record: record.time)
