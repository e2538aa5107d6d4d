"""The admin listener's API routes, shared by a single proxy process and the supervisor."""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Awaitable, Callable

from myguard.admin import AdminServer
from myguard.approvals import http_api as approvals_http
from myguard.approvals.audit import step_record
from myguard.approvals.backends import open_store
from myguard.approvals.notify import WebhookNotifier
from myguard.approvals.service import ApprovalService
from myguard.audit import AuditWriter
from myguard.audit.segment import read_key_file
from myguard.config import Config
from myguard.console.app import Console, ConsoleDeps
from myguard.console.sessions import SessionsView
from myguard.identity.base import AuthFailed, Identity, IdentitySource
from myguard.identity.throttle import LoginThrottle
from myguard.logs import event
from myguard.tls import server_context

Route = Callable[[str, str, dict[str, str], bytes], Awaitable[tuple[int, str, bytes]]]


def approval_service(config: Config, audit: Callable[[], AuditWriter | None]) -> ApprovalService:
    """The approval queue from the config; each step is logged and audited."""

    async def record(step: dict) -> None:
        writer = audit()
        if writer is not None:
            await writer.write(step_record(step))
        event(
            logging.INFO,
            "approval",
            request=step["request_id"],
            step=step["event"],
            actor=step.get("actor"),
        )

    cfg = config.approvals
    return ApprovalService(
        open_store(cfg.store, password=cfg.store_password),
        notifier=WebhookNotifier(cfg.webhooks) if cfg.webhooks else None,
        audit=record,
        poll_interval=cfg.poll_interval,
        decision_ttl=cfg.decision_ttl,
    )


def approvals_route(
    service: ApprovalService, source: IdentitySource, throttle: LoginThrottle
) -> Route:
    """GET/POST /approvals...: approvers authenticate with HTTP Basic against the identity source."""

    async def identity(user: str, password: str) -> Identity:
        if not throttle.allowed(user, "admin-http"):
            raise AuthFailed("throttled")
        try:
            who = await source.authenticate(user, password)
        except AuthFailed:
            throttle.failure(user, "admin-http")
            raise
        throttle.success(user, "admin-http")
        return who

    async def route(
        method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, str, bytes]:
        status, payload = await approvals_http.handle(
            method, path, headers, body, service, identity
        )
        return status, "application/json", json.dumps(payload).encode()

    return route


def reload_route(reload: Callable[[], Awaitable[bool]]) -> Route:
    """POST /reload: 200 when the new rules are in force, 409 when the old ones stay."""

    async def route(
        method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, str, bytes]:
        if method != "POST":
            return 405, "text/plain", b"POST to reload\n"
        ok = await reload()
        return (200 if ok else 409), "application/json", json.dumps({"reloaded": ok}).encode()

    return route


def install_console(
    admin: AdminServer,
    config: Config,
    service: ApprovalService,
    source: IdentitySource,
    throttle: LoginThrottle,
    sessions: SessionsView,
    audit: Callable[[], AuditWriter | None],
) -> Console | None:
    """The web console on the admin listener, unless ``[admin] console = false``."""
    if not config.admin.console:
        return None
    key_file = config.audit.hmac_key_file
    deps = ConsoleDeps(
        config=config,
        approvals=service,
        source=source,
        throttle=throttle,
        sessions=sessions,
        audit=audit,
        hmac_key=read_key_file(key_file) if key_file else None,
    )
    console = Console(deps, tls=config.admin.tls is not None)
    console.install(admin.app)
    admin.on_close(console.close)
    return console


def admin_tls(config: Config) -> ssl.SSLContext | None:
    """The admin listener's HTTPS context from ``[admin] cert_file/key_file``, if set."""
    return server_context(config.admin.tls) if config.admin.tls else None
