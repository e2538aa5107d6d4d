"""The ``[identity.ldap]`` table: validated once, so the source never meets a bad value.

Two ways to check a password:

* direct bind: ``user_dn_template = "uid={user},ou=people,dc=example,dc=org"``;
* search-then-bind: ``bind_dn`` plus ``bind_password_env`` or ``bind_password_file``
  (a password is never written inline), ``base_dn`` and ``user_filter``.

Both may be set: the template then checks the password and the service account
resolves groups and serves ``refresh``.

Other keys (defaults in brackets):

* ``urls``: one URL or a list, tried in order (failover); ``tls`` ["starttls"],
  "ldaps" (needs ldaps:// URLs) or "none"; ``ca_file``; ``verify`` [true].
* ``user_filter`` [inetOrgPerson with uid={user}], ``user_attribute`` ["uid"]: the
  directory's spelling of it becomes Identity.user. ``disabled_filter``: a user whose
  entry matches it is refused, e.g. "(pwdAccountLockedTime=*)".
* Groups: ``member_of_attribute`` ["memberOf"; "" ignores it]; ``group_filter``
  [groupOfNames/groupOfUniqueNames by {dn}, posixGroup by {user}; "" disables the
  search] under ``group_base_dn`` [base_dn]; ``nested_groups`` [false] also follows
  groupOfNames/groupOfUniqueNames membership of groups, ``nested_depth`` [3] levels up;
  ``group_names`` ["cn": first RDN value, or "dn"].
* ``attributes`` [none]: user attributes copied into Identity.attributes.
* ``timeout`` [5 s] for connect and each operation; ``max_concurrency`` [16] concurrent
  LDAP conversations; ``group_ttl`` [300 s] how long ``refresh`` reuses groups.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from myguard.config_error import ConfigError

TlsMode = Literal["none", "ldaps", "starttls"]
TLS_MODES: tuple[TlsMode, ...] = ("none", "ldaps", "starttls")

DEFAULT_USER_FILTER = "(&(objectClass=inetOrgPerson)(uid={user}))"
# {dn} is the user's DN and {user} the value of user_attribute, both escaped.
DEFAULT_GROUP_FILTER = (
    "(|(&(objectClass=groupOfNames)(member={dn}))"
    "(&(objectClass=groupOfUniqueNames)(uniqueMember={dn}))"
    "(&(objectClass=posixGroup)(memberUid={user})))"
)

_KEYS = frozenset(
    {
        "urls",
        "tls",
        "ca_file",
        "verify",
        "user_dn_template",
        "bind_dn",
        "bind_password_env",
        "bind_password_file",
        "base_dn",
        "user_filter",
        "user_attribute",
        "disabled_filter",
        "group_base_dn",
        "group_filter",
        "member_of_attribute",
        "group_names",
        "nested_groups",
        "nested_depth",
        "attributes",
        "timeout",
        "max_concurrency",
        "group_ttl",
    }
)


@dataclass(frozen=True, slots=True)
class LdapConfig:
    urls: tuple[str, ...]
    tls: TlsMode = "starttls"
    ca_file: str | None = None
    verify: bool = True
    user_dn_template: str | None = None
    bind_dn: str | None = None
    bind_password: str | None = field(default=None, repr=False)
    base_dn: str | None = None
    user_filter: str = DEFAULT_USER_FILTER
    user_attribute: str = "uid"
    disabled_filter: str | None = None
    group_base_dn: str | None = None
    group_filter: str = DEFAULT_GROUP_FILTER
    member_of_attribute: str = "memberOf"
    group_names: Literal["cn", "dn"] = "cn"
    nested_groups: bool = False
    nested_depth: int = 3
    attributes: tuple[str, ...] = ()
    timeout: float = 5.0
    max_concurrency: int = 16
    group_ttl: float = 300.0

    @property
    def has_service_account(self) -> bool:
        return self.bind_dn is not None

    @property
    def groups_base(self) -> str | None:
        return self.group_base_dn or self.base_dn

    @classmethod
    def from_table(cls, table: dict, file: str, key: str = "identity.ldap") -> LdapConfig:
        return _Loader(table, file, key).load()


class _Loader:
    def __init__(self, table: Any, file: str, key: str) -> None:
        if not isinstance(table, dict):
            raise ConfigError(file, key, "a table", table)
        self.table = table
        self.file = file
        self.key = key

    def error(self, name: str, expected: str, *got: Any) -> ConfigError:
        return ConfigError(self.file, f"{self.key}.{name}", expected, *got)

    def string(self, name: str, default: str | None = None, *, placeholder: str = "") -> str | None:
        value = self.table.get(name, default)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.error(name, "a non-empty string", value)
        if placeholder and placeholder not in value:
            raise self.error(name, f"a string containing {placeholder}", value)
        return value

    def filter(self, name: str, default: str | None, *, placeholder: str = "") -> str | None:
        value = self.string(name, default, placeholder=placeholder)
        if value is not None and not (value.startswith("(") and value.endswith(")")):
            raise self.error(name, "an LDAP filter in parentheses", value)
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.table.get(name, default)
        if not isinstance(value, bool):
            raise self.error(name, "true or false", value)
        return value

    def number(self, name: str, default: float, *, positive: bool) -> float:
        value = self.table.get(name, default)
        bad = isinstance(value, bool) or not isinstance(value, int | float)
        if bad or value < 0 or (positive and value == 0):
            raise self.error(name, "a number > 0" if positive else "a number >= 0", value)
        return float(value)

    def integer(self, name: str, default: int) -> int:
        value = self.table.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.error(name, "an integer >= 1", value)
        return value

    def string_list(self, name: str, *, allow_single: bool) -> tuple[str, ...]:
        value = self.table.get(name, [])
        if allow_single and isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(name, "a list of non-empty strings", value)
        return tuple(value)

    def load(self) -> LdapConfig:
        unknown = sorted(set(self.table) - _KEYS)
        if unknown:
            raise self.error(unknown[0], "one of the keys " + ", ".join(sorted(_KEYS)))
        if "bind_password" in self.table:
            raise self.error(
                "bind_password", "bind_password_env or bind_password_file (never inline)"
            )
        urls = self.urls()
        tls = self.table.get("tls", "starttls")
        if tls not in TLS_MODES:
            raise self.error("tls", "one of " + ", ".join(repr(m) for m in TLS_MODES), tls)
        self.check_schemes(urls, tls)
        template = self.string("user_dn_template", placeholder="{user}")
        bind_dn = self.string("bind_dn")
        base_dn = self.string("base_dn")
        if template is None and bind_dn is None:
            raise self.error(
                "bind_dn", "either user_dn_template (direct bind) or bind_dn (search-then-bind)"
            )
        if template is None and base_dn is None:
            raise self.error(
                "base_dn", "a search base for search-then-bind (required with bind_dn)"
            )
        group_names = self.table.get("group_names", "cn")
        if group_names not in ("cn", "dn"):
            raise self.error("group_names", "'cn' or 'dn'", group_names)
        member_of = self.table.get("member_of_attribute", "memberOf")
        if not isinstance(member_of, str):
            raise self.error(
                "member_of_attribute", 'an attribute name, or "" to ignore it', member_of
            )
        group_filter = self.table.get("group_filter", DEFAULT_GROUP_FILTER)
        if group_filter != "":
            group_filter = self.filter("group_filter", DEFAULT_GROUP_FILTER)
        return LdapConfig(
            urls=urls,
            tls=tls,
            ca_file=self.ca_file(),
            verify=self.boolean("verify", True),
            user_dn_template=template,
            bind_dn=bind_dn,
            bind_password=self.bind_password() if bind_dn is not None else None,
            base_dn=base_dn,
            user_filter=self.filter("user_filter", DEFAULT_USER_FILTER, placeholder="{user}"),
            user_attribute=self.string("user_attribute", "uid"),
            disabled_filter=self.filter("disabled_filter", None),
            group_base_dn=self.string("group_base_dn"),
            group_filter=group_filter,
            member_of_attribute=member_of,
            group_names=group_names,
            nested_groups=self.boolean("nested_groups", False),
            nested_depth=self.integer("nested_depth", 3),
            attributes=self.string_list("attributes", allow_single=False),
            timeout=self.number("timeout", 5.0, positive=True),
            max_concurrency=self.integer("max_concurrency", 16),
            group_ttl=self.number("group_ttl", 300.0, positive=False),
        )

    def urls(self) -> tuple[str, ...]:
        if "urls" not in self.table:
            raise self.error("urls", "one or more ldap:// or ldaps:// URLs (required)")
        urls = self.string_list("urls", allow_single=True)
        if not urls:
            raise self.error("urls", "one or more ldap:// or ldaps:// URLs", [])
        for url in urls:
            if not url.lower().startswith(("ldap://", "ldaps://")):
                raise self.error("urls", "URLs starting with ldap:// or ldaps://", url)
        return urls

    def check_schemes(self, urls: tuple[str, ...], tls: str) -> None:
        secure = [url.lower().startswith("ldaps://") for url in urls]
        if tls == "ldaps" and not all(secure):
            raise self.error("urls", "only ldaps:// URLs when tls = 'ldaps'", list(urls))
        if tls != "ldaps" and any(secure):
            raise self.error("tls", "'ldaps' when urls use ldaps://", tls)

    def ca_file(self) -> str | None:
        path = self.string("ca_file")
        if path is not None and not Path(path).is_file():
            raise self.error("ca_file", "an existing CA certificate file", path)
        return path

    def bind_password(self) -> str:
        env = self.string("bind_password_env")
        path = self.string("bind_password_file")
        if (env is None) == (path is None):
            raise self.error(
                "bind_password_env",
                "exactly one of bind_password_env or bind_password_file with bind_dn",
            )
        if env is not None:
            password = os.environ.get(env)
            if not password:
                raise self.error(
                    "bind_password_env", f"environment variable {env} to be set and non-empty"
                )
            return password
        try:
            password = Path(path).read_text().rstrip("\r\n")
        except OSError as exc:
            raise self.error(
                "bind_password_file", f"a readable file ({exc.strerror})", path
            ) from None
        if not password:
            raise self.error("bind_password_file", "a file holding the bind password", path)
        return password
