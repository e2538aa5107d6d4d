"""A myguard with LDAP identities for the masking end-to-end tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pymysql

from ldap_server import BIND_PASSWORD_ENV, SERVICE_PW, USERS, SlapdServer, search_table
from mariadb_server import MariaDBServer
from proxy_process import ProxyProcess

BOB = ("bob", USERS["bob"][0])  # group analysts: masked


@contextmanager
def ldap_masking_proxy(mariadb: MariaDBServer, base: Path) -> Iterator[ProxyProcess]:
    """A myguard with LDAP identities (bob is in analysts) in front of ``mariadb``, with
    ``masking.unknown_lineage = "refuse"``; bob has logged in once (his verifier is cached)."""
    saved = os.environ.get(BIND_PASSWORD_ENV)
    os.environ[BIND_PASSWORD_ENV] = SERVICE_PW
    slapd = SlapdServer(tls=False)
    try:
        slapd.start()
        proxy = ProxyProcess(
            base,
            mariadb,
            identity={"source": "ldap", "max_failures": 10_000, "ldap": search_table(slapd)},
            tables={"masking": {"unknown_lineage": "refuse"}},
        )
        proxy.start()
        # The first LDAP login is a full authentication (PyMySQL answers the RSA exchange);
        # after it, the raw client's mysql_native_password login is checked from the cache.
        pymysql.connect(host="127.0.0.1", port=proxy.port, user=BOB[0], password=BOB[1]).close()
        yield proxy
        proxy.stop()
    finally:
        slapd.cleanup()
        if saved is None:
            os.environ.pop(BIND_PASSWORD_ENV, None)
        else:
            os.environ[BIND_PASSWORD_ENV] = saved
