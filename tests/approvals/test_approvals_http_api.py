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


def test_authentication_is_required(api):
    async def scenario(service, call):
        assert (await call("GET", "/approvals"))[0] == 401
        assert (await call("GET", "/approvals", {"Authorization": "Bearer x"}))[0] == 401
        assert (await call("GET", "/approvals", {"authorization": "Basic !!!"}))[0] == 401
        assert (await call("GET", "/approvals", basic("alice", "wrong")))[0] == 401
        assert (await call("GET", "/approvals", basic("alice")))[0] == 200
        down = {"Authorization": "Basic " + base64.b64encode(b"ldap-down:x").decode()}
        assert (await call("GET", "/approvals", down))[0] == 503

    api(scenario)


def test_routes_and_methods(api):
    async def scenario(service, call):
        assert (await call("GET", "/nope", basic("alice")))[0] == 404
        assert (await call("POST", "/approvals", basic("alice")))[0] == 405
        assert (await call("GET", "/approvals/1/approve", basic("alice")))[0] == 405
        assert (await call("GET", "/approvals/77", basic("alice")))[0] == 404
        assert (await call("GET", "/approvals?status=bogus", basic("alice")))[0] == 400

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

        status, body = await call("POST", f"/approvals/{first.id}/approve", basic("bob"))
        assert status == 403 and "not-an-approver" in body["error"]
        reason = json.dumps({"reason": "checked the WHERE"}).encode()
        status, body = await call("POST", f"/approvals/{first.id}/approve", basic("alice"), reason)
        assert status == 200 and body["status"] == "approved"
        assert body["approvals"][0]["reason"] == "checked the WHERE"
        status, _ = await call("POST", f"/approvals/{first.id}/deny", basic("carol"), reason)
        assert status == 409

        status, _ = await call("POST", f"/approvals/{second.id}/deny", basic("carol"))
        assert status == 400  # a denial needs a reason
        status, _ = await call("POST", f"/approvals/{second.id}/deny", basic("carol"), b"{nope")
        assert status == 400
        status, body = await call("POST", f"/approvals/{second.id}/deny", basic("carol"), reason)
        assert status == 200 and body["denial"]["actor"] == "carol"

        status, body = await call("GET", "/approvals?status=all", basic("alice"))
        assert {r["status"] for r in body["approvals"]} == {"approved", "denied"}
        assert (await call("GET", "/approvals", basic("alice")))[1] == {"approvals": []}

    api(scenario)
