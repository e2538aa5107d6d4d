"""LDAPS and StartTLS with CA verification against the private slapd's own CA."""

import asyncio

import pytest

from myguard.identity.base import AuthFailed, IdentityUnavailable


def run(coro):
    return asyncio.run(coro)


def test_ldaps_with_ca_verification(slapd, make_source, search_table):
    source = make_source(
        search_table(slapd, urls=[slapd.ldaps_url], tls="ldaps", ca_file=str(slapd.ca.ca_file))
    )
    assert run(source.authenticate("alice", "alice-pw")).groups == {"dba", "developers"}
    with pytest.raises(AuthFailed):
        run(source.authenticate("alice", "wrong"))


def test_starttls_with_ca_verification(slapd, make_source, direct_table):
    source = make_source(direct_table(slapd, tls="starttls", ca_file=str(slapd.ca.ca_file)))
    assert run(source.authenticate("bob", "bob-pw")).groups == {"analysts", "auditors"}


@pytest.mark.parametrize("mode", ["ldaps", "starttls"])
def test_wrong_ca_is_an_outage(slapd, make_source, search_table, mode):
    url = slapd.ldaps_url if mode == "ldaps" else slapd.url
    source = make_source(
        search_table(slapd, urls=[url], tls=mode, ca_file=str(slapd.wrong_ca_file))
    )
    with pytest.raises(IdentityUnavailable, match="(?i)certificate"):
        run(source.authenticate("alice", "alice-pw"))


def test_verify_off_accepts_unknown_ca(slapd, make_source, search_table):
    source = make_source(
        search_table(
            slapd,
            urls=[slapd.ldaps_url],
            tls="ldaps",
            ca_file=str(slapd.wrong_ca_file),
            verify=False,
        )
    )
    assert run(source.authenticate("carol", "carol-pw")).user == "carol"


def test_hostname_must_match_certificate(slapd, make_source, search_table):
    # The certificate names only 127.0.0.1; "localhost" reaches the same listener.
    url = slapd.ldaps_url.replace("127.0.0.1", "localhost")
    source = make_source(
        search_table(slapd, urls=[url], tls="ldaps", ca_file=str(slapd.ca.ca_file))
    )
    with pytest.raises(IdentityUnavailable, match="match"):
        run(source.authenticate("alice", "alice-pw"))
