# The statement fingerprint, declared for compiled callers (proxycore).

cpdef object fingerprint_hash(bytes sql)
