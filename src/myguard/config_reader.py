"""Typed access to one TOML table, so every config error names file, key and expectation."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from myguard.config_error import ConfigError


class TableReader:
    """Reads keys of one table; unknown keys are errors (a typo must not pass silently)."""

    def __init__(self, table: Any, file: str, prefix: str) -> None:
        if not isinstance(table, dict):
            raise ConfigError(file, prefix, "a table", table)
        self.table = table
        self.file = file
        self.prefix = prefix
        self._seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def _get(self, name: str, default: Any) -> Any:
        self._seen.add(name)
        return self.table.get(name, default)

    def error(self, name: str, expected: str, got: Any = None) -> ConfigError:
        return ConfigError(self.file, self.key(name), expected, got)

    def str(self, name: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self._get(name, default)
        if value is None and required:
            raise ConfigError(self.file, self.key(name), "a string (required)")
        if value is not None and not isinstance(value, str):
            raise self.error(name, "a string", value)
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self._get(name, default)
        if value not in choices:
            raise self.error(name, "one of " + ", ".join(repr(c) for c in choices), value)
        return value

    def bool(self, name: str, default: bool) -> bool:
        value = self._get(name, default)
        if not isinstance(value, bool):
            raise self.error(name, "true or false", value)
        return value

    def number(self, name: str, default: float, *, minimum: float = 0) -> float:
        value = self._get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            raise self.error(name, f"a number >= {minimum}", value)
        return float(value)

    def int(self, name: str, default: int, *, minimum: int = 0) -> int:
        value = self._get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(name, f"an integer >= {minimum}", value)
        return value

    def str_list(self, name: str) -> list[str]:
        value = self._get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(name, "a list of strings", value)
        return value

    def sub(self, name: str) -> TableReader | None:
        value = self._get(name, None)
        return None if value is None else TableReader(value, self.file, self.key(name))

    def address(self, name: str, default: str | None = None) -> tuple[str, int] | None:
        value = self.str(name, default)
        if value is None:
            return None
        host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise self.error(name, '"host:port" with a port from 1 to 65535', value)
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
            raise self.error(name, f"no inline secret: use {name}_env or {name}_file", "<hidden>")
        env = self.str(f"{name}_env")
        file = self.path(f"{name}_file")
        if env is not None:
            if env not in os.environ:
                raise self.error(f"{name}_env", f"environment variable {env} to be set")
            return os.environ[env]
        if file is not None:
            try:
                return file.read_text().rstrip("\r\n")
            except OSError as exc:
                raise self.error(
                    f"{name}_file", "a readable file", f"{file}: {exc.strerror}"
                ) from None
        if required:
            raise ConfigError(
                self.file, self.key(f"{name}_env"), f"{name}_env or {name}_file (required)"
            )
        return None

    def finish(self) -> None:
        """Reject keys nobody read: they are typos or options from another version."""
        unknown = sorted(set(self.table) - self._seen)
        if unknown:
            raise ConfigError(
                self.file,
                self.key(unknown[0]),
                "a known key (this key is not recognised)",
                self.table[unknown[0]],
            )
