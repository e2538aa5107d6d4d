"""Stage-2 scramble verifiers: what a server stores to check a fast-auth scramble.

A client proves knowledge of stage 1 (SHA1(pw) or SHA256(pw)) against a nonce; the
server only needs stage 2, the hash of stage 1, so the password itself is never kept.
"""

from __future__ import annotations

import hashlib


def native_stage2(password: str) -> bytes:
    """SHA1(SHA1(password)), the mysql_native_password verifier."""
    return hashlib.sha1(hashlib.sha1(password.encode()).digest()).digest()


def sha2_stage2(password: str) -> bytes:
    """SHA256(SHA256(password)), the caching_sha2_password fast-auth verifier."""
    return hashlib.sha256(hashlib.sha256(password.encode()).digest()).digest()
