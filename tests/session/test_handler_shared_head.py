"""``StatementHandler.shared_head``: the session's head for a quiet query the proxy core
forwarded on another session's verdict; the second one of a shape teaches the session's
own verdict; a failure is no exception in the core (the handler records it instead)."""

from __future__ import annotations

from types import SimpleNamespace

from myguard._fast import load
from myguard.session.handler import StatementHandler

_core = load("proxycore")
KEYS = ("t", "ts", "q", "db", "fp", "mc", "aid", "rr", "ra", "ec", "st", "du", "iid")
HEAD = load("recordpack").StatementHead(KEYS, 3, b"\xa1u\xa5alice", 1, 1000)


class Trail:
    def __init__(self, head: object) -> None:
        self.lent = head

    def core_head(self, decision: object) -> object:
        if isinstance(self.lent, Exception):
            raise self.lent
        return self.lent


def handler_with(head: object) -> StatementHandler:
    policy = object()
    session = SimpleNamespace(
        trail=Trail(head), ctx=SimpleNamespace(policy=policy), guard=SimpleNamespace(context="c")
    )
    handler = StatementHandler(session)  # type: ignore[arg-type]
    handler.core = SimpleNamespace(repeats={})
    return handler


def test_the_session_s_head_is_lent_and_the_second_of_a_shape_is_taught():
    handler = handler_with(HEAD)
    shared = _core.Repeat("allow", handler.session.ctx.policy, None, quiet=True)
    assert handler.shared_head(shared, 4711) is HEAD
    assert handler.core.repeats == {}
    assert handler.shared_head(shared, 4711) is HEAD
    own = handler.core.repeats[4711]
    assert (own.decision, own.context, own.head, own.quiet) == ("allow", "c", HEAD, True)


def test_a_head_that_cannot_be_made_is_none_not_an_exception():
    handler = handler_with(OSError("no"))
    shared = _core.Repeat("allow", handler.session.ctx.policy, None, quiet=True)
    assert handler.shared_head(shared, 4711) is None
    assert handler.shared_head(shared, 4711) is None and handler.core.repeats == {}
