"""Structured log lines (logfmt: ``event=login_failed session=12 user=bob ...``)."""

from __future__ import annotations

import logging
import sys

log = logging.getLogger("myguard")


def _value(v: object) -> str:
    s = str(v)
    if not s or any(c in s for c in ' "=\n'):
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return s


def event(level: int, name: str, **fields: object) -> None:
    """Log one event as ``event=NAME k=v ...``; values are quoted when needed."""
    if log.isEnabledFor(level):
        parts = [f"event={name}"]
        parts.extend(f"{k}={_value(v)}" for k, v in fields.items() if v is not None)
        log.log(level, " ".join(parts))


def setup(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
