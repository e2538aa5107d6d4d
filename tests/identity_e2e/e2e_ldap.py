"""End-to-end LDAP login helpers: real MySQL clients, reading myguard's log, new LDAP users.

``login(client, port, user, password, tls_ca=None)`` connects, runs ``SELECT CURRENT_USER()``
and returns that value, or raises ``LoginError`` with the server's code, SQLSTATE and message.
Only host, port, user and password are given; ``tls_ca`` adds the client's usual options to
use TLS and verify myguard's certificate (and host name); ``no_tls`` the client's switch to
turn TLS off, for the clients that use TLS by default when the server offers it.

The mysql-connector C extension and the ``mariadb`` CLI run in a child process: the C
extension's bundled OpenSSL (3.2+) cannot load once Python's ``ssl`` has loaded the
system's OpenSSL 3.0 under the same soname, which a pytest process always has done by the
time a test runs; a child that imports ``_mysql_connector`` first gets the real C extension.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import secrets
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import aiomysql
import ldap3
import mysql.connector
import MySQLdb
import pymysql
import sqlalchemy
from mysql.connector import errors as connector_errors
from sqlalchemy import exc as sa_exc

from ldap_server import SlapdServer, group_dn, ssha, user_dn

CURRENT_USER = "SELECT CURRENT_USER()"


class LoginError(Exception):
    def __init__(self, code: int, sqlstate: str | None, message: str) -> None:
        super().__init__(code, sqlstate, message)
        self.code = code
        self.sqlstate = sqlstate
        self.message = message


@dataclass(frozen=True)
class Client:
    name: str
    # True when the client uses TLS on its own if the server offers it.
    tls_by_default: bool = False


CLIENTS = {
    c.name: c
    for c in (
        Client("pymysql", tls_by_default=True),
        Client("connector-pure", tls_by_default=True),
        Client("connector-cext", tls_by_default=True),
        Client("mysqlclient"),
        Client("aiomysql"),
        Client("mariadb-cli", tls_by_default=True),
        Client("sqlalchemy+pymysql", tls_by_default=True),
        Client("sqlalchemy+mysqldb"),
        Client("sqlalchemy+mysqlconnector", tls_by_default=True),
    )
}


def login(
    client: str,
    port: int,
    user: str,
    password: str,
    *,
    tls_ca: str | None = None,
    no_tls: bool = False,
) -> str:
    if no_tls and not CLIENTS[client].tls_by_default:
        raise ValueError(f"{client} does not use TLS unless asked: it has no switch to turn it off")
    return _LOGIN[client](port, user, password, tls_ca, no_tls)


def _pymysql(port: int, user: str, password: str, ca: str | None, no_tls: bool) -> str:
    options: dict[str, Any] = {"ssl_ca": ca, "ssl_verify_identity": True} if ca else {}
    if no_tls:
        options["ssl_disabled"] = True
    try:
        conn = pymysql.connect(host="127.0.0.1", port=port, user=user, password=password, **options)
    except pymysql.MySQLError as exc:
        raise _pymysql_error(exc) from None
    try:
        with conn.cursor() as cur:
            cur.execute(CURRENT_USER)
            return cur.fetchone()[0]
    finally:
        conn.close()


def _pymysql_error(exc: BaseException) -> LoginError:
    code, message = exc.args[0], exc.args[1] if len(exc.args) > 1 else ""
    return LoginError(code, None, message)


def _connector_pure(port: int, user: str, password: str, ca: str | None, no_tls: bool) -> str:
    options: dict[str, Any] = {}
    if ca:
        options.update(ssl_ca=ca, ssl_verify_cert=True, ssl_verify_identity=True)
    if no_tls:
        options["ssl_disabled"] = True
    try:
        conn = mysql.connector.connect(
            host="127.0.0.1", port=port, user=user, password=password, use_pure=True, **options
        )
    except connector_errors.Error as exc:
        raise LoginError(exc.errno, exc.sqlstate, exc.msg) from None
    try:
        assert type(conn).__name__ == "MySQLConnection", type(conn)
        cur = conn.cursor()
        cur.execute(CURRENT_USER)
        return cur.fetchone()[0]
    finally:
        conn.close()


_CEXT_CHILD = r"""
import json, sys
import _mysql_connector  # first: its OpenSSL must be the one loaded (see e2e_ldap)
import mysql.connector
from mysql.connector import errors
args = json.loads(sys.argv[1])
try:
    conn = mysql.connector.connect(use_pure=False, **args)
except errors.Error as exc:
    print(json.dumps({"error": [exc.errno, exc.sqlstate, exc.msg]}))
    sys.exit(0)
assert type(conn).__name__ == "CMySQLConnection", type(conn)
cur = conn.cursor()
cur.execute("SELECT CURRENT_USER()")
print(json.dumps({"user": cur.fetchone()[0]}))
conn.close()
"""


def _connector_cext(port: int, user: str, password: str, ca: str | None, no_tls: bool) -> str:
    args: dict[str, Any] = {"host": "127.0.0.1", "port": port, "user": user, "password": password}
    if ca:
        args.update(ssl_ca=ca, ssl_verify_cert=True, ssl_verify_identity=True)
    if no_tls:
        args["ssl_disabled"] = True
    done = subprocess.run(
        [sys.executable, "-c", _CEXT_CHILD, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        raise RuntimeError(f"connector C extension child failed:\n{done.stderr}")
    answer = json.loads(done.stdout)
    if "error" in answer:
        raise LoginError(*answer["error"])
    return answer["user"]


def _mysqlclient(port: int, user: str, password: str, ca: str | None, no_tls: bool) -> str:
    options: dict[str, Any] = {"ssl": {"ca": ca}, "ssl_mode": "VERIFY_IDENTITY"} if ca else {}
    try:
        conn = MySQLdb.connect(host="127.0.0.1", port=port, user=user, password=password, **options)
    except MySQLdb.MySQLError as exc:
        raise _pymysql_error(exc) from None
    try:
        cur = conn.cursor()
        cur.execute(CURRENT_USER)
        return cur.fetchone()[0]
    finally:
        conn.close()


def _aiomysql(port: int, user: str, password: str, ca: str | None, no_tls: bool) -> str:
    async def run() -> str:
        options: dict[str, Any] = {"ssl": ssl.create_default_context(cafile=ca)} if ca else {}
        conn = await aiomysql.connect(
            host="127.0.0.1", port=port, user=user, password=password, **options
        )
        try:
            async with conn.cursor() as cur:
                await cur.execute(CURRENT_USER)
                return (await cur.fetchone())[0]
        finally:
            await conn.ensure_closed()

    try:
        return asyncio.run(run())
    except pymysql.MySQLError as exc:
        raise _pymysql_error(exc) from None


_CLI_ERROR = re.compile(r"ERROR (\d+) \((\w+)\)(?: at line \d+)?: (.*)")


def _mariadb_cli(port: int, user: str, password: str, ca: str | None, no_tls: bool) -> str:
    args = [
        "mariadb",
        "--no-defaults",
        "-h127.0.0.1",
        f"-P{port}",
        f"-u{user}",
        f"--password={password}",
        "-N",
        "-B",
    ]
    if ca:
        args += ["--ssl", f"--ssl-ca={ca}", "--ssl-verify-server-cert"]
    if no_tls:
        args.append("--skip-ssl")
    done = subprocess.run(
        [*args, "-e", CURRENT_USER],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        match = _CLI_ERROR.search(done.stderr)
        if match is None:
            raise RuntimeError(f"mariadb CLI failed without a server error:\n{done.stderr}")
        raise LoginError(int(match[1]), match[2], match[3].strip())
    return done.stdout.strip()


def _sqlalchemy(dialect: str) -> Any:
    def connect(port: int, user: str, password: str, ca: str | None, no_tls: bool) -> str:
        url = sqlalchemy.URL.create(
            dialect, username=user, password=password, host="127.0.0.1", port=port
        )
        connect_args: dict[str, Any] = {}
        if ca and dialect == "mysql+mysqldb":
            connect_args.update(ssl={"ca": ca}, ssl_mode="VERIFY_IDENTITY")
        elif ca:
            connect_args.update(ssl_ca=ca, ssl_verify_identity=True)
        if no_tls:
            connect_args["ssl_disabled"] = True
        if dialect == "mysql+mysqlconnector":
            connect_args["use_pure"] = True
        engine = sqlalchemy.create_engine(
            url, connect_args=connect_args, poolclass=sqlalchemy.NullPool
        )
        try:
            with engine.connect() as conn:
                return conn.execute(sqlalchemy.text(CURRENT_USER)).scalar_one()
        except sa_exc.DBAPIError as exc:
            orig = exc.orig
            if isinstance(orig, connector_errors.Error):
                raise LoginError(orig.errno, orig.sqlstate, orig.msg) from None
            raise _pymysql_error(orig) from None
        finally:
            engine.dispose()

    return connect


_LOGIN = {
    "pymysql": _pymysql,
    "connector-pure": _connector_pure,
    "connector-cext": _connector_cext,
    "mysqlclient": _mysqlclient,
    "aiomysql": _aiomysql,
    "mariadb-cli": _mariadb_cli,
    "sqlalchemy+pymysql": _sqlalchemy("mysql+pymysql"),
    "sqlalchemy+mysqldb": _sqlalchemy("mysql+mysqldb"),
    "sqlalchemy+mysqlconnector": _sqlalchemy("mysql+mysqlconnector"),
}


# -- the proxy's log -------------------------------------------------------------------

_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def _fields(line: str) -> dict[str, str]:
    out = {}
    for key, raw in _FIELD.findall(line):
        if raw.startswith('"'):
            raw = raw[1:-1].replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
        out[key] = raw
    return out


def events(log: str, name: str, user: str | None = None) -> list[dict[str, str]]:
    """Every ``event=<name>`` line of the log (for ``user`` only, if given), as fields."""
    found = []
    for line in log.splitlines():
        if f" event={name} " not in line + " ":
            continue
        fields = _fields(line[line.index("event=") :])
        if fields.get("event") == name and (user is None or fields.get("user") == user):
            found.append(fields)
    return found


def wait_events(
    proxy: Any, name: str, user: str, count: int, timeout: float = 10.0
) -> list[dict[str, str]]:
    """The first ``count`` ``name`` events of ``user``.

    myguard logs ``event=login`` just after sending OK, so the client may be faster than
    the log line: wait for it (a missing line still fails, after ``timeout``).
    """
    deadline = time.monotonic() + timeout
    while True:
        found = events(proxy.log(), name, user)
        if len(found) >= count or time.monotonic() > deadline:
            assert len(found) >= count, (
                f"{len(found)} {name} events for {user}, expected {count}:\n{found}"
            )
            return found
        time.sleep(0.02)


# -- LDAP users ----------------------------------------------------------------------------

_counter = itertools.count()


def add_user(server: SlapdServer, prefix: str, groups: tuple[str, ...] = ()) -> tuple[str, str]:
    """A new LDAP user ``e2e-<prefix>-<n>`` in ``groups`` (groupOfNames); returns (uid, password)."""
    uid = f"e2e-{prefix}-{next(_counter)}"
    password = "pw-" + secrets.token_urlsafe(9)
    conn = server.admin()
    try:
        conn.add(
            user_dn(uid),
            ["inetOrgPerson", "posixAccount"],
            {
                "uid": uid,
                "cn": uid,
                "sn": uid,
                "userPassword": ssha(password),
                "uidNumber": str(30000 + int(uid.rsplit("-", 1)[1])),
                "gidNumber": "10000",
                "homeDirectory": f"/home/{uid}",
            },
        )
        if conn.result["result"] != 0:
            raise RuntimeError(f"cannot add {uid}: {conn.result}")
        for group in groups:
            conn.modify(group_dn(group), {"member": [(ldap3.MODIFY_ADD, [user_dn(uid)])]})
            if conn.result["result"] != 0:
                raise RuntimeError(f"cannot add {uid} to {group}: {conn.result}")
    finally:
        conn.unbind()
    return uid, password
