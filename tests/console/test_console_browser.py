"""The console in a real browser (headless Debian Chromium via Selenium) against a real
myguard, MariaDB and slapd: an approver sees a held statement arrive without reloading
and releases it; a non-approver gets no button and a forged POST is refused; statement
text is shown as text."""

from __future__ import annotations

import pytest
from console_web import ALICE, BOB, CAROL, HeldCli, chromium_driver, wait_for
from selenium.common.exceptions import (
    ElementNotInteractableException,
    StaleElementReferenceException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait


@pytest.fixture(scope="module")
def browser():
    driver = chromium_driver()
    try:
        yield driver
    finally:
        driver.quit()


def sign_in(browser, proxy, who):
    base = f"http://127.0.0.1:{proxy.admin_port}"
    browser.delete_all_cookies()
    browser.get(f"{base}/console/approvals")
    # Not signed in: the page sends the browser to the sign-in form.
    WebDriverWait(browser, 10).until(ec.url_contains("/console/login"))
    browser.find_element(By.ID, "user").send_keys(who[0])
    browser.find_element(By.ID, "password").send_keys(who[1])
    browser.find_element(By.ID, "signin").click()
    WebDriverWait(browser, 10).until(ec.presence_of_element_located((By.ID, "who")))
    assert browser.current_url == f"{base}/console/approvals"
    assert browser.find_element(By.ID, "who").text.startswith(who[0])
    return base


def text_when(browser, element_id, accept, timeout=10):
    """Wait until the element's text satisfies `accept`. The page swaps its decision panel in place
    when the queue changes, so an element found a moment ago may already be replaced."""
    WebDriverWait(browser, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda b: accept(b.find_element(By.ID, element_id).text)
    )


def type_into(browser, element_id, text, timeout=10):
    """Type into a field of the decision panel, which the page may swap in place (or not yet
    have laid out) at the moment it is found: a flake seen once in CI."""

    def typed(b):
        try:
            field = b.find_element(By.ID, element_id)
            field.clear()
            field.send_keys(text)
            return field.get_attribute("value") == text
        except (StaleElementReferenceException, ElementNotInteractableException):
            return False

    WebDriverWait(browser, timeout).until(typed)


def queue_row(browser, needle, timeout=20):
    """(request id, text, has a Decide link) of the queue row whose text holds `needle`,
    read in one go: the live queue replaces its rows whenever a request comes or goes."""

    def look(b):
        for r in b.find_elements(By.CSS_SELECTOR, "#approvals-table tbody tr"):
            text = r.text
            if needle in text:
                request_id = int(r.get_attribute("id").split("-")[1])
                return request_id, text, bool(r.find_elements(By.LINK_TEXT, "Decide"))
        return None

    return WebDriverWait(
        browser, timeout, ignored_exceptions=(StaleElementReferenceException,)
    ).until(look)


def live_and_watching(browser):
    """The page's event stream is open (the marker says live, not polling)."""
    WebDriverWait(browser, 10).until(
        lambda b: (
            b.find_element(By.ID, "live").text == "live"
            and b.execute_script("return document.readyState") == "complete"
        )
    )


def test_alice_sees_carols_ddl_arrive_and_approves_it(browser, console_proxy, mariadb):
    mariadb.sql("DROP TABLE IF EXISTS test.console_browser_t")
    base = sign_in(browser, console_proxy, ALICE)
    live_and_watching(browser)
    browser.execute_script("window.__notReloaded = true")
    cli = HeldCli(console_proxy.port, *CAROL, "CREATE TABLE console_browser_t (id INT)")
    try:
        # The row appears in the open page: no reload (the marker set above survives).
        request_id, text, can_decide = queue_row(browser, "console_browser_t")
        assert "carol" in text and "approve-production-ddl" in text and can_decide
        assert browser.execute_script("return window.__notReloaded === true")
        assert cli.proc.poll() is None  # carol is still waiting
        WebDriverWait(browser, 10, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda b: (
                b.find_element(By.ID, f"request-{request_id}")
                .find_element(By.LINK_TEXT, "Decide")
                .click()
                or True
            )
        )
        WebDriverWait(browser, 10).until(ec.presence_of_element_located((By.ID, "approve")))
        statement = browser.find_element(By.ID, "statement")
        assert statement.text == "CREATE TABLE console_browser_t (id INT)"
        assert statement.find_elements(By.CSS_SELECTOR, "span.sql-k")  # highlighted
        type_into(browser, "reason", "schema change reviewed")
        browser.find_element(By.ID, "approve").click()
        WebDriverWait(browser, 10).until(ec.presence_of_element_located((By.ID, "done")))
        # carol's statement ran at once: the page shows it approved (or already executed).
        text_when(browser, "status", lambda t: t in ("approved", "executed"))
        text_when(
            browser, "history", lambda t: "approved by alice" in t and "schema change reviewed" in t
        )
        code, out, err = cli.result(30)
        assert code == 0, err
    finally:
        cli.stop()
    tables = mariadb.sql("SHOW TABLES FROM test LIKE 'console_browser_t'")
    assert tables.strip() == "console_browser_t"
    # The page's decision is in the trail like any other: approval by alice, with reason.
    browser.get(f"{base}/console/audit?type=approval&user=carol")
    text = browser.find_element(By.ID, "audit-table").text
    assert "approved" in text and "by alice" in text and "schema change reviewed" in text
    mariadb.sql("DROP TABLE IF EXISTS test.console_browser_t")


def test_bob_gets_no_button_and_a_forged_post_is_refused(browser, console_proxy, mariadb):
    mariadb.sql("DROP TABLE IF EXISTS test.console_bob_t")
    carol_cli = HeldCli(console_proxy.port, *CAROL, "CREATE TABLE console_bob_t (id INT)")
    bob_cli = HeldCli(console_proxy.port, *BOB, "CREATE TABLE console_bob_t2 (id INT)")
    try:
        base = sign_in(browser, console_proxy, BOB)
        # bob sees his own held request, and no way to decide it.
        own_id, _, can_decide = queue_row(browser, "console_bob_t2")
        assert "console_bob_t " not in browser.page_source  # carol's is not his to see
        assert not can_decide
        browser.get(f"{base}/console/approvals/{own_id}")
        assert not browser.find_elements(By.ID, "approve")
        assert not browser.find_elements(By.ID, "deny")
        text_when(browser, "cannot-decide", lambda t: "This is your request" in t)
        # A forged POST from bob's own signed-in page, with his valid CSRF token.
        (carol_id,) = wait_for(lambda: _pending_for(console_proxy, "carol"), what="carol's request")
        forged = """
            const csrf = document.querySelector('input[name=csrf]').value;
            const send = (path) => fetch(path, {method: 'POST', credentials: 'same-origin',
                body: new URLSearchParams({csrf: csrf, reason: 'forged'})}).then(r => r.status);
            return Promise.all([send(arguments[0]), send(arguments[1])]);
        """
        statuses = browser.execute_script(
            forged, f"/console/approvals/{carol_id}/approve", f"/console/approvals/{own_id}/approve"
        )
        assert statuses == [404, 403]
        # Without the token (what another site's page could send): refused too.
        status = browser.execute_script(
            "return fetch(arguments[0], {method: 'POST', body: 'reason=x',"
            " headers: {'Content-Type': 'application/x-www-form-urlencoded'}}).then(r => r.status)",
            f"/console/approvals/{own_id}/deny",
        )
        assert status == 403
        assert carol_cli.proc.poll() is None and bob_cli.proc.poll() is None
        assert set(_pending_for(console_proxy, "carol")) == {carol_id}
        assert _pending_for(console_proxy, "bob") == [own_id]
    finally:
        carol_cli.stop()
        bob_cli.stop()


def test_statement_with_script_is_shown_as_text(browser, console_proxy, mariadb):
    payload = "<script>window.__pwned = 1</script><img src=x onerror='window.__pwned = 2'>"
    sql = f"CREATE TABLE console_xss_t (c VARCHAR(200) DEFAULT '{payload}')"
    cli = HeldCli(console_proxy.port, *CAROL, sql)
    try:
        base = sign_in(browser, console_proxy, ALICE)
        request_id, text, _ = queue_row(browser, "console_xss_t")
        assert "<script>window.__pwned = 1</script>" in text
        browser.get(f"{base}/console/approvals/{request_id}")
        assert browser.find_element(By.ID, "statement").text == sql
        assert browser.execute_script("return window.__pwned === undefined")
        # Only the console's own script element exists; no img was made from the text.
        assert browser.execute_script("return document.scripts.length") == 1
        assert browser.execute_script("return document.images.length") == 0
        # Deny it from the page, with a reason that is markup too.
        type_into(browser, "reason", "<b>no</b> scripts in defaults")
        browser.find_element(By.ID, "deny").click()
        WebDriverWait(browser, 10).until(ec.presence_of_element_located((By.ID, "done")))
        text_when(browser, "history", lambda t: "<b>no</b> scripts in defaults" in t)
        code, _, err = cli.result(30)
        assert code == 1 and "MYGUARD_APPROVAL_DENIED" in err and "by=alice" in err
    finally:
        cli.stop()


def _pending_for(proxy, requester):
    import asyncio

    from myguard.approvals.model import RequestStatus
    from myguard.approvals.store_sqlite import SqliteApprovalStore

    async def read():
        store = SqliteApprovalStore(proxy.base / "approvals.db", create=False)
        try:
            return [
                r.id
                for r in await store.list(RequestStatus.PENDING, limit=1000)
                if r.requester == requester
            ]
        finally:
            await store.aclose()

    return asyncio.run(read())
