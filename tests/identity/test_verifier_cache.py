import hashlib

import pytest

from myguard.identity.base import Identity
from myguard.identity.verifier_cache import VerifierCache
from myguard.identity.verifiers import native_stage2, sha2_stage2


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


ALICE = Identity(user="alice", groups=frozenset({"dba"}), source="ldap")


def test_stage2_derivations_match_mysql_definitions():
    assert native_stage2("pw") == hashlib.sha1(hashlib.sha1(b"pw").digest()).digest()
    assert sha2_stage2("pw") == hashlib.sha256(hashlib.sha256(b"pw").digest()).digest()
    assert len(native_stage2("")) == 20 and len(sha2_stage2("")) == 32


def test_remember_then_get_returns_only_derived_verifiers():
    cache = VerifierCache(ttl=60, clock=FakeClock())
    cache.remember(ALICE, "s3cret")
    got = cache.get("alice")
    assert got is not None
    assert got.identity == ALICE
    assert got.native_stage2 == native_stage2("s3cret")
    assert got.sha2_stage2 == sha2_stage2("s3cret")
    assert "s3cret" not in repr(cache.__dict__)


def test_unknown_user_is_none():
    assert VerifierCache(ttl=60).get("nobody") is None


def test_entries_expire_after_ttl():
    clock = FakeClock()
    cache = VerifierCache(ttl=60, clock=clock)
    cache.remember(ALICE, "pw")
    clock.now += 59.9
    assert cache.get("alice") is not None
    clock.now += 0.2
    assert cache.get("alice") is None


def test_allow_expired_serves_stale_entry_for_outages():
    clock = FakeClock()
    cache = VerifierCache(ttl=10, clock=clock)
    cache.remember(ALICE, "pw")
    clock.now += 3600
    assert cache.get("alice") is None
    stale = cache.get("alice", allow_expired=True)
    assert stale is not None and stale.native_stage2 == native_stage2("pw")


def test_new_password_replaces_entry():
    cache = VerifierCache(ttl=60, clock=FakeClock())
    cache.remember(ALICE, "old")
    cache.remember(ALICE, "new")
    got = cache.get("alice")
    assert got is not None and got.sha2_stage2 == sha2_stage2("new")


def test_forget_and_purge():
    clock = FakeClock()
    cache = VerifierCache(ttl=10, clock=clock)
    cache.remember(ALICE, "pw")
    cache.remember(Identity(user="bob", source="ldap"), "pw")
    cache.forget("alice")
    cache.forget("alice")
    assert cache.get("alice") is None and len(cache) == 1
    clock.now += 11
    assert cache.purge_expired() == 1
    assert len(cache) == 0


def test_negative_ttl_rejected():
    with pytest.raises(ValueError):
        VerifierCache(ttl=-1)
