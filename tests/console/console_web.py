"""Helpers of the console tests: an HTTP client that keeps cookies, a held statement run by
the ``mariadb`` command-line client, and a headless Chromium driven by Selenium."""

from __future__ import annotations

import http.client
import re
import shutil
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import pytest

from ldap_server import SlapdServer, search_table
from mariadb_server import MariaDBServer
from proxy_process import ProxyProcess

# LDAP users of tests/ldap_server.py: alice is in dba, bob in analysts and auditors.
ALICE = ("alice", "alice-pw")
BOB = ("bob", "bob-pw")
CAROL = ("carol", "carol-pw")


def console_proxy_process(base, db: MariaDBServer, slapd: SlapdServer) -> ProxyProcess:
    """myguard in production with LDAP sign-in; dba members see the whole audit trail."""
    return ProxyProcess(
        base,
        db,
        environment="production",
        identity={"source": "ldap", "max_failures": 10_000, "ldap": search_table(slapd)},
        tables={"admin": {"audit_groups": ["dba"]}},
    )


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: str

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def cookies(self) -> list[str]:
        return [v for k, v in self.headers if k.lower() == "set-cookie"]

    @property
    def location(self) -> str | None:
        return self.header("Location")

    def csrf(self) -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', self.body)
        assert found, "no CSRF field on the page"
        return found.group(1)


@dataclass
class Web:
    """One browser-like HTTP client of the admin listener: keeps the cookies it gets."""

    port: int
    tls: bool = False
    cookies: dict[str, str] = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> Reply:
        if self.tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=30, context=context)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if form is not None:
            body = urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            reply = Reply(response.status, response.getheaders(), response.read().decode())
        finally:
            conn.close()
        for value in reply.cookies():
            jar = SimpleCookie()
            jar.load(value)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or morsel.value == "":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return reply

    def get(self, path: str, **kw: object) -> Reply:
        return self.request("GET", path, **kw)

    def post(self, path: str, form: dict[str, str] | None = None, **kw: object) -> Reply:
        return self.request("POST", path, form=form or {}, **kw)

    def signin(self, user: str, password: str) -> Reply:
        page = self.get("/console/login")
        token = re.search(r'name="login_token" value="([^"]+)"', page.body).group(1)
        return self.post(
            "/console/login",
            {
                "user": user,
                "password": password,
                "login_token": token,
                "next": "/console/approvals",
            },
        )


class HeldCli:
    """``mariadb -e SQL`` as ``user`` through myguard, in the background."""

    def __init__(self, port: int, user: str, password: str, sql: str) -> None:
        self.proc = subprocess.Popen(
            [
                "mariadb",
                "--no-defaults",
                "--protocol=TCP",
                "-h127.0.0.1",
                f"-P{port}",
                f"-u{user}",
                f"--password={password}",
                "--ssl",
                "--ssl-verify-server-cert=0",
                "-N",
                "-B",
                "test",
                "-e",
                sql,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def result(self, timeout: float = 30) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def pending_ids(web: Web) -> list[int]:
    page = web.get("/console/approvals/rows?status=pending")
    assert page.status == 200, page.body
    return [int(i) for i in re.findall(r'<tr id="request-(\d+)"', page.body)]


def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def chromium_driver(width: int = 1400, height: int = 1000):
    """Headless Debian Chromium under chromedriver (both installed by scripts/bootstrap.sh)."""
    from selenium import webdriver

    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.fail("chromium and chromium-driver are needed: run scripts/bootstrap.sh")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(driver))
