"""Verdicts a session taught the proxy core serve every session with an equal identity
context from its first statement (``Guard.find_taught`` at login), never another context
or another policy."""

from __future__ import annotations

from dataclasses import replace

from myguard.policy.context import RequestContext
from myguard.policy.engine import Policy
from myguard.session.guard import Guard

RULES = '[defaults]\naction = "allow"\n'
ALICE = RequestContext(
    user="alice",
    groups=frozenset({"dba"}),
    environment="production",
    backend="main",
    source_ip="127.0.0.1",
    program="app",
    attributes={"program_name": "app"},
    current_db="shop",
)


def test_a_new_session_finds_what_its_identity_context_taught():
    policy = Policy.from_text(RULES)
    first = Guard(ALICE, 1)
    first.taught_verdicts(policy)[4711] = "verdict"
    later = Guard(replace(ALICE, attributes=dict(ALICE.attributes)), 2)
    assert later.taught is None
    later.find_taught(policy)
    assert later.taught is first.taught
    assert later.taught_verdicts(policy) is first.taught  # teaching adds to the same map


def test_other_contexts_and_policies_find_nothing():
    policy = Policy.from_text(RULES)
    Guard(ALICE, 1).taught_verdicts(policy)[4711] = "verdict"
    for context in (
        replace(ALICE, current_db="other"),
        replace(ALICE, user="bob"),
        replace(ALICE, groups=frozenset()),
        replace(ALICE, environment="staging"),
    ):
        guard = Guard(context, 2)
        guard.find_taught(policy)
        assert guard.taught is None, context
    reloaded = Guard(ALICE, 3)
    reloaded.find_taught(Policy.from_text(RULES))  # a reload: decided afresh
    assert reloaded.taught is None


def test_nothing_taught_yet_is_none():
    guard = Guard(ALICE, 1)
    guard.find_taught(Policy.from_text(RULES))
    assert guard.taught is None
