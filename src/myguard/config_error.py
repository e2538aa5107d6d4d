"""The one error type for bad configuration: it names the file, the key and what was expected."""

from __future__ import annotations

from typing import Any

_MISSING = object()


class ConfigError(Exception):
    """A configuration problem, reported as ``FILE: KEY: expected ..., got ...``.

    ``got=None`` means the key is absent (TOML has no null), and says so.
    """

    def __init__(self, file: str, key: str, expected: str, got: Any = _MISSING) -> None:
        self.file = str(file)
        self.key = key
        self.expected = expected
        self.got = got
        message = f"{self.file}: {key}: expected {expected}"
        if got is None:
            message += ", but it is missing"
        elif got is not _MISSING:
            message += f", got {got!r}"
        super().__init__(message)


class ConfigErrors(ConfigError):
    """Every problem found in one reading of a file, so they can be fixed in one go."""

    def __init__(self, errors: list[ConfigError]) -> None:
        first = errors[0]
        super().__init__(first.file, first.key, first.expected, first.got)
        self.errors = errors
        self.args = ("\n".join(str(e) for e in errors),)
