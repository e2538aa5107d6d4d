"""The admin HTTP listener: /healthz, Prometheus /metrics, and routes other parts add."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from myguard import metrics
from myguard.logs import event

# (method, path, headers, body) -> (status, content type, body)
Handler = Callable[[str, str, dict[str, str], bytes], Awaitable[tuple[int, str, bytes]]]

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
_MAX_BODY = 1 << 20


def _error(status: int, code: str, message: str) -> tuple[int, str, bytes]:
    """An error answer in the approvals API's shape: ``{"code": ..., "message": ...}``."""
    return status, "application/json", json.dumps({"code": code, "message": message}).encode()


class AdminServer:
    def __init__(self, healthy: Callable[[], bool], registry: CollectorRegistry = REGISTRY) -> None:
        self._healthy = healthy
        self._registry = registry
        self._routes: list[tuple[str, Handler]] = [
            ("/healthz", self._healthz),
            ("/metrics", self._metrics),
        ]
        self._server: asyncio.Server | None = None

    def route(self, prefix: str, handler: Handler) -> None:
        """Serve every path under ``prefix`` with ``handler``."""
        self._routes.append((prefix, handler))

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._client, host, port, reuse_port=True)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _healthz(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, str, bytes]:
        ok = self._healthy()
        return (
            (200 if ok else 503),
            "application/json",
            json.dumps({"status": "ok" if ok else "draining"}).encode(),
        )

    async def _metrics(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, str, bytes]:
        metrics.flush()  # this process's tallied counts (workers flush their own each second)
        return 200, CONTENT_TYPE_LATEST, generate_latest(self._registry)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, ctype, body = await asyncio.wait_for(self._handle(reader), 30)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            status, ctype, body = _error(400, "bad-request", "malformed HTTP request")
        except Exception:
            logging.getLogger("myguard").exception("admin request failed")
            status, ctype, body = _error(500, "internal-error", "internal error (see the log)")
        # A 401 must name the scheme to use (RFC 9110); HTTP Basic is the only one here.
        challenge = 'WWW-Authenticate: Basic realm="myguard"\r\n' if status == 401 else ""
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\nContent-Type: {ctype}\r\n"
            f"{challenge}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        try:
            writer.write(head.encode() + body)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader) -> tuple[int, str, bytes]:
        request_line = (await reader.readline()).decode("latin-1").strip()
        method, path, _version = request_line.split(" ", 2)
        headers: dict[str, str] = {}
        while True:
            line = (await reader.readline()).decode("latin-1").strip()
            if not line:
                break
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        if length > _MAX_BODY:
            return _error(413, "body-too-large", f"request bodies are limited to {_MAX_BODY} bytes")
        body = await reader.readexactly(length) if length else b""
        path = path.split("?", 1)[0]
        for prefix, handler in self._routes:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                event(logging.DEBUG, "admin_request", method=method, path=path)
                return await handler(method, path, headers, body)
        return _error(404, "no-such-endpoint", f"no such endpoint: {path}")
