import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from myguard.approvals.notify import WebhookNotifier
from myguard.approvals.service import ApprovalService
from myguard.approvals.store_sqlite import SqliteApprovalStore


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/broken":
            self.server.failures += 1
            self.send_response(500)
        else:
            self.server.received.append(json.loads(body))
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def serve():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    server.received, server.failures = [], 0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_new_requests_are_posted_and_a_failing_hook_does_not_block(tmp_path, make_context):
    server = serve()
    base = f"http://127.0.0.1:{server.server_address[1]}"

    async def scenario():
        notifier = WebhookNotifier(
            [f"{base}/broken", f"{base}/hook", "http://127.0.0.1:9/refused"],
            attempts=3,
            backoff=0.05,
            timeout=20,
        )
        store = SqliteApprovalStore(tmp_path / "a.db")
        service = ApprovalService(store, notifier=notifier)
        started = time.monotonic()
        first = await service.request(make_context())
        second = await service.request(make_context(statement="DELETE FROM x"))
        # Queuing never waits for delivery (retries of the broken hooks take longer).
        assert time.monotonic() - started < 5
        await asyncio.wait_for(notifier.drain(), 10)
        await service.aclose()
        await store.aclose()
        return first, second

    first, second = asyncio.run(scenario())
    server.shutdown()
    assert sorted(p["request"]["id"] for p in server.received) == [first.id, second.id]
    payload = next(p for p in server.received if p["request"]["id"] == first.id)
    assert payload["type"] == "approval_request"
    assert payload["request"]["statement"] == first.context.statement
    assert payload["request"]["policy"]["approver_groups"] == ["dba"]
    assert server.failures == 6  # 3 attempts for each of the two requests


def test_backlog_cap_drops_instead_of_growing():
    async def scenario():
        notifier = WebhookNotifier(["http://127.0.0.1:9/x"], attempts=1, max_outstanding=2)
        for _ in range(5):
            notifier.submit({"n": 1})
        assert len(notifier._tasks) == 2
        await notifier.drain()

    asyncio.run(scenario())
