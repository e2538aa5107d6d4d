"""Screenshots of the console's pages for docs/, taken as the browser tests drive it:
headless Debian Chromium via Selenium, against a real myguard and MariaDB.

    .venv/bin/python scripts/console_screenshots.py [OUT_DIR]   (default: docs/)

Brings up a private MariaDB and myguard (production, the example rules, users file with
the demo users), makes some traffic (allowed, masked, blocked statements, and schema
changes held for approval), then signs in as alice (dba) and saves one PNG per page.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "console"))

from console_web import HeldCli, chromium_driver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from mariadb_server import MariaDBServer  # noqa: E402
from proxy_process import USERS, ProxyProcess  # noqa: E402


def run_sql(proxy: ProxyProcess, user: str, sql: str) -> None:
    subprocess.run(
        ["mariadb", "--no-defaults", "--protocol=TCP", "-h127.0.0.1", f"-P{proxy.port}",
         f"-u{user}", f"--password={USERS[user][0]}", "--skip-ssl", "shop", "-e", sql],
        capture_output=True, timeout=30,
    )  # fmt: skip


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="myguard-shots-") as tmp:
        db = MariaDBServer(Path(tmp) / "mariadb")
        db.start()
        db.seed()
        proxy = ProxyProcess(
            Path(tmp) / "myguard",
            db,
            environment="production",
            tables={"admin": {"audit_groups": ["dba"]}},
        )
        proxy.start()
        held: list[HeldCli] = []
        driver = chromium_driver(1400, 900)
        try:
            for sql in (
                "SELECT id, customer_id, quantity FROM orders WHERE id < 4",
                "SELECT name, email, ssn FROM customers",
                "SELECT COUNT(*) FROM orders",
            ):
                run_sql(proxy, "bob", sql)
            run_sql(proxy, "alice", "DROP TABLE orders")  # blocked in production
            run_sql(proxy, "alice", "SELECT * FROM customers WHERE id = 2")
            held.append(HeldCli(proxy.port, "carol", USERS["carol"][0],
                                "ALTER TABLE shop.orders ADD COLUMN note VARCHAR(200) "
                                "DEFAULT '<script>alert(1)</script>'"))  # fmt: skip
            time.sleep(0.5)
            held.append(HeldCli(proxy.port, "carol", USERS["carol"][0],
                                "CREATE INDEX orders_by_customer ON shop.orders (customer_id)"))  # fmt: skip
            base = f"http://127.0.0.1:{proxy.admin_port}"
            driver.get(f"{base}/console/login")
            driver.find_element(By.ID, "user").send_keys("alice")
            driver.save_screenshot(str(out / "console-signin.png"))
            driver.find_element(By.ID, "password").send_keys(USERS["alice"][0])
            driver.find_element(By.ID, "signin").click()
            WebDriverWait(driver, 10).until(ec.presence_of_element_located((By.ID, "who")))
            WebDriverWait(driver, 20).until(
                lambda d: len(d.find_elements(By.CSS_SELECTOR, "#approvals-table tr[id]")) >= 2
            )
            driver.save_screenshot(str(out / "console-approvals.png"))
            first = driver.find_elements(By.CSS_SELECTOR, "#approvals-table tr[id]")[-1]
            first.find_element(By.LINK_TEXT, "Decide").click()
            WebDriverWait(driver, 10).until(ec.presence_of_element_located((By.ID, "approve")))
            driver.find_element(By.ID, "reason").send_keys("checked with the owning team")
            driver.save_screenshot(str(out / "console-approval.png"))
            driver.get(f"{base}/console/sessions")
            driver.save_screenshot(str(out / "console-sessions.png"))
            driver.get(f"{base}/console/audit")
            time.sleep(1.5)  # the chain's verification runs on first view
            driver.get(f"{base}/console/audit")
            driver.save_screenshot(str(out / "console-audit.png"))
            link = driver.find_elements(By.LINK_TEXT, "full record")
            if link:
                link[-1].click()
                driver.save_screenshot(str(out / "console-audit-record.png"))
        finally:
            driver.quit()
            for cli in held:
                cli.stop()
            proxy.stop()
            db.stop()
    print(f"screenshots in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
