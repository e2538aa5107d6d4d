"""A private OpenLDAP slapd for tests: own config, own database, own ports, own TLS CA.

It never touches the system instance. ``stop()``/``start()`` keep the same ports and
database so a test can take LDAP away mid-run and bring it back.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import ldap3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SLAPD = "/usr/sbin/slapd"
SLAPTEST = "/usr/sbin/slaptest"
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")

SUFFIX = "dc=example,dc=org"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "admin-secret"
SERVICE_DN = f"cn=reader,{SUFFIX}"
SERVICE_PW = "reader-secret"
# The environment variable the [identity.ldap] tables below name for the service password.
BIND_PASSWORD_ENV = "MYGUARD_TEST_LDAP_BIND_PW"

# uid -> (password, extra attributes); dave is the disabled account.
USERS: dict[str, tuple[str, dict[str, str]]] = {
    "alice": ("alice-pw", {"mail": "alice@example.org", "displayName": "Alice DBA"}),
    "bob": ("bob-pw", {"mail": "bob@example.org"}),
    "bot-reporter": ("bot-pw", {"description": "service identity of the reporting AI agent"}),
    "carol": ("carol-pw", {}),
    "dave": ("dave-pw", {"employeeType": "disabled"}),
}

# cn -> (objectClass, members); members are uids, or "group:<cn>" for a nested group.
GROUP_SEED: dict[str, tuple[str, list[str]]] = {
    "dba": ("groupOfNames", ["alice"]),
    "analysts": ("groupOfNames", ["bob", "bot-reporter"]),
    "ai-agents": ("groupOfNames", ["bot-reporter"]),
    "developers": ("posixGroup", ["alice"]),
    "auditors": ("groupOfUniqueNames", ["bob"]),
    "data-platform": ("groupOfNames", ["group:dba"]),
}

_MEMBER_ATTR = {
    "groupOfNames": "member",
    "groupOfUniqueNames": "uniqueMember",
    "posixGroup": "memberUid",
}


def user_dn(uid: str) -> str:
    return f"uid={uid},{PEOPLE}"


def group_dn(cn: str) -> str:
    return f"cn={cn},{GROUPS}"


def ssha(password: str) -> str:
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


class SlapdExited(RuntimeError):
    """slapd ended before it answered."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TestCA:
    """A throwaway CA and a server certificate for 127.0.0.1."""

    def __init__(self, directory: Path, name: str = "myguard test CA") -> None:
        self.ca_file = directory / f"{name.replace(' ', '-')}.pem"
        self.cert_file = directory / "server-cert.pem"
        self.key_file = directory / "server-key.pem"
        now = datetime.datetime.now(datetime.UTC)
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self._ca_name = ca_name
        self._ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(self._ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .sign(self._ca_key, hashes.SHA256())
        )
        self.ca_file.write_bytes(self._ca_cert.public_bytes(serialization.Encoding.PEM))

    def issue_server_cert(self) -> None:
        now = datetime.datetime.now(datetime.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        # Only the IP: "localhost" reaches the server too but must fail verification.
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(self._ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(san, critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self._ca_key, hashes.SHA256())
        )
        self.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


class SlapdServer:
    """One private slapd. Use ``with SlapdServer() as server:`` or start()/stop()/cleanup()."""

    def __init__(self, *, tls: bool = True, directory: Path | None = None) -> None:
        for tool in (SLAPD, SLAPTEST):
            if not os.access(tool, os.X_OK):
                raise RuntimeError(f"{tool} not found: install the Debian 'slapd' package")
        self._owns_dir = directory is None
        self.dir = Path(directory or tempfile.mkdtemp(prefix="myguard-slapd-"))
        (self.dir / "db").mkdir(exist_ok=True)
        self.port = free_port()
        self.tls = tls
        self.tls_port = free_port() if tls else None
        self.ca: TestCA | None = None
        self.wrong_ca_file: Path | None = None
        if tls:
            self.ca = TestCA(self.dir)
            self.ca.issue_server_cert()
            self.wrong_ca_file = TestCA(self.dir, "unrelated CA").ca_file
        self.conf = self.dir / "slapd.conf"
        self.conf.write_text(self._config())
        self.log_file = self.dir / "slapd.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._seeded = False
        self._check_config()

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        if self.tls_port is None:
            raise RuntimeError("this server was started without TLS")
        return f"ldaps://127.0.0.1:{self.tls_port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _config(self) -> str:
        schemas = "\n".join(
            f"include {SCHEMA_DIR / name}.schema"
            for name in ("core", "cosine", "inetorgperson", "nis")
        )
        tls = ""
        if self.ca is not None:
            tls = (
                f"TLSCACertificateFile {self.ca.ca_file}\n"
                f"TLSCertificateFile {self.ca.cert_file}\n"
                f"TLSCertificateKeyFile {self.ca.key_file}\n"
            )
        # Anonymous clients may only bind; reading needs an authenticated identity,
        # so search-then-bind really depends on the service account. bind_anon_dn makes
        # "DN + empty password" succeed as anonymous, as many servers do, so the test of
        # the explicit empty-password refusal is meaningful.
        return f"""{schemas}
allow bind_anon_dn
modulepath {MODULE_DIR}
moduleload back_mdb
moduleload memberof
pidfile {self.dir}/slapd.pid
argsfile {self.dir}/slapd.args
{tls}
database mdb
maxsize 16777216
suffix "{SUFFIX}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PW}
directory {self.dir}/db
overlay memberof
access to attrs=userPassword
    by self write
    by anonymous auth
    by * none
access to *
    by users read
    by * none
"""

    def _check_config(self) -> None:
        result = subprocess.run(
            [SLAPTEST, "-u", "-f", str(self.conf)], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"slaptest rejected {self.conf}:\n{result.stdout}{result.stderr}")

    def start(self, timeout: float = 10.0) -> None:
        if self.running:
            return
        for attempt in range(3):
            self._spawn()
            try:
                self._wait_ready(timeout)
                break
            except SlapdExited:
                if self._seeded or attempt == 2:
                    raise
                # Another process took a port between free_port() and slapd's bind (seen
                # once in CI, with nothing in the log): nobody knows these ports yet.
                self.port = free_port()
                if self.tls_port is not None:
                    self.tls_port = free_port()
        if not self._seeded:
            self._seed()
            self._seeded = True

    def _spawn(self) -> None:
        listeners = self.url + "/"
        if self.tls_port is not None:
            listeners += f" {self.ldaps_url}/"
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                [SLAPD, "-f", str(self.conf), "-h", listeners, "-d", "0"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                code, self._proc = self._proc.returncode, None
                raise SlapdExited(f"slapd exited with {code}:\n{self.log()}")
            try:
                self.admin().unbind()
                return
            except ldap3.core.exceptions.LDAPException:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"slapd did not answer within {timeout}s:\n{self.log()}"
                    ) from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def cleanup(self) -> None:
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> SlapdServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def admin(self) -> ldap3.Connection:
        server = ldap3.Server(self.url, connect_timeout=2)
        return ldap3.Connection(
            server, ROOT_DN, ROOT_PW, auto_bind=True, receive_timeout=5, raise_exceptions=True
        )

    def _seed(self) -> None:
        conn = self.admin()
        try:
            conn.add(SUFFIX, ["dcObject", "organization"], {"dc": "example", "o": "Example"})
            conn.add(PEOPLE, ["organizationalUnit"], {"ou": "people"})
            conn.add(GROUPS, ["organizationalUnit"], {"ou": "groups"})
            conn.add(
                SERVICE_DN,
                ["organizationalRole", "simpleSecurityObject"],
                {"cn": "reader", "userPassword": ssha(SERVICE_PW)},
            )
            for number, (uid, (password, extra)) in enumerate(USERS.items()):
                attrs = {
                    "uid": uid,
                    "cn": uid,
                    "sn": uid,
                    "userPassword": ssha(password),
                    "uidNumber": str(10000 + number),
                    "gidNumber": "10000",
                    "homeDirectory": f"/home/{uid}",
                    **extra,
                }
                conn.add(user_dn(uid), ["inetOrgPerson", "posixAccount"], attrs)
            for number, (cn, (object_class, members)) in enumerate(GROUP_SEED.items()):
                attrs = {
                    "cn": cn,
                    _MEMBER_ATTR[object_class]: [
                        self._member_value(object_class, m) for m in members
                    ],
                }
                if object_class == "posixGroup":
                    attrs["gidNumber"] = str(20000 + number)
                conn.add(group_dn(cn), [object_class], attrs)
        finally:
            conn.unbind()

    @staticmethod
    def _member_value(object_class: str, member: str) -> str:
        if member.startswith("group:"):
            return group_dn(member.removeprefix("group:"))
        return member if object_class == "posixGroup" else user_dn(member)

    def _group_class(self, conn: ldap3.Connection, group: str) -> str:
        conn.search(group_dn(group), "(objectClass=*)", ldap3.BASE, attributes=["objectClass"])
        classes = {str(c) for c in conn.entries[0].objectClass.values}
        return next(c for c in _MEMBER_ATTR if c in classes)

    def _modify_membership(self, uid: str, group: str, operation: str) -> None:
        conn = self.admin()
        try:
            object_class = self._group_class(conn, group)
            value = self._member_value(object_class, uid)
            conn.modify(group_dn(group), {_MEMBER_ATTR[object_class]: [(operation, [value])]})
        finally:
            conn.unbind()

    def add_to_group(self, uid: str, group: str) -> None:
        self._modify_membership(uid, group, ldap3.MODIFY_ADD)

    def remove_from_group(self, uid: str, group: str) -> None:
        self._modify_membership(uid, group, ldap3.MODIFY_DELETE)

    def set_password(self, uid: str, password: str) -> None:
        conn = self.admin()
        try:
            conn.modify(user_dn(uid), {"userPassword": [(ldap3.MODIFY_REPLACE, [ssha(password)])]})
        finally:
            conn.unbind()

    def set_attribute(self, uid: str, name: str, values: list[str]) -> None:
        conn = self.admin()
        try:
            conn.modify(user_dn(uid), {name: [(ldap3.MODIFY_REPLACE, values)]})
        finally:
            conn.unbind()


def search_table(server: SlapdServer, **overrides: object) -> dict:
    """A search-then-bind ``[identity.ldap]`` table for ``server`` (password from env)."""
    table = {
        "urls": [server.url],
        "tls": "none",
        "bind_dn": SERVICE_DN,
        "bind_password_env": BIND_PASSWORD_ENV,
        "base_dn": PEOPLE,
        "group_base_dn": GROUPS,
        "disabled_filter": "(employeeType=disabled)",
        "timeout": 2,
    }
    table.update(overrides)
    return table


def direct_table(server: SlapdServer, **overrides: object) -> dict:
    """A direct-bind ``[identity.ldap]`` table for ``server`` (no service account)."""
    table = {
        "urls": [server.url],
        "tls": "none",
        "user_dn_template": f"uid={{user}},{PEOPLE}",
        "group_base_dn": GROUPS,
        "disabled_filter": "(employeeType=disabled)",
        "timeout": 2,
    }
    table.update(overrides)
    return table
