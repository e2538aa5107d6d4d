# The parts of OpenSSL 3 (libcrypto) that the compiled modules use: SHA-256 and HMAC-SHA256.
#
# SHA-256 goes through OpenSSL's SHA256_* functions (deprecated in 3.0, still shipped and
# using the same SHA-NI/AVX code as EVP), not EVP: each EVP_MAC_init/EVP_DigestInit_ex
# looks up the provider, takes locks and allocates, which perf measured at ~2.5 µs per audit
# record, many times the hashing itself. HMAC (RFC 2104) keys the inner and outer states
# once; a MAC then copies two 112-byte states. setup.py builds these modules with
# OPENSSL_SUPPRESS_DEPRECATED; the property tests check every result against Python's hmac.

from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

cdef extern from "openssl/sha.h" nogil:
    ctypedef struct SHA256_CTX:
        pass
    int SHA256_Init(SHA256_CTX *c)
    int SHA256_Update(SHA256_CTX *c, const void *data, size_t length)
    int SHA256_Final(unsigned char *md, SHA256_CTX *c)

cdef extern from "openssl/crypto.h" nogil:
    void OPENSSL_cleanse(void *ptr, size_t length)

cdef enum:
    SHA256_BLOCK = 64
    SHA256_SIZE = 32

ctypedef struct HmacSha256:
    SHA256_CTX inner  # SHA-256 state after the key XOR ipad block
    SHA256_CTX outer  # after the key XOR opad block


cdef inline bint sha256(const unsigned char *data, size_t length,
                        unsigned char *out) noexcept nogil:
    cdef SHA256_CTX ctx
    return SHA256_Init(&ctx) and SHA256_Update(&ctx, data, length) and SHA256_Final(out, &ctx)


cdef inline HmacSha256 *new_hmac_sha256(const unsigned char *key, size_t keylen) noexcept nogil:
    # An HMAC-SHA256 keyed with key (free it with free_hmac_sha256), or NULL.
    cdef unsigned char block[SHA256_BLOCK]
    cdef unsigned char pad[SHA256_BLOCK]
    cdef int i
    cdef bint ok
    cdef HmacSha256 *mac = <HmacSha256 *>malloc(sizeof(HmacSha256))
    if mac == NULL:
        return NULL
    memset(block, 0, SHA256_BLOCK)
    if keylen > SHA256_BLOCK:
        ok = sha256(key, keylen, block)
    else:
        memcpy(block, key, keylen)
        ok = True
    for i in range(SHA256_BLOCK):
        pad[i] = block[i] ^ 0x36
    ok = ok and SHA256_Init(&mac.inner) and SHA256_Update(&mac.inner, pad, SHA256_BLOCK)
    for i in range(SHA256_BLOCK):
        pad[i] = block[i] ^ 0x5C
    ok = ok and SHA256_Init(&mac.outer) and SHA256_Update(&mac.outer, pad, SHA256_BLOCK)
    OPENSSL_cleanse(block, SHA256_BLOCK)
    OPENSSL_cleanse(pad, SHA256_BLOCK)
    if not ok:
        free_hmac_sha256(mac)
        return NULL
    return mac


cdef inline void free_hmac_sha256(HmacSha256 *mac) noexcept nogil:
    if mac != NULL:
        OPENSSL_cleanse(mac, sizeof(HmacSha256))
        free(mac)


cdef inline bint hmac_sha256(const HmacSha256 *mac, const unsigned char *data, size_t length,
                             unsigned char *out) noexcept nogil:
    # The 32-byte MAC of data under mac's key; False on failure.
    cdef SHA256_CTX ctx
    cdef unsigned char inner[SHA256_SIZE]
    memcpy(&ctx, &mac.inner, sizeof(SHA256_CTX))
    if not (SHA256_Update(&ctx, data, length) and SHA256_Final(inner, &ctx)):
        return False
    memcpy(&ctx, &mac.outer, sizeof(SHA256_CTX))
    return SHA256_Update(&ctx, inner, SHA256_SIZE) and SHA256_Final(out, &ctx)
