"""The audit writer thread's wait: the pure-Python twin of ``auditsync.pyx``.

The event loop writes records and calls :meth:`Syncer.written`; the writer thread calls
:meth:`Syncer.wait`, which makes what was written durable on its own (it lingers
``linger`` seconds to gather more records, then fdatasyncs the segment) and returns only
when the thread's Python side has work: PYTHON after :meth:`Syncer.notify`, TIMEOUT when
nothing was written for ``timeout`` seconds, FAILED when a sync or the drain of the
tail's ring failed (``error`` holds the errno). With a ``tail`` it drains its ring at once
and again after the linger; ``sync`` False only drains (fsync "off"). The compiled module
does the same without holding the GIL.
"""

from __future__ import annotations

import os
import threading
import time

PYTHON = 1
TIMEOUT = 2
FAILED = 3


class Syncer:
    def __init__(self, fd: int, linger: float, tail: object = None, sync: bool = True) -> None:
        self._fd = fd
        self._tail = tail
        self._sync = sync
        self._linger = linger
        self._dirty = False
        self._python = False
        self._kicked = threading.Event()
        self.error = 0
        self.syncs = 0

    def set_fd(self, fd: int) -> None:
        """The segment to sync from now on (after a rotation)."""
        self._fd = fd

    def written(self) -> None:
        """A record was written: sync it within the linger."""
        if not self._dirty:
            self._dirty = True
            self._kicked.set()

    def notify(self) -> None:
        """Work for the thread's Python side is queued."""
        self._python = True
        self._kicked.set()

    def _drain(self, timeout: float | None) -> bool:
        kicked = self._kicked.wait(timeout)
        self._kicked.clear()
        return kicked

    def _lingered(self) -> bool:
        """Wait out the linger (kicks for more records do not end it); True if Python work
        came meanwhile."""
        if self._linger <= 0:
            return False
        deadline = time.monotonic() + self._linger
        while not self._python:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._drain(left)
        return True

    def _drain_ring(self) -> int:
        return 0 if self._tail is None else self._tail.drain()

    def wait(self, timeout: float) -> int:
        """See the module docstring; ``timeout`` < 0 waits for ever."""
        while True:
            if self._python:
                self._python = False
                return PYTHON
            if not self._dirty:
                if not self._drain(timeout if timeout >= 0 else None):
                    return TIMEOUT
                continue
            self.error = self._drain_ring()
            if self.error:
                self._dirty = False  # the ring keeps them; the writer's recovery drains it
                return FAILED
            if self._lingered():
                continue
            self._dirty = False  # what is written after this goes into the next sync
            self.error = self._drain_ring()
            if self.error:
                return FAILED
            if not self._sync:
                continue
            try:
                os.fdatasync(self._fd)
            except OSError as exc:
                self.error = exc.errno or 0
                return FAILED
            self.syncs += 1
