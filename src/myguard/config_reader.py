"""Typed access to one TOML table, so every config error names file, key and expectation.

A reader does not stop at the first problem: it records it in the shared Problems and
goes on with the default, so one run reports everything wrong with a file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from myguard.config_error import ConfigError


@dataclass
class Problems:
    """What one reading of a config file found."""

    errors: list[ConfigError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # False (config check): a secret that is not available here is a warning, since the
    # file may be checked by someone, or on a machine, that does not hold the secrets.
    secrets_required: bool = True


class TableReader:
    """Reads keys of one table; unknown keys are errors (a typo must not pass silently)."""

    def __init__(
        self, table: Any, file: str, prefix: str, problems: Problems | None = None
    ) -> None:
        self.problems = problems if problems is not None else Problems()
        self.file = file
        self.prefix = prefix
        if not isinstance(table, dict):
            self.fail(ConfigError(file, prefix, "a table", table))
            table = {}
        self.table = table
        self._seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def _get(self, name: str, default: Any) -> Any:
        self._seen.add(name)
        return self.table.get(name, default)

    def error(self, name: str, expected: str, got: Any = None) -> ConfigError:
        """``got`` None: the key is missing."""
        return ConfigError(self.file, self.key(name), expected, got)

    def fail(self, error: ConfigError) -> None:
        self.problems.errors.append(error)

    def str(self, name: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self._get(name, default)
        if value is None and required:
            self.fail(self.error(name, "a string (required)"))
        elif value is not None and not isinstance(value, str):
            self.fail(self.error(name, "a string", value))
            return default
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self._get(name, default)
        if value not in choices:
            self.fail(self.error(name, "one of " + ", ".join(repr(c) for c in choices), value))
            return default
        return value

    def bool(self, name: str, default: bool) -> bool:
        value = self._get(name, default)
        if not isinstance(value, bool):
            self.fail(self.error(name, "true or false", value))
            return default
        return value

    def number(self, name: str, default: float, *, minimum: float = 0) -> float:
        value = self._get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            self.fail(self.error(name, f"a number >= {minimum}", value))
            return default
        return float(value)

    def int(self, name: str, default: int, *, minimum: int = 0) -> int:
        value = self._get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(self.error(name, f"an integer >= {minimum}", value))
            return default
        return value

    def str_list(self, name: str) -> list[str]:
        value = self._get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(self.error(name, "a list of strings", value))
            return []
        return value

    def sub(self, name: str) -> TableReader | None:
        value = self._get(name, None)
        return (
            None if value is None else TableReader(value, self.file, self.key(name), self.problems)
        )

    def address(
        self, name: str, default: str | None = None, *, required: bool = False
    ) -> tuple[str, int] | None:
        value = self._get(name, default)
        if value is None:
            if required:
                self.fail(self.error(name, '"host:port" (required)'))
            return None
        host, sep, port = value.rpartition(":") if isinstance(value, str) else ("", "", "")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            self.fail(self.error(name, '"host:port" with a port from 1 to 65535', value))
            return None
        return host.strip("[]") or "127.0.0.1", int(port)

    def path(self, name: str, *, required: bool = False) -> Path | None:
        value = self.str(name, required=required)
        if value is None:
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() else Path(self.file).parent / p

    def secret(self, name: str, *, required: bool) -> str | None:
        """A secret from ``NAME_env`` (an environment variable) or ``NAME_file``, never inline."""
        if name in self.table:
            self.fail(
                self.error(name, f"no inline secret: use {name}_env or {name}_file", "<hidden>")
            )
            self._seen.add(name)
        env = self.str(f"{name}_env")
        file = self.path(f"{name}_file")
        if env is not None:
            if env in os.environ:
                return os.environ[env]
            self._unavailable(f"{name}_env", f"environment variable {env} to be set")
        elif file is not None:
            try:
                return file.read_text().rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or "not UTF-8 text"
                self._unavailable(f"{name}_file", f"a readable file ({file}: {reason})")
        elif required:
            self.fail(self.error(f"{name}_env", f"{name}_env or {name}_file (required)"))
        return None

    def _unavailable(self, name: str, expected: str) -> None:
        if self.problems.secrets_required:
            self.fail(ConfigError(self.file, self.key(name), expected))
        else:
            self.problems.warnings.append(
                f"{self.file}: {self.key(name)}: expected {expected} when myguard serves"
            )

    def finish(self) -> None:
        """Reject keys nobody read: they are typos or options from another version."""
        for name in sorted(set(self.table) - self._seen):
            self.fail(
                self.error(name, "a known key (this key is not recognised)", self.table[name])
            )
