import asyncio
import base64
import json

import pytest

from myguard.approvals.http_api import handle
from myguard.approvals.service import ApprovalService
from myguard.approvals.store_sqlite import SqliteApprovalStore
from myguard.identity.base import AuthFailed, Identity, IdentityUnavailable

USERS = {
    "alice": ("pw-a", {"dba"}),
    "carol": ("pw-c", {"dba"}),
    "bob": ("pw-b", {"dev"}),
    "eve": ("pw-e", {"sales"}),
}


async def authenticate(user, password):
    if user == "ldap-down":
        raise IdentityUnavailable("timeout")
    if user not in USERS or USERS[user][0] != password:
        raise AuthFailed("bad password")
    return Identity(user=user, groups=frozenset(USERS[user][1]))


def basic(user, password=None):
    password = USERS[user][0] if password is None else password
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def api(tmp_path, make_context):
    """Run a scenario with call(method, path, user, body) against a fresh service."""

    def run(scenario):
        async def main():
            store = SqliteApprovalStore(tmp_path / "a.db")
            service = ApprovalService(store)

            async def call(method, path, headers=None, body=b""):
                return await handle(method, path, headers or {}, body, service, authenticate)

            try:
                await scenario(service, call)
            finally:
                await service.aclose()
                await store.aclose()

        asyncio.run(main())

    return run


def code(answer):
    """(HTTP status, error code) of an error answer, checking its JSON shape."""
    status, body = answer
    assert set(body) == {"code", "message"} and body["message"], body
    return status, body["code"]


def test_authentication_is_required(api):
    async def scenario(service, call):
        required = (401, "authentication-required")
        assert code(await call("GET", "/approvals")) == required
        assert code(await call("GET", "/approvals", {"Authorization": "Bearer x"})) == required
        assert code(await call("GET", "/approvals", {"authorization": "Basic !!!"})) == required
        failed = await call("GET", "/approvals", basic("alice", "wrong"))
        assert code(failed) == (401, "authentication-failed")
        assert (await call("GET", "/approvals", basic("alice")))[0] == 200
        down = {"Authorization": "Basic " + base64.b64encode(b"ldap-down:x").decode()}
        assert code(await call("GET", "/approvals", down)) == (503, "identity-unavailable")

    api(scenario)


def test_routes_and_methods(api):
    async def scenario(service, call):
        alice = basic("alice")
        assert code(await call("GET", "/nope", alice)) == (404, "no-such-endpoint")
        assert code(await call("POST", "/approvals", alice)) == (405, "method-not-allowed")
        assert code(await call("GET", "/approvals/1/approve", alice)) == (405, "method-not-allowed")
        assert code(await call("GET", "/approvals/77", alice)) == (404, "not-found")
        assert code(await call("GET", "/approvals?status=bogus", alice)) == (400, "bad-request")

    api(scenario)


def test_list_show_approve_deny(api, make_context):
    async def scenario(service, call):
        first = await service.request(make_context(requester="bob"))
        second = await service.request(make_context(requester="bob", statement="DELETE FROM x"))

        status, body = await call("GET", "/approvals", basic("alice"))
        assert status == 200 and [r["id"] for r in body["approvals"]] == [second.id, first.id]
        # Neither requester nor approver: sees nothing, and single requests look missing.
        assert (await call("GET", "/approvals", basic("eve")))[1] == {"approvals": []}
        assert (await call("GET", f"/approvals/{first.id}", basic("eve")))[0] == 404
        assert (await call("POST", f"/approvals/{first.id}/approve", basic("eve")))[0] == 404
        status, body = await call("GET", f"/approvals/{first.id}", basic("bob"))
        assert status == 200 and body["statement"] == first.context.statement

        refused = await call("POST", f"/approvals/{first.id}/approve", basic("bob"))
        assert code(refused) == (403, "not-an-approver")
        reason = json.dumps({"reason": "checked the WHERE"}).encode()
        status, body = await call("POST", f"/approvals/{first.id}/approve", basic("alice"), reason)
        assert status == 200 and body["status"] == "approved"
        assert body["approvals"][0]["reason"] == "checked the WHERE"
        closed = await call("POST", f"/approvals/{first.id}/deny", basic("carol"), reason)
        assert code(closed) == (409, "not-pending")

        no_reason = await call("POST", f"/approvals/{second.id}/deny", basic("carol"))
        assert code(no_reason) == (400, "no-reason")
        bad = await call("POST", f"/approvals/{second.id}/deny", basic("carol"), b"{nope")
        assert code(bad) == (400, "bad-request")
        status, body = await call("POST", f"/approvals/{second.id}/deny", basic("carol"), reason)
        assert status == 200 and body["denial"]["actor"] == "carol"

        status, body = await call("GET", "/approvals?status=all", basic("alice"))
        assert {r["status"] for r in body["approvals"]} == {"approved", "denied"}
        assert (await call("GET", "/approvals", basic("alice")))[1] == {"approvals": []}

    api(scenario)
