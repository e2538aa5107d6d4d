"""Bring up the demo: a private MariaDB with the sample shop database and myguard in front.

Everything lives in ./demo-run (data, config, logs). Run again: it reuses what exists.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from mariadb_server import MariaDBServer, free_port  # noqa: E402
from proxy_process import USERS, ProxyProcess  # noqa: E402

RUN = ROOT / "demo-run"
DB_PORT = int(os.environ.get("MYGUARD_DEMO_DB_PORT", "33306"))
PROXY_PORT = int(os.environ.get("MYGUARD_DEMO_PORT", "3307"))
ADMIN_PORT = int(os.environ.get("MYGUARD_DEMO_ADMIN_PORT", "9106"))


def port_or_free(port: int) -> int:
    """The wanted port when nothing listens there, else any free one."""
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
    except OSError:
        return port
    return free_port()


def main() -> int:
    RUN.mkdir(exist_ok=True)
    db = MariaDBServer(RUN / "mariadb", port=DB_PORT)
    pidfile = RUN / "pids"
    if pidfile.exists():
        for pid in pidfile.read_text().split():
            try:
                os.kill(int(pid), signal.SIGTERM)
            except (ProcessLookupError, ValueError):
                pass
        time.sleep(1)
    db.start()
    db.seed()
    proxy = ProxyProcess(
        RUN / "myguard",
        db,
        port=port_or_free(PROXY_PORT),
        admin_port=port_or_free(ADMIN_PORT),
        environment="production",
        workers=2,
        tables={"admin": {"audit_groups": ["dba"]}},
    )
    proxy.start()
    pidfile.write_text(f"{db.proc.pid} {proxy.proc.pid}\n")
    alice_pw = USERS["alice"][0]
    print(
        f"""
myguard is running in front of a private MariaDB (sample database `shop`).

  Connect as alice (group dba):
    mariadb -h 127.0.0.1 -P {proxy.port} -u alice -p{alice_pw} shop
  Other demo users: bob / {USERS["bob"][0]} (analysts: PII masked), carol / {USERS["carol"][0]}
  (no group: schema changes wait for a dba's approval), bot / {USERS["bot"][0]} (ai-agents: read-only)

  Things to try (environment "production", rules in conf/rules.toml):
    as alice:  DROP TABLE orders;                    -- blocked by rule 'no-drop-in-production'
    as bob:    SELECT name, email, ssn FROM customers; -- masked
    as carol:  CREATE TABLE t (id INT);              -- held; as alice: MYGUARD APPROVALS; MYGUARD APPROVE <id>;
  Web console: http://127.0.0.1:{proxy.admin_port}/console/
    sign in as alice / {alice_pw} (dba: decides approvals, sees every session and the
    whole audit trail), bob / {USERS["bob"][0]} or carol / {USERS["carol"][0]} (their own requests,
    sessions and records)
  Audit:    .venv/bin/myguard audit tail -f {proxy.audit_dir}
  TLS:      add --ssl (self-signed certificate in {proxy.cert})
  Metrics:  curl http://127.0.0.1:{proxy.admin_port}/metrics
  Config:   {proxy.config_file}
  Logs:     {proxy.log_file}
  Stop:     kill $(cat {pidfile})
"""
    )
    # Leave both servers running after this script exits.
    db.proc = None
    proxy.proc = None
    return 0


if __name__ == "__main__":
    sys.exit(main())
