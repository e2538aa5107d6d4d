"""Authentication plugin algorithms: mysql_native_password and caching_sha2_password.

Both sides live here: myguard verifies client scrambles (frontend) and computes its own
(backend, as a client with the service account).
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

MYSQL_NATIVE_PASSWORD = "mysql_native_password"
CACHING_SHA2_PASSWORD = "caching_sha2_password"
MYSQL_CLEAR_PASSWORD = "mysql_clear_password"


def _xor(a: bytes, b: bytes) -> bytes:
    if len(a) != len(b):
        raise ValueError("_xor() operands differ in length")
    # One big-int XOR instead of a generator over the bytes: a login does two.
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def native_token(password: bytes, scramble: bytes) -> bytes:
    """The client's mysql_native_password response: SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw)))."""
    if not password:
        return b""
    stage1 = hashlib.sha1(password).digest()
    stage2 = hashlib.sha1(stage1).digest()
    return _xor(stage1, hashlib.sha1(scramble[:20] + stage2).digest())


def verify_native(stage2: bytes, scramble: bytes, token: bytes) -> bool:
    """Check a native-password response against the stored SHA1(SHA1(pw))."""
    if len(token) != 20:
        return False
    stage1 = _xor(token, hashlib.sha1(scramble[:20] + stage2).digest())
    return hmac.compare_digest(hashlib.sha1(stage1).digest(), stage2)


def sha2_token(password: bytes, nonce: bytes) -> bytes:
    """caching_sha2_password fast-auth response: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + nonce)."""
    if not password:
        return b""
    stage1 = hashlib.sha256(password).digest()
    stage2 = hashlib.sha256(stage1).digest()
    return _xor(stage1, hashlib.sha256(stage2 + nonce[:20]).digest())


def verify_sha2(stage2: bytes, nonce: bytes, token: bytes) -> bool:
    """Check a caching_sha2_password fast-auth response against stored SHA256(SHA256(pw))."""
    if len(token) != 32:
        return False
    stage1 = _xor(token, hashlib.sha256(stage2 + nonce[:20]).digest())
    return hmac.compare_digest(hashlib.sha256(stage1).digest(), stage2)


def _xor_repeat(data: bytes, nonce: bytes) -> bytes:
    return bytes(b ^ nonce[i % len(nonce)] for i, b in enumerate(data))


def rsa_encrypt_password(password: bytes, nonce: bytes, public_pem: bytes) -> bytes:
    """What a client sends in caching_sha2 full auth without TLS (OAEP, as MySQL 8.0.5+)."""
    key = serialization.load_pem_public_key(public_pem)
    assert isinstance(key, rsa.RSAPublicKey)
    plain = _xor_repeat(password + b"\x00", nonce[:20])
    return key.encrypt(plain, _OAEP)


def rsa_decrypt_password(ciphertext: bytes, nonce: bytes, key: rsa.RSAPrivateKey) -> bytes:
    """Recover the cleartext password sent through the RSA public-key exchange."""
    plain = _xor_repeat(key.decrypt(ciphertext, _OAEP), nonce[:20])
    return plain.split(b"\x00", 1)[0]


_OAEP = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
