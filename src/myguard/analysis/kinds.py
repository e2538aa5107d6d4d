"""Statement kinds and the groups rules can name instead of listing kinds one by one."""

from __future__ import annotations

# Kinds whose statements change nothing on the server.
READ = frozenset({"select", "show", "describe", "explain", "handler", "do", "help", "checksum"})
DML = frozenset({"insert", "update", "delete", "replace", "load_data"})
DDL = frozenset({"create", "alter", "drop", "truncate", "rename"})
DCL = frozenset({"grant", "revoke"})
TRANSACTION = frozenset({"begin", "commit", "rollback", "savepoint", "xa"})
SESSION = frozenset({"set", "use", "lock", "unlock"})
DYNAMIC = frozenset({"prepare", "execute", "deallocate", "execute_immediate", "call", "compound"})
ADMIN = frozenset(
    {
        "kill",
        "flush",
        "analyze",
        "optimize",
        "check",
        "repair",
        "install",
        "uninstall",
        "shutdown",
        "restart",
        "reset",
        "purge",
        "change",
        "start",
        "stop",
        "clone",
        "binlog",
        "cache_index",
        "load_index",
        "backup",
        "import",
    }
)
# What SHOW shows: the first word after SHOW [FULL | GLOBAL | SESSION | EXTENDED | ALL].
SHOW_OBJECTS = frozenset(
    {
        "analyze", "authors", "binary", "binlog", "character", "charset", "client_statistics",
        "collation", "columns", "contributors", "count", "create", "databases", "engine",
        "engines", "errors", "events", "explain", "fields", "function", "grants", "index",
        "indexes", "index_statistics", "keys", "locales", "master", "open", "package",
        "plugins", "privileges", "procedure", "processlist", "profile", "profiles",
        "query_response_time", "relaylog", "replica", "replicas", "schemas", "slave", "slaves",
        "status", "storage", "table", "tables", "table_statistics", "triggers",
        "user_statistics", "variables", "warnings", "wsrep_membership", "wsrep_status",
    }
)  # fmt: skip
# Objects whose DDL stores a body of SQL the server runs later (stored programs).
CODE_OBJECTS = frozenset({"trigger", "event", "function", "procedure"})
# Objects whose DDL manages accounts, i.e. privileges.
ACCOUNT_OBJECTS = frozenset({"user", "role"})

GROUPS: dict[str, frozenset[str]] = {
    "read": READ,
    "dml": DML,
    "ddl": DDL,
    "dcl": DCL,
    "transaction": TRANSACTION,
    "session": SESSION,
    "dynamic": DYNAMIC,
    "admin": ADMIN,
}
# "write": anything that changes data, schema, privileges, files or server state.
WRITE = DML | DDL | DCL | ADMIN

KNOWN_KINDS = READ | DML | DDL | DCL | TRANSACTION | SESSION | DYNAMIC | ADMIN
# Extra names a statement may answer to besides its kind.
EXTRA_NAMES = frozenset(
    {
        "into_outfile",
        "into_dumpfile",
        "into_variable",
        "load_data_local",
        "set_password",
        "set_default_role",
        "set_global",
    }
)
# Statements that read or write files on the database server (or, LOCAL, the client).
FILE_ACCESS = "file_access"
GROUP_NAMES = frozenset(GROUPS) | {"write", "export", FILE_ACCESS}
OBJECT_TYPES = frozenset(
    {
        "table",
        "database",
        "view",
        "index",
        "user",
        "role",
        "procedure",
        "function",
        "trigger",
        "event",
        "server",
        "tablespace",
        "logfile",
        "sequence",
        "package",
        "resource",
        "spatial",
        "instance",
        "undo",
    }
)


def names_for(
    kind: str, object_type: str | None, extras: frozenset[str] = frozenset()
) -> frozenset[str]:
    """Every name a rule's ``kinds`` list can use to match this statement."""
    names = {kind, *extras}
    if object_type:
        names.add(f"{kind}:{object_type}")
        if kind in DDL and object_type in ACCOUNT_OBJECTS:
            names.add("dcl")
    names.update(group for group, members in GROUPS.items() if kind in members)
    if extras & {"into_outfile", "into_dumpfile"}:
        names.add("export")
    if "export" in names or kind == "load_data":
        names.add(FILE_ACCESS)
    if extras & {"set_password", "set_default_role"}:
        # Changes an account (any account, FOR another user): as much DCL as ALTER USER.
        names.add("dcl")
    if "set_global" in extras or "set_password" in extras:
        names.add("admin")
    if kind in WRITE or "export" in names or "admin" in names or "dcl" in names:
        names.add("write")
    return frozenset(names)


def valid_kind_name(name: str) -> bool:
    """Whether ``name`` is something ``names_for`` can produce (config validation)."""
    if name in KNOWN_KINDS or name in EXTRA_NAMES or name in GROUP_NAMES or name == "unparsed":
        return True
    kind, _, obj = name.partition(":")
    if kind == "show":
        return obj in SHOW_OBJECTS
    return kind in KNOWN_KINDS and obj in OBJECT_TYPES
