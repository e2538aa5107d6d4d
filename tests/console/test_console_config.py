"""The [admin] table: defaults, and errors that name file, key and what was expected."""

from __future__ import annotations

import pytest

from myguard.config import check_config
from myguard.config_error import ConfigError, ConfigErrors

BASE = """
rules_file = "rules.toml"
[identity]
users_file = "users.toml"
[audit]
enabled = false
[[backends]]
name = "main"
environment = "production"
listen = "127.0.0.1:3307"
upstream = "127.0.0.1:3306"
user = "svc"
password_env = "UNSET_FOR_THIS_TEST"
"""


def load(tmp_path, admin: str):
    path = tmp_path / "myguard.toml"
    path.write_text(BASE + admin)
    return path, check_config(path, secrets_required=False)[0]


def errors(tmp_path, admin: str) -> list[str]:
    path = tmp_path / "myguard.toml"
    path.write_text(BASE + admin)
    with pytest.raises((ConfigError, ConfigErrors)) as failed:
        check_config(path, secrets_required=False)
    found = failed.value.errors if isinstance(failed.value, ConfigErrors) else [failed.value]
    return [str(e) for e in found]


def test_defaults_and_values(tmp_path):
    _, config = load(tmp_path, "")
    assert config.admin.console and config.admin.tls is None and not config.admin.audit_groups
    (tmp_path / "a.crt").write_text("x")
    (tmp_path / "a.key").write_text("x")
    _, config = load(
        tmp_path,
        '[admin]\ncert_file = "a.crt"\nkey_file = "a.key"\naudit_groups = ["security"]\n'
        "session_idle_timeout = 600\nsession_lifetime = 3600\nconsole = false\n",
    )
    admin = config.admin
    assert admin.tls.cert_file == tmp_path / "a.crt" and admin.audit_groups == {"security"}
    assert (admin.session_idle_timeout, admin.session_lifetime, admin.console) == (
        600,
        3600,
        False,
    )


@pytest.mark.parametrize(
    "admin, key, expected",
    [
        ('cert_file = "a.crt"', "admin.key_file", "cert_file and key_file together"),
        ('cert_file = "no.crt"\nkey_file = "no.key"', "admin.cert_file", "an existing PEM file"),
        ('audit_groups = "dba"', "admin.audit_groups", "a list of strings"),
        ("session_idle_timeout = 600\nsession_lifetime = 60", "admin.session_lifetime", "at least"),
        ("session_idle_timeout = 1", "admin.session_idle_timeout", "a number >= 10"),
        ("console = 1", "admin.console", "true or false"),
        ("consoel = true", "admin.consoel", ""),
    ],
)
def test_errors_name_file_key_and_expectation(tmp_path, admin, key, expected):
    found = errors(tmp_path, "[admin]\n" + admin + "\n")
    assert any(str(tmp_path / "myguard.toml") in e and key in e and expected in e for e in found), (
        found
    )
