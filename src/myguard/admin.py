"""The admin HTTP listener: /healthz, Prometheus /metrics, the APIs other parts add and the
web console, served by aiohttp on the process's own (uvloop) event loop.

Limits against slow or hostile clients: request lines and header fields of at most 8 KiB,
at most 100 header fields, bodies of at most 1 MiB (413), a request's headers must arrive
within ``header_timeout`` seconds of the connection (or of the previous request on a
kept-alive connection), its body within ``body_timeout`` seconds (408).

Every error outside the console is JSON in the approvals API's shape,
``{"code": ..., "message": ...}``; a 401 names the HTTP Basic scheme (RFC 9110).
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from myguard import metrics
from myguard.logs import event

# (method, path with query, headers with lower-case names, body) -> (status, type, body)
Handler = Callable[[str, str, dict[str, str], bytes], Awaitable[tuple[int, str, bytes]]]

MAX_BODY = 1 << 20
MAX_LINE = 8190
MAX_HEADERS = 100
HEADER_TIMEOUT = 15.0
BODY_TIMEOUT = 30.0
BASIC_CHALLENGE = 'Basic realm="myguard"'
BODY_TIMEOUT_KEY = web.AppKey("body_timeout", float)


def json_error(status: int, code: str, message: str) -> web.Response:
    """An error answer in the approvals API's shape: ``{"code": ..., "message": ...}``."""
    response = web.json_response({"code": code, "message": message}, status=status)
    if status == 401:
        response.headers["WWW-Authenticate"] = BASIC_CHALLENGE
    return response


async def read_body(request: web.Request) -> bytes:
    """The request body, bounded by the app's size limit (413) and body timeout (408)."""
    try:
        async with asyncio.timeout(request.config_dict.get(BODY_TIMEOUT_KEY, BODY_TIMEOUT)):
            return await request.read()
    except TimeoutError:
        raise web.HTTPRequestTimeout(text="request body not received in time") from None


_STATUS_CODES = {
    400: "bad-request",
    404: "no-such-endpoint",
    405: "method-not-allowed",
    408: "request-timeout",
    413: "body-too-large",
}


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """JSON errors outside the console (the console renders its own pages); an internal
    error is logged with its traceback and answered 500 without details."""
    console = request.path == "/console" or request.path.startswith("/console/")
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if console or exc.status < 400 or exc.status == 401 and "WWW-Authenticate" in exc.headers:
            raise
        code = _STATUS_CODES.get(exc.status, "http-error")
        if exc.status == 404:
            message = f"no such endpoint: {request.path}"
        elif exc.status == 413:
            message = f"request bodies are limited to {MAX_BODY} bytes"
        elif exc.status == 405:
            message = f"{request.path} does not take {request.method}"
        else:
            message = exc.text or exc.reason
        return json_error(exc.status, code, message)
    except (asyncio.CancelledError, ConnectionError):
        raise
    except Exception:
        logging.getLogger("myguard").exception(
            "admin request failed: %s %s", request.method, request.path
        )
        if console:
            return web.Response(
                status=500,
                text="Internal error (see the myguard log).",
                content_type="text/plain",
            )
        return json_error(500, "internal-error", "internal error (see the log)")


class AdminServer:
    def __init__(
        self,
        healthy: Callable[[], bool],
        registry: CollectorRegistry = REGISTRY,
        *,
        header_timeout: float = HEADER_TIMEOUT,
        body_timeout: float = BODY_TIMEOUT,
    ) -> None:
        self._healthy = healthy
        self._registry = registry
        self._header_timeout = header_timeout
        self.app = web.Application(client_max_size=MAX_BODY, middlewares=[_errors])
        self.app[BODY_TIMEOUT_KEY] = body_timeout
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/metrics", self._metrics)
        self._runner: web.AppRunner | None = None
        self._on_close: list[Callable[[], Awaitable[None]]] = []

    def route(self, prefix: str, handler: Handler) -> None:
        """Serve ``prefix`` and every path under it with a plain ``handler``."""

        async def adapter(request: web.Request) -> web.Response:
            body = await read_body(request)
            headers = {name.lower(): value for name, value in request.headers.items()}
            event(logging.DEBUG, "admin_request", method=request.method, path=request.path)
            status, ctype, payload = await handler(request.method, request.raw_path, headers, body)
            response = web.Response(status=status, body=payload)
            response.headers["Content-Type"] = ctype
            if status == 401:
                response.headers["WWW-Authenticate"] = BASIC_CHALLENGE
            return response

        base = prefix.rstrip("/")
        self.app.router.add_route("*", base, adapter)
        self.app.router.add_route("*", base + "/{tail:.*}", adapter)

    def on_close(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run ``hook`` when the listener closes (before the runner stops)."""
        self._on_close.append(hook)

    async def start(self, host: str, port: int, tls: ssl.SSLContext | None = None) -> None:
        self._runner = web.AppRunner(
            self.app,
            access_log=None,
            handle_signals=False,
            handler_cancellation=True,
            # Also the time a new connection has to send its first request's headers.
            keepalive_timeout=self._header_timeout,
            max_line_size=MAX_LINE,
            max_field_size=MAX_LINE,
            max_headers=MAX_HEADERS,
            shutdown_timeout=2.0,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=tls, reuse_port=True)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            raise OSError(
                exc.errno, f"cannot listen on {host}:{port} (admin_listen): {exc.strerror}"
            ) from None
        event(
            logging.INFO,
            "admin_listening",
            address=f"{host}:{port}",
            scheme="https" if tls else "http",
        )

    async def close(self) -> None:
        for hook in self._on_close:
            await hook()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        ok = self._healthy()
        return web.Response(
            status=200 if ok else 503,
            content_type="application/json",
            text=json.dumps({"status": "ok" if ok else "draining"}),
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        metrics.flush()  # this process's tallied counts (workers flush their own each second)
        response = web.Response(body=generate_latest(self._registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response
