"""LDAP identity and no [tls] table: myguard makes a self-signed certificate at the first
start, so the ``mariadb`` CLI with its default options can log in (caching_sha2 full
authentication needs TLS, and the CLI does not fetch the RSA key)."""

from __future__ import annotations

import re
import stat

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from e2e_ldap import login, wait_events

from conftest import GROUP_ACCOUNTS, ldap_identity
from proxy_process import ProxyProcess


def test_mariadb_cli_logs_in_to_a_myguard_without_a_tls_table(
    mariadb, slapd, ldap_env, new_user, tmp_path
):
    proxy = ProxyProcess(
        tmp_path / "proxy", mariadb, identity=ldap_identity(slapd), backend=GROUP_ACCOUNTS
    )
    config = proxy.config_file.read_text()
    without_tls = re.sub(r"\n\[tls\]\n(?:[^\[\n].*\n)*", "\n", config)
    assert "[tls]" not in without_tls and "cert_file" not in without_tls
    proxy.config_file.write_text(without_tls)
    cert_file = proxy.base / "myguard-self-signed.crt"
    key_file = proxy.base / "myguard-self-signed.key"
    proxy.start()
    try:
        user, password = new_user("no-tls-table")
        assert login("mariadb-cli", proxy.port, user, password) == "myguard_svc@127.0.0.1"
        (first,) = wait_events(proxy, "login", user, 1)
        assert (first["plugin"], first["method"], first["tls"]) == (
            "caching_sha2_password",
            "full",
            "True",
        )
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        fingerprint = cert.fingerprint(hashes.SHA256()).hex(":").upper()
        assert f"event=tls_self_signed cert={cert_file} sha256={fingerprint} created=True" in (
            proxy.log()
        )
        # A client that pins the certificate verifies it, host name included.
        assert login("mariadb-cli", proxy.port, user, password, tls_ca=str(cert_file))

        # The next start uses the same certificate.
        proxy.stop()
        proxy.start()
        assert f"sha256={fingerprint} created=False" in proxy.log()
        assert login("mariadb-cli", proxy.port, user, password) == "myguard_svc@127.0.0.1"
    finally:
        proxy.stop()
