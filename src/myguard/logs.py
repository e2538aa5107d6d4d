"""Structured log lines (logfmt: ``event=login_failed session=12 user=bob ...``)."""

from __future__ import annotations

import logging
import re
import sys
import time

log = logging.getLogger("myguard")
_root = logging.getLogger()


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
        message = " ".join(parts)
        handler = _Handler.installed
        if handler is not None and handler.alone():
            handler.line(level, message)
        else:
            log.log(level, message)


class _Formatter(logging.Formatter):
    """The standard format, with the date and time formatted once per second, not per line."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return self.stamp(record.created, record.msecs)

    def stamp(self, created: float, msecs: float) -> str:
        second = int(created)
        if second != self._second:
            self._stamp = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return self.default_msec_format % (self._stamp, msecs)


class _Handler(logging.StreamHandler):
    """The handler ``setup`` installs. ``line`` writes an event's line as the formatter
    would, without a LogRecord and the logging module's dispatch: a login logs two lines,
    and that machinery cost 6 % of a login's CPU (benchmarks/README.md). Used only while
    nothing else listens (``alone``): a filter or another handler gets the records."""

    installed: _Handler | None = None

    def __init__(self, stream: object) -> None:
        super().__init__(stream)
        self.formatter = self._format = _Formatter()

    def alone(self) -> bool:
        return (
            not log.handlers
            and not log.filters
            and log.propagate
            and _root.handlers == [self]
            and not _root.filters
            and not self.filters
        )

    def line(self, level: int, message: str) -> None:
        created = time.time()
        msecs = int((created - int(created)) * 1000) + 0.0  # as LogRecord computes it
        text = f"{self._format.stamp(created, msecs)} {logging.getLevelName(level)} {log.name} {message}{self.terminator}"
        with self.lock:
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):  # a closed or broken stream: as emit, never raise
                pass


def setup(level: str = "INFO") -> None:
    # A login writes two lines; the format shows none of these, so skip gathering them
    # (the logging HOWTO's "Optimization" section).
    logging._srcfile = None  # caller's file and line
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = _Handler(sys.stderr)
    _root.handlers[:] = [handler]
    _root.setLevel(level)
    _Handler.installed = handler
