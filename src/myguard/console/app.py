"""The web console under /console on the admin listener: approvals, sessions, audit.

Server-rendered pages (Jinja2, autoescaped) with one small script for live updates; no
build step. Rights are those of the SQL path: a person sees the approval requests they
made or whose approver groups they are in, decides only as an approver and never their
own request (ApprovalService enforces and audits both, as for SQL and the CLI); sees
every session when in ``process_list_groups``, else their own, and kills only their
own; sees the whole audit trail when in ``[admin] audit_groups``, else their own
records.

Requests that change anything are POSTs carrying the sign-in's CSRF token; the cookie
is HttpOnly, SameSite=Strict and, when the listener has TLS, Secure. Pages are sent
with a Content-Security-Policy that allows no inline script, so text that reached a
page from a statement or a reason can never run there.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from myguard.admin import read_body
from myguard.approvals.errors import ApprovalNotFound, ApprovalRefused
from myguard.approvals.model import ApprovalRequest, RequestStatus
from myguard.approvals.service import ApprovalService
from myguard.audit import AuditWriter, login_record
from myguard.audit.cli import parse_since
from myguard.audit.records import AuditRecord
from myguard.config import Config
from myguard.console.auth import COOKIE, LOGIN_COOKIE, SignIn, SignIns
from myguard.console.render import environment
from myguard.console.sessions import SessionsView
from myguard.console.trail import BadCursor, Chart, Query, Trail
from myguard.identity.base import AuthFailed, IdentitySource, IdentityUnavailable
from myguard.identity.throttle import LoginThrottle
from myguard.logs import event
from myguard.protocol.errors import MySQLError

PAGE_SIZE = 50
MAX_LIVE = 200  # event streams open at once
LIVE_POLL = 1.0  # seconds between looks at the approval queue while someone watches
VERIFY_EVERY = 300.0  # the chain is verified again when its result is older than this
_STATUSES = ("pending", "approved", "denied", "expired", "cancelled", "executed", "all")
_REFUSAL_STATUS = {"not-pending": 409, "no-reason": 400}
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
STATIC_FILES = {"console.css": "text/css", "console.js": "text/javascript"}
SIGNIN_KEY = web.AppKey("signin", SignIn)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(slots=True)
class ConsoleDeps:
    config: Config
    approvals: ApprovalService
    source: IdentitySource
    throttle: LoginThrottle
    sessions: SessionsView
    audit: Callable[[], AuditWriter | None]
    hmac_key: bytes | None = None


class BadInput(Exception):
    """A query or form value the console cannot use: a 400 page naming it."""


class Console:
    def __init__(self, deps: ConsoleDeps, *, tls: bool) -> None:
        self.deps = deps
        self.tls = tls
        admin = deps.config.admin
        self.signins = SignIns(
            deps.source, idle_timeout=admin.session_idle_timeout, lifetime=admin.session_lifetime
        )
        self.trail = Trail(deps.config.audit.directory, deps.hmac_key)
        self.env = environment()
        self._static = {
            name: (resources.files("myguard.console").joinpath("static", name).read_bytes(), ctype)
            for name, ctype in STATIC_FILES.items()
        }
        self._watchers: set[asyncio.Event] = set()
        self._version: tuple[object, ...] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._verifying: asyncio.Task[None] | None = None

    # -- wiring ----------------------------------------------------------------------------

    def install(self, app: web.Application) -> None:
        r = app.router
        page, api = self._page, self._api
        r.add_get("/console", self._root)
        r.add_get("/console/", self._root)
        r.add_get("/console/static/{name}", self._static_file)
        r.add_get("/console/login", self._login_form)
        r.add_post("/console/login", self._login)
        r.add_post("/console/logout", api(self._logout, post=True))
        r.add_get("/console/approvals", page(self._approvals))
        r.add_get("/console/approvals/rows", api(self._approval_rows))
        r.add_get("/console/approvals/events", api(self._events))
        r.add_get(r"/console/approvals/{id:\d+}", page(self._approval))
        r.add_get(r"/console/approvals/{id:\d+}/panel", api(self._approval_panel))
        r.add_post(r"/console/approvals/{id:\d+}/{action:approve|deny}", api(self._decide, True))
        r.add_get("/console/sessions", page(self._sessions))
        r.add_get("/console/sessions/rows", api(self._session_rows))
        r.add_post(r"/console/sessions/{id:\d+}/kill", api(self._kill, post=True))
        r.add_get("/console/audit", page(self._audit))
        r.add_get("/console/audit/record", page(self._audit_record))
        r.add_post("/console/audit/verify", api(self._verify, post=True))
        r.add_route("*", "/console/{tail:.*}", self._not_found)
        app.on_response_prepare.append(self._headers)

    async def close(self) -> None:
        self._closing.set()
        for watcher in list(self._watchers):
            watcher.set()
        for task in (self._poller, self._verifying):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    @staticmethod
    async def _headers(request: web.Request, response: web.StreamResponse) -> None:
        if request.path == "/console" or request.path.startswith("/console/"):
            headers = response.headers
            headers.setdefault("Content-Security-Policy", _CSP)
            headers.setdefault("X-Content-Type-Options", "nosniff")
            headers.setdefault("X-Frame-Options", "DENY")
            headers.setdefault("Referrer-Policy", "same-origin")
            if not request.path.startswith("/console/static/"):
                headers.setdefault("Cache-Control", "no-store")

    def _signed_in(self, handler: Handler, *, page: bool, post: bool) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            signin = await self.signins.get(request.cookies.get(COOKIE))
            if signin is None:
                if page:
                    target = urlencode({"next": request.path_qs})
                    raise web.HTTPSeeOther(f"/console/login?{target}")
                return self._plain(401, "Sign in first: /console/login")
            if post:
                form = await self._form(request)
                token = form.get("csrf") or request.headers.get("X-CSRF-Token")
                if not self._same_origin(request) or not signin.csrf_ok(token):
                    event(
                        logging.WARNING,
                        "console_csrf_refused",
                        user=signin.user,
                        path=request.path,
                        address=request.remote,
                    )
                    return self._plain(403, "Refused: the form's CSRF token is missing or stale.")
            request[SIGNIN_KEY] = signin
            try:
                return await handler(request)
            except BadInput as bad:
                return self._render(request, "error.html", {"message": str(bad)}, status=400)

        return guarded

    def _page(self, handler: Handler) -> Handler:
        return self._signed_in(handler, page=True, post=False)

    def _api(self, handler: Handler, post: bool = False) -> Handler:
        return self._signed_in(handler, page=False, post=post)

    @staticmethod
    def _same_origin(request: web.Request) -> bool:
        """An Origin header, when the browser sends one, names this listener."""
        origin = request.headers.get("Origin")
        return origin is None or origin == f"{request.scheme}://{request.host}"

    @staticmethod
    async def _form(request: web.Request) -> dict[str, str]:
        if "console_form" not in request:
            await read_body(request)  # bounded in size and time
            try:
                data = await request.post()
            except ValueError:
                raise web.HTTPBadRequest(text="malformed form body") from None
            request["console_form"] = {k: v for k, v in data.items() if isinstance(v, str)}
        return request["console_form"]

    @staticmethod
    def _plain(status: int, text: str) -> web.Response:
        return web.Response(status=status, text=text + "\n", content_type="text/plain")

    def _render(
        self,
        request: web.Request,
        template: str,
        context: dict[str, Any],
        *,
        status: int = 200,
    ) -> web.Response:
        signin = request.get(SIGNIN_KEY)
        html = self.env.get_template(template).render(
            signin=signin,
            csrf=signin.csrf if signin else "",
            path=request.path,
            **context,
        )
        return web.Response(status=status, text=html, content_type="text/html", charset="utf-8")

    # -- sign-in ---------------------------------------------------------------------------

    async def _root(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPSeeOther("/console/approvals")

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        signin = await self.signins.get(request.cookies.get(COOKIE))
        if signin is None:
            return self._plain(401 if request.method == "GET" else 403, "Sign in first.")
        request[SIGNIN_KEY] = signin
        return self._render(request, "error.html", {"message": "No such page."}, status=404)

    async def _static_file(self, request: web.Request) -> web.StreamResponse:
        found = self._static.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound(text="no such file")
        body, ctype = found
        response = web.Response(body=body, content_type=ctype)
        response.headers["Cache-Control"] = "private, max-age=300"
        return response

    def _cookie(self, response: web.StreamResponse, name: str, value: str, **extra: Any) -> None:
        response.set_cookie(
            name,
            value,
            path="/console",
            httponly=True,
            samesite="Strict",
            secure=self.tls,
            **extra,
        )

    def _login_page(
        self, request: web.Request, error: str | None, status: int = 200, user: str = ""
    ) -> web.Response:
        token = secrets.token_urlsafe(24)
        next_path = _local_path(request.query.get("next"))
        response = self._render(
            request,
            "login.html",
            {"error": error, "login_token": token, "next": next_path, "user": user},
            status=status,
        )
        self._cookie(response, LOGIN_COOKIE, token, max_age=3600)
        return response

    async def _login_form(self, request: web.Request) -> web.StreamResponse:
        if await self.signins.get(request.cookies.get(COOKIE)) is not None:
            raise web.HTTPSeeOther(_local_path(request.query.get("next")))
        return self._login_page(request, None)

    async def _login(self, request: web.Request) -> web.StreamResponse:
        form = await self._form(request)
        user = form.get("user", "").strip()
        password = form.get("password", "")
        expected = request.cookies.get(LOGIN_COOKIE, "")
        given = form.get("login_token", "")
        if (
            not self._same_origin(request)
            or not expected
            or not hmac.compare_digest(expected.encode(), given.encode())
        ):
            return self._login_page(request, "The sign-in form expired; try again.", 403, user)
        if not user or not password:
            return self._login_page(request, "Enter your user name and password.", 400, user)
        address = request.remote or "?"
        if not self.deps.throttle.allowed(user, address):
            await self._audit_login(user, address, False, "throttled")
            return self._login_page(request, "Too many failed sign-ins; wait and retry.", 429)
        try:
            identity = await self.deps.source.authenticate(user, password)
        except AuthFailed as failed:
            self.deps.throttle.failure(user, address)
            await self._audit_login(user, address, False, failed.reason)
            return self._login_page(request, "Wrong user name or password.", 401, user)
        except IdentityUnavailable:
            await self._audit_login(user, address, False, "identity source unavailable")
            return self._login_page(
                request, "The identity source cannot be reached; try again later.", 503, user
            )
        self.deps.throttle.success(user, address)
        token, signin = self.signins.create(identity, address)
        await self._audit_login(user, address, True, None, identity.groups)
        event(logging.INFO, "console_signin", user=user, address=address)
        response = web.HTTPSeeOther(_local_path(form.get("next")))
        self._cookie(response, COOKIE, token)
        response.del_cookie(LOGIN_COOKIE, path="/console")
        raise response

    async def _audit_login(
        self,
        user: str,
        address: str,
        ok: bool,
        reason: str | None,
        groups: frozenset[str] | None = None,
    ) -> None:
        writer = self.deps.audit()
        if writer is None:
            return
        try:
            await writer.write(
                login_record(
                    success=ok,
                    user=user,
                    reason=reason,
                    groups=groups,
                    source_address=address,
                    client_program="myguard-console",
                    tls=self.tls,
                )
            )
        except Exception as exc:  # the sign-in itself is not refused for it
            event(logging.ERROR, "console_audit_failed", user=user, error=str(exc))

    async def _logout(self, request: web.Request) -> web.StreamResponse:
        self.signins.end(request.cookies.get(COOKIE))
        response = web.HTTPSeeOther("/console/login")
        response.del_cookie(COOKIE, path="/console")
        raise response

    # -- approvals -------------------------------------------------------------------------

    def _may_decide(self, request: ApprovalRequest, signin: SignIn) -> bool:
        return (
            request.status is RequestStatus.PENDING
            and bool(request.policy.approver_groups & signin.groups)
            and request.requester != signin.user
            and not any(a.approver == signin.user for a in request.approvals)
        )

    @staticmethod
    def _visible(request: ApprovalRequest, signin: SignIn) -> bool:
        return request.requester == signin.user or bool(
            request.policy.approver_groups & signin.groups
        )

    async def _queue(self, request: web.Request) -> dict[str, Any]:
        signin = request[SIGNIN_KEY]
        status = request.query.get("status", "pending")
        if status not in _STATUSES:
            raise BadInput(f"status must be one of {', '.join(_STATUSES)}, not {status!r}")
        before = _int_param(request, "before")
        requests, more = await self.deps.approvals.visible_page(
            signin.user,
            signin.groups,
            None if status == "all" else RequestStatus(status),
            limit=PAGE_SIZE,
            before=before,
        )
        return {
            "status": status,
            "statuses": _STATUSES,
            "requests": requests,
            "more": more,
            "first_page": before is None,
            "page_size": PAGE_SIZE,
            "may_decide": {r.id: self._may_decide(r, signin) for r in requests},
            "now": time.time(),
        }

    async def _approvals(self, request: web.Request) -> web.StreamResponse:
        return self._render(request, "approvals.html", await self._queue(request))

    async def _approval_rows(self, request: web.Request) -> web.StreamResponse:
        try:
            context = await self._queue(request)
        except BadInput as bad:
            return self._plain(400, str(bad))
        return self._render(request, "approval_rows.html", context)

    async def _find(self, request: web.Request) -> ApprovalRequest:
        signin = request[SIGNIN_KEY]
        try:
            found = await self.deps.approvals.get(int(request.match_info["id"]))
        except ApprovalNotFound:
            found = None
        if found is None or not self._visible(found, signin):
            # Requests of other teams look missing, as in the API and SQL.
            raise web.HTTPNotFound(text="no such request")
        return found

    def _detail_context(
        self, found: ApprovalRequest, signin: SignIn, **extra: Any
    ) -> dict[str, Any]:
        analysis = found.context.analysis or {}
        return {
            "r": found,
            "analysis": analysis,
            "may_decide": self._may_decide(found, signin),
            "is_approver": bool(found.policy.approver_groups & signin.groups),
            "client_waits_until": found.created_at + found.policy.hold_seconds,
            "now": time.time(),
            "done": None,
            "error": None,
            **extra,
        }

    async def _approval(self, request: web.Request) -> web.StreamResponse:
        try:
            found = await self._find(request)
        except web.HTTPNotFound:
            return self._render(
                request, "error.html", {"message": "No such approval request."}, status=404
            )
        done = request.query.get("done")
        context = self._detail_context(
            found, request[SIGNIN_KEY], done=done if done in ("approved", "denied") else None
        )
        return self._render(request, "approval.html", context)

    async def _approval_panel(self, request: web.Request) -> web.StreamResponse:
        found = await self._find(request)
        context = self._detail_context(found, request[SIGNIN_KEY])
        return self._render(request, "approval_panel.html", context)

    async def _decide(self, request: web.Request) -> web.StreamResponse:
        signin: SignIn = request[SIGNIN_KEY]
        action = request.match_info["action"]
        request_id = int(request.match_info["id"])
        form = await self._form(request)
        reason = form.get("reason", "").strip() or None
        if reason is not None and len(reason) > 1000:
            raise BadInput("a reason is limited to 1000 characters")
        try:
            found = await self._find(request)
        except web.HTTPNotFound:
            return self._render(
                request, "error.html", {"message": "No such approval request."}, status=404
            )
        service = self.deps.approvals
        try:
            if action == "approve":
                await service.approve(request_id, signin.user, signin.groups, reason)
            else:
                await service.deny(request_id, signin.user, signin.groups, reason or "")
        except ApprovalRefused as refused:
            event(
                logging.INFO,
                "console_decision_refused",
                user=signin.user,
                request=request_id,
                why=refused.why,
            )
            current = await service.get(request_id)
            context = self._detail_context(
                current, signin, error=_refusal_text(refused, found, action)
            )
            status = _REFUSAL_STATUS.get(refused.why, 403)
            return self._render(request, "approval.html", context, status=status)
        event(logging.INFO, "console_decision", user=signin.user, request=request_id, step=action)
        self._poke()
        done = "approved" if action == "approve" else "denied"
        raise web.HTTPSeeOther(f"/console/approvals/{request_id}?done={done}")

    # -- live updates ----------------------------------------------------------------------

    def _poke(self) -> None:
        for watcher in list(self._watchers):
            watcher.set()

    async def _poll(self) -> None:
        """While someone watches: read the queue's version every LIVE_POLL seconds and wake
        the watchers when it changed (a request arrived or was decided anywhere)."""
        try:
            while self._watchers and not self._closing.is_set():
                try:
                    version = await self.deps.approvals.store.version()
                except Exception as exc:  # the store may be briefly unreachable
                    event(logging.WARNING, "console_poll_failed", error=str(exc))
                    version = self._version
                if version != self._version:
                    self._version = version
                    self._poke()
                await asyncio.sleep(LIVE_POLL)
        finally:
            self._poller = None

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if len(self._watchers) >= MAX_LIVE:
            return self._plain(503, "Too many live views open; reload later.")
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
        )
        await response.prepare(request)
        watcher = asyncio.Event()
        self._watchers.add(watcher)
        if self._poller is None:
            self._version = await self.deps.approvals.store.version()
            self._poller = asyncio.get_running_loop().create_task(self._poll())
        sent = 0
        try:
            await response.write(b"retry: 2000\nevent: hello\ndata: 0\n\n")
            while not self._closing.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(15):
                        await watcher.wait()
                if self._closing.is_set():
                    break
                if watcher.is_set():
                    watcher.clear()
                    sent += 1
                    await response.write(f"event: queue\ndata: {sent}\n\n".encode())
                else:
                    await response.write(b": keep-alive\n\n")
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._watchers.discard(watcher)
        return response

    # -- sessions --------------------------------------------------------------------------

    async def _session_context(self, request: web.Request) -> dict[str, Any]:
        signin: SignIn = request[SIGNIN_KEY]
        sees_all = bool(signin.groups & self.deps.config.process_list_groups)
        rows = await self.deps.sessions.list(signin.user, sees_all)
        return {"rows": rows, "sees_all": sees_all, "message": request.query.get("done")}

    async def _sessions(self, request: web.Request) -> web.StreamResponse:
        return self._render(request, "sessions.html", await self._session_context(request))

    async def _session_rows(self, request: web.Request) -> web.StreamResponse:
        return self._render(request, "session_rows.html", await self._session_context(request))

    async def _kill(self, request: web.Request) -> web.StreamResponse:
        signin: SignIn = request[SIGNIN_KEY]
        target = int(request.match_info["id"])
        form = await self._form(request)
        query_only = form.get("what") == "query"
        try:
            await self.deps.sessions.kill(signin.user, target, query_only)
        except MySQLError as exc:
            context = await self._session_context(request)
            context["error"] = exc.message
            return self._render(request, "sessions.html", context, status=403)
        event(logging.INFO, "console_kill", user=signin.user, target=target, query=query_only)
        what = "query" if query_only else "connection"
        raise web.HTTPSeeOther(
            f"/console/sessions?{urlencode({'done': f'Killed {what} {target}.'})}"
        )

    # -- audit -----------------------------------------------------------------------------

    def _sees_trail(self, signin: SignIn) -> bool:
        return bool(signin.groups & self.deps.config.admin.audit_groups)

    def _record_filter(self, signin: SignIn) -> Callable[[AuditRecord], bool]:
        if self._sees_trail(signin):
            return lambda record: True
        me = signin.user
        return lambda record: record.get("user") == me or record.get("actor") == me

    def _verification(self) -> Any:
        state = self.trail.verification
        stale = state.checked_at is None or time.time() - state.checked_at > VERIFY_EVERY
        if stale and not state.running and self._verifying is None:
            self._start_verify()
        return state

    def _start_verify(self) -> None:
        async def run() -> None:
            try:
                await asyncio.to_thread(self.trail.verify_now)
            finally:
                self._verifying = None

        self.trail.verification.running = True
        self._verifying = asyncio.get_running_loop().create_task(run())

    async def _audit(self, request: web.Request) -> web.StreamResponse:
        signin: SignIn = request[SIGNIN_KEY]
        q = request.query
        now = time.time()
        since = _time_param(q.get("since", ""), now, "since")
        until = _time_param(q.get("until", ""), now, "until")
        if since is not None and until is not None and since > until:
            raise BadInput("since must be earlier than until")
        query = Query(
            user=q.get("user") or None,
            group=q.get("group") or None,
            table=q.get("table") or None,
            decision=q.get("decision") or None,
            type=q.get("type") or None,
            since=since,
            until=until,
        )
        try:
            page = await asyncio.to_thread(
                self.trail.search, query, self._record_filter(signin), q.get("cursor")
            )
        except BadCursor as bad:
            raise BadInput(str(bad)) from None
        except OSError as exc:
            raise BadInput(f"the audit trail cannot be read: {exc.strerror or exc}") from None
        chart_until = until or now
        chart_since = since if since is not None else chart_until - 86400
        only = None if self._sees_trail(signin) else signin.user
        users, tables = await asyncio.to_thread(self.trail.charts, chart_since, chart_until, only)
        filters = {k: q.get(k, "") for k in ("user", "group", "table", "decision", "type")}
        filters.update(since=q.get("since", ""), until=q.get("until", ""))
        next_url = None
        if page.cursor:
            next_url = "/console/audit?" + urlencode(
                {**{k: v for k, v in filters.items() if v}, "cursor": page.cursor}
            )
        return self._render(
            request,
            "audit.html",
            {
                "page": page,
                "filters": filters,
                "next_url": next_url,
                "first_page": not q.get("cursor"),
                "sees_all": self._sees_trail(signin),
                "enabled": self.trail.directory is not None,
                "verification": self._verification(),
                "charts": [
                    ("Statements per user", svg_chart(users)),
                    ("Statements per table", svg_chart(tables)),
                ],
                "chart_since": chart_since,
                "chart_until": chart_until,
            },
        )

    async def _audit_record(self, request: web.Request) -> web.StreamResponse:
        signin: SignIn = request[SIGNIN_KEY]
        q = request.query
        offset = _int_param(request, "offset")
        record = None
        if offset is not None:
            record = await asyncio.to_thread(
                self.trail.record, q.get("chain", ""), q.get("segment", ""), offset
            )
        if record is None or not self._record_filter(signin)(record):
            return self._render(
                request, "error.html", {"message": "No such audit record."}, status=404
            )
        fields = sorted(record.fields().items())
        return self._render(request, "audit_record.html", {"record": record, "fields": fields})

    async def _verify(self, request: web.Request) -> web.StreamResponse:
        if not self.trail.verification.running and self._verifying is None:
            self._start_verify()
        raise web.HTTPSeeOther("/console/audit")


# -- helpers -------------------------------------------------------------------------------


def _local_path(value: str | None) -> str:
    """A redirect target inside the console only (no open redirect)."""
    if value and value.startswith("/console") and not value.startswith("//"):
        if "\\" not in value and "\r" not in value and "\n" not in value:
            return value
    return "/console/approvals"


def _int_param(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 18:
        raise BadInput(f"{name} must be a whole number, not {value[:40]!r}")
    return int(value)


def _time_param(value: str, now: float, name: str) -> float | None:
    value = value.strip()
    if not value:
        return None
    try:
        return parse_since(value, now)
    except Exception:
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            raise BadInput(
                f"{name}: expected e.g. 10m, 2h, 3d or a time like 2026-12-01T08:00, "
                f"not {value[:40]!r}"
            ) from None


def _refusal_text(refused: ApprovalRefused, request: ApprovalRequest, action: str) -> str:
    if refused.why == "self-approval":
        return "You cannot approve your own request."
    if refused.why == "not-an-approver":
        groups = ", ".join(sorted(request.policy.approver_groups))
        return f"Refused: only members of {groups} may {action} this request."
    if refused.why == "not-pending":
        return "This request was already decided (or has expired)."
    if refused.why == "no-reason":
        return "A denial needs a reason."
    return refused.message


PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2")


def svg_chart(chart: Chart, width: int = 520, height: int = 160) -> dict[str, Any]:
    """What the chart template draws: one polyline per series, axis ticks, a legend."""
    left, right, top, bottom = 36, 8, 8, 20
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(chart.peak, 1)
    # A round upper bound for the y axis.
    magnitude = 10 ** int(math.log10(peak))
    ymax = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= peak)
    n = chart.buckets

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: int) -> float:
        return top + plot_h - plot_h * v / ymax

    lines = []
    for i, series in enumerate(chart.series):
        points = " ".join(f"{x(j):.1f},{y(v):.1f}" for j, v in enumerate(series.values))
        lines.append(
            {
                "name": series.name,
                "color": PALETTE[i % len(PALETTE)],
                "points": points,
                "total": sum(series.values),
            }
        )
    ticks = []
    for j in range(0, n, max(1, n // 6)):
        stamp = chart.start + j * chart.step
        label = time.strftime("%d %H:%M" if chart.step < 86400 else "%m-%d", time.gmtime(stamp))
        ticks.append({"x": round(x(j), 1), "label": label})
    return {
        "width": width,
        "height": height,
        "lines": lines,
        "ticks": ticks,
        "ymax": ymax,
        "y0": top + plot_h,
        "ytop": top,
        "left": left,
        "right": width - right,
        "step": chart.step,
    }
