"""Drop (or archive) the oldest segments by age and total size.

Only a run of the oldest segments is ever removed, never one in the middle and never the
segment being written, so what remains is still one unbroken chain whose first header
anchors it (see verify).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from myguard.audit.segment import list_segments


def _remove(path: Path, archive_dir: Path | None) -> None:
    # Torn-tail evidence files saved by crash repair go with their segment.
    for item in [path, *path.parent.glob(f"{path.name}.torn-*")]:
        if archive_dir is None:
            item.unlink(missing_ok=True)
        else:
            archive_dir.mkdir(parents=True, exist_ok=True)
            shutil.move(item, archive_dir / item.name)


def apply_retention(
    directory: str | Path,
    *,
    current_seq: int,
    max_age_seconds: float | None = None,
    max_bytes: int | None = None,
    archive_dir: str | Path | None = None,
    now: float | None = None,
    current_size: int | None = None,
) -> list[Path]:
    """Remove the oldest segments older than ``max_age_seconds`` (by last write) or beyond
    ``max_bytes`` in total; ``current_seq`` is never touched. Returns the removed paths.

    ``current_size``: where the records of segment ``current_seq`` end, counted instead of
    its file's size, which includes the zeros the writer fills ahead of them (up to 1 MiB:
    docs/audit-format.md, "Zero-filled end")."""
    now = time.time() if now is None else now
    archive = Path(archive_dir) if archive_dir is not None else None
    segments = [(seq, path, path.stat()) for seq, path in list_segments(directory)]
    total = sum(
        current_size if seq == current_seq and current_size is not None else stat.st_size
        for seq, _, stat in segments
    )
    removed = []
    for seq, path, stat in segments:
        if seq >= current_seq:
            break
        too_old = max_age_seconds is not None and stat.st_mtime < now - max_age_seconds
        too_big = max_bytes is not None and total > max_bytes
        if not (too_old or too_big):
            break
        _remove(path, archive)
        total -= stat.st_size
        removed.append(path)
    return removed
