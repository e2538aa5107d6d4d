"""Protocol constants, named as in the MySQL and MariaDB protocol documentation."""

from __future__ import annotations

from enum import IntEnum

MAX_PACKET_PAYLOAD = 0xFFFFFF  # a payload this long continues in the next packet
PROTOCOL_VERSION = 10


class Capability:
    """Capability flags as plain ints: flag arithmetic on every login stays int arithmetic
    (IntFlag builds a new enum member for each ``&`` and ``|``)."""

    CLIENT_LONG_PASSWORD = 1 << 0  # MariaDB calls this CLIENT_MYSQL
    CLIENT_FOUND_ROWS = 1 << 1
    CLIENT_LONG_FLAG = 1 << 2
    CLIENT_CONNECT_WITH_DB = 1 << 3
    CLIENT_NO_SCHEMA = 1 << 4
    CLIENT_COMPRESS = 1 << 5
    CLIENT_ODBC = 1 << 6
    CLIENT_LOCAL_FILES = 1 << 7
    CLIENT_IGNORE_SPACE = 1 << 8
    CLIENT_PROTOCOL_41 = 1 << 9
    CLIENT_INTERACTIVE = 1 << 10
    CLIENT_SSL = 1 << 11
    CLIENT_IGNORE_SIGPIPE = 1 << 12
    CLIENT_TRANSACTIONS = 1 << 13
    CLIENT_RESERVED = 1 << 14
    CLIENT_SECURE_CONNECTION = 1 << 15
    CLIENT_MULTI_STATEMENTS = 1 << 16
    CLIENT_MULTI_RESULTS = 1 << 17
    CLIENT_PS_MULTI_RESULTS = 1 << 18
    CLIENT_PLUGIN_AUTH = 1 << 19
    CLIENT_CONNECT_ATTRS = 1 << 20
    CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA = 1 << 21
    CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS = 1 << 22
    CLIENT_SESSION_TRACK = 1 << 23
    CLIENT_DEPRECATE_EOF = 1 << 24
    CLIENT_OPTIONAL_RESULTSET_METADATA = 1 << 25
    CLIENT_QUERY_ATTRIBUTES = 1 << 27
    CLIENT_SSL_VERIFY_SERVER_CERT = 1 << 30
    CLIENT_REMEMBER_OPTIONS = 1 << 31
    # MariaDB's extended capabilities, as bits 32-63: a MariaDB server without
    # CLIENT_MYSQL (bit 0) sends them, and a client answering such a server sends its own,
    # in the last 4 bytes of the greeting's and the handshake response's reserved filler.
    MARIADB_CLIENT_EXTENDED_METADATA = 1 << 35


# What myguard offers clients. Query attributes and optional result-set metadata are not
# implemented, so they are never advertised; compression is myguard's own, on the client's
# leg only (net/compression_layer.py; backends are asked without it); CLIENT_LOCAL_FILES is added
# per backend when LOAD DATA LOCAL is allowed; CLIENT_SSL when TLS is configured.
# CLIENT_NO_SCHEMA is never passed on: with it the server ignores database qualifiers
# (other_db.customers reads the current database's customers), which analysis and masking
# read as written. Extended column metadata is relayed, and offered only when the
# backend offers it (like the other result-format capabilities).
PROXY_CAPABILITIES = (
    Capability.CLIENT_LONG_PASSWORD
    | Capability.CLIENT_FOUND_ROWS
    | Capability.CLIENT_LONG_FLAG
    | Capability.CLIENT_CONNECT_WITH_DB
    | Capability.CLIENT_ODBC
    | Capability.CLIENT_IGNORE_SPACE
    | Capability.CLIENT_PROTOCOL_41
    | Capability.CLIENT_INTERACTIVE
    | Capability.CLIENT_IGNORE_SIGPIPE
    | Capability.CLIENT_TRANSACTIONS
    | Capability.CLIENT_RESERVED
    | Capability.CLIENT_SECURE_CONNECTION
    | Capability.CLIENT_MULTI_STATEMENTS
    | Capability.CLIENT_COMPRESS
    | Capability.CLIENT_MULTI_RESULTS
    | Capability.CLIENT_PS_MULTI_RESULTS
    | Capability.CLIENT_PLUGIN_AUTH
    | Capability.CLIENT_CONNECT_ATTRS
    | Capability.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
    | Capability.CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS
    | Capability.CLIENT_SESSION_TRACK
    | Capability.CLIENT_DEPRECATE_EOF
    | Capability.CLIENT_REMEMBER_OPTIONS
    | Capability.MARIADB_CLIENT_EXTENDED_METADATA
)


class ServerStatus:
    """Status flags as plain ints, for the same reason as Capability."""

    SERVER_STATUS_IN_TRANS = 0x0001
    SERVER_STATUS_AUTOCOMMIT = 0x0002
    SERVER_MORE_RESULTS_EXISTS = 0x0008
    SERVER_STATUS_NO_GOOD_INDEX_USED = 0x0010
    SERVER_STATUS_NO_INDEX_USED = 0x0020
    SERVER_STATUS_CURSOR_EXISTS = 0x0040
    SERVER_STATUS_LAST_ROW_SENT = 0x0080
    SERVER_STATUS_DB_DROPPED = 0x0100
    SERVER_STATUS_NO_BACKSLASH_ESCAPES = 0x0200
    SERVER_STATUS_METADATA_CHANGED = 0x0400
    SERVER_QUERY_WAS_SLOW = 0x0800
    SERVER_PS_OUT_PARAMS = 0x1000
    SERVER_STATUS_IN_TRANS_READONLY = 0x2000
    SERVER_SESSION_STATE_CHANGED = 0x4000
    # The flags that describe the session rather than its last statement (index use,
    # cursor, last row, slow query...): what an OK to a SET carries.
    SESSION_FLAGS = 0x0001 | 0x0002 | 0x0200 | 0x2000


class Command(IntEnum):
    COM_SLEEP = 0x00
    COM_QUIT = 0x01
    COM_INIT_DB = 0x02
    COM_QUERY = 0x03
    COM_FIELD_LIST = 0x04
    COM_CREATE_DB = 0x05
    COM_DROP_DB = 0x06
    COM_REFRESH = 0x07
    COM_SHUTDOWN = 0x08
    COM_STATISTICS = 0x09
    COM_PROCESS_INFO = 0x0A
    COM_CONNECT = 0x0B
    COM_PROCESS_KILL = 0x0C
    COM_DEBUG = 0x0D
    COM_PING = 0x0E
    COM_TIME = 0x0F
    COM_DELAYED_INSERT = 0x10
    COM_CHANGE_USER = 0x11
    COM_BINLOG_DUMP = 0x12
    COM_TABLE_DUMP = 0x13
    COM_CONNECT_OUT = 0x14
    COM_REGISTER_SLAVE = 0x15
    COM_STMT_PREPARE = 0x16
    COM_STMT_EXECUTE = 0x17
    COM_STMT_SEND_LONG_DATA = 0x18
    COM_STMT_CLOSE = 0x19
    COM_STMT_RESET = 0x1A
    COM_SET_OPTION = 0x1B
    COM_STMT_FETCH = 0x1C
    COM_DAEMON = 0x1D
    COM_BINLOG_DUMP_GTID = 0x1E
    COM_RESET_CONNECTION = 0x1F


# First byte of a response packet.
OK_HEADER = 0x00
EOF_HEADER = 0xFE
ERR_HEADER = 0xFF
LOCAL_INFILE_HEADER = 0xFB

# Auth exchange markers.
AUTH_SWITCH_REQUEST = 0xFE
AUTH_MORE_DATA = 0x01
CACHING_SHA2_REQUEST_PUBLIC_KEY = 0x02
CACHING_SHA2_FAST_AUTH_SUCCESS = 0x03
CACHING_SHA2_PERFORM_FULL_AUTH = 0x04

UTF8MB4_GENERAL_CI = 45
