"""LdapConfig.from_table: defaults, password sources, and errors naming file and key."""

import pytest

from myguard.config_error import ConfigError
from myguard.identity.ldap_config import DEFAULT_USER_FILTER, LdapConfig

FILE = "/etc/myguard/myguard.toml"


def search(**overrides):
    table = {
        "urls": "ldap://ldap1.example.org",
        "bind_dn": "cn=reader,dc=example,dc=org",
        "bind_password_env": "LDAP_PW",
        "base_dn": "dc=example,dc=org",
    }
    table.update(overrides)
    return {k: v for k, v in table.items() if v is not None}


@pytest.fixture(autouse=True)
def bind_password(monkeypatch):
    monkeypatch.setenv("LDAP_PW", "s3cret")


def error(table, key="identity.ldap"):
    with pytest.raises(ConfigError) as info:
        LdapConfig.from_table(table, FILE, key)
    assert info.value.file == FILE
    assert str(info.value).startswith(f"{FILE}: {info.value.key}: expected ")
    return info.value


def test_defaults():
    config = LdapConfig.from_table(search(), FILE)
    assert config.urls == ("ldap://ldap1.example.org",)
    assert config.tls == "starttls" and config.verify is True
    assert config.bind_password == "s3cret"
    assert config.user_filter == DEFAULT_USER_FILTER
    assert config.groups_base == "dc=example,dc=org"
    assert config.nested_groups is False
    assert config.timeout == 5.0 and config.max_concurrency == 16 and config.group_ttl == 300.0
    assert "s3cret" not in repr(config)


def test_password_from_file(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    table = search(bind_password_env=None, bind_password_file=str(secret))
    assert LdapConfig.from_table(table, FILE).bind_password == "from-file"


def test_direct_bind_needs_no_service_account():
    table = {
        "urls": ["ldaps://a", "ldaps://b"],
        "tls": "ldaps",
        "user_dn_template": "uid={user},dc=x",
    }
    config = LdapConfig.from_table(table, FILE)
    assert config.urls == ("ldaps://a", "ldaps://b")
    assert not config.has_service_account and config.bind_password is None


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"urls": None}, "identity.ldap.urls"),
        ({"urls": []}, "identity.ldap.urls"),
        ({"urls": ["http://x"]}, "identity.ldap.urls"),
        ({"tls": "yes"}, "identity.ldap.tls"),
        ({"tls": "ldaps"}, "identity.ldap.urls"),
        ({"urls": "ldaps://x"}, "identity.ldap.tls"),
        ({"verify": "no"}, "identity.ldap.verify"),
        ({"ca_file": "/nonexistent/ca.pem"}, "identity.ldap.ca_file"),
        ({"bind_password": "inline"}, "identity.ldap.bind_password"),
        ({"bind_password_env": "UNSET_VARIABLE_XYZ"}, "identity.ldap.bind_password_env"),
        ({"bind_password_env": None}, "identity.ldap.bind_password_env"),
        ({"bind_password_file": "/nonexistent/pw"}, "identity.ldap.bind_password_env"),
        ({"bind_dn": None}, "identity.ldap.bind_dn"),
        ({"base_dn": None}, "identity.ldap.base_dn"),
        ({"user_filter": "(uid=alice)"}, "identity.ldap.user_filter"),
        ({"user_filter": "uid={user}"}, "identity.ldap.user_filter"),
        ({"user_dn_template": "uid=alice,dc=x"}, "identity.ldap.user_dn_template"),
        ({"disabled_filter": 3}, "identity.ldap.disabled_filter"),
        ({"group_names": "uid"}, "identity.ldap.group_names"),
        ({"nested_depth": 0}, "identity.ldap.nested_depth"),
        ({"attributes": "mail"}, "identity.ldap.attributes"),
        ({"timeout": 0}, "identity.ldap.timeout"),
        ({"timeout": True}, "identity.ldap.timeout"),
        ({"max_concurrency": 0}, "identity.ldap.max_concurrency"),
        ({"group_ttl": -1}, "identity.ldap.group_ttl"),
        ({"tls_mode": "none"}, "identity.ldap.tls_mode"),
    ],
)
def test_errors_name_file_and_full_key(overrides, key):
    assert error(search(**overrides)).key == key


def test_unreadable_password_file_names_its_key(tmp_path):
    table = search(bind_password_env=None, bind_password_file=str(tmp_path / "missing"))
    assert error(table).key == "identity.ldap.bind_password_file"


def test_custom_key_prefix_is_used():
    assert error(search(timeout=-1), key="sources.corp").key == "sources.corp.timeout"


def test_not_a_table():
    assert error("ldap://x").key == "identity.ldap"
