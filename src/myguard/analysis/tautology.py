"""Does a WHERE clause filter anything?

The analysis cache is keyed by fingerprint, where every literal is ``?``: ``WHERE 1=1`` and
``WHERE 1=2`` look the same. So the answer must not depend on literal values: any predicate
without a column (``1=2``, ``0``, ``NOT 0``) counts as a tautology. That is conservative: a
constant WHERE either touches every row or none, and neither is a reason for a blanket write.
"""

from __future__ import annotations

from sqlglot import exp

_SAME_SIDED = (exp.EQ, exp.NullSafeEQ, exp.GTE, exp.LTE, exp.Like)


def is_tautology(node: exp.Expression) -> bool:
    """True when ``node`` keeps every row (or is constant), whatever its literals are."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Or):
        return is_tautology(node.left) or is_tautology(node.right) or _null_check_pair(node)
    if isinstance(node, exp.And):
        return is_tautology(node.left) and is_tautology(node.right)
    if isinstance(node, exp.Not):
        return is_tautology(node.this)
    if isinstance(node, _SAME_SIDED) and _same(node.left, node.right):
        return True
    return _constant(node)


def _constant(node: exp.Expression) -> bool:
    return not any(isinstance(n, (exp.Column, exp.Query)) for n in node.walk())


def _same(left: exp.Expression, right: exp.Expression) -> bool:
    return isinstance(left, exp.Column) and left == right


def _null_check_pair(node: exp.Or) -> bool:
    """``x IS NULL OR x IS NOT NULL``."""
    left, right = node.left, node.right
    while isinstance(left, exp.Paren):
        left = left.this
    while isinstance(right, exp.Paren):
        right = right.this
    if isinstance(right, exp.Is):
        left, right = right, left
    if not (isinstance(left, exp.Is) and isinstance(right, exp.Not)):
        return False
    inner = right.this
    return isinstance(inner, exp.Is) and left.this == inner.this and _same(left.this, inner.this)
