"""The main configuration file (TOML): listeners, backends, identity, TLS and limits."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from myguard.config_error import ConfigError, ConfigErrors
from myguard.config_reader import Problems, TableReader

# Where the audit ring lives unless the config says otherwise: Linux's shared-memory tmpfs.
DEFAULT_RING_DIRECTORY = Path("/dev/shm")


@dataclass(frozen=True, slots=True)
class BackendAccount:
    user: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """``[backends.pool]``: backend connections kept logged in and reused across sessions.

    A connection belongs to one client session from login to quit (session pooling) and is
    reset (COM_RESET_CONNECTION) before the next session gets it. Limits are per worker
    process: each worker has its own pool.
    """

    enabled: bool = True
    # Idle connections kept ready per service account and client capability set in use.
    min_idle: int = 2
    # Connections per worker (idle + in use + being opened); 0: as many as the backend's
    # max_connections minus ``headroom`` allows, divided among the workers. A larger value
    # is lowered to that.
    max: int = 0
    # Backend connections left for others (DBAs, replication, other applications).
    headroom: int = 10
    idle_timeout: float = 300.0
    max_lifetime: float = 3600.0
    # How long a login waits for a connection when ``max`` are in use before it is refused
    # (not set, -1: 5 s, or half of handshake_timeout when that is shorter).
    wait_timeout: float = -1.0
    # An idle connection unused for longer than this is checked with COM_PING before use.
    ping_after: float = 10.0


@dataclass(frozen=True, slots=True)
class BackendConfig:
    name: str
    environment: str
    listen: tuple[str, int]
    upstream: tuple[str, int]
    account: BackendAccount
    # group name -> account used for members of that group (first matching group wins)
    group_accounts: tuple[tuple[str, BackendAccount], ...] = ()
    tls: bool = False
    tls_ca_file: Path | None = None
    tls_verify: bool = True
    local_infile: bool = False
    connect_timeout: float = 5.0
    pool: PoolConfig = PoolConfig()


@dataclass(frozen=True, slots=True)
class TlsConfig:
    cert_file: Path
    key_file: Path


@dataclass(frozen=True, slots=True)
class IdentityConfig:
    source: str
    users_file: Path | None
    rsa_key_file: Path | None
    greeting_plugin: str
    verifier_ttl: float
    max_failures: int
    failure_window: float
    lockout: float
    source_max_failures: int
    allow_cached_during_outage: bool
    ldap_table: dict | None


@dataclass(frozen=True, slots=True)
class AuditConfig:
    enabled: bool
    directory: Path | None
    fsync: str
    rotate_bytes: int
    rotate_seconds: float
    retention_days: float | None
    retention_bytes: int | None
    hmac_key_file: Path | None
    redact_literals: bool
    # Environments whose statements still run while the audit trail cannot be written.
    fail_open_environments: frozenset[str]
    # A memory filesystem for the records' ring (audit/ring.py); None: no ring.
    ring_directory: Path | None = None


@dataclass(frozen=True, slots=True)
class ApprovalsConfig:
    store: str
    store_password: str | None = field(repr=False)
    webhooks: tuple[str, ...]
    decision_ttl: float
    poll_interval: float


@dataclass(frozen=True, slots=True)
class MaskingConfig:
    # Keys the hash strategy (HMAC-SHA256); from an environment variable or a file.
    hash_key: bytes | None = field(repr=False)
    # A result column whose origin cannot be established: refuse the statement or redact it.
    unknown_lineage: str


@dataclass(frozen=True, slots=True)
class AdminConfig:
    """The admin listener's ``[admin]`` table: HTTPS, and the web console's sign-in."""

    # Serve /console (the API, /healthz and /metrics are served either way).
    console: bool = True
    # HTTPS for the whole listener; the console's cookie is then marked Secure.
    tls: TlsConfig | None = None
    # Members see the whole audit trail in the console; others see their own records.
    audit_groups: frozenset[str] = frozenset()
    # A console sign-in ends after this many seconds without a request ...
    session_idle_timeout: float = 1800.0
    # ... and this many seconds after it was made, whatever the activity.
    session_lifetime: float = 12 * 3600.0


@dataclass(frozen=True, slots=True)
class Config:
    file: Path
    rules_file: Path
    audit: AuditConfig
    approvals: ApprovalsConfig
    masking: MaskingConfig
    backends: tuple[BackendConfig, ...]
    identity: IdentityConfig
    tls: TlsConfig | None
    require_tls: bool
    admin_listen: tuple[str, int] | None
    workers: int
    max_allowed_packet: int
    handshake_timeout: float
    idle_timeout: float
    shutdown_timeout: float
    max_connections: int
    # Members of these groups see every session in the process list, others their own.
    process_list_groups: frozenset[str]
    admin: AdminConfig = AdminConfig()


def _read(path: str | os.PathLike[str], problems: Problems) -> TableReader:
    """The top table; a file that cannot be read or parsed at all raises ConfigError."""
    file = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(file, "(file)", "an existing config file") from None
    except IsADirectoryError:
        raise ConfigError(file, "(file)", "a config file, not a directory") from None
    except OSError as exc:
        raise ConfigError(file, "(file)", f"a readable config file ({exc.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(
            file, "(encoding)", f"UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "(syntax)", f"valid TOML ({exc})") from None
    return TableReader(data, file, "", problems)


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a config file; raises ConfigError (ConfigErrors: several) naming
    file, key and expectation of every problem."""
    return check_config(path, secrets_required=True)[0]


def check_config(
    path: str | os.PathLike[str], *, secrets_required: bool
) -> tuple[Config, list[str]]:
    """The config and warnings; ``secrets_required`` False turns secrets missing here
    (environment variables, files) into warnings, to check a file's structure anywhere."""
    problems = Problems(secrets_required=secrets_required)
    top = _read(path, problems)
    file = top.file
    rules_file = top.path("rules_file", required=True)
    config = Config(
        file=Path(file),
        rules_file=rules_file,
        audit=_audit(top),
        approvals=_approvals(top),
        masking=_masking(top),
        backends=_backends(top),
        identity=_identity(top),
        tls=_tls(top),
        require_tls=top.bool("require_tls", False),
        admin_listen=top.address("admin_listen", "127.0.0.1:9106"),
        workers=top.int("workers", os.cpu_count() or 1, minimum=1),
        max_allowed_packet=top.int("max_allowed_packet", 64 << 20, minimum=1024),
        handshake_timeout=top.number("handshake_timeout", 10.0, minimum=0.1),
        idle_timeout=top.number("idle_timeout", 28800.0, minimum=1),
        shutdown_timeout=top.number("shutdown_timeout", 30.0),
        max_connections=top.int("max_connections", 4096, minimum=1),
        process_list_groups=frozenset(top.str_list("process_list_groups")),
        admin=_admin(top),
    )
    backends = []
    for backend in config.backends:
        if backend.pool.wait_timeout < 0:  # not set: what fits in the handshake
            pool = replace(backend.pool, wait_timeout=min(5.0, config.handshake_timeout / 2))
            backend = replace(backend, pool=pool)
        backends.append(backend)
    config = replace(config, backends=tuple(backends))
    for i, backend in enumerate(config.backends):
        if backend.pool.enabled and backend.pool.wait_timeout >= config.handshake_timeout:
            top.fail(
                ConfigError(
                    file,
                    f"backends[{i}].pool.wait_timeout",
                    f"a number below handshake_timeout ({config.handshake_timeout:g}):"
                    " a login waits for a connection within its handshake",
                    backend.pool.wait_timeout,
                )
            )
    if config.require_tls and config.tls is None:
        top.fail(
            ConfigError(file, "require_tls", "a [tls] table with cert_file and key_file", True)
        )
    top.finish()
    _raise_errors(problems)
    return config, problems.warnings


def _raise_errors(problems: Problems) -> None:
    if len(problems.errors) == 1:
        raise problems.errors[0]
    if problems.errors:
        raise ConfigErrors(problems.errors)


def load_audit_config(path: str | os.PathLike[str]) -> AuditConfig:
    """Just the ``[audit]`` table, validated as by load_config: for tools that read the
    trail and must not need the backends' passwords in their environment."""
    problems = Problems()
    config = _audit(_read(path, problems))
    _raise_errors(problems)
    return config


def load_approver_config(
    path: str | os.PathLike[str],
) -> tuple[IdentityConfig, ApprovalsConfig, AuditConfig]:
    """The ``[identity]``, ``[approvals]`` and ``[audit]`` tables, validated as by
    load_config: an approver's CLI needs no backend service-account password."""
    problems = Problems()
    top = _read(path, problems)
    tables = _identity(top), _approvals(top), _audit(top)
    _raise_errors(problems)
    return tables


def _account(t: TableReader) -> BackendAccount:
    user = t.str("user", required=True)
    return BackendAccount(user, t.secret("password", required=True) or "")


def _backends(top: TableReader) -> tuple[BackendConfig, ...]:
    raw = top._get("backends", None)
    if not isinstance(raw, list) or not raw:
        top.fail(top.error("backends", "one or more [[backends]] tables", raw))
        return ()
    backends = []
    seen: set[str] = set()
    for i, table in enumerate(raw):
        t = TableReader(table, top.file, f"backends[{i}]", top.problems)
        name = t.str("name", required=True)
        if name in seen:
            t.fail(t.error("name", "a name no other backend has", name))
        seen.add(name)
        groups = []
        accounts = t.sub("group_accounts")
        if accounts is not None:
            for group in accounts.table:
                sub = accounts.sub(group)
                groups.append((group, _account(sub)))
                sub.finish()
        backends.append(
            BackendConfig(
                name=name,
                environment=t.str("environment", required=True),
                listen=t.address("listen", required=True),
                upstream=t.address("upstream", required=True),
                account=_account(t),
                group_accounts=tuple(groups),
                tls=t.bool("tls", False),
                tls_ca_file=t.path("tls_ca_file"),
                tls_verify=t.bool("tls_verify", True),
                local_infile=t.bool("local_infile", False),
                connect_timeout=t.number("connect_timeout", 5.0, minimum=0.1),
                pool=_pool(t),
            )
        )
        t.finish()
    listens = [b.listen for b in backends if b.listen is not None]
    if len(set(listens)) != len(listens):
        top.fail(top.error("backends", "a different listen address for each backend", listens))
    return tuple(backends)


def _pool(backend: TableReader) -> PoolConfig:
    t = backend.sub("pool")
    if t is None:
        return PoolConfig()
    default = PoolConfig()
    config = PoolConfig(
        enabled=t.bool("enabled", default.enabled),
        min_idle=t.int("min_idle", default.min_idle, minimum=0),
        max=t.int("max", default.max, minimum=0),
        headroom=t.int("headroom", default.headroom, minimum=0),
        idle_timeout=t.number("idle_timeout", default.idle_timeout, minimum=1),
        max_lifetime=t.number("max_lifetime", default.max_lifetime, minimum=1),
        wait_timeout=t.number("wait_timeout", 5.0) if "wait_timeout" in t.table else -1.0,
        ping_after=t.number("ping_after", default.ping_after, minimum=0),
    )
    if config.max and config.min_idle > config.max:
        t.fail(t.error("min_idle", f"an integer <= max ({config.max})", config.min_idle))
    if config.max_lifetime < config.idle_timeout:
        t.fail(
            t.error(
                "max_lifetime",
                f"a number >= idle_timeout ({config.idle_timeout:g})",
                config.max_lifetime,
            )
        )
    t.finish()
    return config


def _identity(top: TableReader) -> IdentityConfig:
    t = top.sub("identity") or TableReader({}, top.file, "identity", top.problems)
    source = t.choice("source", ("users-file", "ldap"), "users-file")
    users_file = t.path("users_file")
    if source == "users-file" and users_file is None:
        t.fail(t.error("users_file", "a path to the users file (myguard users add writes it)"))
    ldap = t._get("ldap", None)
    if source == "ldap" and not isinstance(ldap, dict):
        t.fail(t.error("ldap", 'an [identity.ldap] table when source = "ldap"', ldap))
    config = IdentityConfig(
        source=source,
        users_file=users_file,
        rsa_key_file=t.path("rsa_key_file"),
        greeting_plugin=t.choice(
            "greeting_plugin",
            ("caching_sha2_password", "mysql_native_password"),
            "mysql_native_password",
        ),
        verifier_ttl=t.number("verifier_ttl", 3600.0),
        max_failures=t.int("max_failures", 5, minimum=1),
        failure_window=t.number("failure_window", 300.0),
        lockout=t.number("lockout", 300.0),
        source_max_failures=t.int("source_max_failures", 100, minimum=1),
        allow_cached_during_outage=t.bool("allow_cached_during_outage", False),
        ldap_table=ldap,
    )
    t.finish()
    return config


def _audit(top: TableReader) -> AuditConfig:
    t = top.sub("audit") or TableReader({}, top.file, "audit", top.problems)
    enabled = t.bool("enabled", True)
    directory = t.path("directory", required=enabled)
    retention_days = t.number("retention_days", 0.0)
    retention_bytes = t.int("retention_bytes", 0)
    config = AuditConfig(
        enabled=enabled,
        directory=directory,
        fsync=t.choice("fsync", ("always", "batch", "off"), "batch"),
        rotate_bytes=t.int("rotate_bytes", 64 << 20, minimum=4096),
        rotate_seconds=t.number("rotate_seconds", 86400.0, minimum=1),
        retention_days=retention_days or None,
        retention_bytes=retention_bytes or None,
        hmac_key_file=t.path("hmac_key_file"),
        redact_literals=t.bool("redact_literals", False),
        fail_open_environments=frozenset(t.str_list("fail_open_environments")),
        ring_directory=_ring_directory(t),
    )
    t.finish()
    return config


def _ring_directory(t: TableReader) -> Path | None:
    """``ring_directory``: unset means /dev/shm where the machine has it, "" no ring."""
    if t.str("ring_directory") == "":
        return None
    given = t.path("ring_directory")
    if given is None:
        return DEFAULT_RING_DIRECTORY if DEFAULT_RING_DIRECTORY.is_dir() else None
    if not given.is_dir():
        t.fail(t.error("ring_directory", "an existing directory (a memory filesystem)", str(given)))
    return given


def _masking(top: TableReader) -> MaskingConfig:
    t = top.sub("masking") or TableReader({}, top.file, "masking", top.problems)
    key = t.secret("hash_key", required=False)
    config = MaskingConfig(
        hash_key=key.encode() if key else None,
        unknown_lineage=t.choice("unknown_lineage", ("refuse", "redact"), "refuse"),
    )
    t.finish()
    return config


def _approvals(top: TableReader) -> ApprovalsConfig:
    t = top.sub("approvals") or TableReader({}, top.file, "approvals", top.problems)
    store = t.str("store", "sqlite:approvals.db") or "sqlite:approvals.db"
    if store.startswith("sqlite:") and not Path(store[7:]).is_absolute():
        store = f"sqlite:{Path(top.file).parent / store[7:]}"
    elif not store.startswith(("sqlite:", "mysql://")):
        t.fail(t.error("store", '"sqlite:PATH" or "mysql://USER@HOST:PORT/DATABASE"', store))
    webhooks = t.str_list("webhooks")
    for url in webhooks:
        if not url.startswith(("http://", "https://")):
            t.fail(t.error("webhooks", "http:// or https:// URLs", url))
    config = ApprovalsConfig(
        store=store,
        store_password=t.secret("store_password", required=False),
        webhooks=tuple(webhooks),
        decision_ttl=t.number("decision_ttl", 86400.0, minimum=1),
        poll_interval=t.number("poll_interval", 0.25, minimum=0.01),
    )
    t.finish()
    return config


def _admin(top: TableReader) -> AdminConfig:
    t = top.sub("admin") or TableReader({}, top.file, "admin", top.problems)
    cert, key = t.path("cert_file"), t.path("key_file")
    tls = None
    if (cert is None) != (key is None):
        missing = "key_file" if key is None else "cert_file"
        t.fail(t.error(missing, "cert_file and key_file together (HTTPS needs both)"))
    elif cert is not None and key is not None:
        tls = TlsConfig(cert, key)
        for name, p in (("cert_file", cert), ("key_file", key)):
            if not p.is_file():
                t.fail(t.error(name, "an existing PEM file", str(p)))
    idle = t.number("session_idle_timeout", 1800.0, minimum=10)
    lifetime = t.number("session_lifetime", 12 * 3600.0, minimum=10)
    if lifetime < idle:
        t.fail(t.error("session_lifetime", f"at least session_idle_timeout ({idle:g})", lifetime))
    config = AdminConfig(
        console=t.bool("console", True),
        tls=tls,
        audit_groups=frozenset(t.str_list("audit_groups")),
        session_idle_timeout=idle,
        session_lifetime=lifetime,
    )
    t.finish()
    return config


def _tls(top: TableReader) -> TlsConfig | None:
    t = top.sub("tls")
    if t is None:
        return None
    config = TlsConfig(t.path("cert_file", required=True), t.path("key_file", required=True))
    for name, p in (("cert_file", config.cert_file), ("key_file", config.key_file)):
        if p is not None and not p.is_file():
            t.fail(t.error(name, "an existing PEM file", str(p)))
    t.finish()
    return config
