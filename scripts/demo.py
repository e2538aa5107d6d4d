"""Bring up the demo: a private MariaDB with the sample shop database and myguard in front.

Everything lives in ./demo-run (data, config, logs). Run again: it reuses what exists.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from mariadb_server import MariaDBServer  # noqa: E402
from proxy_process import USERS, ProxyProcess  # noqa: E402

RUN = ROOT / "demo-run"
DB_PORT = int(os.environ.get("MYGUARD_DEMO_DB_PORT", "33306"))


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
    proxy = ProxyProcess(RUN / "myguard", db)
    proxy.start()
    pidfile.write_text(f"{db.proc.pid} {proxy.proc.pid}\n")
    alice_pw = USERS["alice"][0]
    print(
        f"""
myguard is running in front of a private MariaDB (sample database `shop`).

  Connect as alice (group dba):
    mariadb -h 127.0.0.1 -P {proxy.port} -u alice -p{alice_pw} shop
  Other demo users: bob / {USERS['bob'][0]} (analysts), carol / {USERS['carol'][0]} (no group)
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
