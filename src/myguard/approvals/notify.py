"""Tell approvers about new requests by POSTing JSON to webhooks.

Delivery is fire-and-forget: ``submit`` only schedules tasks, a semaphore bounds
how many HTTP calls run at once, and a cap on outstanding deliveries drops (and
logs) new ones rather than growing without bound while a webhook is down. The
HTTP call itself is stdlib urllib in a worker thread: no extra dependency, and a
slow endpoint never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.request
from collections.abc import Sequence
from typing import Any, Protocol

log = logging.getLogger(__name__)


class Notifier(Protocol):
    def submit(self, payload: dict[str, Any]) -> None:
        """Schedule delivery of ``payload``; must return at once and never raise."""


class WebhookNotifier:
    def __init__(
        self,
        urls: Sequence[str],
        *,
        attempts: int = 4,
        backoff: float = 0.5,
        timeout: float = 5.0,
        concurrency: int = 4,
        max_outstanding: int = 1000,
    ) -> None:
        self.urls = tuple(urls)
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self.max_outstanding = max_outstanding
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, default=str).encode()
        for url in self.urls:
            if len(self._tasks) >= self.max_outstanding:
                log.warning("approval webhook backlog full; dropping notification to %s", url)
                continue
            task = asyncio.get_running_loop().create_task(self._deliver(url, body))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _post(self, url: str, body: bytes) -> int:
        req = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=self.timeout) as response:
            return response.status

    async def _deliver(self, url: str, body: bytes) -> None:
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                async with self._slots:
                    await asyncio.to_thread(self._post, url, body)
                return
            except Exception as exc:  # any failure is retried, then logged; never raised
                if attempt == self.attempts:
                    log.error("approval webhook %s failed after %d attempts: %s", url, attempt, exc)
                    return
                log.info("approval webhook %s attempt %d failed: %s", url, attempt, exc)
            # Back off outside the semaphore so a dead endpoint doesn't hold a slot.
            await asyncio.sleep(delay)
            delay *= 2

    async def drain(self) -> None:
        """Wait for the deliveries in flight (shutdown, tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
