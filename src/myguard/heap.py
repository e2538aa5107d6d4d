"""The C heap's policy in a proxy process: keep freed memory for the next result.

glibc hands free memory at the top of its heap back to the kernel (trim) and serves
large blocks from fresh mappings, both with thresholds that adapt to the sizes it sees.
A result streamed in chunks of a few hundred KiB then gets new, zero-filled pages from
the kernel for almost every chunk: page faults were a third of myguard's CPU for a
masked 1M-row result (benchmarks/README.md). Fixed thresholds keep up to ``TRIM_BYTES``
free in the heap and take blocks below ``MMAP_BYTES`` from it, so memory freed by one
chunk serves the next. A process never holds more than its own peak.
"""

from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD = -1  # glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_BYTES = 32 << 20  # glibc's upper bound for this setting on 64-bit systems
TRIM_BYTES = 256 << 20
_OPERATOR_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")


def keep_freed_memory() -> bool:
    """Set the thresholds; False where the C library has no ``mallopt`` (not glibc) or
    the operator set them in the environment (glibc's own variables win)."""
    if any(name in os.environ for name in _OPERATOR_SETTINGS):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, MMAP_BYTES) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_BYTES) == 1
