"""Who is asking, from where, through which backend: the identity half of every decision."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestContext:
    user: str
    groups: frozenset[str]
    environment: str
    backend: str
    source_ip: str
    program: str
    attributes: Mapping[str, str]
    current_db: str | None
