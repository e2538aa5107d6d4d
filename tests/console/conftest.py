"""A myguard with LDAP sign-in (private slapd) in front of the shared MariaDB, production
environment and the example rules: carol's schema changes wait for a dba's approval."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from console_web import console_proxy_process  # noqa: E402

from ldap_server import BIND_PASSWORD_ENV, SERVICE_PW, SlapdServer  # noqa: E402
from mariadb_server import MariaDBServer  # noqa: E402
from proxy_process import ProxyProcess  # noqa: E402


@pytest.fixture(scope="module")
def slapd() -> Iterator[SlapdServer]:
    server = SlapdServer(tls=False)
    saved = os.environ.get(BIND_PASSWORD_ENV)
    os.environ[BIND_PASSWORD_ENV] = SERVICE_PW
    try:
        server.start()
        yield server
    finally:
        server.cleanup()
        if saved is None:
            os.environ.pop(BIND_PASSWORD_ENV, None)
        else:
            os.environ[BIND_PASSWORD_ENV] = saved


@pytest.fixture(scope="module")
def console_proxy(
    mariadb: MariaDBServer, slapd: SlapdServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    proxy = console_proxy_process(tmp_path_factory.mktemp("console"), mariadb, slapd)
    proxy.start()
    yield proxy
    proxy.stop()
