"""Authentication and group resolution against the private slapd."""

import asyncio
import subprocess

import pytest

from ldap_server import user_dn
from myguard.identity.base import AuthFailed, Identity

DBA_ALICE = {"dba", "developers"}  # groupOfNames + posixGroup


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(params=["search", "direct"])
def source(request, slapd, make_source, search_table, direct_table):
    table = search_table(slapd) if request.param == "search" else direct_table(slapd)
    return make_source(table)


def test_alice_gets_identity_with_all_group_styles(source):
    identity = run(source.authenticate("alice", "alice-pw"))
    assert identity == Identity(user="alice", groups=frozenset(DBA_ALICE), source="ldap")
    assert (
        identity.attributes == {}
    )  # mail/displayName were fetched? never copied unless configured


def test_group_of_unique_names_and_group_of_names(source):
    bob = run(source.authenticate("bob", "bob-pw"))
    assert bob.groups == {"analysts", "auditors"}


def test_service_identity_of_ai_agent(source):
    bot = run(source.authenticate("bot-reporter", "bot-pw"))
    assert bot.user == "bot-reporter"
    assert bot.groups == {"analysts", "ai-agents"}


def test_user_in_no_group(source):
    assert run(source.authenticate("carol", "carol-pw")).groups == frozenset()


def test_wrong_password(source):
    with pytest.raises(AuthFailed):
        run(source.authenticate("alice", "bob-pw"))


def test_unknown_user(source):
    with pytest.raises(AuthFailed):
        run(source.authenticate("mallory", "whatever"))


def test_disabled_user_refused_even_with_right_password(source):
    with pytest.raises(AuthFailed) as info:
        run(source.authenticate("dave", "dave-pw"))
    assert "disabled" in info.value.reason


def test_empty_password_refused_although_ldap_would_accept_it(slapd, source):
    # The server really does answer "DN + empty password" with success (as anonymous)...
    whoami = subprocess.run(
        ["ldapwhoami", "-x", "-H", slapd.url, "-D", user_dn("alice"), "-w", ""],
        capture_output=True,
        text=True,
        check=False,
    )
    assert whoami.returncode == 0, whoami.stderr
    # ...so the source must refuse before asking it.
    with pytest.raises(AuthFailed) as info:
        run(source.authenticate("alice", ""))
    assert "empty password" in info.value.reason


def test_filter_and_dn_injection_are_escaped(source):
    for user in ("*", "alice)(uid=*", "alice,ou=people", "al*", "alice\x00"):
        with pytest.raises(AuthFailed):
            run(source.authenticate(user, "alice-pw"))


def test_fast_verifiers_are_none(source):
    assert run(source.fast_verifiers("alice")) is None


def test_case_variant_login_gets_directory_spelling(slapd, make_source, search_table):
    source = make_source(search_table(slapd))
    assert run(source.authenticate("ALICE", "alice-pw")).user == "alice"


def test_member_of_alone(slapd, make_source, search_table):
    # No group search: only the memberOf overlay's values (groupOfNames only).
    source = make_source(search_table(slapd, group_filter=""))
    assert run(source.authenticate("alice", "alice-pw")).groups == {"dba"}
    assert run(source.authenticate("bot-reporter", "bot-pw")).groups == {"analysts", "ai-agents"}


def test_group_search_alone(slapd, make_source, search_table):
    source = make_source(search_table(slapd, member_of_attribute=""))
    assert run(source.authenticate("alice", "alice-pw")).groups == DBA_ALICE


def test_nested_groups(slapd, make_source, search_table):
    source = make_source(search_table(slapd, nested_groups=True))
    assert run(source.authenticate("alice", "alice-pw")).groups == DBA_ALICE | {"data-platform"}
    shallow = make_source(search_table(slapd, nested_groups=True, nested_depth=1))
    assert "data-platform" in run(shallow.authenticate("alice", "alice-pw")).groups


def test_group_names_as_dns(slapd, make_source, search_table):
    source = make_source(search_table(slapd, group_names="dn"))
    assert run(source.authenticate("bob", "bob-pw")).groups == {
        "cn=analysts,ou=groups,dc=example,dc=org",
        "cn=auditors,ou=groups,dc=example,dc=org",
    }


def test_configured_attributes_are_kept(slapd, make_source, search_table):
    source = make_source(search_table(slapd, attributes=["mail", "displayName", "telephoneNumber"]))
    identity = run(source.authenticate("alice", "alice-pw"))
    assert identity.attributes == {"mail": "alice@example.org", "displayName": "Alice DBA"}


def test_direct_bind_with_service_account_for_groups(slapd, make_source, direct_table):
    from ldap_server import SERVICE_DN

    table = direct_table(slapd, bind_dn=SERVICE_DN, bind_password_env="MYGUARD_TEST_LDAP_BIND_PW")
    source = make_source(table)
    assert run(source.authenticate("bob", "bob-pw")).groups == {"analysts", "auditors"}
    with pytest.raises(AuthFailed):
        run(source.authenticate("bob", "alice-pw"))


def test_wrong_service_password_is_an_outage_not_a_login_failure(
    slapd, make_source, search_table, monkeypatch
):
    from myguard.identity.base import IdentityUnavailable

    monkeypatch.setenv("WRONG_PW", "not-the-password")
    source = make_source(search_table(slapd, bind_password_env="WRONG_PW"))
    with pytest.raises(IdentityUnavailable, match="service account"):
        run(source.authenticate("alice", "alice-pw"))
