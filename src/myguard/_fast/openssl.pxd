# The parts of OpenSSL 3 (libcrypto) that the compiled modules use.

cdef extern from "openssl/evp.h" nogil:
    ctypedef struct EVP_MD:
        pass
    ctypedef struct EVP_MD_CTX:
        pass
    ctypedef struct EVP_MAC:
        pass
    ctypedef struct EVP_MAC_CTX:
        pass
    ctypedef struct OSSL_PARAM:
        pass
    const EVP_MD *EVP_sha256()
    EVP_MD_CTX *EVP_MD_CTX_new()
    void EVP_MD_CTX_free(EVP_MD_CTX *ctx)
    int EVP_DigestInit_ex(EVP_MD_CTX *ctx, const EVP_MD *type, void *impl)
    int EVP_DigestUpdate(EVP_MD_CTX *ctx, const void *d, size_t cnt)
    int EVP_DigestFinal_ex(EVP_MD_CTX *ctx, unsigned char *md, unsigned int *s)
    EVP_MAC *EVP_MAC_fetch(void *libctx, const char *algorithm, const char *properties)
    void EVP_MAC_free(EVP_MAC *mac)
    EVP_MAC_CTX *EVP_MAC_CTX_new(EVP_MAC *mac)
    void EVP_MAC_CTX_free(EVP_MAC_CTX *ctx)
    int EVP_MAC_init(EVP_MAC_CTX *ctx, const unsigned char *key, size_t keylen,
                     const OSSL_PARAM *params)
    int EVP_MAC_update(EVP_MAC_CTX *ctx, const unsigned char *data, size_t datalen)
    int EVP_MAC_final(EVP_MAC_CTX *ctx, unsigned char *out, size_t *outl, size_t outsize)

cdef extern from "openssl/params.h" nogil:
    OSSL_PARAM OSSL_PARAM_construct_utf8_string(const char *key, char *buf, size_t bsize)
    OSSL_PARAM OSSL_PARAM_construct_end()


cdef inline EVP_MAC_CTX *new_hmac_sha256(const unsigned char *key, size_t keylen) noexcept nogil:
    # An HMAC-SHA256 context keyed once, or NULL; EVP_MAC_init(ctx, NULL, 0, NULL) restarts
    # it with the same key. The context holds its own reference to the HMAC method.
    cdef OSSL_PARAM params[2]
    cdef EVP_MAC *mac = EVP_MAC_fetch(NULL, b"HMAC", NULL)
    if mac == NULL:
        return NULL
    cdef EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac)
    EVP_MAC_free(mac)
    if ctx == NULL:
        return NULL
    params[0] = OSSL_PARAM_construct_utf8_string(b"digest", b"SHA256", 0)
    params[1] = OSSL_PARAM_construct_end()
    if not EVP_MAC_init(ctx, key, keylen, params):
        EVP_MAC_CTX_free(ctx)
        return NULL
    return ctx


cdef inline bint hmac_sha256(EVP_MAC_CTX *ctx, const unsigned char *data, size_t length,
                             unsigned char *out) noexcept nogil:
    # The 32-byte MAC of data under ctx's key (a context from new_hmac_sha256); False on failure.
    cdef size_t written
    return (
        EVP_MAC_init(ctx, NULL, 0, NULL)
        and EVP_MAC_update(ctx, data, length)
        and EVP_MAC_final(ctx, out, &written, 32)
    )
