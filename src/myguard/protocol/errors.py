"""MySQL error codes and SQLSTATEs myguard sends, and the exception that carries them."""

from __future__ import annotations

# Server error codes, as in the MySQL/MariaDB error reference.
ER_CON_COUNT_ERROR = 1040
ER_DBACCESS_DENIED_ERROR = 1044
ER_HANDSHAKE_ERROR = 1043
ER_ACCESS_DENIED_ERROR = 1045
ER_UNKNOWN_COM_ERROR = 1047
ER_BAD_DB_ERROR = 1049
ER_SERVER_SHUTDOWN = 1053
ER_NET_PACKET_TOO_LARGE = 1153
ER_NET_READ_ERROR = 1158
ER_NET_PACKETS_OUT_OF_ORDER = 1156
ER_NET_READ_INTERRUPTED = 1159
ER_NO_SUCH_THREAD = 1094
ER_KILL_DENIED_ERROR = 1095
ER_NOT_SUPPORTED_AUTH_MODE = 1251
ER_NOT_ALLOWED_COMMAND = 1148
ER_SET_CONSTANTS_ONLY = 1204
ER_SPECIFIC_ACCESS_DENIED_ERROR = 1227
ER_SECURE_TRANSPORT_REQUIRED = 3159
ER_QUERY_INTERRUPTED = 1317
ER_CONNECTION_KILLED = 1927
ER_TARGET_NOT_EXPLAINABLE = 1933
# Client-library codes reused for "backend cannot be reached/lost".
CR_CONN_HOST_ERROR = 2003
CR_SERVER_LOST = 2013

# myguard's own codes live in the user-defined range; policy and approvals add theirs.
ER_MYGUARD_BACKEND_UNAVAILABLE = 4690
ER_MYGUARD_IDENTITY_UNAVAILABLE = 4691
ER_MYGUARD_INTERNAL = 4692


class MySQLError(Exception):
    """An error to report to a client as an ERR packet."""

    def __init__(self, code: int, sqlstate: str, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.sqlstate = sqlstate
        self.message = message
        # fatal: the connection closes after the ERR packet is sent.
        self.fatal = fatal

    def __repr__(self) -> str:
        return f"MySQLError({self.code}, {self.sqlstate!r}, {self.message!r})"


class ProtocolError(MySQLError):
    """The peer broke the protocol; the connection cannot continue."""

    def __init__(self, message: str, code: int = ER_HANDSHAKE_ERROR) -> None:
        super().__init__(code, "08S01", message, fatal=True)


def access_denied(user: str, host: str, using_password: bool) -> MySQLError:
    """The one message every failed login gets, whatever the reason."""
    yes_no = "YES" if using_password else "NO"
    return MySQLError(
        ER_ACCESS_DENIED_ERROR,
        "28000",
        f"Access denied for user '{user}'@'{host}' (using password: {yes_no})",
        fatal=True,
    )
