"""Password scrambles: what a client sends verifies against the stored hash, and nothing else."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from myguard.protocol.auth import _xor, native_token, sha2_token, verify_native, verify_sha2

passwords = st.binary(min_size=1, max_size=64)
scrambles = st.binary(min_size=20, max_size=20)


@given(st.data())
def test_xor_is_bytewise(data):
    size = data.draw(st.integers(0, 40))
    a, b = (data.draw(st.binary(min_size=size, max_size=size)) for _ in range(2))
    assert _xor(a, b) == bytes(x ^ y for x, y in zip(a, b, strict=True))


@given(passwords, passwords, scrambles)
def test_native_password_token_verifies_only_for_its_password(password, other, scramble):
    stage2 = hashlib.sha1(hashlib.sha1(password).digest()).digest()
    assert verify_native(stage2, scramble, native_token(password, scramble))
    assert verify_native(stage2, scramble, native_token(other, scramble)) == (other == password)


@given(passwords, passwords, scrambles)
def test_sha2_token_verifies_only_for_its_password(password, other, nonce):
    stage2 = hashlib.sha256(hashlib.sha256(password).digest()).digest()
    assert verify_sha2(stage2, nonce, sha2_token(password, nonce))
    assert verify_sha2(stage2, nonce, sha2_token(other, nonce)) == (other == password)
