"""Statement decisions for one session: the policy asked with who, where and what."""

from __future__ import annotations

import logging
from dataclasses import replace

from myguard import metrics
from myguard.analysis.analyzer import unparsed
from myguard.logs import event
from myguard.policy.context import RequestContext
from myguard.policy.decision import (
    ALLOW,
    BLOCK,
    ER_MYGUARD_BLOCKED,
    MASK,
    SQLSTATE_BLOCKED,
    Decision,
)
from myguard.policy.engine import UNPARSED_RULE, Policy, unparsed_message
from myguard.protocol.errors import MySQLError


class Guard:
    """Builds the request context once per session and asks the current policy."""

    __slots__ = (
        "context", "session_id", "taught", "_masks", "_memo", "_memo_policy", "_shared_key",
        "_key_policy",
    )  # fmt: skip

    def __init__(self, context: RequestContext, session_id: int) -> None:
        self.context = context
        self.session_id = session_id
        # (policy, the identity's mask rules under it), recomputed after a reload
        self._masks: tuple[Policy, tuple[str, tuple] | None] | None = None
        # Decisions by analysis: the policy's cache returns the same touches object for
        # every statement of one shape, and this session's context rarely changes.
        self._memo: dict[int, tuple[object, Decision]] = {}
        self._memo_policy: Policy | None = None
        self._shared_key: tuple | None = None
        self._key_policy: Policy | None = None  # what _shared_key was computed for
        # Verdicts the sessions of this identity context taught the proxy core (by
        # fingerprint, see taught_verdicts); the core reads it. None while none is known.
        self.taught: dict[int, object] | None = None

    def use_database(self, database: str | None) -> None:
        if database != self.context.current_db:
            self.context = replace(self.context, current_db=database)
            self._masks = None
            self._memo.clear()
            self._shared_key = None
            self.taught = None

    def _shared(self, policy: Policy) -> dict:
        """The policy's decisions shared by every session with this identity context (one
        connection per request asks the same few statements with the same context)."""
        shared = _for_policy(_SHARED, policy)
        if self._shared_key is None or self._key_policy is not policy:
            # a reload may make rules ask about other connection attributes
            self._shared_key = context_key(self.context, policy)
            self._key_policy = policy
        return shared

    def find_taught(self, policy: Policy) -> None:
        """Take up what sessions with an equal identity context taught the proxy core
        under ``policy`` (``taught``): a login's first statements, which every connection
        opened per request sends, then go through the core like its later ones."""
        self.taught = self._taught_by_context(policy).get(self._shared_key)

    def taught_verdicts(self, policy: Policy) -> dict[int, object]:
        """Where a verdict this session teaches the proxy core goes so that every session
        with an equal identity context under ``policy`` has it: connections opened per
        request send the same few statements, each once. Sets ``taught``."""
        by_context = self._taught_by_context(policy)
        taught = by_context.get(self._shared_key)
        if taught is None:
            if len(by_context) >= _TAUGHT_CONTEXTS:
                by_context.clear()
            taught = by_context[self._shared_key] = {}
        self.taught = taught
        return taught

    def _taught_by_context(self, policy: Policy) -> dict:
        self._shared(policy)  # sets _shared_key
        return _for_policy(_TAUGHT, policy)

    def identity_masks(self, policy: Policy) -> tuple[str, tuple] | None:
        if self._masks is None or self._masks[0] is not policy:
            self._masks = (policy, policy.identity_masks(self.context))
        return self._masks[1]

    def _masked(self, policy: Policy, decision: Decision) -> Decision:
        """An identity with masking: every statement goes through column lineage, which
        sees through views and functions that the tags cannot."""
        if decision.action == ALLOW:
            masks = self.identity_masks(policy)
            if masks is not None:
                return replace(decision, action=MASK, rule=masks[0], masks=masks[1])
        return decision

    def decide(
        self,
        policy: Policy,
        sql: str,
        fingerprint: int | None = None,
        estimated_rows: list[int] | None = None,
    ) -> Decision:
        misses = policy.cache_misses
        if estimated_rows is not None:
            decision = self._masked(policy, policy.decide(self.context, sql, estimated_rows))
        else:
            if policy is not self._memo_policy:
                self._memo.clear()
                self._memo_policy = policy
            touches = policy.touches(sql, self.context.current_db, fingerprint)
            entry = self._memo.get(id(touches))
            if entry is not None and entry[0] is touches:
                decision = entry[1]
            else:
                shared = self._shared(policy)
                key = (self._shared_key, id(touches))
                entry = shared.get(key)
                if entry is not None and entry[0] is touches:
                    decision = entry[1]
                else:
                    decision = self._masked(policy, policy.decide_touches(self.context, touches))
                    if len(shared) >= _SHARED_SIZE:
                        shared.clear()
                    shared[key] = (touches, decision)
                if len(self._memo) >= _MEMO_SIZE:
                    self._memo.clear()
                self._memo[id(touches)] = (touches, decision)
        if policy.cache_misses != misses:
            metrics.tally.cache_misses += 1
        else:
            metrics.tally.cache_hits += 1
        for hit in decision.observed:
            # Observe mode: record what the rule would have done, let the statement through.
            event(
                logging.INFO,
                "rule_observed",
                session=self.session_id,
                user=self.context.user,
                rule=hit.rule,
                would=hit.action,
                statement=hit.statement,
            )
        return decision

    def decide_unanalysable(self, policy: Policy, sql: str, reason: str) -> Decision:
        """The decision for text myguard must not read the default way: as unparsed SQL,
        and refused outright for an identity with masking, which would misread it too."""
        decision = policy.decide_statements(self.context, [unparsed(sql, reason)])
        if decision.blocked or self.identity_masks(policy) is None:
            return decision
        return replace(
            decision,
            action=BLOCK,
            rule=UNPARSED_RULE,
            message=unparsed_message(reason),
            masks=(),
        )


_MEMO_SIZE = 512
_SHARED_SIZE = 8192
_SHARED: dict[Policy, dict] = {}
_TAUGHT_CONTEXTS = 1024
_TAUGHT: dict[Policy, dict[tuple, dict[int, object]]] = {}


def _for_policy(store: dict, policy: Policy) -> dict:
    """``store``'s entries for ``policy``; after a reload the old policy's go."""
    found = store.get(policy)
    if found is None:
        store.clear()
        found = store[policy] = {}
    return found


def context_key(context: RequestContext, policy: Policy) -> tuple:
    """What of ``context`` any rule of ``policy`` can match on: equal keys, equal decisions.
    Connection attributes count only by the names rules ask about."""
    names = _ATTRIBUTE_NAMES.get(policy)
    if names is None:
        _ATTRIBUTE_NAMES.clear()
        names = _ATTRIBUTE_NAMES[policy] = tuple(
            sorted({name for r in policy.rules for name, _ in r.identity.attributes or ()})
        )
    attributes = context.attributes
    return (
        context.user,
        context.groups,
        context.environment,
        context.backend,
        context.source_ip,
        context.program,
        context.current_db,
        tuple(attributes.get(name) for name in names),
    )


_ATTRIBUTE_NAMES: dict[Policy, tuple[str, ...]] = {}


def blocked_error(decision: Decision) -> MySQLError:
    return MySQLError(
        decision.error_code or ER_MYGUARD_BLOCKED, SQLSTATE_BLOCKED, decision.client_message()
    )
