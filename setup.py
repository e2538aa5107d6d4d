"""Builds the Cython extensions in src/myguard/_fast (one module per .pyx file)."""

from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

FAST = Path("src/myguard/_fast")
# C libraries a module links against (Debian: libssl-dev, zlib1g-dev).
LIBRARIES = {"auditchain": ["crypto", "z"], "rowmask": ["crypto"]}

extensions = [
    Extension(
        f"myguard._fast.{pyx.stem}",
        [str(pyx)],
        extra_compile_args=["-O3"],
        libraries=LIBRARIES.get(pyx.stem, []),
        # openssl.pxd uses SHA256_* (deprecated in OpenSSL 3.0) for speed; see there.
        define_macros=[("OPENSSL_SUPPRESS_DEPRECATED", None)] if pyx.stem in LIBRARIES else [],
    )
    for pyx in sorted(FAST.glob("*.pyx"))
]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
    ),
)
