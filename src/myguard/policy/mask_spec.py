"""Masking strategy specs as written in a rules file: ``redact``, ``partial(4)``, ``value(n/a)``."""

from __future__ import annotations

import re
from dataclasses import dataclass

# strategy -> kind of argument it takes (None: no argument)
STRATEGIES: dict[str, type | None] = {
    "redact": None,
    "email": None,
    "hash": None,
    "null": None,
    "partial": int,
    "value": str,
}
_SPEC_RE = re.compile(r"^\s*([a-z]+)\s*(?:\((.*)\))?\s*$", re.DOTALL)
EXPECTED = "one of redact, email, hash, null, partial(N) with N >= 0, value(TEXT)"


@dataclass(frozen=True, slots=True)
class MaskSpec:
    """How to mask a value: ``partial`` keeps the last ``arg`` characters, ``value`` replaces
    it with ``arg``; the other strategies take no argument."""

    strategy: str
    arg: int | str | None = None

    @classmethod
    def parse(cls, text: str) -> MaskSpec:
        """Parse a spec string; ValueError (with what was expected) when it is not valid."""
        match = _SPEC_RE.match(text) if isinstance(text, str) else None
        if match is None or match.group(1) not in STRATEGIES:
            raise ValueError(EXPECTED)
        strategy, raw = match.group(1), match.group(2)
        wanted = STRATEGIES[strategy]
        if wanted is None:
            if raw is not None:
                raise ValueError(f"{strategy} takes no argument")
            return cls(strategy)
        if raw is None:
            raise ValueError(f"{strategy} needs an argument in parentheses")
        if wanted is int:
            if not raw.strip().isdigit():
                raise ValueError(f"{strategy}(N) needs a whole number N >= 0")
            return cls(strategy, int(raw))
        return cls(strategy, raw)

    def __str__(self) -> str:
        return self.strategy if self.arg is None else f"{self.strategy}({self.arg})"
