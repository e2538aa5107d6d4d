"""The one error type for bad configuration: it names the file, the key and what was expected."""

from __future__ import annotations

from typing import Any

_MISSING = object()


class ConfigError(Exception):
    """A configuration problem, reported as ``FILE: KEY: expected ..., got ...``."""

    def __init__(self, file: str, key: str, expected: str, got: Any = _MISSING) -> None:
        self.file = str(file)
        self.key = key
        self.expected = expected
        self.got = got
        message = f"{self.file}: {key}: expected {expected}"
        if got is not _MISSING:
            message += f", got {got!r}"
        super().__init__(message)
