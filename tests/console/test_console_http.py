"""The console over plain HTTP: sign-in, cookie flags, CSRF, refusals without sign-in,
rights (the SQL path's), bad input answered with clear errors, decisions audited."""

from __future__ import annotations

import re
import socket
import time

import pytest
from console_web import (
    ALICE,
    BOB,
    CAROL,
    HeldCli,
    Web,
    console_proxy_process,
    pending_ids,
    wait_for,
)

from myguard.audit import iter_records

PAGES = [
    "/console/approvals",
    "/console/approvals?status=all",
    "/console/approvals/1",
    "/console/sessions",
    "/console/audit",
    "/console/audit/record?chain=&segment=audit-000000000001.seg&offset=80",
]
FRAGMENTS = [
    "/console/approvals/rows",
    "/console/approvals/events",
    "/console/approvals/1/panel",
    "/console/sessions/rows",
    "/console/nowhere",
]
POSTS = [
    "/console/approvals/1/approve",
    "/console/approvals/1/deny",
    "/console/sessions/1/kill",
    "/console/audit/verify",
    "/console/logout",
]


@pytest.fixture(scope="module")
def held(console_proxy):
    """carol's CREATE TABLE, held for a dba's approval, while the module's tests run."""
    console_proxy.db.sql("DROP TABLE IF EXISTS test.console_http_t")
    cli = HeldCli(console_proxy.port, *CAROL, "CREATE TABLE console_http_t (id INT)")
    alice = Web(console_proxy.admin_port)
    assert alice.signin(*ALICE).status == 303
    request_id = wait_for(lambda: pending_ids(alice), what="carol's held DDL")[0]
    yield request_id
    cli.stop()


def test_every_page_refuses_an_unauthenticated_request(console_proxy, held):
    web = Web(console_proxy.admin_port)
    for path in PAGES:
        reply = web.get(path.replace("/1", f"/{held}"))
        assert reply.status == 303, path
        assert reply.location.startswith("/console/login?next=/console/"), path
        assert "carol" not in reply.body and "CREATE" not in reply.body
    for path in FRAGMENTS:
        reply = web.get(path.replace("/1", f"/{held}"))
        assert reply.status == 401, path
        assert "carol" not in reply.body
    for path in POSTS:
        reply = web.post(path.replace("/1", f"/{held}"), {"reason": "x"})
        assert reply.status == 401, path
    # A cookie the server never handed out is no sign-in either.
    web.cookies["myguard_console"] = "forged-" + "A" * 40
    assert web.get("/console/approvals").status == 303
    assert web.post(f"/console/approvals/{held}/approve").status == 401
    assert held in pending_ids_as(console_proxy, ALICE)


def pending_ids_as(proxy, who):
    web = Web(proxy.admin_port)
    web.signin(*who)
    return pending_ids(web)


def test_signin_cookie_flags_and_signout(console_proxy):
    web = Web(console_proxy.admin_port)
    form = web.get("/console/login")
    assert form.status == 200 and "Content-Security-Policy" in dict(form.headers)
    assert "script-src 'self'" in form.header("Content-Security-Policy")
    reply = web.signin(*ALICE)
    assert reply.status == 303 and reply.location == "/console/approvals"
    (cookie,) = [c for c in reply.cookies() if c.startswith("myguard_console=")]
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags and "samesite=strict" in flags and "path=/console" in flags
    assert "secure" not in flags  # plain HTTP: a Secure cookie would never come back
    assert len(cookie.split(";")[0].split("=", 1)[1]) >= 40
    page = web.get("/console/approvals")
    assert page.status == 200 and 'id="who"' in page.body and ">alice" in page.body
    assert page.header("Cache-Control") == "no-store"
    assert web.post("/console/logout", {"csrf": page.csrf()}).status == 303
    assert web.get("/console/approvals").status == 303
    # The old cookie is dead on the server, not only deleted in this client.
    web.cookies["myguard_console"] = cookie.split(";")[0].split("=", 1)[1]
    assert web.get("/console/approvals").status == 303


def test_wrong_password_and_login_csrf(console_proxy):
    web = Web(console_proxy.admin_port)
    reply = web.signin("alice", "wrong")
    assert reply.status == 401 and "Wrong user name or password" in reply.body
    assert "myguard_console" not in web.cookies
    # A sign-in form posted from elsewhere (no token of this listener) is refused.
    other = Web(console_proxy.admin_port)
    reply = other.post("/console/login", {"user": "alice", "password": "alice-pw"})
    assert reply.status == 403 and "myguard_console" not in other.cookies
    records = wait_for(
        lambda: [
            r
            for r in iter_records(console_proxy.audit_dir)
            if r.type == "login" and r.get("client_program") == "myguard-console"
        ],
        what="console sign-ins in the audit trail",
    )
    assert any(r.get("user") == "alice" and not r.get("success") for r in records)
    assert any(r.get("user") == "alice" and r.get("success") for r in records)


def test_csrf_is_required_on_every_state_change(console_proxy, held):
    alice = Web(console_proxy.admin_port)
    alice.signin(*ALICE)
    token = alice.get(f"/console/approvals/{held}").csrf()
    for path in POSTS:
        path = path.replace("/1", f"/{held}")
        assert alice.post(path, {"reason": "r"}).status == 403, path
        assert alice.post(path, {"reason": "r", "csrf": "x" * 43}).status == 403, path
    # The right token from another site's page: the browser names that site in Origin.
    evil = {"Origin": "http://evil.example"}
    reply = alice.post(f"/console/approvals/{held}/approve", {"csrf": token}, headers=evil)
    assert reply.status == 403
    # Another sign-in's token is not this one's.
    bob = Web(console_proxy.admin_port)
    bob.signin(*BOB)
    bob_token = bob.get("/console/approvals").csrf()
    assert alice.post(f"/console/approvals/{held}/approve", {"csrf": bob_token}).status == 403
    assert held in pending_ids(alice)
    assert alice.get("/console/approvals").status == 200  # still signed in


def test_rights_are_those_of_the_sql_path(console_proxy, held):
    bob = Web(console_proxy.admin_port)
    bob.signin(*BOB)
    token = bob.get("/console/approvals").csrf()
    # Not his request, not his approver group: it does not exist for him.
    assert held not in pending_ids(bob)
    assert bob.get(f"/console/approvals/{held}").status == 404
    assert bob.get(f"/console/approvals/{held}/panel").status == 404
    reply = bob.post(f"/console/approvals/{held}/approve", {"csrf": token})
    assert reply.status == 404
    # carol sees her own request but may not decide it.
    carol = Web(console_proxy.admin_port)
    carol.signin(*CAROL)
    page = carol.get(f"/console/approvals/{held}")
    assert page.status == 200 and 'id="approve"' not in page.body
    assert "This is your request" in page.body
    reply = carol.post(f"/console/approvals/{held}/approve", {"csrf": page.csrf()})
    assert reply.status == 403 and "only members of dba may approve" in reply.body
    assert held in pending_ids(carol)
    # The audit groups ([admin] audit_groups = dba) see the trail; bob sees his own only.
    trail = bob.get("/console/audit?type=approval")
    assert trail.status == 200 and "carol" not in trail.body
    assert "Records of your own sessions" in trail.body


def test_bad_input_gets_a_clear_error(console_proxy):
    web = Web(console_proxy.admin_port)
    web.signin(*ALICE)
    cases = {
        "/console/approvals?status=bogus": "status must be one of",
        "/console/approvals?before=abc": "before must be a whole number",
        "/console/audit?since=yesterdayish": "since: expected e.g. 10m",
        "/console/audit?since=1h&until=3h": "since must be earlier than until",
        "/console/audit?cursor=%3B%3B": "not a cursor of this trail",
    }
    for path, message in cases.items():
        reply = web.get(path)
        assert reply.status == 400 and message in reply.body, (path, reply.body[:300])
    assert web.get("/console/audit/record?chain=..&segment=x&offset=1").status == 404
    assert web.get("/console/audit/record?segment=audit-000000000001.seg&offset=81").status == 404
    assert web.get("/console/approvals/999999").status == 404
    assert web.get("/console/nowhere").status == 404
    token = web.get("/console/approvals").csrf()
    reply = web.post("/console/approvals/1/deny", {"csrf": token, "reason": "x" * 1001})
    assert reply.status in (400, 404)
    big = web.request(
        "POST",
        "/console/audit/verify",
        body=b"csrf=" + b"a" * (2 << 20),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert big.status == 413
    assert web.get("/console/approvals").status == 200  # the listener is fine afterwards


def test_the_api_keeps_its_shape_on_aiohttp(console_proxy):
    web = Web(console_proxy.admin_port)
    reply = web.get("/approvals")
    assert reply.status == 401 and reply.header("WWW-Authenticate") == 'Basic realm="myguard"'
    assert reply.header("Content-Type").startswith("application/json")
    reply = web.get("/nowhere")
    assert reply.status == 404 and '"no-such-endpoint"' in reply.body
    assert web.request("DELETE", "/healthz").status == 405
    reply = web.request("POST", "/reload", body=b"x" * (2 << 20))
    assert reply.status == 413 and '"body-too-large"' in reply.body


def test_a_slow_client_is_cut_off(console_proxy):
    """Headers that never finish do not hold a connection open (header timeout 15 s)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", console_proxy.admin_port), 5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        sock.settimeout(30)
        assert sock.recv(100) == b""  # closed by the server, nothing answered
    assert 10 < time.monotonic() - started < 25
    # Oversized header lines are refused outright.
    web = Web(console_proxy.admin_port)
    assert web.get("/healthz", headers={"X-Big": "a" * 10000}).status in (400, 431)


def test_secure_cookie_when_the_listener_has_tls(mariadb, slapd, tmp_path):
    base = tmp_path / "tls"
    proxy = console_proxy_process(base, mariadb, slapd)
    proxy.options["tables"]["admin"].update(cert_file=str(proxy.cert), key_file=str(proxy.key))
    proxy.write_config()
    proxy.start()
    try:
        web = Web(proxy.admin_port, tls=True)
        reply = web.signin(*ALICE)
        assert reply.status == 303
        (cookie,) = [c for c in reply.cookies() if c.startswith("myguard_console=")]
        flags = [part.strip().lower() for part in cookie.split(";")]
        assert "secure" in flags and "httponly" in flags and "samesite=strict" in flags
        assert web.get("/console/approvals").status == 200
        assert re.search(r"admin_listening .*scheme=https", proxy.log())
    finally:
        proxy.stop()


def test_sessions_page_lists_and_kills_as_sql_does(console_proxy, held):
    alice = Web(console_proxy.admin_port)
    alice.signin(*ALICE)
    page = alice.get("/console/sessions")
    assert page.status == 200
    # alice is in process_list_groups: she sees carol's session, held for approval.
    row = re.search(r'<tr id="session-(\d+)">(.*?)</tr>', page.body, re.S)
    assert row and "carol" in row.group(2) and f"waiting for approval {held}" in row.group(2)
    # The client program as the mariadb CLI names itself, and the backend environment.
    assert "<td>mysql</td>" in row.group(2) and "production" in row.group(2).lower()
    session_id = int(row.group(1))
    # Not hers to kill: no button, and the POST is refused as KILL in SQL would be.
    assert f"/console/sessions/{session_id}/kill" not in page.body
    reply = alice.post(f"/console/sessions/{session_id}/kill", {"csrf": page.csrf()})
    assert reply.status == 403 and "not owner of thread" in reply.body
    # bob (no process-list group) sees none of carol's sessions.
    bob = Web(console_proxy.admin_port)
    bob.signin(*BOB)
    assert "carol" not in bob.get("/console/sessions/rows").body


def test_audit_page_lists_records_and_shows_one_in_full(console_proxy, held):
    alice = Web(console_proxy.admin_port)
    alice.signin(*ALICE)
    page = alice.get("/console/audit?user=carol")
    assert page.status == 200 and "Statements per user" in page.body
    links = re.findall(r'href="(/console/audit/record\?[^"]+)"', page.body)
    assert links
    full = alice.get(links[0].replace("&amp;", "&"))
    assert full.status == 200 and 'id="record"' in full.body and "carol" in full.body
    # bob is in no audit group: carol's records are not his to open.
    bob = Web(console_proxy.admin_port)
    bob.signin(*BOB)
    assert bob.get(links[0].replace("&amp;", "&")).status == 404
    # The chain's verification is shown once it has run (started by the first view).
    verified = wait_for(
        lambda: "chain verified" in (body := alice.get("/console/audit").body) and body,
        what="the verification result",
    )
    assert 'id="verify-status"' in verified


def test_api_status_query_reaches_the_api(console_proxy, held):
    """?status=all was dropped by the old listener before the API saw it."""
    import base64
    import json

    token = base64.b64encode(b"alice:alice-pw").decode()
    web = Web(console_proxy.admin_port)
    reply = web.get("/approvals?status=all", headers={"Authorization": f"Basic {token}"})
    assert reply.status == 200
    statuses = {r["status"] for r in json.loads(reply.body)["approvals"]}
    reply = web.get("/approvals?status=bogus", headers={"Authorization": f"Basic {token}"})
    assert reply.status == 400 and statuses
