"""Group resolution against a bound ldap3 connection (blocking; runs in a worker thread).

Sources, merged: the user's ``memberOf`` values, one search matching groupOfNames /
groupOfUniqueNames (by user DN) and posixGroup (by uid), and optionally nested
groupOfNames/groupOfUniqueNames membership of those groups up to ``nested_depth``.
"""

from __future__ import annotations

import re

import ldap3
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn

from myguard.identity.base import IdentityUnavailable
from myguard.identity.ldap_config import LdapConfig

# success, noSuchObject (base absent), sizeLimitExceeded (partial answer is still an answer).
_FOUND_OR_EMPTY = frozenset({0, 4, 32})
_ESCAPED = re.compile(r"\\([0-9a-fA-F]{2}|.)")


def resolve_groups(
    conn: ldap3.Connection,
    config: LdapConfig,
    user_dn: str,
    user_name: str,
    member_of: list[str],
) -> frozenset[str]:
    """Names of the groups ``user_dn`` belongs to (plain cn by default, or full DNs)."""
    found = {dn.lower(): dn for dn in member_of}
    base = config.groups_base
    if base and config.group_filter:
        query = config.group_filter.format(
            dn=escape_filter_chars(user_dn), user=escape_filter_chars(user_name)
        )
        for dn in _search_dns(conn, base, query):
            found.setdefault(dn.lower(), dn)
    if base and config.nested_groups:
        _add_parents(conn, base, found, config.nested_depth)
    if config.group_names == "dn":
        return frozenset(found.values())
    return frozenset(name for name in map(group_name, found.values()) if name)


def group_name(dn: str) -> str:
    """The value of the group's first RDN, unescaped: its cn for usual layouts."""
    try:
        value = parse_dn(dn)[0][1]
    except (ldap3.core.exceptions.LDAPInvalidDnError, IndexError):
        return ""
    return _unescape(value)


def _unescape(value: str) -> str:
    def one(match: re.Match[str]) -> str:
        token = match.group(1)
        return chr(int(token, 16)) if len(token) == 2 else token

    # Hex escapes encode UTF-8 bytes; decode them as a whole.
    raw = _ESCAPED.sub(one, value)
    try:
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw


def _add_parents(conn: ldap3.Connection, base: str, found: dict[str, str], depth: int) -> None:
    frontier = list(found.values())
    for _ in range(depth):
        if not frontier:
            return
        terms = "".join(
            f"(member={escaped})(uniqueMember={escaped})"
            for escaped in map(escape_filter_chars, frontier)
        )
        frontier = []
        for dn in _search_dns(conn, base, f"(|{terms})"):
            # A cycle stops here: only unseen groups are expanded further.
            if dn.lower() not in found:
                found[dn.lower()] = dn
                frontier.append(dn)


def search(
    conn: ldap3.Connection,
    base: str,
    query: str,
    scope: str,
    attributes: list[str] | str,
    size_limit: int = 0,
) -> list[dict]:
    """Entries found; a missing base is "nothing found", any other error is an outage."""
    conn.search(base, query, scope, attributes=attributes, size_limit=size_limit)
    code = conn.result.get("result", 0) if conn.result else 0
    if code not in _FOUND_OR_EMPTY:
        raise IdentityUnavailable(
            f"ldap: search under {base!r} failed: {conn.result.get('description')}"
        )
    return [item for item in conn.response or () if item.get("type") == "searchResEntry"]


def _search_dns(conn: ldap3.Connection, base: str, query: str) -> list[str]:
    return [item["dn"] for item in search(conn, base, query, ldap3.SUBTREE, ldap3.NO_ATTRIBUTES)]
