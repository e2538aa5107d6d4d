"""Structured log lines (logfmt: ``event=login_failed session=12 user=bob ...``)."""

from __future__ import annotations

import logging
import re
import sys
import time

log = logging.getLogger("myguard")


_NEEDS_QUOTES = re.compile('[ "=\n]').search


def _value(v: object) -> str:
    s = str(v)
    if not s or _NEEDS_QUOTES(s):
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return s


def event(level: int, name: str, **fields: object) -> None:
    """Log one event as ``event=NAME k=v ...``; values are quoted when needed."""
    if log.isEnabledFor(level):
        parts = [f"event={name}"]
        parts.extend(f"{k}={_value(v)}" for k, v in fields.items() if v is not None)
        log.log(level, " ".join(parts))


class _Formatter(logging.Formatter):
    """The standard format, with the date and time formatted once per second, not per line."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        second = int(record.created)
        if second != self._second:
            self._stamp = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return self.default_msec_format % (self._stamp, record.msecs)


def setup(level: str = "INFO") -> None:
    # A login writes two lines; the format shows none of these, so skip gathering them
    # (the logging HOWTO's "Optimization" section).
    logging._srcfile = None  # caller's file and line
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
