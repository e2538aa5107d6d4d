"""The decision engine: which rule decides what happens to a request."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from myguard.analysis import Statement, analyze
from myguard.policy.cache import AnalysisCache, statement_fingerprint
from myguard.policy.config import RulesFile, load_file, parse_text
from myguard.policy.context import RequestContext
from myguard.policy.decision import (
    BLOCK,
    ER_MYGUARD_BLOCKED,
    MASK,
    RANK,
    Decision,
    ObservedHit,
)
from myguard.policy.globs import ColumnGlob
from myguard.policy.mask_spec import MaskSpec
from myguard.policy.rules import Rule
from myguard.policy.touch import SchemaLookup, Touch, touch

DEFAULT_RULE = "default"
UNPARSED_RULE = "unparsed"
UNPARSED_MESSAGE = "the statement could not be analysed"
DEFAULT_CACHE_SIZE = 10_000


def unparsed_message(error: str | None) -> str:
    """The block message for SQL that could not be analysed, with why when known."""
    return f"{UNPARSED_MESSAGE}: {error}" if error else UNPARSED_MESSAGE


@dataclass(frozen=True, slots=True)
class _Verdict:
    action: str
    rule: Rule | None
    name: str
    message: str


class Policy:
    """A loaded rules file. Immutable apart from its analysis cache: swap policies to reload."""

    def __init__(
        self,
        rules_file: RulesFile,
        schema: SchemaLookup | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self.file = rules_file.file
        self.rules = rules_file.rules
        self.tags: dict[str, tuple[ColumnGlob, ...]] = rules_file.tags
        self.default_action = rules_file.default_action
        self.default_message = rules_file.default_message
        self.schema = schema
        self.cache: AnalysisCache[tuple[Touch, ...]] = AnalysisCache(cache_size)
        self._enforced = tuple(r for r in self.rules if not r.observe)
        self._observed = tuple(r for r in self.rules if r.observe)
        self._row_rules = tuple(r for r in self._enforced if r.target.rows_over is not None)

    @classmethod
    def load(
        cls,
        path: str | Path,
        schema: SchemaLookup | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> Policy:
        """Read and validate ``path``; raises ConfigError. Touches nothing else."""
        return cls(load_file(path), schema, cache_size)

    @classmethod
    def from_text(
        cls,
        text: str,
        file: str = "<rules>",
        schema: SchemaLookup | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> Policy:
        return cls(parse_text(text, file), schema, cache_size)

    @property
    def cache_hits(self) -> int:
        return self.cache.hits

    @property
    def cache_misses(self) -> int:
        return self.cache.misses

    def touches(
        self, sql: str, current_db: str | None, fingerprint: int | None = None
    ) -> tuple[Touch, ...]:
        """Analyses of every statement in ``sql`` with their tags, from the cache if possible.

        ``fingerprint`` is ``statement_fingerprint(sql)`` when the caller has it already."""

        def build() -> tuple[tuple[Touch, ...], bool]:
            statements = analyze(sql, current_db)
            touches = self._touches(statements)
            # An unparsed one is not kept: the parser may have failed on a literal's form
            # (0x78 where 'x' parses), which the fingerprint erases, and would refuse every
            # statement of the shape.
            return touches, all(s.cacheable and not s.unparsed for s in statements)

        if fingerprint is None:
            fingerprint = statement_fingerprint(sql)
        return self.cache.get_or_build(fingerprint, current_db, build)

    def identity_masks(
        self, ctx: RequestContext
    ) -> tuple[str, tuple[tuple[str, MaskSpec], ...]] | None:
        """The mask rules that apply to this identity, whatever the statement touches.

        A view or a function can carry tagged columns under names no tag matches, so the
        proxy sends every statement of such an identity through column lineage rather
        than trusting the statement's visible tables. Returns (first rule's name, all
        their specs in file order), or None when no mask rule applies to the identity.
        """
        rules = [r for r in self._enforced if r.action == MASK and r.identity.matches(ctx)]
        if not rules:
            return None
        return rules[0].name, tuple(mask for r in rules for mask in r.masks)

    def decide_touches(self, ctx: RequestContext, touches: tuple[Touch, ...]) -> Decision:
        """The decision for statements already analysed by ``touches()``."""
        return self._decide(ctx, touches)

    def decide(
        self, ctx: RequestContext, sql: str, estimated_rows: Sequence[int] | None = None
    ) -> Decision:
        """The decision for a COM_QUERY text.

        ``estimated_rows`` (one per statement, e.g. from EXPLAIN) lets ``rows_over`` rules
        decide; without it they do not match, and ``Decision.wants_estimate`` tells the
        caller that an estimate could change the decision.
        """
        return self._decide(ctx, self.touches(sql, ctx.current_db), estimated_rows)

    def decide_statements(self, ctx: RequestContext, statements: Iterable[Statement]) -> Decision:
        """The decision for statements analysed elsewhere (e.g. a COM_STMT_PREPARE)."""
        return self._decide(ctx, self._touches(statements))

    def _touches(self, statements: Iterable[Statement]) -> tuple[Touch, ...]:
        return tuple(touch(s, self.tags, self.schema) for s in statements)

    def _decide(
        self,
        ctx: RequestContext,
        touches: tuple[Touch, ...],
        estimated_rows: Sequence[int] | None = None,
    ) -> Decision:
        rows = estimated_rows if estimated_rows is not None else (None,) * len(touches)
        verdicts = [self._verdict(ctx, t, n) for t, n in zip(touches, rows, strict=True)]
        wants_estimate = estimated_rows is None and any(
            rule.wants_estimate(ctx, t) for rule in self._row_rules for t in touches
        )
        observed = tuple(
            ObservedHit(rule.name, rule.action, index)
            for index, t in enumerate(touches)
            for rule in self._observed
            if rule.matches(ctx, t)
        )
        statements = tuple(t.statement for t in touches)
        tags = frozenset().union(*(t.tags for t in touches))
        if not verdicts:
            return Decision(self.default_action, DEFAULT_RULE, "", statements, observed, tags=tags)
        # A multi-statement request gets the most restrictive of its statements' verdicts.
        worst = max(verdicts, key=lambda v: RANK[v.action])
        masks = tuple(
            mask
            for v in verdicts
            if v.action == MASK and v.rule is not None
            for mask in v.rule.masks
        )
        return Decision(
            action=worst.action,
            rule=worst.name,
            message=worst.message,
            statements=statements,
            observed=observed,
            masks=masks if worst.action == MASK else (),
            approval=worst.rule.approval if worst.rule else None,
            error_code=ER_MYGUARD_BLOCKED if worst.action == BLOCK else None,
            tags=tags,
            wants_estimate=wants_estimate and worst.action != BLOCK,
        )

    def _verdict(self, ctx: RequestContext, one: Touch, estimated_rows: int | None) -> _Verdict:
        """Most restrictive matching rule; the first in file order among equals."""
        best: Rule | None = None
        for rule in self._enforced:
            if rule.matches(ctx, one, estimated_rows) and (
                best is None or RANK[rule.action] > RANK[best.action]
            ):
                best = rule
                if rule.action == BLOCK:
                    break
        if best is not None:
            return _Verdict(best.action, best, best.name, best.message)
        if one.statement.unparsed:
            # Unparsed SQL fails closed whatever the default says.
            message = unparsed_message(one.statement.error)
            return _Verdict(BLOCK, None, UNPARSED_RULE, message)
        message = self.default_message if self.default_action == BLOCK else ""
        return _Verdict(self.default_action, None, DEFAULT_RULE, message)
